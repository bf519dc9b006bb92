//! Who hears of a node and how: event notifications (XEP-0060 §7.1.2.1, §7.2.2.1, §8.2.5.1,
//! §8.4.2, §8.5.2) as `<message type='headline'>` from the service's domain to every
//! subscribed JID, bare or full, as subscribed (the router delivers a bare JID's to its
//! resources, and a JID on another server's through federation); subscription changes to
//! the owners (`pubsub#notify_sub`); the last item to a new subscriber
//! (`pubsub#send_last_published_item`); an entity's new affiliation (§8.9.4) and its
//! subscription's new state when an owner decides (§8.6, §8.8).
//!
//! A subscriber is notified only while the access model still lets it read the node, and
//! only if its subscription's `pubsub#deliver` is on (§6.3).

use std::collections::HashMap;

use jabberwock_protocol::delay::delay;
use jabberwock_protocol::jid::{BareJid, Jid};
use jabberwock_protocol::ns;
use jabberwock_protocol::pubsub::{Affiliation, Event as PubsubEvent};
use jabberwock_protocol::pubsub_authorization::affiliation_notice;
use jabberwock_protocol::stanza::Stanza;
use jabberwock_protocol::xml::Element;
use jabberwock_storage::{ItemsWanted, StoredSubscription};

use super::config::{NotificationType, SendLastPublished};
use super::expire;
use super::node::Node;
use super::payload::item_payload;
use super::subscribe::SubOptions;
use super::Ctx;

/// XEP-0033: the extended addressing namespace, for `replyto` (`pubsub#itemreply`).
const ADDRESS: &str = "http://jabber.org/protocol/address";

/// A fresh id for a message from the service.
pub(super) fn message_id() -> String {
    format!("pubsub-{:016x}", rand::random::<u64>())
}

fn message(service: &str, to: &str, event: Element) -> Element {
    typed_message(service, to, event, NotificationType::Headline)
}

/// A notification to a subscriber, of the node's `pubsub#notification_type`.
fn typed_message(service: &str, to: &str, event: Element, kind: NotificationType) -> Element {
    Element::new("message", ns::CLIENT)
        .with_attr("from", service)
        .with_attr("to", to)
        .with_attr("type", kind.as_str())
        .with_attr("id", message_id())
        .with_child(event)
}

/// Routes one message from the service.
pub(super) async fn send(ctx: &Ctx<'_>, element: Element) {
    if let Ok(stanza) = Stanza::from_element(element) {
        ctx.server
            .router
            .route_from_service(ctx.server, stanza)
            .await;
    }
}

/// XEP-0033 `replyto` addresses for an item notification (§16.4.3 `pubsub#itemreply`).
pub(super) fn reply_to(jids: &[&str]) -> Option<Element> {
    if jids.is_empty() {
        return None;
    }
    let mut addresses = Element::new("addresses", ADDRESS);
    for jid in jids {
        addresses.push_child(
            Element::new("address", ADDRESS)
                .with_attr("type", "replyto")
                .with_attr("jid", *jid),
        );
    }
    Some(addresses)
}

/// Sends `event` to each of `subscriptions` that wants notifications and may still read
/// the node; `extra` (XEP-0033 addresses) goes into each message.
pub(super) async fn to_subscribers(
    ctx: &Ctx<'_>,
    node: &Node,
    subscriptions: &[StoredSubscription],
    event: &PubsubEvent,
    extra: Option<&Element>,
) {
    let event = event.to_element();
    // One access decision per bare JID, however many of its JIDs are subscribed.
    let mut allowed: HashMap<String, bool> = HashMap::new();
    for subscription in subscriptions {
        // A subscription waiting for approval (§6.1.2) gets nothing yet.
        if subscription.pending || !SubOptions::from_stored(&subscription.options).deliver {
            continue;
        }
        let Ok(jid) = Jid::new(&subscription.jid) else {
            continue;
        };
        let bare = jid.to_bare();
        let may = match allowed.get(bare.as_str()) {
            Some(may) => *may,
            None => {
                let may = node.may_read(ctx, &bare).await.is_ok();
                allowed.insert(bare.to_string(), may);
                may
            }
        };
        if !may {
            continue;
        }
        let mut element = typed_message(
            ctx.service,
            &subscription.jid,
            event.clone(),
            node.config.notification_type,
        );
        if let Some(extra) = extra {
            element.push_child(extra.clone());
        }
        send(ctx, element).await;
    }
}

/// Sends `event` to every subscriber of the node, read now.
pub(super) async fn broadcast(ctx: &Ctx<'_>, node: &Node, event: &PubsubEvent) {
    match ctx
        .server
        .store
        .pubsub_subscriptions(ctx.service, &node.name)
        .await
    {
        Ok(Some(subscriptions)) => to_subscribers(ctx, node, &subscriptions, event, None).await,
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, node = %node.name, "subscribers not read"),
    }
}

/// `pubsub#notify_sub`: the owners hear of a subscription that started or ended.
pub(super) async fn to_owners(ctx: &Ctx<'_>, node: &Node, event: &PubsubEvent) {
    if !node.config.notify_sub {
        return;
    }
    for owner in node.owners() {
        send(ctx, message(ctx.service, owner, event.to_element())).await;
    }
}

/// `event` to one JID: its subscription's new state, decided by an owner (§8.6, §8.8).
pub(super) async fn to_jid(ctx: &Ctx<'_>, jid: &str, event: &PubsubEvent) {
    send(ctx, message(ctx.service, jid, event.to_element())).await;
}

/// §8.9.4: each entity whose affiliation an owner changed hears its new one.
pub(super) async fn affiliations_changed(
    ctx: &Ctx<'_>,
    node: &str,
    changes: &[(String, Affiliation)],
) {
    for (jid, affiliation) in changes {
        let notice = affiliation_notice(ctx.service, node, jid, *affiliation, &message_id());
        send(ctx, notice).await;
    }
}

/// §6.1.7 (`pubsub#send_last_published_item`): a new subscription's JID gets the node's
/// newest item that has not expired, stamped with when it was published (XEP-0203).
pub(super) async fn last_item(ctx: &Ctx<'_>, node: &Node, to: &str) {
    if node.config.send_last_published_item == SendLastPublished::Never
        || !node.config.deliver_notifications
    {
        return;
    }
    let found = match ctx
        .server
        .store
        .pubsub_items(ctx.service, &node.name, ItemsWanted::Newest(1))
        .await
    {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, node = %node.name, "last item not read");
            return;
        }
    };
    let found = found.map(|f| f.items).unwrap_or_default();
    let Some(item) = expire::unexpired(ctx, node, found).await.into_iter().next() else {
        return;
    };
    let payload = if node.config.deliver_payloads {
        let Some(payload) = item_payload(&item) else {
            return;
        };
        payload
    } else {
        None
    };
    let event = PubsubEvent::Items {
        node: node.name.clone(),
        items: vec![(item.id.clone(), payload)],
    };
    let mut element = typed_message(
        ctx.service,
        to,
        event.to_element(),
        node.config.notification_type,
    );
    element.push_child(delay(ctx.service, item.published_at));
    send(ctx, element).await;
}

/// The bare JIDs of `subscriptions`' subscribers (approved ones, not pending).
pub(super) fn subscriber_bares(subscriptions: &[StoredSubscription]) -> Vec<BareJid> {
    subscriptions
        .iter()
        .filter(|s| !s.pending)
        .filter_map(|s| Jid::new(&s.jid).ok().map(|j| j.to_bare()))
        .collect()
}
