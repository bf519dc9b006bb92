//! BOSH (XEP-0124) carrying XMPP (XEP-0206) at `http.bosh_path` (`/http-bind` by default).
//!
//! A BOSH session is an XML stream cut into HTTP requests. It runs through the same core as
//! a TCP client's stream ([`crate::listener::serve_stream`]): at session creation we build a
//! [`Connection`] over an in-memory pipe ([`Transport::Memory`]), hand it the stream header
//! the client would have sent, and spawn the core on it. [`session::Session`] then turns
//! requests into stream bytes and the core's output back into `<body/>` answers. Nothing
//! above the stream layer knows the client is on HTTP.
//!
//! - `mod.rs`: the route, session creation and the table of live sessions (by `sid`);
//! - [`session`]: one session: `rid` order and window, held requests, retransmission,
//!   the pipe, inactivity and the memory bound;
//! - [`body`]: the `<body/>` wrapper, parsed and written.
//!
//! Errors are answered as XEP-0124 §17.2 prescribes for current clients: HTTP 200 with
//! `<body type='terminate' condition='…'/>` (unknown `sid`, `rid` out of window, bad
//! request…); only a body over the size limit gets a plain HTTP 413 before it is read.

pub mod session;

/// The `<body/>` wrapper is wire format, so it lives in the protocol crate.
pub use jabberwock_protocol::bosh as body;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use jabberwock_protocol::xml::reader::Limits;
use tokio::time::Instant;
use tracing::Instrument;

use self::body::{Condition, Request};
use self::session::{Params, Session};
use super::conn::TlsConnection;
use super::safety::ClientAddr;
use super::HttpState;
use crate::config::Config;
use crate::listener;
use crate::stream::connection::{new_stream_id, Connection};
use crate::stream::permits::ConnectionPermits;
use crate::stream::transport::Transport;

/// Bytes of `<body/>` wrapping allowed on top of `c2s.max_stanza_bytes` in one request.
const BODY_OVERHEAD: usize = 16 * 1024;
/// The in-memory pipe's buffer in each direction; a full pipe makes the writer wait.
const PIPE_BYTES: usize = 64 * 1024;
/// We hold at most one request (XEP-0124 §7.1 `hold`), so the client may have two open.
const MAX_HOLD: u64 = 1;

/// The route, when BOSH is on (`http.bosh_path` not empty).
pub fn path(config: &Config) -> Option<&str> {
    let path = config.http.bosh_path.as_str();
    (!path.is_empty()).then_some(path)
}

/// `path` with its trailing slash added or removed; `None` for the root, which has no
/// other form.
fn other_slash_form(path: &str) -> Option<String> {
    match path.strip_suffix('/') {
        Some("") => None,
        Some(bare) => Some(bare.to_owned()),
        None => Some(format!("{path}/")),
    }
}

