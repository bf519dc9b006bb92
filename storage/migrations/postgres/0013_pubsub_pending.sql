-- Pending subscriptions of the `authorize` access model: the same change as
-- migrations/sqlite/0012_pubsub_pending.sql (which explains it), in PostgreSQL types.
--
-- Never edit this file once released: add a new numbered file instead.

ALTER TABLE pubsub_subscriptions ADD COLUMN pending BOOLEAN NOT NULL DEFAULT FALSE;
