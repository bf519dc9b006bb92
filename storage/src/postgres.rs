//! PostgreSQL backend: [`PostgresStore`].

use std::str::FromStr as _;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Transaction};

use crate::account::{AccountId, AccountStore, ScramCredential, ScramHash};
use crate::common::{
    accounts_from_rows, count_from_db, credential_from_row, offline_from_row,
    presence_roster_from_rows, roster_from_rows, unix_now, version_from_db, CredentialRow,
    OfflineRow, RosterRow, ACCOUNT_FOR_WRITE, INSERT_ACCOUNT, PRESENCE_ROSTER_SELECT,
    PRESENCE_SHARED_WITH, RAISE_VERSION_FLOOR,
};
use crate::offline::{OfflineMessage, OfflineStore};
use crate::roster::{
    RosterEntry, RosterStore, RosterUpdateFn, RosterUpdated, DELETE_GROUPS, UPSERT_ENTRY,
};
use crate::{Store, StoreError};

/// Embedded like the SQLite set; a separate directory because the dialects
/// differ (identity columns, BYTEA) and sqlx checksums each file.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// PostgreSQL runs writers concurrently, so the pool can be larger than
/// SQLite's; still modest, since every connection is a server process.
const MAX_CONNECTIONS: u32 = 8;

/// Everything an account owns, in a PostgreSQL database.
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

    /// The connection for one read (the SQLite backend keeps some aside; here the pool's).
    pub(crate) async fn reader(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// A write transaction (the SQLite backend's takes the write lock up front).
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// Writes `entry` (its row and its groups, in order) for `contact` of account
    /// `account_id` inside `tx`, the account's roster version already bumped: the one
    /// roster entry write, for [`RosterStore::put_roster_entry`] and the read-modify-write.
    pub(crate) async fn write_entry(
        tx: &mut Transaction<'static, Postgres>,
        account_id: i64,
        contact: &str,
        entry: &RosterEntry,
    ) -> Result<(), StoreError> {
        sqlx::query(UPSERT_ENTRY.postgres())
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
        sqlx::query(DELETE_GROUPS.postgres())
            .bind(account_id)
            .bind(contact)
            .execute(&mut **tx)
            .await?;
        if !entry.groups.is_empty() {
            // One statement for all groups: positions are the array indexes.
            sqlx::query(
                "INSERT INTO roster_groups (account_id, contact, position, name) \
                 SELECT $1, $2, g.ord - 1, g.name \
                 FROM unnest($3::text[]) WITH ORDINALITY AS g(name, ord)",
            )
            .bind(account_id)
            .bind(contact)
            .bind(&entry.groups)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// A connection for a write whose sender has been told it is kept (an archive batch):
    /// PostgreSQL's commits are durable as they are (synchronous_commit on).
    pub(crate) async fn durable_writer(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// A write transaction on a [`Self::durable_writer`] connection.
    pub(crate) async fn begin_durable(
        conn: &mut PoolConnection<Postgres>,
    ) -> Result<Transaction<'_, Postgres>, StoreError> {
        Ok(sqlx::Connection::begin(&mut **conn).await?)
    }

    /// Nothing to put back (the SQLite backend's resets its sync setting); a connection
    /// a failed batch left in a bad state is found out by the pool.
    pub(crate) async fn release_durable(_conn: PoolConnection<Postgres>, _failed: bool) {}

    /// A write transaction for one account's rows, and the account's id (NotFound, rolled
    /// back, when there is no such account). The account row stays locked until the end.
    pub(crate) async fn begin_account_write(
        &self,
        id: &AccountId,
    ) -> Result<(Transaction<'static, Postgres>, i64), StoreError> {
        let mut tx = self.pool.begin().await?;
        let account_id: Option<i64> = sqlx::query_scalar(ACCOUNT_FOR_WRITE.postgres())
            .bind(&id.domain)
            .bind(&id.username)
            .fetch_optional(&mut *tx)
            .await?;
        Ok((tx, account_id.ok_or(StoreError::NotFound)?))
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
        let inserted: Result<i64, sqlx::Error> = sqlx::query_scalar(INSERT_ACCOUNT.postgres())
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
        let mut tx = self.pool.begin().await?;
        sqlx::query(RAISE_VERSION_FLOOR.postgres())
            .bind(&id.domain)
            .bind(&id.username)
            .execute(&mut *tx)
            .await?;
        // ON DELETE CASCADE removes everything the account owns (credentials, roster
        // entries and their groups, offline messages, private XML, vCard, blocklist, last
        // activity, PEP nodes and their items, its archive through its owner row).
        let done = sqlx::query("DELETE FROM accounts WHERE domain = $1 AND username = $2")
            .bind(&id.domain)
            .bind(&id.username)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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

/// See the SQLite backend's `ROSTER_SELECT`: version and entries from one
/// statement, one consistent snapshot.
const ROSTER_SELECT: &str = "SELECT a.roster_version, e.contact, e.name, e.subscription, \
     e.pending_out, e.pending_in, e.approved, e.in_roster, e.pending_in_stanza, g.name \
     FROM accounts a \
     LEFT JOIN roster_entries e ON e.account_id = a.id \
     LEFT JOIN roster_groups g ON g.account_id = e.account_id AND g.contact = e.contact \
     WHERE a.domain = $1 AND a.username = $2";

#[async_trait::async_trait]
impl RosterStore for PostgresStore {
    async fn roster(&self, id: &AccountId) -> Result<(u64, Vec<RosterEntry>), StoreError> {
        let rows: Vec<RosterRow> =
            sqlx::query_as(&format!("{ROSTER_SELECT} ORDER BY e.contact, g.position"))
                .bind(&id.domain)
                .bind(&id.username)
                .fetch_all(&self.pool)
                .await?;
        roster_from_rows(rows)
    }

    async fn roster_version(&self, id: &AccountId) -> Result<u64, StoreError> {
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT roster_version FROM accounts WHERE domain = $1 AND username = $2",
        )
        .bind(&id.domain)
        .bind(&id.username)
        .fetch_optional(&self.pool)
        .await?;
        version.map_or(Ok(0), version_from_db)
    }

    async fn roster_entry(
        &self,
        id: &AccountId,
        contact: &str,
    ) -> Result<Option<RosterEntry>, StoreError> {
        let rows: Vec<RosterRow> = sqlx::query_as(&format!(
            "{ROSTER_SELECT} AND e.contact = $3 ORDER BY g.position"
        ))
        .bind(&id.domain)
        .bind(&id.username)
        .bind(contact)
        .fetch_all(&self.pool)
        .await?;
        Ok(roster_from_rows(rows)?.1.pop())
    }

    async fn put_roster_entry(
        &self,
        id: &AccountId,
        entry: &RosterEntry,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Bump first: it finds the account (NotFound otherwise) and locks its
        // row, so concurrent writes to one roster serialise here and get
        // their versions in commit order. Every roster write takes this lock
        // before any entry row, so they cannot deadlock each other.
        let bumped: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE accounts SET roster_version = roster_version + 1 \
             WHERE domain = $1 AND username = $2 RETURNING id, roster_version",
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
        let mut tx = self.pool.begin().await?;
        // Account row first, as in put_roster_entry (same lock order).
        let account_id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM accounts WHERE domain = $1 AND username = $2 FOR UPDATE",
        )
        .bind(&id.domain)
        .bind(&id.username)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(account_id) = account_id else {
            return Ok(None);
        };
        // ON DELETE CASCADE takes the groups along.
        let done = sqlx::query("DELETE FROM roster_entries WHERE account_id = $1 AND contact = $2")
            .bind(account_id)
            .bind(contact)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            // Nothing changed, so neither does the version.
            return Ok(None);
        }
        let version: i64 = sqlx::query_scalar(
            "UPDATE accounts SET roster_version = roster_version + 1 \
             WHERE id = $1 RETURNING roster_version",
        )
        .bind(account_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        version_from_db(version).map(Some)
    }

    async fn roster_size(&self, id: &AccountId) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM roster_entries e JOIN accounts a ON a.id = e.account_id \
             WHERE a.domain = $1 AND a.username = $2 AND e.in_roster",
        )
        .bind(&id.domain)
        .bind(&id.username)
        .fetch_one(&self.pool)
        .await?;
        Ok(count_from_db(n))
    }

    async fn presence_shared_with(&self, contact: &str) -> Result<Vec<AccountId>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(PRESENCE_SHARED_WITH.postgres())
            .bind(contact)
            .fetch_all(&self.pool)
            .await?;
        Ok(accounts_from_rows(rows))
    }
}

