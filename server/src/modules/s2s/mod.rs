//! Federation: server-to-server streams (RFC 6120, `jabber:server`) with other servers,
//! after STARTTLS authenticated by SASL EXTERNAL (XEP-0178) when the peer's certificate
//! proves its domain ([`certificate`]), else by XEP-0220 server dialback (keys as
//! XEP-0185), as each remote domain's policy allows ([`config`]).
//!
//! The router hands this module every stanza for a domain we don't serve
//! ([`crate::modules::Remote`]); it goes out on the stream for its (local, remote) domain
//! pair ([`pool`]), opened on demand ([`outbound`]) and queued meanwhile. Other servers
//! connect to our listener ([`listener`], [`inbound`]); what they send, once dialback
//! ([`dialback`]) proved the sending domain, enters the router through
//! `Router::route_from_remote`. Peers are found through a static map in the config
//! ([`config`]), else DNS SRV and A/AAAA ([`resolve`]).

mod certificate;
mod config;
mod dialback;
mod inbound;
mod limits;
mod listener;
mod outbound;
mod pool;
mod resolve;

use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use async_trait::async_trait;
use jabberwock_protocol::xml::Element;

use super::config::TableError;
use super::{xep, Module, Registrar, Remote, Xep};
use crate::server::Server;
use crate::shutdown::ShutdownSignal;
use crate::stream::connection::Connection;
pub use config::S2sConfig;

/// The file in `data_dir` holding the secret dialback keys are derived from (0600).
const SECRET_FILE: &str = "dialback.key";

pub struct S2s;

impl Module for S2s {
    const NAME: &'static str = "s2s";
    const XEPS: &'static [Xep] = &[xep(220, "1.1.1"), xep(185, "1.0"), xep(178, "1.2")];
    /// Off unless the config turns it on: the zero-config host is `localhost` with a
    /// self-signed certificate, which no other server can reach or believe, so listening
    /// on 5269 would only open a port (README, "Federation").
    const ON_BY_DEFAULT: bool = false;
    type Config = S2sConfig;

    fn check(config: &S2sConfig, _hosts: &[String]) -> Result<(), TableError> {
        config.check()
    }

    fn register(config: S2sConfig, registrar: &mut Registrar<'_>) {
        let federation = Federation::new(config);
        // The limits per peer apply to the next incoming stream; the rest (listeners,
        // peers, trust, policies, timeouts) is bound at start.
        let shared = federation.0.clone();
        registrar.on_reload(
            &["max_streams_per_address", "max_streams_per_domain"],
            move |config: S2sConfig| {
                shared.per_address.set_max(config.max_streams_per_address);
                shared.per_domain.set_max(config.max_streams_per_domain);
                Ok(())
            },
        );
        registrar.remote(Arc::new(federation));
    }
}

/// The module as the registry holds it; its tasks share the state.
struct Federation(Arc<Shared>);

/// What every federation task shares: the config, this server's dialback secret, the
/// listeners bound at start, the outgoing streams.
pub(crate) struct Shared {
    config: S2sConfig,
    secret: OnceLock<Vec<u8>>,
    /// Set at start; weak, since the server owns the module registry that owns us.
    server: OnceLock<Weak<Server>>,
    shutdown: OnceLock<ShutdownSignal>,
    listeners: Mutex<Vec<listener::Bound>>,
    pool: pool::Pool,
    resolver: resolve::Resolver,
    /// TLS of outgoing streams (presenting our certificate) and incoming ones (asking for
    /// the peer's), set at start.
    tls_out: OnceLock<tokio_rustls::TlsConnector>,
    /// The same with ALPN `xmpp-server`, for XEP-0368 direct TLS.
    tls_direct: OnceLock<tokio_rustls::TlsConnector>,
    tls_in: OnceLock<tokio_rustls::TlsAcceptor>,
    /// The roots peers' certificates are checked against, loaded at start.
    trust: OnceLock<certificate::Trust>,
    /// Incoming streams per remote address, and authenticated ones per remote domain.
    per_address: Arc<limits::Counts<IpAddr>>,
    per_domain: Arc<limits::Counts<String>>,
}

impl Federation {
    fn new(config: S2sConfig) -> Self {
        Federation(Arc::new(Shared {
            resolver: resolve::Resolver::new(&config),
            per_address: limits::Counts::new(config.max_streams_per_address),
            per_domain: limits::Counts::new(config.max_streams_per_domain),
            config,
            secret: OnceLock::new(),
            server: OnceLock::new(),
            shutdown: OnceLock::new(),
            listeners: Mutex::new(Vec::new()),
            pool: pool::Pool::default(),
            tls_out: OnceLock::new(),
            tls_direct: OnceLock::new(),
            tls_in: OnceLock::new(),
            trust: OnceLock::new(),
        }))
    }
}

