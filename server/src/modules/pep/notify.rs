//! Who hears of a node and how (XEP-0163 §4): event notifications for what the owner does,
//! and the last published items a resource is owed when its features become known (§4.3.3)
//! or a contact's subscription starts (§4.3.4).
//!
//! Recipients are resources, not bare JIDs: an available resource with non-negative
//! priority (§4.3.2) whose client's features say `NODE+notify` (§4.2, resolved by the caps
//! module), of the owner itself or of a contact subscribed to the owner's presence whom the
//! node's access model lets read it. A contact on another server is known by the presence
//! its server sends ours (the caps module keeps its available resources and resolves their
//! caps, [`RemoteResources`]): notifications and last items go to it through federation.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::delay::delay;
use jabberwock_protocol::jid::{BareJid, FullJid, Jid};
use jabberwock_protocol::ns;
use jabberwock_protocol::pubsub::{Affiliation, Event as PubsubEvent};
use jabberwock_protocol::stanza::Stanza;
use jabberwock_protocol::xml::Element;
use jabberwock_storage::{StoredItem, StoredNode, Subscription};

use crate::accounts::account_of;
use crate::modules::caps::{features_of, priority, ClientFeatures, RemoteResources};
use crate::modules::pubsub::config::{AccessModel, Asker, NodeConfig, SendLastPublished};
use crate::modules::pubsub::payload::stored_payload;
use crate::modules::{Event, Flow, Hook};
use crate::server::Server;

/// A fresh id for a notification.
fn message_id() -> String {
    format!("pep-{:016x}", rand::random::<u64>())
}

/// The notification `event` from `owner` for `to` (§4.3.1: from the owner's bare JID).
fn message(owner: &BareJid, to: &str, event: &PubsubEvent) -> Element {
    Element::new("message", ns::CLIENT)
        .with_attr("from", owner.as_str())
        .with_attr("to", to)
        .with_attr("type", "headline")
        .with_attr("id", message_id())
        .with_child(event.to_element())
}

/// §4.3.2: the available resources of `bare` with non-negative priority whose client wants
/// notifications of `node`.
fn interested(server: &Server, bare: &str, node: &str, out: &mut Vec<FullJid>) {
    let table = &server.router.table;
    if let Some(remote) = BareJid::new(bare).ok().filter(|b| !is_local(server, b)) {
        let wanting = remote_resources(server, &remote)
            .into_iter()
            .filter(|(_, features)| features.wants(node));
        out.extend(wanting.map(|(full, _)| full));
        return;
    }
    for (full, presence) in table.available_presences(bare) {
        if priority(&presence) < 0 {
            continue;
        }
        let Ok(full) = FullJid::new(&full) else {
            continue;
        };
        let wants = table
            .session_state(&full)
            .and_then(|state| features_of(&state))
            .is_some_and(|f| f.wants(node));
        if wants {
            out.push(full);
        }
    }
}

fn is_local(server: &Server, jid: &BareJid) -> bool {
    server.serves(jid.domain().as_str())
}

/// §4.3.2: the available resources of another server's account `bare` with non-negative
/// priority, whose features are known, as its server's presence told us.
fn remote_resources(server: &Server, bare: &BareJid) -> Vec<(FullJid, Arc<ClientFeatures>)> {
    let Some(remote) = server.modules.shared().get::<RemoteResources>() else {
        return Vec::new();
    };
    remote
        .of(bare)
        .into_iter()
        .filter(|(_, priority, _)| *priority >= 0)
        .map(|(full, _, features)| (full, features))
        .collect()
}

/// Delivers a notification to one resource, as a message from the owner is: the modules
/// see it first (§4.3.3: nothing reaches a contact the owner blocked, nor a local subscriber
/// who blocked the owner); a resource of ours gone meanwhile gets nothing (a headline is
/// never kept, RFC 6121 §8.5.2.2.1), and another server's resource gets it through
/// federation, which never waits.
pub(super) async fn deliver(server: &Server, to: &FullJid, element: Element) {
    let Ok(stanza) = Stanza::from_element(element) else {
        return;
    };
    let recipient = Jid::from(to.clone());
    let mut event = Event::MessageIn {
        from: None,
        to: &recipient,
        stanza: &stanza,
    };
    if !matches!(
        server.modules.fire(server, &mut event).await,
        Flow::Continue
    ) {
        return;
    }
    if !is_local(server, &to.to_bare()) {
        if let Some(federation) = server.modules.remote() {
            federation.send(server, stanza.into_element());
        }
        return;
    }
    if server
        .router
        .table
        .send_to_full(to, stanza.into_element())
        .is_err()
    {
        tracing::debug!(%to, "PEP notification for a resource that is gone");
    }
}

