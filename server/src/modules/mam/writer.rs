//! The archive's writer: one task per server (and one more for the rooms of the MUC
//! service) that appends what the hooks hand it, as many messages as are waiting in one
//! transaction (group commit), and answers each once it is durable; the transaction's
//! cost is shared by everything that arrived while the last one ran. The same task's
//! neighbour removes what retention says is too old or too many (bounded deletes, one
//! batch after another).
//!
//! Two kinds of append (docs/archive.md, "The acknowledgement rule"): one its caller waits
//! for, whose failure is the sender's error; and one handed to the sending client's
//! session (`modules::durability`), whose message goes on at once. A batch that fails keeps
//! the second kind and tries them again, with whatever comes next, until they are
//! durable: their senders were not told they were stored, and the messages already went
//! on. While such a batch waits the writer counts as failing, and the hooks wait for
//! every append again, so that a full disk refuses messages rather than letting them
//! through unarchived.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_storage::{AccountId, ArchiveOwner, NewArchived, Store};
use tokio::sync::{mpsc, oneshot, Notify};

use super::MamConfig;
use crate::server::Server;

/// Messages waiting for the writer before a hook's send waits too: twice a batch, so the
/// next batch fills while one commits.
const QUEUE: usize = 16384;

/// The most messages one transaction appends. Each commit writes every page it changed
/// to the WAL, and each owner's archive changes a page of each index however few of its
/// rows a batch holds: the larger the batch, the fewer pages per message. 8,192 rather
/// than 2,048 took a fifth off the server's CPU per message in the archive scenario
/// (docs/performance.md). There, at 14,000 messages a second, the writer commits about
/// four times a second: an acknowledgement waits up to a quarter of a second for its
/// batch under such a load, and not at all longer than before when the rate is low (a
/// batch is what waited while the last one committed, never held back to grow).
const MAX_BATCH: usize = 8192;

/// How long a failed batch's deferred messages wait before they are tried again when
/// nothing new comes.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How often retention runs, and the first time after start.
const RETENTION_EVERY: Duration = Duration::from_secs(60);
const RETENTION_FIRST: Duration = Duration::from_secs(5);
/// How soon a run follows one that left work for later (its deletes bounded, below).
const RETENTION_BACKLOG: Duration = Duration::from_secs(1);

/// How many rows one retention delete removes, and how many deletes one run makes at most
/// (the rest waits for the next run, so a large backlog never holds the database long).
const DELETE_BATCH: u64 = 1000;
const DELETES_PER_RUN: usize = 20;

/// Why a batch failed, for every hook that waited on it (the error itself is logged once).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Failure {
    OutOfSpace,
    Other,
}

/// The answer to one append: stored or not (its owner is no account), or why it failed.
pub(crate) type Stored = oneshot::Receiver<Result<bool, Failure>>;

/// Who waits for an append's answer.
enum Waiter {
    /// A caller that waits: told when it is durable, or why it failed.
    Caller(oneshot::Sender<Result<bool, Failure>>),
    /// A client's session (`modules::durability`): told once durable; a failure keeps it
    /// for the next batch.
    Session(oneshot::Sender<bool>),
}

enum Job {
    Append {
        message: NewArchived,
        done: Waiter,
    },
    /// Answered once everything queued before it was written (or failed).
    Flush(oneshot::Sender<()>),
    /// A room's archive goes, after every message queued for it before.
    ForgetRoom(String),
}

/// `[modules.mam] retention_days` and `max_messages_per_user` in force: each retention run
/// reads them, so a reload's values apply from the next run on (which the reload starts).
#[derive(Default)]
pub(crate) struct Retention {
    days: AtomicU32,
    max_messages: AtomicU64,
    /// The next run looks at every account's archive, not only those that got messages
    /// since the last: the per-account limit was set at start or by a reload, or lowered.
    sweep: AtomicBool,
    /// Wakes the retention task when a reload changed the values.
    changed: Notify,
}

