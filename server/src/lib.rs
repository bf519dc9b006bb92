//! Jabberwock, an XMPP server (RFC 6120/6121) for standard clients and Flash chat widgets.
//!
//! Layout, in the order a byte travels:
//! - [`listener`]: listening sockets, accept loop, one task per connection.
//! - [`http`]: the HTTP listener; its WebSocket endpoints (Ruffle's socket proxy) carry
//!   streams into the same core. [`flash_policy`]: the dedicated Flash policy port (843).
//! - [`stream`]: the stream layer. Sniffs first bytes (TLS, XML, Flash, policy request),
//!   frames the connection ([`stream::connection::Connection`]) for either wire dialect.
//! - [`c2s`]: negotiation as phases: stream header, STARTTLS, SASL, bind.
//! - [`session`]: a bound session: client stanzas to the router, inbox to the client;
//!   [`session_id`]: its id, unique across processes.
//! - [`router`]: who gets a stanza; the server's own IQs go to [`modules`].
//! - [`presence`], [`roster`], [`offline`]: the IM core (RFC 6121, XEP-0160).
//! - [`modules`]: one XEP per file, registered in a [`modules::Registry`].
//! - [`admin`]: the admin control socket the `jabberwock` command talks to; [`reload`]:
//!   applying a changed config (SIGHUP or the socket).
//! - [`accounts`], [`config`], [`tls`], [`cli`], [`shutdown`], [`error`]: the supporting cast;
//!   [`systemd`]: readiness, reload, stop and watchdog notifications to the service manager;
//!   [`node_id`]: this node's id, kept in `data_dir`, that its guests are tagged with;
//!   [`migrate`]: `jabberwock import|export` (XEP-0227, Prosody's data directory).
//!
//! Errors: typed enums inside; [`error`] is where internal faults become XMPP conditions.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod admin;
pub mod c2s;
pub mod cli;
pub mod config;
pub mod error;
pub mod flash_policy;
pub mod http;
pub mod listener;
pub mod live;
pub mod metrics;
pub mod migrate;
pub mod modules;
pub mod node_id;
pub mod per_ip;
pub mod reload;
pub mod roster;
pub mod router;
pub mod server;
pub mod session;
pub mod session_id;
pub mod shutdown;
pub mod stream;
pub mod systemd;
pub mod tls;
pub mod token_bucket;

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::server::Server;
use crate::shutdown::Shutdown;