/// Sends `event` about a node of `owner` configured as `config` to every resource entitled
/// (see the module's doc). One roster read unless the node is the owner's alone.
pub(super) async fn broadcast(
    server: &Server,
    owner: &BareJid,
    config: &NodeConfig,
    event: &PubsubEvent,
) {
    let node = event.node();
    let mut to = Vec::new();
    interested(server, owner.as_str(), node, &mut to);
    if config.access_model != AccessModel::Whitelist {
        match server.store.roster(&account_of(owner)).await {
            Ok((_, entries)) => {
                for entry in entries {
                    if !matches!(entry.subscription, Subscription::From | Subscription::Both) {
                        continue;
                    }
                    let Ok(contact) = BareJid::new(&entry.contact) else {
                        continue;
                    };
                    let asker = Asker {
                        affiliation: Affiliation::None,
                        subscribed: true,
                        groups: if entry.in_roster {
                            entry.groups
                        } else {
                            Vec::new()
                        },
                        ..Asker::default()
                    };
                    if config.may_read(&asker).is_ok() {
                        interested(server, contact.as_str(), node, &mut to);
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "reading the roster for PEP notifications failed")
            }
        }
    }
    for full in to {
        let element = message(owner, full.as_str(), event);
        deliver(server, &full, element).await;
    }
}

/// The last published item of a node as a notification for `to` (§4.3.4: stamped with
/// when it was published, XEP-0203).
fn last_item(
    owner: &BareJid,
    to: &FullJid,
    node: &str,
    config: &NodeConfig,
    item: &StoredItem,
) -> Option<Element> {
    let payload = if config.deliver_payloads {
        Some(stored_payload(item)?)
    } else {
        None
    };
    let event = PubsubEvent::Items {
        node: node.to_owned(),
        items: vec![(item.id.clone(), payload)],
    };
    let mut element = message(owner, to.as_str(), &event);
    element.push_child(delay(owner.domain().as_str(), item.published_at));
    Some(element)
}

/// Whether a node's last item goes out now: when a subscription starts (`on_sub`, both
/// settings) or a resource becomes available (`on_sub_and_presence` only).
fn sends_last(config: &NodeConfig, at_presence: bool) -> bool {
    match config.send_last_published_item {
        SendLastPublished::Never => false,
        SendLastPublished::OnSub => !at_presence,
        SendLastPublished::OnSubAndPresence => true,
    }
}

/// The nodes `features` wants that `previous` did not: what a resource is newly owed.
fn newly_wanted<'a>(
    features: &'a ClientFeatures,
    previous: Option<&ClientFeatures>,
) -> Vec<&'a str> {
    features
        .notify_nodes()
        .iter()
        .map(String::as_str)
        .filter(|node| !previous.is_some_and(|p| p.wants(node)))
        .collect()
}

/// The last items of the nodes `wanted` of every service that shares its presence with the
/// resource `to`'s account, and of its own, as notifications (§4.3.3 item 2).
async fn owed_at_presence(
    server: &Server,
    to: &FullJid,
    wanted: &[&str],
) -> Result<Vec<Element>, jabberwock_storage::StoreError> {
    let contact = to.to_bare();
    let mut out = Vec::new();
    for (node, item) in server.store.pubsub_last_items(contact.as_str()).await? {
        let config = NodeConfig::from_stored(&node.config);
        if let Some(item) = item.filter(|_| wanted.contains(&node.node.as_str())) {
            if config.deliver_notifications && sends_last(&config, true) {
                out.extend(last_item(&contact, to, &node.node, &config, &item));
            }
        }
    }
    let shared = server
        .store
        .pep_last_items_shared_with(contact.as_str())
        .await?;
    // The groups the roster access model asks about, read once per owner that needs them.
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    for (service, node, item) in shared {
        if !wanted.contains(&node.node.as_str()) {
            continue;
        }
        let Ok(owner) = BareJid::new(&service) else {
            continue;
        };
        let config = NodeConfig::from_stored(&node.config);
        if !config.deliver_notifications || !sends_last(&config, true) {
            continue;
        }
        let mut asker = Asker {
            affiliation: Affiliation::None,
            subscribed: true,
            ..Asker::default()
        };
        if config.access_model == AccessModel::Roster {
            if !groups.contains_key(&service) {
                let entry = server
                    .store
                    .roster_entry(&account_of(&owner), contact.as_str())
                    .await?;
                let entry_groups = entry.filter(|e| e.in_roster).map(|e| e.groups);
                groups.insert(service.clone(), entry_groups.unwrap_or_default());
            }
            asker.groups = groups.get(&service).cloned().unwrap_or_default();
        }
        if config.may_read(&asker).is_ok() {
            out.extend(last_item(&owner, to, &node.node, &config, &item));
        }
    }
    Ok(out)
}

/// The last items another server's resource `to` is owed now that its features are known
/// (its available presence reached us): sent through federation. A resource with negative
/// priority gets none (§4.3.2).
async fn remote_owed_at_presence(server: &Server, to: &FullJid, wanted: &[&str]) {
    let available = remote_resources(server, &to.to_bare())
        .into_iter()
        .any(|(full, _)| &full == to);
    if !available {
        return;
    }
    match owed_at_presence(server, to, wanted).await {
        Ok(messages) => {
            for element in messages {
                deliver(server, to, element).await;
            }
        }
        Err(e) => tracing::error!(error = %e, "reading PEP last items failed"),
    }
}

