//! Writes a client's session must see durable before it acknowledges the stanzas that
//! caused them (XEP-0198 §4: the `h` of an `<a/>` tells the client it need not send those
//! stanzas again). A module that stores something for a client's stanza (the archive) may
//! hand the write's answer to the session instead of waiting for it: the session then
//! goes on with the client's next stanza while the write is in flight, and holds back the
//! `<a/>` (and a resumption's `<resumed h/>`, §5) that counts the stanza until the write
//! is durable. Writes for stanzas that come from no client's session (another server, a
//! service) have nobody to hand them to; their modules wait themselves.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// The answer to one write: true once it is durable, false if it never will be.
pub type Durable = oneshot::Receiver<bool>;

/// One session's writes in flight, oldest first: filled by modules while the session
/// handles a stanza of its client, taken by the session when it is asked for its count.
#[derive(Clone, Default)]
pub struct InFlight(Arc<Mutex<VecDeque<Durable>>>);

impl InFlight {
    fn push(&self, mut write: Durable) {
        let mut writes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Those already durable at the front need no waiting: gone, so that a client that
        // never asks for acknowledgements does not make the list grow.
        while let Some(front) = writes.front_mut() {
            match front.try_recv() {
                Ok(true) => {
                    writes.pop_front();
                }
                Err(oneshot::error::TryRecvError::Empty) => break,
                // Its answer is taken now: kept as a failure already known.
                Ok(false) | Err(oneshot::error::TryRecvError::Closed) => {
                    *front = failed();
                    break;
                }
            }
        }
        match write.try_recv() {
            Ok(true) => {}
            Err(oneshot::error::TryRecvError::Empty) => writes.push_back(write),
            Ok(false) | Err(oneshot::error::TryRecvError::Closed) => writes.push_back(failed()),
        }
    }

    /// Everything in flight so far.
    pub fn take(&self) -> VecDeque<Durable> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

tokio::task_local! {
    /// Set while a session handles one of its client's stanzas: the session's writes in
    /// flight, or None for a client that acknowledges nothing (no XEP-0198), whose
    /// session has nothing to hold back.
    static HANDLING: Option<InFlight>;
}

/// Runs `handling` (a session's handling of one client stanza) with `in_flight` as the
/// place modules hand their writes to.
pub async fn handling<F: std::future::Future>(
    in_flight: Option<InFlight>,
    handling: F,
) -> F::Output {
    HANDLING.scope(in_flight, handling).await
}

/// Hands `write` to the session handling the current stanza; `Err(write)` when no client's
/// session is handling one, and the caller must wait for it itself.
pub fn defer(write: Durable) -> Result<(), Durable> {
    match HANDLING.try_with(Clone::clone) {
        Ok(Some(in_flight)) => {
            in_flight.push(write);
            Ok(())
        }
        // A client without XEP-0198 is never told what was handled: nothing to hold back.
        Ok(None) => Ok(()),
        Err(_) => Err(write),
    }
}

/// Whether a session is handling a client's stanza here (a write may be deferred).
pub fn can_defer() -> bool {
    HANDLING.try_with(|_| ()).is_ok()
}

/// A write known to have failed.
fn failed() -> Durable {
    let (done, write) = oneshot::channel();
    let _ = done.send(false);
    write
}

/// Counts (`h`) a session owes its client, each with the writes it waits for, oldest
/// first; answered in order.
#[derive(Default)]
pub struct Owed(VecDeque<(u32, VecDeque<Durable>)>);

impl Owed {
    /// The client asked for its count, `h`, when `writes` were in flight: answered once
    /// they and every earlier count's are durable. None: nothing to wait for, answer now.
    pub fn owe(&mut self, h: u32, writes: VecDeque<Durable>) -> Option<u32> {
        if writes.is_empty() && self.0.is_empty() {
            return Some(h);
        }
        self.0.push_back((h, writes));
        None
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The next count whose writes are all durable; Err when one of them never will be.
    /// Cancel-safe: what was found durable is forgotten as it is found.
    pub async fn next(&mut self) -> Result<u32, NotDurable> {
        let Some((_, writes)) = self.0.front_mut() else {
            return std::future::pending().await;
        };
        while let Some(write) = writes.front_mut() {
            let durable = write.await.unwrap_or(false);
            writes.pop_front();
            if !durable {
                return Err(NotDurable);
            }
        }
        let (h, _) = self.0.pop_front().expect("a front was found");
        Ok(h)
    }

    /// Waits for every count owed and every write in `in_flight`; the last count owed is
    /// superseded by the caller's own (a resumption's `h`).
    pub async fn settle_all(&mut self, in_flight: &InFlight) -> Result<(), NotDurable> {
        while !self.0.is_empty() {
            self.next().await?;
        }
        for write in in_flight.take() {
            if !write.await.unwrap_or(false) {
                return Err(NotDurable);
            }
        }
        Ok(())
    }
}

/// A write the client's stanza caused can never be made durable.
#[derive(Debug)]
pub struct NotDurable;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_wait_for_their_writes_in_order() {
        let in_flight = InFlight::default();
        let (first_done, first) = oneshot::channel();
        let (second_done, second) = oneshot::channel();
        handling(Some(in_flight.clone()), async {
            defer(first).unwrap();
            defer(second).unwrap();
        })
        .await;
        let mut owed = Owed::default();
        assert_eq!(owed.owe(2, in_flight.take()), None);
        // Nothing in flight, but an earlier count is owed: this one waits behind it.
        assert_eq!(owed.owe(3, in_flight.take()), None);
        first_done.send(true).unwrap();
        let pending = tokio::time::timeout(std::time::Duration::from_millis(20), owed.next());
        assert!(pending.await.is_err(), "answered before its second write");
        second_done.send(true).unwrap();
        assert_eq!(owed.next().await.unwrap(), 2);
        assert_eq!(owed.next().await.unwrap(), 3);
        assert!(owed.is_empty());
        assert_eq!(owed.owe(4, in_flight.take()), Some(4));
    }

    #[tokio::test]
    async fn a_write_that_fails_is_never_counted() {
        let in_flight = InFlight::default();
        let (done, write) = oneshot::channel();
        handling(Some(in_flight.clone()), async { defer(write).unwrap() }).await;
        let mut owed = Owed::default();
        assert_eq!(owed.owe(1, in_flight.take()), None);
        drop(done);
        assert!(owed.next().await.is_err());
    }

    #[tokio::test]
    async fn outside_a_session_the_caller_waits() {
        let (_done, write) = oneshot::channel::<bool>();
        assert!(!can_defer());
        assert!(defer(write).is_err());
        // A client without XEP-0198: taken, nothing held back.
        let (_done, write) = oneshot::channel::<bool>();
        assert!(handling(None, async { defer(write).is_ok() }).await);
    }

    #[tokio::test]
    async fn durable_writes_do_not_pile_up() {
        let in_flight = InFlight::default();
        handling(Some(in_flight.clone()), async {
            for _ in 0..100 {
                let (done, write) = oneshot::channel();
                done.send(true).unwrap();
                defer(write).unwrap();
            }
        })
        .await;
        assert!(in_flight.take().is_empty());
    }
}
