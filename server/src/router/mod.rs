//! The router: where every stanza goes next (RFC 6120 §10, RFC 6121 §8).
//!
//! It never touches a socket: delivering means handing the stanza to the recipient session's
//! inbox ([`table::SessionTable`]), whose task writes it. Stanzas for the server itself go to
//! the module registry; presence a client sends is handled by the presence module, which
//! hands each copy back here ([`Router::deliver_presence`]); messages for an account with no
//! available resource fire `MessageOffline` (the offline storage module keeps them).
//! Remote domains would plug in here (federation): today they are unreachable.

pub mod table;

use jabberwock_protocol::jid::{FullJid, Jid};
use jabberwock_protocol::stanza::{Condition, IqType, Stanza, StanzaError, StanzaKind};
use jabberwock_protocol::xml::Element;

use crate::modules::{Event, EventKind, Flow, IqRequest, Target};
use crate::server::Server;

pub use table::{inbox, Inbox, InboxSender, Outbound, SessionTable, INBOX_CAPACITY};

#[derive(Default)]
pub struct Router {
    pub table: SessionTable,
}

/// Where a stanza's `to` points, from our point of view.
pub enum Destination {
    /// One of our domains itself.
    Host(Jid),
    /// An account on one of our domains, bare or full.
    Local(Jid),
    /// Somewhere we can't reach (no federation yet).
    Remote,
}

/// Resolves `to` (absent = the sender's own account, RFC 6120 §10.3.1).
pub fn destination(
    server: &Server,
    to: Option<&str>,
    from: &FullJid,
) -> Result<Destination, StanzaError> {
    let to = match to.map(Jid::new) {
        None => Jid::from(from.to_bare()),
        Some(Ok(jid)) => jid,
        Some(Err(_)) => return Err(StanzaError::new(Condition::JidMalformed)),
    };
    if server.host(to.domain().as_str()).is_none() {
        return Ok(Destination::Remote);
    }
    Ok(if to.node().is_none() {
        Destination::Host(to)
    } else {
        Destination::Local(to)
    })
}

impl Router {
    pub fn new() -> Self {
        Router::default()
    }

    /// Routes a message or IQ sent by the session `from` (its `from` already stamped).
    pub async fn route(&self, server: &Server, from: &FullJid, stanza: Stanza) {
        let destination = match destination(server, stanza.to(), from) {
            Ok(d) => d,
            Err(err) => return self.bounce(from, &stanza, err),
        };
        match destination {
            // RFC 6120 §10.4.3: no federation yet, so a remote domain can't be reached.
            Destination::Remote => self.bounce(
                from,
                &stanza,
                StanzaError::new(Condition::RemoteServerNotFound),
            ),
            Destination::Host(to) => {
                // Messages and presence to the server itself have no recipient (RFC 6121 §8.5.1).
                if stanza.kind() == StanzaKind::Iq {
                    self.handle_iq(server, from, &to, Target::Host, stanza)
                        .await;
                }
            }
            Destination::Local(to) => {
                let mut stanza = stanza;
                // Modules see what arrives for an account before it is delivered (blocking,
                // for one, stops it here).
                let event = match stanza.kind() {
                    StanzaKind::Message => Some(Event::MessageIn {
                        from: Some(from),
                        to: &to,
                        stanza: &mut stanza,
                    }),
                    StanzaKind::Iq => to.try_as_full().ok().map(|full| Event::IqIn {
                        from,
                        to: full,
                        stanza: &stanza,
                    }),
                    StanzaKind::Presence => None,
                };
                let flow = match event {
                    Some(mut event) => server.modules.fire(server, &mut event).await,
                    None => Flow::Continue,
                };
                match flow {
                    Flow::Continue => {}
                    Flow::Handled => return,
                    Flow::Refuse(err) => return self.bounce(from, &stanza, err),
                }
                match to.try_as_full() {
                    Ok(full) => {
                        let full = full.clone();
                        self.to_full(server, from, &full, stanza).await
                    }
                    Err(_) => self.to_bare(server, Some(from), &to, stanza).await,
                }
            }
        }
    }

    /// RFC 6121 §8.5.3: a full JID, bound or not.
    async fn to_full(&self, server: &Server, from: &FullJid, to: &FullJid, stanza: Stanza) {
        let is_message = stanza.kind() == StanzaKind::Message;
        // The copy for the hooks is made only when a module listens.
        let copy = (is_message && server.modules.listens(EventKind::MessageDelivered))
            .then(|| stanza.clone());
        let Err(element) = self.table.send_to_full(to, stanza.into_element()) else {
            if let Some(stanza) = copy {
                let bare = Jid::from(to.clone());
                let mut event = Event::MessageDelivered {
                    to: &bare,
                    resources: std::slice::from_ref(to),
                    stanza: &stanza,
                };
                server.modules.fire(server, &mut event).await;
            }
            return;
        };
        // Not bound (or its session is ending): the element comes back, still a stanza.
        let Ok(stanza) = Stanza::from_element(element) else {
            return;
        };
        self.undeliverable(server, Some(from), to, stanza).await;
    }

    /// RFC 6121 §8.5.3.2: `to` is no session that can take `stanza`. `from` is whom to
    /// bounce to, when the sender is one of our sessions.
    async fn undeliverable(
        &self,
        server: &Server,
        from: Option<&FullJid>,
        to: &FullJid,
        stanza: Stanza,
    ) {
        match stanza.kind() {
            // §8.5.3.2.1: a message for an unavailable resource goes to the bare JID.
            StanzaKind::Message => {
                let bare = Jid::from(to.to_bare());
                Box::pin(self.to_bare(server, from, &bare, stanza)).await;
            }
            // §8.5.3.2.2: an IQ request is answered with an error; an answer has no one to go to.
            StanzaKind::Iq => {
                if let Some(from) = from {
                    if matches!(stanza.iq_type(), Some(IqType::Get | IqType::Set)) {
                        self.bounce(
                            from,
                            &stanza,
                            StanzaError::new(Condition::ServiceUnavailable),
                        );
                    }
                }
            }
            // §8.5.3.2.3: presence for a resource that is gone is ignored.
            StanzaKind::Presence => {}
        }
    }