/// The last items of `owner`'s nodes that the resources of `contact`, newly subscribed to
/// the owner's presence, want and may read (§4.3.4: to new subscribers).
async fn owed_on_subscription(server: &Server, owner: &BareJid, contact: &BareJid) {
    let mut resources = Vec::new();
    let table = &server.router.table;
    if !is_local(server, contact) {
        resources = remote_resources(server, contact);
    }
    for (full, presence) in table.available_presences(contact.as_str()) {
        if priority(&presence) < 0 {
            continue;
        }
        let Ok(full) = FullJid::new(&full) else {
            continue;
        };
        if let Some(features) = table.session_state(&full).and_then(|s| features_of(&s)) {
            resources.push((full, features));
        }
    }
    if resources.is_empty() {
        return;
    }
    let nodes: Vec<(StoredNode, Option<StoredItem>)> =
        match server.store.pubsub_last_items(owner.as_str()).await {
            Ok(nodes) => nodes,
            Err(e) => {
                tracing::error!(error = %e, "reading PEP last items failed");
                return;
            }
        };
    let asker = match super::asker(server, owner, contact).await {
        Ok(asker) => asker,
        Err(_) => return,
    };
    for (node, item) in nodes {
        let Some(item) = item else {
            continue;
        };
        let config = NodeConfig::from_stored(&node.config);
        if !config.deliver_notifications
            || !sends_last(&config, false)
            || config.may_read(&asker).is_err()
        {
            continue;
        }
        for (full, features) in &resources {
            if !features.wants(&node.node) {
                continue;
            }
            if let Some(element) = last_item(owner, full, &node.node, &config, &item) {
                deliver(server, full, element).await;
            }
        }
    }
}

/// Sends the last items a resource is owed: when its client's features become known (what
/// it now wants that it did not), and to a contact's resources when its subscription to the
/// owner's presence starts.
pub(super) struct LastItems;

#[async_trait]
impl Hook for LastItems {
    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        match event {
            Event::ClientFeatures {
                jid,
                features: Some(features),
                previous,
            } => {
                let wanted = newly_wanted(features, previous.map(Arc::as_ref));
                if wanted.is_empty() {
                    return Flow::Continue;
                }
                if !is_local(server, &jid.to_bare()) {
                    remote_owed_at_presence(server, jid, &wanted).await;
                    return Flow::Continue;
                }
                let Some(state) = server.router.table.session_state(jid) else {
                    return Flow::Continue;
                };
                // §4.3.2: a resource with negative priority gets no notifications.
                let available = server
                    .router
                    .table
                    .available_presences(jid.to_bare().as_str())
                    .into_iter()
                    .find(|(full, _)| full == jid.as_str());
                if available.is_some_and(|(_, presence)| priority(&presence) < 0) {
                    return Flow::Continue;
                }
                match owed_at_presence(server, jid, &wanted).await {
                    // Fired on the session's own task: a burst as large as the roster is
                    // written by the session itself, not pushed through its inbox.
                    Ok(messages) => state.write_after(messages),
                    Err(e) => tracing::error!(error = %e, "reading PEP last items failed"),
                }
                Flow::Continue
            }
            Event::RosterChanged {
                owner,
                item,
                previous,
            } => {
                // §4.3.4: a contact that just got a subscription to the owner's presence is a
                // new subscriber; one that had it already is owed nothing new.
                let before = matches!(previous, Subscription::From | Subscription::Both);
                let from = !before && matches!(item.attr("subscription"), Some("from" | "both"));
                let contact = item.attr("jid").and_then(|j| BareJid::new(j).ok());
                if let (true, Some(contact)) = (from, contact) {
                    owed_on_subscription(server, owner, &contact).await;
                }
                Flow::Continue
            }
            _ => Flow::Continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(nodes: &[&str]) -> ClientFeatures {
        let mut query = Element::new("query", ns::DISCO_INFO);
        for node in nodes {
            query.push_child(
                Element::new("feature", ns::DISCO_INFO).with_attr("var", format!("{node}+notify")),
            );
        }
        query.push_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", "urn:x"));
        ClientFeatures::from_info(&query)
    }

    #[test]
    fn only_new_interests_are_owed() {
        let now = features(&["urn:a", "urn:b"]);
        assert_eq!(newly_wanted(&now, None), ["urn:a", "urn:b"]);
        let before = features(&["urn:a"]);
        assert_eq!(newly_wanted(&now, Some(&before)), ["urn:b"]);
        assert!(newly_wanted(&before, Some(&now)).is_empty());
    }

    #[test]
    fn last_items_follow_send_last_published_item() {
        let mut config = NodeConfig::default();
        assert!(sends_last(&config, true) && sends_last(&config, false));
        config.send_last_published_item = SendLastPublished::OnSub;
        assert!(!sends_last(&config, true) && sends_last(&config, false));
        config.send_last_published_item = SendLastPublished::Never;
        assert!(!sends_last(&config, true) && !sends_last(&config, false));
    }
}
