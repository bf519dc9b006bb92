//! Listening sockets and the accept loop: one task per connection, a cap on connections,
//! and the orderly stop on shutdown.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jabberwock_protocol::stream::StreamCondition;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{timeout_at, Instant};
use tracing::Instrument;

use crate::c2s;
use crate::config::Config;
use crate::error::SessionEnd;
use crate::server::Server;
use crate::session;
use crate::shutdown::ShutdownSignal;
use crate::stream::accept;
use crate::stream::connection::Connection;
use crate::stream::permits::ConnectionPermits;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerKind {
    /// STARTTLS port; also sniffs Flash, policy requests and direct TLS.
    C2s,
    /// XEP-0368 direct TLS port.
    DirectTls,
    /// HTTP port: WebSocket endpoints (`crate::http`).
    Http,
    /// HTTPS port (`http.tls_listen`): the same endpoints over TLS.
    Https,
    /// Dedicated Flash socket policy port (`crate::flash_policy`).
    FlashPolicy,
    /// Server-to-server port (federation, `modules/s2s/`).
    S2s,
    /// Server-to-server XEP-0368 direct TLS port.
    S2sDirectTls,
    /// `metrics.listen`: Prometheus scrapes only (`crate::metrics::http`).
    Metrics,
}

impl std::fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ListenerKind::C2s => "c2s",
            ListenerKind::DirectTls => "c2s-direct-tls",
            ListenerKind::Http => "http",
            ListenerKind::Https => "https",
            ListenerKind::FlashPolicy => "flash-policy",
            ListenerKind::S2s => "s2s",
            ListenerKind::S2sDirectTls => "s2s-direct-tls",
            ListenerKind::Metrics => "metrics",
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({kind}): {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub kind: ListenerKind,
    pub source: io::Error,
}

pub struct Listener {
    pub kind: ListenerKind,
    pub socket: TcpListener,
}

/// Binds every configured address. An address in use is fatal (the admin must know); an
/// IPv6 loopback on a host without IPv6 is skipped with a warning, since it is only in the
/// zero-config defaults for convenience.
pub async fn bind_all(config: &Config) -> Result<Vec<Listener>, BindError> {
    let c2s = &config.c2s;
    let wanted = c2s.listen.iter().map(|a| (*a, ListenerKind::C2s)).chain(
        c2s.direct_tls_listen
            .iter()
            .map(|a| (*a, ListenerKind::DirectTls)),
    );
    let mut listeners = Vec::new();
    for (addr, kind) in wanted {
        listeners.extend(bind(addr, kind).await?);
    }
    Ok(listeners)
}

/// Binds one address; `None` (after a warning) for an IPv6 address this host does not have.
pub async fn bind(addr: SocketAddr, kind: ListenerKind) -> Result<Option<Listener>, BindError> {
    match TcpListener::bind(addr).await {
        Ok(socket) => Ok(Some(Listener { kind, socket })),
        Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable && addr.is_ipv6() => {
            tracing::warn!(%addr, %kind, "IPv6 address not available on this host, not listening there");
            Ok(None)
        }
        Err(source) => Err(BindError { addr, kind, source }),
    }
}

/// Accepts on every listener until shutdown, then waits for every connection to close
/// its stream.
pub async fn serve(server: Arc<Server>, listeners: Vec<Listener>, shutdown: ShutdownSignal) {
    let permits = server.connections.permits().clone();
    let mut accept_loops = JoinSet::new();
    let connections = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
    for listener in listeners {
        let server = server.clone();
        let permits = permits.clone();
        let shutdown = shutdown.clone();
        let connections = connections.clone();
        accept_loops.spawn(async move {
            accept_loop(server, listener, permits, shutdown, connections).await;
        });
    }
    while accept_loops.join_next().await.is_some() {}
    let mut connections = connections.lock().await;
    while connections.join_next().await.is_some() {}
}

