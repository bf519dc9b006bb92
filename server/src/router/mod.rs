//! The router: where every stanza goes next (RFC 6120 §10, RFC 6121 §8).
//!
//! It never touches a socket: delivering means handing the stanza to the recipient's
//! session through the [`Sessions`] interface (this process's [`table::SessionTable`]:
//! the session's inbox, whose task writes it). Stanzas for the server itself go to
//! the module registry; stanzas for a service's domain (`conference.HOST`) go to the module
//! that serves it ([`crate::modules::Service`]), which answers through
//! [`Router::route_from_service`]; presence a client sends is handled by the presence
//! module, which hands each copy back here ([`Router::deliver_presence`]); messages for an
//! account with no available resource fire `MessageOffline` (the offline storage module
//! keeps them). Stanzas for other domains go to the module that registered remote delivery
//! ([`crate::modules::Remote`], federation), or bounce when none did; what remote servers
//! send enters through [`Router::route_from_remote`], under the same delivery rules.

pub mod outgoing;
pub mod sessions;
pub mod table;

use std::sync::Arc;

use jabberwock_protocol::jid::{bare_part, FullJid, Jid};
use jabberwock_protocol::stanza::{
    Condition, IqType, SharedStanza, Stanza, StanzaError, StanzaKind,
};
use jabberwock_protocol::xml::Element;

use crate::modules::{Event, EventKind, Flow, IqHandler, IqRequest, ServiceDelivery, Target};
use crate::server::Server;

pub use outgoing::Outgoing;
pub use sessions::Sessions;
pub use table::{inbox, Inbox, InboxSender, Outbound, SessionTable, INBOX_CAPACITY};

pub struct Router {
    /// The sessions delivered to (see [`Sessions`] for what its answers promise).
    pub table: Box<dyn Sessions>,
}

impl Default for Router {
    fn default() -> Self {
        Router {
            table: Box::new(SessionTable::default()),
        }
    }
}

/// Where a stanza's `to` points, from our point of view.
pub enum Destination {
    /// One of our domains itself.
    Host(Jid),
    /// An account on one of our domains, bare or full.
    Local(Jid),
    /// A service's domain, or a JID at it (`room@conference.HOST/nick`).
    Service(Jid),
    /// A domain we don't serve: another server's (federation), if we can reach it.
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
    Ok(classify(server, to))
}

fn classify(server: &Server, to: Jid) -> Destination {
    let domain = to.domain().as_str();
    if !server.serves(domain) {
        return match server.modules.service(domain) {
            Some(_) => Destination::Service(to),
            None => Destination::Remote,
        };
    }
    if to.node().is_none() {
        Destination::Host(to)
    } else {
        Destination::Local(to)
    }
}

