-- XEP-0313 message archives: what an archive's owner sent and received, in order.
--
-- An owner is a bare JID with an archive: an account's (the user archive, which goes with
-- the account: ON DELETE CASCADE through `account_id`), and later a room's (no account).
-- Archive rows name their owner by a small integer rather than by the JID text, which
-- keeps the rows and their indexes short at millions of messages.
--
-- Never edit this file once released: add a new numbered file instead.

CREATE TABLE archive_owners (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The owner's bare JID, as the server normalised it.
    jid        TEXT    NOT NULL UNIQUE,
    -- The account whose archive this is; NULL for an owner that is not an account.
    account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    -- XEP-0313 §6 preferences as the server serialised them; NULL: the server's default.
    prefs      TEXT
);

CREATE INDEX archive_owners_account ON archive_owners (account_id);

CREATE TABLE archive (
    -- The archive's order: AUTOINCREMENT so a number is never handed out twice, and rows
    -- come in the order their transactions committed (one writer per database).
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id      INTEGER NOT NULL REFERENCES archive_owners(id) ON DELETE CASCADE,
    -- The opaque archive id clients see (XEP-0359 stanza-id, RSM UIDs): random, so it
    -- tells nothing about the archive's size or other owners' traffic.
    id            TEXT    NOT NULL,
    -- The other party: its bare JID, and its resource if it had one.
    with_jid      TEXT    NOT NULL,
    with_resource TEXT    NOT NULL DEFAULT '',
    -- 1: the owner sent it; 0: the owner received it.
    outgoing      BOOLEAN NOT NULL CHECK (outgoing IN (0, 1)),
    -- Unix seconds when it was archived.
    stamp         INTEGER NOT NULL,
    -- The message as the server serialised it.
    stanza        TEXT    NOT NULL
);

-- "Everything after N", "the last page": a range scan of one owner's rows in order.
-- Also the index the cascade from archive_owners uses.
CREATE INDEX archive_owner_seq ON archive (owner_id, seq);
-- "The last 50 messages with X" (XEP-0313 §4.1.1 `with`).
CREATE INDEX archive_owner_with ON archive (owner_id, with_jid, seq);
-- `start` and `end` (§4.1.2), and retention by age.
CREATE INDEX archive_owner_stamp ON archive (owner_id, stamp);
-- An id to its place (after-id, before-id, RSM after/before, ids), within its owner only.
CREATE UNIQUE INDEX archive_owner_id ON archive (owner_id, id);
