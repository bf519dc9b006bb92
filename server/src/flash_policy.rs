//! The dedicated Flash socket policy listener (`flash.policy_listen`, port 843 by default).
//!
//! Flash Player ≥ 9.0.115 asks for a socket policy before every socket connection: first on
//! port 843, then on the destination port (docs/flash-protocol.md §5). The c2s ports
//! answer too ([`crate::stream::accept`]); this listener saves the player the wait before it
//! falls back to them. It answers `<policy-file-request/>` + NUL with the same document as
//! the c2s ports plus one NUL, then closes; anything else (garbage, HTTP, silence) is closed
//! without a byte written, as Openfire's dedicated policy port did.
//!
//! Port 843 needs root (or CAP_NET_BIND_SERVICE): an address that cannot be bound, for that
//! or any other reason, is skipped with a warning, and the server runs without it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::config::{io_reason, Config};
use crate::listener::{self, Listener, ListenerKind};
use crate::server::Server;
use crate::shutdown::ShutdownSignal;

/// The request: 22 ASCII bytes, followed by a NUL on the wire.
const REQUEST: &[u8] = b"<policy-file-request/>";

/// Longest request line read before giving up (Openfire read at most 200 characters).
const MAX_REQUEST: usize = 256;

/// How long a client may take to send its request. Flash Player sends it at once.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long we wait for the player to close after our answer, so that closing first does
/// not reset the connection while the answer is still in flight.
const LINGER: Duration = Duration::from_secs(2);

/// Policy connections served at once; more are closed at accept. Each lasts seconds at most.
const MAX_CONCURRENT: usize = 256;

/// Binds `flash.policy_listen` (when `flash.enabled`). Never fails: an address that cannot
/// be bound is skipped with a warning naming it and the reason.
pub async fn bind(config: &Config) -> Vec<Listener> {
    let mut listeners = Vec::new();
    if !config.flash.enabled {
        return listeners;
    }
    for addr in &config.flash.policy_listen {
        match listener::bind(*addr, ListenerKind::FlashPolicy).await {
            Ok(bound) => listeners.extend(bound),
            Err(e) => tracing::warn!(
                "not serving Flash socket policy requests on {addr} ({}); Flash Player falls back to asking on the c2s port",
                io_reason(&e.source),
            ),
        }
    }
    listeners
}

/// Answers policy requests on every listener until shutdown.
pub async fn serve(server: Arc<Server>, listeners: Vec<Listener>, shutdown: ShutdownSignal) {
    let mut reply = server.policy().to_vec();
    reply.push(0);
    let reply: Arc<[u8]> = reply.into();
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT));
    let mut loops = JoinSet::new();
    for listener in listeners {
        let reply = reply.clone();
        let permits = permits.clone();
        let mut shutdown = shutdown.clone();
        loops.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let accepted = tokio::select! {
                    _ = shutdown.triggered() => break,
                    accepted = listener.socket.accept() => accepted,
                };
                while connections.try_join_next().is_some() {}
                match accepted {
                    Ok((tcp, peer)) => {
                        // Over the cap: dropping the socket refuses at once, and the
                        // player asks on the c2s port instead.
                        let Ok(permit) = permits.clone().try_acquire_owned() else {
                            continue;
                        };
                        let reply = reply.clone();
                        connections.spawn(async move {
                            answer(tcp, peer, &reply).await;
                            drop(permit);
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "policy listener: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            // Connections in progress end within their timeouts.
            while connections.join_next().await.is_some() {}
        });
    }
    while loops.join_next().await.is_some() {}
}

async fn answer(mut tcp: TcpStream, peer: SocketAddr, reply: &[u8]) {
    let request = timeout(REQUEST_TIMEOUT, read_request(&mut tcp)).await;
    if !matches!(request, Ok(Some(ref line)) if is_policy_request(line)) {
        tracing::debug!(%peer, "policy listener: not a policy request, closed");
        return;
    }
    tracing::debug!(%peer, "answered a Flash socket policy request");
    if tcp.write_all(reply).await.is_err() || tcp.shutdown().await.is_err() {
        return;
    }
    // The player closes once it has the NUL; read until then so our close is the clean one.
    let mut sink = [0u8; 64];
    let _ = timeout(LINGER, async {
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// The bytes before the first NUL (or LF), or `None` if the peer closed first or sent too
/// much without one.
async fn read_request(tcp: &mut TcpStream) -> Option<Vec<u8>> {
    let mut line = Vec::with_capacity(64);
    let mut chunk = [0u8; 64];
    loop {
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        if let Some(end) = chunk[..n].iter().position(|&b| b == 0 || b == b'\n') {
            line.extend_from_slice(&chunk[..end]);
            return Some(line);
        }
        line.extend_from_slice(&chunk[..n]);
        if line.len() > MAX_REQUEST {
            return None;
        }
    }
}

fn is_policy_request(line: &[u8]) -> bool {
    line.trim_ascii() == REQUEST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_matching() {
        assert!(is_policy_request(b"<policy-file-request/>"));
        assert!(is_policy_request(b" <policy-file-request/>\r"));
        assert!(!is_policy_request(b"<policy-file-request/>x"));
        assert!(!is_policy_request(b"GET /crossdomain.xml HTTP/1.1\r"));
        assert!(!is_policy_request(b""));
    }
}
