//! Rosters and presence subscriptions (RFC 6121 §2–§3): the stored state of each
//! user/contact pair, its transitions ([`subscription`]), and roster pushes.
//!
//! Both server roles live here: [`outbound`] is the user's server handling what the user
//! sends, [`inbound`] is the contact's server handling what arrives for the contact. Between
//! two of our own accounts one calls the other directly; a remote domain is reached through
//! federation at [`deliver_to_contact_server`], and what a remote server sends comes to
//! [`inbound`] and [`answer_probe`] through the router.

pub mod item;
pub mod subscription;

use jabberwock_protocol::jid::{BareJid, FullJid, Jid};
use jabberwock_protocol::ns;
use jabberwock_protocol::xml::Element;
use jabberwock_storage::{RosterEntry, RosterUpdate, RosterUpdated, StoreError, Subscription};

use crate::accounts::account_of;
use crate::modules::{Event, SessionFlag};
use crate::server::Server;
use subscription::{Kind, State};

fn state_of(entry: &RosterEntry) -> State {
    State {
        subscription: entry.subscription,
        pending_out: entry.pending_out,
        pending_in: entry.pending_in,
        approved: entry.approved,
    }
}

fn apply(entry: &mut RosterEntry, state: State) {
    entry.subscription = state.subscription;
    entry.pending_out = state.pending_out;
    entry.pending_in = state.pending_in;
    entry.approved = state.approved;
    if !state.pending_in {
        entry.pending_in_stanza = None;
    }
}

/// The stored entry for `contact` (as the store's read-modify-write shows it), or a fresh one.
pub fn entry_or_fresh(stored: Option<RosterEntry>, contact: &BareJid) -> RosterEntry {
    stored.unwrap_or_else(|| RosterEntry {
        contact: contact.to_string(),
        ..RosterEntry::default()
    })
}

/// Set (in its `SessionState`) on a resource that asked for the roster: it gets roster
/// pushes (RFC 6121 §2.1.6).
pub static INTERESTED: SessionFlag = SessionFlag::new();

/// Sends a roster push (RFC 6121 §2.1.6) with `item` to every interested resource of `owner`;
/// `previous` is the subscription the entry had before this change.
pub async fn push(
    server: &Server,
    owner: &BareJid,
    item: Element,
    version: u64,
    previous: Subscription,
) {
    let ver = version.to_string();
    server
        .router
        .table
        .send_to_each(owner.as_str(), &|full, state| {
            state.is_set(&INTERESTED).then(|| {
                Element::new("iq", ns::CLIENT)
                    .with_attr("type", "set")
                    .with_attr("id", format!("push-{ver}"))
                    .with_attr("to", full)
                    .with_child(
                        Element::new("query", ns::ROSTER)
                            .with_attr("ver", ver.as_str())
                            .with_child(item.clone()),
                    )
            })
        });
    let mut event = Event::RosterChanged {
        owner,
        item: &item,
        previous,
    };
    server.modules.fire(server, &mut event).await;
}

/// A subscription presence from `from` to `to` (both bare, RFC 6121 §3.1.2 stamps bare JIDs).
pub fn subscription_presence(kind: Kind, from: &BareJid, to: &BareJid) -> Element {
    Element::new("presence", ns::CLIENT)
        .with_attr("type", kind.as_str())
        .with_attr("from", from.as_str())
        .with_attr("to", to.as_str())
}

