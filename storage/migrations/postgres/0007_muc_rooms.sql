-- Persistent Multi-User Chat rooms: the same shape as migrations/sqlite/0007_muc_rooms.sql
-- (which explains the choices), in PostgreSQL types.
--
-- Never edit this file once released: add a new numbered file instead.

CREATE TABLE muc_rooms (
    -- COLLATE "C" so rooms list in the same (byte) order as in SQLite.
    jid                 TEXT   NOT NULL PRIMARY KEY COLLATE "C",
    host                TEXT   NOT NULL,
    config              TEXT   NOT NULL,
    subject             TEXT   NOT NULL DEFAULT '',
    subject_nick        TEXT,
    subject_occupant_id TEXT,
    updated_at          BIGINT NOT NULL
);

CREATE INDEX muc_rooms_host ON muc_rooms (host);

CREATE TABLE muc_affiliations (
    room        TEXT NOT NULL COLLATE "C" REFERENCES muc_rooms(jid) ON DELETE CASCADE,
    jid         TEXT NOT NULL COLLATE "C",
    affiliation TEXT NOT NULL CHECK (affiliation IN ('owner', 'admin', 'member', 'outcast')),
    nick        TEXT,
    reason      TEXT,
    PRIMARY KEY (room, jid)
);
