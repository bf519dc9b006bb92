//! Persistent rooms (XEP-0045 §10.2 `muc#roomconfig_persistentroom`): what storage keeps of
//! a room (its settings, affiliations and subject), written before a change is acknowledged,
//! and the rooms loaded at start.
//!
//! **Design:** a stanza that may change what is kept ([`may_change`]) is handled on a copy
//! of the room under the room's lock; [`write_for`] compares the copy with the room and
//! says what storage must take. The lock is released for the write ([`apply`]); only once
//! it succeeded does the copy replace the room and what the stanza caused (the IQ result,
//! the broadcasts) go to the outbox; if it failed the room stays as it was and the sender
//! gets the error. The room's turn (`Slot::turn` in mod.rs) keeps other stanzas for it
//! waiting meanwhile, so they neither act on a state that may be refused nor get lost when
//! the copy replaces the room, and writes of one room reach storage in order. A room is
//! kept while it is persistent and configured (§10.1.1: a locked room is not yet); turning
//! it temporary or destroying it (§10.9) deletes it. Temporary rooms never touch storage.

use std::collections::HashMap;

use jabberwock_protocol::jid::BareJid;
use jabberwock_protocol::muc::Affiliation;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, Stanza, StanzaError, StanzaKind};
use jabberwock_storage::{AffiliationChange, StoredAffiliation, StoredRoom, StoredSubject};

use super::room::{Affiliated, Room, Subject};
use super::settings::Settings;
use crate::server::Server;

/// File, inside `data_dir`, of the key XEP-0421 occupant ids are made with: kept, so an
/// occupant's id in a persistent room is the same after a restart.
pub const OCCUPANT_ID_KEY_FILE: &str = "muc-occupant-id.key";

/// What storage must take before a change to a room is acknowledged.
pub enum Write {
    /// The room's settings and subject, and what changed in its affiliations (all of them
    /// when it was not kept before).
    Save {
        jid: String,
        settings: Settings,
        subject: Subject,
        changes: Vec<AffiliationChange>,
    },
    /// The room is no longer kept.
    Delete(String),
}

/// Whether `stanza` may change what storage keeps of a room: an IQ set (§10 configuration
/// and destruction, §9-10 affiliations), a subject change (§8.1), an invitation (§7.8.2:
/// it may make the invitee a member).
pub fn may_change(stanza: &Stanza) -> bool {
    let element = stanza.element();
    match stanza.kind() {
        StanzaKind::Iq => stanza.iq_type() == Some(IqType::Set),
        StanzaKind::Message => {
            element.get_child("subject", ns::CLIENT).is_some()
                || element.get_child("x", ns::MUC_USER).is_some()
        }
        StanzaKind::Presence => false,
    }
}

/// Storage keeps a room that is persistent, configured and not destroyed.
fn kept(room: &Room) -> bool {
    room.settings.persistent && !room.locked && !room.destroyed
}

/// What storage must take for the room to go from `before` to `after`, if anything.
pub fn write_for(before: &Room, after: &Room) -> Option<Write> {
    let was = kept(before);
    if !kept(after) {
        return was.then(|| Write::Delete(after.jid.to_string()));
    }
    let empty = HashMap::new();
    let base = if was { &before.affiliations } else { &empty };
    let changes = affiliation_changes(base, &after.affiliations);
    let same = was
        && changes.is_empty()
        && before.settings == after.settings
        && before.subject == after.subject;
    (!same).then(|| Write::Save {
        jid: after.jid.to_string(),
        settings: after.settings.clone(),
        subject: after.subject.clone(),
        changes,
    })
}