impl Retention {
    pub(crate) fn set(&self, config: &MamConfig) {
        self.days.store(config.retention_days, Ordering::Relaxed);
        let max = config.max_messages_per_user;
        let before = self.max_messages.swap(max, Ordering::Relaxed);
        if max > 0 && (before == 0 || max < before) {
            self.sweep.store(true, Ordering::Relaxed);
        }
    }
}

pub(crate) struct Writer {
    /// The accounts' writer runs retention over every archive; the rooms' has none.
    retention: Option<Arc<Retention>>,
    /// Started as the server starts ([`Writer::start`]), or else with the first message
    /// (or query).
    queue: OnceLock<mpsc::Sender<Job>>,
    /// Accounts that got messages since retention last looked (for the per-account limit).
    touched: Arc<Mutex<HashSet<AccountId>>>,
    /// The last batch failed and its deferred messages wait to be tried again.
    failing: Arc<AtomicBool>,
}

impl Writer {
    /// The accounts' writer, with retention as `config` says (and as reloads set it).
    pub(crate) fn new(config: &MamConfig) -> Writer {
        let retention = Retention::default();
        retention.set(config);
        Writer {
            retention: Some(Arc::new(retention)),
            ..Writer::without_retention()
        }
    }

    /// A writer that removes nothing by age or count (the rooms').
    pub(crate) fn without_retention() -> Writer {
        Writer {
            retention: None,
            queue: OnceLock::new(),
            touched: Arc::default(),
            failing: Arc::default(),
        }
    }

