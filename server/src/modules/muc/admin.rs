//! Roles and affiliations (XEP-0045 §8 moderator use cases, §9 admin use cases, §10.3-10.8
//! owners and admins): `muc#admin` lists and changes.

use jabberwock_protocol::jid::{parse_resource, BareJid, Jid};
use jabberwock_protocol::muc::{status, Affiliation, Item, Role};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::xml::Element;

use super::room::{Affiliated, Notice, Out, Room};

/// Who asks: its bare JID and affiliation, and its role and nickname if it is in the room.
pub struct Actor {
    pub jid: BareJid,
    pub affiliation: Affiliation,
    pub role: Role,
    pub nick: Option<String>,
}

impl Actor {
    pub fn of(room: &Room, from: &Jid) -> Actor {
        let occupant = from
            .try_as_full()
            .ok()
            .and_then(|full| room.by_jid(full))
            .map(|i| &room.occupants[i]);
        let jid = from.to_bare();
        Actor {
            affiliation: room.affiliation(&jid),
            jid,
            role: occupant.map_or(Role::None, |o| o.role),
            nick: occupant.map(|o| o.nick.clone()),
        }
    }
}

fn bad_request(text: &str) -> StanzaError {
    StanzaError::with_text(Condition::BadRequest, text)
}

fn items(query: &Element) -> Result<Vec<Item>, StanzaError> {
    query
        .children()
        .filter(|c| c.is("item", ns::MUC_ADMIN))
        .map(|c| Item::parse(c).map_err(|e| bad_request(&e.to_string())))
        .collect()
}

/// A list by affiliation (§9.5 members, §9.2 outcasts, §10.5 owners, §10.8 admins) or by
/// role (§8.5 voice list, §9.8 moderators).
pub fn list(room: &Room, actor: &Actor, query: &Element) -> Result<Element, StanzaError> {
    let items = items(query)?;
    let [item] = &items[..] else {
        return Err(bad_request("one item naming an affiliation or a role"));
    };
    let mut answer = Element::new("query", ns::MUC_ADMIN);
    match (item.affiliation, item.role) {
        (Some(affiliation), None) => {
            // §9.5: admins and owners see the lists.
            if actor.affiliation < Affiliation::Admin {
                return Err(StanzaError::new(Condition::Forbidden));
            }
            let mut entries: Vec<(&String, &Affiliated)> = room
                .affiliations
                .iter()
                .filter(|(_, a)| a.affiliation == affiliation)
                .collect();
            entries.sort_by_key(|(jid, _)| *jid);
            // §9.5, §10.5: each with the reserved nick and the reason it was given with.
            for (jid, entry) in entries {
                let item = Item {
                    affiliation: Some(affiliation),
                    jid: Some(jid.clone()),
                    nick: entry.nick.clone(),
                    reason: entry.reason.clone(),
                    ..Item::default()
                };
                answer.push_child(item.to_element(ns::MUC_ADMIN));
            }
        }
        (None, Some(role)) => {
            // §8.5: moderators see the roles.
            if actor.role != Role::Moderator {
                return Err(StanzaError::new(Condition::Forbidden));
            }
            for occupant in room.occupants.iter().filter(|o| o.role == role) {
                let entry = Item {
                    affiliation: Some(room.affiliation(&occupant.jid.to_bare())),
                    role: Some(role),
                    jid: Some(occupant.jid.to_string()),
                    nick: Some(occupant.nick.clone()),
                    ..Item::default()
                };
                answer.push_child(entry.to_element(ns::MUC_ADMIN));
            }
        }
        _ => return Err(bad_request("one of affiliation or role")),
    }
    Ok(answer)
}

/// The changes of a `muc#admin` set, in order, all or none: the first that is refused
/// stops the rest and leaves the room as it was (ejabberd's behaviour; a request answered
/// with an error must not have half happened, nor be stored so).
pub fn change(room: &mut Room, actor: &Actor, query: &Element) -> Result<Out, StanzaError> {
    let items = items(query)?;
    if items.is_empty() {
        return Err(bad_request("no item"));
    }
    // Worked on a copy only when a later item could still be refused.
    let mut next = (items.len() > 1).then(|| room.clone());
    let target = next.as_mut().unwrap_or(room);
    let mut out = Out::new();
    for item in items {
        match (item.role, item.affiliation) {
            (Some(role), None) => change_role(target, actor, &item, role, &mut out)?,
            (None, Some(affiliation)) => {
                change_affiliation(target, actor, &item, affiliation, &mut out)?
            }
            _ => return Err(bad_request("an item changes one role or one affiliation")),
        }
    }
    if let Some(next) = next {
        *room = next;
    }
    Ok(out)
}

/// §8.2 kick (role none), §8.3/§8.4 voice (participant/visitor), §9.6/§9.7 moderator.
pub(super) fn change_role(
    room: &mut Room,
    actor: &Actor,
    item: &Item,
    role: Role,
    out: &mut Out,
) -> Result<(), StanzaError> {
    let nick = item
        .nick
        .as_deref()
        .ok_or_else(|| bad_request("a role change names a nick"))?;
    // §8.2: only moderators change roles.
    if actor.role != Role::Moderator {
        return Err(StanzaError::new(Condition::Forbidden));
    }
    let index = room
        .by_nick(nick)
        .ok_or_else(|| StanzaError::new(Condition::ItemNotFound))?;
    let target = &room.occupants[index];
    let target_affiliation = room.affiliation(&target.jid.to_bare());
    // §9.6, §9.7: granting or revoking moderator is for admins and owners.
    if (role == Role::Moderator || target.role == Role::Moderator)
        && actor.affiliation < Affiliation::Admin
    {
        return Err(StanzaError::new(Condition::NotAllowed));
    }
    // §8.2, §8.4: an admin's or owner's role is not a moderator's to lower.
    if role < Role::Moderator && target_affiliation >= Affiliation::Admin {
        return Err(StanzaError::new(Condition::NotAllowed));
    }
    let notice = Notice {
        actor: actor.nick.as_deref(),
        reason: item.reason.as_deref(),
        ..Notice::default()
    };
    if role == Role::None {
        // §8.2: kicked, status 307.
        let kicked = Notice {
            codes: &[status::KICKED],
            ..notice
        };
        room.occupants[index].payload.clear();
        room.remove(index, &kicked, out);
        return Ok(());
    }
    room.occupants[index].role = role;
    let occupant = room.occupants[index].clone();
    room.broadcast_presence(&occupant, &notice, out);
    Ok(())
}

