//! Account records and SCRAM credentials: the types and the [`AccountStore`] trait.

use crate::StoreError;

/// The hash function a SCRAM credential set was derived with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScramHash {
    Sha1,
    Sha256,
}

impl ScramHash {
    /// The spelling stored in the database, which is also the IANA name used in
    /// the SASL mechanism (`SCRAM-SHA-1`, `SCRAM-SHA-256`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ScramHash::Sha1 => "SHA-1",
            ScramHash::Sha256 => "SHA-256",
        }
    }

    /// Inverse of [`ScramHash::as_str`]; `None` for anything else.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "SHA-1" => Some(ScramHash::Sha1),
            "SHA-256" => Some(ScramHash::Sha256),
            _ => None,
        }
    }
}

/// One SCRAM credential set per hash (RFC 5802 §3): never the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramCredential {
    pub hash: ScramHash,
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// An account's bare address, split. Both parts are already normalised by the
/// caller (the store compares them byte for byte and knows nothing of
/// stringprep/PRECIS).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AccountId {
    pub username: String,
    pub domain: String,
}

impl AccountId {
    pub fn new(username: impl Into<String>, domain: impl Into<String>) -> Self {
        AccountId {
            username: username.into(),
            domain: domain.into(),
        }
    }
}

/// Accounts and their credentials.
#[async_trait::async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates the account with its credentials in one transaction; AlreadyExists if taken.
    async fn create_account(
        &self,
        id: &AccountId,
        credentials: &[ScramCredential],
    ) -> Result<(), StoreError>;

    /// Replaces all credentials (password change); NotFound if no account.
    async fn set_credentials(
        &self,
        id: &AccountId,
        credentials: &[ScramCredential],
    ) -> Result<(), StoreError>;

    /// The credential for one hash, None if the account or that hash is absent.
    async fn credential(
        &self,
        id: &AccountId,
        hash: ScramHash,
    ) -> Result<Option<ScramCredential>, StoreError>;

    async fn account_exists(&self, id: &AccountId) -> Result<bool, StoreError>;

    /// Removes the account and everything that belongs to it (ON DELETE CASCADE); false if it did not exist.
    async fn remove_account(&self, id: &AccountId) -> Result<bool, StoreError>;

    /// Accounts of one domain (or all when None), sorted by domain then username.
    async fn list_accounts(&self, domain: Option<&str>) -> Result<Vec<AccountId>, StoreError>;

    /// Accounts that have no credential at all (created with `create_account(id, &[])`),
    /// sorted by domain then username.
    async fn accounts_without_credentials(&self) -> Result<Vec<AccountId>, StoreError>;
}
