//! One room's state and the presence it sends about its occupants (XEP-0045 §5, §7.2.3).
//!
//! **Design:** a room is plain data behind one lock. Every handler (presence.rs, message.rs,
//! admin.rs, owner.rs) runs under that lock without awaiting anything and returns the stanzas
//! to send, which the service routes after the lock is released (mod.rs). What a later
//! increment stores for persistent rooms is `settings`, `affiliations` and `subject`; the
//! occupants, history and lock live only as long as the process.

use std::collections::{HashMap, VecDeque};

use jabberwock_protocol::jid::{BareJid, FullJid};
use jabberwock_protocol::muc::{status, Affiliation, Destroy, Item, Role, UserX};
use jabberwock_protocol::ns;
use jabberwock_protocol::xml::Element;

use super::history::History;
use super::invite::Pending;
use super::limits::Limits;
use super::occupant::{self, Occupant};
use super::relay::Relayed;
use super::settings::{Settings, Whois};

pub use super::out::Out;

/// The room's subject (§8.1) and the nickname and XEP-0421 occupant id of who set it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    pub text: String,
    pub nick: Option<String>,
    pub occupant_id: Option<String>,
}

/// An affiliation and what the change that gave it said (§9, §10: an item's `nick` and
/// `<reason/>`); the nick is the user's reserved nickname (§7.10, §7.12).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Affiliated {
    pub affiliation: Affiliation,
    pub nick: Option<String>,
    pub reason: Option<String>,
}

impl Affiliated {
    /// An affiliation with no nick or reason.
    pub fn new(affiliation: Affiliation) -> Affiliated {
        Affiliated {
            affiliation,
            nick: None,
            reason: None,
        }
    }
}

/// Cloned only by a change that storage must take first (persist.rs).
#[derive(Clone)]
pub struct Room {
    /// `room@service`.
    pub jid: BareJid,
    pub settings: Settings,
    /// Affiliations by bare JID (or domain); `none` is not kept.
    pub affiliations: HashMap<String, Affiliated>,
    pub subject: Subject,
    /// §10.1.1: a new room refuses entrants until its owner configures it.
    pub locked: bool,
    /// In order of entry.
    pub occupants: Vec<Occupant>,
    pub history: History,
    /// §10.9: destroyed; the service forgets it.
    pub destroyed: bool,
    /// §7.8.2: the invitations the room sent, which a decline may answer (invite.rs).
    pub invitations: VecDeque<Pending>,
    /// What the service's admin allows this room (limits.rs).
    pub limits: Limits,
    /// IQs between occupants waiting for their answer (relay.rs).
    pub relayed: Relayed,
}

/// What a presence about an occupant says besides the occupant's item.
#[derive(Clone, Copy, Default)]
pub struct Notice<'a> {
    pub unavailable: bool,
    /// Status codes for every recipient; 110 is added for the occupant itself.
    pub codes: &'a [u16],
    /// Status codes for the occupant itself only (100, 201, 210).
    pub self_codes: &'a [u16],
    /// The item's `nick`: the new nickname of a nickname change (§7.6).
    pub nick: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub destroy: Option<&'a Destroy>,
}

impl Room {
    pub fn new(jid: BareJid, history_length: usize) -> Room {
        Room {
            jid,
            settings: Settings::default(),
            affiliations: HashMap::new(),
            subject: Subject::default(),
            locked: false,
            occupants: Vec::new(),
            history: History::new(history_length),
            destroyed: false,
            invitations: VecDeque::new(),
            limits: Limits::default(),
            relayed: Relayed::default(),
        }
    }

    /// Nothing keeps the room once its last occupant is gone: not persistent, or never
    /// configured, or destroyed.
    pub fn is_gone(&self) -> bool {
        self.destroyed || (self.occupants.is_empty() && (!self.settings.persistent || self.locked))
    }

