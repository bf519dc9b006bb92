//! Presence (RFC 6121 §4): broadcast to subscribers, probes, directed presence, and what a
//! session's end means for the others. Subscription requests are handed to [`crate::roster`].
//!
//! Privacy rule: a user's presence goes only to contacts subscribed to it (`from`/`both`),
//! to the user's own resources, and to entities the user sent directed presence to.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jabberwock_protocol::jid::{BareJid, FullJid, Jid};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, Stanza, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::{AccountId, RosterEntry, StoreError, Subscription};

use super::{
    Event, EventKind, Flow, Hook, Module, NoConfig, OwnWrites, Registrar, SessionState, Xep,
};
use crate::accounts::account_of;
use crate::roster::{self, subscription::Kind};
use crate::router::{destination, Destination};
use crate::server::Server;

/// Entities (bare or full JIDs) a session sent available directed presence to (RFC 6121
/// §4.6): they get unavailable when the session goes away. Kept in the session's
/// `SessionState`.
#[derive(Default)]
struct Directed(Mutex<HashSet<String>>);

/// What one presence stanza's handling works on.
///
/// **Design: a session's own login state does not go through its inbox.** What a session's
/// presence earns the session itself (its presence echo, its other resources' presence,
/// probe answers, waiting subscription requests, the offline backlog) is produced by the
/// session's own task, the only one that drains its inbox; at a login with hundreds of
/// contacts it is far more than the inbox holds. So it is collected in the session's
/// [`OwnWrites`] (stanzas, and `backlog_due`), and the session writes it to its connection
/// itself once the stanza that caused it is handled, before reading more input.
struct PresenceState<'a> {
    /// The session's module state; its `Directed` is made only when it first sends
    /// directed presence (most sessions never do, and each keeps little).
    session: Option<Arc<SessionState>>,
    own: &'a mut OwnWrites,
}

impl PresenceState<'_> {
    fn with_directed<T>(
        &self,
        create: bool,
        f: impl FnOnce(&mut HashSet<String>) -> T,
    ) -> Option<T> {
        let session = self.session.as_ref()?;
        let directed = if create {
            session.get_or_insert_with(Directed::default)
        } else {
            session.get::<Directed>()?
        };
        let mut set = directed.0.lock().unwrap_or_else(|p| p.into_inner());
        Some(f(&mut set))
    }
}

fn session_of(server: &Server, jid: &FullJid) -> Option<Arc<SessionState>> {
    server.router.table.session_state(jid)
}

/// A presence stanza from the client of session `from` (its `from` already stamped).
async fn outbound(server: &Server, state: &mut PresenceState<'_>, from: &FullJid, stanza: Stanza) {
    let result = match stanza.to() {
        None => match stanza.type_attr() {
            None => broadcast_available(server, state, from, stanza.into_element()).await,
            Some("unavailable") => {
                broadcast_unavailable(server, state, from, stanza.into_element()).await
            }
            // Subscription requests and probes need an addressee.
            Some(_) => {
                server
                    .router
                    .bounce(from, &stanza, StanzaError::new(Condition::BadRequest));
                Ok(())
            }
        },
        Some(_) => directed(server, state, from, stanza).await,
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "presence processing failed on storage");
    }
}

fn priority_of(presence: &Element) -> i8 {
    presence
        .get_child("priority", ns::CLIENT)
        .and_then(|p| p.text().trim().parse::<i8>().ok())
        .unwrap_or(0)
}

/// The user's roster entries (one read serves a whole broadcast).
async fn roster_of(server: &Server, user: &BareJid) -> Result<Vec<RosterEntry>, StoreError> {
    Ok(server.store.roster(&account_of(user)).await?.1)
}

/// Contacts whose subscription state `pick` selects.
fn contacts_where(entries: &[RosterEntry], pick: impl Fn(Subscription) -> bool) -> Vec<BareJid> {
    entries
        .iter()
        .filter(|e| pick(e.subscription))
        .filter_map(|e| BareJid::new(&e.contact).ok())
        .collect()
}

/// Contacts subscribed to the user's presence (RFC 6121 §4.2.2: `from` or `both`).
fn subscribers(entries: &[RosterEntry]) -> Vec<BareJid> {
    contacts_where(entries, |s| {
        matches!(s, Subscription::From | Subscription::Both)
    })
}

