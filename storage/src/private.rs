//! Private XML storage (XEP-0049): the [`PrivateStore`] trait, its statements, and its one
//! implementation for both backends.

use crate::common::Sql;
use crate::{AccountId, PostgresStore, SqliteStore, StoreError};

/// One stored element per (account, namespace), kept as the XML text the server serialized
/// (XEP-0049 §2.1: a client stores and retrieves a fragment by its root's namespace).
///
/// Reads of a missing account find nothing; writes to it are NotFound.
#[async_trait::async_trait]
pub trait PrivateStore: Send + Sync {
    /// The element stored under `ns`, None if there is none.
    async fn private_get(&self, id: &AccountId, ns: &str) -> Result<Option<String>, StoreError>;

    /// Every `(namespace, element)` pair of the account, sorted by namespace (an export
    /// reads them all; a client only ever asks for one).
    async fn private_all(&self, id: &AccountId) -> Result<Vec<(String, String)>, StoreError>;

    /// Stores each `(namespace, element)` pair, replacing what the namespace held (a later
    /// pair for the same namespace wins). All or nothing: one transaction. NotFound if the
    /// account doesn't exist, even with no pairs.
    async fn private_set(
        &self,
        id: &AccountId,
        items: &[(String, String)],
    ) -> Result<(), StoreError>;
}

static PRIVATE_GET: Sql = Sql::new(
    "SELECT p.xml FROM private_storage p JOIN accounts a ON a.id = p.account_id \
     WHERE a.domain = ? AND a.username = ? AND p.namespace = ?",
);

static PRIVATE_ALL: Sql = Sql::new(
    "SELECT p.namespace, p.xml FROM private_storage p JOIN accounts a ON a.id = p.account_id \
     WHERE a.domain = ? AND a.username = ? ORDER BY p.namespace",
);

static PRIVATE_PUT: Sql = Sql::new(
    "INSERT INTO private_storage (account_id, namespace, xml) VALUES (?, ?, ?) \
     ON CONFLICT (account_id, namespace) DO UPDATE SET xml = excluded.xml",
);

/// [`PrivateStore`] for a backend: `$dialect` names the statements' text (`sqlite` or
/// `postgres`); the store provides `reader()` and `begin_account_write()`.
macro_rules! private_store {
    ($store:ty, $dialect:ident) => {
        #[async_trait::async_trait]
        impl PrivateStore for $store {
            async fn private_get(
                &self,
                id: &AccountId,
                ns: &str,
            ) -> Result<Option<String>, StoreError> {
                Ok(sqlx::query_scalar(PRIVATE_GET.$dialect())
                    .bind(&id.domain)
                    .bind(&id.username)
                    .bind(ns)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?)
            }

            async fn private_all(
                &self,
                id: &AccountId,
            ) -> Result<Vec<(String, String)>, StoreError> {
                Ok(sqlx::query_as(PRIVATE_ALL.$dialect())
                    .bind(&id.domain)
                    .bind(&id.username)
                    .fetch_all(&mut *self.reader().await?)
                    .await?)
            }

            async fn private_set(
                &self,
                id: &AccountId,
                items: &[(String, String)],
            ) -> Result<(), StoreError> {
                let (mut tx, account_id) = self.begin_account_write(id).await?;
                for (ns, xml) in items {
                    sqlx::query(PRIVATE_PUT.$dialect())
                        .bind(account_id)
                        .bind(ns)
                        .bind(xml)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

private_store!(SqliteStore, sqlite);
private_store!(PostgresStore, postgres);
