//! Discussion history (XEP-0045 §7.2.14): the last groupchat messages of a room, bounded, sent
//! to an entrant with a delay stamp from the room, within the limits the entrant asked for.

use std::collections::VecDeque;

use jabberwock_protocol::delay::delay;
use jabberwock_protocol::muc::HistoryLimits;
use jabberwock_protocol::ns;
use jabberwock_protocol::xml::Element;

#[derive(Clone)]
struct Entry {
    /// The message as the room sent it (`from` the occupant's room JID, no `to`), with its
    /// delay stamp already added.
    message: Element,
    stamp: i64,
    /// The characters of the message's XML (what `maxchars` counts).
    chars: usize,
}

#[derive(Clone)]
pub struct History {
    entries: VecDeque<Entry>,
    capacity: usize,
}

impl History {
    pub fn new(capacity: usize) -> History {
        History {
            entries: VecDeque::new(),
            capacity,
        }
    }

    /// Keeps `message` (sent at `stamp`, Unix seconds) for later entrants, dropping the
    /// oldest beyond capacity. `prior`: a message of an earlier conversation an owner sends
    /// with its own delay stamp (§7.9), which gets none of the room's.
    pub fn push(&mut self, room: &str, mut message: Element, stamp: i64, prior: bool) {
        if self.capacity == 0 {
            return;
        }
        message.remove_attr("to");
        if !prior {
            message.push_child(delay(room, stamp));
        }
        let chars = String::from_utf8_lossy(&message.to_bytes(ns::CLIENT))
            .chars()
            .count();
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(Entry {
            message,
            stamp,
            chars,
        });
    }

    /// §7.2.14: the newest messages that fit every limit given, oldest first. A message
    /// that would go beyond `maxchars` is not sent, nor anything before it.
    pub fn select(&self, limits: &HistoryLimits, now: i64) -> Vec<Element> {
        let oldest = match (limits.seconds, limits.since) {
            (Some(s), Some(since)) => Some(since.max(now.saturating_sub(s as i64))),
            (Some(s), None) => Some(now.saturating_sub(s as i64)),
            (None, since) => since,
        };
        let mut chars = 0usize;
        let mut picked = Vec::new();
        for entry in self.entries.iter().rev() {
            if limits.maxstanzas.is_some_and(|max| picked.len() >= max) {
                break;
            }
            if oldest.is_some_and(|oldest| entry.stamp < oldest) {
                break;
            }
            chars = chars.saturating_add(entry.chars);
            if limits.maxchars.is_some_and(|max| chars > max) {
                break;
            }
            picked.push(entry.message.clone());
        }
        picked.reverse();
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> Element {
        Element::new("message", ns::CLIENT)
            .with_attr("type", "groupchat")
            .with_attr("from", "room@muc.example/nick")
            .with_attr("to", "someone@example/res")
            .with_child(Element::new("body", ns::CLIENT).with_text(body))
    }

    fn bodies(messages: &[Element]) -> Vec<String> {
        messages
            .iter()
            .map(|m| m.get_child("body", ns::CLIENT).unwrap().text())
            .collect()
    }

    fn filled() -> History {
        let mut history = History::new(3);
        for (i, body) in ["one", "two", "three", "four"].iter().enumerate() {
            history.push(
                "room@muc.example",
                message(body),
                100 + i as i64 * 10,
                false,
            );
        }
        history
    }

    #[test]
    fn keeps_the_last_capacity_messages_stamped_by_the_room() {
        let history = filled();
        let all = history.select(&HistoryLimits::default(), 200);
        assert_eq!(bodies(&all), ["two", "three", "four"]);
        let first = &all[0];
        assert_eq!(first.attr("to"), None);
        let stamp = first.get_child("delay", ns::DELAY).unwrap();
        assert_eq!(stamp.attr("from"), Some("room@muc.example"));
        assert_eq!(stamp.attr("stamp"), Some("1970-01-01T00:01:50Z"));
    }

    #[test]
    fn every_limit_applies() {
        let history = filled();
        let limits = |f: fn(&mut HistoryLimits)| {
            let mut l = HistoryLimits::default();
            f(&mut l);
            l
        };
        let two = limits(|l| l.maxstanzas = Some(2));
        assert_eq!(bodies(&history.select(&two, 200)), ["three", "four"]);
        let none = limits(|l| l.maxchars = Some(0));
        assert!(history.select(&none, 200).is_empty());
        let one_message = history.entries.back().unwrap().chars;
        let chars = HistoryLimits {
            maxchars: Some(one_message + 1),
            ..HistoryLimits::default()
        };
        assert_eq!(bodies(&history.select(&chars, 200)), ["four"]);
        // Sent at 110, 120, 130: the last 10 seconds before 135 hold only the last.
        let seconds = limits(|l| l.seconds = Some(10));
        assert_eq!(bodies(&history.select(&seconds, 135)), ["four"]);
        let since = limits(|l| l.since = Some(120));
        assert_eq!(bodies(&history.select(&since, 200)), ["three", "four"]);
        let both = limits(|l| {
            l.since = Some(110);
            l.maxstanzas = Some(1)
        });
        assert_eq!(bodies(&history.select(&both, 200)), ["four"]);
    }

    #[test]
    fn prior_history_keeps_only_the_owners_stamp() {
        let mut history = History::new(3);
        let stamped = message("earlier").with_child(
            Element::new("delay", ns::DELAY)
                .with_attr("from", "crone1@shakespeare.lit/desktop")
                .with_attr("stamp", "2004-09-29T01:54:37Z"),
        );
        history.push("room@muc.example", stamped, 100, true);
        let all = history.select(&HistoryLimits::default(), 200);
        let stamps: Vec<_> = all[0]
            .children()
            .filter(|c| c.is("delay", ns::DELAY))
            .map(|c| c.attr("from"))
            .collect();
        assert_eq!(stamps, [Some("crone1@shakespeare.lit/desktop")]);
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let mut history = History::new(0);
        history.push("room@muc.example", message("lost"), 1, false);
        assert!(history.select(&HistoryLimits::default(), 2).is_empty());
    }
}
