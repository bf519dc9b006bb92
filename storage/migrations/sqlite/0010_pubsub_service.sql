-- Affiliations and explicit subscriptions of publish-subscribe nodes (XEP-0060 §4.1, §6.1),
-- what a service of its own (pubsub.HOST) keeps beside the nodes and items of 0009. A
-- personal eventing node (XEP-0163) has none: its owner is the account, its subscribers
-- the account's presence subscribers.
--
-- Never edit this file once released: add a new numbered file instead.

-- One row per JID with an affiliation other than none; the node's creator is its first
-- owner.
CREATE TABLE pubsub_affiliations (
    node_id     INTEGER NOT NULL REFERENCES pubsub_nodes(id) ON DELETE CASCADE,
    -- A bare JID (affiliations are per bare JID, §4.1).
    jid         TEXT    NOT NULL,
    -- owner, publisher, publish-only, member or outcast.
    affiliation TEXT    NOT NULL,
    PRIMARY KEY (node_id, jid)
);

-- An entity's own affiliations across the service's nodes (§5.7).
CREATE INDEX pubsub_affiliations_jid ON pubsub_affiliations (jid);

-- One subscription per subscribed JID and node.
CREATE TABLE pubsub_subscriptions (
    node_id    INTEGER NOT NULL REFERENCES pubsub_nodes(id) ON DELETE CASCADE,
    -- The JID notifications go to, as the subscriber gave it: bare or full.
    jid        TEXT    NOT NULL,
    -- Its bare JID: an entity's own subscriptions (§5.6) include its resources'.
    bare       TEXT    NOT NULL,
    -- The subscription's id (§6.1.2), made by the server.
    subid      TEXT    NOT NULL,
    -- Its options (§6.3) as the server serialized them (JSON).
    options    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (node_id, jid)
);

CREATE INDEX pubsub_subscriptions_bare ON pubsub_subscriptions (bare);
