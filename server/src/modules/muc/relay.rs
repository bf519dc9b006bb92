//! IQs between occupants (XEP-0045's business rules for IQ): a request to an
//! occupant's room JID goes on to the occupant's real JID, from the sender's room JID, and the
//! answer comes back from the recipient's room JID; neither learns the other's real JID.
//!
//! **Design:** the room passes a request on under an id of its own and remembers it (at
//! most [`MAX_PENDING`] per room, each for [`TIMEOUT`]); an answer is taken only under an id
//! the room made and from the address the request went to, and goes back under the
//! sender's own id. So two occupants' requests with the same id are never confused, and
//! nobody answers in the recipient's name. (Prosody packs the sender into the id instead and
//! keeps nothing; the room's table is bounded, so it costs at most that.) A vCard request
//! goes to the recipient's account, as Prosody and ejabberd send it to the bare JID:
//! the server answers it for the account (mod.rs).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use jabberwock_protocol::jid::{BareJid, FullJid, Jid};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::xml::Element;

use super::room::{Out, Room};

/// Requests a room waits on for an answer at once; more are refused until some are
/// answered or forgotten.
pub const MAX_PENDING: usize = 128;

/// How long a request waits for its answer; one later goes nowhere (the sender's client
/// has given up on it by then).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The requests a room passed on, oldest first.
#[derive(Clone, Debug, Default)]
pub struct Relayed(VecDeque<Pending>);

#[derive(Clone, Debug)]
struct Pending {
    /// The id the room sent the request under.
    id: String,
    /// Who asked, and under which id.
    requester: FullJid,
    requester_id: String,
    /// The real JID the request went to: only it answers.
    sent_to: FullJid,
    /// The room JID the request was for: the answer comes from there.
    asked: String,
    sent: Instant,
}

impl Relayed {
    /// Forgets requests older than [`TIMEOUT`].
    fn expire(&mut self, now: Instant) {
        while self
            .0
            .front()
            .is_some_and(|p| now.duration_since(p.sent) >= TIMEOUT)
        {
            self.0.pop_front();
        }
    }
}

/// What becomes of a request to an occupant.
pub enum Relay {
    /// Passed on (or refused): the stanzas to send.
    Sent(Out),
    /// A vCard request: for the server to answer on this account's behalf, from the
    /// recipient's room JID to the sender, whose room JID is the first.
    Account { asker: FullJid, account: BareJid },
}

/// An IQ request (`get` or `set`) from `from` to the occupant `nick`.
pub fn request(
    room: &mut Room,
    from: &FullJid,
    nick: &str,
    iq: &Element,
    now: Instant,
) -> Result<Relay, StanzaError> {
    // Only occupants address occupants (Prosody and ejabberd: not-acceptable).
    let Some(sender) = room.by_jid(from) else {
        return Err(StanzaError::new(Condition::NotAcceptable));
    };
    let Some(recipient) = room.by_nick(nick) else {
        return Err(StanzaError::with_text(
            Condition::ItemNotFound,
            "no occupant has this nickname",
        ));
    };
    let payload = iq.children().next();
    // XEP-0410 §3.2: a self-ping asks the room whether the sender is still in it, which
    // the room knows: answered here, as the occupant's own client would (joined, no ping),
    // never relayed.
    if sender == recipient && payload.is_some_and(|p| p.is("ping", ns::PING)) {
        return Err(StanzaError::with_text(
            Condition::FeatureNotImplemented,
            "you are in the room (the room answers self-pings)",
        ));
    }
    let asker = room.nick_jid(&room.occupants[sender].nick);
    let Ok(asker) = FullJid::new(&asker) else {
        return Err(StanzaError::new(Condition::InternalServerError));
    };
    if payload.is_some_and(|p| p.is("vCard", ns::VCARD)) {
        return Ok(Relay::Account {
            asker,
            account: room.occupants[recipient].jid.to_bare(),
        });
    }
    let relayed = &mut room.relayed;
    relayed.expire(now);
    if relayed.0.len() >= MAX_PENDING {
        // Of type wait: answers or time free room.
        return Err(StanzaError::with_text(
            Condition::ResourceConstraint,
            "too many requests to occupants wait for an answer",
        ));
    }
    let sent_to = room.occupants[recipient].jid.clone();
    let id = fresh_id();
    let mut out = iq.clone();
    out.set_attr("from", asker.as_str());
    out.set_attr("to", sent_to.as_str());
    out.set_attr("id", id.as_str());
    room.relayed.0.push_back(Pending {
        id,
        requester: from.clone(),
        requester_id: iq.attr("id").unwrap_or_default().to_owned(),
        sent_to,
        asked: room.nick_jid(nick),
        sent: now,
    });
    Ok(Relay::Sent(vec![out].into()))
}

