-- XEP-0237 roster versions stay distinct across an account's removal and re-creation: a
-- client that cached version N of a removed account must not be told "up to date" by a
-- new account of the same name whose counter reached N again. Removing an account raises
-- this floor above its last version; a new account's version starts at the floor. So
-- versions only grow for a given name, whatever happens to the account row.
--
-- Never edit this file once released (see 0001); add a new numbered file.

CREATE TABLE roster_version_floor (
    -- A single row.
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL CHECK (version >= 0)
);

-- Accounts removed before this migration left no trace; starting above every version in
-- use is the best guess for them.
INSERT INTO roster_version_floor (id, version)
    SELECT 1, COALESCE(MAX(roster_version) + 1, 0) FROM accounts;
