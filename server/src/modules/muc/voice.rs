//! Voice requests (XEP-0045 §8.6): a visitor in a moderated room submits a `muc#request`
//! form to the room; the room passes it to every moderator as a form to approve; a
//! moderator who submits it back with `muc#request_allow` set grants voice, as a role
//! change to participant would (§8.3).

use std::time::Instant;

use jabberwock_protocol::forms::{DataForm, Field, FieldType, FormType};
use jabberwock_protocol::jid::FullJid;
use jabberwock_protocol::muc::{Item, Role};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::xml::Element;

use super::admin::{self, Actor};
use super::room::{Out, Room};

/// The form's `FORM_TYPE` (§15.5.4).
pub const FORM_TYPE: &str = "http://jabber.org/protocol/muc#request";

/// The `muc#request` form a message to the room carries, if any.
pub fn form_of(message: &Element) -> Option<DataForm> {
    let form = DataForm::parse(message.get_child("x", ns::DATA_FORMS)?).ok()?;
    (form.form_type_field() == Some(FORM_TYPE)).then_some(form)
}

/// A `muc#request` form from `from`: a visitor's request, or a moderator's answer (the
/// form the room sent, submitted with `muc#request_allow`).
pub fn receive(
    room: &mut Room,
    from: &FullJid,
    message: &Element,
    form: &DataForm,
) -> Result<Out, StanzaError> {
    if form.form_type != FormType::Submit {
        return Err(StanzaError::with_text(
            Condition::BadRequest,
            "a submitted muc#request form",
        ));
    }
    let Some(index) = room.by_jid(from) else {
        // §8.6 is between occupants and the room's moderators.
        return Err(StanzaError::with_text(
            Condition::NotAcceptable,
            "only occupants take part in voice requests",
        ));
    };
    match form.value("muc#request_allow") {
        None => request(room, index, message),
        Some(allow) => answer(room, from, form, allow),
    }
}

/// §8.6 Example 111 → 112: the request goes to every moderator as a form.
fn request(room: &mut Room, index: usize, message: &Element) -> Result<Out, StanzaError> {
    // Only a visitor lacks voice: anyone else's request asks for nothing.
    if room.occupants[index].role != Role::Visitor {
        return Ok(Out::new());
    }
    // A request reaches every moderator: it spends the sender's message allowance.
    let limits = room.limits;
    limits.check_message(&mut room.occupants[index].bucket, message, Instant::now())?;
    let requester = &room.occupants[index];
    let form = DataForm::new(FormType::Form)
        .with_form_type(FORM_TYPE)
        .with_title("Voice request")
        .with_instructions(
            "To grant this occupant voice, check \"Grant voice\" and submit; to skip the \
             request, cancel.",
        )
        .with_field(
            Field::new("muc#role")
                .with_type(FieldType::ListSingle)
                .with_label("Requested role")
                .with_option(None, "participant")
                .with_value("participant"),
        )
        .with_field(
            Field::new("muc#jid")
                .with_type(FieldType::JidSingle)
                .with_label("User ID")
                .with_value(requester.jid.as_str()),
        )
        .with_field(
            Field::new("muc#roomnick")
                .with_type(FieldType::TextSingle)
                .with_label("Room nickname")
                .with_value(requester.nick.as_str()),
        )
        .with_field(
            Field::new("muc#request_allow")
                .with_type(FieldType::Boolean)
                .with_label("Grant voice")
                .with_value("false"),
        )
        .to_element();
    let message = Element::new("message", ns::CLIENT)
        .with_attr("from", room.jid.as_str())
        .with_child(form);
    let mut out = Out::new();
    for moderator in room.occupants.iter().filter(|o| o.role == Role::Moderator) {
        moderator.to_each_session(&message, &mut out);
    }
    Ok(out)
}

/// §8.6 Example 113: a moderator's answer; an approval makes the occupant a participant.
fn answer(
    room: &mut Room,
    from: &FullJid,
    form: &DataForm,
    allow: &str,
) -> Result<Out, StanzaError> {
    let actor = Actor::of(room, &from.clone().into());
    if actor.role != Role::Moderator {
        return Err(StanzaError::new(Condition::Forbidden));
    }
    // XEP-0004 §3.3 booleans; "false" or "0" declines, which needs no answer.
    if !matches!(allow, "1" | "true") {
        return Ok(Out::new());
    }
    let nick = form
        .value("muc#roomnick")
        .ok_or_else(|| StanzaError::with_text(Condition::BadRequest, "muc#roomnick"))?;
    // Granted meanwhile (or gone): nothing left to do.
    match room.by_nick(nick) {
        Some(index) if room.occupants[index].role == Role::Visitor => {}
        _ => return Ok(Out::new()),
    }
    let item = Item {
        role: Some(Role::Participant),
        nick: Some(nick.to_owned()),
        ..Item::default()
    };
    let mut out = Out::new();
    admin::change_role(room, &actor, &item, Role::Participant, &mut out)?;
    Ok(out)
}
