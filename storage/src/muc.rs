//! Persistent Multi-User Chat rooms (XEP-0045): [`StoredRoom`], [`StoredAffiliation`],
//! [`AffiliationChange`], the [`MucStore`] trait, its statements, and its one implementation
//! for both backends.

use std::collections::HashMap;

use crate::common::{unix_now, Sql};
use crate::{PostgresStore, SqliteStore, StoreError};

/// One persistent room as the server keeps it between restarts. The configuration is the
/// server's own serialization (opaque here, see migration 0007 for why one column).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredRoom {
    /// The bare room JID, `room@service`.
    pub jid: String,
    /// The host whose service holds the room.
    pub host: String,
    pub config: String,
    pub subject: StoredSubject,
    /// Every affiliation other than none, sorted by JID (byte order) when read.
    pub affiliations: Vec<StoredAffiliation>,
}

/// The room's subject and who set it (nickname and XEP-0421 occupant id, if known).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredSubject {
    pub text: String,
    pub nick: Option<String>,
    pub occupant_id: Option<String>,
}

/// A bare JID's (or a domain's) affiliation with a room: `owner`, `admin`, `member` or
/// `outcast`, with the nickname and reason the change gave, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAffiliation {
    pub jid: String,
    pub affiliation: String,
    pub nick: Option<String>,
    pub reason: Option<String>,
}

/// One change to a room's affiliations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AffiliationChange {
    /// Added, or replaced the JID's earlier one.
    Set(StoredAffiliation),
    /// The JID's affiliation went back to none.
    Remove(String),
}

/// The persistent rooms of every host.
#[async_trait::async_trait]
pub trait MucStore: Send + Sync {
    /// Every room stored for `host`, sorted by JID (byte order), with its affiliations.
    async fn muc_rooms(&self, host: &str) -> Result<Vec<StoredRoom>, StoreError>;

    /// Stores `room`'s configuration and subject (creating the room when missing) and
    /// applies `changes` to its affiliations, in one transaction; `room.affiliations` is
    /// not read (only the changes are written, so a long member list is not rewritten for
    /// each change).
    async fn save_muc_room(
        &self,
        room: &StoredRoom,
        changes: &[AffiliationChange],
    ) -> Result<(), StoreError>;

    /// Removes the room and its affiliations; false if there was no such room.
    async fn delete_muc_room(&self, jid: &str) -> Result<bool, StoreError>;
}

static ROOMS: Sql = Sql::new(
    "SELECT jid, config, subject, subject_nick, subject_occupant_id FROM muc_rooms \
     WHERE host = ? ORDER BY jid",
);

static AFFILIATIONS: Sql = Sql::new(
    "SELECT f.room, f.jid, f.affiliation, f.nick, f.reason FROM muc_affiliations f \
     JOIN muc_rooms r ON r.jid = f.room WHERE r.host = ? ORDER BY f.room, f.jid",
);

static PUT_ROOM: Sql = Sql::new(
    "INSERT INTO muc_rooms \
     (jid, host, config, subject, subject_nick, subject_occupant_id, updated_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (jid) DO UPDATE SET host = excluded.host, config = excluded.config, \
     subject = excluded.subject, subject_nick = excluded.subject_nick, \
     subject_occupant_id = excluded.subject_occupant_id, updated_at = excluded.updated_at",
);

static PUT_AFFILIATION: Sql = Sql::new(
    "INSERT INTO muc_affiliations (room, jid, affiliation, nick, reason) VALUES (?, ?, ?, ?, ?) \
     ON CONFLICT (room, jid) DO UPDATE SET affiliation = excluded.affiliation, \
     nick = excluded.nick, reason = excluded.reason",
);

static REMOVE_AFFILIATION: Sql =
    Sql::new("DELETE FROM muc_affiliations WHERE room = ? AND jid = ?");

static DELETE_ROOM: Sql = Sql::new("DELETE FROM muc_rooms WHERE jid = ?");

/// A `muc_rooms` row as [`ROOMS`] reads it: jid, config, subject, its nick and occupant id.
type RoomRow = (String, String, String, Option<String>, Option<String>);

/// A `muc_affiliations` row as [`AFFILIATIONS`] reads it: room, jid, affiliation, nick,
/// reason.
type AffiliationRow = (String, String, String, Option<String>, Option<String>);

/// The rooms of one host with their affiliations, both read in JID order.
fn rooms_from_rows(
    host: &str,
    rooms: Vec<RoomRow>,
    affiliations: Vec<AffiliationRow>,
) -> Vec<StoredRoom> {
    let mut by_room: HashMap<String, Vec<StoredAffiliation>> = HashMap::new();
    for (room, jid, affiliation, nick, reason) in affiliations {
        by_room.entry(room).or_default().push(StoredAffiliation {
            jid,
            affiliation,
            nick,
            reason,
        });
    }
    rooms
        .into_iter()
        .map(|(jid, config, text, nick, occupant_id)| StoredRoom {
            affiliations: by_room.remove(&jid).unwrap_or_default(),
            jid,
            host: host.to_owned(),
            config,
            subject: StoredSubject {
                text,
                nick,
                occupant_id,
            },
        })
        .collect()
}

/// [`MucStore`] for a backend: `$dialect` names the statements' text (`sqlite` or
/// `postgres`); the store provides `reader()` and `begin_write()`.
macro_rules! muc_store {
    ($store:ty, $dialect:ident) => {
        #[async_trait::async_trait]
        impl MucStore for $store {
            async fn muc_rooms(&self, host: &str) -> Result<Vec<StoredRoom>, StoreError> {
                let mut conn = self.reader().await?;
                let rooms: Vec<RoomRow> = sqlx::query_as(ROOMS.$dialect())
                    .bind(host)
                    .fetch_all(&mut *conn)
                    .await?;
                let affiliations: Vec<AffiliationRow> = sqlx::query_as(AFFILIATIONS.$dialect())
                    .bind(host)
                    .fetch_all(&mut *conn)
                    .await?;
                Ok(rooms_from_rows(host, rooms, affiliations))
            }

            async fn save_muc_room(
                &self,
                room: &StoredRoom,
                changes: &[AffiliationChange],
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query(PUT_ROOM.$dialect())
                    .bind(&room.jid)
                    .bind(&room.host)
                    .bind(&room.config)
                    .bind(&room.subject.text)
                    .bind(&room.subject.nick)
                    .bind(&room.subject.occupant_id)
                    .bind(unix_now())
                    .execute(&mut *tx)
                    .await?;
                for change in changes {
                    match change {
                        AffiliationChange::Set(a) => {
                            sqlx::query(PUT_AFFILIATION.$dialect())
                                .bind(&room.jid)
                                .bind(&a.jid)
                                .bind(&a.affiliation)
                                .bind(&a.nick)
                                .bind(&a.reason)
                                .execute(&mut *tx)
                                .await?;
                        }
                        AffiliationChange::Remove(jid) => {
                            sqlx::query(REMOVE_AFFILIATION.$dialect())
                                .bind(&room.jid)
                                .bind(jid)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn delete_muc_room(&self, jid: &str) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                // The affiliations go with it (ON DELETE CASCADE).
                let done = sqlx::query(DELETE_ROOM.$dialect())
                    .bind(jid)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}

muc_store!(SqliteStore, sqlite);
muc_store!(PostgresStore, postgres);
