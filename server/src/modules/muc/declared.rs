//! Rooms the admin declares in `[[modules.muc.rooms]]`: a website's rooms, there from the
//! start (persistent, open without an owner's form, listed if public, with their subject),
//! with the site's staff as owners and admins. On every start the config wins for what it
//! declares; what it leaves out keeps the room's own value.

use std::collections::HashSet;
use std::fmt;

use jabberwock_protocol::jid::{parse_bare, BareJid};
use jabberwock_protocol::muc::Affiliation;
use serde::{Deserialize, Deserializer};

use super::limits::Limits;
use super::room::{Room, Subject};
use super::settings::Whois;
use super::{lock, MucConfig, Rooms};
use crate::modules::config::TableError;

/// One `[[modules.muc.rooms]]` table. Options left out keep the room's value (for a new
/// room, the defaults of `settings.rs`, except that a declared room is persistent).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredRoom {
    /// The room's localpart (the room on every host's service) or its bare JID
    /// (`lobby@conference.example.com`: on that host's service only).
    pub jid: RoomAddress,
    pub name: Option<String>,
    pub description: Option<String>,
    /// The subject entrants get (§7.2.15).
    pub subject: Option<String>,
    /// Listed in the service's disco#items (§6.2).
    pub public: Option<bool>,
    pub members_only: Option<bool>,
    pub moderated: Option<bool>,
    /// The room secret (§7.2.6); an empty string takes the protection off.
    pub password: Option<String>,
    /// Every occupant sees real JIDs (`muc#roomconfig_whois` = anyone, §7.2.4).
    pub non_anonymous: Option<bool>,
    /// Participants may change the subject (moderators always may).
    pub change_subject: Option<bool>,
    /// Members may invite to a members-only room (§7.8.2).
    pub allow_invites: Option<bool>,
    /// Messages are archived (XEP-0313 §6); else `[modules.muc] archive_by_default`.
    pub archive: Option<bool>,
    /// The site's staff: owners and admins are moderators whenever they are in the room
    /// (§5.1.2), and may kick and ban.
    #[serde(default)]
    pub owners: Vec<Account>,
    #[serde(default)]
    pub admins: Vec<Account>,
    /// May enter a members-only room (§9.3).
    #[serde(default)]
    pub members: Vec<Account>,
    /// Banned (§9.1).
    #[serde(default)]
    pub outcasts: Vec<Account>,
    /// This room's limits, each in place of the service's (`[modules.muc]`).
    pub max_occupants: Option<usize>,
    pub messages_per_second: Option<f64>,
    pub message_burst: Option<u32>,
    pub max_message_bytes: Option<usize>,
}

/// `jid` of a declared room: a localpart, or a room's bare JID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoomAddress {
    Node(String),
    Jid(BareJid),
}

impl fmt::Display for RoomAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomAddress::Node(node) => f.write_str(node),
            RoomAddress::Jid(jid) => write!(f, "{jid}"),
        }
    }
}

impl<'de> Deserialize<'de> for RoomAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RoomAddress, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_room(&text).map_err(serde::de::Error::custom)
    }
}

fn parse_room(text: &str) -> Result<RoomAddress, String> {
    if text.contains('@') || text.contains('/') {
        let jid = parse_bare(text).map_err(|e| format!("{text:?} is no room JID: {e}"))?;
        if jid.node().is_none() {
            return Err(format!("{text:?} is no room JID: it has no localpart"));
        }
        return Ok(RoomAddress::Jid(jid));
    }
    // A localpart is checked as the node of a JID (RFC 7622 §3.3), kept in its normal form.
    let jid = parse_bare(&format!("{text}@muc.check"))
        .map_err(|e| format!("{text:?} is no room localpart: {e}"))?;
    match jid.node() {
        Some(node) => Ok(RoomAddress::Node(node.to_string())),
        None => Err("a room needs a localpart".to_owned()),
    }
}

/// A bare account JID (an owner, an admin, a member).
#[derive(Debug, Clone)]
pub struct Account(pub BareJid);

impl<'de> Deserialize<'de> for Account {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Account, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_bare(&text)
            .map(Account)
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is no bare JID: {e}")))
    }
}

fn problem(index: usize, key: &str, message: String) -> TableError {
    TableError {
        path: vec![format!("rooms[{index}]"), key.to_owned()],
        message,
    }
}

/// What the config check cannot see in one table: a room JID on no service of a host the
/// module runs on, a room declared twice, limits that make no sense.
pub fn check(config: &MucConfig, hosts: &[String]) -> Result<(), TableError> {
    let mut seen = HashSet::new();
    for (index, declared) in config.rooms.iter().enumerate() {
        for jid in declared.jids(config, hosts) {
            if !seen.insert(jid.clone()) {
                return Err(problem(
                    index,
                    "jid",
                    format!("room {jid} is declared twice"),
                ));
            }
        }
        if let RoomAddress::Jid(jid) = &declared.jid {
            if !hosts
                .iter()
                .any(|h| config.domain_of(h) == jid.domain().as_str())
            {
                let domains: Vec<String> = hosts.iter().map(|h| config.domain_of(h)).collect();
                return Err(problem(
                    index,
                    "jid",
                    format!(
                        "{jid} is on no host's MUC service (they are: {})",
                        domains.join(", ")
                    ),
                ));
            }
        }
        if declared
            .messages_per_second
            .is_some_and(|r| !(r >= 0.0 && r.is_finite()))
        {
            return Err(problem(
                index,
                "messages_per_second",
                "must be 0 (no limit) or more".to_owned(),
            ));
        }
    }
    Ok(())
}

