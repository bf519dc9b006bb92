//! Hooks: events the core fires and modules listen to (Prosody's `module:hook`, ejabberd's
//! `ejabberd_hooks`). Listeners run highest priority first; one may answer
//! [`Flow::Handled`] (the event is dealt with: the core does nothing more with it) or
//! [`Flow::Refuse`] (the sender gets this error instead), which stops the rest.
//!
//! Where each fires:
//! - [`Event::MessageFromClient`]: `session/mod.rs`, a client's message after `from` is stamped,
//!   before routing.
//! - [`Event::MessageIn`]: `router/`, a message for one of our accounts (bare or full JID)
//!   before delivery; `pep/`, a notification sent on an account's behalf (no sending
//!   session), for our accounts and other servers' entities alike.
//! - [`Event::MessageAccepted`]: `router/`, a message for one of our accounts that the
//!   `MessageIn` listeners let through, just before delivery (or offline storage); its own
//!   copy, which listeners may change (the archive adds its XEP-0359 `<stanza-id/>`). A
//!   stanza shared by many (a room's groupchat message) does not fire it.
//! - [`Event::MessageDelivered`]: `router/`, after a message went to one or more resources.
//! - [`Event::MessageOffline`]: `router/`, a message for an account with no available
//!   resource; the offline storage module handles it, else the sender gets
//!   `service-unavailable`.
//! - [`Event::IqIn`]: `router/`, an IQ for one of our accounts (a full JID, or the bare JID
//!   the server answers for), from a session or another server's entity, before delivery
//!   or the server's answer; and a session's IQ for another server's entity, before
//!   federation takes it.
//! - [`Event::PresenceOut`]: `session/mod.rs`, a client's presence; the presence module (RFC 6121
//!   §4, lowest priority) handles it after the others' listeners.
//! - [`Event::PresenceIn`]: `router/` (`deliver_presence`) and the presence module's probe
//!   answers, presence for one of our accounts before delivery, probe answers included,
//!   and subscription stanzas from other servers before the contact's role keeps them;
//!   also presence for another server's entity before federation takes it (broadcasts,
//!   probes and probe answers to remote contacts).
//! - [`Event::InitialPresence`]: the presence module, a resource became available.
//! - [`Event::SessionBound`], [`Event::SessionEnded`]: `session/mod.rs` (not again when XEP-0198 resumes a session on a new stream).
//! - [`Event::StanzaToClient`]: `session/mod.rs`, a stanza the session is about to write to its
//!   client (from its inbox, or what its own stanzas earned it; not the offline backlog).
//!   Fired only when a module listens.
//! - [`Event::ClientFeatures`]: `caps.rs`, a session's client features became known or
//!   changed (XEP-0115: its `ver` found in the cache, or its disco#info answered), on the
//!   session's own task (listeners may use `SessionState::write_after`); and another
//!   server's resource's, from the presence its server sent (no session of ours: `jid`
//!   is on another domain).
//! - [`Event::RosterChanged`]: `roster/`, after an item was stored and pushed.
//! - [`Event::AccountDeleted`]: `roster/`, after an account and its data were removed.
//! - [`Event::AccountDataStored`]: `vcard.rs` (the account set its vCard) and `private.rs`
//!   (each element the account stored in XEP-0049 private storage), after the store has
//!   it; what a module writes there itself fires nothing.

use async_trait::async_trait;
use jabberwock_protocol::jid::{BareJid, FullJid, Jid};
use jabberwock_protocol::stanza::{Stanza, StanzaError};
use jabberwock_protocol::xml::Element;

use super::caps::ClientFeatures;
use super::SessionState;
use crate::router::Outgoing;
use crate::server::Server;

/// What a session writes for itself, never through its own bounded inbox (which only its
/// task drains): stanzas its client's stanza earned it, in order, then, when
/// `backlog_due`, the modules' backlogs (`Registrar::backlog`).
#[derive(Default)]
pub struct OwnWrites {
    pub stanzas: Vec<Element>,
    pub backlog_due: bool,
}

/// What a listener says about the event.
#[derive(Debug)]
pub enum Flow {
    /// Not mine, or done with it: the next listener (and then the core) goes on.
    Continue,
    /// Dealt with: nothing more happens to it.
    Handled,
    /// Stopped: the sender (a local session) gets this error.
    Refuse(StanzaError),
}

