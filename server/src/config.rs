//! Server configuration: the TOML file format, its defaults and its validation.
//!
//! Every key is declared exactly once, as a field of one of the structs below,
//! with its doc comment; its default lives in the struct's `Default` impl.
//! Every key is optional: an empty file, or no file at all, gives the
//! zero-config setup (`Config::default()`), which serves `localhost` on the
//! loopback interfaces with a self-signed certificate.
//!
//! `config.example.toml` at the repository root lists every key with its
//! default; a test below parses it and compares it with `Config::default()` so
//! the two cannot drift apart.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// What `ConfigError::file` says when the text did not come from a file.
const NO_FILE: &str = "<default config>";

/// Upper bound for the second-valued timeouts. Larger values are almost
/// certainly typos, and keeping them bounded means `Instant + timeout` can
/// never overflow (which would panic) anywhere in the server.
const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 60 * 60;

/// Upper bound for `c2s.auth_failure_delay_ms`: the delay is multiplied by the
/// number of recent failures, so it must stay small enough not to overflow and
/// not to hold connections open for hours.
const MAX_AUTH_FAILURE_DELAY_MS: u64 = 60_000;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The file this configuration was read from; `None` for the built-in
    /// defaults. Not a TOML key.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// `data_dir` (default `"data"`): where the SQLite file and the generated
    /// certificate live. Relative paths are relative to the working directory.
    pub data_dir: PathBuf,
    /// `[log]`
    pub log: LogConfig,
    /// `[storage]`
    pub storage: StorageConfig,
    /// `[tls]`
    pub tls: TlsConfig,
    /// `[c2s]`
    pub c2s: C2sConfig,
    /// `[flash]`
    pub flash: FlashConfig,
    /// `[http]`
    pub http: HttpConfig,
    /// `[auth]`
    pub auth: AuthConfig,
    /// `[roster]`
    pub roster: RosterConfig,
    /// `[offline]`
    pub offline: OfflineConfig,
    /// `[metrics]`
    pub metrics: MetricsConfig,
    /// `[modules.NAME]`: each module's own table (`enabled`, and the module's keys), checked
    /// against the module when the file is loaded (`modules::config`).
    pub modules: crate::modules::config::ModuleTables,
    /// `[hosts."<domain>"]`: the virtual hosts, one table per domain. Keys are
    /// lowercased during validation. Default: just `localhost`. Writing any
    /// `[hosts.…]` table replaces the default, so `localhost` is then only
    /// served if it is listed too.
    pub hosts: BTreeMap<String, HostConfig>,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `log.level` (default `"info"`): tracing filter used when `RUST_LOG` is
    /// not set, e.g. `"info"` or `"jabberwock=debug"`.
    pub level: String,
    /// `log.format` (default `"text"`): how each line is written to stderr.
    pub format: LogFormat,
}

/// `log.format`: lines for people, or one JSON object a line for log collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    /// Timestamp, level, target and the event's fields, as tracing-subscriber's JSON
    /// formatter writes them.
    Json,
}

/// `[storage]`
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `storage.url` (default `""`): database URL. Empty means
    /// `sqlite:<data_dir>/jabberwock.sqlite`; use [`Config::storage_url`] for
    /// the resolved value. `sqlite:` and `postgres://` URLs are accepted.
    pub url: String,
}

/// `[tls]`
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// `tls.cert` (default `""` = `None`): PEM certificate chain. When both
    /// `cert` and `key` are empty, a self-signed certificate is generated on
    /// first start and kept in `<data_dir>/cert.pem` and `<data_dir>/key.pem`.
    #[serde(deserialize_with = "empty_path_as_none")]
    pub cert: Option<PathBuf>,
    /// `tls.key` (default `""` = `None`): PEM private key (PKCS#8, RSA or
    /// SEC1). Must be set exactly when `tls.cert` is.
    #[serde(deserialize_with = "empty_path_as_none")]
    pub key: Option<PathBuf>,
}

/// `[c2s]`: client-to-server listeners and per-stream limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct C2sConfig {
    /// `c2s.listen` (default `["127.0.0.1:5222", "[::1]:5222"]`): STARTTLS
    /// ports; these also recognise Flash streams, Flash socket policy
    /// requests and direct TLS. At least one `listen` or `direct_tls_listen`
    /// address is required.
    pub listen: Vec<SocketAddr>,
    /// `c2s.direct_tls_listen` (default `["127.0.0.1:5223", "[::1]:5223"]`):
    /// XEP-0368 direct TLS ports.
    pub direct_tls_listen: Vec<SocketAddr>,
    /// `c2s.require_encryption` (default `true`): standard clients must
    /// STARTTLS before SASL.
    pub require_encryption: bool,
    /// `c2s.allow_plain_without_tls` (default `false`): offer SASL PLAIN on
    /// unencrypted standard streams.
    pub allow_plain_without_tls: bool,
    /// `c2s.handshake_timeout` (seconds, default 30): time a new connection
    /// may take to authenticate and bind; a client that sends nothing is
    /// closed. 1 second to 365 days.
    #[serde(with = "seconds")]
    pub handshake_timeout: Duration,
    /// `c2s.idle_timeout` (seconds, default 600): time without any byte from
    /// the client before the stream is closed (connection-timeout). 1 second
    /// to 365 days.
    #[serde(with = "seconds")]
    pub idle_timeout: Duration,
    /// `c2s.max_stanza_bytes` (default 262144): largest stanza accepted; at
    /// least 1024.
    pub max_stanza_bytes: usize,
    /// `c2s.max_depth` (default 32): deepest XML element nesting accepted.
    pub max_depth: usize,
    /// `c2s.max_attributes` (default 64): most attributes on one element.
    pub max_attributes: usize,
    /// `c2s.max_header_bytes` (default 4096): largest stream header accepted.
    pub max_header_bytes: usize,
    /// `c2s.max_connections` (default 19000): open client connections per
    /// process; the default leaves headroom under a 20000 fd limit. At least 1.
    pub max_connections: usize,
    /// `c2s.max_auth_failures` (default 3): failed SASL attempts on one stream
    /// before the stream is closed. At least 1.
    pub max_auth_failures: u32,
    /// `c2s.auth_failure_delay_ms` (milliseconds, default 500): added delay
    /// per recent failure from the same IP address, to slow down password
    /// guessing. At most 60000.
    #[serde(rename = "auth_failure_delay_ms", with = "milliseconds")]
    pub auth_failure_delay: Duration,
    /// `c2s.max_sessions_per_account` (default 10): resources one account may
    /// have bound at once, over every kind of connection. One more bind is
    /// refused with `resource-constraint` (RFC 6120 §7.6.2.1); binding a
    /// resource the account already has replaces that session and is always
    /// allowed. At least 1.
    pub max_sessions_per_account: usize,
    /// `c2s.max_connections_per_ip` (default 100): open client connections
    /// (TCP, WebSocket, BOSH) from one IP address; more are closed at once
    /// (HTTP 429 for WebSocket and BOSH). 0 = no limit. Addresses in
    /// `per_ip_exempt` and `http.trusted_proxies` are not counted.
    pub max_connections_per_ip: usize,
    /// `c2s.per_ip_exempt` (default `["127.0.0.0/8", "::1"]`): addresses or
    /// networks exempt from the per-address limits (`max_connections_per_ip`,
    /// `auth.registration_interval`): this host's own clients, and gateways
    /// that multiplex many users. `http.trusted_proxies` are exempt too.
    pub per_ip_exempt: Vec<String>,
}

/// `[flash]`: Flash XMLSocket clients (`<flash:stream>`) on the c2s ports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlashConfig {
    /// `flash.enabled` (default `true`): accept `<flash:stream>` clients on the
    /// c2s ports (per host also needs `hosts.<domain>.flash`).
    pub enabled: bool,
    /// `flash.offer_starttls` (default `false`): XMLSocket cannot do TLS; only
    /// turn on for Flash clients that use a TLS-capable socket.
    pub offer_starttls: bool,
    /// `flash.allow_plain` (default `true`): offer SASL PLAIN (first, then
    /// SCRAM) to Flash streams without TLS.
    pub allow_plain: bool,
    /// `flash.legacy_auth` (default `false`): let Flash streams authenticate
    /// with XEP-0078 `jabber:iq:auth` (plaintext `<password>` only: `<digest>`
    /// can't be checked against stored SCRAM keys), advertised as the
    /// `iq-auth` stream feature. Never offered to standard streams.
    pub legacy_auth: bool,
    /// `flash.policy_domains` (default `["*"]`): `allow-access-from domain`
    /// values of the socket policy file.
    pub policy_domains: Vec<String>,
    /// `flash.policy_ports` (default `""`): `to-ports` value of the socket
    /// policy file; empty means the ports of `c2s.listen`. Use
    /// [`Config::policy_ports`] for the resolved value.
    pub policy_ports: String,
    /// `flash.policy_listen` (default `["127.0.0.1:843", "[::1]:843"]`): the
    /// dedicated socket policy listener, where Flash Player asks first. An
    /// address that cannot be bound (port 843 needs root) is skipped with a
    /// warning: the player then asks on the c2s port. Empty = off.
    pub policy_listen: Vec<SocketAddr>,
    /// `flash.websocket_path` (default `"/flash"`): path on the `[http]`
    /// listener where Ruffle's socket proxy WebSocket carries a Flash client's
    /// XMLSocket bytes. Empty = off.
    pub websocket_path: String,
    /// `flash.websocket_origins` (default `[]`): `Origin` values
    /// (`scheme://host[:port]`) allowed to open the WebSocket; empty allows
    /// any origin.
    pub websocket_origins: Vec<String>,
}

