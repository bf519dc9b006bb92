//! XEP-0198 §4 counting for one session: stanzas handled from the client, and stanzas sent
//! to it, kept until the client acknowledges them, so that a lost stream loses none of them
//! (they are sent again on resumption, §5, or handed back as undeliverable).

use std::collections::VecDeque;

use crate::router::Outgoing;

/// An `<a/>` acknowledged more stanzas than were sent (§4).
#[derive(Debug, PartialEq, Eq)]
pub struct TooHigh {
    pub h: u32,
    pub sent: u32,
}

#[derive(Default)]
pub struct Acks {
    /// Stanzas handled from the client since `<enable/>` (the `h` we report), modulo 2^32.
    handled: u32,
    /// Stanzas sent to the client since `<enable/>`, modulo 2^32.
    sent: u32,
    /// Sent and not yet acknowledged, oldest first: numbers `sent - len + 1 ..= sent`.
    unacked: VecDeque<Outgoing>,
    /// An `<r/>` of ours waits for its `<a/>`.
    pub requested: bool,
}

impl Acks {
    /// One more stanza from the client was handled.
    pub fn handled_one(&mut self) {
        self.handled = self.handled.wrapping_add(1);
    }

    pub fn handled(&self) -> u32 {
        self.handled
    }

    /// A stanza was sent to the client; it is kept until acknowledged.
    pub fn sent(&mut self, stanza: Outgoing) {
        self.sent = self.sent.wrapping_add(1);
        self.unacked.push_back(stanza);
    }

    pub fn unacked_len(&self) -> usize {
        self.unacked.len()
    }

    /// The client handled `h` stanzas in all: those are forgotten. A count below what it
    /// acknowledged before changes nothing (an `<a/>` that crossed a newer one).
    pub fn acknowledge(&mut self, h: u32) -> Result<(), TooHigh> {
        let len = self.unacked.len() as u32;
        let acked_before = self.sent.wrapping_sub(len);
        let newly = h.wrapping_sub(acked_before);
        if newly > len {
            // Either more than was sent, or an old count from before the last one (wrapped
            // below `acked_before`): only the first is the client's error. Counts are far
            // from 2^31 apart in practice, so the half-range decides.
            if newly <= u32::MAX / 2 {
                return Err(TooHigh { h, sent: self.sent });
            }
            return Ok(());
        }
        self.unacked.drain(..newly as usize);
        Ok(())
    }

    /// What was sent and not acknowledged, oldest first; they stay kept (a resumed stream
    /// sends them again under the same numbers, §5).
    pub fn unacked(&self) -> impl Iterator<Item = &Outgoing> {
        self.unacked.iter()
    }

    /// Gives up what was never acknowledged, oldest first, for the caller to handle as
    /// undeliverable.
    pub fn take_unacked(&mut self) -> Vec<Outgoing> {
        self.unacked.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jabberwock_protocol::xml::Element;

    fn stanza(n: u32) -> Outgoing {
        Outgoing::own(Element::new("message", "jabber:client").with_attr("id", n.to_string()))
    }

    fn ids(acks: &Acks) -> Vec<String> {
        acks.unacked()
            .map(|o| o.element().attr("id").unwrap().to_owned())
            .collect()
    }

    #[test]
    fn acknowledged_stanzas_are_forgotten_in_order() {
        let mut acks = Acks::default();
        for n in 1..=5 {
            acks.sent(stanza(n));
        }
        acks.acknowledge(2).unwrap();
        assert_eq!(ids(&acks), ["3", "4", "5"]);
        // The same count again, or an older one, changes nothing.
        acks.acknowledge(2).unwrap();
        acks.acknowledge(1).unwrap();
        assert_eq!(ids(&acks), ["3", "4", "5"]);
        acks.acknowledge(5).unwrap();
        assert_eq!(acks.unacked_len(), 0);
    }

    #[test]
    fn more_than_was_sent_is_the_clients_error() {
        let mut acks = Acks::default();
        acks.sent(stanza(1));
        assert_eq!(acks.acknowledge(2), Err(TooHigh { h: 2, sent: 1 }));
        assert_eq!(acks.unacked_len(), 1);
    }

    #[test]
    fn counts_wrap_at_two_to_the_32() {
        let mut acks = Acks {
            sent: u32::MAX - 1,
            handled: u32::MAX,
            ..Acks::default()
        };
        for n in 1..=4 {
            acks.sent(stanza(n));
        }
        // Sent numbers 2^32-1, 0, 1, 2.
        acks.acknowledge(0).unwrap();
        assert_eq!(ids(&acks), ["3", "4"]);
        acks.acknowledge(2).unwrap();
        assert_eq!(acks.unacked_len(), 0);
        acks.handled_one();
        assert_eq!(acks.handled(), 0);
    }

    #[test]
    fn taking_the_unacknowledged_leaves_none() {
        let mut acks = Acks::default();
        for n in 1..=3 {
            acks.sent(stanza(n));
        }
        acks.acknowledge(1).unwrap();
        assert_eq!(acks.take_unacked().len(), 2);
        assert_eq!(acks.unacked_len(), 0);
        // Counting goes on from where it was.
        acks.sent(stanza(4));
        acks.acknowledge(4).unwrap();
    }
}
