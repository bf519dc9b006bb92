//! What modules keep per session (carbons enabled, client state, entity capabilities, ...),
//! typed, on the session's entry in the router's table, so a feature adds no field to the
//! table and other sessions' tasks can read it (carbons are decided by the sender's task).
//!
//! Each module stores its own type; the value is shared (`Arc`) and, when it changes, has
//! its own interior mutability (atomics, a mutex held for no await). A yes/no that many
//! sessions carry (this resource asked for roster pushes) is a [`SessionFlag`] instead: one
//! bit, no allocation, which is what keeps idle sessions small.

use std::any::{Any, TypeId};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use jabberwock_protocol::xml::Element;

/// A session's module state: at most one value per type, and the flags set on it.
#[derive(Default)]
pub struct SessionState {
    // Few entries (one per module that keeps something): a vector beats a map here.
    values: Mutex<Vec<(TypeId, Arc<dyn Any + Send + Sync>)>>,
    flags: AtomicU64,
}

/// A per-session yes/no a module declares as a `static`; its bit is handed out on first use.
pub struct SessionFlag(OnceLock<u64>);

/// Bits handed out so far.
static FLAGS_USED: AtomicU32 = AtomicU32::new(0);

impl SessionFlag {
    pub const fn new() -> SessionFlag {
        SessionFlag(OnceLock::new())
    }

    fn mask(&self) -> u64 {
        *self.0.get_or_init(|| {
            let bit = FLAGS_USED.fetch_add(1, Ordering::Relaxed);
            assert!(bit < u64::BITS, "more than 64 session flags");
            1 << bit
        })
    }
}

impl Default for SessionFlag {
    fn default() -> SessionFlag {
        SessionFlag::new()
    }
}

/// Stanzas for the session's own client that modules made while the session's task was
/// handling one of that client's stanzas (see [`SessionState::write_after`]).
#[derive(Default)]
struct Later(Mutex<Vec<Element>>);

/// Set while [`Later`] holds something: the session's check after each stanza is one bit.
static LATER: SessionFlag = SessionFlag::new();

impl SessionState {
    /// Has the session write `elements` to its own client once the client's stanza being
    /// handled is done, after what that stanza earned it (`OwnWrites`), instead of through
    /// its bounded inbox, which nothing drains while its task is busy here: a burst that
    /// could overflow the inbox (XEP-0163's last items for every contact at once, say).
    ///
    /// Only for code on the session's own task while it handles its client's stanza (the
    /// events that stanza fires: `PresenceOut`, the `IqIn` of the client's own IQ, and what
    /// their listeners fire). Anywhere else the elements would wait for the client's next
    /// stanza: deliver through the router then.
    pub fn write_after(&self, elements: impl IntoIterator<Item = Element>) {
        let later = self.get_or_insert_with(Later::default);
        later
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(elements);
        self.set(&LATER);
    }

    /// What [`SessionState::write_after`] left for the session to write, in order.
    pub(crate) fn take_later(&self) -> Vec<Element> {
        if !self.is_set(&LATER) {
            return Vec::new();
        }
        self.clear(&LATER);
        self.get::<Later>()
            .map(|later| std::mem::take(&mut *later.0.lock().unwrap_or_else(|p| p.into_inner())))
            .unwrap_or_default()
    }

    /// Sets `flag` on this session.
    pub fn set(&self, flag: &SessionFlag) {
        self.flags.fetch_or(flag.mask(), Ordering::Relaxed);
    }

    /// Clears `flag` on this session.
    pub fn clear(&self, flag: &SessionFlag) {
        self.flags.fetch_and(!flag.mask(), Ordering::Relaxed);
    }

    /// Whether `flag` is set on this session.
    pub fn is_set(&self, flag: &SessionFlag) -> bool {
        self.flags.load(Ordering::Relaxed) & flag.mask() != 0
    }

    fn values(&self) -> std::sync::MutexGuard<'_, Vec<(TypeId, Arc<dyn Any + Send + Sync>)>> {
        self.values.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The module state of type `T`, if the session has one.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let id = TypeId::of::<T>();
        self.values()
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, v)| v.clone().downcast::<T>().ok())
    }

    /// The state of type `T`, made with `make` the first time.
    pub fn get_or_insert_with<T: Any + Send + Sync>(&self, make: impl FnOnce() -> T) -> Arc<T> {
        let id = TypeId::of::<T>();
        let mut values = self.values();
        if let Some(v) = values.iter().find(|(t, _)| *t == id) {
            if let Ok(v) = v.1.clone().downcast::<T>() {
                return v;
            }
        }
        let value = Arc::new(make());
        // One slot at a time: a session keeps a few values, and idle sessions are many.
        values.reserve_exact(1);
        values.push((id, value.clone()));
        value
    }

    /// Sets the state of type `T`, replacing any.
    pub fn insert<T: Any + Send + Sync>(&self, value: T) {
        let id = TypeId::of::<T>();
        let mut values = self.values();
        values.retain(|(t, _)| *t != id);
        values.reserve_exact(1);
        values.push((id, Arc::new(value)));
    }

    /// Whether the session has state of type `T`.
    pub fn has<T: Any + Send + Sync>(&self) -> bool {
        let id = TypeId::of::<T>();
        self.values().iter().any(|(t, _)| *t == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Flag(AtomicBool);
    struct Name(&'static str);

    #[test]
    fn values_are_kept_per_type() {
        let state = SessionState::default();
        assert!(state.get::<Flag>().is_none());
        let flag = state.get_or_insert_with(|| Flag(AtomicBool::new(false)));
        flag.0.store(true, Ordering::Relaxed);
        state.insert(Name("a"));
        assert!(state.get::<Flag>().unwrap().0.load(Ordering::Relaxed));
        assert_eq!(state.get::<Name>().unwrap().0, "a");
        state.insert(Name("b"));
        assert_eq!(state.get::<Name>().unwrap().0, "b");
        assert!(state.has::<Flag>());
    }

    #[test]
    fn flags_are_bits_of_their_own() {
        static A: SessionFlag = SessionFlag::new();
        static B: SessionFlag = SessionFlag::new();
        let state = SessionState::default();
        assert!(!state.is_set(&A) && !state.is_set(&B));
        state.set(&A);
        assert!(state.is_set(&A) && !state.is_set(&B));
        state.set(&B);
        state.clear(&A);
        assert!(!state.is_set(&A) && state.is_set(&B));
        assert!(state.values().is_empty(), "a flag allocates no value");
    }
}
