//! Limits per peer: how many incoming streams one remote address has open, and how many
//! are authenticated for one remote domain. A stream holds a [`Slot`] for each count it
//! is in; dropping the stream gives them back. A reload may change the limits: a key over a
//! lowered one keeps its open streams, and gets no new one until it is under.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Open streams per key, at most `max` each.
pub struct Counts<K> {
    open: Mutex<HashMap<K, usize>>,
    max: AtomicUsize,
}

/// One stream's place in a [`Counts`].
pub struct Slot<K: Hash + Eq + Clone> {
    counts: Arc<Counts<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Counts<K> {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Counts {
            open: Mutex::new(HashMap::new()),
            max: AtomicUsize::new(max),
        })
    }

    /// The limit in force.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    /// A new limit, for the streams that come next.
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// A place for one more stream of `key`, unless it has `max` already.
    pub fn take(self: &Arc<Self>, key: K) -> Option<Slot<K>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= self.max() {
            return None;
        }
        *count += 1;
        Some(Slot {
            counts: self.clone(),
            key,
        })
    }
}

impl<K: Hash + Eq + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_max_slots_and_them_back() {
        let counts = Counts::new(2);
        let first = counts.take("a");
        let second = counts.take("a");
        assert!(first.is_some() && second.is_some());
        assert!(counts.take("a").is_none());
        assert!(counts.take("b").is_some());
        drop(first);
        let third = counts.take("a");
        assert!(third.is_some());
        // Lowered below what is open: those stay, no more until under it.
        counts.set_max(1);
        assert!(counts.take("a").is_none() && counts.take("c").is_some());
        drop((second, third));
        assert!(counts.take("a").is_some());
    }
}
