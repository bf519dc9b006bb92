//! SQLite backend: [`SqliteStore`].

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection as _, QueryBuilder, Sqlite, SqliteConnection, Transaction};

use crate::account::{AccountId, AccountStore, ScramCredential, ScramHash};
use crate::common::{
    accounts_from_rows, count_from_db, credential_from_row, offline_from_row,
    presence_roster_from_rows, roster_from_rows, roster_query, unix_now, version_from_db,
    CredentialRow, OfflineRow, RosterRow, ACCOUNT_FOR_WRITE, INSERT_ACCOUNT,
    PRESENCE_ROSTER_SELECT, PRESENCE_SHARED_WITH, RAISE_VERSION_FLOOR,
};
use crate::offline::{OfflineMessage, OfflineStore};
use crate::roster::{
    RosterEntry, RosterStore, RosterUpdateFn, RosterUpdated, DELETE_GROUPS, UPSERT_ENTRY,
};
use crate::sqlite_readers::{ReadConn, Readers};
use crate::sqlite_writer::{ArchiveWriter, DurableConn};
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

/// How many ids one DELETE of [`OfflineStore::delete_offline`] binds. SQLite
/// limits the parameters of a statement (32766 in the bundled build); a
/// delivery batch is far smaller, but its size is the caller's choice.
const DELETE_CHUNK: usize = 500;