/// An IQ answer (`result` or `error`) from `from` to one of the room's JIDs: back to whoever
/// asked, if it answers a request the room passed on to `from`; nowhere otherwise.
pub fn answer(room: &mut Room, from: &Jid, iq: &Element, now: Instant) -> Out {
    room.relayed.expire(now);
    let Some(id) = iq.attr("id") else {
        return Out::new();
    };
    // The recipient's session answers, or its server does for it (an error for a
    // session that is gone).
    let answers = |p: &Pending| {
        p.id == id
            && match from.try_as_full() {
                Ok(full) => &p.sent_to == full,
                Err(bare) => p.sent_to.to_bare() == *bare,
            }
    };
    let Some(position) = room.relayed.0.iter().position(answers) else {
        return Out::new();
    };
    let Some(pending) = room.relayed.0.remove(position) else {
        return Out::new();
    };
    let mut out = iq.clone();
    out.set_attr("from", pending.asked.as_str());
    out.set_attr("to", pending.requester.as_str());
    out.set_attr("id", pending.requester_id.as_str());
    vec![out].into()
}

/// An id nobody can guess, so none can be answered ahead of the request.
fn fresh_id() -> String {
    format!("muc-{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::muc::limits::Limits;
    use crate::modules::muc::occupant::Occupant;
    use jabberwock_protocol::muc::Role;

    fn room_of(occupants: &[(&str, &str)]) -> Room {
        let mut room = Room::new(BareJid::new("tea@muc.example").unwrap(), 0);
        for (nick, jid) in occupants {
            room.occupants.push(Occupant::new(
                nick,
                FullJid::new(jid).unwrap(),
                Role::Participant,
                String::new(),
                &Element::new("presence", ns::CLIENT),
                &Limits::default(),
            ));
        }
        room
    }

    fn iq(id: &str, payload: Element) -> Element {
        Element::new("iq", ns::CLIENT)
            .with_attr("type", "get")
            .with_attr("id", id)
            .with_child(payload)
    }

    fn version() -> Element {
        Element::new("query", ns::VERSION)
    }

    fn sent(relay: Result<Relay, StanzaError>) -> Element {
        match relay {
            Ok(Relay::Sent(out)) => out.into_elements().remove(0),
            _ => panic!("not relayed"),
        }
    }

    #[test]
    fn two_requests_with_one_id_come_back_to_their_senders() {
        let mut room = room_of(&[
            ("A", "a@example/1"),
            ("B", "b@example/1"),
            ("C", "c@example/1"),
        ]);
        let now = Instant::now();
        let a = FullJid::new("a@example/1").unwrap();
        let c = FullJid::new("c@example/1").unwrap();
        let from_a = sent(request(&mut room, &a, "B", &iq("same", version()), now));
        let from_c = sent(request(&mut room, &c, "B", &iq("same", version()), now));
        assert_eq!(from_a.attr("from"), Some("tea@muc.example/A"));
        assert_eq!(from_a.attr("to"), Some("b@example/1"));
        assert_ne!(from_a.attr("id"), from_c.attr("id"));
        let b = Jid::new("b@example/1").unwrap();
        let result = |sent: &Element| {
            Element::new("iq", ns::CLIENT)
                .with_attr("type", "result")
                .with_attr("id", sent.attr("id").unwrap())
        };
        // Answered in the other order, each reaches its own sender, from B's room JID.
        let to_c = answer(&mut room, &b, &result(&from_c), now).into_elements();
        assert_eq!(to_c[0].attr("to"), Some("c@example/1"));
        assert_eq!(to_c[0].attr("from"), Some("tea@muc.example/B"));
        assert_eq!(to_c[0].attr("id"), Some("same"));
        let to_a = answer(&mut room, &b, &result(&from_a), now).into_elements();
        assert_eq!(to_a[0].attr("to"), Some("a@example/1"));
        // Each answer is taken once.
        assert!(answer(&mut room, &b, &result(&from_a), now).is_empty());
    }

    #[test]
    fn only_the_recipient_answers_and_only_in_time() {
        let mut room = room_of(&[("A", "a@example/1"), ("B", "b@example/1")]);
        let now = Instant::now();
        let a = FullJid::new("a@example/1").unwrap();
        let sent = sent(request(&mut room, &a, "B", &iq("q", version()), now));
        let result = Element::new("iq", ns::CLIENT)
            .with_attr("type", "result")
            .with_attr("id", sent.attr("id").unwrap());
        // Someone else, even another session of the recipient's, answers nothing.
        for other in ["a@example/1", "b@example/2", "b@elsewhere"] {
            let other = Jid::new(other).unwrap();
            assert!(answer(&mut room, &other, &result, now).is_empty());
        }
        // Too late: forgotten.
        let b = Jid::new("b@example").unwrap();
        assert!(answer(&mut room, &b, &result, now + TIMEOUT).is_empty());
        assert!(room.relayed.0.is_empty());
    }

    #[test]
    fn the_table_is_bounded_and_frees_up_with_time() {
        let mut room = room_of(&[("A", "a@example/1"), ("B", "b@example/1")]);
        let now = Instant::now();
        let a = FullJid::new("a@example/1").unwrap();
        for n in 0..MAX_PENDING {
            sent(request(
                &mut room,
                &a,
                "B",
                &iq(&n.to_string(), version()),
                now,
            ));
        }
        let refused = request(&mut room, &a, "B", &iq("more", version()), now);
        assert!(
            matches!(&refused, Err(e) if e.condition == Condition::ResourceConstraint),
            "{:?}",
            refused.err()
        );
        sent(request(
            &mut room,
            &a,
            "B",
            &iq("later", version()),
            now + TIMEOUT,
        ));
        assert_eq!(room.relayed.0.len(), 1);
    }

    #[test]
    fn strangers_unknown_nicks_self_pings_and_vcards() {
        let mut room = room_of(&[("A", "a@example/1"), ("B", "b@example/1")]);
        let now = Instant::now();
        let a = FullJid::new("a@example/1").unwrap();
        let stranger = FullJid::new("z@example/1").unwrap();
        let condition = |r: Result<Relay, StanzaError>| match r {
            Err(e) => e.condition,
            Ok(_) => panic!("accepted"),
        };
        let ask = iq("q", version());
        assert_eq!(
            condition(request(&mut room, &stranger, "B", &ask, now)),
            Condition::NotAcceptable
        );
        assert_eq!(
            condition(request(&mut room, &a, "Nobody", &ask, now)),
            Condition::ItemNotFound
        );
        let ping = iq("p", Element::new("ping", ns::PING));
        assert_eq!(
            condition(request(&mut room, &a, "A", &ping, now)),
            Condition::FeatureNotImplemented
        );
        let vcard = iq("v", Element::new("vCard", ns::VCARD));
        match request(&mut room, &a, "B", &vcard, now) {
            Ok(Relay::Account { asker, account }) => {
                assert_eq!(asker.as_str(), "tea@muc.example/A");
                assert_eq!(account.as_str(), "b@example");
            }
            _ => panic!("a vCard request is the account's"),
        }
        assert!(room.relayed.0.is_empty());
    }
}
