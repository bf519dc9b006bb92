-- The message of the day of each served domain (XEP-0133 §4.23-4.25): sent to the
-- domain's users as they log in. One row per domain that has one.
--
-- Never edit this file once released: add a new numbered file instead.

CREATE TABLE motd (
    domain TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    body TEXT NOT NULL
);
