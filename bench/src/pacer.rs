//! The open loop's clock: one OS thread that releases every message at its intended time
//! and hands it to the pair's task. tokio's timer can't do it: its wheel has 1 ms
//! granularity and rounds deadlines up, so its ticks came 1–3 ms late and every pair
//! ticked on the same millisecond, a burst of P messages at once.
//!
//! The schedule is one stream at `rate` for the whole run: message k is due at
//! `start + k / rate` and goes to pair `k mod P`, so sends are evenly spread instead of
//! bunched per tick. Each is stamped with its due time (no coordinated omission: a late
//! send still counts from when it should have gone).

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

/// Below this, waiting spins instead of sleeping: a sleeping thread wakes some tens of µs
/// late even with a 1 ns timer slack; spinning the last stretch costs at most this much
/// CPU per message.
const SPIN: Duration = Duration::from_micros(30);

/// Rates above this leave too little time between messages to spin them all; the pacer
/// then only sleeps, at least [`BATCH`] at a time, and sends what has come due together.
const MAX_SPIN_RATE: f64 = 10_000.0;

/// Shortest sleep above [`MAX_SPIN_RATE`]: one wake-up of the pacer (and of the tokio
/// worker it hands to) per message cost 85 % of the generator's core at 30,000 msg/s;
/// batching by this much bounds the lag it adds.
const BATCH: Duration = Duration::from_micros(50);

/// Starts the pacer: from `start` to `stop`, `rate` messages/s over `pairs`, each sent as
/// its due time (a [`std::time::Instant`] offset from `base`, in ns).
pub fn spawn(
    pairs: Vec<UnboundedSender<u64>>,
    rate: f64,
    base: Instant,
    start: Instant,
    stop: Instant,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("pacer".into())
        .spawn(move || run(pairs, rate, base, start, stop))
}

fn run(pairs: Vec<UnboundedSender<u64>>, rate: f64, base: Instant, start: Instant, stop: Instant) {
    tight_timer_slack();
    let (spin, min_sleep) = if rate <= MAX_SPIN_RATE {
        (SPIN, Duration::ZERO)
    } else {
        (Duration::ZERO, BATCH)
    };
    let step = 1e9 / rate;
    let mut k: u64 = 0;
    loop {
        let due = start + Duration::from_nanos((k as f64 * step) as u64);
        if due >= stop {
            break;
        }
        wait_until(due, spin, min_sleep);
        let ts = due.saturating_duration_since(base).as_nanos() as u64;
        // A pair whose task ended (its connection failed) no longer takes messages.
        let _ = pairs[(k % pairs.len() as u64) as usize].send(ts);
        k += 1;
    }
}

fn wait_until(due: Instant, spin: Duration, min_sleep: Duration) {
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > spin {
            std::thread::sleep((left - spin).max(min_sleep));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Linux lets a sleeping thread wake up to 50 µs late by default (timer slack, to batch
/// wake-ups); the pacer wants its deadlines, so it asks for 1 ns.
fn tight_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK only sets a number on the calling thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}
