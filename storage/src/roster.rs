//! Rosters (RFC 6121 §2–3): the types, the [`RosterStore`] trait, and the one
//! implementation of its read-modify-write of an entry for both backends.

use crate::common::{roster_from_rows, roster_query, version_from_db, RosterRow, Sql};
use crate::{AccountId, PostgresStore, SqliteStore, StoreError};

/// RFC 6121 §2.1.2.5 subscription attribute values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Subscription {
    #[default]
    None,
    To,
    From,
    Both,
}

impl Subscription {
    /// The attribute value, which is also the stored spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
        }
    }

    /// Inverse of [`Subscription::as_str`]; `None` for anything else
    /// (including `remove`, which is a request, not a state).
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Subscription::None),
            "to" => Some(Subscription::To),
            "from" => Some(Subscription::From),
            "both" => Some(Subscription::Both),
            _ => None,
        }
    }
}

/// One row per (account, contact): the roster item when `in_roster`, and the subscription
/// state with this contact either way (a pending inbound request can exist without an item).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RosterEntry {
    /// Bare JID, already normalised by the caller.
    pub contact: String,
    pub name: Option<String>,
    /// Order preserved as given, duplicates removed by the caller.
    pub groups: Vec<String>,
    pub subscription: Subscription,
    /// We asked the contact (ask="subscribe").
    pub pending_out: bool,
    /// The contact asked us and we haven't answered.
    pub pending_in: bool,
    /// Pre-approval (RFC 6121 §3.4).
    pub approved: bool,
    /// Visible in roster get / pushes.
    pub in_roster: bool,
    /// The serialized inbound subscribe, re-delivered at next login.
    pub pending_in_stanza: Option<String>,
}

/// What [`RosterStore::update_roster_entry`] is told to do, having seen the stored entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RosterUpdate {
    /// Leave the entry, and the roster version, as they are.
    Keep,
    /// Store this entry (under the contact that was read) and bump the roster version.
    Put(RosterEntry),
    /// As `Put`, unless it adds an item to a roster that holds `max_items` items already
    /// (RFC 6121 §2.3.3): an entry that was an item already may always change.
    PutWithin { entry: RosterEntry, max_items: u64 },
}

/// What [`RosterStore::update_roster_entry`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RosterUpdated {
    /// Nothing was written.
    Kept,
    /// The entry was written; the roster's new version.
    Stored(u64),
    /// `PutWithin` found the roster full; nothing was written.
    Full,
}

/// The read-modify-write callback: sees the stored entry (None: none yet) and decides.
pub type RosterUpdateFn<'a> = dyn FnMut(Option<RosterEntry>) -> RosterUpdate + Send + 'a;

/// Roster entries and the per-account roster version.
///
/// Every method is keyed by the account: there is no way to read or change
/// another account's entries through it. Reads of a missing account see an
/// empty roster at version 0.
#[async_trait::async_trait]
pub trait RosterStore: Send + Sync {
    /// Every entry of the account (roster items and pending-only entries) and the roster version.
    /// One query path suited to a login. An account without entries has version 0.
    /// Entries are sorted by contact (byte order).
    async fn roster(&self, id: &AccountId) -> Result<(u64, Vec<RosterEntry>), StoreError>;

    async fn roster_version(&self, id: &AccountId) -> Result<u64, StoreError>;

    async fn roster_entry(
        &self,
        id: &AccountId,
        contact: &str,
    ) -> Result<Option<RosterEntry>, StoreError>;

    /// Inserts or replaces the entry (groups replaced too) and bumps the account's roster version; returns the new version.
    /// NotFound if the account doesn't exist.
    async fn put_roster_entry(
        &self,
        id: &AccountId,
        entry: &RosterEntry,
    ) -> Result<u64, StoreError>;

    /// Reads the entry of `contact`, lets `update` decide, and writes what it decided, in one
    /// transaction that holds the account's roster against every other write (another
    /// process's on the same database included) from the read to the commit. Subscription
    /// handling reads, transforms and writes an entry; two stanzas for one account handled
    /// at once, here or on another node, would otherwise lose one of the two changes.
    ///
    /// `update` runs exactly once, inside the transaction: it must not wait for anything.
    /// A missing account is shown as no entry; writing to it is NotFound.
    async fn update_roster_entry(
        &self,
        id: &AccountId,
        contact: &str,
        update: &mut RosterUpdateFn<'_>,
    ) -> Result<RosterUpdated, StoreError>;

    /// Deletes the entry; Some(new version) if it existed, None otherwise (version unchanged).
    async fn remove_roster_entry(
        &self,
        id: &AccountId,
        contact: &str,
    ) -> Result<Option<u64>, StoreError>;