impl Shared {
    fn secret(&self) -> &[u8] {
        self.secret.get().map_or(&[], Vec::as_slice)
    }

    fn server(&self) -> Option<Arc<Server>> {
        self.server.get().and_then(Weak::upgrade)
    }

    /// Whether the peer's certificate on `conn` proves `domain`; the reason if not.
    fn certificate_proves(
        &self,
        conn: &Connection,
        domain: &str,
    ) -> Result<(), certificate::CertificateError> {
        match self.trust.get() {
            Some(trust) => trust.check(conn.peer_certificates(), domain),
            None => Err(certificate::CertificateError::Missing),
        }
    }

    /// A signal for tasks started after shutdown began, or before serving: never triggered
    /// by itself, the process ends them.
    fn shutdown(&self) -> Option<ShutdownSignal> {
        self.shutdown.get().cloned()
    }
}

/// Whether `domain` is one we serve: a host or a service's domain.
fn is_ours(server: &Server, domain: &str) -> bool {
    server.serves(domain) || server.modules.is_service(domain)
}

/// The host `domain` belongs to: itself, or the host whose service it is.
fn host_of(server: &Server, domain: &str) -> Option<String> {
    if server.serves(domain) {
        return Some(domain.to_owned());
    }
    server.modules.service(domain).map(|s| s.host.clone())
}

/// How a stream was authenticated, for the log.
#[derive(Clone, Copy, Debug)]
enum Method {
    External,
    Dialback,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::External => "EXTERNAL",
            Method::Dialback => "dialback",
        })
    }
}

/// The one line an admin reads per authenticated stream (or domain pair on it): which way,
/// which domains, how proved, the TLS version, and whether TLS came from the first byte
/// (XEP-0368 direct TLS) rather than by STARTTLS.
fn log_authenticated(
    direction: &str,
    local: &str,
    remote: &str,
    method: Method,
    conn: &Connection,
    direct_tls: bool,
) {
    let tls = match conn.tls_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        Some(_) => "other",
        None => "none",
    };
    tracing::info!(
        %direction,
        %local,
        %remote,
        %method,
        %tls,
        direct_tls,
        "s2s stream authenticated"
    );
}

#[async_trait]
impl Remote for Federation {
    async fn start(&self, server: &Arc<Server>) -> Result<(), crate::StartError> {
        let shared = &self.0;
        let secret = crate::accounts::kept_secret(&server.config.data_dir, SECRET_FILE)
            .map_err(crate::StartError::DialbackSecret)?;
        let _ = shared.secret.set(secret);
        let _ = shared.server.set(Arc::downgrade(server));
        let ca_problem = |e: String| {
            crate::StartError::from(server.config.problem(&["modules", "s2s", "ca_file"], e))
        };
        let trust = certificate::Trust::load(shared.config.ca_file.as_deref())
            .map_err(|e| ca_problem(e.to_string()))?;
        let _ = shared.trust.set(trust);
        let tls_error = |e: rustls::Error| crate::StartError::Tls(e.into());
        let client = certificate::client_config(server.certificate.clone()).map_err(tls_error)?;
        // XEP-0368 §3: a direct TLS s2s connection names its protocol in ALPN.
        let mut direct = (*client).clone();
        direct.alpn_protocols = vec![certificate::ALPN.to_vec()];
        let _ = shared.tls_out.set(tokio_rustls::TlsConnector::from(client));
        let _ = shared
            .tls_direct
            .set(tokio_rustls::TlsConnector::from(Arc::new(direct)));
        let incoming = certificate::server_config(server.tls.config()).map_err(tls_error)?;
        let _ = shared.tls_in.set(tokio_rustls::TlsAcceptor::from(incoming));
        let config = &shared.config;
        let bound =
            listener::bind(&server.config, &config.listen, &config.direct_tls_listen).await?;
        *shared.listeners.lock().unwrap_or_else(|p| p.into_inner()) = bound;
        Ok(())
    }

    async fn serve(&self, server: Arc<Server>, shutdown: ShutdownSignal) {
        let shared = self.0.clone();
        let _ = shared.shutdown.set(shutdown.clone());
        let listeners =
            std::mem::take(&mut *shared.listeners.lock().unwrap_or_else(|p| p.into_inner()));
        listener::serve(shared, server, listeners, shutdown).await;
    }

    fn send(&self, _server: &Server, stanza: Element) {
        pool::send(&self.0, stanza);
    }
}
