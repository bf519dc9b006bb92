//! Ruffle's socket proxy endpoint (`flash.websocket_path`, `/flash` by default).
//!
//! Ruffle runs Flash content in the browser, where there is no raw TCP: when a SWF opens an
//! `XMLSocket`, Ruffle opens a WebSocket to the `proxyUrl` of its `socketProxy` entry and
//! sends the socket's bytes in binary frames, one frame per `send()`, each unit already
//! NUL-terminated; it reads binary frames only and splits them on NUL (docs/ruffle.md). No
//! subprotocol, and no `<policy-file-request/>`: Ruffle never asks for one.
//!
//! So this endpoint adds little of its own: the WebSocket becomes a byte
//! [`Transport`](crate::stream::transport::Transport) and the stream runs through
//! [`listener::serve_stream`], as a Flash client on a c2s port does. One difference: the
//! connection is marked as a Flash socket, so the Flash policy (no STARTTLS required, the
//! `[flash]` mechanisms) applies even to a standard `<stream:stream>` header, which XIFF 3
//! and the Flex clients send; `c2s.require_encryption` would make them give up.

use std::net::SocketAddr;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::header::ORIGIN;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use tokio::time::Instant;
use tracing::Instrument;

use super::conn::ConnectionPermit;
use super::HttpState;
use crate::config::Config;
use crate::listener;
use crate::stream::connection::Connection;
use crate::stream::permits::ConnectionPermits;
use crate::stream::transport::Transport;
use crate::stream::websocket::WsStream;

/// Read buffer of the WebSocket library per connection: small, as for TCP sessions.
const READ_BUFFER: usize = 4096;

/// The route, when the endpoint is on: `flash.enabled` and a `flash.websocket_path`.
pub fn path(config: &Config) -> Option<&str> {
    let path = config.flash.websocket_path.as_str();
    (config.flash.enabled && !path.is_empty()).then_some(path)
}

/// `GET <websocket_path>` with a WebSocket upgrade.
pub async fn upgrade(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    permit: Option<Extension<ConnectionPermit>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let server = state.server.clone();
    let flash = &server.config.flash;
    if !origin_allowed(&flash.websocket_origins, headers.get(ORIGIN)) {
        tracing::info!(%peer, origin = ?headers.get(ORIGIN), "refused a Flash WebSocket: origin not in flash.websocket_origins");
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    let Some(permit) = super::take_permit(&server, permit.as_ref().map(|Extension(p)| p)) else {
        tracing::warn!(%peer, "refused a Flash WebSocket: c2s.max_connections reached");
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections\n").into_response();
    };
    let ip_permit = match super::ip_permit(&server, peer) {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    // One Ruffle frame is one XMLSocket send(), normally one unit: the stream reader
    // enforces the real limits, this only bounds what a single frame can make us buffer.
    let live = server.live.get();
    let c2s = &live.c2s;
    let max_frame = 2 * c2s.max_stanza_bytes.max(c2s.max_header_bytes);
    let deadline = Instant::now() + c2s.handshake_timeout;
    let span = tracing::info_span!("conn", %peer, kind = "flash-websocket");
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_frame_size(max_frame)
        .max_message_size(max_frame)
        .on_upgrade(move |socket| {
            async move {
                let HttpState {
                    server,
                    shutdown,
                    sessions,
                } = state;
                let transport = Transport::WebSocket(Box::new(WsStream::new(socket)));
                // Every stream here comes from a Flash socket, whatever its header.
                let permits = ConnectionPermits::new(permit, ip_permit);
                let conn = Connection::new(transport, peer, server.limits(), &[])
                    .flash_socket()
                    .holding(permits);
                listener::serve_stream(&server, conn, deadline, shutdown).await;
                drop(sessions);
            }
            .instrument(span)
        })
}

/// An empty allow-list allows any origin; otherwise the request's `Origin` must be listed
/// (compared case-insensitively: scheme and host are). A request without `Origin` does
/// not come from a browser page, and is refused when a list is configured.
fn origin_allowed(allowed: &[String], origin: Option<&HeaderValue>) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some(origin) = origin.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let any: Vec<String> = Vec::new();
        let list = vec!["http://good.example".to_owned()];
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert!(origin_allowed(&any, None));
        assert!(origin_allowed(&any, Some(&v("http://evil.example"))));
        assert!(origin_allowed(&list, Some(&v("http://good.example"))));
        assert!(origin_allowed(&list, Some(&v("HTTP://Good.Example"))));
        assert!(!origin_allowed(&list, Some(&v("http://evil.example"))));
        assert!(!origin_allowed(&list, Some(&v("http://good.example:8080"))));
        assert!(!origin_allowed(&list, Some(&v("null"))));
        assert!(!origin_allowed(&list, None));
    }
}
