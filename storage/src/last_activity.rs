//! Last activity of offline accounts (XEP-0012): the [`LastActivityStore`] trait, its
//! statements, and its one implementation for both backends.

use crate::common::Sql;
use crate::{AccountId, PostgresStore, SqliteStore, StoreError};

/// When each account was last seen and how it left: the answer to a query about an offline
/// account (XEP-0012 §3, the time since it logged out and the status it left with).
///
/// Reads of a missing account find nothing; writes to it are NotFound.
#[async_trait::async_trait]
pub trait LastActivityStore: Send + Sync {
    /// Records the moment (Unix seconds) and the status text, replacing the previous
    /// record. The server calls it when the account's last session ends. NotFound if the
    /// account doesn't exist.
    async fn set_last_activity(
        &self,
        id: &AccountId,
        unix_secs: i64,
        status: &str,
    ) -> Result<(), StoreError>;

    /// The last record, None if there is none yet.
    async fn last_activity(&self, id: &AccountId) -> Result<Option<(i64, String)>, StoreError>;
}

static LAST_ACTIVITY_GET: Sql = Sql::new(
    "SELECT l.logged_out_at, l.status FROM last_activity l \
     JOIN accounts a ON a.id = l.account_id WHERE a.domain = ? AND a.username = ?",
);

static LAST_ACTIVITY_PUT: Sql = Sql::new(
    "INSERT INTO last_activity (account_id, logged_out_at, status) VALUES (?, ?, ?) \
     ON CONFLICT (account_id) DO UPDATE SET \
     logged_out_at = excluded.logged_out_at, status = excluded.status",
);

/// [`LastActivityStore`] for a backend: `$dialect` names the statements' text (`sqlite` or
/// `postgres`); the store provides `reader()` and `begin_account_write()`.
macro_rules! last_activity_store {
    ($store:ty, $dialect:ident) => {
        #[async_trait::async_trait]
        impl LastActivityStore for $store {
            async fn set_last_activity(
                &self,
                id: &AccountId,
                unix_secs: i64,
                status: &str,
            ) -> Result<(), StoreError> {
                let (mut tx, account_id) = self.begin_account_write(id).await?;
                sqlx::query(LAST_ACTIVITY_PUT.$dialect())
                    .bind(account_id)
                    .bind(unix_secs)
                    .bind(status)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn last_activity(
                &self,
                id: &AccountId,
            ) -> Result<Option<(i64, String)>, StoreError> {
                Ok(sqlx::query_as(LAST_ACTIVITY_GET.$dialect())
                    .bind(&id.domain)
                    .bind(&id.username)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?)
            }
        }
    };
}

last_activity_store!(SqliteStore, sqlite);
last_activity_store!(PostgresStore, postgres);
