//! The HTTP listener: plain HTTP/1.1 (axum on tokio) for the endpoints that browsers reach
//! over WebSocket. Today that is Ruffle's socket proxy ([`flash_proxy`]); RFC 7395 WebSocket
//! and BOSH (XEP-0124/0206) are meant to be added to [`router`] as further routes.
//!
//! Every WebSocket stream ends up in [`crate::listener::serve_stream`], the same core as a
//! TCP connection, and takes one of the server's connection permits (`c2s.max_connections`).

pub mod flash_proxy;

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

/// Whether any endpoint is configured; with none there is nothing to listen for.
fn has_endpoints(config: &Config) -> bool {
    flash_proxy::path(config).is_some()
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
    Ok(listeners)
}

/// Every configured endpoint. Paths not routed here get 404.
fn router(state: HttpState) -> Router {
    let mut router = Router::new();
    if let Some(path) = flash_proxy::path(&state.server.config) {
        router = router.route(path, axum::routing::get(flash_proxy::upgrade));
    }
    router.with_state(state)
}

/// Serves HTTP on every listener until shutdown, then waits for the WebSocket streams to
/// close (each is told to by the shutdown signal, like a TCP session).
pub async fn serve(server: Arc<Server>, listeners: Vec<Listener>, shutdown: ShutdownSignal) {
    let (sessions, mut all_ended) = mpsc::channel::<()>(1);
    let app = router(HttpState {
        server,
        shutdown: shutdown.clone(),
        sessions,
    });
    let mut servers = JoinSet::new();
    for listener in listeners {
        let service = app
            .clone()
            .into_make_service_with_connect_info::<SocketAddr>();
        let mut stop = shutdown.clone();
        servers.spawn(async move {
            let addr = listener.socket.local_addr().ok();
            let served = axum::serve(listener.socket, service)
                .with_graceful_shutdown(async move { stop.triggered().await })
                .await;
            if let Err(e) = served {
                tracing::warn!(?addr, error = %e, "HTTP listener failed");
            }
        });
    }
    drop(app);
    while servers.join_next().await.is_some() {}
    // Resolves once the last upgraded stream has dropped its sender.
    let _ = all_ended.recv().await;
}
