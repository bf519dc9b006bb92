-- Affiliations and explicit subscriptions of publish-subscribe nodes: the same shape as
-- migrations/sqlite/0010_pubsub_service.sql (which explains the choices), in PostgreSQL
-- types.
--
-- Never edit this file once released: add a new numbered file instead.

CREATE TABLE pubsub_affiliations (
    node_id     BIGINT NOT NULL REFERENCES pubsub_nodes(id) ON DELETE CASCADE,
    jid         TEXT   NOT NULL COLLATE "C",
    affiliation TEXT   NOT NULL,
    PRIMARY KEY (node_id, jid)
);

CREATE INDEX pubsub_affiliations_jid ON pubsub_affiliations (jid);

CREATE TABLE pubsub_subscriptions (
    node_id    BIGINT NOT NULL REFERENCES pubsub_nodes(id) ON DELETE CASCADE,
    jid        TEXT   NOT NULL COLLATE "C",
    bare       TEXT   NOT NULL COLLATE "C",
    subid      TEXT   NOT NULL,
    options    TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (node_id, jid)
);

CREATE INDEX pubsub_subscriptions_bare ON pubsub_subscriptions (bare);
