-- What four server modules keep per account: private XML (XEP-0049), vCards (XEP-0054,
-- with XEP-0153 photo hashes), blocklists (XEP-0191) and last activity (XEP-0012). Like
-- everything an account owns, each row goes with the account (ON DELETE CASCADE, see
-- 0001); each primary key starts with the account, so it is also the index that cascade
-- and the account's reads use.
--
-- Never edit this file once released (see 0001); add a new numbered file.

-- One element per (account, namespace), as the server serialized it.
CREATE TABLE private_storage (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    namespace  TEXT    NOT NULL,
    xml        TEXT    NOT NULL,
    PRIMARY KEY (account_id, namespace)
);

-- One vCard per account. The photo hash has a column of its own: every available
-- presence carries it, and reading it must not load a vCard that may embed a photo.
-- NULL: no hash to advertise.
CREATE TABLE vcards (
    account_id INTEGER NOT NULL PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    xml        TEXT    NOT NULL,
    photo_hash TEXT
);

-- One row per blocked JID (normalised by the caller, compared byte for byte). The
-- primary key, account first, is the index a blocklist read scans, in JID order.
CREATE TABLE blocklist (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    jid        TEXT    NOT NULL,
    PRIMARY KEY (account_id, jid)
);

-- When the account's last session ended (Unix seconds) and the status it left with.
CREATE TABLE last_activity (
    account_id    INTEGER NOT NULL PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    logged_out_at INTEGER NOT NULL,
    status        TEXT    NOT NULL
);