async fn accept_loop(
    server: Arc<Server>,
    listener: Listener,
    permits: Arc<Semaphore>,
    mut shutdown: ShutdownSignal,
    connections: Arc<tokio::sync::Mutex<JoinSet<()>>>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.triggered() => return,
            accepted = listener.socket.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let Some(ip_permit) = server.per_ip.try_acquire(peer.ip()) else {
                    // One address may not hold every permit (`c2s.max_connections_per_ip`):
                    // closed without a byte, before any TLS or XML work, as ejabberd does.
                    tracing::debug!(%peer, "refused a connection: c2s.max_connections_per_ip reached");
                    continue;
                };
                // Taken once a connection is there, not while waiting for one: a loop
                // waiting on an idle listener would hold a place under `c2s.max_connections`
                // that no connection uses. At the cap the accepted connection waits for a
                // place, and the loop accepts nothing more meanwhile (the kernel's backlog
                // holds the next ones, as before `accept`).
                let permit = tokio::select! {
                    _ = shutdown.triggered() => return,
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                };
                let _ = tcp.set_nodelay(true);
                let server = server.clone();
                let shutdown = shutdown.clone();
                let span = tracing::info_span!("conn", %peer, kind = %listener.kind);
                let permits = ConnectionPermits::new(permit, ip_permit);
                let task = handle_connection(server, tcp, peer, listener.kind, shutdown, permits);
                let mut set = connections.lock().await;
                // Reap finished tasks so the set only holds live connections.
                while set.try_join_next().is_some() {}
                set.spawn(task.instrument(span));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle_connection(
    server: Arc<Server>,
    tcp: TcpStream,
    peer: SocketAddr,
    kind: ListenerKind,
    shutdown: ShutdownSignal,
    permits: ConnectionPermits,
) {
    // One deadline for the whole handshake: sniffing, TLS, SASL and binding together.
    let deadline = Instant::now() + server.live.get().c2s.handshake_timeout;
    let direct_tls_only = kind == ListenerKind::DirectTls;
    // Answered by the stream layer (policy, HTTP, garbage): held until that is done. An
    // XML stream: the connection holds them, and gives them back when it ends or is
    // released for a session waiting for resumption.
    let Some(conn) = accept::open(&server, tcp, peer, direct_tls_only, deadline, permits).await
    else {
        return;
    };
    serve_stream(&server, conn, deadline, shutdown).await;
}

/// How long the closing of a stream may take to write.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Runs one XML stream to its end, whatever carried it here (TCP, TLS, a WebSocket):
/// negotiation under the handshake `deadline`, then the session, then the close.
pub async fn serve_stream(
    server: &Server,
    mut conn: Connection,
    deadline: Instant,
    mut shutdown: ShutdownSignal,
) {
    // Unique across processes too (`session_id.rs`).
    let session_id = crate::session_id::next();
    let negotiated = tokio::select! {
        // Boxed so that its state is freed once bound, not carried by every idle session.
        result = timeout_at(deadline, Box::pin(c2s::negotiate(server, &mut conn, session_id))) => {
            result.unwrap_or_else(|_| Err(SessionEnd::error(StreamCondition::ConnectionTimeout)))
        }
        _ = shutdown.triggered() => Err(SessionEnd::error(StreamCondition::SystemShutdown)),
    };
    let end = match negotiated {
        Ok(bound) => {
            let jid = bound.jid.clone();
            // A resumed session (XEP-0198) keeps the id it was bound under.
            let bound_id = bound.session_id;
            let live = crate::metrics::session_started(&conn);
            let end = session::run(server, &mut conn, bound, &mut shutdown).await;
            drop(live);
            if let SessionEnd::HandedOver(_) = end {
                tracing::info!(%jid, "session went on on another stream");
            } else {
                server.router.table.unbind(&jid, bound_id);
                tracing::info!(%jid, ?end, "session ended");
            }
            end
        }
        Err(end) => {
            tracing::debug!(?end, "stream ended before a resource was bound");
            end
        }
    };
    let error = match &end {
        SessionEnd::Error(err) | SessionEnd::HandedOver(Some(err)) => Some(err),
        SessionEnd::ClientClosed | SessionEnd::Closed => None,
        SessionEnd::Disconnected | SessionEnd::HandedOver(None) => return,
    };
    // A peer that stopped reading (a connection cut without a FIN, whose session was resumed
    // elsewhere, say) can't hold this task and its socket: the close gets a bounded time.
    let host = server.default_host();
    let closing = conn.close(error, &host);
    if timeout_at(Instant::now() + CLOSE_WAIT, closing)
        .await
        .is_err()
    {
        tracing::debug!("stream close not written in time: connection dropped");
    }
}
