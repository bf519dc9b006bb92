//! Slows down password guessing: each recent SASL failure from an address adds a delay
//! before that address's next failure answer (RFC 6120 §13.4 leaves the policy to us).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures older than this are forgotten.
const MEMORY: Duration = Duration::from_secs(60);
/// No single answer waits longer than this, so a throttled client still gets its reply.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// Bound on tracked addresses, so a spray of sources can't grow the table forever.
const MAX_TRACKED: usize = 10_000;

pub struct AuthThrottle {
    /// `c2s.auth_failure_delay` in milliseconds (a reload changes it).
    per_failure: AtomicU64,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl AuthThrottle {
    pub fn new(per_failure: Duration) -> Self {
        AuthThrottle {
            per_failure: AtomicU64::new(millis(per_failure)),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// A reload's `c2s.auth_failure_delay`, for the failures from now on.
    pub fn set_per_failure(&self, per_failure: Duration) {
        self.per_failure
            .store(millis(per_failure), Ordering::Relaxed);
    }

    /// Records a failure and returns how long to wait before answering it.
    pub fn failure(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let per_failure = Duration::from_millis(self.per_failure.load(Ordering::Relaxed));
        let Ok(mut map) = self.failures.lock() else {
            return per_failure;
        };
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (_, last)| now.duration_since(*last) < MEMORY);
        }
        let entry = map.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= MEMORY {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        per_failure.saturating_mul(entry.0).min(MAX_DELAY)
    }

    /// A success clears the address's record.
    pub fn success(&self, ip: IpAddr) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&ip);
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_per_failure_and_is_capped() {
        let t = AuthThrottle::new(Duration::from_millis(500));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(t.failure(ip), Duration::from_millis(500));
        assert_eq!(t.failure(ip), Duration::from_millis(1000));
        for _ in 0..20 {
            t.failure(ip);
        }
        assert_eq!(t.failure(ip), MAX_DELAY);
        t.success(ip);
        assert_eq!(t.failure(ip), Duration::from_millis(500));
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(t.failure(other), Duration::from_millis(500));
    }
}