    /// The writer's queue; the first call starts the writer and retention tasks.
    fn queue(&self, server: &Server) -> &mpsc::Sender<Job> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(write(
                server.store.clone(),
                rx,
                Touched {
                    accounts: self.touched.clone(),
                    retention: self.retention.clone(),
                },
                self.failing.clone(),
            ));
            if let Some(retention) = &self.retention {
                tokio::spawn(retain(
                    server.store.clone(),
                    retention.clone(),
                    self.touched.clone(),
                ));
            }
            tx
        })
    }

    /// Starts the writer and retention tasks now: retention runs on an idle server too.
    pub(crate) fn start(&self, server: &Server) {
        self.queue(server);
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
        let done = Waiter::Caller(done);
        let sent = self.queue(server).send(Job::Append { message, done }).await;
        match sent {
            Ok(()) => stored(wait).await,
            Err(_) => Err(refusal(Failure::Other)),
        }
    }

    /// Retention as `config` says, from its next run (the accounts' writer only).
    pub(crate) fn set_retention(&self, config: &MamConfig) {
        if let Some(retention) = &self.retention {
            retention.set(config);
            retention.changed.notify_one();
        }
    }

    /// Whether an append may be handed to the client's session rather than waited for:
    /// the writer is not failing (then every sender hears of a failure), and a client's
    /// session is handling the stanza.
    pub(super) fn can_defer(&self) -> bool {
        !self.failing.load(Ordering::Relaxed) && crate::modules::durability::can_defer()
    }

    /// Queues `message` for the session to wait for (a full queue makes this wait):
    /// the answer, true once durable. Only where [`Self::can_defer`].
    pub(super) async fn append_deferred(
        &self,
        server: &Server,
        message: NewArchived,
    ) -> crate::modules::durability::Durable {
        let (done, wait) = oneshot::channel();
        let done = Waiter::Session(done);
        // A closed queue (the server stops) drops `done`: the session learns it failed.
        let _ = self.queue(server).send(Job::Append { message, done }).await;
        wait
    }

    /// Queues `message` without waiting (for a caller that holds a lock, and so keeps the
    /// order of its appends): the answer comes through [`stored`]. A full queue is
    /// `resource-constraint` (RFC 6120 §8.3.3.18: the writer is behind; later may work).
    pub(crate) fn append_now(
        &self,
        server: &Server,
        message: NewArchived,
    ) -> Result<Stored, StanzaError> {
        let (done, wait) = oneshot::channel();
        let done = Waiter::Caller(done);
        match self.queue(server).try_send(Job::Append { message, done }) {
            Ok(()) => Ok(wait),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Err(StanzaError::new(Condition::ResourceConstraint))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(refusal(Failure::Other)),
        }
    }

    /// Waits until every message queued before now was written (or its batch failed): a
    /// query then reads what was sent before it, whether the sender's session waited for
    /// the write or not.
    pub(super) async fn flush(&self, server: &Server) {
        self.flush_queue(self.queue(server)).await;
    }

    /// [`Self::flush`] when the server stops; nothing to do for a writer never started.
    pub(super) async fn drain(&self) {
        if let Some(queue) = self.queue.get() {
            self.flush_queue(queue).await;
        }
    }

    async fn flush_queue(&self, queue: &mpsc::Sender<Job>) {
        let (done, wait) = oneshot::channel();
        if queue.send(Job::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Removes `room`'s archive once what was queued for it before is written (without
    /// waiting, like [`Self::append_now`]). Should the queue be full, a task waits for
    /// room in it.
    pub(crate) fn forget_room(&self, server: &Server, room: String) {
        let queue = self.queue(server);
        if let Err(mpsc::error::TrySendError::Full(job)) = queue.try_send(Job::ForgetRoom(room)) {
            let queue = queue.clone();
            tokio::spawn(async move {
                let _ = queue.send(job).await;
            });
        }
    }
}

/// Waits for the answer to an append: stored or not, or the sender's error.
pub(crate) async fn stored(wait: Stored) -> Result<bool, StanzaError> {
    wait.await.unwrap_or(Err(Failure::Other)).map_err(refusal)
}

/// What the sender of a message that could not be archived is told.
fn refusal(failure: Failure) -> StanzaError {
    match failure {
        // RFC 6120 §8.3.3.18: may succeed later, once the operator freed space.
        Failure::OutOfSpace => StanzaError::new(Condition::ResourceConstraint),
        Failure::Other => StanzaError::new(Condition::InternalServerError),
    }
}

/// Where the writer notes the accounts it archived for, for retention's per-account limit.
struct Touched {
    accounts: Arc<Mutex<HashSet<AccountId>>>,
    /// The limit in force (a reload may set or clear it); none for the rooms' writer.
    retention: Option<Arc<Retention>>,
}

impl Touched {
    /// The set to note a batch's accounts in, only while there is a per-account limit
    /// (noting costs a hash and a clone per message).
    fn to_note(&self) -> Option<&Mutex<HashSet<AccountId>>> {
        self.retention
            .as_ref()
            .filter(|r| r.max_messages.load(Ordering::Relaxed) > 0)
            .map(|_| &*self.accounts)
    }
}

/// The writer task: waits for a message, takes what else is waiting, appends it all in one
/// transaction, answers each; a room's archive to forget is removed in its place in the
/// queue, between the appends before and after it. Ends when the server drops its queue.
async fn write(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Job>,
    touched: Touched,
    failing: Arc<AtomicBool>,
) {
    let mut last_stamp = 0;
    let mut next = None;
    // A failed batch's deferred messages, tried again first.
    let mut held: Vec<(NewArchived, Waiter)> = Vec::new();
    loop {
        let first = match next.take() {
            // What waited for the appends queued before it: they were just tried (and,
            // should they have failed, are tried again later, not before this is done).
            Some(Job::Flush(done)) => {
                let _ = done.send(());
                continue;
            }
            Some(Job::ForgetRoom(room)) => {
                forget_room(&*store, &room).await;
                continue;
            }
            Some(job) => Some(job),
            None if held.is_empty() => match rx.recv().await {
                Some(job) => Some(job),
                None => return,
            },
            // Tried again with the next message, or alone after a while.
            None => match tokio::time::timeout(RETRY_AFTER, rx.recv()).await {
                Ok(Some(job)) => Some(job),
                Ok(None) => return,
                Err(_) => None,
            },
        };
        let mut appends = std::mem::take(&mut held);
        let mut job = first;
        while let Some(current) = job.take() {
            match current {
                Job::Append { message, done } => appends.push((message, done)),
                Job::Flush(done) if appends.is_empty() => {
                    let _ = done.send(());
                }
                Job::ForgetRoom(room) if appends.is_empty() => forget_room(&*store, &room).await,
                // After the appends gathered so far.
                after => next = Some(after),
            }
            if next.is_some() || appends.len() >= MAX_BATCH {
                break;
            }
            job = rx.try_recv().ok();
        }
        if !appends.is_empty() {
            let (stamp, kept) = append(&*store, appends, last_stamp, touched.to_note()).await;
            last_stamp = stamp;
            held = kept;
            failing.store(!held.is_empty(), Ordering::Relaxed);
        }
    }
}

async fn forget_room(store: &dyn Store, room: &str) {
    match store.remove_room_archive(room).await {
        Ok(_) => tracing::debug!(%room, "room archive removed"),
        Err(e) => tracing::error!(%room, error = %e, "room archive not removed"),
    }
}

/// Appends one batch in one transaction and answers each message's waiter; returns the
/// batch's stamp, and the deferred messages of a batch that failed, to be tried again.
async fn append(
    store: &dyn Store,
    jobs: Vec<(NewArchived, Waiter)>,
    last_stamp: i64,
    touched: Option<&Mutex<HashSet<AccountId>>>,
) -> (i64, Vec<(NewArchived, Waiter)>) {
    // Archive time never goes back within this writer, so `seq` order and time
    // order agree (expiry relies on it).
    let stamp = unix_now().max(last_stamp);
    let (messages, waiting): (Vec<NewArchived>, Vec<_>) = jobs
        .into_iter()
        .map(|(mut message, done)| {
            message.stamp = stamp;
            (message, done)
        })
        .unzip();
    let result = crate::metrics::storage(
        crate::metrics::StorageOp::ArchiveAppend,
        store.archive_append(&messages),
    )
    .await;
    let result = match result {
        Ok(stored) => {
            if let Some(touched) = touched {
                let mut touched = touched.lock().unwrap_or_else(|p| p.into_inner());
                for (message, stored) in messages.iter().zip(&stored) {
                    // The per-account limit is for accounts (`max_messages_per_user`).
                    if let (true, ArchiveOwner::Account(account)) = (*stored, &message.owner) {
                        if !touched.contains(account) {
                            touched.insert(account.clone());
                        }
                    }
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
    let mut kept = Vec::new();
    for (n, (message, done)) in messages.into_iter().zip(waiting).enumerate() {
        // A waiter that stopped waiting (its session ended) needs no answer.
        match (done, &result) {
            (Waiter::Caller(done), Ok(stored)) => {
                let _ = done.send(Ok(stored.get(n).copied().unwrap_or(false)));
            }
            (Waiter::Caller(done), Err(failure)) => {
                let _ = done.send(Err(*failure));
            }
            // Not stored for want of an owner (the account just went) is final too.
            (Waiter::Session(done), Ok(_)) => {
                let _ = done.send(true);
            }
            (done @ Waiter::Session(_), Err(_)) => kept.push((message, done)),
        }
    }
    (stamp, kept)
}

/// Unix seconds (a clock before 1970 is a broken host: 0).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The retention task: every [`RETENTION_EVERY`] (and at once after a reload changed the
/// values), removes messages older than `retention_days` and, of the accounts that got
/// messages since (of all accounts, after the limit was set or lowered), those beyond
/// `max_messages` (both as in force at the run) — a bounded number of deletes per run.
async fn retain(
    store: Arc<dyn Store>,
    retention: Arc<Retention>,
    touched: Arc<Mutex<HashSet<AccountId>>>,
) {
    tokio::time::sleep(RETENTION_FIRST).await;
    loop {
        let retention_days = retention.days.load(Ordering::Relaxed);
        let max_messages = retention.max_messages.load(Ordering::Relaxed);
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
        if max_messages > 0 && retention.sweep.swap(false, Ordering::Relaxed) {
            match store.archive_accounts_over(max_messages).await {
                Ok(over) => touched
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(over),
                Err(e) => {
                    tracing::error!(error = %e, "archive limit: accounts not listed");
                    retention.sweep.store(true, Ordering::Relaxed);
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
        // A run that used its whole budget may have left work: the next follows soon.
        let pause = if deletes >= DELETES_PER_RUN {
            RETENTION_BACKLOG
        } else {
            RETENTION_EVERY
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = retention.changed.notified() => {}
        }
    }
}
