//! Federation: server-to-server streams (RFC 6120, `jabber:server`) with other servers,
//! authenticated by XEP-0220 server dialback (keys as XEP-0185) after STARTTLS.
//!
//! The router hands this module every stanza for a domain we don't serve
//! ([`crate::modules::Remote`]); it goes out on the stream for its (local, remote) domain
//! pair ([`pool`]), opened on demand ([`outbound`]) and queued meanwhile. Other servers
//! connect to our listener ([`listener`], [`inbound`]); what they send, once dialback
//! ([`dialback`]) proved the sending domain, enters the router through
//! `Router::route_from_remote`. Peers are found through a static map in the config
//! ([`config`]), else DNS SRV and A/AAAA ([`resolve`]).

mod config;
mod dialback;
mod inbound;
mod listener;
mod outbound;
mod pool;
mod resolve;

use std::sync::{Arc, Mutex, OnceLock, Weak};

use async_trait::async_trait;
use jabberwock_protocol::xml::Element;
use tokio::net::TcpListener;

use super::config::TableError;
use super::{xep, Module, Registrar, Remote, Xep};
use crate::server::Server;
use crate::shutdown::ShutdownSignal;
pub use config::S2sConfig;

/// The file in `data_dir` holding the secret dialback keys are derived from (0600).
const SECRET_FILE: &str = "dialback.key";

pub struct S2s;

impl Module for S2s {
    const NAME: &'static str = "s2s";
    const XEPS: &'static [Xep] = &[xep(220, "1.1.1"), xep(185, "1.0")];
    /// Off unless the config turns it on: the zero-config host is `localhost` with a
    /// self-signed certificate, which no other server can reach or believe, so listening
    /// on 5269 would only open a port (README, "Federation").
    const ON_BY_DEFAULT: bool = false;
    type Config = S2sConfig;

    fn check(config: &S2sConfig, _hosts: &[String]) -> Result<(), TableError> {
        config.check()
    }

    fn register(config: S2sConfig, registrar: &mut Registrar<'_>) {
        registrar.remote(Arc::new(Federation::new(config)));
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
    listeners: Mutex<Vec<TcpListener>>,
    pool: pool::Pool,
    resolver: resolve::Resolver,
    tls: tokio_rustls::TlsConnector,
    /// The same with ALPN `xmpp-server`, for XEP-0368 direct TLS.
    tls_direct: tokio_rustls::TlsConnector,
    /// The c2s certificate with ALPN `xmpp-server` for incoming STARTTLS, set at start.
    tls_in: OnceLock<tokio_rustls::TlsAcceptor>,
}

impl Federation {
    fn new(config: S2sConfig) -> Self {
        let tls = outbound::tls_connector();
        // XEP-0368 §4: a direct TLS s2s connection names its protocol in ALPN.
        let mut direct = (**tls.config()).clone();
        direct.alpn_protocols = vec![b"xmpp-server".to_vec()];
        Federation(Arc::new(Shared {
            resolver: resolve::Resolver::new(&config),
            config,
            secret: OnceLock::new(),
            server: OnceLock::new(),
            shutdown: OnceLock::new(),
            listeners: Mutex::new(Vec::new()),
            pool: pool::Pool::default(),
            tls,
            tls_direct: tokio_rustls::TlsConnector::from(Arc::new(direct)),
            tls_in: OnceLock::new(),
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

    /// A signal for tasks started after shutdown began, or before serving: never triggered
    /// by itself, the process ends them.
    fn shutdown(&self) -> Option<ShutdownSignal> {
        self.shutdown.get().cloned()
    }
}

/// Whether `domain` is one we serve: a host or a service's domain.
fn is_ours(server: &Server, domain: &str) -> bool {
    server.host(domain).is_some() || server.modules.service(domain).is_some()
}

#[async_trait]
impl Remote for Federation {
    async fn start(&self, server: &Arc<Server>) -> Result<(), crate::StartError> {
        let shared = &self.0;
        let secret = crate::accounts::kept_secret(&server.config.data_dir, SECRET_FILE)
            .map_err(crate::StartError::DialbackSecret)?;
        let _ = shared.secret.set(secret);
        let _ = shared.server.set(Arc::downgrade(server));
        // COMPAT: Prosody offers ALPN `xmpp-server` in its STARTTLS handshakes too, and
        // rustls refuses an offer with nothing in common with ours (RFC 7301 §3.2); the
        // c2s acceptor says `xmpp-client` (XEP-0368), so s2s has its own.
        let mut tls_in = (**server.tls.config()).clone();
        tls_in.alpn_protocols = vec![b"xmpp-server".to_vec()];
        let _ = shared
            .tls_in
            .set(tokio_rustls::TlsAcceptor::from(Arc::new(tls_in)));
        let bound = listener::bind(&server.config, &shared.config.listen).await?;
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
