-- Residents' feedback (issue 18): the codes in the QR stickers, what residents sent through them, and
-- the salts their client addresses are hashed with. Plain tables only: the same on PostgreSQL and
-- TimescaleDB. Rules and retention: store/feedback.py, store/client_hashes.py.

-- One code per pilot (device_id NULL) and per device: 128 random bits, printed on the stickers, so a
-- feedback link names no id that can be guessed. Kept as is (the sheet is printed again from it);
-- rotating it replaces the row's code, and the old link answers 404.
CREATE TABLE feedback_code (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_-]{16,64}$'),
    pilot_id    text NOT NULL REFERENCES pilot (id) ON DELETE CASCADE,
    device_id   text REFERENCES device (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX feedback_code_target_idx ON feedback_code (pilot_id, (coalesce(device_id, '')));

-- One resident's response. The rating counts at once; a comment waits for an admin (pending ->
-- approved, or rejected: its text is erased). client_hash: HMAC-SHA256 of the sender's address with
-- the salt of its period, for rate limits and duplicate suppression; erased after the retention.
-- content_sha256: of the rating, category and normalised comment, for duplicate suppression.
CREATE TABLE feedback (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pilot_id        text NOT NULL REFERENCES pilot (id) ON DELETE RESTRICT,
    device_id       text REFERENCES device (id) ON DELETE RESTRICT,
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    rating          smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    category        text NOT NULL CHECK (category IN ('works_well', 'not_working', 'privacy', 'noise_light',
                                                      'placement', 'other')),
    comment         text CHECK (char_length(comment) BETWEEN 1 AND 500),
    comment_status  text CHECK (comment_status IN ('pending', 'approved', 'rejected')),
    moderated_at    timestamptz,
    moderated_by    text,
    client_hash     bytea CHECK (octet_length(client_hash) = 32),
    content_sha256  bytea NOT NULL CHECK (octet_length(content_sha256) = 32),
    CHECK ((comment IS NULL) = (comment_status IS NULL OR comment_status = 'rejected'))
);
CREATE INDEX feedback_pilot_time_idx ON feedback (pilot_id, submitted_at);
CREATE INDEX feedback_target_time_idx ON feedback (pilot_id, (coalesce(device_id, '')), submitted_at);
CREATE INDEX feedback_client_time_idx ON feedback (client_hash, submitted_at) WHERE client_hash IS NOT NULL;
CREATE INDEX feedback_pending_idx ON feedback (submitted_at) WHERE comment_status = 'pending';

-- The salt of each period (retention-long, counted from 1970-01-01 UTC): random, made on first use,
-- dropped once its period is over, so hashes of two periods cannot be joined, nor recomputed.
CREATE TABLE feedback_salt (
    period_start  date PRIMARY KEY,
    salt          bytea NOT NULL CHECK (octet_length(salt) = 32)
);
