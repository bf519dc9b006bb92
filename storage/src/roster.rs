//! Rosters (RFC 6121 §2–3): the types and the [`RosterStore`] trait.

use crate::{AccountId, StoreError};

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
