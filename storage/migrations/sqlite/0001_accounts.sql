-- Accounts and their SCRAM credentials.
--
-- `accounts.id` is the anchor for everything an account owns. Later tables
-- (roster_items, offline_messages, archives) reference it with
-- `REFERENCES accounts(id) ON DELETE CASCADE`, so removing an account is one
-- DELETE that cleans up all of its data. That needs `PRAGMA foreign_keys = ON`,
-- which the store sets on every connection (SQLite defaults it to off).
--
-- Never edit this file once released: sqlx records its checksum and refuses
-- to start against a database migrated with a different version. Add a new
-- numbered file instead.

CREATE TABLE accounts (
    id         INTEGER PRIMARY KEY,
    -- Both already normalised (nodeprep / nameprep) by the caller; the store
    -- compares them byte for byte.
    username   TEXT    NOT NULL,
    domain     TEXT    NOT NULL,
    -- Unix seconds, so it sorts and compares without date parsing.
    created_at INTEGER NOT NULL,
    -- Domain first: listing one virtual host's accounts is an index range scan.
    UNIQUE (domain, username)
);

-- One row per SCRAM hash (RFC 5802 §3). The password itself is never stored,
-- only what a server needs to verify a client proof and prove itself.
CREATE TABLE scram_credentials (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    hash       TEXT    NOT NULL CHECK (hash IN ('SHA-1', 'SHA-256')),
    salt       BLOB    NOT NULL,
    iterations INTEGER NOT NULL CHECK (iterations > 0),
    stored_key BLOB    NOT NULL,
    server_key BLOB    NOT NULL,
    PRIMARY KEY (account_id, hash)
);