impl DeclaredRoom {
    /// The room JIDs this declaration makes on the hosts the module runs on.
    fn jids(&self, config: &MucConfig, hosts: &[String]) -> Vec<BareJid> {
        match &self.jid {
            RoomAddress::Jid(jid) => vec![jid.clone()],
            RoomAddress::Node(node) => hosts
                .iter()
                .filter_map(|h| BareJid::new(&format!("{node}@{}", config.domain_of(h))).ok())
                .collect(),
        }
    }

    /// The service's limits with this room's overrides.
    fn limits(&self, service: Limits) -> Limits {
        Limits {
            max_occupants: self.max_occupants.unwrap_or(service.max_occupants),
            messages_per_second: self
                .messages_per_second
                .unwrap_or(service.messages_per_second),
            message_burst: self.message_burst.unwrap_or(service.message_burst),
            max_message_bytes: self.max_message_bytes.unwrap_or(service.max_message_bytes),
        }
    }

    /// Makes `room` what this declaration says, leaving the rest as it is.
    fn apply(&self, room: &mut Room, service: Limits) {
        let settings = &mut room.settings;
        // A declared room is the site's: it outlives its occupants and is open from the
        // start (no §10.1.1 lock).
        settings.persistent = true;
        room.locked = false;
        let set = |slot: &mut String, value: &Option<String>| {
            if let Some(value) = value {
                slot.clone_from(value);
            }
        };
        set(&mut settings.name, &self.name);
        set(&mut settings.description, &self.description);
        let flags = [
            (&mut settings.public, self.public),
            (&mut settings.members_only, self.members_only),
            (&mut settings.moderated, self.moderated),
            (&mut settings.change_subject, self.change_subject),
            (&mut settings.allow_invites, self.allow_invites),
            (&mut settings.archiving, self.archive),
        ];
        for (slot, value) in flags {
            if let Some(value) = value {
                *slot = value;
            }
        }
        if let Some(password) = &self.password {
            settings.password = (!password.is_empty()).then(|| password.clone());
        }
        if let Some(non_anonymous) = self.non_anonymous {
            settings.whois = if non_anonymous {
                Whois::Anyone
            } else {
                Whois::Moderators
            };
        }
        if let Some(subject) = &self.subject {
            // Set by the room itself (§7.2.15: from the room's bare JID).
            room.subject = Subject {
                text: subject.clone(),
                nick: None,
                occupant_id: None,
            };
        }
        let affiliations = [
            (&self.outcasts, Affiliation::Outcast),
            (&self.members, Affiliation::Member),
            (&self.admins, Affiliation::Admin),
            (&self.owners, Affiliation::Owner),
        ];
        // In rising order, so someone listed twice gets the higher affiliation.
        for (accounts, affiliation) in affiliations {
            for Account(jid) in accounts {
                room.set_affiliation(jid.as_str(), affiliation);
            }
        }
        room.limits = self.limits(service);
    }
}

/// The limits of the room at `jid`: the service's, with its declaration's own over them.
pub fn limits_of(config: &MucConfig, jid: &BareJid) -> Limits {
    let service = config.limits();
    let declared = config.rooms.iter().find(|d| match &d.jid {
        RoomAddress::Jid(room) => room == jid,
        RoomAddress::Node(node) => jid.node().is_some_and(|n| n.as_str() == node),
    });
    declared.map_or(service, |d| d.limits(service))
}

/// Creates (or, when the room is already there, updates) every declared room on the
/// services of `hosts`.
/// Makes the rooms declared for `host` on its service at `domain` (over any that storage
/// kept: the config wins for what it says).
pub fn create(config: &MucConfig, host: &str, domain: &str, rooms: &Rooms) {
    let hosts = [host.to_owned()];
    for declared in &config.rooms {
        for jid in declared.jids(config, &hosts) {
            if jid.domain().as_str() != domain {
                continue;
            }
            let Some((slot, created)) = rooms.get(&jid, Some(config.history_length)) else {
                continue;
            };
            let room = &mut lock(&slot).room;
            if created {
                room.settings.archiving = config.archive_by_default;
            }
            declared.apply(room, config.limits());
            tracing::debug!(room = %jid, "declared room ready");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_addresses_are_a_localpart_or_a_bare_room_jid() {
        assert_eq!(parse_room("Lobby"), Ok(RoomAddress::Node("lobby".into())));
        assert!(matches!(
            parse_room("lobby@conference.example.com"),
            Ok(RoomAddress::Jid(j)) if j.as_str() == "lobby@conference.example.com"
        ));
        for bad in [
            "",
            "a b",
            "conference.example.com/x",
            "lobby@conference.example.com/nick",
            "@conference.example.com",
            "lob\"by",
        ] {
            assert!(parse_room(bad).is_err(), "{bad:?}");
        }
    }
}
