-- Which accounts have a given contact in their roster: a login asks it once for all its
-- presence probes (RFC 6121 §4.3), and without this index it is a scan of every entry.
--
-- Never edit this file once released (see 0001); add a new numbered file.

CREATE INDEX roster_entries_contact ON roster_entries (contact);
