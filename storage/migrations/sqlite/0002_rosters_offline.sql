-- Rosters (RFC 6121 §2–3) and offline messages (XEP-0160).
--
-- Never edit this file once released (see 0001); add a new numbered file.

-- The roster version (XEP-0237 / RFC 6121 §2.6) is a column of the account
-- rather than a table of its own: every account has exactly one, it lives
-- and dies with the account row, and a roster write starts with
-- `UPDATE accounts SET roster_version = roster_version + 1 … RETURNING`,
-- which finds the account, bumps the version and (in PostgreSQL) locks the
-- account row in one statement, so concurrent writes to one roster get
-- distinct versions in commit order. Existing rows get 0.
ALTER TABLE accounts
    ADD COLUMN roster_version INTEGER NOT NULL DEFAULT 0 CHECK (roster_version >= 0);

-- One row per (account, contact): the roster item when `in_roster`, and the
-- subscription state either way, since an inbound subscription request can
-- be pending for a contact that is not (yet) in the roster.
CREATE TABLE roster_entries (
    account_id        INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    -- Bare JID, normalised by the caller; compared byte for byte.
    contact           TEXT    NOT NULL,
    name              TEXT,
    subscription      TEXT    NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
    -- SQLite has no boolean type: the CHECKs keep them 0/1 so that both
    -- backends decode the same values.
    pending_out       BOOLEAN NOT NULL CHECK (pending_out IN (0, 1)),
    pending_in        BOOLEAN NOT NULL CHECK (pending_in IN (0, 1)),
    approved          BOOLEAN NOT NULL CHECK (approved IN (0, 1)),
    in_roster         BOOLEAN NOT NULL CHECK (in_roster IN (0, 1)),
    -- The serialized inbound subscribe, re-delivered at the next login.
    pending_in_stanza TEXT,
    -- Account first: a roster load is one range scan of this index.
    PRIMARY KEY (account_id, contact)
);

-- Groups in their own rows rather than an encoded list in the entry: group
-- names are arbitrary text (no separator is safe), and `position` keeps the
-- order the client gave. Replacing an entry's groups is delete + insert.
CREATE TABLE roster_groups (
    account_id INTEGER NOT NULL,
    contact    TEXT    NOT NULL,
    position   INTEGER NOT NULL CHECK (position >= 0),
    name       TEXT    NOT NULL,
    PRIMARY KEY (account_id, contact, position),
    -- Removing the entry (or, through it, the account) removes its groups.
    FOREIGN KEY (account_id, contact)
        REFERENCES roster_entries(account_id, contact) ON DELETE CASCADE
);

CREATE TABLE offline_messages (
    -- AUTOINCREMENT: ids are never reused. Without it SQLite hands out
    -- max(id) + 1, so after a delivery emptied the table a new message could
    -- get the id of one just delivered, and a late delete_offline for the
    -- old id would delete the new, undelivered message. Ids also give the
    -- delivery order (oldest first).
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    stanza     TEXT    NOT NULL,
    -- Unix seconds.
    stored_at  INTEGER NOT NULL
);

-- An account's messages in order with one range scan; also the index the
-- ON DELETE CASCADE from accounts needs.
CREATE INDEX offline_messages_account ON offline_messages (account_id, id);
