-- See migrations/sqlite/0003_roster_contact_index.sql.
--
-- Never edit this file once released: add a new numbered file instead.

CREATE INDEX roster_entries_contact ON roster_entries (contact);
