//! Mediated invitations (XEP-0045 §7.8.2): an occupant asks the room to invite someone, the
//! room sends the invitation on the occupant's behalf, and a decline from the invitee goes
//! back through the room to the inviter.
//!
//! **Design:** the room remembers the invitations it sent (the last [`PENDING`]), and passes
//! on a decline only to someone who invited the decliner: the room is not a relay that sends
//! anyone a message from its own address on a stranger's word. (Prosody forwards a decline
//! to whatever JID it names.)

use jabberwock_protocol::jid::{FullJid, Jid};
use jabberwock_protocol::muc::{Affiliation, Invitation, InvitationKind};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::xml::Element;

use super::presence::has_voice;
use super::room::{Out, Room};

/// How many sent invitations a room remembers for declines; the oldest go first.
const PENDING: usize = 64;

/// An invitation the room sent: to whom (bare JID), on whose behalf (as the inviter sent it).
#[derive(Clone, Debug)]
pub struct Pending {
    invitee: String,
    inviter: FullJid,
}

/// A message to the room's bare JID carrying a `muc#user` `<x/>`: its invitations, or else
/// its decline (one is all §7.8.2 has an invitee send).
pub fn receive(
    room: &mut Room,
    from: &FullJid,
    message: &Element,
    x: &Element,
) -> Result<Out, StanzaError> {
    let all = Invitation::all(x);
    let (invites, declines): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|i| i.kind == InvitationKind::Invite);
    if !invites.is_empty() {
        return invite(room, from, message, &invites);
    }
    match declines.first() {
        Some(decline) => decline_invitation(room, from, message, decline),
        None => Err(StanzaError::with_text(
            Condition::BadRequest,
            "a muc#user payload to a room is an invitation or a decline",
        )),
    }
}

/// The message the room sends on, from itself, keeping the sender's id (so answers and
/// errors can be matched, as §7.8.2's examples keep it).
fn from_room(room: &Room, to: &str, original: &Element) -> Element {
    let mut message = Element::new("message", ns::CLIENT)
        .with_attr("from", room.jid.as_str())
        .with_attr("to", to);
    if let Some(id) = original.attr("id") {
        message.set_attr("id", id);
    }
    message
}

/// A plain-text line for clients that know no invitations, as Prosody adds.
fn body(text: String, reason: Option<&str>) -> Element {
    let text = match reason.filter(|r| !r.is_empty()) {
        Some(reason) => format!("{text} ({reason})"),
        None => text,
    };
    Element::new("body", ns::CLIENT).with_text(text)
}

