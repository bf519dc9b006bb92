//! What a room's handler wants sent, in order: stanzas for one recipient each, and stanzas
//! for many (a groupchat message, a notice to every occupant), which are routed as one
//! shared stanza serialised once (`Router::route_shared_from_service`) rather than as a
//! copy per occupant. A groupchat message the room archives (XEP-0313 §6) goes out only
//! once its archive has it (archive.rs).

use std::sync::Arc;

use jabberwock_protocol::jid::FullJid;
use jabberwock_protocol::stanza::{SharedStanza, Stanza};
use jabberwock_protocol::xml::Element;

use super::archive::Archived;

/// One thing to send.
pub enum ToSend {
    One(Element),
    /// The stanza (without a `to`) and its recipients' real JIDs.
    Many(Arc<SharedStanza>, Vec<FullJid>),
    /// [`ToSend::Many`] for a message in the room's archive: sent once it is stored.
    Archived(Box<Archived>, Arc<SharedStanza>, Vec<FullJid>),
}

/// Stanzas a handler wants sent, in order.
#[derive(Default)]
pub struct Out(Vec<ToSend>);

impl Out {
    pub fn new() -> Out {
        Out::default()
    }

    pub fn push(&mut self, element: Element) {
        self.0.push(ToSend::One(element));
    }

    pub fn insert(&mut self, index: usize, element: Element) {
        self.0.insert(index, ToSend::One(element));
    }

    /// `element` to each of `recipients`, as their own copies with their `to` would go.
    pub fn push_to_each(&mut self, element: Element, recipients: Vec<FullJid>) {
        if recipients.is_empty() {
            return;
        }
        match Stanza::from_element(element) {
            Ok(stanza) => {
                let shared = Arc::new(SharedStanza::new(stanza));
                self.0.push(ToSend::Many(shared, recipients));
            }
            Err(e) => tracing::error!(error = %e, "the room made something that is no stanza"),
        }
    }

    /// [`Self::push_to_each`] for a message that the room archives first.
    pub fn push_archived(
        &mut self,
        element: Element,
        recipients: Vec<FullJid>,
        archived: Archived,
    ) {
        match Stanza::from_element(element) {
            Ok(stanza) => {
                let shared = Arc::new(SharedStanza::new(stanza));
                self.0
                    .push(ToSend::Archived(Box::new(archived), shared, recipients));
            }
            Err(e) => tracing::error!(error = %e, "the room made something that is no stanza"),
        }
    }

    /// The archived messages here, to be queued for their writes.
    pub fn archived_mut(&mut self) -> impl Iterator<Item = &mut Archived> {
        self.0.iter_mut().filter_map(|to_send| match to_send {
            ToSend::Archived(archived, ..) => Some(&mut **archived),
            _ => None,
        })
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every recipient's own stanza, in order (for tests that look at what was sent).
    #[cfg(test)]
    pub fn into_elements(self) -> Vec<Element> {
        let mut elements = Vec::new();
        for to_send in self.0 {
            match to_send {
                ToSend::One(element) => elements.push(element),
                ToSend::Many(shared, recipients) | ToSend::Archived(_, shared, recipients) => {
                    elements.extend(
                        recipients
                            .iter()
                            .map(|to| shared.to_stanza(to.as_str()).into_element()),
                    )
                }
            }
        }
        elements
    }

    /// Sends `to` nothing of what is here (it answered the room with an error: it is gone).
    pub fn drop_to(&mut self, to: &FullJid) {
        self.0.retain_mut(|outgoing| match outgoing {
            ToSend::One(element) => element.attr("to") != Some(to.as_str()),
            ToSend::Many(_, recipients) => {
                recipients.retain(|r| r != to);
                !recipients.is_empty()
            }
            // Kept even with no one left to send it to: the archive write goes on.
            ToSend::Archived(_, _, recipients) => {
                recipients.retain(|r| r != to);
                true
            }
        });
    }
}

impl From<Vec<Element>> for Out {
    fn from(elements: Vec<Element>) -> Out {
        elements.into_iter().collect()
    }
}

impl IntoIterator for Out {
    type Item = ToSend;
    type IntoIter = std::vec::IntoIter<ToSend>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl FromIterator<Element> for Out {
    fn from_iter<I: IntoIterator<Item = Element>>(iter: I) -> Out {
        Out(iter.into_iter().map(ToSend::One).collect())
    }
}

impl FromIterator<ToSend> for Out {
    fn from_iter<I: IntoIterator<Item = ToSend>>(iter: I) -> Out {
        Out(iter.into_iter().collect())
    }
}
