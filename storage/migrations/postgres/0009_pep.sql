-- Publish-subscribe nodes and their items: the same shape as migrations/sqlite/0009_pep.sql
-- (which explains the choices), in PostgreSQL types.
--
-- Never edit this file once released: add a new numbered file instead.

CREATE TABLE pubsub_nodes (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- COLLATE "C" so nodes list in the same (byte) order as in SQLite.
    service    TEXT   NOT NULL COLLATE "C",
    node       TEXT   NOT NULL COLLATE "C",
    account_id BIGINT REFERENCES accounts(id) ON DELETE CASCADE,
    config     TEXT   NOT NULL,
    item_seq   BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (service, node)
);

CREATE INDEX pubsub_nodes_account ON pubsub_nodes (account_id);

CREATE TABLE pubsub_items (
    node_id      BIGINT NOT NULL REFERENCES pubsub_nodes(id) ON DELETE CASCADE,
    item_id      TEXT   NOT NULL COLLATE "C",
    publisher    TEXT   NOT NULL,
    payload      TEXT   NOT NULL,
    published_at BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    PRIMARY KEY (node_id, item_id)
);

CREATE INDEX pubsub_items_order ON pubsub_items (node_id, seq);
