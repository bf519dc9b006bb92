//! One lock per account around read-modify-write of its roster entries.
//!
//! Subscription handling reads an entry, applies a transition and writes it back; two
//! stanzas for the same account handled at once (the user subscribing while the contact's
//! request arrives) would otherwise lose one of the two updates. A lock is held only for
//! the read and the write of one account's entry, never while routing to another account,
//! so two accounts' locks are never held together.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Above this many idle entries the table is swept on the next lock.
const SWEEP_ABOVE: usize = 1024;

#[derive(Default)]
pub struct RosterLocks {
    by_account: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

impl RosterLocks {
    /// Waits for, then holds, the lock of `account` (a bare JID) until the guard drops.
    pub async fn lock(&self, account: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.by_account.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > SWEEP_ABOVE {
                // Only the table holds an idle lock.
                map.retain(|_, lock| Arc::strong_count(lock) > 1);
            }
            map.entry(account.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_per_account_and_accounts_are_independent() {
        let locks = Arc::new(RosterLocks::default());
        let held = locks.lock("alice@localhost").await;
        // Another account is not blocked.
        let _bob = locks.lock("bob@localhost").await;
        // The same account waits until the first guard is gone.
        let waiter = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.lock("alice@localhost").await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the second holder gets the lock")
            .expect("task");
    }
}
