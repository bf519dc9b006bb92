//! The s2s listeners: other servers connect here (RFC 6120 §14.7, port 5269), or with TLS
//! from the first byte on the XEP-0368 direct TLS ports; one task per incoming stream, all
//! closed at shutdown.

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

/// A bound s2s listener and whether its streams start with TLS (XEP-0368).
pub struct Bound {
    socket: TcpListener,
    direct_tls: bool,
}

/// Binds `listen` and `direct_tls_listen` (an address in use stops the start, naming its
/// key; an IPv6 address this host lacks is skipped) and logs each address.
pub async fn bind(
    config: &Config,
    listen: &[SocketAddr],
    direct_tls_listen: &[SocketAddr],
) -> Result<Vec<Bound>, crate::StartError> {
    let wanted = listen
        .iter()
        .map(|a| (*a, ListenerKind::S2s, "listen"))
        .chain(
            direct_tls_listen
                .iter()
                .map(|a| (*a, ListenerKind::S2sDirectTls, "direct_tls_listen")),
        );
    let mut bound = Vec::new();
    for (addr, kind, key) in wanted {
        // The c2s binder's rules (skip a missing IPv6), under our own name in the log.
        let listener = c2s_listener::bind(addr, kind)
            .await
            .map_err(|e| config.problem(&["modules", "s2s", key], e.to_string()))?;
        if let Some(listener) = listener {
            if let Ok(addr) = listener.socket.local_addr() {
                tracing::info!(%kind, %addr, "listening");
            }
            bound.push(Bound {
                socket: listener.socket,
                direct_tls: kind == ListenerKind::S2sDirectTls,
            });
        }
    }
    Ok(bound)
}

/// Accepts until shutdown, then waits for the incoming streams to close.
pub async fn serve(
    shared: Arc<Shared>,
    server: Arc<Server>,
    listeners: Vec<Bound>,
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
    listener: Bound,
    mut shutdown: ShutdownSignal,
) {
    let mut streams = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.triggered() => break,
            accepted = listener.socket.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                let span = tracing::info_span!("s2s-in", %peer);
                let task = inbound::serve(
                    shared.clone(),
                    server.clone(),
                    tcp,
                    peer,
                    listener.direct_tls,
                    shutdown.clone(),
                );
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
