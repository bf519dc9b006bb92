//! Offline messages (XEP-0160): the types and the [`OfflineStore`] trait.

use crate::{AccountId, StoreError};

/// A stored stanza, as the server serialized it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflineMessage {
    /// Unique and never reused; increasing in storage order within an account.
    pub id: i64,
    pub stanza: String,
    /// Unix seconds.
    pub stored_at: i64,
}

/// Messages kept for an account until it next comes online.
///
/// Every method is keyed by the account, `delete_offline` included: ids of
/// another account's messages are ignored.
#[async_trait::async_trait]
pub trait OfflineStore: Send + Sync {
    /// Stores a message for later if the account has fewer than `limit` stored; Ok(false) when full
    /// (nothing stored). Durable when it returns (the sender has been told it was accepted).
    /// NotFound if the account doesn't exist.
    async fn store_offline(
        &self,
        id: &AccountId,
        stanza: &str,
        limit: u64,
    ) -> Result<bool, StoreError>;

    /// All stored messages of the account, oldest first (one query, indexed).
    async fn offline_messages(&self, id: &AccountId) -> Result<Vec<OfflineMessage>, StoreError>;

    /// Deletes the given messages after they were delivered.
    async fn delete_offline(&self, id: &AccountId, ids: &[i64]) -> Result<(), StoreError>;

    async fn offline_count(&self, id: &AccountId) -> Result<u64, StoreError>;
}
