-- Prosody 0.12 (Debian bookworm package) with mod_mam on SQL storage (SQLite)
-- for the archive and mam-query scenarios: bench/configs/prosody.cfg.lua with
-- every difference marked "MAM:"; see docs/performance.md. bench/compare.sh copies this file into
-- a fresh run directory and replaces @RUNDIR@ (that directory) and @PORT@
-- (the client port) before starting `prosody --config FILE -F`.
--
-- Starting point: the package's /etc/prosody/prosody.cfg.lua. Every line
-- that differs from it carries a "CHANGED:" comment saying why. Everything
-- not mentioned (storage = internal files, the epoll network backend,
-- stanza size limits of 256 KiB, ...) is the package default.

-- CHANGED: the benchmark runs as root on a throwaway machine; Prosody
-- refuses to start as root without this.
run_as_root = true

-- CHANGED: every file in the run directory instead of /run and /var (no
-- syslog); compare.sh starts it with -F (foreground).
pidfile = "@RUNDIR@/prosody.pid"
data_path = "@RUNDIR@/data"
log = { warn = "@RUNDIR@/prosody.log" } -- CHANGED: warn, not info, so logging costs nothing per login

admins = { }

-- CHANGED: no plugin_paths (/usr/local/lib/prosody/modules is empty here).

modules_enabled = {
	-- Generally required
		"disco";
		"roster"; -- rosters and presence subscriptions (the benchmark's "roster on")
		"saslauth";
		"tls"; -- STARTTLS is offered but not required (see c2s_require_encryption)
	-- Not essential, but recommended
		"blocklist";
		"bookmarks";
		"carbons";
		-- CHANGED: "dialback" removed: there is no server-to-server traffic.
		-- CHANGED: "limits" removed: it is the bandwidth shaper (10 kb/s per
		-- c2s connection in the package config); the comparison runs
		-- every server without rate limits.
		"pep";
		"private";
		"smacks";
		"vcard4";
		"vcard_legacy";
	-- Nice to have
		"csi_simple";
		-- CHANGED: "invites", "invites_adhoc", "invites_register" removed:
		-- invitation-only registration is not used; plain XEP-0077 is.
		"ping"; -- XEP-0199, the idle scenario pings every session
		"register"; -- XEP-0077, the load generator provisions accounts with it
		"time";
		"uptime";
		"version";
		"mam"; -- MAM: XEP-0313 message archive (commented out in the package config)
	-- Admin interfaces
		"admin_adhoc";
		-- CHANGED: "admin_shell" removed: it opens a UNIX socket under
		-- data_path that nothing uses here.
	-- Other specific functionality
		"posix"; -- writes the pidfile; `prosody -F` keeps it in the foreground
}

modules_disabled = {
	-- "offline" stays enabled (default): messages to offline users are stored.
	-- CHANGED: no server-to-server module at all.
	"s2s";
}

-- CHANGED: loopback only, our own port; no s2s and no HTTP listeners.
interfaces = { "127.0.0.1" }
c2s_ports = { @PORT@ }
c2s_direct_tls_ports = { }
s2s_ports = { }
http_ports = { }
https_ports = { }
component_ports = { }

-- CHANGED: the package config has a `limits` table (c2s rate = "10kb/s");
-- it is gone, and mod_limits is not loaded (above), so nothing throttles.

-- CHANGED: TLS is on (STARTTLS offered) but not required, alike for all
-- servers; the load generator chooses plaintext or STARTTLS per run. Same
-- self-signed certificate (ECDSA P-256) for every server.
c2s_require_encryption = false
allow_unencrypted_plain_auth = true -- the PLAIN login runs go without TLS
certificates = "@RUNDIR@/../tls" -- CHANGED: not /etc/prosody/certs
ssl = {
	certificate = "@RUNDIR@/../tls/cert.pem";
	key = "@RUNDIR@/../tls/key.pem";
}
s2s_secure_auth = false -- (no s2s; the package's `true` would only warn)

-- Same password storage for every server: SCRAM-SHA-1 keys with 4096
-- PBKDF2 iterations. internal_hashed is the package default.
authentication = "internal_hashed"
-- CHANGED: Prosody 0.12 defaults to 10000 iterations (mod_auth_internal_hashed
-- default_iteration_count); the comparison uses 4096 for all servers.
default_iteration_count = 4096

-- CHANGED: in-band registration (XEP-0077) on, for the load generator's
-- provisioning and the register scenario. mod_register_limits does not
-- throttle unless min_seconds_between_registrations is set (it is not).
allow_registration = true

-- MAM: the archive store on SQL (mod_storage_sql, LuaDBI's SQLite3 driver from
-- the Debian package lua-dbi-sqlite3), in data_path/prosody.sqlite; every other
-- store stays internal (files), as in bench/configs/prosody.cfg.lua, so the
-- archive is the only difference. mod_storage_sql creates its tables on start.
storage = { archive = "sql" }
sql = { driver = "SQLite3", database = "prosody.sqlite" }
-- MAM: kept until removed, like Jabberwock's default (retention_days = 0); the
-- package config's "1w" would only add a daily cleanup. The default policy
-- stays mod_mam's default_archive_policy = true: archive every conversation.
archive_expires_after = "never"

VirtualHost "localhost"
-- CHANGED: no Include "conf.d/*.cfg.lua" (nothing of /etc is read).

-- CHANGED: group chat for the muc scenario: the package config's commented
-- example, enabled. Everything else is mod_muc's default (rooms locked until
-- their creator asks for an instant room, 20 messages of history, no rate
-- limit: mod_muc_limits is not loaded).
Component "conference.localhost" "muc"