/// Everything an account owns, in one SQLite database file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// Writes, and reads off the login path.
    pool: SqlitePool,
    /// The hot reads (see `sqlite_readers.rs`); `None` for an in-memory database.
    readers: Option<Arc<Readers>>,
    /// The archive's batches (see `sqlite_writer.rs`); `None` for an in-memory database.
    archive_writer: Option<Arc<ArchiveWriter>>,
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
        // Until the schema is up to date and the readers are open.
        let _lock = crate::sqlite_files::prepare(path).await?;
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
            // A multi-row INSERT that a constraint could abort half way keeps a statement
            // journal of the pages it changes, to undo itself should a later row fail; in
            // memory rather than spilled to a temporary file once it passes 64 KiB. (The
            // archive's batches are written so that none can: `archive.rs`, APPEND_SQLITE.)
            .pragma("temp_store", "memory")
            // A checkpoint copies the WAL's pages into the database and syncs it; every
            // 10,000 pages (≈ 40 MiB of WAL) rather than SQLite's 1,000, a page the
            // archive's batches change again and again is copied once per checkpoint
            // instead of ten times (docs/performance.md).
            .pragma("wal_autocheckpoint", "10000")
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            // No ping on acquire: it is a round trip to the connection's worker thread that
            // tests nothing an in-process database can lose, and sqlx already pings every
            // connection as it goes back to the pool.
            .test_before_acquire(false)
            .before_acquire(|conn, _| Box::pin(async move { Ok(reusable(conn)) }))
            .connect_with(options.clone())
            .await?;
        let mut store = Self::migrated(pool).await?;
        // One reader per core: reads of different connections run in parallel on their
        // worker threads, and a core has no use for more.
        let count = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_CONNECTIONS as usize);
        store.readers = Some(Arc::new(Readers::open(&options, count).await?));
        store.archive_writer = Some(Arc::new(ArchiveWriter::new(&options)));
        Ok(store)
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
        Ok(SqliteStore {
            pool,
            readers: None,
            archive_writer: None,
        })
    }

    /// The connection for one hot read.
    pub(crate) async fn reader(&self) -> Result<ReadConn<'_>, StoreError> {
        Ok(match &self.readers {
            Some(readers) => ReadConn::Kept(readers.get().await?),
            None => ReadConn::Pooled(self.pool.acquire().await?),
        })
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
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Writes `entry` (its row and its groups, in order) for `contact` of account
    /// `account_id` inside `tx`, the account's roster version already bumped: the one
    /// roster entry write, for [`RosterStore::put_roster_entry`] and the read-modify-write.
    pub(crate) async fn write_entry(
        tx: &mut Transaction<'static, Sqlite>,
        account_id: i64,
        contact: &str,
        entry: &RosterEntry,
    ) -> Result<(), StoreError> {
        sqlx::query(UPSERT_ENTRY.sqlite())
            .bind(account_id)
            .bind(contact)
            .bind(&entry.name)
            .bind(entry.subscription.as_str())
            .bind(entry.pending_out)
            .bind(entry.pending_in)
            .bind(entry.approved)
            .bind(entry.in_roster)
            .bind(&entry.pending_in_stanza)
            .execute(&mut **tx)
            .await?;
        sqlx::query(DELETE_GROUPS.sqlite())
            .bind(account_id)
            .bind(contact)
            .execute(&mut **tx)
            .await?;
        for (position, group) in (0_i64..).zip(&entry.groups) {
            sqlx::query(
                "INSERT INTO roster_groups (account_id, contact, position, name) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(account_id)
            .bind(contact)
            .bind(position)
            .bind(group)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// A connection for a write whose sender has been told it is kept (an archive batch):
    /// its commits sync the WAL (synchronous=FULL), for the reason in
    /// [`OfflineStore::store_offline`]; the archive's own (`sqlite_writer.rs`). Give it
    /// back with [`Self::release_durable`].
    pub(crate) async fn durable_writer(&self) -> Result<DurableConn, StoreError> {
        if let Some(writer) = &self.archive_writer {
            return Ok(DurableConn::Own(writer.acquire().await?));
        }
        let mut conn = self.pool.acquire().await?;
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await?;
        Ok(DurableConn::Pooled(conn))
    }

    /// A write transaction on a [`Self::durable_writer`] connection (IMMEDIATE, as
    /// [`Self::begin_write`]).
    pub(crate) async fn begin_durable(
        conn: &mut DurableConn,
    ) -> Result<Transaction<'_, Sqlite>, StoreError> {
        Ok((**conn).begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Ends a [`Self::durable_writer`] connection's batch; `failed`: the batch failed.
    pub(crate) async fn release_durable(conn: DurableConn, failed: bool) {
        conn.release(failed).await;
    }

    /// A write transaction for one account's rows, and the account's id (NotFound, rolled
    /// back, when there is no such account).
    pub(crate) async fn begin_account_write(
        &self,
        id: &AccountId,
    ) -> Result<(Transaction<'static, Sqlite>, i64), StoreError> {
        let mut tx = self.begin_write().await?;
        let account_id: Option<i64> = sqlx::query_scalar(ACCOUNT_FOR_WRITE.sqlite())
            .bind(&id.domain)
            .bind(&id.username)
            .fetch_optional(&mut *tx)
            .await?;
        Ok((tx, account_id.ok_or(StoreError::NotFound)?))
    }
}

/// Whether a connection coming out of the pool (or a kept reader) can serve another caller.
///
/// sqlx counts the transactions it opened on a connection, and a failed COMMIT leaves the
/// count at one: SQLite ends the transaction itself on SQLITE_FULL and SQLITE_IOERR (its
/// "Response To Errors Within A Transaction"), so the ROLLBACK that sqlx queues when the
/// `Transaction` drops fails ("no transaction is active") and never lowers it. Back in the
/// pool, such a connection refuses every later `BEGIN IMMEDIATE` ("begin_with at non-zero
/// transaction depth") until the process restarts. No caller can hold a transaction on a
/// connection that is being lent out, so any count left is that leftover: retire the
/// connection (the pool opens a fresh one). By the time a connection is lent again, its
/// release ping has run after the queued ROLLBACK, so the count is settled.
pub(crate) fn reusable(conn: &SqliteConnection) -> bool {
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("retiring a sqlite connection left inside a failed transaction");
    }
    clean
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
        let inserted: Result<i64, sqlx::Error> = sqlx::query_scalar(INSERT_ACCOUNT.sqlite())
            .bind(&id.username)
            .bind(&id.domain)
            .bind(unix_now())
            .fetch_one(&mut *tx)
            .await;
        let account_id = match inserted {
            Ok(account_id) => account_id,
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
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        row.map(credential_from_row).transpose()
    }

    async fn account_exists(&self, id: &AccountId) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM accounts WHERE domain = ? AND username = ?")
                .bind(&id.domain)
                .bind(&id.username)
                .fetch_optional(&mut *self.reader().await?)
                .await?;
        Ok(found.is_some())
    }

    async fn remove_account(&self, id: &AccountId) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(RAISE_VERSION_FLOOR.sqlite())
            .bind(&id.domain)
            .bind(&id.username)
            .execute(&mut *tx)
            .await?;
        // The foreign keys' ON DELETE CASCADE removes everything the account owns with it:
        // credentials, roster entries (and through them their groups), offline messages,
        // private XML, vCard, blocklist, last activity, PEP nodes (and through them
        // their items) and its archive (through its owner row).
        let done = sqlx::query("DELETE FROM accounts WHERE domain = ? AND username = ?")
            .bind(&id.domain)
            .bind(&id.username)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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

    async fn accounts_without_credentials(&self) -> Result<Vec<AccountId>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT a.username, a.domain FROM accounts a WHERE NOT EXISTS \
             (SELECT 1 FROM scram_credentials c WHERE c.account_id = a.id) \
             ORDER BY a.domain, a.username",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(username, domain)| AccountId { username, domain })
            .collect())
    }
}