/// The user's server: `user` sent `kind` to `contact` (RFC 6121 Appendix A.2).
/// `stanza` is what the client sent (kept for its status text and extensions).
pub async fn outbound(
    server: &Server,
    user: &FullJid,
    contact: &BareJid,
    kind: Kind,
    mut stanza: Element,
) -> Result<(), StoreError> {
    let owner = user.to_bare();
    if &owner == contact {
        // A subscription to oneself means nothing: self-presence is always shared.
        return Ok(());
    }
    // The read, the transition and the write are one storage transaction: a stanza for the
    // same account handled at once (here or by another process on the same database) waits
    // for it instead of overwriting it. It ends before routing, so the contact's side never
    // waits inside it.
    let mut before = State::default();
    let mut out = subscription::outbound(before, kind);
    let mut written = None;
    let updated = server
        .store
        .update_roster_entry(&account_of(&owner), contact.as_str(), &mut |stored| {
            let mut entry = entry_or_fresh(stored, contact);
            before = state_of(&entry);
            out = subscription::outbound(before, kind);
            if out.state == before {
                return RosterUpdate::Keep;
            }
            apply(&mut entry, out.state);
            if out.push {
                entry.in_roster = true;
            }
            written = Some(entry.clone());
            RosterUpdate::Put(entry)
        })
        .await?;
    if let (RosterUpdated::Stored(version), Some(entry)) = (updated, &written) {
        if out.push {
            push(
                server,
                &owner,
                item::to_element(entry),
                version,
                before.subscription,
            )
            .await;
        }
    }
    if out.route {
        use jabberwock_storage::Subscription::{Both, From};
        // §3.2.2: a contact losing its subscription sees us go unavailable first.
        if kind == Kind::Unsubscribed && matches!(before.subscription, From | Both) {
            withdraw_presence(server, &owner, contact).await;
        }
        // §3.1.2: stamped with the user's bare JID, addressed to the contact's bare JID.
        stanza.set_attr("from", owner.as_str());
        stanza.set_attr("to", contact.as_str());
        let domain = contact.domain().as_str();
        if !server.serves(domain)
            && !server.modules.is_service(domain)
            && server.modules.remote().is_none()
        {
            // No federation (RFC 6120 §10.4.3): the request can't leave this server, and
            // the user's client hears so instead of waiting (RFC 6120 §8.3.3.12).
            if let Ok(sent) = jabberwock_protocol::stanza::Stanza::from_element(stanza) {
                let mut error = sent.error_reply(&jabberwock_protocol::stanza::StanzaError::new(
                    jabberwock_protocol::stanza::Condition::RemoteServerNotFound,
                ));
                error.set_attr("to", user.as_str());
                server.router.reply(user, error);
            }
            return Ok(());
        }
        deliver_to_contact_server(server, &owner, contact, kind, stanza).await?;
        // §3.1.5: approving shares the approver's current presence with the new subscriber.
        if kind == Kind::Subscribed && matches!(out.state.subscription, From | Both) {
            share_presence(server, &owner, contact).await;
        }
    }
    Ok(())
}

/// Where a routed subscription stanza goes: our own account's inbound processing, a
/// service's module, or a remote server (federation).
async fn deliver_to_contact_server(
    server: &Server,
    from: &BareJid,
    to: &BareJid,
    kind: Kind,
    stanza: Element,
) -> Result<(), StoreError> {
    let domain = to.domain().as_str();
    if server.serves(domain) {
        Box::pin(inbound(server, from, to, kind, stanza)).await
    } else if server.modules.is_service(domain) {
        // A service's domain (a gateway, a room) decides about subscriptions itself.
        let to = jabberwock_protocol::jid::Jid::from(to.clone());
        server.router.deliver_presence(server, &to, stanza).await;
        Ok(())
    } else if let Some(remote) = server.modules.remote() {
        remote.send(server, stanza);
        Ok(())
    } else {
        // No federation: the request can't leave this server.
        tracing::debug!(%to, "subscription stanza for a remote domain dropped");
        Ok(())
    }
}

/// The contact's server: `kind` arrived from `user` for our account `contact`
/// (RFC 6121 Appendix A.3).
pub async fn inbound(
    server: &Server,
    user: &BareJid,
    contact: &BareJid,
    kind: Kind,
    stanza: Element,
) -> Result<(), StoreError> {
    if !server.store.account_exists(&account_of(contact)).await? {
        // §3.1.3: a request for an account that doesn't exist is answered unsubscribed.
        if kind == Kind::Subscribe {
            let reply = subscription_presence(Kind::Unsubscribed, contact, user);
            Box::pin(deliver_to_contact_server(
                server,
                contact,
                user,
                Kind::Unsubscribed,
                reply,
            ))
            .await?;
        }
        return Ok(());
    }
    // Serialised before the transaction, which must not wait for anything.
    let serialized = (kind == Kind::Subscribe).then(|| stanza.to_xml_string(ns::CLIENT));
    // One storage transaction from the read to the write, as in `outbound`.
    let mut before = State::default();
    let mut result = subscription::inbound(before, kind);
    let mut written = None;
    let updated = server
        .store
        .update_roster_entry(&account_of(contact), user.as_str(), &mut |stored| {
            let mut entry = entry_or_fresh(stored, user);
            before = state_of(&entry);
            result = subscription::inbound(before, kind);
            if result.state == before {
                return RosterUpdate::Keep;
            }
            apply(&mut entry, result.state);
            if result.deliver {
                if let Some(serialized) = &serialized {
                    // Kept for the next login if nobody is online to answer it now (§3.1.3).
                    entry.pending_in_stanza = Some(serialized.clone());
                }
            }
            if result.push {
                entry.in_roster = true;
            }
            written = Some(entry.clone());
            RosterUpdate::Put(entry)
        })
        .await?;
    if let (RosterUpdated::Stored(version), Some(entry)) = (updated, &written) {
        if result.push {
            push(
                server,
                contact,
                item::to_element(entry),
                version,
                before.subscription,
            )
            .await;
        }
    }
    if result.deliver {
        server
            .router
            .table
            .send_to_available(contact.as_str(), &stanza, true, None);
    }
    // §3.3.3: a user who unsubscribed no longer sees the contact, so the contact's
    // resources go unavailable for it.
    let shares = |s: State| matches!(s.subscription, Subscription::From | Subscription::Both);
    if kind == Kind::Unsubscribe && shares(before) && !shares(result.state) {
        withdraw_presence(server, contact, user).await;
    }
    if let Some(reply) = result.auto_reply {
        let element = subscription_presence(reply, contact, user);
        Box::pin(deliver_to_contact_server(
            server, contact, user, reply, element,
        ))
        .await?;
        if reply == Kind::Subscribed {
            share_presence(server, contact, user).await;
        }
    }
    Ok(())
}

