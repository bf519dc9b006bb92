//! XMPP over WebSocket (RFC 7395) at `http.websocket_path` (`/xmpp-websocket` by default),
//! on the HTTP listeners (ws://, wss://) and on the c2s ports (an HTTP request there is
//! handed to the same router).
//!
//! The handshake needs the `xmpp` subprotocol (§3.1), answered in `Sec-WebSocket-Protocol`;
//! a request without it gets HTTP 400 (a WebSocket without the subprotocol would be
//! closed by an RFC 7395 client anyway, §3.1). The stream is then an ordinary
//! [`Connection`] over a message-mode [`WsStream`]: the protocol crate's `FrameReader`
//! reads `<open/>`, `<close/>` and stanzas as the events a TCP stream yields, and
//! `Connection` writes the RFC 7395 forms, so c2s, sessions and the router are the ones TCP
//! clients use.
//!
//! Encryption: a WebSocket has no STARTTLS (c2s/features.rs offers none). The stream counts
//! as encrypted when the HTTP connection is TLS, or comes from a loopback address while
//! `http.loopback_is_encrypted` is on (a browser on this machine, a TLS-terminating proxy on
//! this host); otherwise `c2s.require_encryption` and `c2s.allow_plain_without_tls` apply as
//! to a TCP stream that did not STARTTLS.

use std::net::SocketAddr;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::header::SEC_WEBSOCKET_PROTOCOL;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use jabberwock_protocol::xml::reader::Event;
use tokio::time::{timeout_at, Instant};
use tracing::Instrument;

use super::conn::ConnectionPermit;
use super::conn::TlsConnection;
use super::safety::ClientAddr;
use super::HttpState;
use crate::config::Config;
use crate::listener;
use crate::stream::connection::Connection;
use crate::stream::permits::ConnectionPermits;
use crate::stream::transport::Transport;
use crate::stream::websocket::WsStream;

/// RFC 7395 §3.1: the WebSocket subprotocol name.
pub const SUBPROTOCOL: &str = "xmpp";

/// Read buffer of the WebSocket library per connection: small, as for TCP sessions.
const READ_BUFFER: usize = 4096;

/// The route, when the endpoint is on.
pub fn path(config: &Config) -> Option<&str> {
    let path = config.http.websocket_path.as_str();
    (!path.is_empty()).then_some(path)
}

/// `GET <websocket_path>` with a WebSocket upgrade offering the `xmpp` subprotocol.
pub async fn upgrade(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    permit: Option<Extension<ConnectionPermit>>,
    tls: Option<Extension<TlsConnection>>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !offers_xmpp(&headers) {
        tracing::info!(%peer, "refused a WebSocket without the xmpp subprotocol");
        return (
            StatusCode::BAD_REQUEST,
            "XMPP over WebSocket needs Sec-WebSocket-Protocol: xmpp (RFC 7395)\n",
        )
            .into_response();
    }
    let server = state.server.clone();
    let Some(permit) = super::take_permit(&server, permit.as_ref().map(|Extension(p)| p)) else {
        tracing::warn!(%peer, "refused an XMPP WebSocket: c2s.max_connections reached");
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections\n").into_response();
    };
    let ip_permit = match super::ip_permit(&server, peer) {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    // The TCP peer, not a forwarded client address: what matters is whether this hop
    // left the machine.
    let tcp_peer = client.map_or(peer, |Extension(c)| c.peer);
    let secure = super::counts_as_encrypted(&server.config, tls.is_some(), tcp_peer);
    let live = server.live.get();
    let c2s = &live.c2s;
    // The FrameReader enforces the stanza limits with a stream error; this only bounds
    // what one message can make the WebSocket library buffer.
    let max_message = 2 * c2s.max_stanza_bytes.max(c2s.max_header_bytes);
    let deadline = Instant::now() + c2s.handshake_timeout;
    let span = tracing::info_span!("conn", %peer, kind = "xmpp-websocket", secure);
    ws.protocols([SUBPROTOCOL])
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_frame_size(max_message)
        .max_message_size(max_message)
        .on_upgrade(move |socket| {
            async move {
                let HttpState {
                    server,
                    shutdown,
                    sessions,
                    ..
                } = state;
                let transport = Transport::WebSocket(Box::new(WsStream::xmpp(socket, secure)));
                let permits = ConnectionPermits::new(permit, ip_permit);
                let mut conn =
                    Connection::new(transport, peer, server.limits(), &[]).holding(permits);
                let see_other = server.config.http.websocket_see_other_uri.as_str();
                if see_other.is_empty() {
                    listener::serve_stream(&server, conn, deadline, shutdown).await;
                } else {
                    // RFC 7395 §3.6.1: the <open/> is answered with <close see-other-uri/>.
                    if let Ok(Ok(Event::Header(_))) = timeout_at(deadline, conn.next_event()).await
                    {
                        tracing::debug!(see_other, "sent the client elsewhere");
                    }
                    conn.redirect(see_other).await;
                }
                drop(sessions);
            }
            .instrument(span)
        })
}

/// Whether `Sec-WebSocket-Protocol` (a comma-separated list, possibly repeated) has `xmpp`.
fn offers_xmpp(headers: &HeaderMap) -> bool {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn subprotocol_lists() {
        let mut h = HeaderMap::new();
        assert!(!offers_xmpp(&h));
        h.append(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat, xmpp"),
        );
        assert!(offers_xmpp(&h));
        let mut h = HeaderMap::new();
        h.append(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("xmpp-bis"));
        assert!(!offers_xmpp(&h));
    }
}