/// The changes from `before` to `after` (an affiliation, its nick or its reason), by JID
/// (byte order), so writes are repeatable.
fn affiliation_changes(
    before: &HashMap<String, Affiliated>,
    after: &HashMap<String, Affiliated>,
) -> Vec<AffiliationChange> {
    let mut set: Vec<(&String, &Affiliated)> = after
        .iter()
        .filter(|(jid, a)| before.get(*jid) != Some(a))
        .collect();
    set.sort_by_key(|(jid, _)| *jid);
    let mut removed: Vec<&String> = before.keys().filter(|j| !after.contains_key(*j)).collect();
    removed.sort();
    let set = set.into_iter().map(|(jid, entry)| {
        AffiliationChange::Set(StoredAffiliation {
            jid: jid.clone(),
            affiliation: entry.affiliation.as_str().to_owned(),
            nick: entry.nick.clone(),
            reason: entry.reason.clone(),
        })
    });
    set.chain(
        removed
            .into_iter()
            .map(|jid| AffiliationChange::Remove(jid.clone())),
    )
    .collect()
}

/// Writes `write`; a failure is the sender's error (storage failures become XMPP
/// conditions in `error.rs` only).
pub async fn apply(server: &Server, write: Write) -> Result<(), StanzaError> {
    let result = match write {
        Write::Delete(jid) => server.store.delete_muc_room(&jid).await.map(drop),
        Write::Save {
            jid,
            settings,
            subject,
            changes,
        } => {
            let config = serde_json::to_string(&settings).map_err(|e| {
                // Plain strings, numbers and flags: not expected to fail.
                tracing::error!(room = %jid, error = %e, "room configuration not serialized");
                StanzaError::new(Condition::InternalServerError)
            })?;
            let domain = jid.rsplit_once('@').map_or(jid.as_str(), |(_, d)| d);
            let host = server
                .modules
                .service(domain)
                .map_or_else(|| domain.to_owned(), |s| s.host.clone());
            let room = StoredRoom {
                host,
                config,
                subject: StoredSubject {
                    text: subject.text,
                    nick: subject.nick,
                    occupant_id: subject.occupant_id,
                },
                affiliations: Vec::new(),
                jid,
            };
            server.store.save_muc_room(&room, &changes).await
        }
    };
    result.map_err(crate::error::store_to_stanza_error)
}

/// Why a stored room could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a bare room JID")]
    Jid,
    #[error("configuration: {0}")]
    Config(#[from] serde_json::Error),
    #[error("affiliation of {jid}: {source}")]
    Affiliation {
        jid: String,
        source: jabberwock_protocol::muc::MucError,
    },
}

