//! The part of the config a reload changes while the server runs: the limits of `[c2s]`,
//! `[auth]`, `[roster]`, `[offline]` and some of `[http]`. Readers take a snapshot
//! ([`Snapshot::get`]) once per connection or per request and keep it for that long, so
//! nothing on the routing path takes this lock per stanza; a reload swaps the snapshot and
//! what starts afterwards sees the new values. What is bound at start (listen addresses,
//! paths, storage) stays in `Server::config`.

use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Semaphore;

use crate::config::{AuthConfig, C2sConfig, Config, HttpConfig, OfflineConfig, RosterConfig};

/// The sections whose limits apply live. Their keys that need a restart (`c2s.listen`,
/// `http.bosh_path`, …) are kept as they were at start, so this never claims an address
/// that is not bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub c2s: C2sConfig,
    pub auth: AuthConfig,
    pub roster: RosterConfig,
    pub offline: OfflineConfig,
    pub http: HttpConfig,
}

impl Live {
    pub fn from_config(config: &Config) -> Live {
        Live {
            c2s: config.c2s.clone(),
            auth: config.auth.clone(),
            roster: config.roster.clone(),
            offline: config.offline.clone(),
            http: config.http.clone(),
        }
    }
}

/// The snapshot in force.
pub type LiveConfig = Snapshot<Live>;

/// A value a reload replaces whole: readers take the `Arc` in force ([`Snapshot::get`]) and
/// keep it for as long as one connection or request lasts; the lock is held only to clone
/// it, never across an await. The limits above, and the modules' options
/// (`Registrar::on_reload`).
#[derive(Debug, Default)]
pub struct Snapshot<T>(RwLock<Arc<T>>);

impl<T> Snapshot<T> {
    pub fn new(value: T) -> Snapshot<T> {
        Snapshot(RwLock::new(Arc::new(value)))
    }

    pub fn get(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set(&self, value: T) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(value);
    }

    /// Answers `read` from the value in force under the read lock, without cloning its
    /// `Arc` (`read` is a plain closure: never held across an await).
    pub fn read<R>(&self, read: impl FnOnce(&T) -> R) -> R {
        read(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The open-connection cap (`c2s.max_connections`): one semaphore permit per open client
/// connection, whose number a reload can change.
#[derive(Debug)]
pub struct ConnectionCap {
    permits: Arc<Semaphore>,
    cap: Mutex<usize>,
}

impl ConnectionCap {
    pub fn new(cap: usize) -> ConnectionCap {
        ConnectionCap {
            permits: Arc::new(Semaphore::new(cap)),
            cap: Mutex::new(cap),
        }
    }

    pub fn permits(&self) -> &Arc<Semaphore> {
        &self.permits
    }

    /// A larger cap adds permits at once. A smaller one takes the free permits away and,
    /// for the rest, the next ones open connections give back: nobody is dropped, and new
    /// connections wait until fewer than the new cap are open.
    pub fn resize(&self, new: usize) {
        let mut cap = self.cap.lock().unwrap_or_else(|p| p.into_inner());
        if new > *cap {
            self.permits.add_permits(new - *cap);
        } else if new < *cap {
            let excess = *cap - new;
            let owed = excess - self.permits.forget_permits(excess);
            if owed > 0 {
                let permits = self.permits.clone();
                let owed = u32::try_from(owed).unwrap_or(u32::MAX);
                // Released permits go to waiters first (tokio's semaphore is fair), so
                // this one collects them before any new connection gets one.
                tokio::spawn(async move {
                    if let Ok(taken) = permits.acquire_many_owned(owed).await {
                        taken.forget();
                    }
                });
            }
        }
        *cap = new;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_smaller_cap_waits_for_open_connections_to_close() {
        let cap = ConnectionCap::new(3);
        let a = cap.permits().clone().try_acquire_owned().unwrap();
        let b = cap.permits().clone().try_acquire_owned().unwrap();
        cap.resize(1);
        // Two open, cap 1: nothing new until both closed.
        assert!(cap.permits().clone().try_acquire_owned().is_err());
        drop(a);
        tokio::task::yield_now().await;
        assert!(cap.permits().clone().try_acquire_owned().is_err());
        drop(b);
        tokio::task::yield_now().await;
        let c = cap.permits().clone().try_acquire_owned().unwrap();
        assert!(cap.permits().clone().try_acquire_owned().is_err());
        cap.resize(2);
        let _d = cap.permits().clone().try_acquire_owned().unwrap();
        drop(c);
    }
}
