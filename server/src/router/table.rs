//! The table of bound resources: full JID → the session's inbox, with what routing needs to
//! know about each (availability, priority, last presence, module state).
//!
//! A plain lock: held only for map operations, never across an await. Sending is
//! `try_send` on the session's bounded inbox, so a slow client can't stall a sender.
//!
//! **Slow-client policy.** A full inbox means the client reads slower than stanzas arrive
//! for it. Like ejabberd's queue limit (`max_fsm_queue`), the session is then ended
//! (`policy-violation`, logged at warn) rather than anything being dropped: from that moment
//! the resource no longer counts as reachable, the stanza that did not fit goes back to its
//! sender's routing as undeliverable (RFC 6121 §8.5: a message falls to the bare JID and
//! other resources or offline storage, an IQ is answered with an error), and what was
//! already queued is handed back the same way when the session ends
//! ([`Inbox::close_and_drain`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use jabberwock_protocol::jid::{bare_part, FullJid};

use super::outgoing::Outgoing;
use super::sessions::{PerResource, Sessions};
use crate::modules::SessionState;
use jabberwock_protocol::stanza::SharedStanza;
use jabberwock_protocol::stream::{StreamCondition, StreamError};
use jabberwock_protocol::xml::Element;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::Notify;

/// What a session's inbox carries. Kept small: every session holds a channel of these.
#[derive(Debug)]
pub enum Outbound {
    Stanza(Box<Element>),
    /// One stanza for many recipients, serialised once (a room's groupchat message); the
    /// session writes it with its own JID as `to`.
    Shared(Arc<SharedStanza>),
    /// Close the stream with this error (a newer login took the JID, RFC 6120 §7.7.2.2; the
    /// account was deleted).
    Close(Box<StreamError>),
}

/// Inbox depth: enough to absorb a burst, small enough that a stuck client can't hoard memory.
pub const INBOX_CAPACITY: usize = 256;

/// The out-of-band way to end a session, which works whatever its inbox holds.
#[derive(Default)]
struct Ending {
    /// Set once: the session is ending and must not be handed more.
    ending: AtomicBool,
    error: Mutex<Option<StreamError>>,
    notify: Notify,
}

impl Ending {
    /// Asks the session to end with `error`; true the first time.
    fn end(&self, error: StreamError) -> bool {
        let first = !self.ending.swap(true, Ordering::AcqRel);
        if first {
            *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
        }
        // A stored permit if the session is not waiting right now.
        self.notify.notify_one();
        first
    }
}

/// A session's inbox: what the router hands it, and the signal that it must end.
pub struct Inbox {
    rx: mpsc::Receiver<Outbound>,
    ending: Arc<Ending>,
}

/// The router's side of an [`Inbox`], kept in the table.
pub struct InboxSender {
    tx: mpsc::Sender<Outbound>,
    ending: Arc<Ending>,
}

/// A new session's inbox, [`INBOX_CAPACITY`] deep.
pub fn inbox() -> (InboxSender, Inbox) {
    let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
    let ending = Arc::new(Ending::default());
    (
        InboxSender {
            tx,
            ending: ending.clone(),
        },
        Inbox { rx, ending },
    )
}

/// See [`Inbox::end_signal`].
pub struct EndSignal(Arc<Ending>);

impl EndSignal {
    /// Resolves when the session was told to end out of band (its inbox overflowed, or a
    /// close found it full), with the stream error to end with.
    pub async fn ended(&self) -> StreamError {
        self.0.notify.notified().await;
        self.0
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| StreamError::new(StreamCondition::PolicyViolation))
    }
}

impl Inbox {
    pub async fn recv(&mut self) -> Option<Outbound> {
        self.rx.recv().await
    }

    /// Nothing waits in the inbox right now.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// The session was told to end (its inbox overflowed, or it is closing): it takes
    /// nothing more, so it can't go on.
    pub fn is_ending(&self) -> bool {
        self.ending.ending.load(Ordering::Acquire)
    }

    /// The signal that this session was told to end out of band.
    pub fn end_signal(&self) -> EndSignal {
        EndSignal(self.ending.clone())
    }

    /// Takes no more, and gives back the stanzas that were queued and never written, for
    /// the caller to handle as undeliverable (at most [`INBOX_CAPACITY`]).
    pub fn close_and_drain(&mut self) -> Vec<Outgoing> {
        self.ending.ending.store(true, Ordering::Release);
        self.rx.close();
        let mut left = Vec::new();
        while let Ok(outbound) = self.rx.try_recv() {
            match outbound {
                Outbound::Stanza(element) => left.push(Outgoing::Own(element)),
                Outbound::Shared(shared) => left.push(Outgoing::Shared(shared)),
                Outbound::Close(_) => {}
            }
        }
        left
    }
}

impl InboxSender {
    /// Whether the session still takes stanzas (not ending, not gone).
    fn open(&self) -> bool {
        !self.ending.ending.load(Ordering::Acquire) && !self.tx.is_closed()
    }