    /// The affiliation of a real JID: its bare JID's, else its domain's (§9.1: a ban may
    /// name a whole domain).
    pub fn affiliation(&self, jid: &BareJid) -> Affiliation {
        self.affiliations
            .get(jid.as_str())
            .or_else(|| self.affiliations.get(jid.domain().as_str()))
            .map_or(Affiliation::None, |a| a.affiliation)
    }

    /// Sets the affiliation of `jid`, keeping the nick and reason it had; `none` removes
    /// the entry with them.
    pub fn set_affiliation(&mut self, jid: &str, affiliation: Affiliation) {
        let entry = match self.affiliations.get(jid) {
            Some(kept) => Affiliated {
                affiliation,
                ..kept.clone()
            },
            None => Affiliated::new(affiliation),
        };
        self.set_affiliated(jid, entry);
    }

    /// Replaces the entry of `jid`; one of affiliation `none` removes it (a reserved nick
    /// goes with it).
    pub fn set_affiliated(&mut self, jid: &str, entry: Affiliated) {
        if entry.affiliation == Affiliation::None {
            self.affiliations.remove(jid);
        } else {
            self.affiliations.insert(jid.to_owned(), entry);
        }
    }

    /// The nickname `jid` reserved (§7.12), by its own entry (a domain's reserves none).
    pub fn reserved_nick(&self, jid: &BareJid) -> Option<&str> {
        self.affiliations.get(jid.as_str())?.nick.as_deref()
    }

    /// Whoever reserved `nick`, if anyone.
    pub fn reserved_by(&self, nick: &str) -> Option<&str> {
        self.affiliations
            .iter()
            .find(|(_, a)| a.nick.as_deref() == Some(nick))
            .map(|(jid, _)| jid.as_str())
    }

    /// §7.12: a nickname reserved by another user is theirs alone.
    pub fn may_use_nick(&self, nick: &str, jid: &BareJid) -> bool {
        self.reserved_by(nick)
            .is_none_or(|owner| owner == jid.as_str())
    }

    /// The role an occupant with this affiliation gets on entering (§5.1.2's defaults).
    pub fn default_role(&self, affiliation: Affiliation) -> Role {
        match affiliation {
            Affiliation::Owner | Affiliation::Admin => Role::Moderator,
            Affiliation::Member => Role::Participant,
            Affiliation::None if self.settings.moderated => Role::Visitor,
            Affiliation::None => Role::Participant,
            Affiliation::Outcast => Role::None,
        }
    }

    /// The occupant one of whose sessions is `jid`.
    pub fn by_jid(&self, jid: &FullJid) -> Option<usize> {
        self.occupants.iter().position(|o| o.has_session(jid))
    }

    pub fn by_nick(&self, nick: &str) -> Option<usize> {
        self.occupants.iter().position(|o| o.nick == nick)
    }

    /// `room@service/nick`.
    pub fn nick_jid(&self, nick: &str) -> String {
        format!("{}/{}", self.jid, nick)
    }

    /// §7.2.3, §7.2.4: real JIDs show to moderators, or to everyone in a non-anonymous room.
    fn shows_jids_to(&self, recipient: &Occupant) -> bool {
        self.settings.whois == Whois::Anyone || recipient.role == Role::Moderator
    }

