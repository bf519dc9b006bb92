//! The HTTP listener: plain HTTP/1.1 (axum on tokio) for the endpoints that browsers reach
//! over WebSocket or HTTP: RFC 7395 ([`xmpp_websocket`]), BOSH ([`bosh`]), XEP-0156
//! discovery ([`discovery`]), Ruffle's socket proxy ([`flash_proxy`]), the chat page, and
//! what modules serve ([`crate::modules::HttpRoutes`]: XEP-0363 file upload), and Prometheus'
//! `/metrics` ([`crate::metrics::http`]) unless it has a listener of its own.
//!
//! Every WebSocket stream ends up in [`crate::listener::serve_stream`], the same core as a
//! TCP connection, and takes one of the server's connection permits (`c2s.max_connections`).
//!
//! The same router serves three kinds of connection: `http.listen` (plain), `http.tls_listen`
//! (TLS with the c2s certificate) and HTTP requests sniffed on a c2s port (stream/accept.rs);
//! [`conn`] serves them all. Every HTTP connection holds a connection permit while it is
//! open; an upgraded one hands it to its stream ([`take_permit`]).

pub mod bosh;
pub mod chat;
pub mod conn;
pub mod discovery;
pub mod flash_proxy;
pub mod safety;
pub mod xmpp_websocket;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::listener::{self, BindError, Listener, ListenerKind};
use crate::server::Server;
use crate::shutdown::ShutdownSignal;

/// What every request handler gets.
#[derive(Clone)]
pub struct HttpState {
    pub server: Arc<Server>,
    pub shutdown: ShutdownSignal,
    /// Held by every upgraded stream until it ends, so [`serve`] can wait for them: an
    /// upgraded connection is no longer the HTTP server's, and its graceful shutdown does
    /// not wait for it.
    sessions: mpsc::Sender<()>,
}

/// Whether a web stream counts as encrypted (no STARTTLS exists inside WebSocket or BOSH):
/// over TLS, or from a loopback peer (a browser on this host, a TLS-terminating proxy)
/// while `http.loopback_is_encrypted` is on.
pub fn counts_as_encrypted(config: &Config, tls: bool, tcp_peer: SocketAddr) -> bool {
    tls || (config.http.loopback_is_encrypted && is_loopback(tcp_peer.ip()))
}

fn is_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
    }
}

/// The connection permit for a stream an HTTP request is upgraded to: its connection's own
/// (it ends as the stream begins; a c2s port's HTTP connection brings the one its TCP
/// connection took), or a new one should it hold none. `None`: `c2s.max_connections` is
/// reached.
pub fn take_permit(
    server: &Server,
    connection: Option<&conn::ConnectionPermit>,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    connection
        .and_then(conn::ConnectionPermit::take)
        .or_else(|| {
            server
                .connections
                .permits()
                .clone()
                .try_acquire_owned()
                .ok()
        })
}

/// Whether any endpoint is configured; with none there is nothing to listen for.
/// A stream's slot under `c2s.max_connections_per_ip` for `client` (the forwarded address
/// behind a trusted proxy), or the refusal, answered with HTTP 429.
pub fn ip_permit(
    server: &Arc<Server>,
    client: SocketAddr,
) -> Result<crate::per_ip::IpPermit, TooManyFromAddress> {
    server.per_ip.try_acquire(client.ip()).ok_or_else(|| {
        tracing::info!(peer = %client, "refused a stream: c2s.max_connections_per_ip reached");
        TooManyFromAddress
    })
}

/// `c2s.max_connections_per_ip` reached for a WebSocket or BOSH stream.
pub struct TooManyFromAddress;

impl axum::response::IntoResponse for TooManyFromAddress {
    fn into_response(self) -> axum::response::Response {
        let status = axum::http::StatusCode::TOO_MANY_REQUESTS;
        (status, "too many connections from your address\n").into_response()
    }
}

