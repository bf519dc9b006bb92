//! The router: where every stanza a session sends goes next (RFC 6120 §10, RFC 6121 §8).
//!
//! It owns the table of bound sessions (full JID → the session's inbox) and never touches a
//! socket: delivering means handing the stanza to the recipient session's channel, whose task
//! writes it. Stanzas for the server itself go to the module registry.

use std::collections::HashMap;
use std::sync::RwLock;

use jabberwock_protocol::jid::{FullJid, Jid};
use jabberwock_protocol::stanza::{Condition, IqType, Stanza, StanzaError, StanzaKind};
use jabberwock_protocol::xml::Element;
use tokio::sync::mpsc;

use crate::modules::{IqRequest, Target};
use crate::server::Server;

/// What a session's inbox carries. Kept one pointer wide: every session holds a channel.
#[derive(Debug)]
pub enum Outbound {
    Stanza(Box<Element>),
    /// Another login bound the same full JID (RFC 6120 §7.7.2.2): close with `<conflict/>`.
    Replaced,
}

pub type Inbox = mpsc::Receiver<Outbound>;

/// Inbox depth: enough to absorb a burst, small enough that a stuck client can't hoard memory.
pub const INBOX_CAPACITY: usize = 256;

struct Route {
    resource: String,
    session_id: u64,
    /// `None` until the session sends available presence (RFC 6121 §4.2).
    priority: Option<i8>,
    tx: mpsc::Sender<Outbound>,
}

#[derive(Default)]
pub struct Router {
    /// Bare JID → its bound resources. A plain lock: held only for map operations, never
    /// across an await.
    sessions: RwLock<HashMap<String, Vec<Route>>>,
}

impl Router {
    pub fn new() -> Self {
        Router::default()
    }

    /// Binds a full JID to a session's inbox. An existing session with the same full JID is
    /// told it was replaced (our conflict policy: the newest login wins, as Prosody does).
    pub fn bind(&self, jid: &FullJid, session_id: u64, tx: mpsc::Sender<Outbound>) {
        let bare = jid.to_bare().to_string();
        let resource = jid.resource().to_string();
        let mut map = self.write();
        let routes = map.entry(bare).or_default();
        if let Some(pos) = routes.iter().position(|r| r.resource == resource) {
            let old = routes.remove(pos);
            let _ = old.tx.try_send(Outbound::Replaced);
        }
        routes.push(Route {
            resource,
            session_id,
            priority: None,
            tx,
        });
    }

    /// Removes a session's route, unless a newer session already took the JID over.
    pub fn unbind(&self, jid: &FullJid, session_id: u64) {
        let bare = jid.to_bare().to_string();
        let mut map = self.write();
        if let Some(routes) = map.get_mut(&bare) {
            routes
                .retain(|r| !(r.resource == jid.resource().as_str() && r.session_id == session_id));
            if routes.is_empty() {
                map.remove(&bare);
            }
        }
    }

    /// Records the session's availability and priority from its broadcast presence.
    pub fn set_presence(&self, jid: &FullJid, priority: Option<i8>) {
        let bare = jid.to_bare().to_string();
        if let Some(routes) = self.write().get_mut(&bare) {
            if let Some(r) = routes
                .iter_mut()
                .find(|r| r.resource == jid.resource().as_str())
            {
                r.priority = priority;
            }
        }
    }