    /// `occupant`'s presence as `recipient` gets it at its session `to` (§7.2.3): from the
    /// occupant's room JID, with its item (real JID only to those who may see it, and always
    /// to itself: the session's own) and the notice's status codes.
    pub fn presence_of(
        &self,
        occupant: &Occupant,
        recipient: &Occupant,
        to: &FullJid,
        notice: &Notice,
    ) -> Element {
        let is_self = occupant.jid == recipient.jid;
        let mut presence = Element::new("presence", ns::CLIENT)
            .with_attr("from", self.nick_jid(&occupant.nick))
            .with_attr("to", to.as_str());
        if notice.unavailable {
            presence.set_attr("type", "unavailable");
        }
        for child in &occupant.payload {
            presence.push_child(child.clone());
        }
        // XEP-0421 §4: every presence from an occupant carries its occupant id.
        occupant::stamp(&mut presence, &occupant.id);
        let item = Item {
            affiliation: Some(self.affiliation(&occupant.jid.to_bare())),
            role: Some(occupant.role),
            jid: if is_self {
                Some(to.to_string())
            } else {
                self.shows_jids_to(recipient)
                    .then(|| occupant.jid.to_string())
            },
            nick: notice.nick.map(str::to_owned),
            actor: notice.actor.map(str::to_owned),
            reason: notice.reason.map(str::to_owned),
        };
        let mut statuses = notice.codes.to_vec();
        if is_self {
            statuses.extend_from_slice(notice.self_codes);
            statuses.push(status::SELF_PRESENCE);
        }
        statuses.sort_unstable();
        statuses.dedup();
        let x = UserX {
            items: vec![item],
            statuses,
            destroy: notice.destroy.cloned(),
        };
        presence.with_child(x.to_element())
    }

    /// `occupant`'s presence to every occupant's every session, the occupant's own sessions
    /// last (§7.2.3: the entrant's own presence ends the others'). The occupant may already
    /// have left the list (it still gets its own). The others get one of two presences (with
    /// the real JID or without), each shared by all the sessions that get it.
    pub fn broadcast_presence(&self, occupant: &Occupant, notice: &Notice, out: &mut Out) {
        let (seeing, blind): (Vec<&Occupant>, Vec<&Occupant>) = self
            .occupants
            .iter()
            .filter(|r| r.jid != occupant.jid)
            .partition(|r| self.shows_jids_to(r));
        for group in [seeing, blind] {
            if let Some(first) = group.first() {
                let presence = self.presence_of(occupant, first, &first.jid, notice);
                let sessions = group.iter().flat_map(|r| r.sessions().cloned()).collect();
                out.push_to_each(presence, sessions);
            }
        }
        for to in occupant.sessions() {
            out.push(self.presence_of(occupant, occupant, to, notice));
        }
    }

    /// Removes the occupant at `index` and tells everyone, with `codes` (307 kicked, 301
    /// banned, 321/322 removed, 333 gone on error; none for leaving).
    pub fn remove(&mut self, index: usize, notice: &Notice, out: &mut Out) {
        let mut gone = self.occupants.remove(index);
        gone.role = Role::None;
        let notice = Notice {
            unavailable: true,
            ..*notice
        };
        self.broadcast_presence(&gone, &notice, out);
    }

    /// Every occupant out (role none, presence payload dropped), each told by its own
    /// unavailable presence with `notice` (§10.9 a destroyed room; status 332 when the
    /// service stops serving the room's domain); the others are not told of each other,
    /// the room being gone for all of them.
    pub fn remove_everyone(&mut self, notice: &Notice) -> Out {
        let mut occupants = std::mem::take(&mut self.occupants);
        let mut out = Out::new();
        for occupant in &mut occupants {
            occupant.payload.clear();
            occupant.role = Role::None;
            for to in occupant.sessions() {
                out.push(self.presence_of(occupant, occupant, to, notice));
            }
        }
        out
    }

    /// A message from the room itself to every occupant (§10.2.1's configuration change
    /// notices), carrying status codes.
    pub fn notify(&self, codes: &[u16], out: &mut Out) {
        let x = UserX {
            statuses: codes.to_vec(),
            ..UserX::default()
        }
        .to_element();
        let notice = Element::new("message", ns::CLIENT)
            .with_attr("type", "groupchat")
            .with_attr("from", self.jid.as_str())
            .with_child(x);
        out.push_to_each(notice, self.session_jids());
    }

    /// Every occupant's every session, in order of entry: the recipients of what the room
    /// says to everyone.
    pub fn session_jids(&self) -> Vec<FullJid> {
        self.occupants
            .iter()
            .flat_map(|o| o.sessions().cloned())
            .collect()
    }
}
