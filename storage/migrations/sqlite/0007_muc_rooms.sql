-- Persistent Multi-User Chat rooms (XEP-0045 §10.2 muc#roomconfig_persistentroom): a room
-- kept while no one is in it and across restarts. Temporary rooms are never written here.
--
-- The configuration is one text column holding what the server serialized (JSON): rooms
-- are always read whole, nothing selects rooms by a setting, and a setting added later is
-- then one more key (absent from older rows, where the server's default applies) instead
-- of a migration per field.
--
-- Never edit this file once released: add a new numbered file instead.

CREATE TABLE muc_rooms (
    -- The bare room JID, room@service, as the server normalised it.
    jid                 TEXT    NOT NULL PRIMARY KEY,
    -- The host whose service the room belongs to: start-up loads rooms per host.
    host                TEXT    NOT NULL,
    config              TEXT    NOT NULL,
    -- §8.1: the subject, and the nickname and XEP-0421 occupant id of who set it.
    subject             TEXT    NOT NULL DEFAULT '',
    subject_nick        TEXT,
    subject_occupant_id TEXT,
    updated_at          INTEGER NOT NULL
);

CREATE INDEX muc_rooms_host ON muc_rooms (host);

-- §5.2: one row per bare JID (or domain) with an affiliation other than none; they go
-- with the room (ON DELETE CASCADE). The primary key, room first, is the index a room's
-- load and its changes use.
CREATE TABLE muc_affiliations (
    room        TEXT NOT NULL REFERENCES muc_rooms(jid) ON DELETE CASCADE,
    jid         TEXT NOT NULL,
    affiliation TEXT NOT NULL CHECK (affiliation IN ('owner', 'admin', 'member', 'outcast')),
    nick        TEXT,
    reason      TEXT,
    PRIMARY KEY (room, jid)
);
