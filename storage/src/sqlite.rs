//! SQLite backend: [`SqliteStore`].

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::account::{AccountId, AccountStore, ScramCredential, ScramHash};
use crate::common::{credential_from_row, unix_now, CredentialRow};
use crate::{Store, StoreError};

/// Migrations compiled into the binary, so a deployed server needs no files
/// besides the database itself.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite has a single writer per database file: more connections only add
/// readers, and an XMPP server's storage traffic (logins, roster loads) is
/// light. A small pool keeps file handles and per-connection page caches
/// bounded while still letting reads proceed during a write (WAL).
const MAX_CONNECTIONS: u32 = 4;

/// How long a connection waits for another one's write lock before giving up
/// with SQLITE_BUSY. Writes are short, so hitting this means something is
/// stuck rather than merely busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Accounts and credentials in one SQLite database file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens `sqlite:PATH` or `sqlite://PATH` (see [`crate::open`]).
    /// `sqlite::memory:` gives a private in-memory database, for tests.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        match parse_url(url) {
            Some(Target::Memory) => Self::open_memory().await,
            Some(Target::File(path)) => Self::open_path(&path).await,
            None => Err(StoreError::UnsupportedUrl(url.to_owned())),
        }
    }

    /// Opens (creating when missing, parent directories included) the database
    /// file at `path` and brings its schema up to date.
    pub async fn open_path(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            // A first start with `data/jabberwock.db` should just work;
            // SQLite itself creates the file but not its directory.
            std::fs::create_dir_all(parent).map_err(sqlx::Error::Io)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // WAL lets readers (logins) proceed while a writer commits, and
            // makes commits an append instead of a rollback-journal rewrite.
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL is still corruption-safe; it only risks losing
            // the last commits on power loss, not on a process crash, and
            // saves an fsync per transaction.
            .synchronous(SqliteSynchronous::Normal)
            // Off by default in SQLite and set per connection: without it the
            // ON DELETE CASCADE clauses are silently ignored.
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        Self::migrated(pool).await
    }

    async fn open_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // Every connection to `:memory:` is a separate, empty database, and it
        // vanishes when its connection closes: exactly one connection, never
        // retired.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> Result<Self, StoreError> {
        MIGRATOR.run(&pool).await?;
        tracing::debug!("sqlite store ready");
        Ok(SqliteStore { pool })
    }

    /// Waits for queries in flight and closes every connection, so the WAL is
    /// checkpointed into the main file before the process exits.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    #[cfg(test)]
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A transaction that holds the write lock from its first statement.
    ///
    /// A plain (deferred) BEGIN starts as a reader and upgrades at the first
    /// write; if another connection committed in between, SQLite fails the
    /// upgrade with SQLITE_BUSY_SNAPSHOT at once instead of waiting out the
    /// busy timeout. IMMEDIATE queues behind other writers up front instead.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

enum Target {
    Memory,
    File(PathBuf),
}

fn parse_url(url: &str) -> Option<Target> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    // Connection settings are fixed by the store, so query parameters
    // (`?mode=ro`) are refused rather than silently becoming part of a
    // file name.
    if rest.is_empty() || rest.contains('?') {
        return None;
    }
    if rest == ":memory:" {
        return Some(Target::Memory);
    }
    Some(Target::File(PathBuf::from(rest)))
}

async fn insert_credentials(
    tx: &mut Transaction<'static, Sqlite>,
    account_id: i64,
    credentials: &[ScramCredential],
) -> Result<(), StoreError> {
    for c in credentials {
        sqlx::query(
            "INSERT INTO scram_credentials \
             (account_id, hash, salt, iterations, stored_key, server_key) \
             VALUES (?, ?, ?, ?, ?, ?)",
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
impl AccountStore for SqliteStore {
    async fn create_account(
        &self,
        id: &AccountId,
        credentials: &[ScramCredential],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let inserted =
            sqlx::query("INSERT INTO accounts (username, domain, created_at) VALUES (?, ?, ?)")
                .bind(&id.username)
                .bind(&id.domain)
                .bind(unix_now())
                .execute(&mut *tx)
                .await;
        let account_id = match inserted {
            Ok(done) => done.last_insert_rowid(),
            // Only this statement maps to AlreadyExists: a duplicate hash in
            // `credentials` is a caller bug and stays a database error.
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
        let mut tx = self.begin_write().await?;
        let account_id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM accounts WHERE domain = ? AND username = ?")
                .bind(&id.domain)
                .bind(&id.username)
                .fetch_optional(&mut *tx)
                .await?;
        // Dropping `tx` on the early return rolls it back.
        let account_id = account_id.ok_or(StoreError::NotFound)?;
        sqlx::query("DELETE FROM scram_credentials WHERE account_id = ?")
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
             WHERE a.domain = ? AND a.username = ? AND c.hash = ?",
        )
        .bind(&id.domain)
        .bind(&id.username)
        .bind(hash.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(credential_from_row).transpose()
    }

    async fn account_exists(&self, id: &AccountId) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM accounts WHERE domain = ? AND username = ?")
                .bind(&id.domain)
                .bind(&id.username)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    async fn remove_account(&self, id: &AccountId) -> Result<bool, StoreError> {
        // One statement: the foreign keys' ON DELETE CASCADE removes the
        // credentials (and later rosters, offline messages) atomically.
        let done = sqlx::query("DELETE FROM accounts WHERE domain = ? AND username = ?")
            .bind(&id.domain)
            .bind(&id.username)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_accounts(&self, domain: Option<&str>) -> Result<Vec<AccountId>, StoreError> {
        // Two statements rather than one `? IS NULL OR domain = ?`, so the
        // filtered one is a plain range scan of the (domain, username) index.
        let rows: Vec<(String, String)> = match domain {
            Some(domain) => {
                sqlx::query_as(
                    "SELECT username, domain FROM accounts WHERE domain = ? \
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

impl Store for SqliteStore {}