    /// What a session's inbox still held when it ended (RFC 6121 §8.5.3.2): handled as if
    /// the session had never been there, so nothing queued for it is lost.
    pub async fn redeliver(&self, server: &Server, to: &FullJid, left: Vec<Element>) {
        if !left.is_empty() {
            tracing::info!(%to, count = left.len(), "re-routing stanzas the session did not write");
        }
        for element in left {
            let Ok(stanza) = Stanza::from_element(element) else {
                continue;
            };
            let from = stanza.from().and_then(|f| FullJid::new(f).ok());
            self.undeliverable(server, from.as_ref(), to, stanza).await;
        }
    }

    /// RFC 6121 §8.5.2: the bare JID of one of our accounts.
    async fn to_bare(&self, server: &Server, from: Option<&FullJid>, to: &Jid, stanza: Stanza) {
        match stanza.kind() {
            // RFC 6120 §10.3.3: an IQ to a bare JID is answered by the server for the account.
            StanzaKind::Iq => {
                if let Some(from) = from {
                    self.handle_iq(server, from, to, Target::Account, stanza)
                        .await
                }
            }
            StanzaKind::Message => self.message_to_bare(server, from, to, stanza).await,
            StanzaKind::Presence => {}
        }
    }

    async fn message_to_bare(
        &self,
        server: &Server,
        from: Option<&FullJid>,
        to: &Jid,
        stanza: Stanza,
    ) {
        let bare = to.to_bare().to_string();
        let message_type = stanza.type_attr().unwrap_or("normal");
        let mut took = Vec::new();
        let listens = server.modules.listens(EventKind::MessageDelivered);
        let took_ref = listens.then_some(&mut took);
        let delivered = match message_type {
            // §8.5.2.1.2: groupchat to a bare JID has no sensible recipient.
            "groupchat" => 0,
            // §8.5.2.1.1: headlines go to every non-negative available resource.
            "headline" => self
                .table
                .send_to_available(&bare, stanza.element(), true, took_ref),
            _ => self
                .table
                .send_to_most_available(&bare, stanza.element(), took_ref),
        };
        if delivered > 0 {
            if listens {
                let mut event = Event::MessageDelivered {
                    to,
                    resources: &took,
                    stanza: &stanza,
                };
                server.modules.fire(server, &mut event).await;
            }
            return;
        }
        // §8.5.2.2: nobody available. Chat and normal messages wait offline (XEP-0160);
        // headlines and errors are dropped; the rest bounce.
        let err = match message_type {
            "headline" | "error" => return,
            "groupchat" => StanzaError::new(Condition::ServiceUnavailable),
            _ => {
                let owner = to.to_bare();
                let mut event = Event::MessageOffline {
                    to: &owner,
                    stanza: &stanza,
                };
                // Kept for later by the offline storage module; with none on, there is
                // nobody to deliver to (XEP-0160 §3: service-unavailable).
                match server.modules.fire(server, &mut event).await {
                    Flow::Handled => return,
                    Flow::Refuse(err) => err,
                    Flow::Continue => StanzaError::new(Condition::ServiceUnavailable),
                }
            }
        };
        match from {
            Some(from) => self.bounce(from, &stanza, err),
            None => tracing::debug!(%to, "undeliverable message from no session dropped"),
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
        let handler = server.modules.iq_handler(
            to.domain().as_str(),
            iq_type,
            target,
            payload.ns(),
            payload.name(),
        );
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

    /// Presence for `to` (RFC 6121 §4.4.3, §4.6.3): one of our accounts gets it, after the
    /// modules' `PresenceIn` listeners (a full JID if bound, a bare JID's available
    /// resources all); presence for the server itself has no recipient (§8.5.1); a remote
    /// domain can't be reached without federation, and presence is never bounced for that
    /// here (the presence module answers directed presence itself).
    pub async fn deliver_presence(&self, server: &Server, to: &Jid, mut presence: Element) {
        if server.host(to.domain().as_str()).is_none() {
            tracing::debug!(%to, "presence for a remote domain let go: no federation");
            return;
        }
        if to.node().is_none() {
            return;
        }
        let mut event = Event::PresenceIn {
            to,
            presence: &mut presence,
        };
        if !matches!(
            server.modules.fire(server, &mut event).await,
            Flow::Continue
        ) {
            return;
        }
        match to.try_as_full() {
            Ok(full) => {
                let _ = self.table.send_to_full(full, presence);
            }
            Err(bare) => {
                self.table
                    .send_to_available(bare.as_str(), &presence, false, None);
            }
        }
    }

    /// Sends a stanza error back to the sender, unless the stanza was itself an error
    /// (RFC 6120 §8.3.1: never answer an error with an error).
    pub fn bounce(&self, from: &FullJid, stanza: &Stanza, err: StanzaError) {
        if stanza.is_error() {
            return;
        }
        self.reply(from, stanza.error_reply(&err));
    }

    /// Hands a server-generated stanza to one session. If that session is gone or ending
    /// (its own end is logged), the answer has no one left to go to.
    pub fn reply(&self, to: &FullJid, element: Element) {
        if self.table.send_to_full(to, element).is_err() {
            tracing::debug!(%to, "reply for a session that is gone");
        }
    }
}
