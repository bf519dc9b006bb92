//! The s2s listener: other servers connect here (RFC 6120 §14.7, port 5269); one task per
//! incoming stream, all closed at shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::{inbound, Shared};
use crate::config::Config;
use crate::listener::{self as c2s_listener, ListenerKind};
use crate::server::Server;
use crate::shutdown::ShutdownSignal;

/// Binds `listen` (an address in use stops the start, naming `modules.s2s.listen`; an IPv6
/// address this host lacks is skipped) and logs each address.
pub async fn bind(
    config: &Config,
    listen: &[SocketAddr],
) -> Result<Vec<TcpListener>, crate::StartError> {
    let mut bound = Vec::new();
    for addr in listen {
        // The c2s binder's rules (skip a missing IPv6), under our own name in the log.
        let listener = c2s_listener::bind(*addr, ListenerKind::S2s)
            .await
            .map_err(|e| config.problem(&["modules", "s2s", "listen"], e.to_string()))?;
        if let Some(listener) = listener {
            if let Ok(addr) = listener.socket.local_addr() {
                tracing::info!(kind = %ListenerKind::S2s, %addr, "listening");
            }
            bound.push(listener.socket);
        }
    }
    Ok(bound)
}

/// Accepts until shutdown, then waits for the incoming streams to close.
pub async fn serve(
    shared: Arc<Shared>,
    server: Arc<Server>,
    listeners: Vec<TcpListener>,
    shutdown: ShutdownSignal,
) {
    let mut accept_loops = JoinSet::new();
    for listener in listeners {
        accept_loops.spawn(accept_loop(
            shared.clone(),
            server.clone(),
            listener,
            shutdown.clone(),
        ));
    }
    while accept_loops.join_next().await.is_some() {}
}

async fn accept_loop(
    shared: Arc<Shared>,
    server: Arc<Server>,
    listener: TcpListener,
    mut shutdown: ShutdownSignal,
) {
    let mut streams = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.triggered() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                let span = tracing::info_span!("s2s-in", %peer);
                let task =
                    inbound::serve(shared.clone(), server.clone(), tcp, peer, shutdown.clone());
                while streams.try_join_next().is_some() {}
                streams.spawn(task.instrument(span));
            }
            Err(e) => {
                tracing::warn!(error = %e, "s2s accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    while streams.join_next().await.is_some() {}
}