/// Where the error a stanza earns goes (RFC 6120 §8.3): back to the session or the service
/// that sent it, or nowhere (a sender that is neither, or gone).
#[derive(Clone, Copy)]
pub enum ReturnPath<'a> {
    Session(&'a FullJid),
    Service(&'a Jid),
    /// A remote server's entity (federation): its errors leave through remote delivery.
    Remote(&'a Jid),
    Nobody,
}

impl ReturnPath<'_> {
    /// The asking entity's full JID, for what only sessions, local or remote, may ask (IQs
    /// the server answers on an account's behalf) and the hooks that name a full JID.
    fn asker(&self) -> Option<&FullJid> {
        match self {
            ReturnPath::Session(from) => Some(from),
            ReturnPath::Remote(from) => from.try_as_full().ok(),
            _ => None,
        }
    }
}

impl Router {
    pub fn new() -> Self {
        Router::default()
    }

    /// Routes a message or IQ sent by the session `from` (its `from` already stamped).
    pub async fn route(&self, server: &Server, from: &FullJid, stanza: Stanza) {
        let _timing = crate::metrics::routing();
        let back = ReturnPath::Session(from);
        let destination = match destination(server, stanza.to(), from) {
            Ok(d) => d,
            Err(err) => return self.bounce(from, &stanza, err),
        };
        match destination {
            // RFC 6120 §10.4.3: another server's, if federation can reach it.
            Destination::Remote => {
                match iq_on_the_way_out(server, from, &stanza).await {
                    Flow::Continue => {}
                    Flow::Handled => return,
                    Flow::Refuse(err) => return self.bounce(from, &stanza, err),
                }
                match server.modules.remote() {
                    Some(remote) => remote.send(server, stanza.into_element()),
                    None => self.bounce(
                        from,
                        &stanza,
                        StanzaError::new(Condition::RemoteServerNotFound),
                    ),
                }
            }
            Destination::Host(to) => {
                // Messages and presence to the server itself have no recipient (RFC 6121 §8.5.1).
                if stanza.kind() == StanzaKind::Iq {
                    self.handle_iq(server, from, back, &to, Target::Host, stanza)
                        .await;
                }
            }
            Destination::Local(to) => self.to_local(server, back, Some(from), &to, stanza).await,
            Destination::Service(to) => {
                if let Some(handler) = service_iq_handler(server, &to, &stanza) {
                    return self
                        .answer_iq(server, from, back, &to, handler, stanza)
                        .await;
                }
                self.to_service(server, Jid::from(from.clone()), to, stanza)
                    .await
            }
        }
    }

    /// Routes a stanza a service sends (its `from` at the service's domain): to one of our
    /// accounts, or to another service. Errors it earns go back to the service.
    pub async fn route_from_service(&self, server: &Server, stanza: Stanza) {
        let Some(from) = service_sender(server, &stanza) else {
            return;
        };
        let back = ReturnPath::Service(&from);
        let Some(to) = stanza.to().and_then(|to| Jid::new(to).ok()) else {
            let err = StanzaError::new(Condition::JidMalformed);
            return self.bounce_to(server, back, &stanza, err).await;
        };
        match classify(server, to) {
            Destination::Local(to) => match stanza.kind() {
                StanzaKind::Presence => {
                    self.deliver_presence(server, &to, stanza.into_element())
                        .await
                }
                _ => {
                    let from_full = from.try_as_full().ok();
                    self.to_local(server, back, from_full, &to, stanza).await
                }
            },
            Destination::Service(to) => self.to_service(server, from.clone(), to, stanza).await,
            // Nothing a service sends asks the server itself anything.
            Destination::Host(to) => {
                tracing::debug!(%from, %to, "service stanza for a host let go")
            }
            Destination::Remote => match server.modules.remote() {
                Some(remote) => remote.send(server, stanza.into_element()),
                None => {
                    let err = StanzaError::new(Condition::RemoteServerNotFound);
                    self.bounce_to(server, back, &stanza, err).await
                }
            },
        }
    }

    /// Routes a stanza a remote server sent over a stream that authenticated `from`'s
    /// domain for one of ours (federation checked both): RFC 6121's rules apply as for a
    /// local sender, with the contact's server role for subscriptions (Appendix A.3) and
    /// probes (§4.3.2); errors it earns go back to the remote sender.
    pub async fn route_from_remote(&self, server: &Server, from: Jid, stanza: Stanza) {
        let back = ReturnPath::Remote(&from);
        let Some(to) = stanza.to().and_then(|to| Jid::new(to).ok()) else {
            let err = StanzaError::new(Condition::JidMalformed);
            return self.bounce_to(server, back, &stanza, err).await;
        };
        match classify(server, to) {
            Destination::Local(to) if stanza.kind() == StanzaKind::Presence => {
                self.presence_from_remote(server, &from, &to, stanza).await
            }
            Destination::Local(to) => {
                let from_full = from.try_as_full().ok();
                self.to_local(server, back, from_full, &to, stanza).await
            }
            Destination::Host(to) => match (stanza.kind(), from.try_as_full()) {
                (StanzaKind::Iq, Ok(from_full)) => {
                    self.handle_iq(server, from_full, back, &to, Target::Host, stanza)
                        .await
                }
                (StanzaKind::Iq, Err(_)) => {
                    let err = StanzaError::new(Condition::ServiceUnavailable);
                    self.bounce_to(server, back, &stanza, err).await
                }
                // RFC 6121 §8.5.1: no recipient.
                _ => {}
            },
            Destination::Service(to) => self.to_service(server, from, to, stanza).await,
            // A peer may only reach our domains through us (federation checked `to`).
            Destination::Remote => {
                tracing::debug!(%from, "stanza from a remote server for another remote domain dropped")
            }
        }
    }

    /// Presence a remote server sent for one of our accounts: subscription management
    /// goes to the contact's server role (RFC 6121 Appendix A.3), a probe is answered for
    /// the account (§4.3.2), the rest is delivered as local presence is.
    async fn presence_from_remote(&self, server: &Server, from: &Jid, to: &Jid, stanza: Stanza) {
        use crate::roster::subscription::Kind;
        let kind = stanza.type_attr().and_then(Kind::from_presence_type);
        if kind.is_some() {
            // Modules see a subscription stanza for one of our accounts before the contact's
            // server role keeps it, as they see a local user's (a blocklist drops it there).
            let mut event = Event::PresenceIn {
                to,
                presence: stanza.element(),
            };
            if !matches!(
                server.modules.fire(server, &mut event).await,
                Flow::Continue
            ) {
                return;
            }
        }
        let result = match (kind, stanza.type_attr()) {
            (Some(kind), _) => {
                let stamped = from.to_bare();
                let mut element = stanza.into_element();
                // §3.1.3: the contact's server sees the user's bare JID.
                element.set_attr("from", stamped.as_str());
                crate::roster::inbound(server, &stamped, &to.to_bare(), kind, element).await
            }
            (None, Some("probe")) => crate::roster::answer_probe(server, from, &to.to_bare()).await,
            _ => {
                self.deliver_presence(server, to, stanza.into_element())
                    .await;
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "remote presence processing failed on storage");
        }
    }

    /// Routes one stanza a service sends to many recipients (a room's groupchat message to
    /// its occupants), as [`Self::route_from_service`] would route each recipient's own
    /// copy, in order; a message or presence for a full JID of ours is shared, not copied:
    /// sessions write it from bytes made once per dialect's form (`Outbound::Shared`).
    /// Anything else (IQs, other domains) is routed as the recipient's own copy.
    pub async fn route_shared_from_service(
        &self,
        server: &Server,
        stanza: Arc<SharedStanza>,
        recipients: &[FullJid],
    ) {
        let Some(from) = service_sender(server, stanza.stanza()) else {
            return;
        };
        let kind = stanza.stanza().kind();
        for to in recipients {
            let ours = to.node().is_some() && server.serves(to.domain().as_str());
            if kind == StanzaKind::Iq || !ours {
                let own = stanza.to_stanza(to.as_str());
                Box::pin(self.route_from_service(server, own)).await;
                continue;
            }
            if kind == StanzaKind::Presence {
                self.shared_presence_to_full(server, to, &stanza).await;
                continue;
            }
            let back = ReturnPath::Service(&from);
            self.shared_to_full(server, back, from.try_as_full().ok(), to, &stanza)
                .await;
        }
    }

    /// [`Self::deliver_presence`] to a full JID of ours for a shared presence: the same
    /// hook, and nothing more if the resource is gone (RFC 6121 §8.5.3.2.3).
    async fn shared_presence_to_full(
        &self,
        server: &Server,
        to: &FullJid,
        shared: &Arc<SharedStanza>,
    ) {
        let recipient = Jid::from(to.clone());
        let mut event = Event::PresenceIn {
            to: &recipient,
            presence: shared.element(),
        };
        if matches!(
            server.modules.fire(server, &mut event).await,
            Flow::Continue
        ) {
            self.table.send_shared_to_full(to, shared);
        }
    }

    /// [`Self::to_local`] and [`Self::to_full`] for a shared message: the same hooks and
    /// rules, and the recipient's own copy made only where one is handed on (an error, a
    /// listener of `MessageDelivered`, re-routing when the session can't take it).
    async fn shared_to_full(
        &self,
        server: &Server,
        back: ReturnPath<'_>,
        from: Option<&FullJid>,
        to: &FullJid,
        shared: &Arc<SharedStanza>,
    ) {
        let recipient = Jid::from(to.clone());
        let mut event = Event::MessageIn {
            from,
            to: &recipient,
            stanza: shared.stanza(),
        };
        match server.modules.fire(server, &mut event).await {
            Flow::Continue => {}
            Flow::Handled => return,
            Flow::Refuse(err) => {
                let own = shared.to_stanza(to.as_str());
                return self.bounce_to(server, back, &own, err).await;
            }
        }
        if !self.table.send_shared_to_full(to, shared) {
            let own = shared.to_stanza(to.as_str());
            return self.undeliverable(server, back, to, own).await;
        }
        if server.modules.listens(EventKind::MessageDelivered) {
            let own = shared.to_stanza(to.as_str());
            delivered(server, &recipient, to, &own).await;
        }
    }

    /// A message or IQ for one of our accounts, bare or full.
    async fn to_local(
        &self,
        server: &Server,
        back: ReturnPath<'_>,
        from: Option<&FullJid>,
        to: &Jid,
        stanza: Stanza,
    ) {
        // Modules see what arrives for an account before it is delivered (blocking, for
        // one, stops it here).
        let event = match stanza.kind() {
            StanzaKind::Message => Some(Event::MessageIn {
                from,
                to,
                stanza: &stanza,
            }),
            StanzaKind::Iq => from.map(|from| Event::IqIn {
                from,
                to,
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
            Flow::Refuse(err) => return self.bounce_to(server, back, &stanza, err).await,
        }
        // A message let through: listeners may change it before it is delivered or kept
        // (the archive stores it and marks it with its id, XEP-0359).
        let mut stanza = stanza;
        if stanza.kind() == StanzaKind::Message
            && server.modules.listens(EventKind::MessageAccepted)
        {
            let mut event = Event::MessageAccepted {
                from,
                to,
                stanza: &mut stanza,
            };
            match server.modules.fire(server, &mut event).await {
                Flow::Continue => {}
                Flow::Handled => return,
                Flow::Refuse(err) => return self.bounce_to(server, back, &stanza, err).await,
            }
        }
        match to.try_as_full() {
            Ok(full) => self.to_full(server, back, full, stanza).await,
            Err(_) => self.to_bare(server, back, to, stanza).await,
        }
    }

    /// Hands a stanza to the service whose domain `to` is at.
    async fn to_service(&self, server: &Server, from: Jid, to: Jid, stanza: Stanza) {
        let Some(entry) = server.modules.service(to.domain().as_str()) else {
            return;
        };
        let delivery = ServiceDelivery {
            server,
            domain: &entry.domain,
            host: &entry.host,
            from,
            to,
            stanza,
        };
        entry.service.receive(delivery).await;
    }

    /// RFC 6121 §8.5.3: a full JID, bound or not.
    async fn to_full(&self, server: &Server, back: ReturnPath<'_>, to: &FullJid, stanza: Stanza) {
        let is_message = stanza.kind() == StanzaKind::Message;
        // The copy for the hooks is made only when a module listens.
        let copy = (is_message && server.modules.listens(EventKind::MessageDelivered))
            .then(|| stanza.clone());
        let Err(element) = self.table.send_to_full(to, stanza.into_element()) else {
            if let Some(stanza) = copy {
                delivered(server, &Jid::from(to.clone()), to, &stanza).await;
            }
            return;
        };
        // Not bound (or its session is ending): the element comes back, still a stanza.
        let Ok(stanza) = Stanza::from_element(element) else {
            return;
        };
        self.undeliverable(server, back, to, stanza).await;
    }

    /// RFC 6121 §8.5.3.2: `to` is no session that can take `stanza`; `back` is where its
    /// error goes.
    async fn undeliverable(
        &self,
        server: &Server,
        back: ReturnPath<'_>,
        to: &FullJid,
        stanza: Stanza,
    ) {
        match stanza.kind() {
            // §8.5.3.2.1: a message for an unavailable resource goes to the bare JID.
            StanzaKind::Message => {
                let bare = Jid::from(to.to_bare());
                Box::pin(self.to_bare(server, back, &bare, stanza)).await;
            }
            // §8.5.3.2.2: an IQ request is answered with an error; an answer has no one to go to.
            StanzaKind::Iq => {
                if matches!(stanza.iq_type(), Some(IqType::Get | IqType::Set)) {
                    let err = StanzaError::new(Condition::ServiceUnavailable);
                    Box::pin(self.bounce_to(server, back, &stanza, err)).await;
                }
            }
            // §8.5.3.2.3: presence for a resource that is gone is ignored.
            StanzaKind::Presence => {}
        }
    }

    /// What a session's inbox still held when it ended (RFC 6121 §8.5.3.2): handled as if
    /// the session had never been there, so nothing queued for it is lost (a shared stanza
    /// as the session's own copy).
    pub async fn redeliver(&self, server: &Server, to: &FullJid, left: Vec<Outgoing>) {
        if !left.is_empty() {
            tracing::info!(%to, count = left.len(), "re-routing stanzas the session did not write");
        }
        for outgoing in left {
            let Ok(stanza) = Stanza::from_element(outgoing.into_element(to.as_str())) else {
                continue;
            };
            let from = stanza.from().and_then(|f| Jid::new(f).ok());
            let back = match &from {
                Some(from) if server.modules.is_service(from.domain().as_str()) => {
                    ReturnPath::Service(from)
                }
                Some(from) if !server.serves(from.domain().as_str()) => ReturnPath::Remote(from),
                Some(from) => from
                    .try_as_full()
                    .map_or(ReturnPath::Nobody, ReturnPath::Session),
                None => ReturnPath::Nobody,
            };
            self.undeliverable(server, back, to, stanza).await;
        }
    }

    /// RFC 6121 §8.5.2: the bare JID of one of our accounts.
    async fn to_bare(&self, server: &Server, back: ReturnPath<'_>, to: &Jid, stanza: Stanza) {
        match stanza.kind() {
            // RFC 6120 §10.3.3: an IQ to a bare JID is answered by the server for the account
            // (to the account's sessions and contacts; a service asks it nothing).
            StanzaKind::Iq => match back.asker() {
                Some(from) => {
                    self.handle_iq(server, from, back, to, Target::Account, stanza)
                        .await
                }
                None => {
                    let err = StanzaError::new(Condition::ServiceUnavailable);
                    self.bounce_to(server, back, &stanza, err).await
                }
            },
            StanzaKind::Message => self.message_to_bare(server, back, to, stanza).await,
            StanzaKind::Presence => {}
        }
    }

    async fn message_to_bare(
        &self,
        server: &Server,
        back: ReturnPath<'_>,
        to: &Jid,
        stanza: Stanza,
    ) {
        let bare = bare_part(to.as_str());
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
                .send_to_available(bare, stanza.element(), true, took_ref),
            _ => self
                .table
                .send_to_most_available(bare, stanza.element(), took_ref),
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
        self.bounce_to(server, back, &stanza, err).await
    }

    /// An IQ the server answers: to a host, or to an account's bare JID on its behalf.
    async fn handle_iq(
        &self,
        server: &Server,
        from: &FullJid,
        back: ReturnPath<'_>,
        to: &Jid,
        target: Target,
        iq: Stanza,
    ) {
        let Some(iq_type) = iq.iq_type() else {
            return self.bounce_back(server, back, &iq, StanzaError::new(Condition::BadRequest));
        };
        // Results and errors addressed to the server answer nothing we asked: drop them.
        if matches!(iq_type, IqType::Result | IqType::Error) {
            return;
        }
        let Some(payload) = iq.iq_payload() else {
            return self.bounce_back(server, back, &iq, StanzaError::new(Condition::BadRequest));
        };
        let handler = server.modules.iq_handler(
            to.domain().as_str(),
            iq_type,
            target,
            payload.ns(),
            payload.name(),
        );
        match handler {
            Some(handler) => self.answer_iq(server, from, back, to, handler, iq).await,
            None => {
                let err = StanzaError::new(Condition::ServiceUnavailable);
                log_unserved(from, to, payload, &err);
                self.bounce_back(server, back, &iq, err)
            }
        }
    }

    /// Runs a registered IQ handler and sends its answer to the session that asked.
    async fn answer_iq(
        &self,
        server: &Server,
        from: &FullJid,
        back: ReturnPath<'_>,
        to: &Jid,
        handler: &std::sync::Arc<dyn IqHandler>,
        iq: Stanza,
    ) {
        let Some(payload) = iq.iq_payload() else {
            return self.bounce_back(server, back, &iq, StanzaError::new(Condition::BadRequest));
        };
        let request = IqRequest {
            server,
            from,
            to,
            stanza: &iq,
            payload,
        };
        let reply = match handler.handle(request).await {
            Ok(result) => iq.iq_result(result),
            Err(err) => {
                log_unserved(from, to, payload, &err);
                iq.error_reply(&err)
            }
        };
        self.send_back(server, back, reply);
    }

    /// A server-generated answer for a session or a remote entity (services are answered
    /// through `bounce_to`).
    fn send_back(&self, server: &Server, back: ReturnPath<'_>, element: Element) {
        match back {
            ReturnPath::Session(to) => self.reply(to, element),
            ReturnPath::Remote(_) => {
                if let Some(remote) = server.modules.remote() {
                    remote.send(server, element);
                }
            }
            ReturnPath::Service(_) | ReturnPath::Nobody => {}
        }
    }

    /// [`Router::bounce`] for a session or a remote entity.
    fn bounce_back(
        &self,
        server: &Server,
        back: ReturnPath<'_>,
        stanza: &Stanza,
        err: StanzaError,
    ) {
        if !stanza.is_error() {
            self.send_back(server, back, stanza.error_reply(&err));
        }
    }

    /// Presence for `to` (RFC 6121 §4.4.3, §4.6.3): one of our accounts gets it, after the
    /// modules' `PresenceIn` listeners (a full JID if bound, a bare JID's available
    /// resources all); a service's domain gets it through its module (joining a room is
    /// directed presence, XEP-0045 §7.2); presence for the server itself has no recipient
    /// (§8.5.1); a remote domain's goes to federation after the same listeners, or nowhere
    /// without federation, and presence is never bounced for that here (the presence module
    /// answers directed presence itself).
    pub async fn deliver_presence(&self, server: &Server, to: &Jid, presence: Element) {
        let domain = to.domain().as_str();
        if !server.serves(domain) {
            if !server.modules.is_service(domain) {
                let Some(remote) = server.modules.remote() else {
                    tracing::debug!(%to, "presence for a remote domain let go: no federation");
                    return;
                };
                // Modules see presence for another server's entity as they see presence for
                // ours (a blocklist stops the user's presence to a blocked contact there).
                let mut event = Event::PresenceIn {
                    to,
                    presence: &presence,
                };
                if matches!(
                    server.modules.fire(server, &mut event).await,
                    Flow::Continue
                ) {
                    remote.send(server, presence);
                }
                return;
            }
            let Ok(stanza) = Stanza::from_element(presence) else {
                return;
            };
            let Some(from) = stanza.from().and_then(|f| Jid::new(f).ok()) else {
                return;
            };
            return self.to_service(server, from, to.clone(), stanza).await;
        }
        if to.node().is_none() {
            return;
        }
        let mut event = Event::PresenceIn {
            to,
            presence: &presence,
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

    /// Sends the error `stanza` earned to where `back` says, unless it was itself an error
    /// (RFC 6120 §8.3.1: never answer an error with an error).
    async fn bounce_to(
        &self,
        server: &Server,
        back: ReturnPath<'_>,
        stanza: &Stanza,
        err: StanzaError,
    ) {
        match back {
            ReturnPath::Session(from) => self.bounce(from, stanza, err),
            ReturnPath::Service(service) if !stanza.is_error() => {
                let Ok(reply) = Stanza::from_element(stanza.error_reply(&err)) else {
                    return;
                };
                // The error comes from where the stanza was going.
                let from = reply.from().and_then(|f| Jid::new(f).ok());
                let from = from.unwrap_or_else(|| Jid::from(service.to_bare()));
                self.to_service(server, from, service.clone(), reply).await
            }
            ReturnPath::Service(_) => {}
            ReturnPath::Remote(_) => self.bounce_back(server, back, stanza, err),
            ReturnPath::Nobody => {
                tracing::debug!("undeliverable stanza from no session or service dropped")
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
    /// (its own end is logged), the answer has no one to go to.
    pub fn reply(&self, to: &FullJid, element: Element) {
        if self.table.send_to_full(to, element).is_err() {
            tracing::debug!(%to, "reply for a session that is gone");
        }
    }
}

/// The `from` of a stanza a service sends, if it is a JID at one of the services' domains
/// (anything else is dropped, and logged: a service's fault, not a client's).
fn service_sender(server: &Server, stanza: &Stanza) -> Option<Jid> {
    let Some(from) = stanza.from().and_then(|f| Jid::new(f).ok()) else {
        tracing::warn!("a service sent a stanza without a valid from: dropped");
        return None;
    };
    if !server.modules.is_service(from.domain().as_str()) {
        tracing::warn!(%from, "a service sent a stanza from outside its domain: dropped");
        return None;
    }
    Some(from)
}

/// `MessageDelivered` for a message that the full JID `resource` of `to` took.
async fn delivered(server: &Server, to: &Jid, resource: &FullJid, stanza: &Stanza) {
    let mut event = Event::MessageDelivered {
        to,
        resources: std::slice::from_ref(resource),
        stanza,
    };
    server.modules.fire(server, &mut event).await;
}

/// What the modules' `IqIn` listeners say of a session's IQ for another server's entity:
/// they see it as they see one for our accounts (a blocklist refuses it there). Anything
/// else goes on.
async fn iq_on_the_way_out(server: &Server, from: &FullJid, stanza: &Stanza) -> Flow {
    if stanza.kind() != StanzaKind::Iq {
        return Flow::Continue;
    }
    let Some(to) = stanza.to().and_then(|to| Jid::new(to).ok()) else {
        return Flow::Continue;
    };
    let mut event = Event::IqIn {
        from,
        to: &to,
        stanza,
    };
    server.modules.fire(server, &mut event).await
}

/// The handler registered for an IQ to a service's bare domain (disco#info, or the owner's
/// own), if any: anything else for the service goes to the service.
fn service_iq_handler<'s>(
    server: &'s Server,
    to: &Jid,
    iq: &Stanza,
) -> Option<&'s std::sync::Arc<dyn IqHandler>> {
    if to.node().is_some() || to.try_as_full().is_ok() {
        return None;
    }
    let iq_type = iq.iq_type()?;
    if !matches!(iq_type, IqType::Get | IqType::Set) {
        return None;
    }
    let payload = iq.iq_payload()?;
    server.modules.iq_handler(
        to.domain().as_str(),
        iq_type,
        Target::Service,
        payload.ns(),
        payload.name(),
    )
}

/// An IQ the server refused as unsupported (RFC 6120 §8.3.3.19 service-unavailable,
/// §8.3.3.5 feature-not-implemented), logged with what was asked: which client feature an
/// admin's users are missing shows in the namespace.
fn log_unserved(from: &FullJid, to: &Jid, payload: &Element, err: &StanzaError) {
    if matches!(
        err.condition,
        Condition::ServiceUnavailable | Condition::FeatureNotImplemented
    ) {
        tracing::debug!(
            %from,
            %to,
            ns = payload.ns(),
            element = payload.name(),
            condition = err.condition.as_str(),
            "IQ not served"
        );
    }
}
