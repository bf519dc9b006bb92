//! The archive's writer: one task per server that appends what the hooks hand it, as many
//! messages as are waiting in one transaction (group commit), and answers each hook once
//! its message is durable. A message waits for the commit before it goes on, so nothing
//! acknowledged is lost; the transaction's cost is shared by everything that arrived
//! while the last one ran. The same task's neighbour removes what retention says is too
//! old or too many (bounded deletes, one batch after another).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_storage::{AccountId, NewArchived, Store};
use tokio::sync::{mpsc, oneshot};

use super::MamConfig;
use crate::server::Server;

/// Messages waiting for the writer before a hook's send waits too.
const QUEUE: usize = 4096;

/// The most messages one transaction appends.
const MAX_BATCH: usize = 512;

/// How often retention runs, and the first time after start.
const RETENTION_EVERY: Duration = Duration::from_secs(60);
const RETENTION_FIRST: Duration = Duration::from_secs(5);

/// How many rows one retention delete removes, and how many deletes one run makes at most
/// (the rest waits for the next run, so a large backlog never holds the database long).
const DELETE_BATCH: u64 = 1000;
const DELETES_PER_RUN: usize = 20;

/// Why a batch failed, for every hook that waited on it (the error itself is logged once).
#[derive(Clone, Copy, Debug)]
enum Failure {
    OutOfSpace,
    Other,
}

struct Job {
    message: NewArchived,
    done: oneshot::Sender<Result<bool, Failure>>,
}

pub(super) struct Writer {
    retention_days: u32,
    max_messages: u64,
    /// Started with the first message (or query) after the server started.
    queue: OnceLock<mpsc::Sender<Job>>,
    /// Accounts that got messages since retention last looked (for the per-account limit).
    touched: Arc<Mutex<HashSet<AccountId>>>,
}

impl Writer {
    pub(super) fn new(config: &MamConfig) -> Writer {
        Writer {
            retention_days: config.retention_days,
            max_messages: config.max_messages_per_user,
            queue: OnceLock::new(),
            touched: Arc::default(),
        }
    }

    /// The writer's queue; the first call starts the writer and retention tasks.
    fn queue(&self, server: &Server) -> &mpsc::Sender<Job> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(write(server.store.clone(), rx, self.touched.clone()));
            if self.retention_days > 0 || self.max_messages > 0 {
                tokio::spawn(retain(
                    server.store.clone(),
                    self.retention_days,
                    self.max_messages,
                    self.touched.clone(),
                ));
            }
            tx
        })
    }

    /// Appends `message` and waits until it is durable: true when stored, false when its
    /// owner is no account (anymore). A storage failure is the sender's error:
    /// `resource-constraint` when the database is full, else `internal-server-error`.
    pub(super) async fn append(
        &self,
        server: &Server,
        message: NewArchived,
    ) -> Result<bool, StanzaError> {
        let (done, wait) = oneshot::channel();
        let sent = self.queue(server).send(Job { message, done }).await;
        let outcome = match sent {
            Ok(()) => wait.await.unwrap_or(Err(Failure::Other)),
            Err(_) => Err(Failure::Other),
        };
        outcome.map_err(|failure| match failure {
            // RFC 6120 §8.3.3.18: may succeed later, once the operator freed space.
            Failure::OutOfSpace => StanzaError::new(Condition::ResourceConstraint),
            Failure::Other => StanzaError::new(Condition::InternalServerError),
        })
    }
}

/// The writer task: waits for a message, takes what else is waiting, appends it all in one
/// transaction, answers each. Ends when the server drops its queue.
async fn write(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Job>,
    touched: Arc<Mutex<HashSet<AccountId>>>,
) {
    let mut last_stamp = 0;
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // Archive time never goes back within this writer, so `seq` order and time
        // order agree (expiry relies on it).
        let stamp = unix_now().max(last_stamp);
        last_stamp = stamp;
        let (messages, waiting): (Vec<NewArchived>, Vec<_>) = jobs
            .into_iter()
            .map(|mut job| {
                job.message.stamp = stamp;
                (job.message, job.done)
            })
            .unzip();
        let result = store.archive_append(&messages).await;
        let result = match result {
            Ok(stored) => {
                let mut touched = touched.lock().unwrap_or_else(|p| p.into_inner());
                for (message, stored) in messages.iter().zip(&stored) {
                    if *stored {
                        touched.insert(message.owner.clone());
                    }
                }
                Ok(stored)
            }
            Err(e) => {
                tracing::error!(error = %e, count = messages.len(), "archiving failed");
                Err(if e.is_out_of_space() {
                    Failure::OutOfSpace
                } else {
                    Failure::Other
                })
            }
        };
        for (n, done) in waiting.into_iter().enumerate() {
            let answer = match &result {
                Ok(stored) => Ok(stored.get(n).copied().unwrap_or(false)),
                Err(failure) => Err(*failure),
            };
            // A hook that stopped waiting (its session ended) needs no answer.
            let _ = done.send(answer);
        }
    }
}

/// Unix seconds (a clock before 1970 is a broken host: 0).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The retention task: every [`RETENTION_EVERY`], removes messages older than
/// `retention_days` and, of the accounts that got messages since, those beyond
/// `max_messages` — a bounded number of deletes per run.
async fn retain(
    store: Arc<dyn Store>,
    retention_days: u32,
    max_messages: u64,
    touched: Arc<Mutex<HashSet<AccountId>>>,
) {
    tokio::time::sleep(RETENTION_FIRST).await;
    loop {
        let mut deletes = 0;
        if retention_days > 0 {
            let cutoff = unix_now() - i64::from(retention_days) * 86_400;
            while deletes < DELETES_PER_RUN {
                deletes += 1;
                match store.archive_expire(cutoff, DELETE_BATCH).await {
                    Ok(n) if n == DELETE_BATCH => continue,
                    Ok(n) => {
                        if n > 0 {
                            tracing::info!(removed = n, "expired archived messages");
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "archive expiry failed");
                        break;
                    }
                }
            }
        }
        if max_messages > 0 {
            let owners: Vec<AccountId> = {
                let mut touched = touched.lock().unwrap_or_else(|p| p.into_inner());
                touched.drain().collect()
            };
            let mut left = Vec::new();
            for owner in owners {
                if deletes >= DELETES_PER_RUN {
                    left.push(owner);
                    continue;
                }
                deletes += 1;
                match store.archive_trim(&owner, max_messages, DELETE_BATCH).await {
                    // More may be over the limit: looked at again next run.
                    Ok(n) if n == DELETE_BATCH => left.push(owner),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "archive trim failed"),
                }
            }
            touched
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(left);
        }
        tokio::time::sleep(RETENTION_EVERY).await;
    }
}
