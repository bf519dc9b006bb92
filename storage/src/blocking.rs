//! Blocklists (XEP-0191): the [`BlockingStore`] trait, its statements, and its one
//! implementation for both backends.

use crate::common::Sql;
use crate::{AccountId, PostgresStore, SqliteStore, StoreError};

/// The JIDs each account blocks, as text the server already normalised (compared byte for
/// byte). The writes return what they changed, so the server knows whose presence and
/// which pushes a change calls for.
///
/// Reads of a missing account find an empty list; writes to it are NotFound.
#[async_trait::async_trait]
pub trait BlockingStore: Send + Sync {
    /// The account's blocklist (XEP-0191 §3.2), sorted (byte order).
    async fn blocklist(&self, id: &AccountId) -> Result<Vec<String>, StoreError>;

    /// Adds the JIDs (XEP-0191 §3.3) in one transaction; returns those that were not blocked
    /// yet, in the given order, each once.
    async fn block(&self, id: &AccountId, jids: &[String]) -> Result<Vec<String>, StoreError>;

    /// Removes the JIDs (XEP-0191 §3.4) in one transaction; returns those that were blocked,
    /// in the given order, each once.
    async fn unblock(&self, id: &AccountId, jids: &[String]) -> Result<Vec<String>, StoreError>;

    /// Empties the blocklist (XEP-0191 §3.5); returns what it held, sorted (byte order).
    async fn unblock_all(&self, id: &AccountId) -> Result<Vec<String>, StoreError>;
}

/// A range scan of the primary key, account first (migration 0005), already in jid order.
static BLOCKLIST: Sql = Sql::new(
    "SELECT b.jid FROM blocklist b JOIN accounts a ON a.id = b.account_id \
     WHERE a.domain = ? AND a.username = ? ORDER BY b.jid",
);

/// Changes one row or none: a JID blocked already (or twice in one request) is left alone.
static BLOCK: Sql = Sql::new(
    "INSERT INTO blocklist (account_id, jid) VALUES (?, ?) \
     ON CONFLICT (account_id, jid) DO NOTHING",
);

static UNBLOCK: Sql = Sql::new("DELETE FROM blocklist WHERE account_id = ? AND jid = ?");

static UNBLOCK_ALL: Sql = Sql::new("DELETE FROM blocklist WHERE account_id = ? RETURNING jid");

/// [`BlockingStore`] for a backend: `$dialect` names the statements' text (`sqlite` or
/// `postgres`); the store provides `reader()` and `begin_account_write()`.
macro_rules! blocking_store {
    ($store:ty, $dialect:ident) => {
        #[async_trait::async_trait]
        impl BlockingStore for $store {
            async fn blocklist(&self, id: &AccountId) -> Result<Vec<String>, StoreError> {
                Ok(sqlx::query_scalar(BLOCKLIST.$dialect())
                    .bind(&id.domain)
                    .bind(&id.username)
                    .fetch_all(&mut *self.reader().await?)
                    .await?)
            }

            async fn block(
                &self,
                id: &AccountId,
                jids: &[String],
            ) -> Result<Vec<String>, StoreError> {
                let (mut tx, account_id) = self.begin_account_write(id).await?;
                let mut added = Vec::new();
                for jid in jids {
                    let done = sqlx::query(BLOCK.$dialect())
                        .bind(account_id)
                        .bind(jid)
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() > 0 {
                        added.push(jid.clone());
                    }
                }
                tx.commit().await?;
                Ok(added)
            }

            async fn unblock(
                &self,
                id: &AccountId,
                jids: &[String],
            ) -> Result<Vec<String>, StoreError> {
                let (mut tx, account_id) = self.begin_account_write(id).await?;
                let mut removed = Vec::new();
                for jid in jids {
                    let done = sqlx::query(UNBLOCK.$dialect())
                        .bind(account_id)
                        .bind(jid)
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() > 0 {
                        removed.push(jid.clone());
                    }
                }
                tx.commit().await?;
                Ok(removed)
            }

            async fn unblock_all(&self, id: &AccountId) -> Result<Vec<String>, StoreError> {
                let (mut tx, account_id) = self.begin_account_write(id).await?;
                let mut removed: Vec<String> = sqlx::query_scalar(UNBLOCK_ALL.$dialect())
                    .bind(account_id)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                // RETURNING promises no order; byte order, like `blocklist`.
                removed.sort_unstable();
                Ok(removed)
            }
        }
    };
}

blocking_store!(SqliteStore, sqlite);
blocking_store!(PostgresStore, postgres);
