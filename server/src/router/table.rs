//! The table of bound resources: full JID → the session's inbox, with what routing needs to
//! know about each (availability, priority, last presence, roster interest).
//!
//! A plain lock: held only for map operations, never across an await. Sending is
//! `try_send` on the session's bounded inbox, so a slow client can't stall a sender.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use jabberwock_protocol::jid::FullJid;
use jabberwock_protocol::stream::StreamError;
use jabberwock_protocol::xml::Element;
use tokio::sync::mpsc;

/// What a session's inbox carries. Kept small: every session holds a channel of these.
#[derive(Debug)]
pub enum Outbound {
    Stanza(Box<Element>),
    /// Close the stream with this error (a newer login took the JID, RFC 6120 §7.7.2.2; the
    /// account was deleted).
    Close(Box<StreamError>),
}

pub type Inbox = mpsc::Receiver<Outbound>;

/// Inbox depth: enough to absorb a burst, small enough that a stuck client can't hoard memory.
pub const INBOX_CAPACITY: usize = 256;

struct Resource {
    resource: String,
    session_id: u64,
    /// `None` until the session sends available presence (RFC 6121 §4.2); then its priority.
    priority: Option<i8>,
    /// The last broadcast presence, answered to probes (RFC 6121 §4.3.2).
    last_presence: Option<Arc<Element>>,
    /// Asked for the roster, so it gets roster pushes (RFC 6121 §2.1.6).
    interested: bool,
    tx: mpsc::Sender<Outbound>,
}

#[derive(Default)]
pub struct SessionTable {
    by_bare: RwLock<HashMap<String, Vec<Resource>>>,
}

fn keys(jid: &FullJid) -> (String, &str) {
    (jid.to_bare().to_string(), jid.resource().as_str())
}

/// Hands `element` to one inbox; gives it back when the inbox is full or closed.
fn send(tx: &mpsc::Sender<Outbound>, element: Element) -> Result<(), Element> {
    match tx.try_send(Outbound::Stanza(Box::new(element))) {
        Ok(()) => Ok(()),
        Err(e) => match e.into_inner() {
            Outbound::Stanza(element) => Err(*element),
            Outbound::Close(_) => Ok(()),
        },
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
        if let Some(r) = self
            .write()
            .get_mut(&bare)
            .and_then(|rs| rs.iter_mut().find(|r| r.resource == resource))
        {
            f(r);
        }
    }

    /// Binds a full JID to a session's inbox. An existing session with the same full JID is
    /// told to close with `conflict` (the newest login wins, as in Prosody). A new resource
    /// when the account already has `max` is refused: `false`, nothing changed.
    pub fn bind(
        &self,
        jid: &FullJid,
        session_id: u64,
        tx: mpsc::Sender<Outbound>,
        replaced: StreamError,
        max: usize,
    ) -> bool {
        let (bare, resource) = keys(jid);
        let mut map = self.write();
        let resources = map.entry(bare).or_default();
        if let Some(pos) = resources.iter().position(|r| r.resource == resource) {
            let old = resources.remove(pos);
            let _ = old.tx.try_send(Outbound::Close(Box::new(replaced)));
        } else if resources.len() >= max {
            // Checked under the write lock, so concurrent binds can't overshoot.
            return false;
        }
        resources.push(Resource {
            resource: resource.to_owned(),
            session_id,
            priority: None,
            last_presence: None,
            interested: false,
            tx,
        });
        true
    }

    /// Removes a session's entry, unless a newer session already took the JID over.
    pub fn unbind(&self, jid: &FullJid, session_id: u64) {
        let (bare, resource) = keys(jid);
        let mut map = self.write();
        if let Some(resources) = map.get_mut(&bare) {
            resources.retain(|r| !(r.resource == resource && r.session_id == session_id));
            if resources.is_empty() {
                map.remove(&bare);
            }
        }
    }

    /// Records broadcast presence: `Some((priority, presence))` when available, `None` when
    /// unavailable. Returns the priority it had before (`None`: it was unavailable).
    pub fn set_presence(&self, jid: &FullJid, presence: Option<(i8, Element)>) -> Option<i8> {
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

    pub fn set_interested(&self, jid: &FullJid) {
        self.with_resource(jid, |r| r.interested = true);
    }

    /// Whether `jid` is still bound to the session `session_id` (not replaced since).
    pub fn is_bound_by(&self, jid: &FullJid, session_id: u64) -> bool {
        let (bare, resource) = keys(jid);
        self.read().get(&bare).is_some_and(|rs| {
            rs.iter()
                .any(|r| r.resource == resource && r.session_id == session_id)
        })
    }

    /// Whether `jid` is bound and has sent available presence.
    pub fn is_available(&self, jid: &FullJid) -> bool {
        let (bare, resource) = keys(jid);
        self.read().get(&bare).is_some_and(|rs| {
            rs.iter()
                .any(|r| r.resource == resource && r.priority.is_some())
        })
    }

    pub fn send_to_full(&self, jid: &FullJid, element: Element) -> Result<(), Element> {
        let (bare, resource) = keys(jid);
        let map = self.read();
        match map
            .get(&bare)
            .and_then(|rs| rs.iter().find(|r| r.resource == resource))
        {
            Some(r) => send(&r.tx, element),
            None => Err(element),
        }
    }

    /// Sends a copy to every resource `pick` selects; returns how many took it.
    fn send_where(&self, bare: &str, element: &Element, pick: impl Fn(&Resource) -> bool) -> usize {
        let map = self.read();
        map.get(bare)
            .map(|rs| {
                rs.iter()
                    .filter(|r| pick(r))
                    .filter(|r| send(&r.tx, element.clone()).is_ok())
                    .count()
            })
            .unwrap_or(0)
    }

    /// RFC 6121 §8.5.2.1.1: the available resources sharing the highest non-negative
    /// priority.
    pub fn send_to_most_available(&self, bare: &str, element: &Element) -> usize {
        let best = self.read().get(bare).and_then(|rs| {
            rs.iter()
                .filter_map(|r| r.priority)
                .filter(|p| *p >= 0)
                .max()
        });
        match best {
            Some(best) => self.send_where(bare, element, |r| r.priority == Some(best)),
            None => 0,
        }
    }

    /// Every available resource, or only those with non-negative priority.
    pub fn send_to_available(
        &self,
        bare: &str,
        element: &Element,
        non_negative_only: bool,
    ) -> usize {
        self.send_where(bare, element, |r| {
            r.priority.is_some_and(|p| p >= 0 || !non_negative_only)
        })
    }

    /// Roster pushes (RFC 6121 §2.1.6): one element per interested resource, addressed to it.
    pub fn send_to_interested(&self, bare: &str, make: impl Fn(&str) -> Element) -> usize {
        let map = self.read();
        map.get(bare)
            .map(|rs| {
                rs.iter()
                    .filter(|r| r.interested)
                    .filter(|r| send(&r.tx, make(&format!("{bare}/{}", r.resource))).is_ok())
                    .count()
            })
            .unwrap_or(0)
    }

    /// The last presence of each available resource of `bare`, with its full JID.
    pub fn available_presences(&self, bare: &str) -> Vec<(String, Arc<Element>)> {
        self.read()
            .get(bare)
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| {
                        Some((format!("{bare}/{}", r.resource), r.last_presence.clone()?))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Tells every session of `bare` to close with `error` (e.g. the account was deleted).
    pub fn close_all(&self, bare: &str, error: &StreamError) {
        if let Some(rs) = self.read().get(bare) {
            for r in rs {
                let _ = r.tx.try_send(Outbound::Close(Box::new(error.clone())));
            }
        }
    }
}
