-- XEP-0060 §4.5 `authorize` access model: a subscription waits for an owner's approval
-- (§6.1.2, `subscription='pending'`) and is kept as such until the owner answers (§8.6),
-- across restarts. Subscriptions made before this file are approved ones.
--
-- Never edit this file once released: add a new numbered file instead.

ALTER TABLE pubsub_subscriptions ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
