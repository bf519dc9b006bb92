//! Who hears of a node and how: event notifications (XEP-0060 §7.1.2.1, §7.2.2.1, §8.2.5.1,
//! §8.4.2, §8.5.2) as `<message type='headline'>` from the service's domain to every
//! subscribed JID, bare or full, as subscribed (the router delivers a bare JID's to its
//! resources, and a JID on another server's through federation); subscription changes to
//! the owners (`pubsub#notify_sub`); the last item to a new subscriber
//! (`pubsub#send_last_published_item`); an entity's new affiliation (§8.9.4) and its
//! subscription's new state when an owner decides (§8.6, §8.8).
//!
//! A subscriber is notified only while the access model still lets it read the node, only
//! if its subscription's `pubsub#deliver` is on (§6.3), and, under
//! `pubsub#presence_based_delivery`, only while available (`offline.rs`). One whose
//! `pubsub#include_body` is on also gets a `<body/>` that says what the item is, as
//! Prosody words it (§16.4.2).

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
use super::offline;
use super::payload::item_payload;
use super::subscribe::SubOptions;
use super::Ctx;

/// XEP-0033: the extended addressing namespace, for `replyto` (`pubsub#itemreply`).
const ADDRESS: &str = "http://jabber.org/protocol/address";

/// RFC 4287: Atom, whose entries are summarized by their own words.
const ATOM: &str = "http://www.w3.org/2005/Atom";

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

/// What an item's payload says, for a `<body/>` (§16.4.2 `pubsub#include_body`): an Atom
/// entry's summary, else its title, "AUTHOR posted " before it when the entry names an
/// author (Prosody's wording); any other payload's own text. `None` when that is empty.
fn summary(payload: &Element) -> Option<String> {
    let text = |el: Option<&Element>| {
        el.map(|el| el.text().trim().to_owned())
            .filter(|t| !t.is_empty())
    };
    if !payload.is("entry", ATOM) {
        // The payload's own text: the texts of a structured payload's children would run
        // together into nothing readable.
        return text(Some(payload));
    }
    if let Some(summary) = text(payload.get_child("summary", ATOM)) {
        return Some(summary);
    }
    let title = text(payload.get_child("title", ATOM))?;
    let author = payload
        .get_child("author", ATOM)
        .and_then(|author| text(author.get_child("name", ATOM)));
    Some(match author {
        Some(author) => format!("{author} posted {title}"),
        None => title,
    })
}

/// The `<body/>` for an item notification: the summary of its first payload, if any.
fn body_of(event: &PubsubEvent) -> Option<Element> {
    let PubsubEvent::Items { items, .. } = event else {
        return None;
    };
    let payload = items.iter().find_map(|(_, payload)| payload.as_ref())?;
    Some(Element::new("body", ns::CLIENT).with_text(summary(payload)?))
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
    let element = event.to_element();
    // `pubsub#include_body`: made once, when the first subscriber who asked for it is met.
    let mut body: Option<Option<Element>> = None;
    // One access decision per bare JID, however many of its JIDs are subscribed.
    let mut allowed: HashMap<String, bool> = HashMap::new();
    for subscription in subscriptions {
        // A subscription waiting for approval (§6.1.2) gets nothing yet.
        if subscription.pending {
            continue;
        }
        let options = SubOptions::from_stored(&subscription.options);
        if !options.deliver {
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
        // §16.4.3 `pubsub#presence_based_delivery`: available subscribers only.
        if node.config.presence_based_delivery && !offline::available(ctx.server, &jid) {
            continue;
        }
        let mut message = typed_message(
            ctx.service,
            &subscription.jid,
            element.clone(),
            node.config.notification_type,
        );
        if let Some(extra) = extra {
            message.push_child(extra.clone());
        }
        if options.include_body {
            if let Some(body) = body.get_or_insert_with(|| body_of(event)) {
                message.push_child(body.clone());
            }
        }
        send(ctx, message).await;
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
/// newest item that has not expired, stamped with when it was published (XEP-0203), with
/// a `<body/>` if the subscription asked for one.
pub(super) async fn last_item(ctx: &Ctx<'_>, node: &Node, subscription: &StoredSubscription) {
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
        &subscription.jid,
        event.to_element(),
        node.config.notification_type,
    );
    element.push_child(delay(ctx.service, item.published_at));
    if SubOptions::from_stored(&subscription.options).include_body {
        if let Some(body) = body_of(&event) {
            element.push_child(body);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(children: &[(&str, &str)]) -> Element {
        let mut entry = Element::new("entry", ATOM);
        for (name, text) in children {
            let child = match name.split_once('/') {
                Some((outer, inner)) => {
                    Element::new(outer, ATOM).with_child(Element::new(inner, ATOM).with_text(*text))
                }
                None => Element::new(name, ATOM).with_text(*text),
            };
            entry.push_child(child);
        }
        entry
    }

    #[test]
    fn bodies_say_what_the_item_is() {
        let full = atom(&[
            ("title", "Release"),
            ("summary", " Version 2 is out "),
            ("author/name", "Alice"),
        ]);
        assert_eq!(summary(&full).as_deref(), Some("Version 2 is out"));
        let titled = atom(&[("title", "Release"), ("author/name", "Alice")]);
        assert_eq!(summary(&titled).as_deref(), Some("Alice posted Release"));
        let anonymous = atom(&[("title", "Release"), ("summary", "  ")]);
        assert_eq!(summary(&anonymous).as_deref(), Some("Release"));
        assert_eq!(summary(&atom(&[("author/name", "Alice")])), None);
        let text = Element::new("status", "urn:example:status").with_text("\n  Away  \n");
        assert_eq!(summary(&text).as_deref(), Some("Away"));
        let structured = Element::new("geoloc", "http://jabber.org/protocol/geoloc")
            .with_child(Element::new("lat", "http://jabber.org/protocol/geoloc").with_text("45"));
        assert_eq!(summary(&structured), None);
        // Only an item with a payload has something to say.
        let event = PubsubEvent::Items {
            node: "n".into(),
            items: vec![("1".into(), Some(titled))],
        };
        let body = body_of(&event).unwrap();
        assert!(body.is("body", ns::CLIENT));
        assert_eq!(body.text(), "Alice posted Release");
        let bare = PubsubEvent::Items {
            node: "n".into(),
            items: vec![("1".into(), None)],
        };
        assert!(body_of(&bare).is_none());
        assert!(body_of(&PubsubEvent::Purge { node: "n".into() }).is_none());
    }
}