/// A stored room as the service holds it: configured (not locked), with no occupant and
/// no history. A room stored before archiving was a setting takes `archive_by_default`.
pub fn room_from(
    stored: StoredRoom,
    history_length: usize,
    archive_by_default: bool,
) -> Result<Room, LoadError> {
    let jid = BareJid::new(&stored.jid).map_err(|_| LoadError::Jid)?;
    if jid.node().is_none() || jid.as_str() != stored.jid {
        return Err(LoadError::Jid);
    }
    let mut room = Room::new(jid, history_length);
    let config: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&stored.config)?;
    let archiving_set = config.contains_key("archiving");
    room.settings = serde_json::from_value(serde_json::Value::Object(config))?;
    if !archiving_set {
        room.settings.archiving = archive_by_default;
    }
    // Whatever the stored text says, a room in storage is persistent.
    room.settings.persistent = true;
    for a in stored.affiliations {
        let affiliation =
            Affiliation::parse(&a.affiliation).map_err(|source| LoadError::Affiliation {
                jid: a.jid.clone(),
                source,
            })?;
        let entry = Affiliated {
            affiliation,
            nick: a.nick,
            reason: a.reason,
        };
        room.set_affiliated(&a.jid, entry);
    }
    room.subject = Subject {
        text: stored.subject.text,
        nick: stored.subject.nick,
        occupant_id: stored.subject.occupant_id,
    };
    Ok(room)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> Room {
        let mut room = Room::new(BareJid::new("den@muc.example").unwrap(), 5);
        room.set_affiliation("alice@example", Affiliation::Owner);
        room
    }

    #[test]
    fn only_kept_rooms_are_written_and_only_when_something_kept_changed() {
        let temporary = room();
        let mut next = temporary.clone();
        next.settings.name = "Den".into();
        assert!(
            write_for(&temporary, &next).is_none(),
            "temporary rooms stay out"
        );

        // Made persistent: saved whole, every affiliation with it.
        next.settings.persistent = true;
        let Some(Write::Save { changes, .. }) = write_for(&temporary, &next) else {
            panic!("a room made persistent is saved");
        };
        assert!(matches!(&changes[..], [AffiliationChange::Set(a)] if a.jid == "alice@example"));

        let kept = next;
        let mut next = kept.clone();
        assert!(write_for(&kept, &next).is_none(), "nothing changed");
        next.set_affiliation("bob@example", Affiliation::Member);
        next.set_affiliation("alice@example", Affiliation::None);
        let Some(Write::Save { changes, .. }) = write_for(&kept, &next) else {
            panic!("an affiliation change is saved");
        };
        assert_eq!(changes.len(), 2);
        assert!(matches!(&changes[1], AffiliationChange::Remove(j) if j == "alice@example"));

        // A nick or a reason alone is a change too, written with the entry.
        let mut next = kept.clone();
        next.set_affiliated(
            "alice@example",
            Affiliated {
                affiliation: Affiliation::Owner,
                nick: Some("Alice".into()),
                reason: Some("founder".into()),
            },
        );
        let Some(Write::Save { changes, .. }) = write_for(&kept, &next) else {
            panic!("a nick is saved");
        };
        assert!(matches!(&changes[..], [AffiliationChange::Set(a)]
            if a.nick.as_deref() == Some("Alice") && a.reason.as_deref() == Some("founder")));

        let mut next = kept.clone();
        next.subject.text = "Brillig".into();
        assert!(
            write_for(&kept, &next).is_some(),
            "a subject change is saved"
        );

        for end in [
            |r: &mut Room| r.settings.persistent = false,
            |r: &mut Room| r.destroyed = true,
        ] {
            let mut next = kept.clone();
            end(&mut next);
            assert!(
                matches!(write_for(&kept, &next), Some(Write::Delete(j)) if j == "den@muc.example")
            );
        }
    }

    #[test]
    fn a_stored_room_loads_configured_and_a_broken_one_is_refused() {
        let stored = StoredRoom {
            jid: "den@muc.example".into(),
            host: "example".into(),
            config: r#"{"name":"Den","members_only":true,"whois":"anyone","later_field":1}"#.into(),
            subject: StoredSubject {
                text: "Brillig".into(),
                nick: Some("alice".into()),
                occupant_id: None,
            },
            affiliations: vec![StoredAffiliation {
                jid: "bob@example".into(),
                affiliation: "member".into(),
                nick: Some("Bob".into()),
                reason: Some("a friend".into()),
            }],
        };
        let room = room_from(stored.clone(), 5, false).unwrap();
        assert!(!room.locked && room.occupants.is_empty());
        assert!(room.settings.persistent && room.settings.members_only);
        // Fields missing from the stored text keep their defaults.
        assert!(room.settings.public);
        // Stored before archiving was a setting: the service's default.
        assert!(!room.settings.archiving);
        let mut archived = stored.clone();
        archived.config = r#"{"archiving":true}"#.into();
        assert!(room_from(archived, 5, false).unwrap().settings.archiving);
        assert_eq!(room.settings.whois, super::super::settings::Whois::Anyone);
        assert_eq!(
            room.affiliation(&BareJid::new("bob@example").unwrap()),
            Affiliation::Member
        );
        assert_eq!(room.subject.text, "Brillig");
        let bob = &room.affiliations["bob@example"];
        assert_eq!(
            (bob.nick.as_deref(), bob.reason.as_deref()),
            (Some("Bob"), Some("a friend"))
        );

        let mut broken = stored.clone();
        broken.config = "{".into();
        assert!(matches!(
            room_from(broken, 5, true),
            Err(LoadError::Config(_))
        ));
        let mut broken = stored;
        broken.affiliations[0].affiliation = "ruler".into();
        assert!(matches!(
            room_from(broken, 5, true),
            Err(LoadError::Affiliation { .. })
        ));
    }
}