/// The live sessions, and what creating one needs.
pub struct Bosh {
    http: HttpState,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

/// `POST <bosh_path>` (and a bare `OPTIONS` for CORS preflights, whose headers the shared
/// web-safety layer adds), with the body size capped before it is read.
pub fn routes(path: &str, http: &HttpState) -> Router<HttpState> {
    let c2s = &http.server.config.c2s;
    let limit = c2s.max_stanza_bytes + BODY_OVERHEAD;
    let bosh = Arc::new(Bosh {
        http: http.clone(),
        sessions: Mutex::new(HashMap::new()),
    });
    let endpoint = || axum::routing::post(handle).options(|| async { StatusCode::NO_CONTENT });
    let mut router = Router::new().route(path, endpoint());
    // COMPAT: Flash-era BOSH clients post to `/http-bind/` (the form in XEP-0124's
    // examples, and Openfire's), others to `/http-bind`: both forms are one endpoint.
    if let Some(other) = other_slash_form(path) {
        router = router.route(&other, endpoint());
    }
    router.layer(DefaultBodyLimit::max(limit)).with_state(bosh)
}

async fn handle(
    State(bosh): State<Arc<Bosh>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    tls: Option<Extension<TlsConnection>>,
    client: Option<Extension<ClientAddr>>,
    bytes: Bytes,
) -> Response {
    let Some(req) = body::parse(&bytes) else {
        tracing::debug!(%peer, "BOSH: malformed body");
        return xml(body::terminate(Some(Condition::BadRequest), b"").into());
    };
    match req.sid.clone() {
        None => {
            // XEP-0206 has no STARTTLS: the HTTP hop is what is or is not private. As for
            // RFC 7395 streams: https, or a TCP peer on loopback (a browser on this host or
            // a TLS-terminating proxy) with http.loopback_is_encrypted.
            let tcp_peer = client.map_or(peer, |Extension(c)| c.peer);
            let secure =
                super::counts_as_encrypted(&bosh.http.server.config, tls.is_some(), tcp_peer);
            // The client's address (X-Forwarded-For from a trusted proxy) is the stream's
            // peer: it is what the auth failure throttle and the logs should see.
            let client = client.map_or(peer, |Extension(c)| SocketAddr::new(c.client, peer.port()));
            bosh.create(req, client, secure).await
        }
        Some(sid) => {
            let session = bosh.lock().get(&sid).cloned();
            let Some(session) = session else {
                // §14.3 / §17.2: an unknown (or expired) sid.
                return xml(body::terminate(Some(Condition::ItemNotFound), b"").into());
            };
            let Some(rid) = req.rid else {
                return xml(body::terminate(Some(Condition::BadRequest), b"").into());
            };
            xml(session.request(req, rid).await)
        }
    }
}

impl Bosh {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Session creation (§7.1, XEP-0206 §4): checks the request, starts the core on a fresh
    /// pipe, and answers with the session's attributes and the stream features.
    async fn create(self: &Arc<Self>, req: Request, peer: SocketAddr, secure: bool) -> Response {
        let server = self.http.server.clone();
        // This session's limits, as they are now (a reload changes later sessions').
        let config = server.live.get();
        let Some(rid) = req.rid else {
            return xml(body::terminate(Some(Condition::BadRequest), b"").into());
        };
        let Some(host) = req.to.as_deref().filter(|to| server.serves(to)) else {
            tracing::info!(
                host = req.to.as_deref().unwrap_or("-"),
                ip = %peer.ip(),
                "BOSH session for a host not served here"
            );
            return xml(body::terminate(Some(Condition::HostUnknown), b"").into());
        };
        let Ok(permit) = server.connections.permits().clone().try_acquire_owned() else {
            tracing::warn!(%peer, "refused a BOSH session: c2s.max_connections reached");
            return (StatusCode::SERVICE_UNAVAILABLE, "too many connections\n").into_response();
        };
        let ip_permit = match super::ip_permit(&server, peer) {
            Ok(p) => p,
            Err(refused) => return refused.into_response(),
        };
        let max_wait = config.http.bosh_max_wait;
        let wait = req
            .wait
            .map_or(max_wait, |w| Duration::from_secs(w).min(max_wait));
        let hold = req.hold.unwrap_or(MAX_HOLD).min(MAX_HOLD);
        let lang = req
            .lang
            .as_deref()
            .filter(|l| {
                !l.is_empty()
                    && l.len() <= 35
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            .unwrap_or("en")
            .to_owned();
        let limits = server.limits();
        let max_pending = config.http.bosh_max_pending_bytes;
        let params = Params {
            sid: new_stream_id(),
            host: host.to_owned(),
            lang,
            wait,
            hold: hold as usize,
            requests: hold + 1,
            inactivity: config.http.bosh_inactivity,
            max_pending,
            // The core's output parsed back: one element may be as large as the budget.
            limits: Limits {
                max_stanza_bytes: max_pending.max(limits.max_stanza_bytes),
                max_depth: limits.max_depth + 8,
                max_attributes: limits.max_attributes + 8,
                max_header_bytes: limits.max_header_bytes,
            },
        };
        let (near, far) = tokio::io::duplex(PIPE_BYTES);
        let (output, input) = tokio::io::split(far);
        let header = session::stream_header(&params.host, &params.lang);
        let session = Session::new(params, rid, input);
        let sid = session.params.sid.clone();
        self.lock().insert(sid.clone(), session.clone());

        let transport = Transport::Memory { io: near, secure };
        let permits = ConnectionPermits::new(permit, ip_permit);
        let conn = Connection::new(transport, peer, server.limits(), &header).holding(permits);
        let deadline = Instant::now() + config.c2s.handshake_timeout;
        let span = tracing::info_span!("conn", %peer, kind = "bosh", sid = %sid);
        let HttpState {
            server: core_server,
            shutdown,
            sessions,
            ..
        } = self.http.clone();
        tokio::spawn(
            async move {
                listener::serve_stream(&core_server, conn, deadline, shutdown).await;
                drop(sessions);
            }
            .instrument(span.clone()),
        );
        let bosh = self.clone();
        let driven = session.clone();
        tokio::spawn(
            async move {
                driven.drive(output).await;
                bosh.lock().remove(&driven.params.sid);
                tracing::debug!("BOSH session removed");
            }
            .instrument(span),
        );
        tracing::info!(%peer, %sid, "BOSH session created");
        let ver = body::answer_version(req.ver.as_deref());
        xml(session.creation_response(rid, &ver, deadline).await)
    }
}

/// Every answer is `text/xml; charset=utf-8` (§7.1 `content` default).
fn xml(bytes: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], bytes).into_response()
}
