-- Rosters (RFC 6121 §2–3) and offline messages (XEP-0160); the same shape as
-- migrations/sqlite/0002_rosters_offline.sql (which explains the choices),
-- in PostgreSQL types.
--
-- Never edit this file once released: add a new numbered file instead.

-- A column on accounts: see the SQLite file. Roster writes start with an
-- UPDATE of this row, which serialises them per account.
ALTER TABLE accounts
    ADD COLUMN roster_version BIGINT NOT NULL DEFAULT 0 CHECK (roster_version >= 0);

CREATE TABLE roster_entries (
    account_id        BIGINT  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    -- COLLATE "C" so a roster lists in the same (byte) order as in SQLite.
    contact           TEXT    NOT NULL COLLATE "C",
    name              TEXT,
    subscription      TEXT    NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
    pending_out       BOOLEAN NOT NULL,
    pending_in        BOOLEAN NOT NULL,
    approved          BOOLEAN NOT NULL,
    in_roster         BOOLEAN NOT NULL,
    pending_in_stanza TEXT,
    PRIMARY KEY (account_id, contact)
);

CREATE TABLE roster_groups (
    account_id BIGINT  NOT NULL,
    contact    TEXT    NOT NULL COLLATE "C",
    position   INTEGER NOT NULL CHECK (position >= 0),
    name       TEXT    NOT NULL,
    PRIMARY KEY (account_id, contact, position),
    FOREIGN KEY (account_id, contact)
        REFERENCES roster_entries(account_id, contact) ON DELETE CASCADE
);

CREATE TABLE offline_messages (
    -- Identity values are never reused. Inserts for one account are
    -- serialised on the account row (store_offline locks it to enforce the
    -- limit), so within an account id order is storage order.
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    stanza     TEXT   NOT NULL,
    stored_at  BIGINT NOT NULL
);

CREATE INDEX offline_messages_account ON offline_messages (account_id, id);