/// `[http]`: the HTTP listener (Ruffle's socket proxy endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// `http.listen` (default `["127.0.0.1:5280", "[::1]:5280"]`): plain HTTP
    /// ports, for the WebSocket endpoints. Empty = off.
    pub listen: Vec<SocketAddr>,
    /// `http.tls_listen` (default `["127.0.0.1:5281", "[::1]:5281"]`): HTTPS
    /// ports (wss://, https://) with the c2s certificate, serving the same
    /// endpoints. Empty = off.
    pub tls_listen: Vec<SocketAddr>,
    /// `http.websocket_path` (default `"/xmpp-websocket"`): path of the XMPP
    /// over WebSocket endpoint (RFC 7395, subprotocol `xmpp`). Empty = off.
    pub websocket_path: String,
    /// `http.websocket_see_other_uri` (default `""`): when set, every
    /// WebSocket stream is answered with `<close see-other-uri=…/>` (RFC 7395
    /// §3.6.1), sending clients to that endpoint instead.
    pub websocket_see_other_uri: String,
    /// `http.public_url` (default `""`): the base URL clients reach this
    /// listener at (e.g. `"https://chat.example.com"` behind a proxy), used in
    /// the XEP-0156 host-meta links. Empty = the request's scheme and `Host`.
    pub public_url: String,
    /// `http.loopback_is_encrypted` (default `true`): a plain ws:// stream from
    /// 127.0.0.1 or ::1 (a browser on this machine, a TLS-terminating proxy on
    /// this host) counts as encrypted, like wss://. Otherwise plain ws:// follows
    /// `c2s.require_encryption` and `c2s.allow_plain_without_tls`.
    pub loopback_is_encrypted: bool,
    /// `http.bosh_path` (default `"/http-bind"`): path of the BOSH endpoint
    /// (XEP-0124 + XEP-0206, XMPP over long-polling HTTP POSTs). Empty = off.
    pub bosh_path: String,
    /// `http.bosh_max_wait` (seconds, default 60): longest a BOSH request is
    /// held open waiting for something to send (a client asking for more gets
    /// this). 1 to 3600.
    #[serde(with = "seconds")]
    pub bosh_max_wait: Duration,
    /// `http.bosh_inactivity` (seconds, default 60): a BOSH session with no
    /// request open for this long is over (the client is gone: its contacts
    /// see it go unavailable). 1 to 3600.
    #[serde(with = "seconds")]
    pub bosh_inactivity: Duration,
    /// `http.bosh_max_pending_bytes` (default 1048576): most bytes waiting in
    /// one BOSH session for the client to collect; beyond that the session is
    /// ended (`policy-violation`). At least 16384.
    pub bosh_max_pending_bytes: usize,
    /// `http.allowed_origins` (default `[]`): `Origin` values
    /// (`scheme://host[:port]`) of other sites whose pages may use the HTTP
    /// endpoints (WebSocket, BOSH, host-meta) and get CORS headers; others get
    /// 403. Empty allows any origin. The server's own pages (same origin) and
    /// requests without `Origin` (non-browser clients) are always allowed.
    /// `flash.websocket_path` has its own list, `flash.websocket_origins`.
    pub allowed_origins: Vec<String>,
    /// `http.trusted_proxies` (default `[]`): addresses or networks
    /// (`"10.0.0.1"`, `"10.0.0.0/8"`, `"::1"`) of reverse proxies whose
    /// `X-Forwarded-For` is believed; the client address found there is then
    /// used for logging and the rate limit. From any other peer the header is
    /// ignored.
    pub trusted_proxies: Vec<String>,
    /// `http.max_request_bytes` (default 1048576): largest request body
    /// accepted; larger ones get HTTP 413. At least 1024.
    pub max_request_bytes: usize,
    /// `http.max_requests_per_second` (default 100): HTTP requests per second
    /// from one client address (bursts up to as many), beyond which it gets
    /// HTTP 429. 0 = no limit.
    pub max_requests_per_second: u32,
    /// `http.chat_path` (default `"/chat"`): path of the chat page (Converse.js
    /// logging in to this server over WebSocket or BOSH). Empty = off.
    pub chat_path: String,
    /// `http.chat_assets` (default `""` = `None`): directory holding the
    /// `dist/` files of the npm package `converse.js` (e.g.
    /// `node_modules/converse.js/dist`), served under `<chat_path>/dist/`.
    /// Unset, the chat page explains how to install them.
    #[serde(deserialize_with = "empty_path_as_none")]
    pub chat_assets: Option<PathBuf>,
    /// `http.header_timeout` (seconds, default 10): an HTTP connection (on the
    /// HTTP listeners or a c2s port) that has not sent a request's complete
    /// headers this long after it opened, or after its previous request, is
    /// closed. 1 to 3600.
    #[serde(with = "seconds")]
    pub header_timeout: Duration,
}

/// `[auth]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `auth.scram_iterations` (default 4096): PBKDF2 iterations for newly
    /// stored SCRAM credentials; at least 4096, as RFC 7677 recommends.
    pub scram_iterations: u32,
    /// `auth.min_password_length` (default 4): fewest characters (after
    /// RFC 8265 OpaqueString preparation) of a new password, for in-band
    /// registration and password change (`not-acceptable`) and for
    /// `jabberwock user add|passwd`. At least 1.
    pub min_password_length: usize,
    /// `auth.registration_interval` (seconds, default 600): after an in-band
    /// registration (XEP-0077) from an IP address, further ones from it are
    /// refused with `resource-constraint` for this long. 0 = no limit.
    /// Addresses in `c2s.per_ip_exempt` are not limited.
    #[serde(with = "seconds")]
    pub registration_interval: Duration,
}

/// `[roster]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RosterConfig {
    /// `roster.max_items` (default 1000): roster items per user; adding more is refused
    /// with `not-allowed` (RFC 6121 §2.3.3).
    pub max_items: u64,
}

/// `[offline]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OfflineConfig {
    /// `offline.max_messages` (default 100): messages kept per user while they are offline
    /// (XEP-0160); 0 turns offline storage off. A full store answers `service-unavailable`.
    pub max_messages: u64,
}

/// `[metrics]`: Prometheus' `/metrics` (docs/metrics.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `metrics.enabled` (default false): serve the metrics at all; off, the path is a 404.
    pub enabled: bool,
    /// `metrics.listen` (default `[]`): addresses of its own to serve them on (plain HTTP,
    /// e.g. `["127.0.0.1:9280"]`); empty: on the HTTP listeners (`http.listen`,
    /// `http.tls_listen`) beside the other endpoints.
    pub listen: Vec<SocketAddr>,
    /// `metrics.path` (default `"/metrics"`).
    pub path: String,
    /// `metrics.allow` (default `["127.0.0.0/8", "::1"]`): the addresses or networks that
    /// may scrape (the client as `http.trusted_proxies` say); others get 403.
    pub allow: Vec<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: false,
            listen: Vec::new(),
            path: "/metrics".to_owned(),
            allow: vec!["127.0.0.0/8".to_owned(), "::1".to_owned()],
        }
    }
}