/// The roster query shared by [`RosterStore::roster`] and
/// [`RosterStore::roster_entry`]: the account row LEFT JOINed to its entries
/// and their groups, so the version and every entry come from one statement
/// (one consistent snapshot, without a read transaction). An account without
/// entries yields one row with NULL entry columns.
const ROSTER_SELECT: &str = roster_query!("", "");

#[async_trait::async_trait]
impl RosterStore for SqliteStore {
    async fn roster(&self, id: &AccountId) -> Result<(u64, Vec<RosterEntry>), StoreError> {
        let rows: Vec<RosterRow> =
            sqlx::query_as(&format!("{ROSTER_SELECT} ORDER BY e.contact, g.position"))
                .bind(&id.domain)
                .bind(&id.username)
                .fetch_all(&mut *self.reader().await?)
                .await?;
        roster_from_rows(rows)
    }

    async fn roster_version(&self, id: &AccountId) -> Result<u64, StoreError> {
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT roster_version FROM accounts WHERE domain = ? AND username = ?",
        )
        .bind(&id.domain)
        .bind(&id.username)
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        version.map_or(Ok(0), version_from_db)
    }

    async fn roster_entry(
        &self,
        id: &AccountId,
        contact: &str,
    ) -> Result<Option<RosterEntry>, StoreError> {
        let rows: Vec<RosterRow> = sqlx::query_as(&format!(
            "{ROSTER_SELECT} AND e.contact = ? ORDER BY g.position"
        ))
        .bind(&id.domain)
        .bind(&id.username)
        .bind(contact)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        Ok(roster_from_rows(rows)?.1.pop())
    }

    async fn put_roster_entry(
        &self,
        id: &AccountId,
        entry: &RosterEntry,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        // Bump first: it finds the account (NotFound otherwise) and the
        // version and the rows commit together.
        let bumped: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE accounts SET roster_version = roster_version + 1 \
             WHERE domain = ? AND username = ? RETURNING id, roster_version",
        )
        .bind(&id.domain)
        .bind(&id.username)
        .fetch_optional(&mut *tx)
        .await?;
        let (account_id, version) = bumped.ok_or(StoreError::NotFound)?;
        Self::write_entry(&mut tx, account_id, &entry.contact, entry).await?;
        tx.commit().await?;
        version_from_db(version)
    }

    async fn update_roster_entry(
        &self,
        id: &AccountId,
        contact: &str,
        update: &mut RosterUpdateFn<'_>,
    ) -> Result<RosterUpdated, StoreError> {
        self.read_modify_write_entry(id, contact, update).await
    }

    async fn remove_roster_entry(
        &self,
        id: &AccountId,
        contact: &str,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.begin_write().await?;
        // ON DELETE CASCADE takes the groups along.
        let done = sqlx::query(
            "DELETE FROM roster_entries WHERE contact = ? AND account_id = \
             (SELECT id FROM accounts WHERE domain = ? AND username = ?)",
        )
        .bind(contact)
        .bind(&id.domain)
        .bind(&id.username)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            // Nothing changed, so the version must not either (a client
            // holding it still has the current roster). Dropping `tx` rolls
            // back.
            return Ok(None);
        }
        let version: i64 = sqlx::query_scalar(
            "UPDATE accounts SET roster_version = roster_version + 1 \
             WHERE domain = ? AND username = ? RETURNING roster_version",
        )
        .bind(&id.domain)
        .bind(&id.username)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        version_from_db(version).map(Some)
    }

    async fn roster_size(&self, id: &AccountId) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM roster_entries e JOIN accounts a ON a.id = e.account_id \
             WHERE a.domain = ? AND a.username = ? AND e.in_roster",
        )
        .bind(&id.domain)
        .bind(&id.username)
        .fetch_one(&self.pool)
        .await?;
        Ok(count_from_db(n))
    }

    async fn presence_shared_with(&self, contact: &str) -> Result<Vec<AccountId>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(PRESENCE_SHARED_WITH.sqlite())
            .bind(contact)
            .fetch_all(&mut *self.reader().await?)
            .await?;
        Ok(accounts_from_rows(rows))
    }
}

