//! Presence to a room (XEP-0045 §7.2 entering, §7.6 changing nickname, §7.7 changing
//! availability, §7.14 exiting), and the removal of an occupant whose address sends errors
//! back.

use jabberwock_protocol::jid::FullJid;
use jabberwock_protocol::muc::{status, Affiliation, Join, Role};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, ErrorType, StanzaError};
use jabberwock_protocol::xml::Element;

use super::occupant::{stamp, Occupant};
use super::room::{Notice, Out, Room};
use super::settings::Whois;

/// How an entrant comes in.
pub struct Entry<'a> {
    pub from: &'a FullJid,
    pub nick: &'a str,
    /// The MUC payload; `None` for a groupchat 1.0 join (§7.1.1, no `<x/>`).
    pub join: Option<Join>,
    pub presence: &'a Element,
    /// The entrant just created the room (status 201).
    pub created: bool,
    /// XEP-0421: the entrant's occupant id in this room.
    pub occupant_id: String,
    pub now: i64,
}

/// §7.2: entering a room; on success the entrant has the others' presence, its own (110
/// last), the history and the subject. The same user entering with the nickname it already
/// has from another resource joins that occupant as one more session (§7.2.9's allowance,
/// as Prosody does): the others see the occupant's presence change (§7.7), no new occupant.
pub fn enter(room: &mut Room, entry: Entry<'_>) -> Result<Out, StanzaError> {
    let bare = entry.from.to_bare();
    let affiliation = room.affiliation(&bare);
    // §10.1.1: a room is locked until its owner configures it.
    if room.locked && affiliation != Affiliation::Owner {
        return Err(StanzaError::with_text(
            Condition::ItemNotFound,
            "the room is locked until its owner configures it",
        ));
    }
    // §7.2.8: banned users may not enter.
    if affiliation == Affiliation::Outcast {
        return Err(StanzaError::new(Condition::Forbidden));
    }
    // §7.2.7: a members-only room admits members and above.
    if room.settings.members_only && affiliation < Affiliation::Member {
        return Err(StanzaError::new(Condition::RegistrationRequired));
    }
    // §7.2.9: a nickname another user holds, or (§7.12) another user reserved.
    let joined = room.by_nick(entry.nick);
    if joined.is_some_and(|index| room.occupants[index].jid.to_bare() != bare)
        || !room.may_use_nick(entry.nick, &bare)
    {
        return Err(StanzaError::new(Condition::Conflict));
    }
    // §7.2.6: the password, unless the entrant owns the room.
    if let Some(secret) = &room.settings.password {
        let given = entry.join.as_ref().and_then(|j| j.password.as_deref());
        if affiliation != Affiliation::Owner && given != Some(secret.as_str()) {
            return Err(StanzaError::new(Condition::NotAuthorized));
        }
    }
    let index = match joined {
        Some(index) => {
            let occupant = &mut room.occupants[index];
            occupant.other_sessions.push(entry.from.clone());
            occupant.update(entry.presence);
            index
        }
        None => {
            // §7.2.10: full (the admin's limit or the owner's), except for its owners and
            // admins, so a room's staff can always come in to moderate; type wait, as
            // Example 41 has it. A session joining its occupant takes no room.
            if room
                .limits
                .is_full(room.occupants.len(), room.settings.max_users)
                && affiliation < Affiliation::Admin
            {
                return Err(StanzaError {
                    error_type: ErrorType::Wait,
                    ..StanzaError::with_text(Condition::ServiceUnavailable, "the room is full")
                });
            }
            room.occupants.push(Occupant::new(
                entry.nick,
                entry.from.clone(),
                room.default_role(affiliation),
                entry.occupant_id,
                entry.presence,
                &room.limits,
            ));
            room.occupants.len() - 1
        }
    };
    let entrant = room.occupants[index].clone();
    let mut out = Out::new();
    // §7.2.3: the others first, as the entrant may see them.
    for occupant in room.occupants.iter().filter(|o| o.jid != entrant.jid) {
        out.push(room.presence_of(occupant, &entrant, entry.from, &Notice::default()));
    }
    let mut self_codes = Vec::new();
    // §7.2.4: a non-anonymous room says so to the entrant.
    if room.settings.whois == Whois::Anyone {
        self_codes.push(status::NON_ANONYMOUS);
    }
    // §10.1.1: the room was created for the entrant.
    if entry.created {
        self_codes.push(status::ROOM_CREATED);
    }
    let notice = Notice {
        self_codes: &self_codes,
        ..Notice::default()
    };
    room.broadcast_presence(&entrant, &notice, &mut out);
    // §7.2.14: history, then §7.2.15: the subject, always (empty if none).
    let limits = entry.join.map(|j| j.history).unwrap_or_default();
    for mut message in room.history.select(&limits, entry.now) {
        message.set_attr("to", entry.from.as_str());
        out.push(message);
    }
    out.push(subject_message(room, entry.from));
    Ok(out)
}

