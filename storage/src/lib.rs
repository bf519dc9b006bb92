//! Persistence for Jabberwock.
//!
//! This crate is the only one that speaks SQL. It knows tables, not XMPP:
//! it stores and returns strings and bytes (for example SCRAM keys that the
//! server computed) and never sees a password or a session.
//!
//! Layout:
//! - `error.rs`: [`StoreError`], the single error type.
//! - `account.rs`: [`AccountId`], [`ScramCredential`], [`ScramHash`] and the
//!   [`AccountStore`] trait.
//! - `roster.rs`: [`RosterEntry`], [`Subscription`] and the [`RosterStore`]
//!   trait (RFC 6121 rosters and subscription state), and the one implementation of
//!   its read-modify-write of an entry ([`RosterUpdate`]) for both backends.
//! - `offline.rs`: [`OfflineMessage`] and the [`OfflineStore`] trait
//!   (XEP-0160).
//! - `private.rs`: the [`PrivateStore`] trait (XEP-0049 private XML storage);
//!   `vcard.rs`: [`StoredVcard`] and the [`VcardStore`] trait (XEP-0054 vCards,
//!   XEP-0153 photo hashes); `blocking.rs`: the [`BlockingStore`] trait (XEP-0191
//!   blocklists); `last_activity.rs`: the [`LastActivityStore`] trait (XEP-0012);
//!   `guest.rs`: the [`GuestStore`] trait (guest accounts tagged with their node);
//!   `muc.rs`: [`StoredRoom`] and the [`MucStore`] trait (XEP-0045 persistent rooms);
//!   `archive.rs`: [`NewArchived`], [`ArchiveQuery`] and the [`ArchiveStore`] trait
//!   (XEP-0313 message archives, appended in batches).
//!   `pubsub.rs`: [`StoredNode`], [`StoredItem`] and the [`PubsubStore`] trait (XEP-0060
//!   nodes and items, keyed by service: an account's bare JID for XEP-0163 PEP).
//!   `upload.rs`: [`UploadSlot`] and the [`UploadStore`] trait (XEP-0363 upload slots and
//!   the files they became: owner, size, expiry; quotas count complete files only).
//!   `motd.rs`: the [`MotdStore`] trait (XEP-0133's message of the day, per domain).
//!   Each file also holds its statements and, through a macro, its one
//!   implementation for both backends.
//! - `sqlite.rs`: [`SqliteStore`], the default backend; `sqlite_readers.rs`: the
//!   connections it keeps aside for the reads on the login path; `sqlite_files.rs`: its
//!   files' modes and the lock around creating and migrating them.
//! - `postgres.rs`: [`PostgresStore`], for deployments that already run
//!   PostgreSQL.
//! - `common.rs`: statements and row mapping shared by both backends: `Sql`, a
//!   statement written once with the dialects' differences as data.
//! - `migrations/sqlite/`, `migrations/postgres/`: the schema per dialect,
//!   embedded at compile time and applied by [`open`].
//!
//! The server holds an `Arc<dyn Store>` from [`open`], so backends can be
//! added without the server naming them.
#![forbid(unsafe_code)]

mod account;
mod archive;
mod blocking;
mod common;
mod error;
mod guest;
mod last_activity;
mod motd;
mod muc;
mod offline;
mod postgres;
mod private;
mod pubsub;
mod roster;
mod sqlite;
mod sqlite_files;
mod sqlite_readers;
mod sqlite_writer;
mod upload;
mod vcard;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use account::{AccountId, AccountStore, ScramCredential, ScramHash};
pub use archive::{ArchiveOwner, ArchiveQuery, ArchiveStore, ArchivedMessage, NewArchived};
pub use blocking::BlockingStore;
pub use error::StoreError;
pub use guest::GuestStore;
pub use last_activity::LastActivityStore;
pub use motd::MotdStore;
pub use muc::{AffiliationChange, MucStore, StoredAffiliation, StoredRoom, StoredSubject};
pub use offline::{OfflineMessage, OfflineStore};
pub use postgres::PostgresStore;
pub use private::PrivateStore;
pub use pubsub::{
    AffiliationCheck, Created, ItemsWanted, NodeItems, PublishCheck, PublishPlan, Published,
    PubsubService, PubsubStore, StoredItem, StoredNode, StoredSubscription, Subscribers,
};
pub use roster::{
    RosterEntry, RosterStore, RosterUpdate, RosterUpdateFn, RosterUpdated, Subscription,
};
pub use sqlite::SqliteStore;
pub use upload::{SlotGranted, UploadCompleted, UploadSlot, UploadStore};
pub use vcard::{StoredVcard, VcardStore};

/// Everything the server needs from persistence.
#[async_trait::async_trait]
pub trait Store:
    AccountStore
    + RosterStore
    + OfflineStore
    + PrivateStore
    + VcardStore
    + BlockingStore
    + LastActivityStore
    + GuestStore
    + MucStore
    + ArchiveStore
    + PubsubStore
    + UploadStore
    + MotdStore
{
    /// The account's roster entries for an available-presence broadcast, and whether offline
    /// messages may be waiting for it (XEP-0160: they are read only then). A login reads
    /// both; a backend that can answer them with one statement saves it a round trip. This
    /// default cannot tell, so it always says they may be waiting.
    async fn presence_roster(
        &self,
        id: &AccountId,
    ) -> Result<(Vec<RosterEntry>, bool), StoreError> {
        Ok((self.roster(id).await?.1, true))
    }

    /// Ends the store's use at a clean stop: waits for the statements in flight and closes
    /// every connection. SQLite then copies its WAL into the database file and removes it,
    /// so the file alone holds everything (a backup may copy just that file).
    async fn close(&self);
}

/// Opens (creating when missing) the database named by `url` and runs the embedded migrations.
///
/// `sqlite:PATH` / `sqlite://PATH` creates the parent directory (0700) and the file
/// (0600), one process at a time (a lock on `PATH.lock`), and sets WAL journal,
/// foreign keys on, a 5 s busy timeout and synchronous=NORMAL. `sqlite:///abs/path` names an absolute path;
/// `sqlite::memory:` a private in-memory database (tests only: it is gone
/// when the store is dropped). Query parameters are refused, since the store
/// fixes the connection settings itself.
///
/// `postgres://…` / `postgresql://…` connects to an existing PostgreSQL
/// database (see [`PostgresStore::open`]).
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(SqliteStore::open(url).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStore::open(url).await?));
    }
    Err(StoreError::UnsupportedUrl(url.to_owned()))
}