/// The body of [`OfflineStore::store_offline`], on a connection already set
/// to synchronous=FULL.
async fn store_offline_on(
    conn: &mut SqliteConnection,
    id: &AccountId,
    stanza: &str,
    limit: u64,
) -> Result<bool, StoreError> {
    // IMMEDIATE, for the reason in `begin_write`; it also makes the count
    // and the insert atomic, so concurrent senders cannot overshoot the limit.
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let account_id: Option<i64> =
        sqlx::query_scalar("SELECT id FROM accounts WHERE domain = ? AND username = ?")
            .bind(&id.domain)
            .bind(&id.username)
            .fetch_optional(&mut *tx)
            .await?;
    let account_id = account_id.ok_or(StoreError::NotFound)?;
    let stored: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM offline_messages WHERE account_id = ?")
            .bind(account_id)
            .fetch_one(&mut *tx)
            .await?;
    if count_from_db(stored) >= limit {
        return Ok(false);
    }
    sqlx::query("INSERT INTO offline_messages (account_id, stanza, stored_at) VALUES (?, ?, ?)")
        .bind(account_id)
        .bind(stanza)
        .bind(unix_now())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

#[async_trait::async_trait]
impl OfflineStore for SqliteStore {
    async fn store_offline(
        &self,
        id: &AccountId,
        stanza: &str,
        limit: u64,
    ) -> Result<bool, StoreError> {
        let mut conn: PoolConnection<Sqlite> = self.pool.acquire().await?;
        // The store runs synchronous=NORMAL, whose commits survive a process
        // crash but not a power loss (the WAL is synced only at checkpoints).
        // The sender of this message has been told it was accepted, so this
        // one commit syncs the WAL (FULL); the setting is per connection, so
        // it is put back before the connection returns to the pool. If this
        // future is dropped halfway, the connection keeps FULL: slower, not
        // less safe.
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await?;
        let result = store_offline_on(&mut conn, id, stanza, limit).await;
        if let Err(e) = sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await
        {
            // The message is stored (or not) regardless: report that, and
            // retire the connection rather than keep a stray setting.
            tracing::warn!(error = %e, "could not restore synchronous=NORMAL");
            conn.close_on_drop();
        }
        result
    }

    async fn offline_messages(&self, id: &AccountId) -> Result<Vec<OfflineMessage>, StoreError> {
        let rows: Vec<OfflineRow> = sqlx::query_as(
            "SELECT o.id, o.stanza, o.stored_at \
             FROM offline_messages o JOIN accounts a ON a.id = o.account_id \
             WHERE a.domain = ? AND a.username = ? ORDER BY o.id",
        )
        .bind(&id.domain)
        .bind(&id.username)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        Ok(rows.into_iter().map(offline_from_row).collect())
    }

    async fn delete_offline(&self, id: &AccountId, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        // One transaction over the chunks, so a delivery batch is deleted
        // whole or not at all.
        let mut tx = self.begin_write().await?;
        for chunk in ids.chunks(DELETE_CHUNK) {
            // Keyed by the account too: ids of another account's messages
            // match nothing.
            let mut q = QueryBuilder::<Sqlite>::new(
                "DELETE FROM offline_messages WHERE account_id = \
                 (SELECT id FROM accounts WHERE domain = ",
            );
            q.push_bind(&id.domain)
                .push(" AND username = ")
                .push_bind(&id.username)
                .push(") AND id IN (");
            let mut list = q.separated(", ");
            for message_id in chunk {
                list.push_bind(*message_id);
            }
            list.push_unseparated(")");
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn offline_count(&self, id: &AccountId) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM offline_messages o JOIN accounts a ON a.id = o.account_id \
             WHERE a.domain = ? AND a.username = ?",
        )
        .bind(&id.domain)
        .bind(&id.username)
        .fetch_one(&self.pool)
        .await?;
        Ok(count_from_db(n))
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn presence_roster(
        &self,
        id: &AccountId,
    ) -> Result<(Vec<RosterEntry>, bool), StoreError> {
        let rows: Vec<SqliteRow> = sqlx::query(PRESENCE_ROSTER_SELECT.sqlite())
            .bind(&id.domain)
            .bind(&id.username)
            .fetch_all(&mut *self.reader().await?)
            .await?;
        presence_roster_from_rows(&rows)
    }

    async fn close(&self) {
        if let Some(readers) = &self.readers {
            readers.close().await;
        }
        if let Some(writer) = &self.archive_writer {
            writer.close().await;
        }
        crate::common::close_pool(&self.pool).await;
    }
}