fn has_endpoints(config: &Config) -> bool {
    crate::modules::config::any_needs_http(&config.modules)
        || flash_proxy::path(config).is_some()
        || chat::path(config).is_some()
        || bosh::path(config).is_some()
        || xmpp_websocket::path(config).is_some()
        || crate::metrics::http::on_http_listeners(config).is_some()
}

/// Binds `http.listen`, like [`listener::bind_all`] does the c2s ports: an address in use
/// is fatal, a missing IPv6 loopback is skipped.
pub async fn bind(config: &Config) -> Result<Vec<Listener>, BindError> {
    let mut listeners = Vec::new();
    if !has_endpoints(config) {
        if !config.http.listen.is_empty() {
            tracing::info!(
                "no HTTP endpoint enabled (flash.websocket_path), not listening on http.listen"
            );
        }
        return Ok(listeners);
    }
    for addr in &config.http.listen {
        listeners.extend(listener::bind(*addr, ListenerKind::Http).await?);
    }
    for addr in &config.http.tls_listen {
        listeners.extend(listener::bind(*addr, ListenerKind::Https).await?);
    }
    Ok(listeners)
}

/// Every configured endpoint. Paths not routed here get 404.
fn router(state: HttpState) -> Router {
    let mut router = Router::new();
    if let Some(path) = flash_proxy::path(&state.server.config) {
        router = router.route(path, axum::routing::get(flash_proxy::upgrade));
    }
    if let Some(path) = bosh::path(&state.server.config) {
        router = router.merge(bosh::routes(path, &state));
    }
    if let Some(path) = xmpp_websocket::path(&state.server.config) {
        router = router.route(path, axum::routing::get(xmpp_websocket::upgrade));
    }
    if discovery::enabled(&state.server.config) {
        router = router
            .route(
                discovery::HOST_META,
                axum::routing::get(discovery::host_meta),
            )
            .route(
                discovery::HOST_META_JSON,
                axum::routing::get(discovery::host_meta_json),
            );
    }
    router = chat::routes(router, &state.server.config);
    let server = state.server.clone();
    let mut router = router.with_state(state);
    // What modules serve (XEP-0363 uploads), each under its own prefix.
    for routes in server.modules.http_routes() {
        router = router.merge(routes.router(server.clone()));
    }
    if crate::metrics::http::on_http_listeners(&server.config).is_some() {
        router = router.merge(crate::metrics::http::routes(server.clone()));
    }
    // Last, so the safety layers wrap every route above and the 404 fallback.
    safety::apply(router, server)
}

/// Serves HTTP on every listener until shutdown, then waits for the WebSocket streams to
/// close (each is told to by the shutdown signal, like a TCP session).
pub async fn serve(server: Arc<Server>, listeners: Vec<Listener>, shutdown: ShutdownSignal) {
    let (sessions, mut all_ended) = mpsc::channel::<()>(1);
    let app = router(HttpState {
        server: server.clone(),
        shutdown: shutdown.clone(),
        sessions,
    });
    // HTTP on the c2s ports, whenever an endpoint is on (even with no HTTP listener).
    if has_endpoints(&server.config) {
        if let Ok(mut handoff) = server.http_handoff.lock() {
            *handoff = Some(conn::Handoff {
                app: app.clone(),
                shutdown: shutdown.clone(),
            });
        }
    }
    let mut servers = JoinSet::new();
    for listener in listeners {
        servers.spawn(conn::serve_listener(
            server.clone(),
            listener,
            app.clone(),
            shutdown.clone(),
        ));
    }
    drop(app);
    while servers.join_next().await.is_some() {}
    // The c2s ports hand over no more requests; connections they handed over hold clones.
    if let Ok(mut handoff) = server.http_handoff.lock() {
        handoff.take();
    }
    drop(server);
    // Resolves once the last upgraded stream has dropped its sender.
    let _ = all_ended.recv().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses() {
        assert!(is_loopback("127.0.0.1".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_loopback("192.0.2.1".parse().unwrap()));
        assert!(!is_loopback("::ffff:192.0.2.1".parse().unwrap()));
    }
}
