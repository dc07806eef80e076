-- The transparency log of reference records (issue 15; scoring/transparency, RFC 9162's design).
-- Every stored reference record is a leaf: leaf_hash = SHA-256(0x00 || the record file's bytes),
-- appended by the trigger below in the transaction that stores the record, so no record can be
-- stored outside the log. Tree heads are signed in Python (the key is not the database's) in that
-- same transaction (scoring.issuing.store_record). Both tables only grow: UPDATE, DELETE and
-- TRUNCATE are refused by triggers (a superuser can still bypass them; that is what the signed
-- tree heads and consistency proofs let anyone detect). Plain tables in both modes.
CREATE TABLE transparency_leaf (
    leaf_index   bigint PRIMARY KEY CHECK (leaf_index >= 0),
    record_id    text NOT NULL UNIQUE,     -- no foreign key: the leaf outlives a deleted record
    leaf_hash    bytea NOT NULL CHECK (length(leaf_hash) = 32),
    appended_at  timestamptz NOT NULL DEFAULT now()
);

-- One signed tree head per tree size; `document` is the signed file as served.
CREATE TABLE transparency_tree_head (
    tree_size    bigint PRIMARY KEY CHECK (tree_size >= 0),
    root_hash    bytea NOT NULL CHECK (length(root_hash) = 32),
    key_id       text NOT NULL,
    document     bytea NOT NULL,
    signed_at    timestamptz NOT NULL DEFAULT now()
);

-- Records issued before this version join the log in the order they were issued.
INSERT INTO transparency_leaf (leaf_index, record_id, leaf_hash)
SELECT row_number() OVER (ORDER BY issued_at, id) - 1, id, sha256(decode('00', 'hex') || document)
FROM reference_record;

CREATE FUNCTION transparency_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the transparency log is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END $$;

CREATE TRIGGER transparency_leaf_append_only BEFORE UPDATE OR DELETE ON transparency_leaf
    FOR EACH ROW EXECUTE FUNCTION transparency_refuse_change();
CREATE TRIGGER transparency_leaf_no_truncate BEFORE TRUNCATE ON transparency_leaf
    FOR EACH STATEMENT EXECUTE FUNCTION transparency_refuse_change();
CREATE TRIGGER transparency_tree_head_append_only BEFORE UPDATE OR DELETE ON transparency_tree_head
    FOR EACH ROW EXECUTE FUNCTION transparency_refuse_change();
CREATE TRIGGER transparency_tree_head_no_truncate BEFORE TRUNCATE ON transparency_tree_head
    FOR EACH STATEMENT EXECUTE FUNCTION transparency_refuse_change();

-- The next index is max + 1 under a lock held to commit, so concurrent issuers queue rather than
-- fork the log (SHARE ROW EXCLUSIVE conflicts with itself, not with readers).
CREATE FUNCTION transparency_append_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE transparency_leaf IN SHARE ROW EXCLUSIVE MODE;
    INSERT INTO transparency_leaf (leaf_index, record_id, leaf_hash)
    SELECT coalesce(max(leaf_index) + 1, 0), NEW.id, sha256(decode('00', 'hex') || NEW.document)
    FROM transparency_leaf;
    RETURN NULL;
END $$;

CREATE TRIGGER reference_record_logged AFTER INSERT ON reference_record
    FOR EACH ROW EXECUTE FUNCTION transparency_append_record();
