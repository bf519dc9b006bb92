//! One occupant of a room (XEP-0045 §5.1): a nickname, the real full JID behind it, a role,
//! and the presence it last sent, which the room repeats to the others.

use jabberwock_protocol::jid::FullJid;
use jabberwock_protocol::muc::Role;
use jabberwock_protocol::ns;
use jabberwock_protocol::xml::Element;

#[derive(Clone, Debug)]
pub struct Occupant {
    pub nick: String,
    /// The real JID: everything for this occupant goes there.
    pub jid: FullJid,
    pub role: Role,
    /// The children of the occupant's last presence (show, status, priority, caps...),
    /// without the MUC payloads, which the room writes itself.
    pub payload: Vec<Element>,
}

impl Occupant {
    pub fn new(nick: &str, jid: FullJid, role: Role, presence: &Element) -> Occupant {
        Occupant {
            nick: nick.to_owned(),
            jid,
            role,
            payload: payload_of(presence),
        }
    }

    /// Takes a new presence of the occupant's as its own (§7.7: presence changes).
    pub fn update(&mut self, presence: &Element) {
        self.payload = payload_of(presence);
    }
}

/// What of a client's presence the room repeats: everything but the MUC elements and the
/// stanza's own error.
fn payload_of(presence: &Element) -> Vec<Element> {
    presence
        .children()
        .filter(|c| !(c.is("x", ns::MUC) || c.is("x", ns::MUC_USER) || c.is("error", ns::CLIENT)))
        .cloned()
        .collect()
}
