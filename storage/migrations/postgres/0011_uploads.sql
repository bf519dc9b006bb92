-- XEP-0363 HTTP File Upload: the same shape as migrations/sqlite/0011_uploads.sql (which
-- explains the choices), in PostgreSQL types.
--
-- Never edit this file once released: add a new numbered file instead.

CREATE TABLE uploads (
    id              TEXT   NOT NULL PRIMARY KEY COLLATE "C",
    username        TEXT   NOT NULL,
    domain          TEXT   NOT NULL,
    filename        TEXT   NOT NULL,
    size            BIGINT NOT NULL,
    content_type    TEXT,
    created_at      BIGINT NOT NULL,
    slot_expires_at BIGINT NOT NULL,
    completed_at    BIGINT
);

CREATE INDEX uploads_owner ON uploads (domain, username);
CREATE INDEX uploads_completed ON uploads (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX uploads_waiting ON uploads (slot_expires_at) WHERE completed_at IS NULL;