/// Why the server could not start: all of them are the admin's to fix (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsSetupError),
    #[error("storage {url}: {source}")]
    Storage {
        url: String,
        source: jabberwock_storage::StoreError,
    },
    #[error("decoy salt secret: {0}")]
    Secret(#[from] accounts::SecretError),
    /// The key of XEP-0421 occupant ids (`modules/muc/`), kept in `data_dir`.
    #[error("occupant id secret: {0}")]
    OccupantIdSecret(accounts::SecretError),
    /// The secret behind XEP-0185 dialback keys (`modules/s2s/`), kept in `data_dir`.
    #[error("dialback secret: {0}")]
    DialbackSecret(accounts::SecretError),
    /// The directory of XEP-0363 uploads (`modules/upload/`), under `data_dir`.
    #[error("uploads directory {}: {}", path.display(), config::io_reason(source))]
    Uploads {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The admin socket in `data_dir` (`admin/`).
    #[error(transparent)]
    AdminSocket(#[from] admin::socket::SocketError),
    /// A listen address that can't be used, reported against its config key.
    #[error(transparent)]
    Listen(#[from] config::ConfigError),
}

/// How long sessions get to close their streams once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs the server until SIGTERM/SIGINT, then closes every stream and returns.
pub async fn run(config: Config) -> Result<(), StartError> {
    run_with(config, None).await
}

/// [`run`], with a way to apply a new `log.level` when SIGHUP re-reads the config
/// (reload.rs).
pub async fn run_with(
    mut config: Config,
    log: Option<reload::LogReload>,
) -> Result<(), StartError> {
    let loaded = config.clone();
    // Listen first: a port in use should stop us before anything is written to disk.
    let listeners = listener::bind_all(&config).await.map_err(|e| {
        let key = match e.kind {
            listener::ListenerKind::DirectTls => "direct_tls_listen",
            _ => "listen",
        };
        config.problem(&["c2s", key], e.to_string())
    })?;
    let http_listeners = http::bind(&config).await.map_err(|e| {
        let key = match e.kind {
            listener::ListenerKind::Https => "tls_listen",
            _ => "listen",
        };
        config.problem(&["http", key], e.to_string())
    })?;
    let metrics_listeners = metrics::http::bind(&config)
        .await
        .map_err(|e| config.problem(&["metrics", "listen"], e.to_string()))?;
    // Never fatal: port 843 needs root, and Flash Player also asks on the c2s ports.
    let policy_listeners = flash_policy::bind(&config).await;
    // Port 0 means "any free port": from here on the config names the addresses actually
    // bound, so what is derived from it (the Flash policy's to-ports) is true.
    config.c2s.listen = listeners
        .iter()
        .filter(|l| l.kind == listener::ListenerKind::C2s)
        .filter_map(|l| l.socket.local_addr().ok())
        .collect();
    // Likewise the HTTP listeners' (the URLs of XEP-0363 upload slots are derived from them).
    if !http_listeners.is_empty() {
        let bound = |kind| -> Vec<std::net::SocketAddr> {
            http_listeners
                .iter()
                .filter(|l| l.kind == kind)
                .filter_map(|l| l.socket.local_addr().ok())
                .collect()
        };
        config.http.listen = bound(listener::ListenerKind::Http);
        config.http.tls_listen = bound(listener::ListenerKind::Https);
    }
    let identity = tls::ensure_identity(&config)?;
    match tls::summary(&identity.cert_path) {
        Some(cert) => tracing::info!(
            file = %identity.cert_path.display(),
            subject = %cert.subject,
            sha256 = %cert.sha256,
            not_after = %cert.not_after,
            "certificate"
        ),
        None => {
            tracing::warn!(file = %identity.cert_path.display(), "certificate: cannot read its subject and validity")
        }
    }
    let (tls_config, current_cert) = tls::renewable_server_config(&identity)?;
    let acceptor = stream::transport::acceptor(tls_config);
    let url = config.storage_url();
    let store = jabberwock_storage::open(&url)
        .await
        .map_err(|source| StartError::Storage {
            url: url.clone(),
            source,
        })?;
    let decoy_key = accounts::decoy_key(&config.data_dir)?;
    let node_id = node_id::load_or_create(&config.data_dir)?;
    let generated = config.tls.cert.is_none();
    let server = Arc::new(
        Server::new(config, store, acceptor)
            .with_decoy_key(decoy_key)
            .with_node_id(node_id)
            .with_certificate(current_cert.clone()),
    );
    if generated {
        // A generated certificate is ours to renew before it ends (tls.rs).
        tokio::spawn(tls::renew_daily(server.clone(), current_cert));
    }
    // Before anyone connects: guests a crash of this node left behind (c2s/guest.rs).
    c2s::guest::remove_leftovers(&server).await;
    // And what services kept from an earlier run (persistent rooms, modules/muc/).
    server.modules.start_services(&server).await?;
    // And federation's listener, if the module is on (modules/s2s/).
    server.modules.start_remote(&server).await?;
    // And what modules run beside their hooks (the archive's retention, modules/mam/).
    server.modules.start_modules(&server).await;
    let mut admin_socket = admin::socket::AdminSocket::bind(&server.config.data_dir)?;
    let termination = shutdown::Termination::install();
    // SIGHUP and `jabberwock reload` re-read the config; it never ends the server.
    let reloader = Arc::new(reload::Reloader::new(loaded, log, server.clone()));
    tokio::spawn(reload::Hangup::install().serve(reloader.clone()));
    let bound: Vec<(String, std::net::SocketAddr)> = listeners
        .iter()
        .chain(&http_listeners)
        .chain(&policy_listeners)
        .chain(&metrics_listeners)
        .filter_map(|l| Some((l.kind.to_string(), l.socket.local_addr().ok()?)))
        .collect();
    // Said only now that storage is ready and the signals are caught, so whoever waits for
    // these lines (an admin, a test harness) can rely on the server being able to serve,
    // and to stop gracefully.
    for (kind, addr) in &bound {
        tracing::info!(%kind, %addr, "listening");
    }
    let hosts = server.hosts();
    let config_file = server
        .config
        .source
        .as_ref()
        .map_or_else(|| "none (defaults)".to_owned(), |p| p.display().to_string());
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %config_file,
        data_dir = %server.config.data_dir.display(),
        hosts = %hosts.join(","),
        storage = %url,
        admin_socket = %admin_socket.path().display(),
        "Jabberwock started"
    );
    // Type=notify: systemd starts what is ordered after us only now.
    systemd::notify(systemd::READY);
    if let Some(interval) = systemd::watchdog_interval() {
        tokio::spawn(systemd::keep_watchdog(interval));
    }

    let shutdown = Shutdown::new();
    let admin = Arc::new(admin::socket::Admin {
        server: server.clone(),
        started: std::time::Instant::now(),
        listeners: bound,
        reloader,
    });
    tokio::spawn(admin_socket.serving(admin, shutdown.signal()));
    let serving = tokio::spawn({
        let c2s = listener::serve(server.clone(), listeners, shutdown.signal());
        let http = http::serve(server.clone(), http_listeners, shutdown.signal());
        let policy = flash_policy::serve(server.clone(), policy_listeners, shutdown.signal());
        let metrics = metrics::http::serve(server.clone(), metrics_listeners, shutdown.signal());
        let remote = {
            let server = server.clone();
            let signal = shutdown.signal();
            async move { server.modules.serve_remote(server.clone(), signal).await }
        };
        async move {
            tokio::join!(c2s, http, policy, metrics, remote);
        }
    });
    termination.requested().await;
    systemd::notify(systemd::STOPPING);
    tracing::info!("shutting down: closing every stream");
    shutdown.trigger();
    if tokio::time::timeout(SHUTDOWN_GRACE, serving).await.is_err() {
        tracing::warn!("some sessions did not close in time");
    }
    // What the sessions queued for storage and did not wait for (the archive).
    if tokio::time::timeout(SHUTDOWN_GRACE, server.modules.stop_modules(&server))
        .await
        .is_err()
    {
        tracing::warn!("some queued writes were not finished in time");
    }
    // SQLite's WAL goes into the database file, which then holds everything by itself.
    if tokio::time::timeout(SHUTDOWN_GRACE, server.store.close())
        .await
        .is_err()
    {
        tracing::warn!("the database was not closed in time");
    }
    // The socket file goes with a clean shutdown: a later command finds no server.
    drop(admin_socket);
    tracing::info!("stopped");
    Ok(())
}
