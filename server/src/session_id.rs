//! Session ids that stay unique when several server processes share one database (and,
//! later, route to each other), without asking each other: the high 32 bits are a prefix
//! drawn once per process from the operating system's random source, the low 32 bits count
//! this process's sessions. Two processes clash only if their prefixes do (one chance in
//! 2^32 per pair); the counter wraps within its prefix after 2^32 sessions, by which time
//! the session that had the id is long gone.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use rand::rngs::OsRng;
use rand::RngCore as _;

/// One process's source of session ids.
pub struct SessionIds {
    prefix: u64,
    next: AtomicU32,
}

impl SessionIds {
    /// A source with a fresh random prefix.
    pub fn new() -> Self {
        Self::with_prefix(OsRng.next_u32())
    }

    /// A source whose ids all carry `prefix` in their high 32 bits.
    pub fn with_prefix(prefix: u32) -> Self {
        SessionIds {
            prefix: u64::from(prefix) << 32,
            next: AtomicU32::new(0),
        }
    }

    /// The next id: this source's prefix and its counter.
    pub fn next_id(&self) -> u64 {
        self.prefix | u64::from(self.next.fetch_add(1, Ordering::Relaxed))
    }
}

impl Default for SessionIds {
    fn default() -> Self {
        Self::new()
    }
}

/// The next session id of this process.
pub fn next() -> u64 {
    static IDS: OnceLock<SessionIds> = OnceLock::new();
    IDS.get_or_init(SessionIds::new).next_id()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_of_one_process_are_distinct_and_carry_its_prefix() {
        let ids = SessionIds::with_prefix(0xdead_beef);
        let taken: Vec<u64> = (0..1000).map(|_| ids.next_id()).collect();
        assert!(taken.iter().all(|id| id >> 32 == 0xdead_beef));
        assert_eq!(taken.iter().collect::<HashSet<_>>().len(), taken.len());
    }

    #[test]
    fn two_processes_counting_alike_never_meet() {
        // Both start their counters at the same place, as two fresh processes do: only
        // the prefix tells their ids apart.
        let (a, b) = (SessionIds::with_prefix(1), SessionIds::with_prefix(2));
        let from_a: HashSet<u64> = (0..1000).map(|_| a.next_id()).collect();
        let from_b: HashSet<u64> = (0..1000).map(|_| b.next_id()).collect();
        assert!(from_a.is_disjoint(&from_b));
    }

    #[test]
    fn the_counter_wraps_inside_its_prefix() {
        let ids = SessionIds::with_prefix(7);
        ids.next.store(u32::MAX, Ordering::Relaxed);
        assert_eq!(ids.next_id(), (7 << 32) | u64::from(u32::MAX));
        assert_eq!(ids.next_id(), 7 << 32);
    }

    #[test]
    fn processes_draw_their_own_prefixes() {
        // Random 32-bit prefixes: 16 sources share one with a chance of about 3e-8.
        let prefixes: HashSet<u64> = (0..16).map(|_| SessionIds::new().next_id() >> 32).collect();
        assert_eq!(prefixes.len(), 16);
        // The process's own source counts on.
        assert_ne!(next(), next());
    }
}