    pub fn is_bound(&self, jid: &FullJid) -> bool {
        let bare = jid.to_bare().to_string();
        self.read()
            .get(&bare)
            .is_some_and(|rs| rs.iter().any(|r| r.resource == jid.resource().as_str()))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Vec<Route>>> {
        self.sessions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Vec<Route>>> {
        self.sessions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands `stanza` to one bound resource. `false` if it is not bound (or its inbox is full).
    fn deliver_to_full(&self, jid: &FullJid, element: Element) -> Result<(), Element> {
        let bare = jid.to_bare().to_string();
        let map = self.read();
        let Some(route) = map
            .get(&bare)
            .and_then(|rs| rs.iter().find(|r| r.resource == jid.resource().as_str()))
        else {
            return Err(element);
        };
        match route.tx.try_send(Outbound::Stanza(Box::new(element))) {
            Ok(()) => Ok(()),
            // A full inbox (or a session that just ended) hands the stanza back.
            Err(e) => match e.into_inner() {
                Outbound::Stanza(element) => Err(*element),
                Outbound::Replaced => Ok(()),
            },
        }
    }

    /// Resources of `bare` chosen for a message to the bare JID (RFC 6121 §8.5.2.1.1):
    /// all available resources sharing the highest non-negative priority.
    fn message_targets(&self, bare: &str) -> Vec<mpsc::Sender<Outbound>> {
        let map = self.read();
        let Some(routes) = map.get(bare) else {
            return Vec::new();
        };
        let best = routes
            .iter()
            .filter_map(|r| r.priority)
            .filter(|p| *p >= 0)
            .max();
        match best {
            Some(best) => routes
                .iter()
                .filter(|r| r.priority == Some(best))
                .map(|r| r.tx.clone())
                .collect(),
            None => Vec::new(),
        }
    }

    /// Available resources of `bare` with non-negative priority (headlines, RFC 6121
    /// §8.5.2.1.1).
    fn non_negative_resources(&self, bare: &str) -> Vec<mpsc::Sender<Outbound>> {
        self.read()
            .get(bare)
            .map(|rs| {
                rs.iter()
                    .filter(|r| r.priority.is_some_and(|p| p >= 0))
                    .map(|r| r.tx.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// All available resources of `bare` (directed presence to a bare JID, RFC 6121 §4.6).
    fn available_resources(&self, bare: &str) -> Vec<mpsc::Sender<Outbound>> {
        self.read()
            .get(bare)
            .map(|rs| {
                rs.iter()
                    .filter(|r| r.priority.is_some())
                    .map(|r| r.tx.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Routes a stanza sent by the session `from` (its `from` already stamped).
    pub async fn route(&self, server: &Server, from: &FullJid, stanza: Stanza) {
        let to = match stanza.to().map(Jid::new) {
            None => Jid::from(from.to_bare()),
            Some(Ok(jid)) => jid,
            Some(Err(_)) => {
                return self.bounce(from, &stanza, StanzaError::new(Condition::JidMalformed));
            }
        };
        if server.host(to.domain().as_str()).is_none() {
            // No federation yet (RFC 6120 §10.4.3): a remote domain can't be reached.
            return self.bounce(
                from,
                &stanza,
                StanzaError::new(Condition::RemoteServerNotFound),
            );
        }
        match (to.node().is_some(), to.try_as_full()) {
            (false, _) => self.to_server(server, from, &to, stanza).await,
            (true, Ok(full)) => self.to_full(server, from, &full.clone(), stanza).await,
            (true, Err(_)) => self.to_bare(server, from, &to, stanza).await,
        }
    }

    /// RFC 6120 §10.3: the server itself handles it, or it is not for anyone.
    async fn to_server(&self, server: &Server, from: &FullJid, to: &Jid, stanza: Stanza) {
        if stanza.kind() == StanzaKind::Iq {
            self.handle_iq(server, from, to, Target::Host, stanza).await;
        }
        // Messages and presence to the server: nothing to deliver them to (RFC 6121 §8.5.1).
    }

    /// RFC 6121 §8.5.3: a full JID, bound or not.
    async fn to_full(&self, server: &Server, from: &FullJid, to: &FullJid, stanza: Stanza) {
        let Err(element) = self.deliver_to_full(to, stanza.into_element()) else {
            return;
        };
        // Not bound: the element comes back, still a stanza.
        let Ok(stanza) = Stanza::from_element(element) else {
            return;
        };
        match stanza.kind() {
            // §8.5.3.2.1: a message for an unavailable resource goes to the bare JID.
            StanzaKind::Message => {
                let bare = Jid::from(to.to_bare());
                Box::pin(self.to_bare(server, from, &bare, stanza)).await;
            }
            StanzaKind::Iq => self.bounce(
                from,
                &stanza,
                StanzaError::new(Condition::ServiceUnavailable),
            ),
            // §8.5.3.2.3: presence to an unavailable resource is dropped silently.
            StanzaKind::Presence => {}
        }
    }

    /// RFC 6121 §8.5.2: a bare JID of one of our accounts.
    async fn to_bare(&self, server: &Server, from: &FullJid, to: &Jid, stanza: Stanza) {
        let bare = to.to_bare().to_string();
        match stanza.kind() {
            // RFC 6120 §10.3.3: an IQ to a bare JID is answered by the server for the account.
            StanzaKind::Iq => {
                self.handle_iq(server, from, to, Target::Account, stanza)
                    .await
            }
            StanzaKind::Presence => {
                for tx in self.available_resources(&bare) {
                    let _ = tx.try_send(Outbound::Stanza(Box::new(stanza.element().clone())));
                }
            }
            StanzaKind::Message => {
                let message_type = stanza.type_attr().unwrap_or("normal");
                let targets = match message_type {
                    // §8.5.2.1.2: groupchat to a bare JID has no sensible recipient.
                    "groupchat" => Vec::new(),
                    // headline: every available resource with non-negative priority.
                    "headline" => self.non_negative_resources(&bare),
                    _ => self.message_targets(&bare),
                };
                // A session that just ended may still be listed: count what was taken.
                let delivered = targets
                    .iter()
                    .filter(|tx| {
                        tx.try_send(Outbound::Stanza(Box::new(stanza.element().clone())))
                            .is_ok()
                    })
                    .count();
                // No available resource. Offline storage comes with the IM core; until then
                // RFC 6121 §8.5.2.2 lets us answer service-unavailable.
                if delivered == 0 && message_type != "headline" && message_type != "error" {
                    self.bounce(
                        from,
                        &stanza,
                        StanzaError::new(Condition::ServiceUnavailable),
                    );
                }
            }
        }
    }

    async fn handle_iq(
        &self,
        server: &Server,
        from: &FullJid,
        to: &Jid,
        target: Target,
        iq: Stanza,
    ) {
        let Some(iq_type) = iq.iq_type() else {
            return self.bounce(from, &iq, StanzaError::new(Condition::BadRequest));
        };
        // Results and errors addressed to the server answer nothing we asked: drop them.
        if matches!(iq_type, IqType::Result | IqType::Error) {
            return;
        }
        let Some(payload) = iq.iq_payload() else {
            return self.bounce(from, &iq, StanzaError::new(Condition::BadRequest));
        };
        let handler = server
            .modules
            .iq_handler(iq_type, target, payload.ns(), payload.name());
        let reply = match handler {
            Some(handler) => {
                let request = IqRequest {
                    server,
                    from,
                    to,
                    stanza: &iq,
                    payload,
                };
                match handler.handle(request).await {
                    Ok(result) => iq.iq_result(result),
                    Err(err) => iq.error_reply(&err),
                }
            }
            None => iq.error_reply(&StanzaError::new(Condition::ServiceUnavailable)),
        };
        self.reply(from, reply);
    }

    /// Sends a stanza error back to the sender, unless the stanza was itself an error
    /// (RFC 6120 §8.3.1: never answer an error with an error).
    fn bounce(&self, from: &FullJid, stanza: &Stanza, err: StanzaError) {
        if stanza.is_error() {
            return;
        }
        self.reply(from, stanza.error_reply(&err));
    }

    fn reply(&self, to: &FullJid, element: Element) {
        let _ = self.deliver_to_full(to, element);
    }
}
