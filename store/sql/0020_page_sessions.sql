-- Web pages (api/pages): sign-in sessions and one-time sign-in links, each bound to an API key, whose
-- role and scope it acts with; revoking the key ends its sessions. Only SHA-256 hashes of the
-- cookie and link tokens are stored, as for API keys (256 random bits: nothing to guess).
CREATE TABLE page_session (
    token_hash  bytea PRIMARY KEY,
    key_id      text NOT NULL REFERENCES api_key (id) ON DELETE CASCADE,
    csrf_token  text NOT NULL,                 -- every form of the session carries it (api/pages/guard.py)
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX page_session_expiry_idx ON page_session (expires_at);

CREATE TABLE page_signin_link (
    token_hash  bytea PRIMARY KEY,
    key_id      text NOT NULL REFERENCES api_key (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
