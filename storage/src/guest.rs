//! Guests: the [`GuestStore`] trait, its statements, and its one implementation for both
//! backends.

use crate::common::{accounts_from_rows, unix_now, Sql};
use crate::{AccountId, PostgresStore, SqliteStore, StoreError};

/// Guest accounts (no credentials, so nobody can log in to them) tagged with the node
/// that created them (migration 0006), so that several server processes on one database
/// each clean up only the guests they left behind.
#[async_trait::async_trait]
pub trait GuestStore: Send + Sync {
    /// Creates a guest account owned by `owner` (a node id); AlreadyExists if the name is
    /// taken.
    async fn create_guest(&self, id: &AccountId, owner: &str) -> Result<(), StoreError>;

    /// The guests `owner` created, and the credential-less accounts nobody owns (guests
    /// left by a version that did not tag them), sorted by domain then username.
    async fn guests_of(&self, owner: &str) -> Result<Vec<AccountId>, StoreError>;
}

/// As `INSERT_ACCOUNT` (the roster version starts at the floor), with the owner.
static INSERT_GUEST: Sql = Sql::new(
    "INSERT INTO accounts (username, domain, created_at, roster_version, guest_owner) \
     VALUES (?, ?, ?, COALESCE((SELECT version FROM roster_version_floor WHERE id = 1), 0), ?)",
);

static GUESTS_OF: Sql = Sql::new(
    "SELECT a.username, a.domain FROM accounts a WHERE a.guest_owner = ? \
     OR (a.guest_owner IS NULL AND NOT EXISTS \
     (SELECT 1 FROM scram_credentials c WHERE c.account_id = a.id)) \
     ORDER BY a.domain, a.username",
);

/// [`GuestStore`] for a backend: `$dialect` names the statements' text (`sqlite` or
/// `postgres`); the store provides `reader()` and `begin_write()`.
macro_rules! guest_store {
    ($store:ty, $dialect:ident) => {
        #[async_trait::async_trait]
        impl GuestStore for $store {
            async fn create_guest(&self, id: &AccountId, owner: &str) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                let inserted = sqlx::query(INSERT_GUEST.$dialect())
                    .bind(&id.username)
                    .bind(&id.domain)
                    .bind(unix_now())
                    .bind(owner)
                    .execute(&mut *tx)
                    .await;
                match inserted {
                    Ok(_) => {}
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        return Err(StoreError::AlreadyExists)
                    }
                    Err(e) => return Err(e.into()),
                }
                tx.commit().await?;
                Ok(())
            }

            async fn guests_of(&self, owner: &str) -> Result<Vec<AccountId>, StoreError> {
                let rows: Vec<(String, String)> = sqlx::query_as(GUESTS_OF.$dialect())
                    .bind(owner)
                    .fetch_all(&mut *self.reader().await?)
                    .await?;
                Ok(accounts_from_rows(rows))
            }
        }
    };
}

guest_store!(SqliteStore, sqlite);
guest_store!(PostgresStore, postgres);