    /// Queues a close behind what is already queued; if the inbox is full, ends the session
    /// out of band instead, so the close is never lost.
    fn close(&self, error: StreamError) {
        if let Err(TrySendError::Full(Outbound::Close(error))) =
            self.tx.try_send(Outbound::Close(Box::new(error)))
        {
            self.ending.end(*error);
        }
    }
}

struct Resource {
    /// The bound full JID (its resource part is what the entry is found by).
    jid: FullJid,
    session_id: u64,
    /// `None` until the session sends available presence (RFC 6121 §4.2); then its priority.
    priority: Option<i8>,
    /// The last broadcast presence, answered to probes (RFC 6121 §4.3.2).
    last_presence: Option<Arc<Element>>,
    /// What modules keep for this session.
    state: Arc<SessionState>,
    tx: InboxSender,
}

impl Resource {
    /// Whether routing may pick this resource: bound, available, and still taking stanzas.
    fn reachable_priority(&self) -> Option<i8> {
        self.priority.filter(|_| self.tx.open())
    }
}

#[derive(Default)]
pub struct SessionTable {
    by_bare: RwLock<HashMap<String, Vec<Resource>>>,
}

/// The table's keys for `jid`, borrowed from it: lookups allocate nothing.
fn keys(jid: &FullJid) -> (&str, &str) {
    (bare_part(jid.as_str()), jid.resource().as_str())
}

/// The entry bound to `jid`.
fn resource<'m>(map: &'m HashMap<String, Vec<Resource>>, jid: &FullJid) -> Option<&'m Resource> {
    let (bare, resource) = keys(jid);
    map.get(bare)?
        .iter()
        .find(|r| r.jid.resource().as_str() == resource)
}

/// Hands `element` to the inbox of `jid`; gives it back, for the caller to handle as
/// undeliverable, when the session is ending or gone. A full inbox ends the session (the
/// slow-client policy above) and gives the element back too: never a silent drop.
fn send(jid: &str, tx: &InboxSender, element: Element) -> Result<(), Element> {
    if !tx.open() {
        return Err(element);
    }
    match offer(jid, tx, Outbound::Stanza(Box::new(element))) {
        Err(Outbound::Stanza(element)) => Err(*element),
        _ => Ok(()),
    }
}

/// [`send`] for any stanza the inbox carries: what did not fit (the session is then told to
/// end) or found the inbox closed comes back.
fn offer(jid: &str, tx: &InboxSender, outbound: Outbound) -> Result<(), Outbound> {
    match tx.tx.try_send(outbound) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(outbound)) => {
            let error = StreamError::with_text(
                StreamCondition::PolicyViolation,
                "Too many stanzas waiting for this client to read them",
            );
            if tx.ending.end(error) {
                tracing::warn!(
                    %jid,
                    queued = INBOX_CAPACITY,
                    "client reads too slowly: inbox full, ending the session"
                );
            }
            Err(outbound)
        }
        Err(TrySendError::Closed(outbound)) => Err(outbound),
    }
}

impl SessionTable {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Vec<Resource>>> {
        self.by_bare.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Vec<Resource>>> {
        self.by_bare.write().unwrap_or_else(|p| p.into_inner())
    }

    fn with_resource(&self, jid: &FullJid, f: impl FnOnce(&mut Resource)) {
        let (bare, resource) = keys(jid);
        if let Some(r) = self.write().get_mut(bare).and_then(|rs| {
            rs.iter_mut()
                .find(|r| r.jid.resource().as_str() == resource)
        }) {
            f(r);
        }
    }

    /// Sends a copy to every resource `pick` selects; returns how many took it, and adds
    /// their full JIDs to `took` when asked.
    fn send_where(
        &self,
        bare: &str,
        element: &Element,
        mut took: Option<&mut Vec<FullJid>>,
        pick: impl Fn(&Resource) -> bool,
    ) -> usize {
        let map = self.read();
        let Some(rs) = map.get(bare) else {
            return 0;
        };
        let mut count = 0;
        for r in rs.iter().filter(|r| pick(r)) {
            if send(r.jid.as_str(), &r.tx, element.clone()).is_ok() {
                count += 1;
                if let Some(took) = took.as_deref_mut() {
                    took.push(r.jid.clone());
                }
            }
        }
        count
    }
}

impl Sessions for SessionTable {
    fn bind(
        &self,
        jid: &FullJid,
        session_id: u64,
        tx: InboxSender,
        state: Arc<SessionState>,
        replaced: StreamError,
        max: usize,
    ) -> bool {
        let (bare, resource) = keys(jid);
        let mut map = self.write();
        let resources = match map.get_mut(bare) {
            Some(resources) => resources,
            None => map.entry(bare.to_owned()).or_default(),
        };
        if let Some(pos) = resources
            .iter()
            .position(|r| r.jid.resource().as_str() == resource)
        {
            let old = resources.remove(pos);
            old.tx.close(replaced);
        } else if resources.len() >= max {
            // Checked under the write lock, so concurrent binds can't overshoot.
            return false;
        }
        // Most accounts have one session: grow one slot at a time, not by Vec's usual four,
        // since idle sessions are many.
        resources.reserve_exact(1);
        resources.push(Resource {
            jid: jid.clone(),
            session_id,
            priority: None,
            last_presence: None,
            state,
            tx,
        });
        true
    }