    /// Number of entries with in_roster (for the per-user item limit).
    async fn roster_size(&self, id: &AccountId) -> Result<u64, StoreError>;

    /// The accounts whose entry for `contact` (a bare JID) says they share their presence
    /// with it: subscription `from` or `both` (RFC 6121 §4.3.2). A login's presence probes
    /// to local contacts are answered from this one read instead of a read per contact.
    /// Sorted by domain then username.
    async fn presence_shared_with(&self, contact: &str) -> Result<Vec<AccountId>, StoreError>;
}

/// One entry and its groups, read inside the write transaction (after the account row,
/// which the transaction holds, so no other write to the roster can come between).
static ENTRY: Sql = Sql::new(roster_query!("", " AND e.contact = ? ORDER BY g.position"));

static ITEM_COUNT: Sql =
    Sql::new("SELECT COUNT(*) FROM roster_entries WHERE account_id = ? AND in_roster");

static BUMP_VERSION: Sql = Sql::new(
    "UPDATE accounts SET roster_version = roster_version + 1 WHERE id = ? \
     RETURNING roster_version",
);

/// A roster entry's row, written: an upsert, not a delete and insert (nor SQLite's INSERT OR
/// REPLACE), since a deleted row would cascade to its groups.
pub(crate) static UPSERT_ENTRY: Sql = Sql::new(
    "INSERT INTO roster_entries (account_id, contact, name, subscription, \
     pending_out, pending_in, approved, in_roster, pending_in_stanza) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (account_id, contact) DO UPDATE SET \
     name = excluded.name, subscription = excluded.subscription, \
     pending_out = excluded.pending_out, pending_in = excluded.pending_in, \
     approved = excluded.approved, in_roster = excluded.in_roster, \
     pending_in_stanza = excluded.pending_in_stanza",
);

/// An entry's groups, removed before they are written again in order.
pub(crate) static DELETE_GROUPS: Sql =
    Sql::new("DELETE FROM roster_groups WHERE account_id = ? AND contact = ?");

/// [`RosterStore::update_roster_entry`] for a backend: `$dialect` names the statements'
/// text (`sqlite` or `postgres`); the store provides `begin_account_write()`, whose
/// transaction holds the account (SQLite: the database's write lock, taken by BEGIN
/// IMMEDIATE; PostgreSQL: the account row, FOR UPDATE, which every roster write takes
/// first).
macro_rules! update_roster_entry {
    ($store:ty, $dialect:ident) => {
        impl $store {
            pub(crate) async fn read_modify_write_entry(
                &self,
                id: &AccountId,
                contact: &str,
                update: &mut RosterUpdateFn<'_>,
            ) -> Result<RosterUpdated, StoreError> {
                let (mut tx, account_id) = match self.begin_account_write(id).await {
                    Ok(begun) => begun,
                    Err(StoreError::NotFound) => {
                        return match update(None) {
                            RosterUpdate::Keep => Ok(RosterUpdated::Kept),
                            _ => Err(StoreError::NotFound),
                        };
                    }
                    Err(e) => return Err(e),
                };
                let rows: Vec<RosterRow> = sqlx::query_as(ENTRY.$dialect())
                    .bind(&id.domain)
                    .bind(&id.username)
                    .bind(contact)
                    .fetch_all(&mut *tx)
                    .await?;
                let stored = roster_from_rows(rows)?.1.pop();
                let was_item = stored.as_ref().is_some_and(|e| e.in_roster);
                let entry = match update(stored) {
                    // Dropping `tx` rolls back: nothing was written.
                    RosterUpdate::Keep => return Ok(RosterUpdated::Kept),
                    RosterUpdate::Put(entry) => entry,
                    RosterUpdate::PutWithin { entry, max_items } => {
                        if entry.in_roster && !was_item {
                            let items: i64 = sqlx::query_scalar(ITEM_COUNT.$dialect())
                                .bind(account_id)
                                .fetch_one(&mut *tx)
                                .await?;
                            if crate::common::count_from_db(items) >= max_items {
                                return Ok(RosterUpdated::Full);
                            }
                        }
                        entry
                    }
                };
                let version: i64 = sqlx::query_scalar(BUMP_VERSION.$dialect())
                    .bind(account_id)
                    .fetch_one(&mut *tx)
                    .await?;
                Self::write_entry(&mut tx, account_id, contact, &entry).await?;
                tx.commit().await?;
                Ok(RosterUpdated::Stored(version_from_db(version)?))
            }
        }
    };
}

update_roster_entry!(SqliteStore, sqlite);
update_roster_entry!(PostgresStore, postgres);
