//! A token bucket: `capacity` tokens at most, refilled at `rate` a second, one taken per
//! event. The HTTP rate limit (per address) and the MUC message rate (per occupant) use it.

use std::time::Instant;

#[derive(Clone, Debug)]
pub struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A bucket holding `capacity` tokens at `now`.
    pub fn full(capacity: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: capacity,
            updated: now,
        }
    }

    /// When it was last refilled.
    pub fn updated(&self) -> Instant {
        self.updated
    }

    /// Refills for the time since the last call, then takes a token if one is there.
    pub fn take(&mut self, rate: f64, capacity: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(capacity);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