/// §7.2.15: the current subject, from whoever set it (the room itself when nobody did).
pub fn subject_message(room: &Room, to: &FullJid) -> Element {
    let from = match &room.subject.nick {
        Some(nick) => room.nick_jid(nick),
        None => room.jid.to_string(),
    };
    let mut subject = Element::new("subject", ns::CLIENT);
    if !room.subject.text.is_empty() {
        subject.push_text(room.subject.text.as_str());
    }
    let mut message = Element::new("message", ns::CLIENT)
        .with_attr("type", "groupchat")
        .with_attr("from", from)
        .with_attr("to", to.as_str())
        .with_child(subject);
    // XEP-0421 §4: set by an occupant, it carries that occupant's id.
    if let Some(id) = &room.subject.occupant_id {
        stamp(&mut message, id);
    }
    message
}

/// Available presence from an occupant: to its own nickname a change of availability
/// (§7.7), to another one a nickname change (§7.6).
pub fn update(
    room: &mut Room,
    index: usize,
    nick: &str,
    presence: &Element,
) -> Result<Out, StanzaError> {
    let mut out = Out::new();
    if room.occupants[index].nick == nick {
        room.occupants[index].update(presence);
        let occupant = room.occupants[index].clone();
        room.broadcast_presence(&occupant, &Notice::default(), &mut out);
        return Ok(out);
    }
    // §7.6: the new nickname must be free, and (§7.12) not reserved by another user.
    let bare = room.occupants[index].jid.to_bare();
    if room.by_nick(nick).is_some() || !room.may_use_nick(nick, &bare) {
        return Err(StanzaError::new(Condition::Conflict));
    }
    let old = room.occupants[index].clone();
    let changed = Notice {
        unavailable: true,
        codes: &[status::NICK_CHANGED],
        nick: Some(nick),
        ..Notice::default()
    };
    room.broadcast_presence(&old, &changed, &mut out);
    let occupant = &mut room.occupants[index];
    occupant.nick = nick.to_owned();
    occupant.update(presence);
    let occupant = occupant.clone();
    room.broadcast_presence(&occupant, &Notice::default(), &mut out);
    Ok(out)
}

/// §7.14: an occupant's session `from` leaves; unavailable presence sent to any of the
/// room's JIDs counts, so the goodbye a session's end sends to every nickname it used finds
/// the occupant once. The occupant leaves with its last session; before that, only the
/// leaving session is told it is out.
pub fn leave(room: &mut Room, index: usize, from: &FullJid, presence: &Element) -> Out {
    let mut out = Out::new();
    let mut gone = room.occupants[index].clone();
    if room.occupants[index].remove_session(from) {
        gone.update(presence);
        gone.role = Role::None;
        let notice = Notice {
            unavailable: true,
            ..Notice::default()
        };
        out.push(room.presence_of(&gone, &gone, from, &notice));
        return out;
    }
    room.occupants[index].update(presence);
    room.remove(index, &Notice::default(), &mut out);
    out
}

/// The occupant's real JID answered something the room sent with an error: it is gone
/// (a session that ended, a server that is unreachable), so it leaves, with status 333;
/// one session of several just stops being one.
pub fn remove_on_error(room: &mut Room, from: &FullJid) -> Out {
    let mut out = Out::new();
    if let Some(index) = room.by_jid(from) {
        if room.occupants[index].remove_session(from) {
            return out;
        }
        room.occupants[index].payload.clear();
        let notice = Notice {
            codes: &[status::REMOVED_ERROR],
            ..Notice::default()
        };
        room.remove(index, &notice, &mut out);
        // The one that sent the error is not sent more.
        out.drop_to(from);
    }
    out
}

/// Whether the role lets the occupant speak (§5.1.1: visitors may not).
pub fn has_voice(role: Role) -> bool {
    role >= Role::Participant
}