/// Sends `owner`'s current presence (each available resource) to `to`.
pub async fn share_presence(server: &Server, owner: &BareJid, to: &BareJid) {
    for (full, presence) in server.router.table.available_presences(owner.as_str()) {
        let mut presence = (*presence).clone();
        presence.set_attr("from", full.as_str());
        presence.set_attr("to", to.as_str());
        server
            .router
            .deliver_presence(server, &Jid::from(to.clone()), presence)
            .await;
    }
}

/// RFC 6121 §4.3.2: the contact's server answers a probe from another server's `prober`
/// with `contact`'s available presence, if the prober is subscribed to it (nothing
/// otherwise, which says as little as §4.3.2 allows).
pub async fn answer_probe(
    server: &Server,
    prober: &Jid,
    contact: &BareJid,
) -> Result<(), StoreError> {
    let prober_bare = prober.to_bare();
    let entry = server
        .store
        .roster_entry(&account_of(contact), prober_bare.as_str())
        .await?;
    if entry.is_some_and(|e| matches!(e.subscription, Subscription::From | Subscription::Both)) {
        for (full, presence) in server.router.table.available_presences(contact.as_str()) {
            let mut presence = (*presence).clone();
            presence.set_attr("from", full.as_str());
            presence.set_attr("to", prober.as_str());
            server
                .router
                .deliver_presence(server, prober, presence)
                .await;
        }
    }
    Ok(())
}

/// Tells `to` that each of `owner`'s available resources is now unavailable to it.
async fn withdraw_presence(server: &Server, owner: &BareJid, to: &BareJid) {
    for (full, _) in server.router.table.available_presences(owner.as_str()) {
        let presence = Element::new("presence", ns::CLIENT)
            .with_attr("type", "unavailable")
            .with_attr("from", full.as_str())
            .with_attr("to", to.as_str());
        server
            .router
            .deliver_presence(server, &Jid::from(to.clone()), presence)
            .await;
    }
}

/// RFC 6121 §2.5.2: removing an item cancels the subscriptions both ways, then the item goes.
/// Returns false when there was no such item.
pub async fn remove_item(
    server: &Server,
    owner: &BareJid,
    contact: &BareJid,
) -> Result<bool, StoreError> {
    let Some(entry) = server
        .store
        .roster_entry(&account_of(owner), contact.as_str())
        .await?
    else {
        return Ok(false);
    };
    cancel_both_ways(server, owner, contact, &entry).await?;
    if let Some(version) = server
        .store
        .remove_roster_entry(&account_of(owner), contact.as_str())
        .await?
    {
        push(
            server,
            owner,
            item::removed_element(contact.as_str()),
            version,
            entry.subscription,
        )
        .await;
    }
    Ok(entry.in_roster)
}

/// Sends what ends every subscription tie between `owner` and `contact`.
async fn cancel_both_ways(
    server: &Server,
    owner: &BareJid,
    contact: &BareJid,
    entry: &RosterEntry,
) -> Result<(), StoreError> {
    use jabberwock_storage::Subscription::{Both, From, To};
    let mut kinds = Vec::new();
    if matches!(entry.subscription, To | Both) || entry.pending_out {
        kinds.push(Kind::Unsubscribe);
    }
    if matches!(entry.subscription, From | Both) || entry.pending_in {
        kinds.push(Kind::Unsubscribed);
    }
    for kind in kinds {
        if kind == Kind::Unsubscribed && matches!(entry.subscription, From | Both) {
            withdraw_presence(server, owner, contact).await;
        }
        let stanza = subscription_presence(kind, owner, contact);
        deliver_to_contact_server(server, owner, contact, kind, stanza).await?;
    }
    Ok(())
}

/// Account deletion: every contact learns the subscriptions are gone (their rosters updated
/// and pushed), then the account and everything stored for it is removed.
pub async fn remove_account(server: &Server, owner: &BareJid) -> Result<bool, StoreError> {
    let account = account_of(owner);
    let (_, entries) = server.store.roster(&account).await?;
    for entry in &entries {
        if let Ok(contact) = BareJid::new(&entry.contact) {
            cancel_both_ways(server, owner, &contact, entry).await?;
        }
    }
    let removed = server.store.remove_account(&account).await?;
    if removed {
        let mut event = Event::AccountDeleted { account: owner };
        server.modules.fire(server, &mut event).await;
    }
    Ok(removed)
}
