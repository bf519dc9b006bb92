-- Accounts and their SCRAM credentials; the same shape as
-- migrations/sqlite/0001_accounts.sql, in PostgreSQL types.
--
-- `accounts.id` is the anchor for everything an account owns. Later tables
-- (roster_items, offline_messages, archives) reference it with
-- `REFERENCES accounts(id) ON DELETE CASCADE`, so removing an account is one
-- DELETE that cleans up all of its data.
--
-- Never edit this file once released: sqlx records its checksum. Add a new
-- numbered file instead.

CREATE TABLE accounts (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Both already normalised by the caller; compared byte for byte.
    -- COLLATE "C" so ORDER BY matches SQLite's byte order, not the locale's.
    username   TEXT   NOT NULL COLLATE "C",
    domain     TEXT   NOT NULL COLLATE "C",
    -- Unix seconds, like the SQLite schema, so both backends share the code
    -- that writes it.
    created_at BIGINT NOT NULL,
    UNIQUE (domain, username)
);

-- One row per SCRAM hash (RFC 5802 §3); never the password.
CREATE TABLE scram_credentials (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    hash       TEXT   NOT NULL CHECK (hash IN ('SHA-1', 'SHA-256')),
    salt       BYTEA  NOT NULL,
    -- BIGINT: PostgreSQL has no unsigned INTEGER and a u32 may exceed i32.
    iterations BIGINT NOT NULL CHECK (iterations > 0 AND iterations <= 4294967295),
    stored_key BYTEA  NOT NULL,
    server_key BYTEA  NOT NULL,
    PRIMARY KEY (account_id, hash)
);