#[async_trait::async_trait]
impl OfflineStore for PostgresStore {
    async fn store_offline(
        &self,
        id: &AccountId,
        stanza: &str,
        limit: u64,
    ) -> Result<bool, StoreError> {
        // Durable on commit with PostgreSQL's default synchronous_commit=on.
        let mut tx = self.pool.begin().await?;
        // FOR UPDATE: concurrent senders to one account serialise here, so
        // the count below cannot go stale before the insert (READ COMMITTED
        // alone would let two of them both see limit - 1 and both insert).
        let account_id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM accounts WHERE domain = $1 AND username = $2 FOR UPDATE",
        )
        .bind(&id.domain)
        .bind(&id.username)
        .fetch_optional(&mut *tx)
        .await?;
        let account_id = account_id.ok_or(StoreError::NotFound)?;
        let stored: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM offline_messages WHERE account_id = $1")
                .bind(account_id)
                .fetch_one(&mut *tx)
                .await?;
        if count_from_db(stored) >= limit {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO offline_messages (account_id, stanza, stored_at) VALUES ($1, $2, $3)",
        )
        .bind(account_id)
        .bind(stanza)
        .bind(unix_now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn offline_messages(&self, id: &AccountId) -> Result<Vec<OfflineMessage>, StoreError> {
        let rows: Vec<OfflineRow> = sqlx::query_as(
            "SELECT o.id, o.stanza, o.stored_at \
             FROM offline_messages o JOIN accounts a ON a.id = o.account_id \
             WHERE a.domain = $1 AND a.username = $2 ORDER BY o.id",
        )
        .bind(&id.domain)
        .bind(&id.username)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(offline_from_row).collect())
    }

    async fn delete_offline(&self, id: &AccountId, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        // One array parameter instead of a list of them; keyed by the
        // account too, so another account's ids match nothing.
        sqlx::query(
            "DELETE FROM offline_messages WHERE id = ANY($3) AND account_id = \
             (SELECT id FROM accounts WHERE domain = $1 AND username = $2)",
        )
        .bind(&id.domain)
        .bind(&id.username)
        .bind(ids)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn offline_count(&self, id: &AccountId) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM offline_messages o JOIN accounts a ON a.id = o.account_id \
             WHERE a.domain = $1 AND a.username = $2",
        )
        .bind(&id.domain)
        .bind(&id.username)
        .fetch_one(&self.pool)
        .await?;
        Ok(count_from_db(n))
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn presence_roster(
        &self,
        id: &AccountId,
    ) -> Result<(Vec<RosterEntry>, bool), StoreError> {
        let rows: Vec<PgRow> = sqlx::query(PRESENCE_ROSTER_SELECT.postgres())
            .bind(&id.domain)
            .bind(&id.username)
            .fetch_all(&self.pool)
            .await?;
        presence_roster_from_rows(&rows)
    }

    async fn close(&self) {
        crate::common::close_pool(&self.pool).await;
    }
}
