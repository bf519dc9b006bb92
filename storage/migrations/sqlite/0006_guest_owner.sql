-- Guests (SASL ANONYMOUS accounts, which have no credentials) carry the id of the server
-- node that created them, so a node's start-up sweep of the guests a crash left behind
-- removes only its own, never the live guests of another node sharing this database.
-- NULL for every other account, and for guests created before this migration.
--
-- Never edit this file once released: add a new numbered file instead.

ALTER TABLE accounts ADD COLUMN guest_owner TEXT NULL;

CREATE INDEX accounts_guest_owner ON accounts (guest_owner) WHERE guest_owner IS NOT NULL;
