//! vCards (XEP-0054) and their avatar hashes (XEP-0153): [`StoredVcard`], the
//! [`VcardStore`] trait, its statements, and its one implementation for both backends.

use crate::common::Sql;
use crate::{AccountId, PostgresStore, SqliteStore, StoreError};

/// An account's vCard as the server serialized it, and the hash of its photo that the
/// server computed for presence (XEP-0153), if it advertises one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredVcard {
    pub xml: String,
    pub photo_hash: Option<String>,
}

/// One vCard per account.
///
/// Reads of a missing account find nothing; writes to it are NotFound.
#[async_trait::async_trait]
pub trait VcardStore: Send + Sync {
    /// The stored vCard, None if the account never set one.
    async fn vcard(&self, id: &AccountId) -> Result<Option<StoredVcard>, StoreError>;

    /// Stores the vCard and its photo hash, replacing both. Any text is a vCard here, an
    /// empty one included: what it means is the server's call. NotFound if the account
    /// doesn't exist.
    async fn set_vcard(
        &self,
        id: &AccountId,
        xml: &str,
        photo_hash: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Only the photo hash, which every available presence of the account carries
    /// (XEP-0153) and so is read far more often than the vCard. None when no vCard is
    /// stored, or it has no hash.
    async fn vcard_photo_hash(&self, id: &AccountId) -> Result<Option<String>, StoreError>;
}

static VCARD_GET: Sql = Sql::new(
    "SELECT v.xml, v.photo_hash FROM vcards v JOIN accounts a ON a.id = v.account_id \
     WHERE a.domain = ? AND a.username = ?",
);

static VCARD_PHOTO_HASH: Sql = Sql::new(
    "SELECT v.photo_hash FROM vcards v JOIN accounts a ON a.id = v.account_id \
     WHERE a.domain = ? AND a.username = ?",
);

static VCARD_PUT: Sql = Sql::new(
    "INSERT INTO vcards (account_id, xml, photo_hash) VALUES (?, ?, ?) \
     ON CONFLICT (account_id) DO UPDATE SET xml = excluded.xml, photo_hash = excluded.photo_hash",
);

/// [`VcardStore`] for a backend: `$dialect` names the statements' text (`sqlite` or
/// `postgres`); the store provides `reader()` and `begin_account_write()`.
macro_rules! vcard_store {
    ($store:ty, $dialect:ident) => {
        #[async_trait::async_trait]
        impl VcardStore for $store {
            async fn vcard(&self, id: &AccountId) -> Result<Option<StoredVcard>, StoreError> {
                let row: Option<(String, Option<String>)> = sqlx::query_as(VCARD_GET.$dialect())
                    .bind(&id.domain)
                    .bind(&id.username)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                Ok(row.map(|(xml, photo_hash)| StoredVcard { xml, photo_hash }))
            }

            async fn set_vcard(
                &self,
                id: &AccountId,
                xml: &str,
                photo_hash: Option<&str>,
            ) -> Result<(), StoreError> {
                let (mut tx, account_id) = self.begin_account_write(id).await?;
                sqlx::query(VCARD_PUT.$dialect())
                    .bind(account_id)
                    .bind(xml)
                    .bind(photo_hash)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn vcard_photo_hash(&self, id: &AccountId) -> Result<Option<String>, StoreError> {
                // No row (no vCard) and a NULL hash both mean no hash.
                let hash: Option<Option<String>> = sqlx::query_scalar(VCARD_PHOTO_HASH.$dialect())
                    .bind(&id.domain)
                    .bind(&id.username)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                Ok(hash.flatten())
            }
        }
    };
}

vcard_store!(SqliteStore, sqlite);
vcard_store!(PostgresStore, postgres);
