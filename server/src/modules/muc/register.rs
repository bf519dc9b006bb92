//! Registering with a room (XEP-0045 §7.10, the `jabber:iq:register` exchange of XEP-0077
//! with the `muc#register` form) and discovering one's reserved nickname (§7.12, the
//! `x-roomuser-item` disco node).
//!
//! **Policy** (§7.10 leaves it to the service): as Prosody's mod_muc does, registration
//! makes the user a member with the submitted nickname reserved; admins and owners keep
//! their affiliation and gain the reservation. In an open room anyone not banned may
//! register (Prosody's `allow_unaffiliated_register`); in a members-only room only those
//! already affiliated may (reserving their nick), since registration there would otherwise
//! let anyone past the member list (others get `not-allowed`, §7.10). Outcasts get
//! `forbidden` (§7.2.8's answer for them). `<remove/>` (XEP-0077 §3.2) takes the reservation
//! back and, for a member, the membership; an admin or owner stays one. Of the form, only
//! the nickname is kept; the optional fields are accepted and not stored, as in Prosody
//! and ejabberd.

use jabberwock_protocol::forms::{DataForm, Field, FieldType, FormType};
use jabberwock_protocol::muc::Affiliation;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::xml::Element;

use super::admin::{self, Actor};
use super::room::{Affiliated, Out, Room};

/// §7.12: the disco#info node that names the requester's reserved nickname.
pub const RESERVED_NICK_NODE: &str = "x-roomuser-item";

const FIELD_NICK: &str = "muc#register_roomnick";

/// Whether the actor may register with (or cancel a registration with) the room.
fn may_register(room: &Room, actor: &Actor) -> Result<(), StanzaError> {
    match actor.affiliation {
        Affiliation::Outcast => Err(StanzaError::new(Condition::Forbidden)),
        Affiliation::None if room.settings.members_only => Err(StanzaError::with_text(
            Condition::NotAllowed,
            "only members register with a members-only room",
        )),
        _ => Ok(()),
    }
}

/// §7.10 Example 73: the registration form; or, for a user who already reserved a nick,
/// `<registered/>` with it (XEP-0077 §3.1, and Prosody's answer).
pub fn get(room: &Room, actor: &Actor) -> Result<Element, StanzaError> {
    may_register(room, actor)?;
    let query = Element::new("query", ns::REGISTER);
    if let Some(nick) = room.reserved_nick(&actor.jid) {
        return Ok(query
            .with_child(Element::new("registered", ns::REGISTER))
            .with_child(Element::new("username", ns::REGISTER).with_text(nick)));
    }
    // §15.5.1: the fields the registry lists; only the nickname is required here.
    let text = |var: &str, label: &str| {
        Field::new(var)
            .with_type(FieldType::TextSingle)
            .with_label(label)
    };
    let form = DataForm::new(FormType::Form)
        .with_form_type(ns::MUC_REGISTER)
        .with_title(format!("Registration with {}", room.jid))
        .with_instructions("Choose the nickname to reserve in this room.")
        .with_field(text("muc#register_first", "First name"))
        .with_field(text("muc#register_last", "Last name"))
        .with_field(text(FIELD_NICK, "Desired nickname").required())
        .with_field(text("muc#register_url", "Your URL"))
        .with_field(text("muc#register_email", "Email address"))
        .with_field(
            Field::new("muc#register_faqentry")
                .with_type(FieldType::TextMulti)
                .with_label("FAQ entry"),
        );
    Ok(query.with_child(form.to_element()))
}

/// §7.10 Example 74: a submitted form registers (or changes the reserved nick); XEP-0077
/// §3.2's `<remove/>` cancels.
pub fn set(room: &mut Room, actor: &Actor, query: &Element) -> Result<Out, StanzaError> {
    may_register(room, actor)?;
    if query.get_child("remove", ns::REGISTER).is_some() {
        return Ok(cancel(room, actor));
    }
    let bad_form =
        || StanzaError::with_text(Condition::BadRequest, "a submitted muc#register form");
    let form = query
        .get_child("x", ns::DATA_FORMS)
        .and_then(|x| DataForm::parse(x).ok())
        .ok_or_else(bad_form)?;
    if form.form_type != FormType::Submit || form.form_type_field() != Some(ns::MUC_REGISTER) {
        return Err(bad_form());
    }
    // XEP-0077 §3.1: required information missing is not-acceptable.
    let nick = form
        .value(FIELD_NICK)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            StanzaError::with_text(Condition::NotAcceptable, "a nickname is required")
        })?;
    // §7.10: reserved by, or (as Prosody checks) in use by, someone else: conflict.
    let nick = admin::reservable_nick(room, &actor.jid, nick)?;
    let current = room.affiliations.get(actor.jid.as_str());
    let affiliation = actor.affiliation.max(Affiliation::Member);
    let entry = Affiliated {
        affiliation,
        nick: Some(nick),
        reason: current.and_then(|c| c.reason.clone()),
    };
    let mut out = Out::new();
    if affiliation == actor.affiliation {
        // Only the reservation changes: nothing occupants see.
        room.set_affiliated(actor.jid.as_str(), entry);
    } else {
        // §7.10: the new member's occupants show their new affiliation to everyone.
        admin::affiliate(room, &actor.jid, entry, &mut out);
    }
    Ok(out)
}

/// The registration cancelled: the reservation gone, and a member's membership with it
/// (in a members-only room the user's occupants leave, §9.4); a user who had none is
/// answered all the same.
fn cancel(room: &mut Room, actor: &Actor) -> Out {
    let mut out = Out::new();
    match actor.affiliation {
        Affiliation::Member => {
            let entry = Affiliated::new(Affiliation::None);
            admin::affiliate(room, &actor.jid, entry, &mut out);
        }
        Affiliation::Admin | Affiliation::Owner => {
            if let Some(entry) = room.affiliations.get_mut(actor.jid.as_str()) {
                entry.nick = None;
            }
        }
        Affiliation::None | Affiliation::Outcast => {}
    }
    out
}

/// §7.12 Example 76: the requester's reserved nick as the identity's name, or an empty
/// query when there is none.
pub fn reserved_nick_info(room: &Room, actor: &Actor) -> Element {
    let mut query = Element::new("query", ns::DISCO_INFO).with_attr("node", RESERVED_NICK_NODE);
    if let Some(nick) = room.reserved_nick(&actor.jid) {
        query.push_child(
            Element::new("identity", ns::DISCO_INFO)
                .with_attr("category", "conference")
                .with_attr("type", "text")
                .with_attr("name", nick),
        );
    }
    query
}