/// `[hosts."<domain>"]`: one virtual host.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// `registration` (default `false`): XEP-0077 in-band registration.
    pub registration: bool,
    /// `anonymous` (default `false`): SASL ANONYMOUS guests (login creates a
    /// temporary JID).
    pub anonymous: bool,
    /// `flash` (default `true`): accept Flash clients for this host (needs
    /// `flash.enabled`).
    pub flash: bool,
    /// `flash_registration` (default `false`): offer in-band registration
    /// (when `registration` is on) to Flash streams without TLS too, whose
    /// new password would cross the network in clear text.
    pub flash_registration: bool,
    /// `modules_disabled` (default `[]`): modules switched off for this host
    /// (`[modules.NAME] enabled = false` switches one off everywhere).
    pub modules_disabled: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        let mut hosts = BTreeMap::new();
        hosts.insert("localhost".to_owned(), HostConfig::default());
        Config {
            source: None,
            data_dir: PathBuf::from("data"),
            log: LogConfig::default(),
            storage: StorageConfig::default(),
            tls: TlsConfig::default(),
            c2s: C2sConfig::default(),
            flash: FlashConfig::default(),
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            roster: RosterConfig::default(),
            offline: OfflineConfig::default(),
            metrics: MetricsConfig::default(),
            modules: Default::default(),
            hosts,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// Loopback on both address families: zero-config must not expose an
/// unconfigured server to the network.
fn loopback(port: u16) -> Vec<SocketAddr> {
    vec![
        SocketAddr::from(([127, 0, 0, 1], port)),
        SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
    ]
}

impl Default for C2sConfig {
    fn default() -> Self {
        C2sConfig {
            listen: loopback(5222),
            direct_tls_listen: loopback(5223),
            require_encryption: true,
            allow_plain_without_tls: false,
            handshake_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            max_stanza_bytes: 262_144,
            max_depth: 32,
            max_attributes: 64,
            max_header_bytes: 4096,
            max_connections: 19_000,
            max_auth_failures: 3,
            auth_failure_delay: Duration::from_millis(500),
            max_sessions_per_account: 10,
            max_connections_per_ip: 100,
            per_ip_exempt: vec!["127.0.0.0/8".to_owned(), "::1".to_owned()],
        }
    }
}

impl Default for FlashConfig {
    fn default() -> Self {
        FlashConfig {
            enabled: true,
            offer_starttls: false,
            allow_plain: true,
            legacy_auth: false,
            policy_domains: vec!["*".to_owned()],
            policy_ports: String::new(),
            policy_listen: loopback(843),
            websocket_path: "/flash".to_owned(),
            websocket_origins: Vec::new(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: loopback(5280),
            tls_listen: loopback(5281),
            websocket_path: "/xmpp-websocket".to_owned(),
            websocket_see_other_uri: String::new(),
            public_url: String::new(),
            loopback_is_encrypted: true,
            bosh_path: "/http-bind".to_owned(),
            bosh_max_wait: Duration::from_secs(60),
            bosh_inactivity: Duration::from_secs(60),
            bosh_max_pending_bytes: 1_048_576,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            max_request_bytes: 1_048_576,
            max_requests_per_second: 100,
            chat_path: "/chat".to_owned(),
            chat_assets: None,
            header_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            scram_iterations: 4096,
            min_password_length: 4,
            registration_interval: Duration::from_secs(600),
        }
    }
}

impl Default for RosterConfig {
    fn default() -> Self {
        RosterConfig { max_items: 1000 }
    }
}

impl Default for OfflineConfig {
    fn default() -> Self {
        OfflineConfig { max_messages: 100 }
    }
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            registration: false,
            anonymous: false,
            flash: true,
            flash_registration: false,
            modules_disabled: Vec::new(),
        }
    }
}

/// A configuration problem, located as precisely as we can: file, dotted key
/// path and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// The file's path, or `"<default config>"` when the text had no file.
    pub file: String,
    /// Dotted key path such as `c2s.listen[1]`, when the problem has one.
    pub key: Option<String>,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// `file:line: key a.b: message`, leaving out the parts we don't know.
    fn render(&self) -> String {
        let mut out = self.file.clone();
        if let Some(line) = self.line {
            // Writing to a String cannot fail.
            let _ = write!(out, ":{line}");
        }
        out.push_str(": ");
        if let Some(key) = &self.key {
            let _ = write!(out, "key {key}: ");
        }
        out.push_str(&self.message);
        out
    }
}

