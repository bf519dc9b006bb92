//! Messages to a room (XEP-0045 §7.4 groupchat, §8.1 subject) and between occupants (§7.5
//! private messages). Both pass the room's size and rate limits first (limits.rs).

use std::time::Instant;

use jabberwock_protocol::jid::FullJid;
use jabberwock_protocol::muc::{Affiliation, Role};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::xml::Element;

use super::archive;
use super::occupant::stamp;
use super::presence::has_voice;
use super::room::{Out, Room, Subject};

/// A groupchat message to the room from `from`: broadcast and kept in the history (and in
/// the room's archive, archive.rs), or, with a subject and no body, a subject change.
pub fn groupchat(
    room: &mut Room,
    from: &FullJid,
    message: &Element,
    now: i64,
) -> Result<Out, StanzaError> {
    // §7.4: only occupants may send to the room.
    let Some(index) = room.by_jid(from) else {
        return Err(StanzaError::with_text(
            Condition::NotAcceptable,
            "only occupants may send messages to the room",
        ));
    };
    let sender = &room.occupants[index];
    let nick = sender.nick.clone();
    let role = sender.role;
    let occupant_id = sender.id.clone();
    // §7.4 (§5.1.1): visitors in a moderated room have no voice.
    if !has_voice(role) {
        return Err(StanzaError::with_text(
            Condition::Forbidden,
            "visitors may not speak in a moderated room",
        ));
    }
    // Over a limit, the message goes back to its sender and to no one else.
    let limits = room.limits;
    limits.check_message(&mut room.occupants[index].bucket, message, Instant::now())?;
    let subject = message.get_child("subject", ns::CLIENT);
    let body = message.get_child("body", ns::CLIENT);
    let mut reflected = message.clone();
    reflected.set_attr("from", room.nick_jid(&nick));
    reflected.remove_attr("to");
    // XEP-0421 §4: the room's occupant id, never the sender's own.
    stamp(&mut reflected, &occupant_id);
    // Before the history takes it: an entrant's history carries the same stanza-id.
    let archived = archive::mark(room, &nick, &mut reflected, message);
    match (subject, body) {
        // §8.1: a subject without a body changes the subject, if the sender may.
        (Some(subject), None) => {
            if !(role == Role::Moderator || room.settings.change_subject) {
                return Err(StanzaError::with_text(
                    Condition::Forbidden,
                    "only moderators may change the subject",
                ));
            }
            room.subject = Subject {
                text: subject.text(),
                nick: Some(nick),
                occupant_id: Some(occupant_id),
            };
        }
        // §7.2.14: what was said is kept for later entrants.
        (_, Some(_)) => {
            // §7.9: the one-to-one history an owner sends on keeps its own stamps, without
            // the room's.
            let prior = message.get_child("delay", ns::DELAY).is_some()
                && room.affiliation(&from.to_bare()) == Affiliation::Owner;
            room.history
                .push(room.jid.as_str(), reflected.clone(), now, prior)
        }
        // Chat states and other bodiless messages are passed on, not kept.
        (None, None) => {}
    }
    let mut out = Out::new();
    match archived {
        Some(archived) => out.push_archived(reflected, room.session_jids(), archived),
        None => out.push_to_each(reflected, room.session_jids()),
    }
    Ok(out)
}

/// §7.5: a private message from occupant `from` to the occupant `nick`, delivered to its
/// real JID from the sender's room JID.
pub fn private(
    room: &mut Room,
    from: &FullJid,
    nick: &str,
    message: &Element,
) -> Result<Out, StanzaError> {
    // §7.5: groupchat is for the whole room.
    if message.attr("type") == Some("groupchat") {
        return Err(StanzaError::with_text(
            Condition::BadRequest,
            "a groupchat message goes to the room, not to an occupant",
        ));
    }
    let Some(sender) = room.by_jid(from) else {
        return Err(StanzaError::with_text(
            Condition::NotAcceptable,
            "only occupants may send private messages",
        ));
    };
    let Some(recipient) = room.by_nick(nick) else {
        return Err(StanzaError::new(Condition::ItemNotFound));
    };
    let limits = room.limits;
    limits.check_message(&mut room.occupants[sender].bucket, message, Instant::now())?;
    let sender = &room.occupants[sender];
    let mut copy = message.clone();
    copy.set_attr("from", room.nick_jid(&sender.nick));
    // XEP-0421 §4: the room's occupant id of the sender, never the sender's own.
    stamp(&mut copy, &sender.id);
    // §7.5: marked as coming through a room (so carbons and clients know).
    if copy.get_child("x", ns::MUC_USER).is_none() {
        copy.push_child(Element::new("x", ns::MUC_USER));
    }
    // Every session behind the nickname gets it.
    let mut out = Out::new();
    room.occupants[recipient].to_each_session(&copy, &mut out);
    Ok(out)
}