    fn unbind(&self, jid: &FullJid, session_id: u64) {
        let (bare, resource) = keys(jid);
        let mut map = self.write();
        if let Some(resources) = map.get_mut(bare) {
            resources
                .retain(|r| !(r.jid.resource().as_str() == resource && r.session_id == session_id));
            if resources.is_empty() {
                map.remove(bare);
            }
        }
    }

    fn set_presence(&self, jid: &FullJid, presence: Option<(i8, Element)>) -> Option<i8> {
        let mut before = None;
        self.with_resource(jid, |r| {
            before = r.priority;
            match presence {
                Some((priority, element)) => {
                    r.priority = Some(priority);
                    r.last_presence = Some(Arc::new(element));
                }
                None => {
                    r.priority = None;
                    r.last_presence = None;
                }
            }
        });
        before
    }

    fn is_bound_by(&self, jid: &FullJid, session_id: u64) -> bool {
        let (bare, resource) = keys(jid);
        self.read().get(bare).is_some_and(|rs| {
            rs.iter()
                .any(|r| r.jid.resource().as_str() == resource && r.session_id == session_id)
        })
    }

    fn resource_count(&self, bare: &str) -> usize {
        self.read().get(bare).map_or(0, Vec::len)
    }

    fn is_available(&self, jid: &FullJid) -> bool {
        let (bare, resource) = keys(jid);
        self.read().get(bare).is_some_and(|rs| {
            rs.iter()
                .any(|r| r.jid.resource().as_str() == resource && r.priority.is_some())
        })
    }

    fn send_to_full(&self, jid: &FullJid, element: Element) -> Result<(), Element> {
        match resource(&self.read(), jid) {
            Some(r) => send(jid.as_str(), &r.tx, element),
            None => Err(element),
        }
    }

    fn send_shared_to_full(&self, jid: &FullJid, stanza: &Arc<SharedStanza>) -> bool {
        resource(&self.read(), jid).is_some_and(|r| {
            r.tx.open() && offer(jid.as_str(), &r.tx, Outbound::Shared(stanza.clone())).is_ok()
        })
    }

    fn session_state(&self, jid: &FullJid) -> Option<Arc<SessionState>> {
        let (bare, resource) = keys(jid);
        self.read()
            .get(bare)?
            .iter()
            .find(|r| r.jid.resource().as_str() == resource)
            .map(|r| r.state.clone())
    }

    fn send_to_each(&self, bare: &str, make: PerResource<'_, Option<Element>>) -> usize {
        let map = self.read();
        let Some(rs) = map.get(bare) else {
            return 0;
        };
        let mut count = 0;
        for r in rs {
            if let Some(element) = make(r.jid.as_str(), &r.state) {
                count += usize::from(send(r.jid.as_str(), &r.tx, element).is_ok());
            }
        }
        count
    }

    fn any_resource(&self, bare: &str, pick: PerResource<'_, bool>) -> bool {
        self.read()
            .get(bare)
            .is_some_and(|rs| rs.iter().any(|r| pick(r.jid.as_str(), &r.state)))
    }

    fn send_to_most_available(
        &self,
        bare: &str,
        element: &Element,
        took: Option<&mut Vec<FullJid>>,
    ) -> usize {
        let best = self.read().get(bare).and_then(|rs| {
            rs.iter()
                .filter_map(Resource::reachable_priority)
                .filter(|p| *p >= 0)
                .max()
        });
        match best {
            Some(best) => self.send_where(bare, element, took, |r| {
                r.reachable_priority() == Some(best)
            }),
            None => 0,
        }
    }

    fn send_to_available(
        &self,
        bare: &str,
        element: &Element,
        non_negative_only: bool,
        took: Option<&mut Vec<FullJid>>,
    ) -> usize {
        self.send_where(bare, element, took, |r| {
            r.reachable_priority()
                .is_some_and(|p| p >= 0 || !non_negative_only)
        })
    }

    fn send_to_other_available(&self, except: &FullJid, element: &Element) -> usize {
        let (bare, resource) = keys(except);
        self.send_where(bare, element, None, |r| {
            r.jid.resource().as_str() != resource && r.reachable_priority().is_some()
        })
    }

    fn available_presences(&self, bare: &str) -> Vec<(String, Arc<Element>)> {
        self.read()
            .get(bare)
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| Some((r.jid.to_string(), r.last_presence.clone()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn close_all(&self, bare: &str, error: &StreamError) {
        if let Some(rs) = self.read().get(bare) {
            for r in rs {
                r.tx.close(error.clone());
            }
        }
    }

    fn close_session(&self, jid: &FullJid, error: &StreamError) -> bool {
        match resource(&self.read(), jid) {
            Some(r) => {
                r.tx.close(error.clone());
                true
            }
            None => false,
        }
    }

    fn online_sessions(&self, domain: &str) -> Vec<FullJid> {
        let mut list: Vec<FullJid> = self
            .read()
            .values()
            .flatten()
            .filter(|r| r.jid.domain().as_str() == domain)
            .map(|r| r.jid.clone())
            .collect();
        list.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        list
    }
}