impl Config {
    /// An error about `key` found after loading (a listen address in use, say), naming the
    /// file and, when the file can be read again, the key's line.
    pub fn problem(&self, key: &[&str], message: impl Into<String>) -> ConfigError {
        let path: Vec<String> = key.iter().map(|k| k.to_string()).collect();
        let line = self
            .source
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| line_of(&text, &path));
        ConfigError {
            file: self
                .source
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "<default config>".into()),
            key: Some(render_key_path(&path)),
            line,
            message: message.into(),
        }
    }

    /// Reads, parses and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            key: None,
            line: None,
            message: format!("cannot read file: {}", io_reason(&e)),
        })?;
        Config::from_toml_str(&text, Some(path))
    }

    /// Parses and validates configuration text. `source` is only used for
    /// error messages and [`Config::source`].
    pub fn from_toml_str(text: &str, source: Option<&Path>) -> Result<Config, ConfigError> {
        let file = source.map_or_else(|| NO_FILE.to_owned(), |p| p.display().to_string());
        let deserializer = toml::Deserializer::new(text);
        let mut config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // serde_path_to_error reports the document root as ".".
            let key = (path != ".").then_some(path);
            let line = inner
                .span()
                .map(|span| line_at(text, span.start))
                .or_else(|| {
                    key.as_deref()
                        .and_then(|k| line_of(text, &split_key_path(k)))
                });
            // Whether the offending key is a `[table]` header, for the hint
            // about dotted host names.
            let on_header = line
                .and_then(|l| text.lines().nth(l - 1))
                .is_some_and(|l| l.trim_start().starts_with('['));
            let message = friendly_message(key.as_deref(), on_header, inner.message());
            ConfigError {
                file: file.clone(),
                key,
                line,
                message,
            }
        })?;
        config.source = source.map(Path::to_path_buf);
        config.validate().map_err(|problem| ConfigError {
            line: line_of(text, &problem.path),
            key: Some(render_key_path(&problem.path)),
            file,
            message: problem.message,
        })?;
        Ok(config)
    }

    /// The database URL to open: `storage.url`, or
    /// `sqlite:<data_dir>/jabberwock.sqlite` when that is empty.
    pub fn storage_url(&self) -> String {
        if self.storage.url.is_empty() {
            format!(
                "sqlite:{}",
                self.data_dir.join("jabberwock.sqlite").display()
            )
        } else {
            self.storage.url.clone()
        }
    }

    /// The `to-ports` value of the Flash socket policy: `flash.policy_ports`,
    /// or the distinct ports of `c2s.listen` in order, joined with ",".
    pub fn policy_ports(&self) -> String {
        if !self.flash.policy_ports.is_empty() {
            return self.flash.policy_ports.clone();
        }
        let mut ports: Vec<u16> = Vec::new();
        for addr in &self.c2s.listen {
            if !ports.contains(&addr.port()) {
                ports.push(addr.port());
            }
        }
        ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The settings of virtual host `domain`, matched case-insensitively and
    /// ignoring one trailing dot (RFC 7622 treats `example.com.` as
    /// `example.com`).
    pub fn host(&self, domain: &str) -> Option<&HostConfig> {
        find_host(domain, |d| self.hosts.get(d))
    }

    /// Semantic checks that serde cannot express. Normalises host names
    /// (lowercase, no trailing dot) on the way.
    fn validate(&mut self) -> Result<(), Problem> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(Problem::new(
                &["data_dir"],
                "must not be empty (use \".\" for the working directory)",
            ));
        }

        if self.log.level.trim().is_empty() {
            return Err(Problem::new(
                &["log", "level"],
                "must not be empty (e.g. \"info\")",
            ));
        }
        if let Err(directive) = check_log_filter(&self.log.level) {
            return Err(Problem::new(
                &["log", "level"],
                format!(
                    "'{directive}' is not a level (off, error, warn, info, debug, trace) \
                     nor TARGET=LEVEL"
                ),
            ));
        }

        let url = &self.storage.url;
        let known_scheme = ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.starts_with(scheme));
        if !url.is_empty() && !known_scheme {
            return Err(Problem::new(
                &["storage", "url"],
                format!(
                    "unsupported database URL {:?}: use sqlite:PATH or postgres://…",
                    self.storage.url
                ),
            ));
        }

        self.validate_tls()?;
        self.validate_c2s()?;
        self.validate_flash()?;
        self.validate_http_safety()?;
        self.validate_bosh()?;
        self.validate_http_websocket()?;
        self.validate_metrics()?;

        if self.auth.scram_iterations < 4096 {
            return Err(Problem::new(
                &["auth", "scram_iterations"],
                format!(
                    "must be at least 4096 (RFC 7677), got {}",
                    self.auth.scram_iterations
                ),
            ));
        }

        if self.auth.min_password_length < 1 {
            return Err(Problem::new(
                &["auth", "min_password_length"],
                "must be at least 1, got 0",
            ));
        }
        if self.auth.registration_interval.as_secs() > MAX_TIMEOUT_SECS {
            return Err(Problem::new(
                &["auth", "registration_interval"],
                format!(
                    "must be at most {MAX_TIMEOUT_SECS} seconds, got {}",
                    self.auth.registration_interval.as_secs()
                ),
            ));
        }

        self.validate_hosts()?;
        let http_listening = !self.http.listen.is_empty() || !self.http.tls_listen.is_empty();
        crate::modules::config::check(&self.modules, &self.hosts, http_listening).map_err(|p| {
            Problem {
                message: friendly_message(None, false, &p.message),
                path: p.path,
            }
        })
    }

    fn validate_tls(&self) -> Result<(), Problem> {
        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => {
                return Err(Problem::new(
                    &["tls", "cert"],
                    "tls.key must be set too (or leave both empty for a generated self-signed certificate)",
                ))
            }
            (None, Some(_)) => {
                return Err(Problem::new(
                    &["tls", "key"],
                    "tls.cert must be set too (or leave both empty for a generated self-signed certificate)",
                ))
            }
            _ => {}
        }
        for (name, path) in [("cert", &self.tls.cert), ("key", &self.tls.key)] {
            if let Some(path) = path {
                check_readable_file(path).map_err(|reason| {
                    Problem::new(
                        &["tls", name],
                        format!("cannot read {}: {reason}", path.display()),
                    )
                })?;
            }
        }
        Ok(())
    }

    fn validate_c2s(&self) -> Result<(), Problem> {
        let c2s = &self.c2s;
        if c2s.listen.is_empty() && c2s.direct_tls_listen.is_empty() {
            return Err(Problem::new(
                &["c2s", "listen"],
                "at least one address is needed in c2s.listen or c2s.direct_tls_listen",
            ));
        }
        for (name, value) in [
            ("handshake_timeout", c2s.handshake_timeout),
            ("idle_timeout", c2s.idle_timeout),
        ] {
            let secs = value.as_secs();
            if !(1..=MAX_TIMEOUT_SECS).contains(&secs) {
                return Err(Problem::new(
                    &["c2s", name],
                    format!("must be between 1 and {MAX_TIMEOUT_SECS} seconds, got {secs}"),
                ));
            }
        }
        if c2s.max_stanza_bytes < 1024 {
            return Err(Problem::new(
                &["c2s", "max_stanza_bytes"],
                format!("must be at least 1024, got {}", c2s.max_stanza_bytes),
            ));
        }
        if c2s.max_connections < 1 {
            return Err(Problem::new(
                &["c2s", "max_connections"],
                "must be at least 1, got 0",
            ));
        }
        if c2s.max_auth_failures < 1 {
            return Err(Problem::new(
                &["c2s", "max_auth_failures"],
                "must be at least 1, got 0",
            ));
        }
        if c2s.max_sessions_per_account < 1 {
            return Err(Problem::new(
                &["c2s", "max_sessions_per_account"],
                "must be at least 1, got 0",
            ));
        }
        for network in &c2s.per_ip_exempt {
            if crate::http::safety::Network::parse(network).is_none() {
                return Err(Problem::new(
                    &["c2s", "per_ip_exempt"],
                    format!("invalid address {network:?} (expected an IP address or network, e.g. \"127.0.0.0/8\" or \"::1\")"),
                ));
            }
        }
        let delay_ms = c2s.auth_failure_delay.as_millis();
        if delay_ms > u128::from(MAX_AUTH_FAILURE_DELAY_MS) {
            return Err(Problem::new(
                &["c2s", "auth_failure_delay_ms"],
                format!("must be at most {MAX_AUTH_FAILURE_DELAY_MS}, got {delay_ms}"),
            ));
        }
        Ok(())
    }

    fn validate_flash(&self) -> Result<(), Problem> {
        // Both values are pasted into the XML policy file, so anything that
        // could break out of the attribute is refused here rather than escaped
        // there: no Flash player would accept such a value anyway.
        for domain in &self.flash.policy_domains {
            if domain.is_empty()
                || domain
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "\"'<>&".contains(c))
            {
                return Err(Problem::new(
                    &["flash", "policy_domains"],
                    format!("invalid domain pattern {domain:?}"),
                ));
            }
        }
        let ports = &self.flash.policy_ports;
        if !ports
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == '-' || c == '*')
        {
            return Err(Problem::new(
                &["flash", "policy_ports"],
                format!("invalid port list {ports:?} (expected e.g. \"5222\" or \"5222,5223\" or \"5000-6000\")"),
            ));
        }
        let path = &self.flash.websocket_path;
        // Checked here because the HTTP router would panic on a malformed route.
        if !path.is_empty()
            && (!path.starts_with('/')
                || !path
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/-._~".contains(c)))
        {
            return Err(Problem::new(
                &["flash", "websocket_path"],
                format!("invalid path {path:?} (expected e.g. \"/flash\": a \"/\", then letters, digits, \"/-._~\")"),
            ));
        }
        for origin in &self.flash.websocket_origins {
            if !is_origin(origin) {
                return Err(Problem::new(
                    &["flash", "websocket_origins"],
                    format!("invalid origin {origin:?} (expected scheme://host[:port], e.g. \"https://example.com\")"),
                ));
            }
        }
        Ok(())
    }

    /// The RFC 7395 and XEP-0156 keys of `[http]` (server/src/http/xmpp_websocket.rs).
    fn validate_metrics(&self) -> Result<(), Problem> {
        let metrics = &self.metrics;
        let path = &metrics.path;
        // The HTTP router would panic on a malformed or taken route.
        let valid = path.len() > 1
            && path.starts_with('/')
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/-._~".contains(c));
        if !valid {
            return Err(Problem::new(
                &["metrics", "path"],
                format!("invalid path {path:?} (expected e.g. \"/metrics\": a \"/\", then letters, digits, \"/-._~\")"),
            ));
        }
        let taken = [
            &self.http.websocket_path,
            &self.http.bosh_path,
            &self.http.chat_path,
            &self.flash.websocket_path,
        ];
        if metrics.listen.is_empty() && taken.contains(&path) {
            return Err(Problem::new(
                &["metrics", "path"],
                format!("{path:?} is already served by another HTTP endpoint"),
            ));
        }
        for network in &metrics.allow {
            if crate::http::safety::Network::parse(network).is_none() {
                return Err(Problem::new(
                    &["metrics", "allow"],
                    format!("invalid address {network:?} (expected an IP address or network, e.g. \"127.0.0.0/8\" or \"::1\")"),
                ));
            }
        }
        let http_listening = !self.http.listen.is_empty() || !self.http.tls_listen.is_empty();
        if metrics.enabled && metrics.listen.is_empty() && !http_listening {
            return Err(Problem::new(
                &["metrics", "enabled"],
                "needs an address to serve on: set metrics.listen, or http.listen / http.tls_listen",
            ));
        }
        Ok(())
    }

    fn validate_http_websocket(&self) -> Result<(), Problem> {
        let http = &self.http;
        let path = &http.websocket_path;
        // Checked here because the HTTP router would panic on a malformed route.
        if !path.is_empty()
            && (!path.starts_with('/')
                || !path
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/-._~".contains(c)))
        {
            return Err(Problem::new(
                &["http", "websocket_path"],
                format!("invalid path {path:?} (expected e.g. \"/xmpp-websocket\": a \"/\", then letters, digits, \"/-._~\")"),
            ));
        }
        // Both end up in XML attributes or JSON strings: a URL with quotes or spaces is a typo.
        for (key, url) in [
            ("websocket_see_other_uri", &http.websocket_see_other_uri),
            ("public_url", &http.public_url),
        ] {
            let scheme_ok = ["ws://", "wss://", "http://", "https://"]
                .iter()
                .any(|s| url.starts_with(s) && url.len() > s.len());
            let chars_ok = !url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "\"'<>\\".contains(c));
            let valid = scheme_ok && chars_ok;
            if !url.is_empty() && !valid {
                return Err(Problem::new(
                    &["http", key],
                    format!("invalid URL {url:?} (expected e.g. \"https://chat.example.com\")"),
                ));
            }
        }
        Ok(())
    }

    /// The BOSH keys of `[http]` (server/src/http/bosh/), and its header timeout.
    fn validate_bosh(&self) -> Result<(), Problem> {
        let http = &self.http;
        let path = &http.bosh_path;
        // Checked here because the HTTP router would panic on a malformed route.
        if !path.is_empty()
            && (!path.starts_with('/')
                || path.len() < 2
                || !path
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/-._~".contains(c)))
        {
            return Err(Problem::new(
                &["http", "bosh_path"],
                format!("invalid path {path:?} (expected e.g. \"/http-bind\": a \"/\", then letters, digits, \"/-._~\")"),
            ));
        }
        for (name, value) in [
            ("bosh_max_wait", http.bosh_max_wait),
            ("bosh_inactivity", http.bosh_inactivity),
            ("header_timeout", http.header_timeout),
        ] {
            let secs = value.as_secs();
            if !(1..=3600).contains(&secs) {
                return Err(Problem::new(
                    &["http", name],
                    format!("must be 1 to 3600 seconds, got {secs}"),
                ));
            }
        }
        if http.bosh_max_pending_bytes < 16_384 {
            return Err(Problem::new(
                &["http", "bosh_max_pending_bytes"],
                format!(
                    "must be at least 16384, got {}",
                    http.bosh_max_pending_bytes
                ),
            ));
        }
        Ok(())
    }

    /// The web safety and chat page keys of `[http]` (server/src/http/safety.rs, chat.rs).
    fn validate_http_safety(&self) -> Result<(), Problem> {
        let http = &self.http;
        for origin in &http.allowed_origins {
            if !is_origin(origin) {
                return Err(Problem::new(
                    &["http", "allowed_origins"],
                    format!("invalid origin {origin:?} (expected scheme://host[:port], e.g. \"https://example.com\")"),
                ));
            }
        }
        for proxy in &http.trusted_proxies {
            if crate::http::safety::Network::parse(proxy).is_none() {
                return Err(Problem::new(
                    &["http", "trusted_proxies"],
                    format!("invalid address {proxy:?} (expected an IP address or network, e.g. \"10.0.0.1\" or \"10.0.0.0/8\")"),
                ));
            }
        }
        if http.max_request_bytes < 1024 {
            return Err(Problem::new(
                &["http", "max_request_bytes"],
                format!("must be at least 1024, got {}", http.max_request_bytes),
            ));
        }
        let path = &http.chat_path;
        // Checked here because the HTTP router would panic on a malformed route.
        if !path.is_empty()
            && (!path.starts_with('/')
                || path.len() < 2
                || path.ends_with('/')
                || !path
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/-._~".contains(c)))
        {
            return Err(Problem::new(
                &["http", "chat_path"],
                format!("invalid path {path:?} (expected e.g. \"/chat\": a \"/\", then letters, digits, \"/-._~\", no trailing \"/\")"),
            ));
        }
        if let Some(dir) = &http.chat_assets {
            if !dir.join("converse.min.js").is_file() {
                return Err(Problem::new(
                    &["http", "chat_assets"],
                    format!(
                        "{} has no converse.min.js: point it at the dist/ directory of the npm package converse.js (npm install converse.js)",
                        dir.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_hosts(&mut self) -> Result<(), Problem> {
        if self.hosts.is_empty() {
            return Err(Problem::new(
                &["hosts"],
                "at least one host is needed, e.g. [hosts.localhost]",
            ));
        }
        // domain -> (name as written, settings)
        let mut normalised: BTreeMap<String, (String, HostConfig)> = BTreeMap::new();
        for (name, host) in std::mem::take(&mut self.hosts) {
            let domain = normalise_domain(&name).map_err(|reason| {
                Problem::new(
                    &["hosts", &name],
                    format!("invalid host name {name:?}: {reason}"),
                )
            })?;
            if let Some((earlier, _)) = normalised.get(&domain) {
                // Blame the spelling that is not already normalised: that is
                // the one the operator most likely wants to delete.
                let blamed = if name == domain {
                    earlier.as_str()
                } else {
                    name.as_str()
                };
                return Err(Problem::new(
                    &["hosts", blamed],
                    format!("host {domain:?} is configured twice"),
                ));
            }
            normalised.insert(domain, (name, host));
        }
        self.hosts = normalised
            .into_iter()
            .map(|(domain, (_, host))| (domain, host))
            .collect();
        Ok(())
    }
}

/// Looks up host `domain` with `find` as `[hosts]` keys are normalised: as given, then
/// lowercased without one trailing dot (RFC 7622 treats `example.com.` as `example.com`).
pub fn find_host<T>(domain: &str, find: impl Fn(&str) -> Option<T>) -> Option<T> {
    find(domain).or_else(|| {
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        find(&domain.to_lowercase())
    })
}

/// A validation failure before it is located in the text.
struct Problem {
    path: Vec<String>,
    message: String,
}

impl Problem {
    fn new(path: &[&str], message: impl Into<String>) -> Problem {
        Problem {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            message: message.into(),
        }
    }
}

/// Lowercases a configured host name and checks that it can be the domain
/// part of a JID. IDNs stay in Unicode, as RFC 7622 wants them.
fn normalise_domain(name: &str) -> Result<String, &'static str> {
    // RFC 7622 §3.2: one trailing dot is allowed and removed.
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > 1023 {
        return Err("longer than 1023 bytes");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace");
    }
    if name.contains(['@', '/']) {
        return Err("contains '@' or '/' (give a bare domain, not a JID)");
    }
    if name.contains(['"', '\'', '<', '>', '&']) {
        return Err("contains a character not allowed in a domain");
    }
    if let Some(literal) = name.strip_prefix('[') {
        // An IPv6 literal is the only place a ':' may appear.
        let inner = literal
            .strip_suffix(']')
            .ok_or("unterminated IPv6 literal")?;
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|_| name.to_lowercase())
            .map_err(|_| "invalid IPv6 literal");
    }
    if name.contains(':') {
        return Err("contains ':' (ports are set in [c2s], not in host names)");
    }
    if name.split('.').any(str::is_empty) {
        return Err("has an empty label");
    }
    Ok(name.to_lowercase())
}

/// An HTTP `Origin` value (RFC 6454 §7): `scheme://host[:port]`, no path.
fn is_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let (host, port) = match rest.rsplit_once(':') {
        // An IPv6 literal's colons are inside the brackets.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (rest, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._[]:".contains(c))
        && (host.contains('[') || !host.contains(':'));
    scheme_ok && host_ok && port_ok
}

/// Checks that `path` is a regular file we can open, so a bad certificate
/// path is reported at startup by the config loader rather than later.
fn check_readable_file(path: &Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| io_reason(&e))?;
    let meta = file.metadata().map_err(|e| io_reason(&e))?;
    if meta.is_dir() {
        return Err("is a directory".to_owned());
    }
    Ok(())
}

/// The OS error text without Rust's " (os error N)" suffix, which means
/// nothing to an operator.
pub(crate) fn io_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

/// Rewrites serde's messages into the vocabulary of a config file ("key"
/// and "table" rather than "field" and "struct LogConfig", no Rust
/// backticks) and joins multi-line parser messages onto one line.
fn friendly_message(key: Option<&str>, on_header: bool, message: &str) -> String {
    let message = message.trim_end().replace('\n', "; ");
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return rust_words_to_toml(&message);
    };
    // rest = "lisen`, expected one of `a`, `b`" | "x`, expected `a` or `b`" |
    //        "x`, there are no fields"
    let expected = rest.split_once("`, expected ").map(|(_, list)| {
        list.trim_start_matches("one of ")
            .replace(" or ", ", ")
            .replace('`', "")
    });
    let mut out = match expected {
        Some(list) => format!("unknown key (expected one of {list})"),
        None => "unknown key".to_owned(),
    };
    // `[hosts.example.com]` is three nested tables in TOML; the resulting
    // "unknown key com" is baffling without this hint.
    if on_header && key.is_some_and(|k| k.starts_with("hosts.") && k.matches('.').count() >= 2) {
        out.push_str("; a domain name with dots must be quoted, e.g. [hosts.\"example.com\"]");
    }
    out
}

/// serde names the Rust shape it expected ("struct LogConfig", "a
/// sequence"); say what that is in TOML.
fn rust_words_to_toml(message: &str) -> String {
    if let Some((head, tail)) = message.split_once("expected struct ") {
        let tail = tail.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
        return format!("{head}expected a table{tail}");
    }
    message
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table")
}

/// 1-based line number of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Splits a serde_path_to_error path (`c2s.listen[1]`) into keys, dropping
/// array indices since the line of the array is what we can find.
fn split_key_path(path: &str) -> Vec<String> {
    path.split('.')
        .map(|seg| seg.split('[').next().unwrap_or(seg).to_owned())
        .filter(|seg| !seg.is_empty())
        .collect()
}

/// Renders key segments as a TOML dotted key, quoting where TOML needs it.
fn render_key_path(path: &[String]) -> String {
    path.iter()
        .map(|seg| {
            // An array index (`rooms[1]`) is written as serde_path_to_error does.
            let key = split_index(seg).0;
            let bare = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if bare {
                seg.clone()
            } else {
                format!("{seg:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Finds the 1-based line where the key at `path` is defined.
///
/// A line scanner rather than a second parse: toml 0.8 cannot report spans of
/// tables declared with `[a.b]` headers, which is exactly where host names
/// live. It understands `[table]` / `[[array]]` headers and `key = ` lines
/// with bare, quoted and dotted keys, and skips multi-line strings. When the
/// exact key is not written (e.g. it sits in an inline table), the line of
/// the closest enclosing table or key is returned instead.
///
/// A path may index an array of tables (`modules.muc.rooms[1].jid`: the `jid` below the
/// second `[[modules.muc.rooms]]`); an index on a key whose value is written inline
/// (`listen[1]`) finds that key's line.
fn line_of(text: &str, path: &[String]) -> Option<usize> {
    let indexed = path.iter().any(|seg| split_index(seg).1.is_some());
    line_of_ranked(text, path, indexed)
}

/// A key path segment and its array index: `rooms[1]` is `("rooms", Some(1))`.
fn split_index(seg: &str) -> (&str, Option<usize>) {
    seg.strip_suffix(']')
        .and_then(|s| s.rsplit_once('['))
        .and_then(|(key, index)| Some((key, Some(index.parse().ok()?))))
        .unwrap_or((seg, None))
}

/// Whether a written key (`candidate`, indexed only for `[[array]]` headers) is the path's
/// segment.
fn same_key(path: &str, candidate: &str) -> bool {
    path == candidate || (split_index(path).0 == candidate && split_index(candidate).1.is_none())
}

/// Whether `path` starts with the keys of `prefix`.
fn key_prefix(path: &[String], prefix: &[String]) -> bool {
    prefix.len() <= path.len() && prefix.iter().zip(path).all(|(c, p)| same_key(p, c))
}

/// [`line_of`]'s scan; `indexed`: each `[[array]]` header names its element
/// (`array[n]`), for paths that index arrays of tables.
fn line_of_ranked(text: &str, path: &[String], indexed: bool) -> Option<usize> {
    // (rank, line): 3 = exact key, 2 = a table below the key, 1.. = an
    // enclosing table, deeper is better. Earliest line wins a tie.
    let mut best: Option<((u8, usize), usize)> = None;
    let mut table: Vec<String> = Vec::new();
    let mut open_string: Option<&str> = None;
    let mut arrays: HashMap<Vec<String>, usize> = HashMap::new();

    for (index, line) in text.lines().enumerate() {
        if let Some(delimiter) = open_string {
            if line.matches(delimiter).count() % 2 == 1 {
                open_string = None;
            }
            continue;
        }
        let trimmed = line.trim_start();
        let candidate = if let Some(header) = trimmed.strip_prefix('[') {
            let array = header.strip_prefix('[');
            let header = array.unwrap_or(header);
            match parse_dotted_key(header) {
                Some((mut keys, rest)) if rest.trim_start().starts_with(']') => {
                    if array.is_some() && indexed {
                        let count = arrays.entry(keys.clone()).or_default();
                        if let Some(last) = keys.last_mut() {
                            *last = format!("{last}[{count}]");
                        }
                        *count += 1;
                    }
                    table = keys.clone();
                    keys
                }
                _ => continue,
            }
        } else {
            match parse_dotted_key(trimmed) {
                Some((keys, rest)) => match rest.trim_start().strip_prefix('=') {
                    Some(value) => {
                        for delimiter in ["\"\"\"", "'''"] {
                            if value.matches(delimiter).count() % 2 == 1 {
                                open_string = Some(delimiter);
                            }
                        }
                        table.iter().cloned().chain(keys).collect()
                    }
                    None => continue,
                },
                None => continue,
            }
        };
        let rank = if candidate.len() == path.len() && key_prefix(path, &candidate) {
            (3, 0)
        } else if key_prefix(&candidate, path) {
            (2, 0)
        } else if key_prefix(path, &candidate) {
            (1, candidate.len())
        } else {
            continue;
        };
        if best.is_none_or(|(best_rank, _)| rank > best_rank) {
            best = Some((rank, index + 1));
        }
    }
    best.map(|(_, line)| line)
}

/// Parses a TOML dotted key at the start of `s` (`a`, `a.b`, `"x y".c`,
/// `'lit'`), returning the keys and the rest of the input.
fn parse_dotted_key(s: &str) -> Option<(Vec<String>, &str)> {
    let mut keys = Vec::new();
    let mut rest = s.trim_start();
    loop {
        let (key, after) = parse_simple_key(rest)?;
        keys.push(key);
        let after = after.trim_start();
        match after.strip_prefix('.') {
            Some(next) => rest = next.trim_start(),
            None => return Some((keys, after)),
        }
    }
}

fn parse_simple_key(s: &str) -> Option<(String, &str)> {
    if let Some(body) = s.strip_prefix('"') {
        let mut key = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Some((key, &body[i + 1..])),
                '\\' => {
                    let (_, escaped) = chars.next()?;
                    match escaped {
                        'n' => key.push('\n'),
                        't' => key.push('\t'),
                        'r' => key.push('\r'),
                        'b' => key.push('\u{8}'),
                        'f' => key.push('\u{c}'),
                        'u' | 'U' => {
                            let len = if escaped == 'u' { 4 } else { 8 };
                            let hex: String = (0..len)
                                .filter_map(|_| chars.next().map(|(_, h)| h))
                                .collect();
                            let code = u32::from_str_radix(&hex, 16).ok()?;
                            key.push(char::from_u32(code)?);
                        }
                        other => key.push(other),
                    }
                }
                other => key.push(other),
            }
        }
        None
    } else if let Some(body) = s.strip_prefix('\'') {
        let end = body.find('\'')?;
        Some((body[..end].to_owned(), &body[end + 1..]))
    } else {
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(s.len());
        if end == 0 {
            return None;
        }
        Some((s[..end].to_owned(), &s[end..]))
    }
}

/// `""` in the file means "not set".
pub(crate) fn empty_path_as_none<'de, D: Deserializer<'de>>(
    de: D,
) -> Result<Option<PathBuf>, D::Error> {
    let text = String::deserialize(de)?;
    Ok((!text.is_empty()).then(|| PathBuf::from(text)))
}

/// Durations written as whole seconds.
mod seconds {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
        u64::deserialize(de).map(Duration::from_secs)
    }
}

/// Durations written as whole milliseconds.
mod milliseconds {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
        u64::deserialize(de).map(Duration::from_millis)
    }
}

/// `log.level` as tracing's filter syntax reads it, stricter: every comma-separated
/// directive is a level or `TARGET=LEVEL` (a span filter `TARGET[SPAN]=LEVEL` too). A bare
/// word that is no level is a target to tracing, which then logs nothing else: a typo such
/// as "inof" would turn all logging off without a word. Returns the offending directive.
fn check_log_filter(spec: &str) -> Result<(), &str> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let is_level = |word: &str| LEVELS.iter().any(|l| l.eq_ignore_ascii_case(word.trim()));
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let ok = match directive.rsplit_once('=') {
            Some((target, level)) => !target.trim().is_empty() && is_level(level),
            None => is_level(directive),
        };
        if !ok {
            return Err(directive);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConfigError {
        match Config::from_toml_str(text, Some(Path::new("config.toml"))) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(e) => e,
        }
    }

    fn ok(text: &str) -> Config {
        match Config::from_toml_str(text, None) {
            Ok(config) => config,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    #[test]
    fn empty_file_is_the_default() {
        let config = ok("");
        assert_eq!(config, Config::default());
        assert_eq!(config.hosts.keys().collect::<Vec<_>>(), ["localhost"]);
        assert_eq!(config.c2s.listen.len(), 2);
        assert_eq!(config.c2s.handshake_timeout, Duration::from_secs(30));
        assert_eq!(config.c2s.auth_failure_delay, Duration::from_millis(500));
        assert!(config.tls.cert.is_none() && config.tls.key.is_none());
    }

    #[test]
    fn default_passes_validation() {
        let mut config = Config::default();
        assert!(config.validate().is_ok());
        assert_eq!(config, Config::default());
    }

    #[test]
    fn metrics_need_an_address_a_free_path_and_sound_networks() {
        let e = err("[http]\nlisten = []\ntls_listen = []\n[metrics]\nenabled = true\n");
        assert_eq!(e.key.as_deref(), Some("metrics.enabled"));
        assert!(e.to_string().contains("metrics.listen"), "{e}");
        ok("[http]\nlisten = []\ntls_listen = []\n[metrics]\nenabled = false\n");
        ok("[http]\nlisten = []\ntls_listen = []\n[metrics]\nenabled = true\nlisten = [\"127.0.0.1:9280\"]\n");
        for (line, key) in [
            ("path = \"metrics\"", "metrics.path"),
            ("path = \"/http-bind\"", "metrics.path"),
            ("allow = [\"10.0.0.0/33\"]", "metrics.allow"),
            ("listen = \"127.0.0.1:9280\"", "metrics.listen"),
        ] {
            let e = err(&format!("[metrics]\nenabled = true\n{line}\n"));
            assert_eq!(e.key.as_deref(), Some(key), "{line}: {e}");
        }
    }

    #[test]
    fn upload_needs_an_http_listener_and_sound_values() {
        let e = err("[http]\nlisten = []\ntls_listen = []\n[modules.upload]\nenabled = true\n");
        assert_eq!(e.key.as_deref(), Some("modules.upload.enabled"));
        assert!(e.to_string().contains("http.listen"), "{e}");
        ok("[http]\nlisten = []\ntls_listen = []\n[modules.upload]\nenabled = false\n");
        ok("[modules.upload]\nenabled = true\nquota = 1000\nallowed_content_types = [\"image/*\"]\n");
        for (line, key) in [
            ("max_file_size = 0", "modules.upload.max_file_size"),
            ("slot_lifetime = 0", "modules.upload.slot_lifetime"),
            ("public_url = \"ftp://x\"", "modules.upload.public_url"),
            (
                "denied_content_types = [\"html\"]",
                "modules.upload.denied_content_types",
            ),
            ("quota = -1", "modules.upload.quota"),
            ("expiry = 3", "modules.upload.expiry"),
        ] {
            let e = err(&format!("[modules.upload]\nenabled = true\n{line}\n"));
            assert_eq!(e.key.as_deref(), Some(key), "{line}: {e}");
        }
    }

    #[test]
    fn example_file_matches_defaults() {
        let text = include_str!("../../config.example.toml");
        let path = Path::new("config.example.toml");
        let config = match Config::from_toml_str(text, Some(path)) {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(config.source.as_deref(), Some(path));
        assert_eq!(
            Config {
                source: None,
                ..config
            },
            Config::default()
        );
    }

    #[test]
    fn example_file_mentions_every_key() {
        // The equality test above can't notice a key missing from the
        // example (it would just take its default), so check by name.
        let text = include_str!("../../config.example.toml");
        let keys = [
            "data_dir",
            "[log]",
            "level",
            "[storage]",
            "url",
            "[tls]",
            "cert",
            "key",
            "[c2s]",
            "listen",
            "direct_tls_listen",
            "require_encryption",
            "allow_plain_without_tls",
            "handshake_timeout",
            "idle_timeout",
            "max_stanza_bytes",
            "max_depth",
            "max_attributes",
            "max_header_bytes",
            "max_connections",
            "max_auth_failures",
            "auth_failure_delay_ms",
            "max_sessions_per_account",
            "max_connections_per_ip",
            "per_ip_exempt",
            "[flash]",
            "enabled",
            "offer_starttls",
            "allow_plain",
            "legacy_auth",
            "policy_domains",
            "policy_ports",
            "policy_listen",
            "websocket_path",
            "websocket_origins",
            "[http]",
            "tls_listen",
            "websocket_see_other_uri",
            "public_url",
            "loopback_is_encrypted",
            "bosh_path",
            "bosh_max_wait",
            "bosh_inactivity",
            "bosh_max_pending_bytes",
            "allowed_origins",
            "trusted_proxies",
            "max_request_bytes",
            "max_requests_per_second",
            "chat_path",
            "chat_assets",
            "header_timeout",
            "[auth]",
            "scram_iterations",
            "min_password_length",
            "registration_interval",
            "[roster]",
            "max_items",
            "[offline]",
            "max_messages",
            "[hosts.localhost]",
            "registration",
            "anonymous",
            "flash",
            "flash_registration",
            "modules_disabled",
        ];
        for key in keys {
            let written = text.lines().any(|line| {
                let line = line.trim_start();
                line.starts_with(key)
                    && (key.starts_with('[') || line[key.len()..].trim_start().starts_with('='))
            });
            assert!(written, "config.example.toml does not set {key}");
        }
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = err("data_dir = \"d\"\n\n[c2s]\nlisen = [\"127.0.0.1:5222\"]\n");
        assert_eq!(e.key.as_deref(), Some("c2s.lisen"));
        assert_eq!(e.line, Some(4));
        assert!(
            e.message
                .starts_with("unknown key (expected one of listen, direct_tls_listen,"),
            "{e}"
        );
        assert!(
            e.to_string()
                .starts_with("config.toml:4: key c2s.lisen: unknown key"),
            "{e}"
        );
    }

    #[test]
    fn unknown_top_level_key() {
        let e = err("# comment\nsource = \"x\"\n");
        assert_eq!(e.key.as_deref(), Some("source"));
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn dotted_host_name_gets_a_hint() {
        let e = err("[hosts.example.com]\n");
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("[hosts.\"example.com\"]"), "{e}");
        // ...but a plain misspelt key in a host table does not.
        let e = err("[hosts.\"example.com\"]\nregistraton = true\n");
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("hosts.example.com.registraton"), Some(2))
        );
        assert!(!e.message.contains("quoted"), "{e}");
    }

    #[test]
    fn type_errors_speak_toml() {
        let e = err("log = 3\n");
        assert_eq!(e.message, "invalid type: integer `3`, expected a table");
        let e = err("[c2s]\nlisten = \"127.0.0.1:5222\"\n");
        assert_eq!((e.key.as_deref(), e.line), (Some("c2s.listen"), Some(2)));
        assert!(e.message.ends_with("expected an array"), "{e}");
        let e = err("[log]\nlevel = \"\"\n");
        assert_eq!((e.key.as_deref(), e.line), (Some("log.level"), Some(2)));
    }

    #[test]
    fn log_format_is_text_or_json() {
        assert_eq!(ok("").log.format, LogFormat::Text);
        assert_eq!(ok("[log]\nformat = \"json\"\n").log.format, LogFormat::Json);
        let e = err("[log]\nformat = \"jsn\"\n");
        assert_eq!((e.key.as_deref(), e.line), (Some("log.format"), Some(2)));
        assert!(e.message.contains("`text`"), "{e}");
    }

    #[test]
    fn a_log_level_typo_is_refused_not_read_as_a_target() {
        for bad in ["inof", "info,jabberwock=verbose", "=debug", "debug,sqlx"] {
            let e = err(&format!("[log]\nlevel = \"{bad}\"\n"));
            assert_eq!(
                (e.key.as_deref(), e.line),
                (Some("log.level"), Some(2)),
                "{bad}"
            );
            assert!(e.message.contains("is not a level"), "{bad}: {e}");
        }
        for good in [
            "info",
            "WARN",
            "info,jabberwock=debug",
            "jabberwock::c2s=trace",
            "off",
        ] {
            assert_eq!(check_log_filter(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let e = err("\n\n\n\n\n[c2s]\nmax_stanza_bytes = \"big\"\n");
        assert_eq!(
            e.to_string(),
            "config.toml:7: key c2s.max_stanza_bytes: invalid type: string \"big\", expected usize"
        );
    }

    #[test]
    fn bad_listen_address_names_index() {
        let e = err("[c2s]\nlisten = [\n  \"127.0.0.1:5222\",\n  \"nonsense\",\n]\n");
        assert_eq!(e.key.as_deref(), Some("c2s.listen[1]"));
        assert_eq!(e.line, Some(4));
    }

    #[test]
    fn syntax_error_has_line_without_key() {
        let e = err("[c2s]\nlisten = [\n[auth\n");
        assert!(e.line.is_some());
        assert!(!e.message.contains('\n'));
    }

    #[test]
    fn missing_cert_file_names_key_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "x").unwrap();
        let cert = dir.path().join("missing.pem");
        let text = format!(
            "[tls]\ncert = {:?}\nkey = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        );
        let e = err(&text);
        assert_eq!(e.key.as_deref(), Some("tls.cert"));
        assert_eq!(e.line, Some(2));
        let expected = format!("cannot read {}: No such file or directory", cert.display());
        assert_eq!(e.message, expected);
        assert!(
            e.to_string()
                .starts_with("config.toml:2: key tls.cert: cannot read "),
            "{e}"
        );
    }

    #[test]
    fn readable_cert_and_key_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::write(&cert, "x").unwrap();
        std::fs::write(&key, "x").unwrap();
        let text = format!(
            "tls.cert = {:?}\ntls.key = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        );
        let config = ok(&text);
        assert_eq!(config.tls.cert.as_deref(), Some(cert.as_path()));
        assert_eq!(config.tls.key.as_deref(), Some(key.as_path()));
    }

    #[test]
    fn directory_as_cert_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let e = err(&format!("[tls]\ncert = {d:?}\nkey = {d:?}\n"));
        assert_eq!(e.key.as_deref(), Some("tls.cert"));
        assert!(e.message.ends_with("is a directory"), "{e}");
    }

    #[test]
    fn cert_without_key() {
        let e = err("[tls]\ncert = \"/some/cert.pem\"\nkey = \"\"\n");
        assert_eq!(e.key.as_deref(), Some("tls.cert"));
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("tls.key must be set"), "{e}");

        let e = err("[tls]\nkey = \"/some/key.pem\"\n");
        assert_eq!(e.key.as_deref(), Some("tls.key"));
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn bad_host_names() {
        for (text, line) in [
            ("[hosts.\"user@example.com\"]\n", 1),
            (
                "data_dir = \"x\"\n[hosts.\"a b\"]\nregistration = true\n",
                2,
            ),
            ("[hosts.\"\"]\n", 1),
            ("[hosts.\"example.com/res\"]\n", 1),
            ("[hosts.\"example.com:5222\"]\n", 1),
            ("[hosts.'a..b']\n", 1),
            ("[hosts.localhost]\n[hosts.LocalHost]\n", 2),
            ("hosts = { \"x y\" = {} }\n", 1),
        ] {
            let e = err(text);
            assert_eq!(e.line, Some(line), "{text:?}: {e}");
            assert!(
                e.key.as_deref().is_some_and(|k| k.starts_with("hosts.")),
                "{text:?}: {e}"
            );
        }
        let e = err("[hosts.\"a b\"]\n");
        assert_eq!(
            e.to_string(),
            "config.toml:1: key hosts.\"a b\": invalid host name \"a b\": contains whitespace"
        );
    }

    #[test]
    fn empty_hosts_rejected() {
        let e = err("data_dir = \"d\"\nhosts = {}\n");
        assert_eq!(e.key.as_deref(), Some("hosts"));
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn host_names_are_normalised() {
        let config = ok("[hosts.\"Example.COM.\"]\nregistration = true\n[hosts.\"[::1]\"]\n");
        assert_eq!(
            config.hosts.keys().collect::<Vec<_>>(),
            ["[::1]", "example.com"]
        );
        assert!(config.host("example.com").is_some_and(|h| h.registration));
        assert!(config
            .host("EXAMPLE.com.")
            .is_some_and(|h| h.registration && h.flash));
        assert!(
            config.host("localhost").is_none(),
            "listing hosts replaces the default"
        );
    }

    #[test]
    fn durations_are_seconds_and_milliseconds() {
        let config =
            ok("[c2s]\nhandshake_timeout = 5\nidle_timeout = 3600\nauth_failure_delay_ms = 250\n");
        assert_eq!(config.c2s.handshake_timeout, Duration::from_secs(5));
        assert_eq!(config.c2s.idle_timeout, Duration::from_secs(3600));
        assert_eq!(config.c2s.auth_failure_delay, Duration::from_millis(250));

        let e = err("[c2s]\nidle_timeout = 0\n");
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("c2s.idle_timeout"), Some(2))
        );
        let e = err("[c2s]\nhandshake_timeout = 1.5\n");
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("c2s.handshake_timeout"), Some(2))
        );
        assert!(e.message.contains("expected u64"), "{e}");
        let e = err("c2s.auth_failure_delay_ms = 600000\n");
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("c2s.auth_failure_delay_ms"), Some(1))
        );
    }

    #[test]
    fn numeric_limits() {
        let e = err("[c2s]\nmax_stanza_bytes = 1023\n");
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("c2s.max_stanza_bytes"), Some(2))
        );
        let e = err("c2s = { max_auth_failures = 0 }\n");
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("c2s.max_auth_failures"), Some(1))
        );
        let e = err("\n[auth]\n# low\nscram_iterations = 1000\n");
        assert_eq!(
            e.to_string(),
            "config.toml:4: key auth.scram_iterations: must be at least 4096 (RFC 7677), got 1000"
        );
        let e = err("[c2s]\nlisten = []\ndirect_tls_listen = []\n");
        assert_eq!((e.key.as_deref(), e.line), (Some("c2s.listen"), Some(2)));
        // One kind of listener is enough.
        ok("[c2s]\nlisten = []\n");
    }

    #[test]
    fn http_safety_and_chat_keys() {
        let config = ok("[http]\nallowed_origins = [\"https://a.example\"]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\nmax_request_bytes = 2048\nmax_requests_per_second = 0\nchat_path = \"\"\n");
        assert_eq!(config.http.trusted_proxies.len(), 2);
        assert_eq!(config.http.max_requests_per_second, 0);
        for (text, key) in [
            (
                "[http]\nallowed_origins = [\"a.example\"]\n",
                "http.allowed_origins",
            ),
            (
                "[http]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
                "http.trusted_proxies",
            ),
            ("[http]\nmax_request_bytes = 10\n", "http.max_request_bytes"),
            ("[http]\nchat_path = \"chat\"\n", "http.chat_path"),
            ("[http]\nchat_path = \"/chat/\"\n", "http.chat_path"),
            (
                "[http]\nchat_assets = \"/nonexistent/dist\"\n",
                "http.chat_assets",
            ),
        ] {
            let e = err(text);
            assert_eq!(
                (e.key.as_deref(), e.line),
                (Some(key), Some(2)),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn storage_url_resolution() {
        let mut config = Config::default();
        assert_eq!(config.storage_url(), "sqlite:data/jabberwock.sqlite");
        config.data_dir = PathBuf::from("/var/lib/jabberwock");
        assert_eq!(
            config.storage_url(),
            "sqlite:/var/lib/jabberwock/jabberwock.sqlite"
        );
        let config = ok("[storage]\nurl = \"sqlite:/tmp/x.sqlite\"\n");
        assert_eq!(config.storage_url(), "sqlite:/tmp/x.sqlite");
        let config = ok("[storage]\nurl = \"postgres://db/jw\"\n");
        assert_eq!(config.storage_url(), "postgres://db/jw");
        let e = err("[storage]\nurl = \"mysql://db\"\n");
        assert_eq!((e.key.as_deref(), e.line), (Some("storage.url"), Some(2)));
    }

    #[test]
    fn policy_ports_resolution() {
        assert_eq!(Config::default().policy_ports(), "5222");
        let config = ok(
            "[c2s]\nlisten = [\"0.0.0.0:5222\", \"[::]:5222\", \"0.0.0.0:80\", \"0.0.0.0:5222\"]\n",
        );
        assert_eq!(config.policy_ports(), "5222,80");
        let config = ok("[flash]\npolicy_ports = \"5000-6000\"\n");
        assert_eq!(config.policy_ports(), "5000-6000");
        let e = err("[flash]\npolicy_ports = \"5222\\\" evil=\\\"\"\n");
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some("flash.policy_ports"), Some(2))
        );
        let e = err("[flash]\npolicy_domains = [\"*\", \"<x>\"]\n");
        assert_eq!(e.key.as_deref(), Some("flash.policy_domains"));
    }

    #[test]
    fn flash_endpoints() {
        let config = Config::default();
        assert_eq!(config.http.listen.len(), 2);
        assert_eq!(config.http.listen[0].port(), 5280);
        assert_eq!(config.flash.policy_listen[0].port(), 843);
        assert_eq!(config.flash.websocket_path, "/flash");
        let config = ok("[http]\nlisten = []\n[flash]\npolicy_listen = []\nwebsocket_path = \"\"\nwebsocket_origins = [\"https://example.com\", \"http://localhost:8080\", \"http://[::1]:80\"]\n");
        assert!(config.http.listen.is_empty() && config.flash.policy_listen.is_empty());
        assert_eq!(config.flash.websocket_origins.len(), 3);
        for path in ["flash", "/fl ash", "/{x}", "/*rest", "/a:b"] {
            let e = err(&format!("[flash]\nwebsocket_path = {path:?}\n"));
            assert_eq!(
                (e.key.as_deref(), e.line),
                (Some("flash.websocket_path"), Some(2)),
                "{path}"
            );
        }
        for origin in [
            "example.com",
            "https://example.com/",
            "https://",
            "http://a b",
            "*",
            "https://h:x",
            "http://::1",
        ] {
            let e = err(&format!("[flash]\nwebsocket_origins = [{origin:?}]\n"));
            assert_eq!(
                e.key.as_deref(),
                Some("flash.websocket_origins"),
                "{origin}"
            );
        }
    }

    #[test]
    fn unreadable_file_names_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.toml");
        let e = match Config::load(&path) {
            Ok(_) => panic!("loaded a missing file"),
            Err(e) => e,
        };
        assert_eq!(e.file, path.display().to_string());
        assert_eq!(
            e.to_string(),
            format!(
                "{}: cannot read file: No such file or directory",
                path.display()
            )
        );
    }

    #[test]
    fn load_sets_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[hosts.\"example.org\"]\nanonymous = true\n").unwrap();
        let config = match Config::load(&path) {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(config.source.as_deref(), Some(path.as_path()));
        assert!(config.host("example.org").is_some_and(|h| h.anonymous));
    }

    #[test]
    fn error_without_file_or_line() {
        let e = ConfigError {
            file: NO_FILE.to_owned(),
            key: None,
            line: None,
            message: "m".to_owned(),
        };
        assert_eq!(e.to_string(), "<default config>: m");
    }

    #[test]
    fn line_scanner_handles_toml_forms() {
        let text = "a = \"\"\"\n[c2s]\nmax_depth = 1\n\"\"\"\n[c2s]  # real\n'max_depth' = 2\n[hosts . \"x\\u0020y\"]\n";
        let path = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(line_of(text, &path(&["c2s", "max_depth"])), Some(6));
        assert_eq!(line_of(text, &path(&["c2s", "listen"])), Some(5));
        assert_eq!(line_of(text, &path(&["hosts", "x y"])), Some(7));
        assert_eq!(line_of(text, &path(&["hosts"])), Some(7));
        assert_eq!(line_of(text, &path(&["auth"])), None);
    }
}
