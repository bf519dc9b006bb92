//! One occupant of a room (XEP-0045 §5.1): a nickname, the real full JIDs behind it (one
//! user's sessions sharing the nickname), a role, its XEP-0421 occupant id, and the presence
//! it last sent, which the room repeats to the others.

use ::sasl::common::scram::{ScramProvider, Sha256};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jabberwock_protocol::jid::{BareJid, FullJid};
use jabberwock_protocol::muc::Role;
use jabberwock_protocol::ns;
use jabberwock_protocol::xml::Element;

use super::room::Out;

use super::limits::{Bucket, Limits};

#[derive(Clone, Debug)]
pub struct Occupant {
    pub nick: String,
    /// The real JID of the session that entered first (or the oldest still here): what is
    /// for one session only (a relayed IQ) goes there, and moderators see it.
    pub jid: FullJid,
    /// The same user's other sessions under this nickname (§7.2: "already in the room from
    /// another resource with the same nickname"), in order of entry: they share the
    /// occupant, and get everything it gets.
    pub other_sessions: Vec<FullJid>,
    pub role: Role,
    /// XEP-0421: what the room calls this user in `<occupant-id/>` ([`occupant_id`]).
    pub id: String,
    /// The children of the occupant's last presence (show, status, priority, caps...),
    /// without the MUC payloads, which the room writes itself.
    pub payload: Vec<Element>,
    /// What the room's message rate still lets this occupant send (limits.rs).
    pub bucket: Bucket,
}

impl Occupant {
    pub fn new(
        nick: &str,
        jid: FullJid,
        role: Role,
        id: String,
        presence: &Element,
        limits: &Limits,
    ) -> Occupant {
        Occupant {
            nick: nick.to_owned(),
            jid,
            other_sessions: Vec::new(),
            role,
            id,
            payload: payload_of(presence),
            bucket: Bucket::full(limits),
        }
    }

    /// Takes a new presence of the occupant's as its own (§7.7: presence changes); with
    /// several sessions, the latest presence any of them sent is the occupant's.
    pub fn update(&mut self, presence: &Element) {
        self.payload = payload_of(presence);
    }

    /// Every session: the first, then the others in order of entry.
    pub fn sessions(&self) -> impl Iterator<Item = &FullJid> {
        std::iter::once(&self.jid).chain(&self.other_sessions)
    }

    pub fn has_session(&self, jid: &FullJid) -> bool {
        self.sessions().any(|s| s == jid)
    }

    /// Takes a session away, unless it is the last (the occupant itself leaves then); the
    /// oldest remaining session takes the first one's place. Whether one was taken.
    pub fn remove_session(&mut self, jid: &FullJid) -> bool {
        if self.other_sessions.is_empty() {
            return false;
        }
        if &self.jid == jid {
            self.jid = self.other_sessions.remove(0);
            return true;
        }
        let before = self.other_sessions.len();
        self.other_sessions.retain(|s| s != jid);
        self.other_sessions.len() < before
    }

    /// A copy of `stanza` to each session, in `out`.
    pub fn to_each_session(&self, stanza: &Element, out: &mut Out) {
        for session in self.sessions() {
            let mut copy = stanza.clone();
            copy.set_attr("to", session.as_str());
            out.push(copy);
        }
    }
}

/// What of a client's presence the room repeats: everything but the MUC elements, the
/// stanza's own error and any occupant id (XEP-0421 §4: the room writes its own).
fn payload_of(presence: &Element) -> Vec<Element> {
    presence
        .children()
        .filter(|c| {
            !(c.is("x", ns::MUC)
                || c.is("x", ns::MUC_USER)
                || c.is("error", ns::CLIENT)
                || c.is("occupant-id", ns::OCCUPANT_ID))
        })
        .cloned()
        .collect()
}

/// XEP-0421 §4: the occupant id of `real` in `room`: the same for every session of that user
/// in that room (stable across nickname changes, leaving and coming back), different in
/// another room, and not revealing the JID — HMAC-SHA-256 of both JIDs under the service's
/// secret, in base64. The secret is kept in `data_dir` (persist.rs), so ids outlive a
/// restart, as persistent rooms do.
pub fn occupant_id(secret: &[u8], room: &BareJid, real: &BareJid) -> String {
    let data = format!("{room}\0{real}");
    // HMAC takes keys of any length: this cannot fail.
    B64.encode(Sha256::hmac(data.as_bytes(), secret).unwrap_or_default())
}

/// XEP-0421 §4: `stanza` as the room sends it for the occupant with `id`: whatever
/// occupant ids the client put in are gone (the service MUST remove them), the room's is
/// added.
pub fn stamp(stanza: &mut Element, id: &str) {
    stanza.remove_child("occupant-id", ns::OCCUPANT_ID);
    stanza.push_child(Element::new("occupant-id", ns::OCCUPANT_ID).with_attr("id", id));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occupant_ids_are_per_room_and_user_and_hide_the_jid() {
        let bare = |s: &str| BareJid::new(s).unwrap();
        let (tea, den) = (bare("tea@muc.example"), bare("den@muc.example"));
        let (alice, bob) = (bare("alice@example"), bare("bob@example"));
        let id = occupant_id(b"secret", &tea, &alice);
        assert_eq!(id, occupant_id(b"secret", &tea, &alice));
        assert_eq!(id.len(), 44, "{id}");
        assert!(!id.contains("alice"), "{id}");
        for other in [
            occupant_id(b"secret", &den, &alice),
            occupant_id(b"secret", &tea, &bob),
            occupant_id(b"another", &tea, &alice),
        ] {
            assert_ne!(id, other);
        }
    }

    #[test]
    fn stamping_replaces_what_the_client_claimed() {
        let mut message = Element::new("message", ns::CLIENT)
            .with_child(Element::new("occupant-id", ns::OCCUPANT_ID).with_attr("id", "forged"))
            .with_child(Element::new("body", ns::CLIENT).with_text("hi"));
        stamp(&mut message, "real");
        let ids: Vec<_> = message
            .children()
            .filter(|c| c.is("occupant-id", ns::OCCUPANT_ID))
            .map(|c| c.attr("id"))
            .collect();
        assert_eq!(ids, [Some("real")]);
        assert!(message.get_child("body", ns::CLIENT).is_some());
    }
}