/// Sends a copy of `presence` (addressed to each in turn) to `targets` and to all of the
/// user's own available resources (RFC 6121 §4.2.2, §4.4.2); the copy for `from` itself,
/// when it is available, goes to `to_self`.
async fn fan_out(
    server: &Server,
    from: &FullJid,
    presence: &Element,
    targets: &[Jid],
    to_self: &mut Vec<Element>,
) {
    for target in targets {
        let mut copy = presence.clone();
        copy.set_attr("to", target.as_str());
        server.router.deliver_presence(server, target, copy).await;
    }
    let user = from.to_bare();
    let mut own = presence.clone();
    own.set_attr("to", user.as_str());
    server.router.table.send_to_other_available(from, &own);
    if server.router.table.is_available(from) {
        to_self.push(own);
    }
}

/// RFC 6121 §4.2 (initial) and §4.4 (subsequent) available presence.
async fn broadcast_available(
    server: &Server,
    state: &mut PresenceState<'_>,
    from: &FullJid,
    presence: Element,
) -> Result<(), StoreError> {
    let user = from.to_bare();
    let priority = priority_of(&presence);
    let before = server
        .router
        .table
        .set_presence(from, Some((priority, presence.clone())));
    // The roster, and whether offline messages wait, in one read: the resource is already
    // available above, so a message that arrives from now on goes to it, not to storage.
    let account = account_of(&user);
    let read = server.store.presence_roster(&account);
    let (entries, offline_waiting) =
        crate::metrics::storage(crate::metrics::StorageOp::PresenceRoster, read).await?;
    let targets: Vec<Jid> = subscribers(&entries).into_iter().map(Jid::from).collect();
    fan_out(server, from, &presence, &targets, &mut state.own.stanzas).await;
    let Some(previous_priority) = before else {
        initial_presence(
            server,
            state,
            from,
            &user,
            priority,
            &entries,
            offline_waiting,
        )
        .await?;
        let mut event = Event::InitialPresence { jid: from };
        server.modules.fire(server, &mut event).await;
        return Ok(());
    };
    // XEP-0160 §4: a resource that turns non-negative is now one offline messages can reach.
    if previous_priority < 0 && priority >= 0 && offline_waiting {
        state.own.backlog_due = true;
    }
    Ok(())
}

/// RFC 6121 §4.2.2: what a resource that just became available is entitled to see.
async fn initial_presence(
    server: &Server,
    state: &mut PresenceState<'_>,
    from: &FullJid,
    user: &BareJid,
    priority: i8,
    entries: &[RosterEntry],
    offline_waiting: bool,
) -> Result<(), StoreError> {
    // §4.2.2: the user's other available resources.
    for (full, other) in server.router.table.available_presences(user.as_str()) {
        if full != from.as_str() {
            let mut copy = (*other).clone();
            copy.set_attr("to", from.as_str());
            state.own.stanzas.push(copy);
        }
    }
    // §4.3: probes to every contact the user is subscribed to. For local contacts one read
    // tells which of them share their presence with the user: the answer to every probe at
    // once. Contacts on other servers get a probe from the user's bare JID (§4.3.1), which
    // their server answers to all of the user's available resources.
    let (contacts, remote): (Vec<BareJid>, Vec<BareJid>) = contacts_where(entries, |s| {
        matches!(s, Subscription::To | Subscription::Both)
    })
    .into_iter()
    .partition(|c| {
        let domain = c.domain().as_str();
        server.serves(domain) || server.modules.is_service(domain)
    });
    if server.modules.remote().is_some() {
        for contact in remote {
            let probe = Element::new("presence", ns::CLIENT)
                .with_attr("type", "probe")
                .with_attr("from", user.as_str())
                .with_attr("to", contact.as_str());
            server
                .router
                .deliver_presence(server, &Jid::from(contact), probe)
                .await;
        }
    }
    if !contacts.is_empty() {
        let sharing: HashSet<AccountId> = server
            .store
            .presence_shared_with(user.as_str())
            .await?
            .into_iter()
            .collect();
        for contact in contacts.iter().filter(|c| sharing.contains(&account_of(c))) {
            send_presences(server, from, contact, &mut state.own.stanzas).await;
        }
    }
    // §3.1.3: subscription requests that arrived while the user was away.
    for entry in entries.iter().filter(|e| e.pending_in) {
        let request = entry
            .pending_in_stanza
            .as_deref()
            .and_then(|s| jabberwock_protocol::xml::parse_stanza(s.as_bytes()).ok());
        let request = match (request, BareJid::new(&entry.contact)) {
            (Some(r), _) => r,
            (None, Ok(contact)) => roster::subscription_presence(Kind::Subscribe, &contact, user),
            (None, Err(_)) => continue,
        };
        state.own.stanzas.push(request);
    }
    // XEP-0160 §4: offline messages go to a resource with non-negative priority.
    if priority >= 0 && offline_waiting {
        state.own.backlog_due = true;
    }
    Ok(())
}

