//! Per-room limits an admin sets (`[modules.muc]`, overridden per declared room): how many
//! may be in a room, how fast an occupant may send, how large a message may be. They keep a
//! public room on a website usable when a guest floods it.

use std::time::Instant;

use jabberwock_protocol::ns;

use crate::token_bucket::TokenBucket;
use jabberwock_protocol::stanza::{Condition, ErrorType, StanzaError};
use jabberwock_protocol::xml::Element;

/// A room's limits; 0 switches a limit off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Occupants at most, whatever the owner configures (`muc#roomconfig_maxusers` may only
    /// lower it).
    pub max_occupants: usize,
    /// Messages (groupchat and private) each occupant may send per second, on average.
    pub messages_per_second: f64,
    /// Messages an occupant may send at once before the rate applies.
    pub message_burst: u32,
    /// Largest message an occupant may send through the room, in bytes as serialised.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    /// ejabberd's `max_users` (200); a sustained message a second with a burst of five,
    /// about what Prosody's mod_muc_limits lets through; 10 000 bytes, room for a long
    /// paragraph and its markup.
    fn default() -> Limits {
        Limits {
            max_occupants: 200,
            messages_per_second: 1.0,
            message_burst: 5,
            max_message_bytes: 10_000,
        }
    }
}

/// An occupant's allowance: `message_burst` tokens, refilled at `messages_per_second`.
#[derive(Clone, Debug)]
pub struct Bucket(TokenBucket);

impl Bucket {
    /// A full bucket: an entrant may say its first few messages at once.
    pub fn full(limits: &Limits) -> Bucket {
        Bucket(TokenBucket::full(limits.capacity(), Instant::now()))
    }

    /// Takes a token if one is there at `now`.
    fn take(&mut self, limits: &Limits, now: Instant) -> bool {
        self.0
            .take(limits.messages_per_second, limits.capacity(), now)
    }
}

impl Limits {
    fn capacity(&self) -> f64 {
        f64::from(self.message_burst.max(1))
    }

    /// Whether `occupants` fill a room whose owner allows `max_users` (`None`: no limit of
    /// the owner's).
    pub fn is_full(&self, occupants: usize, max_users: Option<usize>) -> bool {
        let admin = (self.max_occupants > 0).then_some(self.max_occupants);
        [admin, max_users]
            .into_iter()
            .flatten()
            .any(|max| occupants >= max)
    }

    /// Checks a message an occupant sends through the room against the size and the rate;
    /// the error to bounce it with, and nothing is delivered.
    pub fn check_message(
        &self,
        bucket: &mut Bucket,
        message: &Element,
        now: Instant,
    ) -> Result<(), StanzaError> {
        if self.max_message_bytes > 0 {
            let size = message.to_bytes(ns::CLIENT).len();
            if size > self.max_message_bytes {
                // RFC 6120 §8.3.3.12 policy-violation (type modify): the size is a local
                // policy of the room's; not-acceptable would say the request itself makes
                // no sense. Prosody's mod_muc_limits bounces long messages the same way.
                return Err(StanzaError::with_text(
                    Condition::PolicyViolation,
                    format!(
                        "messages in this room are at most {} bytes",
                        self.max_message_bytes
                    ),
                ));
            }
        }
        if self.messages_per_second > 0.0 && !bucket.take(self, now) {
            // As Prosody's mod_muc_limits answers an occupant over its rate: policy-violation
            // of type wait (try again later). ejabberd's min_message_interval uses
            // resource-constraint; the sender's own excess is a policy matter, not the
            // server's lack of resources.
            return Err(StanzaError {
                error_type: ErrorType::Wait,
                ..StanzaError::with_text(
                    Condition::PolicyViolation,
                    "you are sending messages too fast; wait a moment",
                )
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_bucket_lets_a_burst_through_then_the_rate() {
        let limits = Limits {
            messages_per_second: 2.0,
            message_burst: 3,
            ..Limits::default()
        };
        let start = Instant::now();
        let mut bucket = Bucket(TokenBucket::full(3.0, start));
        let message = Element::new("message", ns::CLIENT);
        for _ in 0..3 {
            assert!(limits.check_message(&mut bucket, &message, start).is_ok());
        }
        let err = limits
            .check_message(&mut bucket, &message, start)
            .unwrap_err();
        assert_eq!(
            (err.condition, err.error_type),
            (Condition::PolicyViolation, ErrorType::Wait)
        );
        // Half a second later one more token is there, and only one.
        let later = start + Duration::from_millis(500);
        assert!(limits.check_message(&mut bucket, &message, later).is_ok());
        assert!(limits.check_message(&mut bucket, &message, later).is_err());
    }

    #[test]
    fn large_messages_are_refused_and_zero_switches_limits_off() {
        let limits = Limits {
            max_message_bytes: 60,
            ..Limits::default()
        };
        let mut bucket = Bucket::full(&limits);
        let now = Instant::now();
        let small = Element::new("message", ns::CLIENT).with_attr("type", "groupchat");
        assert!(limits.check_message(&mut bucket, &small, now).is_ok());
        let large = small
            .clone()
            .with_child(Element::new("body", ns::CLIENT).with_text("a".repeat(60).as_str()));
        let err = limits.check_message(&mut bucket, &large, now).unwrap_err();
        assert_eq!(
            (err.condition, err.error_type),
            (Condition::PolicyViolation, ErrorType::Modify)
        );

        let off = Limits {
            max_occupants: 0,
            messages_per_second: 0.0,
            message_burst: 0,
            max_message_bytes: 0,
        };
        let mut bucket = Bucket::full(&off);
        for _ in 0..100 {
            assert!(off.check_message(&mut bucket, &large, now).is_ok());
        }
        assert!(!off.is_full(10_000, None));
        assert!(off.is_full(3, Some(3)));
        assert!(Limits::default().is_full(200, None));
        assert!(Limits::default().is_full(5, Some(5)));
        assert!(!Limits::default().is_full(4, Some(5)));
    }
}
