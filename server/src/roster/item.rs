//! Roster items on the wire (RFC 6121 §2.1): `<item/>` elements from and for clients.

use jabberwock_protocol::jid::BareJid;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::{RosterEntry, Subscription};

/// Longest item name or group name we keep, in bytes (RFC 6121 §2.1.2.4 lets us pick).
pub const MAX_NAME_BYTES: usize = 1024;

/// Most groups one item may be in. RFC 6121 sets no number; without one an item's size
/// (stored, and sent in every roster load) is bounded only by the stanza limit. Real
/// clients put a contact in a handful of groups.
pub const MAX_GROUPS: usize = 64;

/// What a roster set asks for (RFC 6121 §2.3 and §2.5).
pub enum ItemRequest {
    Update {
        jid: BareJid,
        name: Option<String>,
        groups: Vec<String>,
    },
    Remove {
        jid: BareJid,
    },
}

/// Parses the single `<item/>` of a roster set's `<query/>`.
pub fn parse_set(query: &Element) -> Result<ItemRequest, StanzaError> {
    let mut items = query.children().filter(|c| c.is("item", ns::ROSTER));
    // §2.3.3: exactly one item per set.
    let (Some(item), None) = (items.next(), items.next()) else {
        return Err(StanzaError::new(Condition::BadRequest));
    };
    let jid = item
        .attr("jid")
        .and_then(|j| BareJid::new(j).ok())
        .ok_or_else(|| {
            StanzaError::with_text(Condition::BadRequest, "The item needs a valid bare JID")
        })?;
    // §2.1.2.5: "remove" is the only subscription value a client may set; others are ignored.
    if item.attr("subscription") == Some("remove") {
        return Ok(ItemRequest::Remove { jid });
    }
    let name = item
        .attr("name")
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    if name.as_ref().is_some_and(|n| n.len() > MAX_NAME_BYTES) {
        return Err(StanzaError::new(Condition::NotAcceptable));
    }
    let mut groups: Vec<String> = Vec::new();
    for group in item.children().filter(|c| c.is("group", ns::ROSTER)) {
        let group = group.text();
        // §2.3.3: empty or repeated groups are bad requests; overlong names not acceptable.
        if group.is_empty() || groups.contains(&group) {
            return Err(StanzaError::new(Condition::BadRequest));
        }
        if group.len() > MAX_NAME_BYTES {
            return Err(StanzaError::new(Condition::NotAcceptable));
        }
        // The same size rule (§2.3.3, not-acceptable) for the item as a whole.
        if groups.len() == MAX_GROUPS {
            return Err(StanzaError::with_text(
                Condition::NotAcceptable,
                "The item is in too many groups",
            ));
        }
        groups.push(group);
    }
    Ok(ItemRequest::Update { jid, name, groups })
}

/// The `<item/>` a client sees for an entry (§2.1.2): `ask` while we wait for the contact,
/// `approved` for a pre-approval (§3.4).
pub fn to_element(entry: &RosterEntry) -> Element {
    let mut item = Element::new("item", ns::ROSTER)
        .with_attr("jid", entry.contact.as_str())
        .with_attr("subscription", entry.subscription.as_str());
    if let Some(name) = &entry.name {
        item.set_attr("name", name.as_str());
    }
    if entry.pending_out && matches!(entry.subscription, Subscription::None | Subscription::From) {
        item.set_attr("ask", "subscribe");
    }
    if entry.approved {
        item.set_attr("approved", "true");
    }
    for group in &entry.groups {
        item.push_child(Element::new("group", ns::ROSTER).with_text(group.as_str()));
    }
    item
}

/// The item of a removal push (§2.5.2).
pub fn removed_element(contact: &str) -> Element {
    Element::new("item", ns::ROSTER)
        .with_attr("jid", contact)
        .with_attr("subscription", "remove")
}
