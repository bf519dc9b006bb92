//! PostgreSQL backend: [`PostgresStore`].

use std::str::FromStr as _;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::account::{AccountId, AccountStore, ScramCredential, ScramHash};
use crate::common::{credential_from_row, unix_now, CredentialRow};
use crate::{Store, StoreError};

/// Embedded like the SQLite set; a separate directory because the dialects
/// differ (identity columns, BYTEA) and sqlx checksums each file.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// PostgreSQL runs writers concurrently, so the pool can be larger than
/// SQLite's; still modest, since every connection is a server process.
const MAX_CONNECTIONS: u32 = 8;

/// Accounts and credentials in a PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `postgres://…` / `postgresql://…` (any libpq-style URL that
    /// sqlx accepts, e.g. with `?options=-c search_path=…`) and brings the
    /// schema up to date. The database itself must exist.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        tracing::debug!("postgres store ready");
        Ok(PostgresStore { pool })
    }

    /// Waits for queries in flight and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn insert_credentials(
    tx: &mut Transaction<'static, Postgres>,
    account_id: i64,
    credentials: &[ScramCredential],
) -> Result<(), StoreError> {
    for c in credentials {
        sqlx::query(
            "INSERT INTO scram_credentials \
             (account_id, hash, salt, iterations, stored_key, server_key) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(account_id)
        .bind(c.hash.as_str())
        .bind(&c.salt)
        .bind(i64::from(c.iterations))
        .bind(&c.stored_key)
        .bind(&c.server_key)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl AccountStore for PostgresStore {
    async fn create_account(
        &self,
        id: &AccountId,
        credentials: &[ScramCredential],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted: Result<i64, sqlx::Error> = sqlx::query_scalar(
            "INSERT INTO accounts (username, domain, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(&id.username)
        .bind(&id.domain)
        .bind(unix_now())
        .fetch_one(&mut *tx)
        .await;
        let account_id = match inserted {
            Ok(account_id) => account_id,
            // Only this statement maps to AlreadyExists: a duplicate hash in
            // `credentials` is a caller bug and stays a database error. The
            // aborted transaction is rolled back when `tx` drops.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::AlreadyExists)
            }
            Err(e) => return Err(e.into()),
        };
        insert_credentials(&mut tx, account_id, credentials).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_credentials(
        &self,
        id: &AccountId,
        credentials: &[ScramCredential],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // FOR UPDATE: two concurrent password changes serialise on the account
        // row instead of both deleting, then one failing on the primary key.
        let account_id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM accounts WHERE domain = $1 AND username = $2 FOR UPDATE",
        )
        .bind(&id.domain)
        .bind(&id.username)
        .fetch_optional(&mut *tx)
        .await?;
        let account_id = account_id.ok_or(StoreError::NotFound)?;
        sqlx::query("DELETE FROM scram_credentials WHERE account_id = $1")
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        insert_credentials(&mut tx, account_id, credentials).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn credential(
        &self,
        id: &AccountId,
        hash: ScramHash,
    ) -> Result<Option<ScramCredential>, StoreError> {
        let row: Option<CredentialRow> = sqlx::query_as(
            "SELECT c.hash, c.salt, c.iterations, c.stored_key, c.server_key \
             FROM scram_credentials c JOIN accounts a ON a.id = c.account_id \
             WHERE a.domain = $1 AND a.username = $2 AND c.hash = $3",
        )
        .bind(&id.domain)
        .bind(&id.username)
        .bind(hash.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(credential_from_row).transpose()
    }

    async fn account_exists(&self, id: &AccountId) -> Result<bool, StoreError> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM accounts WHERE domain = $1 AND username = $2")
                .bind(&id.domain)
                .bind(&id.username)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    async fn remove_account(&self, id: &AccountId) -> Result<bool, StoreError> {
        // One statement: ON DELETE CASCADE removes everything the account owns.
        let done = sqlx::query("DELETE FROM accounts WHERE domain = $1 AND username = $2")
            .bind(&id.domain)
            .bind(&id.username)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_accounts(&self, domain: Option<&str>) -> Result<Vec<AccountId>, StoreError> {
        let rows: Vec<(String, String)> = match domain {
            Some(domain) => {
                sqlx::query_as(
                    "SELECT username, domain FROM accounts WHERE domain = $1 \
                     ORDER BY domain, username",
                )
                .bind(domain)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as("SELECT username, domain FROM accounts ORDER BY domain, username")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(username, domain)| AccountId { username, domain })
            .collect())
    }
}

impl Store for PostgresStore {}
