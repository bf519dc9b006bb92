-- Publish-subscribe nodes and their items (XEP-0060), first for XEP-0163 personal eventing:
-- each account's bare JID is a pubsub service whose nodes hold its avatar, nickname,
-- bookmarks and OMEMO keys. A service of its own (pubsub.HOST) keeps its nodes here too,
-- under its own name and with no account.
--
-- A node's configuration is one text column holding what the server serialized (JSON), as
-- for MUC rooms (0007): a node is always read whole, and a setting added later is one more
-- key instead of a migration.
--
-- Never edit this file once released: add a new numbered file instead.

CREATE TABLE pubsub_nodes (
    id         INTEGER PRIMARY KEY,
    -- The service's JID: an account's bare JID for PEP.
    service    TEXT    NOT NULL,
    node       TEXT    NOT NULL,
    -- The account whose PEP service this is: its nodes go with it (ON DELETE CASCADE).
    -- NULL for a service that belongs to no account.
    account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    config     TEXT    NOT NULL,
    -- The order number of the node's last published item: items are numbered per node, so
    -- the newest are found without comparing timestamps a clock may repeat.
    item_seq   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    UNIQUE (service, node)
);

-- The account's nodes: the cascade of an account's removal, and the contacts' login read
-- (the newest items of the accounts that share their presence with a contact).
CREATE INDEX pubsub_nodes_account ON pubsub_nodes (account_id);

-- One row per item id in a node; publishing an id again replaces the item and makes it the
-- newest.
CREATE TABLE pubsub_items (
    node_id      INTEGER NOT NULL REFERENCES pubsub_nodes(id) ON DELETE CASCADE,
    item_id      TEXT    NOT NULL,
    -- The bare JID that published it.
    publisher    TEXT    NOT NULL,
    -- The payload element as the server serialized it.
    payload      TEXT    NOT NULL,
    -- Unix seconds.
    published_at INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    PRIMARY KEY (node_id, item_id)
);

-- Newest first: retrieval of the N most recent items, the last published item, and
-- dropping the oldest beyond the node's max_items.
CREATE INDEX pubsub_items_order ON pubsub_items (node_id, seq);
