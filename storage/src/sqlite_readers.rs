//! Connections kept aside for SQLite's hot reads (login credentials, rosters, offline
//! messages, blocklists, photo hashes, and the other reads of private XML, vCards and last
//! activity), outside the sqlx pool.
//!
//! Why: sqlx runs each SQLite connection on its own worker thread, and a pooled query
//! costs three round trips to that thread: a ping when the idle connection is acquired
//! (`test_before_acquire`), the query itself, and a ping when the connection goes back
//! (unconditional in sqlx 0.8, from a spawned task). Each round trip is a thread wake-up
//! and a context switch; on a busy core they were most of a login's server CPU. A kept
//! connection behind a mutex costs only the query's own round trip.
//!
//! Only single autocommit reads run here, so a reader never holds a transaction: each
//! read sees every commit made before it (by this process or another, e.g. `jabberwock
//! user passwd`), and a reader never blocks a WAL checkpoint between reads.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, Sqlite, SqliteConnection};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::sqlite::reusable;
use crate::StoreError;

/// A few kept connections, each used by one read at a time.
#[derive(Debug)]
pub(crate) struct Readers {
    /// `None` once closed.
    conns: Vec<Mutex<Option<SqliteConnection>>>,
    /// Where a read that finds every reader busy queues, round robin.
    next: AtomicUsize,
    /// For replacing a reader that cannot be reused.
    options: SqliteConnectOptions,
}

/// A reader lent to one read.
pub(crate) type Reader<'a> = MappedMutexGuard<'a, SqliteConnection>;

impl Readers {
    /// Opens `count` (at least one) connections with `options`.
    pub(crate) async fn open(
        options: &SqliteConnectOptions,
        count: usize,
    ) -> Result<Self, StoreError> {
        let mut conns = Vec::with_capacity(count.max(1));
        for _ in 0..count.max(1) {
            conns.push(Mutex::new(Some(options.connect().await?)));
        }
        Ok(Readers {
            conns,
            next: AtomicUsize::new(0),
            options: options.clone(),
        })
    }

    /// A free reader if there is one, else a place in the queue of one of them.
    pub(crate) async fn get(&self) -> Result<Reader<'_>, StoreError> {
        let mut guard = match self.conns.iter().find_map(|c| c.try_lock().ok()) {
            Some(guard) => guard,
            None => {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
                self.conns[i].lock().await
            }
        };
        // Readers never begin a transaction, but one left inside one would serve a stale
        // snapshot and hold back checkpoints forever: the pool's rule applies here too.
        if guard.as_ref().is_some_and(|c| !reusable(c)) {
            let fresh = self.options.connect().await?;
            if let Some(old) = guard.replace(fresh) {
                drop(old.close_hard().await);
            }
        }
        MutexGuard::try_map(guard, Option::as_mut)
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))
    }

    /// Closes every reader (after the read it is serving, if any).
    pub(crate) async fn close(&self) {
        for conn in &self.conns {
            if let Some(conn) = conn.lock().await.take() {
                if let Err(e) = conn.close().await {
                    tracing::warn!(error = %e, "closing a sqlite reader failed");
                }
            }
        }
    }
}

/// The connection one read runs on: a kept reader, or a pooled connection where there are
/// no readers (an in-memory database, whose every connection is a separate database).
pub(crate) enum ReadConn<'a> {
    Kept(Reader<'a>),
    Pooled(PoolConnection<Sqlite>),
}

impl Deref for ReadConn<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match self {
            ReadConn::Kept(c) => c,
            ReadConn::Pooled(c) => c,
        }
    }
}

impl DerefMut for ReadConn<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            ReadConn::Kept(c) => c,
            ReadConn::Pooled(c) => c,
        }
    }
}
