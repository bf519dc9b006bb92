//! Outgoing streams, one per (local domain, remote domain) pair (XEP-0220 authenticates a
//! pair): a stanza goes to its pair's queue, and the first one starts the stream
//! ([`super::outbound`]), which sends what queued up once dialback passed. What can't be
//! delivered comes back to its sender as an error from the remote address (RFC 6120
//! §8.3.3.12 `remote-server-not-found`, §8.3.3.13 `remote-server-timeout`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jabberwock_protocol::jid::Jid;
use jabberwock_protocol::stanza::{Condition, IqType, Stanza, StanzaError, StanzaKind};
use jabberwock_protocol::xml::Element;
use tokio::sync::mpsc;

use super::{outbound, Shared};
use crate::server::Server;

/// (local domain, remote domain).
pub type Pair = (String, String);

#[derive(Default)]
pub struct Pool {
    queues: Mutex<HashMap<Pair, mpsc::Sender<Element>>>,
    /// Remote domains whose last attempt failed: until when, and the error it earned.
    failed: Mutex<HashMap<String, (Instant, Condition)>>,
}

impl Pool {
    /// `remote` could not be reached: stanzas for it bounce with `condition` for `period`
    /// without a new attempt (ejabberd's s2s retry delay), so a dead domain costs one
    /// lookup and one connect per period, not per stanza.
    pub fn failed(&self, remote: &str, condition: Condition, period: Duration) {
        if period.is_zero() {
            return;
        }
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        // Forgotten once due, so the map holds only the recently failed.
        failed.retain(|_, (until, _)| *until > now);
        failed.insert(remote.to_owned(), (now + period, condition));
    }

    /// The error `remote` earns while its last failure is recent.
    fn recently_failed(&self, remote: &str) -> Option<Condition> {
        let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        failed
            .get(remote)
            .filter(|(until, _)| *until > Instant::now())
            .map(|(_, condition)| *condition)
    }

    /// Forgets `pair`'s queue if it is still `queue` (a newer stream may have replaced it).
    pub fn remove(&self, pair: &Pair, queue: &mpsc::Sender<Element>) {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if queues.get(pair).is_some_and(|q| q.same_channel(queue)) {
            queues.remove(pair);
        }
    }
}

/// Queues `stanza` for its remote domain, starting the stream if there is none.
pub fn send(shared: &Arc<Shared>, stanza: Element) {
    let domain_of = |attr| {
        stanza
            .attr(attr)
            .and_then(|a| Jid::new(a).ok())
            .map(|j| j.domain().as_str().to_owned())
    };
    let (Some(local), Some(remote)) = (domain_of("from"), domain_of("to")) else {
        tracing::debug!("stanza for a remote domain without a valid from or to dropped");
        return;
    };
    if let Some(condition) = shared.pool.recently_failed(&remote) {
        tracing::debug!(%remote, "remote domain failed recently: stanza bounced");
        return bounce_later(shared, stanza, condition);
    }
    let pair = (local, remote);
    let mut queues = shared.pool.queues.lock().unwrap_or_else(|p| p.into_inner());
    let stanza = match queues.get(&pair) {
        None => stanza,
        Some(queue) => match queue.try_send(stanza) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(stanza)) => {
                drop(queues);
                tracing::warn!(remote = %pair.1, "outgoing queue full: stanza bounced");
                return bounce_later(shared, stanza, Condition::ResourceConstraint);
            }
            // That stream ended: a new one takes over.
            Err(mpsc::error::TrySendError::Closed(stanza)) => stanza,
        },
    };
    let Some(server_arc) = shared.server() else {
        return;
    };
    let (tx, rx) = mpsc::channel(shared.config.max_queue.max(1));
    let _ = tx.try_send(stanza);
    queues.insert(pair.clone(), tx.clone());
    drop(queues);
    let span = tracing::info_span!("s2s-out", local = %pair.0, remote = %pair.1);
    tokio::spawn(tracing::Instrument::instrument(
        outbound::run(shared.clone(), server_arc, pair, tx, rx),
        span,
    ));
}

/// Bounces `stanza` from a task (the caller may hold no runtime context to await in).
fn bounce_later(shared: &Arc<Shared>, stanza: Element, condition: Condition) {
    if let Some(server) = shared.server() {
        tokio::spawn(async move { bounce(&server, stanza, condition).await });
    }
}

/// Sends the sender of `stanza` the error it earned, as if from where it was going. Errors,
/// IQ answers and presence other than available or a subscription request earn none.
pub async fn bounce(server: &Server, stanza: Element, condition: Condition) {
    let Ok(stanza) = Stanza::from_element(stanza) else {
        return;
    };
    let worth = match stanza.kind() {
        _ if stanza.is_error() => false,
        StanzaKind::Message => true,
        StanzaKind::Iq => matches!(stanza.iq_type(), Some(IqType::Get | IqType::Set)),
        StanzaKind::Presence => matches!(stanza.type_attr(), None | Some("subscribe")),
    };
    let Some(from) = stanza.to().and_then(|to| Jid::new(to).ok()) else {
        return;
    };
    if !worth {
        return;
    }
    let reply = stanza.error_reply(&StanzaError::new(condition));
    if let Ok(reply) = Stanza::from_element(reply) {
        server.router.route_from_remote(server, from, reply).await;
    }
}
