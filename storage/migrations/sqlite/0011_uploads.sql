-- XEP-0363 HTTP File Upload: one row per slot a user was given, kept as the file once the
-- upload completed (`completed_at` set). The file itself lives on disk under `data_dir`,
-- named by `id`; this row is what quota and expiry are decided from, so both survive a
-- restart. Only complete files count towards a quota.
--
-- The owner is the account's name, not a reference to its row: an account's uploads stay
-- reachable by their URLs (shared in chats) until they expire, as Prosody's do.
--
-- Never edit this file once released: add a new numbered file instead.

CREATE TABLE uploads (
    -- The random, unguessable slot id: the URL path segment and the file's name on disk.
    id              TEXT    NOT NULL PRIMARY KEY,
    username        TEXT    NOT NULL,
    domain          TEXT    NOT NULL,
    filename        TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    content_type    TEXT,
    created_at      INTEGER NOT NULL,
    -- Unix seconds after which a PUT to the slot is refused.
    slot_expires_at INTEGER NOT NULL,
    -- Unix seconds the upload completed; NULL while the slot waits for its PUT.
    completed_at    INTEGER
);

-- A user's quota sums the sizes of their complete files.
CREATE INDEX uploads_owner ON uploads (domain, username);
-- The expiry sweep: complete files by age, waiting slots by their deadline.
CREATE INDEX uploads_completed ON uploads (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX uploads_waiting ON uploads (slot_expires_at) WHERE completed_at IS NULL;
