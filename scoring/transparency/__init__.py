"""The transparency log of reference records (Certificate Transparency's design, RFC 9162).

    merkle      RFC 9162 tree hashing, inclusion and consistency proofs and their verification
    tree_head   signed tree heads: the log's Ed25519 signature over its size and root
    log         the log in PostgreSQL: leaves, tree heads, proofs served from them
    bundle      a record with its inclusion proof and tree head, verified offline

Every stored reference record is a leaf (SHA-256(0x00 || the record file's bytes)), appended in
the transaction that stores it; README, *Transparency log*, has the whole picture.
"""
