//! `GET /metrics`: on the HTTP listeners (`http.listen`, `http.tls_listen`), or, with
//! `metrics.listen`, on addresses of its own (as Prosody's mod_http_openmetrics and
//! ejabberd's mod_prometheus serve on their HTTP servers or a port of their own). Only
//! addresses in `metrics.allow` get an answer (loopback by default): the counts say who is
//! busy, which is not for everyone. Off unless `metrics.enabled`; then the path is a 404.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::config::Config;
use crate::http::safety::Network;
use crate::listener::{self, BindError, Listener, ListenerKind};
use crate::server::Server;

const OPENMETRICS: &str = "application/openmetrics-text";

/// The path served on the HTTP listeners: metrics on, without addresses of their own.
pub fn on_http_listeners(config: &Config) -> Option<&str> {
    (config.metrics.enabled && config.metrics.listen.is_empty())
        .then_some(config.metrics.path.as_str())
}

/// The route, with its state.
pub fn routes(server: Arc<Server>) -> Router {
    let path = server.config.metrics.path.clone();
    Router::new()
        .route(&path, axum::routing::get(scrape))
        .with_state(server)
}

/// Binds `metrics.listen` when metrics are on; an address in use is fatal, as for the
/// other listeners.
pub async fn bind(config: &Config) -> Result<Vec<Listener>, BindError> {
    let mut listeners = Vec::new();
    if config.metrics.enabled {
        for addr in &config.metrics.listen {
            listeners.extend(listener::bind(*addr, ListenerKind::Metrics).await?);
        }
    }
    Ok(listeners)
}

async fn scrape(
    State(server): State<Arc<Server>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let allowed = server
        .config
        .metrics
        .allow
        .iter()
        .filter_map(|n| Network::parse(n))
        .any(|n| n.contains(client.ip()));
    if !allowed {
        tracing::debug!(%client, "metrics refused: not in metrics.allow");
        return (StatusCode::FORBIDDEN, "not in metrics.allow\n").into_response();
    }
    // A scraper that asks for OpenMetrics gets it (Prometheus does, and takes either).
    let openmetrics = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(OPENMETRICS));
    let body = server.modules.metrics().render(openmetrics);
    let content_type = if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Serves the route alone on `metrics.listen` until shutdown.
pub async fn serve(
    server: Arc<Server>,
    listeners: Vec<Listener>,
    shutdown: crate::shutdown::ShutdownSignal,
) {
    let mut servers = tokio::task::JoinSet::new();
    for listener in listeners {
        let app = routes(server.clone());
        servers.spawn(crate::http::conn::serve_listener(
            server.clone(),
            listener,
            app,
            shutdown.clone(),
        ));
    }
    while servers.join_next().await.is_some() {}
}
