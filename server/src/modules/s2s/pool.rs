//! Outgoing streams, one per remote domain and host of ours (XEP-0220 authenticates a
//! (local, remote) pair): a stanza goes to its pair's queue, and the first one starts the
//! stream ([`super::outbound`]), which sends what queued up once it is authenticated. A
//! pair whose local domain belongs to the same host as a stream already there (`a.test`
//! and `conference.a.test`) shares that stream's queue, and the stream authenticates it
//! by dialback (XEP-0220 §2.5) rather than a connection of its own. What can't be
//! delivered comes back to its sender as an error from the remote address (RFC 6120
//! §8.3.3.16 `remote-server-not-found`, §8.3.3.17 `remote-server-timeout`; a denied
//! domain §8.3.3.10 `not-allowed`, the condition RFC 6120 gives for a blacklisted
//! domain: the domain may well exist, we refuse to talk to it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jabberwock_protocol::jid::Jid;
use jabberwock_protocol::stanza::{Condition, IqType, Stanza, StanzaError, StanzaKind};
use jabberwock_protocol::xml::Element;
use tokio::sync::mpsc;

use super::{host_of, outbound, Shared};
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

    /// Forgets every pair whose queue is still `queue` (a newer stream may have replaced
    /// some).
    pub fn remove(&self, queue: &mpsc::Sender<Element>) {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        queues.retain(|_, q| !q.same_channel(queue));
    }

    /// Forgets `pair` if its queue is still `queue`.
    pub fn forget(&self, pair: &Pair, queue: &mpsc::Sender<Element>) {
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
    if shared.config.denied(&remote) {
        tracing::warn!(%remote, "stanza for a denied domain bounced");
        return bounce_later(shared, stanza, Condition::NotAllowed);
    }
    if let Some(condition) = shared.pool.recently_failed(&remote) {
        tracing::debug!(%remote, "remote domain failed recently: stanza bounced");
        return bounce_later(shared, stanza, condition);
    }
    let Some(server) = shared.server() else {
        return;
    };
    let pair = (local.to_ascii_lowercase(), remote.to_ascii_lowercase());
    let mut queues = shared.pool.queues.lock().unwrap_or_else(|p| p.into_inner());
    if !queues.contains_key(&pair) {
        if let Some(queue) = stream_to_join(shared, &server, &queues, &pair) {
            queues.insert(pair.clone(), queue);
        }
    }
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
    if host_of(&server, &pair.0).is_none() {
        // From a domain a reload took away (what its closed stream still held): no stream
        // is opened for it, and its sender is gone with the host.
        tracing::debug!(local = %pair.0, "stanza from a domain no longer served dropped");
        return;
    }
    let (tx, rx) = mpsc::channel(shared.config.max_queue.max(1));
    let _ = tx.try_send(stanza);
    queues.insert(pair.clone(), tx.clone());
    drop(queues);
    // Its own root: the stream outlives the session whose stanza opened it.
    let span = tracing::info_span!(parent: None, "s2s-out", local = %pair.0, remote = %pair.1);
    tokio::spawn(tracing::Instrument::instrument(
        outbound::run(shared.clone(), server, pair, tx, rx),
        span,
    ));
}

/// The queue of a stream to `pair`'s remote domain that `pair` may join: one opened for
/// another domain of the same host of ours, still running, where dialback is allowed.
fn stream_to_join(
    shared: &Shared,
    server: &Server,
    queues: &HashMap<Pair, mpsc::Sender<Element>>,
    pair: &Pair,
) -> Option<mpsc::Sender<Element>> {
    if !shared.config.policy(&pair.1).allow_dialback {
        return None;
    }
    let host = host_of(server, &pair.0)?;
    queues
        .iter()
        .find(|((local, remote), queue)| {
            *remote == pair.1
                && !queue.is_closed()
                && host_of(server, local).as_ref() == Some(&host)
        })
        .map(|(_, queue)| queue.clone())
}

/// Bounces `stanza` from a task (the caller may hold no runtime context to await in).
pub fn bounce_later(shared: &Arc<Shared>, stanza: Element, condition: Condition) {
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