/// RFC 6121 §4.5: unavailable presence to subscribers, own resources and directed targets.
async fn broadcast_unavailable(
    server: &Server,
    state: &mut PresenceState<'_>,
    from: &FullJid,
    presence: Element,
) -> Result<(), StoreError> {
    let user = from.to_bare();
    let was_available = server.router.table.set_presence(from, None).is_some();
    let mut targets: Vec<Jid> = if was_available {
        subscribers(&roster_of(server, &user).await?)
            .into_iter()
            .map(Jid::from)
            .collect()
    } else {
        Vec::new()
    };
    // §4.6.3: directed presence went to bare and full JIDs alike; each gets its unavailable.
    let directed: Vec<String> = state
        .with_directed(false, |set| set.drain().collect())
        .unwrap_or_default();
    for jid in directed {
        if let Ok(jid) = Jid::new(&jid) {
            if !targets.contains(&jid) {
                targets.push(jid);
            }
        }
    }
    // Unavailable: this session is no longer among the user's available resources, so no
    // copy for itself.
    fan_out(server, from, &presence, &targets, &mut Vec::new()).await;
    Ok(())
}

/// The session is ending without having said goodbye (RFC 6121 §4.5.4): the server says it.
async fn session_ended(server: &Server, from: &FullJid) {
    let mut own = OwnWrites::default();
    let mut state = PresenceState {
        session: session_of(server, from),
        own: &mut own,
    };
    if !server.router.table.is_available(from)
        && state
            .with_directed(false, |set| set.is_empty())
            .unwrap_or(true)
    {
        return;
    }
    let presence = Element::new("presence", ns::CLIENT)
        .with_attr("type", "unavailable")
        .with_attr("from", from.as_str());
    if let Err(e) = broadcast_unavailable(server, &mut state, from, presence).await {
        tracing::error!(error = %e, "unavailable broadcast failed on storage");
    }
}

/// Presence with a `to`: subscription management, a probe, or directed presence.
async fn directed(
    server: &Server,
    state: &mut PresenceState<'_>,
    from: &FullJid,
    stanza: Stanza,
) -> Result<(), StoreError> {
    let (to, local) = match destination(server, stanza.to(), from) {
        Ok(Destination::Local(to)) => (to, true),
        // A service answers its own probes and tracks its own directed presence (XEP-0045
        // §7.2: joining a room); unavailable still goes to it when the session ends.
        Ok(Destination::Service(to)) => (to, false),
        Ok(Destination::Host(_)) => return Ok(()),
        // Federation carries it as it is (the remote server answers probes and keeps its
        // own directed presence state); the session still says unavailable to it at its end.
        Ok(Destination::Remote) if server.modules.remote().is_some() => {
            match stanza.to().map(Jid::new) {
                Some(Ok(to)) => (to, false),
                _ => return Ok(()),
            }
        }
        Ok(Destination::Remote) => return to_remote(server, from, stanza).await,
        Err(err) => {
            server.router.bounce(from, &stanza, err);
            return Ok(());
        }
    };
    let type_attr = stanza.type_attr().map(str::to_owned);
    if let Some(kind) = type_attr.as_deref().and_then(Kind::from_presence_type) {
        return roster::outbound(server, from, &to.to_bare(), kind, stanza.into_element()).await;
    }
    match type_attr.as_deref() {
        Some("probe") if local => probe(server, from, &to.to_bare(), &mut state.own.stanzas).await,
        Some("unavailable") => {
            state.with_directed(false, |set| set.remove(to.as_str()));
            server
                .router
                .deliver_presence(server, &to, stanza.into_element())
                .await;
            Ok(())
        }
        _ => {
            if type_attr.is_none() {
                state.with_directed(true, |set| set.insert(to.to_string()));
            }
            server
                .router
                .deliver_presence(server, &to, stanza.into_element())
                .await;
            Ok(())
        }
    }
}

