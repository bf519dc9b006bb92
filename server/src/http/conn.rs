//! HTTP connections that axum's own `serve` does not accept: the TLS listener
//! (`http.tls_listen`: wss://, https://) and HTTP requests arriving on a c2s port (the stream
//! layer sniffs them and hands them over, bytes already read put back in front). Both are
//! served by hyper over the same [`Router`] as the plain listener, with upgrades (WebSocket),
//! and each request carries the `ConnectInfo<SocketAddr>` the handlers expect, plus
//! [`TlsConnection`] when the connection is encrypted.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tower::ServiceExt;
use tracing::Instrument;

use crate::listener::Listener;
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

/// Serves one HTTP/1.1 connection (keep-alive, upgrades) until it ends or shutdown.
pub async fn serve_connection<I>(
    app: Router,
    io: I,
    peer: SocketAddr,
    tls: bool,
    mut shutdown: ShutdownSignal,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = app.map_request(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        if tls {
            req.extensions_mut().insert(TlsConnection);
        }
        req
    });
    let conn = hyper::server::conn::http1::Builder::new()
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

/// Accepts on one `http.tls_listen` address until shutdown: TLS handshake (bounded by
/// `c2s.handshake_timeout`) with the c2s certificate, then HTTP over it.
pub async fn serve_tls(
    server: Arc<Server>,
    listener: Listener,
    app: Router,
    mut shutdown: ShutdownSignal,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.triggered() => break,
            accepted = listener.socket.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "HTTPS accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = server.tls.clone();
        let handshake_timeout = server.config.c2s.handshake_timeout;
        let app = app.clone();
        let stop = shutdown.clone();
        let span = tracing::info_span!("conn", %peer, kind = "https");
        while connections.try_join_next().is_some() {}
        connections.spawn(
            async move {
                match timeout(handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => serve_connection(app, tls, peer, true, stop).await,
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

/// An HTTP request on a c2s port ("one port for every client kind"): the sniffed bytes go
/// back in front and the connection is served by the HTTP stack like any other. Without
/// an HTTP stack (no endpoint configured, or shutting down) the answer is a plain 404.
pub async fn handoff(
    server: &Server,
    mut transport: Transport,
    initial: Vec<u8>,
    peer: SocketAddr,
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
    let tls = transport.is_encrypted();
    tracing::debug!(%peer, tls, "HTTP request on a c2s port: served by the HTTP stack");
    serve_connection(app, Prefixed::new(initial, transport), peer, tls, shutdown).await;
}