/// The bare JID an affiliation change is about: its `jid`, or the occupant at its `nick`.
fn subject_of(room: &Room, item: &Item) -> Result<BareJid, StanzaError> {
    if let Some(jid) = &item.jid {
        let jid = Jid::new(jid).map_err(|_| StanzaError::new(Condition::JidMalformed))?;
        return Ok(jid.to_bare());
    }
    let nick = item
        .nick
        .as_deref()
        .ok_or_else(|| bad_request("an affiliation change names a jid or a nick"))?;
    room.by_nick(nick)
        .map(|i| room.occupants[i].jid.to_bare())
        .ok_or_else(|| StanzaError::new(Condition::ItemNotFound))
}

/// §9.1 ban, §9.3/§9.4 membership, §10.3-10.8 owners and admins.
fn change_affiliation(
    room: &mut Room,
    actor: &Actor,
    item: &Item,
    affiliation: Affiliation,
    out: &mut Out,
) -> Result<(), StanzaError> {
    // §9: admins and owners change affiliations.
    if actor.affiliation < Affiliation::Admin {
        return Err(StanzaError::new(Condition::Forbidden));
    }
    let jid = subject_of(room, item)?;
    let current = room.affiliation(&jid);
    // §9.1, §10.3-10.8: only owners touch owners and admins.
    if (current >= Affiliation::Admin || affiliation >= Affiliation::Admin)
        && actor.affiliation != Affiliation::Owner
    {
        return Err(StanzaError::new(Condition::NotAllowed));
    }
    // §10.8: a room keeps at least one owner.
    let owners = room
        .affiliations
        .values()
        .filter(|a| a.affiliation == Affiliation::Owner)
        .count();
    if current == Affiliation::Owner && affiliation != Affiliation::Owner && owners == 1 {
        return Err(StanzaError::with_text(
            Condition::Conflict,
            "the room's only owner",
        ));
    }
    // §9.3: an item naming the user by `jid` may carry the nick reserved for them; one
    // naming an occupant by `nick` only names them. A change without a nick keeps the one
    // reserved before; the reason is the latest change's.
    let nick = match (&item.jid, &item.nick) {
        (Some(_), Some(nick)) => Some(reservable_nick(room, &jid, nick)?),
        _ => room.reserved_nick(&jid).map(str::to_owned),
    };
    let entry = Affiliated {
        affiliation,
        nick,
        reason: item.reason.clone(),
    };
    affiliate(room, &jid, entry, out);
    Ok(())
}

/// `nick` in its normal form (a room JID's resource, as occupants' nicks are), if `jid`
/// may reserve it: §7.10, it is neither reserved by nor in use by another user.
pub(super) fn reservable_nick(
    room: &Room,
    jid: &BareJid,
    nick: &str,
) -> Result<String, StanzaError> {
    let nick = parse_resource(nick)
        .map_err(|_| StanzaError::with_text(Condition::NotAcceptable, "not a valid nickname"))?;
    let in_use = room
        .by_nick(&nick)
        .is_some_and(|i| room.occupants[i].jid.to_bare() != *jid);
    if in_use || !room.may_use_nick(&nick, jid) {
        return Err(StanzaError::with_text(
            Condition::Conflict,
            "the nickname is another user's",
        ));
    }
    Ok(nick)
}

/// Gives `jid` its new affiliation `entry`, and every occupant of that user's the role
/// it brings: removed if it keeps them out (§9.1 banned, §9.4 no longer a member of a
/// members-only room), else their presence with the new item to everyone (§9.3, §7.10).
pub(super) fn affiliate(room: &mut Room, jid: &BareJid, entry: Affiliated, out: &mut Out) {
    let affiliation = entry.affiliation;
    let reason = entry.reason.clone();
    room.set_affiliated(jid.as_str(), entry);
    let notice = Notice {
        actor: None,
        reason: reason.as_deref(),
        ..Notice::default()
    };
    // Every session of that user in the room sees the change.
    while let Some(index) = room
        .occupants
        .iter()
        .position(|o| o.jid.to_bare() == *jid && needs_removal(room, affiliation))
    {
        let code = if affiliation == Affiliation::Outcast {
            // §9.1: banned, status 301.
            status::BANNED
        } else {
            // §9.4: no longer a member of a members-only room, status 321.
            status::REMOVED_AFFILIATION
        };
        let removed = Notice {
            codes: &[code],
            ..notice
        };
        room.occupants[index].payload.clear();
        room.remove(index, &removed, out);
    }
    let role = room.default_role(affiliation);
    for index in 0..room.occupants.len() {
        if room.occupants[index].jid.to_bare() != *jid {
            continue;
        }
        room.occupants[index].role = role;
        let occupant = room.occupants[index].clone();
        room.broadcast_presence(&occupant, &notice, out);
    }
}

fn needs_removal(room: &Room, affiliation: Affiliation) -> bool {
    affiliation == Affiliation::Outcast
        || (room.settings.members_only && affiliation < Affiliation::Member)
}