/// Presence for a domain we don't serve. No federation yet, so it can't leave this server
/// (RFC 6120 §10.4.3): subscription stanzas still change and push the user's roster item
/// (RFC 6121 §3.1.2), then [`roster`] bounces them; directed available presence (e.g.
/// joining a room on a service elsewhere) is bounced here, with remote-server-not-found (RFC
/// 6120 §8.3.3.12), so the client does not wait forever. Unavailable and probes expect no
/// answer (RFC 6121 §4.3, §4.6.3) and errors are never answered (RFC 6120 §8.3.1): they
/// are let go without one, as Prosody does for an unreachable domain's unavailable.
async fn to_remote(server: &Server, from: &FullJid, stanza: Stanza) -> Result<(), StoreError> {
    let kind = stanza.type_attr().and_then(Kind::from_presence_type);
    let contact = stanza
        .to()
        .and_then(|to| Jid::new(to).ok())
        .map(|to| to.to_bare());
    match (kind, contact) {
        (Some(kind), Some(contact)) => {
            roster::outbound(server, from, &contact, kind, stanza.into_element()).await
        }
        _ if stanza.type_attr().is_none() => {
            server.router.bounce(
                from,
                &stanza,
                StanzaError::new(Condition::RemoteServerNotFound),
            );
            Ok(())
        }
        _ => {
            tracing::debug!("presence for a remote domain without federation let go");
            Ok(())
        }
    }
}

/// RFC 6121 §4.3.2: the contact's server answers a probe with the contact's presence, only
/// if the prober is subscribed to it. The prober is always the probing session itself, so
/// the answers go to `to_self`.
async fn probe(
    server: &Server,
    prober: &FullJid,
    contact: &BareJid,
    to_self: &mut Vec<Element>,
) -> Result<(), StoreError> {
    let entry = server
        .store
        .roster_entry(&account_of(contact), prober.to_bare().as_str())
        .await?;
    if entry.is_some_and(|e| matches!(e.subscription, Subscription::From | Subscription::Both)) {
        send_presences(server, prober, contact, to_self).await;
    }
    Ok(())
}

/// The answer to a probe the contact accepts: its available resources' presence. Each copy
/// is presence for the prober, so modules see it as such (a blocklist stops it there).
async fn send_presences(
    server: &Server,
    prober: &FullJid,
    contact: &BareJid,
    to_self: &mut Vec<Element>,
) {
    let to = Jid::from(prober.clone());
    for (full, presence) in server.router.table.available_presences(contact.as_str()) {
        let mut copy = (*presence).clone();
        copy.set_attr("from", full.as_str());
        copy.set_attr("to", prober.as_str());
        let mut event = Event::PresenceIn {
            to: &to,
            presence: &copy,
        };
        if matches!(
            server.modules.fire(server, &mut event).await,
            Flow::Continue
        ) {
            to_self.push(copy);
        }
    }
}

pub struct Presence;

/// Handles every presence a client sends, after the other modules' listeners (lowest
/// priority), and says goodbye for a session that ends without doing so (first).
struct Handle;

#[async_trait]
impl Hook for Handle {
    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        match event {
            Event::PresenceOut { from, stanza, own } => {
                let mut state = PresenceState {
                    session: session_of(server, from),
                    own,
                };
                outbound(server, &mut state, from, stanza.clone()).await;
                Flow::Handled
            }
            Event::SessionEnded {
                jid,
                replaced: false,
                ..
            } => {
                session_ended(server, jid).await;
                Flow::Continue
            }
            _ => Flow::Continue,
        }
    }
}

impl Module for Presence {
    const NAME: &'static str = "presence";
    /// RFC 6121 §4 itself; no XEP.
    const XEPS: &'static [Xep] = &[];
    type Config = NoConfig;

    fn register(_config: NoConfig, registry: &mut Registrar<'_>) {
        let handle = Arc::new(Handle);
        registry.hook(EventKind::PresenceOut, i32::MIN, handle.clone());
        registry.hook(EventKind::SessionEnded, i32::MAX, handle);
    }
}
