//! The message of the day of each served domain (XEP-0133 §4.23-4.25): the [`MotdStore`]
//! trait, its statements, and its one implementation for both backends.

use crate::common::Sql;
use crate::{PostgresStore, SqliteStore, StoreError};

/// One message (subject and body) per domain, which an administrator sets, replaces and
/// removes.
#[async_trait::async_trait]
pub trait MotdStore: Send + Sync {
    /// Sets `domain`'s message, replacing the one it had.
    async fn set_motd(&self, domain: &str, subject: &str, body: &str) -> Result<(), StoreError>;

    /// Removes `domain`'s message; false when it had none.
    async fn delete_motd(&self, domain: &str) -> Result<bool, StoreError>;

    /// `domain`'s message (subject, body), if it has one.
    async fn motd(&self, domain: &str) -> Result<Option<(String, String)>, StoreError>;
}

static MOTD_GET: Sql = Sql::new("SELECT subject, body FROM motd WHERE domain = ?");

static MOTD_PUT: Sql = Sql::new(
    "INSERT INTO motd (domain, subject, body) VALUES (?, ?, ?) \
     ON CONFLICT (domain) DO UPDATE SET subject = excluded.subject, body = excluded.body",
);

static MOTD_DELETE: Sql = Sql::new("DELETE FROM motd WHERE domain = ?");

/// [`MotdStore`] for a backend: `$dialect` names the statements' text (`sqlite` or
/// `postgres`); the store provides `reader()` and `begin_write()`.
macro_rules! motd_store {
    ($store:ty, $dialect:ident) => {
        #[async_trait::async_trait]
        impl MotdStore for $store {
            async fn set_motd(
                &self,
                domain: &str,
                subject: &str,
                body: &str,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query(MOTD_PUT.$dialect())
                    .bind(domain)
                    .bind(subject)
                    .bind(body)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_motd(&self, domain: &str) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(MOTD_DELETE.$dialect())
                    .bind(domain)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn motd(&self, domain: &str) -> Result<Option<(String, String)>, StoreError> {
                Ok(sqlx::query_as(MOTD_GET.$dialect())
                    .bind(domain)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?)
            }
        }
    };
}

motd_store!(SqliteStore, sqlite);
motd_store!(PostgresStore, postgres);
