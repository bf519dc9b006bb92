//! How HTTP connections are served: the listeners (`http.listen`, and `http.tls_listen`:
//! wss://, https://) and HTTP requests arriving on a c2s port (the stream layer sniffs them
//! and hands them over, bytes already read put back in front). All are served by hyper over
//! the same [`Router`], with upgrades (WebSocket), a header read timeout, and a connection
//! permit; each request carries the `ConnectInfo<SocketAddr>` the handlers expect, its
//! connection's [`ConnectionPermit`], plus [`TlsConnection`] when the connection is encrypted.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::Instrument;

use crate::listener::{Listener, ListenerKind};
use crate::server::Server;
use crate::shutdown::ShutdownSignal;
use crate::stream::prefixed::Prefixed;
use crate::stream::transport::Transport;

/// Request extension: the HTTP connection is TLS (so ws:// is wss://, http:// is https://).
#[derive(Clone, Copy, Debug)]
pub struct TlsConnection;

/// What a c2s port needs to hand an HTTP request over: set by [`super::serve`] while the
/// HTTP stack runs, taken back at shutdown (it holds the upgraded streams' tracker).
#[derive(Clone)]
pub struct Handoff {
    pub app: Router,
    pub shutdown: ShutdownSignal,
}

/// Request extension: the connection permit (`c2s.max_connections`) of the HTTP connection
/// the request came on. A WebSocket upgrade takes it over ([`ConnectionPermit::take`]), so
/// the stream goes on counting as the one connection it is.
#[derive(Clone)]
pub struct ConnectionPermit(Arc<Mutex<Option<OwnedSemaphorePermit>>>);

impl ConnectionPermit {
    /// The permit, for the stream an upgrade turns the connection into; `None` if taken.
    pub fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.0.lock().ok().and_then(|mut p| p.take())
    }
}

/// Serves one HTTP/1.1 connection (keep-alive, upgrades) until it ends or shutdown.
/// `permit` is held while it is open (or handed to the stream it is upgraded to); the
/// headers of each request must arrive within `http.header_timeout` (hyper closes the
/// connection otherwise), so a connection that never sends a request does not stay.
pub async fn serve_connection<I>(
    app: Router,
    io: I,
    conn: HttpConn,
    permit: Option<OwnedSemaphorePermit>,
    mut shutdown: ShutdownSignal,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let HttpConn {
        peer,
        tls,
        header_timeout,
    } = conn;
    let permit = ConnectionPermit(Arc::new(Mutex::new(permit)));
    let service = app.map_request(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(permit.clone());
        if tls {
            req.extensions_mut().insert(TlsConnection);
        }
        req
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
        }
        _ = shutdown.triggered() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// What [`serve_connection`] needs to know about the connection.
#[derive(Clone, Copy, Debug)]
pub struct HttpConn {
    pub peer: SocketAddr,
    /// The connection is TLS (so ws:// is wss://, http:// is https://).
    pub tls: bool,
    /// `http.header_timeout`.
    pub header_timeout: Duration,
}

/// The answer to a connection over `c2s.max_connections`, before it is served.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n\r\ntoo many connections\n";

/// Most bytes read from a refused connection before it is closed.
const REFUSED_READ_LIMIT: usize = 64 * 1024;

/// Accepts on one `http.listen` or `http.tls_listen` address until shutdown. Every
/// connection takes one of the connection permits (`c2s.max_connections`) while it is open;
/// with none left it is answered 503 and closed. On `http.tls_listen` the TLS handshake
/// (bounded by `c2s.handshake_timeout`, with the c2s certificate and ALPN `http/1.1`)
/// comes first.
pub async fn serve_listener(
    server: Arc<Server>,
    listener: Listener,
    app: Router,
    mut shutdown: ShutdownSignal,
) {
    // Its own ALPN list (http/1.1), same certificate as c2s.
    let acceptor = (listener.kind == ListenerKind::Https)
        .then(|| TlsAcceptor::from(crate::tls::https_config(server.tls.config())));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.triggered() => break,
            accepted = listener.socket.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, kind = %listener.kind, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let permit = server
            .connections
            .permits()
            .clone()
            .try_acquire_owned()
            .ok();
        let live = server.live.get();
        let conn = HttpConn {
            peer,
            tls: acceptor.is_some(),
            header_timeout: live.http.header_timeout,
        };
        let acceptor = acceptor.clone();
        let handshake_timeout = live.c2s.handshake_timeout;
        let app = app.clone();
        let stop = shutdown.clone();
        let span = tracing::info_span!("conn", %peer, kind = %listener.kind);
        while connections.try_join_next().is_some() {}
        connections.spawn(
            async move {
                let Some(acceptor) = acceptor else {
                    return serve_or_refuse(app, tcp, conn, permit, stop).await;
                };
                match timeout(handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => serve_or_refuse(app, tls, conn, permit, stop).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            }
            .instrument(span),
        );
    }
    drop(app);
    while connections.join_next().await.is_some() {}
}

/// Serves the connection if it got a permit, else answers 503 and closes it.
async fn serve_or_refuse<I>(
    app: Router,
    mut io: I,
    conn: HttpConn,
    permit: Option<OwnedSemaphorePermit>,
    shutdown: ShutdownSignal,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if permit.is_none() {
        tracing::warn!(peer = %conn.peer, "refused an HTTP connection: c2s.max_connections reached");
        let refuse = async {
            io.write_all(TOO_MANY).await?;
            io.shutdown().await?;
            // Read what the client sent before closing: closing with unread bytes would
            // reset the connection, and the client might lose the answer.
            let mut sink = [0u8; 1024];
            let mut left = REFUSED_READ_LIMIT;
            while left > 0 {
                match io.read(&mut sink).await? {
                    0 => break,
                    n => left = left.saturating_sub(n),
                }
            }
            Ok::<_, std::io::Error>(())
        };
        let _ = timeout(conn.header_timeout, refuse).await;
        return;
    }
    serve_connection(app, io, conn, permit, shutdown).await;
}

/// An HTTP request on a c2s port ("one port for every client kind"): the sniffed bytes go
/// back in front and the connection is served by the HTTP stack like any other. Without
/// an HTTP stack (no endpoint configured, or shutting down) the answer is a plain 404.
pub async fn handoff(
    server: &Server,
    mut transport: Transport,
    initial: Vec<u8>,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
) {
    let handoff = server
        .http_handoff
        .lock()
        .ok()
        .and_then(|h| h.as_ref().cloned());
    let Some(Handoff { app, shutdown }) = handoff else {
        let _ = transport
            .write_all(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .await;
        let _ = transport.shutdown().await;
        return;
    };
    let conn = HttpConn {
        peer,
        tls: transport.is_encrypted(),
        header_timeout: server.live.get().http.header_timeout,
    };
    tracing::debug!(%peer, tls = conn.tls, "HTTP request on a c2s port: served by the HTTP stack");
    let io = Prefixed::new(initial, transport);
    serve_connection(app, io, conn, Some(permit), shutdown).await;
}
