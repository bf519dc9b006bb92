//! The archive's batches on SQLite get a connection of their own, kept open: its page
//! cache is large enough for a batch of a few thousand rows across the archive table and
//! its indexes, so a batch neither spills dirty pages to the WAL before its commit nor
//! reads again the index pages the batch before it had. It stays at synchronous=FULL
//! (every commit syncs the WAL: docs/archive.md, "The acknowledgement rule") rather than
//! switching to it and back for each batch, and checks no foreign keys (see
//! [`ArchiveWriter::new`]). An in-memory database has no second
//! connection to its data, so there the pool's one is used.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Sqlite, SqliteConnection};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::StoreError;

/// The page cache of the archive's connection, in KiB (SQLite's negative `cache_size`).
/// Measured on the archive scenario (docs/performance.md): the default 2 MiB spilled and
/// re-read pages on every batch. Pages are allocated as they are first used: the cache
/// holds at most what the writer touched (its batches, retention's deletes), up to this.
const CACHE_KIB: u32 = 65536;

/// The archive's own connection, opened at its first batch and again after a failure
/// closed it.
#[derive(Debug)]
pub(crate) struct ArchiveWriter {
    options: SqliteConnectOptions,
    conn: Arc<Mutex<Option<SqliteConnection>>>,
}

impl ArchiveWriter {
    pub(crate) fn new(options: &SqliteConnectOptions) -> ArchiveWriter {
        ArchiveWriter {
            options: options
                .clone()
                .synchronous(SqliteSynchronous::Full)
                .pragma("cache_size", format!("-{CACHE_KIB}"))
                // A batch finds or makes its owner rows in its own transaction, which no
                // other connection can change before it commits, so checking each row's
                // `owner_id` again proves nothing; an immediate check would also make
                // SQLite journal every multi-row INSERT (`archive.rs`, APPEND_SQLITE).
                // Nothing on this connection deletes a parent row, so no cascade is missed.
                .foreign_keys(false),
            conn: Arc::default(),
        }
    }

    /// Closes the connection once the batch in flight (if any) is done; a later batch
    /// would open it again.
    pub(crate) async fn close(&self) {
        if let Some(conn) = self.conn.lock().await.take() {
            if let Err(e) = sqlx::Connection::close(conn).await {
                tracing::warn!(error = %e, "closing the archive's connection failed");
            }
        }
    }

    /// The connection, for one batch at a time.
    pub(crate) async fn acquire(
        &self,
    ) -> Result<OwnedMutexGuard<Option<SqliteConnection>>, StoreError> {
        let mut conn = self.conn.clone().lock_owned().await;
        if conn.is_none() {
            *conn = Some(self.options.connect().await?);
        }
        Ok(conn)
    }
}

/// A connection for an archive batch: the writer's own, or (in memory) the pool's, which
/// goes back to synchronous=NORMAL afterwards.
pub(crate) enum DurableConn {
    Own(OwnedMutexGuard<Option<SqliteConnection>>),
    Pooled(PoolConnection<Sqlite>),
}

impl DurableConn {
    /// Ends the batch's use of the connection. The writer's own is closed when the batch
    /// failed (`failed`), so the next one starts on a fresh connection rather than on one
    /// left in an unknown state.
    pub(crate) async fn release(self, failed: bool) {
        match self {
            DurableConn::Own(mut conn) => {
                if failed {
                    conn.take();
                }
            }
            DurableConn::Pooled(mut conn) => {
                if let Err(e) = sqlx::query("PRAGMA synchronous = NORMAL")
                    .execute(&mut *conn)
                    .await
                {
                    tracing::warn!(error = %e, "could not restore synchronous=NORMAL");
                    conn.close_on_drop();
                }
            }
        }
    }
}

impl Deref for DurableConn {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match self {
            DurableConn::Own(conn) => conn.as_ref().expect("opened by acquire"),
            DurableConn::Pooled(conn) => conn,
        }
    }
}

impl DerefMut for DurableConn {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            DurableConn::Own(conn) => conn.as_mut().expect("opened by acquire"),
            DurableConn::Pooled(conn) => conn,
        }
    }
}