/// An event and what it carries. Stanzas are lent, mutable where a listener may change
/// what is delivered.
pub enum Event<'a> {
    MessageFromClient {
        from: &'a FullJid,
        stanza: &'a mut Stanza,
    },
    MessageIn {
        from: Option<&'a FullJid>,
        /// The recipient: a stanza shared by many (`Router::route_shared_from_service`)
        /// has no `to` of its own.
        to: &'a Jid,
        stanza: &'a Stanza,
    },
    MessageAccepted {
        from: Option<&'a FullJid>,
        /// The recipient, bare or full.
        to: &'a Jid,
        stanza: &'a mut Stanza,
    },
    MessageDelivered {
        to: &'a Jid,
        /// The resources that took it.
        resources: &'a [FullJid],
        stanza: &'a Stanza,
    },
    MessageOffline {
        to: &'a BareJid,
        stanza: &'a Stanza,
    },
    IqIn {
        from: &'a FullJid,
        /// A full JID (delivered to that resource) or a bare one (answered by the server on
        /// the account's behalf, RFC 6120 §10.3.3).
        to: &'a Jid,
        stanza: &'a Stanza,
    },
    PresenceOut {
        from: &'a FullJid,
        stanza: &'a mut Stanza,
        /// What the session writes for itself because of it (the presence module's echo,
        /// probe answers, ...).
        own: &'a mut OwnWrites,
    },
    PresenceIn {
        /// The recipient: a presence shared by many (`Router::route_shared_from_service`)
        /// has no `to` of its own.
        to: &'a Jid,
        presence: &'a Element,
    },
    InitialPresence {
        jid: &'a FullJid,
    },
    SessionBound {
        jid: &'a FullJid,
        state: &'a SessionState,
    },
    SessionEnded {
        jid: &'a FullJid,
        /// The ending session's module state (the JID may already be another session's).
        state: &'a SessionState,
        /// The account's last session: no resource of it is left.
        last: bool,
        /// A newer session took this full JID over (RFC 6120 §7.7.2.2): what the JID shows
        /// others is that session's now.
        replaced: bool,
    },
    StanzaToClient {
        jid: &'a FullJid,
        state: &'a SessionState,
        /// The stanza about to be written: a listener may look at it
        /// ([`Outgoing::element`]; a shared one has no `to`, `jid` is its `to`), change it
        /// ([`Outgoing::to_mut`]) or take it ([`Outgoing::into_element`]; to hold it back, or
        /// to drop it). Changing or taking a shared stanza gives this session its own copy;
        /// while no listener does, the session writes the shared bytes.
        stanza: &'a mut Option<Outgoing>,
        /// Written before the stanza, in order (e.g. stanzas a listener held and lets go).
        out: &'a mut Vec<Element>,
    },
    ClientFeatures {
        jid: &'a FullJid,
        /// What the client supports now (`None`: unknown, or it said nothing).
        features: Option<&'a std::sync::Arc<ClientFeatures>>,
        /// What it was known to support before.
        previous: Option<&'a std::sync::Arc<ClientFeatures>>,
    },
    RosterChanged {
        owner: &'a BareJid,
        item: &'a Element,
        /// The subscription the entry had before (`none` for a new one): a listener can
        /// tell a subscription that starts from an item that only changed.
        previous: jabberwock_storage::Subscription,
    },
    AccountDeleted {
        account: &'a BareJid,
    },
    AccountDataStored {
        owner: &'a BareJid,
        /// The vCard, or one element of private storage.
        element: &'a Element,
    },
}

/// The kinds of [`Event`], for registering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EventKind {
    MessageFromClient,
    MessageIn,
    MessageAccepted,
    MessageDelivered,
    MessageOffline,
    IqIn,
    PresenceOut,
    PresenceIn,
    InitialPresence,
    SessionBound,
    SessionEnded,
    StanzaToClient,
    ClientFeatures,
    RosterChanged,
    AccountDeleted,
    AccountDataStored,
}

impl EventKind {
    pub const COUNT: usize = EventKind::AccountDataStored as usize + 1;
}

impl Event<'_> {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::MessageFromClient { .. } => EventKind::MessageFromClient,
            Event::MessageIn { .. } => EventKind::MessageIn,
            Event::MessageAccepted { .. } => EventKind::MessageAccepted,
            Event::MessageDelivered { .. } => EventKind::MessageDelivered,
            Event::MessageOffline { .. } => EventKind::MessageOffline,
            Event::IqIn { .. } => EventKind::IqIn,
            Event::PresenceOut { .. } => EventKind::PresenceOut,
            Event::PresenceIn { .. } => EventKind::PresenceIn,
            Event::InitialPresence { .. } => EventKind::InitialPresence,
            Event::SessionBound { .. } => EventKind::SessionBound,
            Event::SessionEnded { .. } => EventKind::SessionEnded,
            Event::StanzaToClient { .. } => EventKind::StanzaToClient,
            Event::ClientFeatures { .. } => EventKind::ClientFeatures,
            Event::RosterChanged { .. } => EventKind::RosterChanged,
            Event::AccountDeleted { .. } => EventKind::AccountDeleted,
            Event::AccountDataStored { .. } => EventKind::AccountDataStored,
        }
    }

    /// The host whose modules hear the event: the domain of the account it concerns.
    pub fn host(&self) -> &str {
        match self {
            Event::MessageFromClient { from, .. } | Event::PresenceOut { from, .. } => {
                from.domain().as_str()
            }
            Event::MessageIn { to, .. }
            | Event::MessageAccepted { to, .. }
            | Event::IqIn { to, .. }
            | Event::MessageDelivered { to, .. }
            | Event::PresenceIn { to, .. } => to.domain().as_str(),
            Event::MessageOffline { to, .. }
            | Event::RosterChanged { owner: to, .. }
            | Event::AccountDeleted { account: to }
            | Event::AccountDataStored { owner: to, .. } => to.domain().as_str(),
            Event::InitialPresence { jid }
            | Event::SessionBound { jid, .. }
            | Event::SessionEnded { jid, .. }
            | Event::StanzaToClient { jid, .. }
            | Event::ClientFeatures { jid, .. } => jid.domain().as_str(),
        }
    }
}

#[async_trait]
pub trait Hook: Send + Sync {
    /// The synchronous part: a listener that can decide without waiting (most can, most of
    /// the time: "nothing to do here") answers here, and no future is made for it. `None`
    /// goes on to [`Hook::on`].
    fn quick(&self, _server: &Server, _event: &mut Event<'_>) -> Option<Flow> {
        None
    }

    /// Whether the listener has anything to do at all right now (carbons: some session
    /// enabled them). While none of an event's listeners is active the core skips the
    /// event, and what it would prepare for it, entirely.
    fn active(&self) -> bool {
        true
    }

    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow;
}
