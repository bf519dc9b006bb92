//! Items as both publish-subscribe services keep them (XEP-0060 §7.1): ids the service
//! makes, the one payload an item carries, serialized for the store and read back.

use jabberwock_protocol::ns;
use jabberwock_protocol::pubsub::{self, PublishedItem};
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::xml::{parse_stanza, Element};
use jabberwock_storage::StoredItem;

/// A fresh item id (§7.1.1: the service makes one when the publisher gave none).
pub fn item_id() -> String {
    format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

/// The one payload of a published item and its serialization (§7.1.3.5, §7.1.3.6: none
/// or several are bad requests; over `max_bytes` is too big).
pub fn payload_of(
    item: &PublishedItem,
    max_bytes: usize,
) -> Result<(&Element, String), StanzaError> {
    let payload = match item.payloads.as_slice() {
        [one] => one,
        [] => return Err(pubsub::error(Condition::BadRequest, "payload-required")),
        _ => return Err(pubsub::error(Condition::BadRequest, "invalid-payload")),
    };
    let xml = payload.to_xml_string(ns::CLIENT);
    if xml.len() > max_bytes {
        return Err(pubsub::error(Condition::NotAcceptable, "payload-too-big"));
    }
    Ok((payload, xml))
}

/// The item's payload element, as stored.
pub fn stored_payload(item: &StoredItem) -> Option<Element> {
    match parse_stanza(item.payload.as_bytes()) {
        Ok(payload) => Some(payload),
        Err(e) => {
            tracing::warn!(id = %item.id, error = %e, "unreadable pubsub item left out");
            None
        }
    }
}

/// An item's payload as retrieved or sent: `Some(None)` for an item published without one
/// (a notification-only node's, §7.1.3.6), `None` for one that no longer parses.
pub fn item_payload(item: &StoredItem) -> Option<Option<Element>> {
    if item.payload.is_empty() {
        return Some(None);
    }
    stored_payload(item).map(Some)
}

/// Over one of a service's limits: `not-allowed` with the pubsub#errors condition that
/// names it (`max-nodes-exceeded`, `max-items-exceeded`), as ejabberd answers.
pub fn over_limit(pubsub_condition: &str) -> StanzaError {
    pubsub::error(Condition::NotAllowed, pubsub_condition)
}
