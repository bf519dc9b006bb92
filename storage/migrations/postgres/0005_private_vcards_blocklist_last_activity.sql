-- Private XML, vCards, blocklists and last activity: the same shape as
-- migrations/sqlite/0005_private_vcards_blocklist_last_activity.sql (which explains the
-- choices), in PostgreSQL types.
--
-- Never edit this file once released: add a new numbered file instead.

CREATE TABLE private_storage (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    namespace  TEXT   NOT NULL COLLATE "C",
    xml        TEXT   NOT NULL,
    PRIMARY KEY (account_id, namespace)
);

CREATE TABLE vcards (
    account_id BIGINT NOT NULL PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    xml        TEXT   NOT NULL,
    photo_hash TEXT
);

CREATE TABLE blocklist (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    -- COLLATE "C" so a blocklist lists in the same (byte) order as in SQLite.
    jid        TEXT   NOT NULL COLLATE "C",
    PRIMARY KEY (account_id, jid)
);

CREATE TABLE last_activity (
    account_id    BIGINT NOT NULL PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    logged_out_at BIGINT NOT NULL,
    status        TEXT   NOT NULL
);