/// §7.8.2: an occupant invites one or more users.
fn invite(
    room: &mut Room,
    from: &FullJid,
    message: &Element,
    invites: &[Invitation],
) -> Result<Out, StanzaError> {
    // §7.8.2: invitations come from occupants.
    let Some(index) = room.by_jid(from) else {
        return Err(StanzaError::with_text(
            Condition::NotAcceptable,
            "only occupants may invite",
        ));
    };
    // A visitor in a moderated room has no voice, and no invitations either (as in
    // Prosody, which wants a role above visitor).
    if !has_voice(room.occupants[index].role) {
        return Err(StanzaError::with_text(
            Condition::Forbidden,
            "visitors may not invite",
        ));
    }
    let affiliation = room.affiliation(&from.to_bare());
    // §7.8.2: in a members-only room invitations SHOULD be for admins (forbidden
    // otherwise); §10.2's allowinvites lets members invite too.
    if room.settings.members_only {
        let least = if room.settings.allow_invites {
            Affiliation::Member
        } else {
            Affiliation::Admin
        };
        if affiliation < least {
            return Err(StanzaError::with_text(
                Condition::Forbidden,
                "only admins and owners may invite to this room",
            ));
        }
    }
    // Every invitee is checked before any invitation leaves.
    let invitees = invites
        .iter()
        .map(|invite| {
            let to = invite.to.as_deref().ok_or_else(|| {
                StanzaError::with_text(Condition::BadRequest, "an invitation names its invitee")
            })?;
            Jid::new(to).map_err(|_| StanzaError::new(Condition::JidMalformed))
        })
        .collect::<Result<Vec<Jid>, StanzaError>>()?;
    let mut out = Out::new();
    for (invitee, invite) in invitees.iter().zip(invites) {
        let bare = invitee.to_bare();
        // §7.8.2: a members-only room MAY add the invitee to the member list. As Prosody
        // does, only when the inviter may change the member list (admins and owners, §9.3):
        // a member's invitation leaves the list alone. Unlike Prosody, an invitation never
        // lifts a ban: only users without an affiliation become members.
        if room.settings.members_only
            && affiliation >= Affiliation::Admin
            && room.affiliation(&bare) == Affiliation::None
        {
            room.set_affiliation(bare.as_str(), Affiliation::Member);
        }
        // §7.8.2: from the room, naming the inviter's real JID, with the reason given and,
        // for a password-protected room, the password.
        let mut x = Element::new("x", ns::MUC_USER).with_child(
            Invitation {
                from: Some(from.to_string()),
                reason: invite.reason.clone(),
                // §7.9: a one-to-one chat carried on in the room, its thread named.
                continues: invite.continues.clone(),
                ..Invitation::new(InvitationKind::Invite)
            }
            .to_element(),
        );
        if let Some(password) = &room.settings.password {
            x.push_child(Element::new("password", ns::MUC_USER).with_text(password.as_str()));
        }
        let text = format!("{from} invited you to the room {}", room.jid);
        let sent = from_room(room, invitee.as_str(), message)
            .with_child(x)
            .with_child(body(text, invite.reason.as_deref()));
        out.push(sent);
        if room.invitations.len() == PENDING {
            room.invitations.pop_front();
        }
        room.invitations.push_back(Pending {
            invitee: bare.to_string(),
            inviter: from.clone(),
        });
    }
    Ok(out)
}

/// §7.8.2: the invitee declines; the room tells the inviter, naming the invitee's bare JID.
fn decline_invitation(
    room: &mut Room,
    from: &FullJid,
    message: &Element,
    decline: &Invitation,
) -> Result<Out, StanzaError> {
    let invitee = from.to_bare();
    // The decline's `to` names the inviter, bare or full (§7.8.2's example names the bare
    // JID of a full-JID inviter); without one, the latest invitation is declined.
    let to = decline
        .to
        .as_deref()
        .map(Jid::new)
        .transpose()
        .map_err(|_| StanzaError::new(Condition::JidMalformed))?;
    let matches = |pending: &Pending| {
        pending.invitee == invitee.as_str()
            && to.as_ref().is_none_or(|to| match to.try_as_full() {
                Ok(full) => &pending.inviter == full,
                Err(_) => pending.inviter.to_bare() == to.to_bare(),
            })
    };
    let Some(position) = room.invitations.iter().rposition(matches) else {
        return Err(StanzaError::with_text(
            Condition::ItemNotFound,
            "no invitation from this room to decline",
        ));
    };
    let Some(pending) = room.invitations.remove(position) else {
        return Ok(Out::new());
    };
    // One decline answers every invitation that inviter sent this invitee.
    room.invitations
        .retain(|p| !(p.invitee == pending.invitee && p.inviter == pending.inviter));
    let x = Element::new("x", ns::MUC_USER).with_child(
        Invitation {
            from: Some(invitee.to_string()),
            reason: decline.reason.clone(),
            ..Invitation::new(InvitationKind::Decline)
        }
        .to_element(),
    );
    let text = format!(
        "{invitee} declined your invitation to the room {}",
        room.jid
    );
    Ok(vec![from_room(room, pending.inviter.as_str(), message)
        .with_child(x)
        .with_child(body(text, decline.reason.as_deref()))]
    .into())
}
