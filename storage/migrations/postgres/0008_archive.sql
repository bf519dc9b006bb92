-- XEP-0313 message archives: the same shape as migrations/sqlite/0008_archive.sql (which
-- explains the choices), in PostgreSQL types.
--
-- Never edit this file once released: add a new numbered file instead.

CREATE TABLE archive_owners (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    jid        TEXT   NOT NULL UNIQUE COLLATE "C",
    account_id BIGINT REFERENCES accounts(id) ON DELETE CASCADE,
    prefs      TEXT
);

CREATE INDEX archive_owners_account ON archive_owners (account_id);

CREATE TABLE archive (
    -- Identity values are never reused. One writer task per server appends in one
    -- transaction at a time, so within a server's writes the order is the commit order.
    seq           BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id      BIGINT   NOT NULL REFERENCES archive_owners(id) ON DELETE CASCADE,
    id            TEXT     NOT NULL COLLATE "C",
    with_jid      TEXT     NOT NULL COLLATE "C",
    with_resource TEXT     NOT NULL DEFAULT '' COLLATE "C",
    outgoing      BOOLEAN  NOT NULL,
    stamp         BIGINT   NOT NULL,
    stanza        TEXT     NOT NULL
);

CREATE INDEX archive_owner_seq ON archive (owner_id, seq);
CREATE INDEX archive_owner_with ON archive (owner_id, with_jid, seq);
CREATE INDEX archive_owner_stamp ON archive (owner_id, stamp);
CREATE UNIQUE INDEX archive_owner_id ON archive (owner_id, id);
