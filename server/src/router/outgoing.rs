//! A stanza on its way to one client: its own element, or a stanza shared with other
//! recipients ([`SharedStanza`], serialised once for all of them). Whoever needs to change
//! or keep a shared one gets its own copy first (copy-on-write, as `Cow::to_mut`), so the
//! others' stanza never changes and nobody pays for a copy it does not need.

use std::sync::Arc;

use jabberwock_protocol::stanza::SharedStanza;
use jabberwock_protocol::xml::Element;

/// Kept small (a tag and a pointer): a session holds one across its writes.
#[derive(Clone, Debug)]
pub enum Outgoing {
    Own(Box<Element>),
    /// Written with the recipient's JID as its `to`.
    Shared(Arc<SharedStanza>),
}

impl Outgoing {
    pub fn own(element: Element) -> Outgoing {
        Outgoing::Own(Box::new(element))
    }

    /// The stanza to look at; a shared one has no `to` (the recipient is its `to`).
    pub fn element(&self) -> &Element {
        match self {
            Outgoing::Own(element) => element,
            Outgoing::Shared(shared) => shared.element(),
        }
    }

    /// The stanza to change: a shared one becomes the recipient `to`'s own copy first.
    pub fn to_mut(&mut self, to: &str) -> &mut Element {
        if let Outgoing::Shared(shared) = self {
            *self = Outgoing::own(shared.to_stanza(to).into_element());
        }
        match self {
            Outgoing::Own(element) => element,
            Outgoing::Shared(_) => unreachable!("made the recipient's own copy above"),
        }
    }

    /// The recipient `to`'s own element (a shared stanza's copy, with `to` set).
    pub fn into_element(self, to: &str) -> Element {
        match self {
            Outgoing::Own(element) => *element,
            Outgoing::Shared(shared) => shared.to_stanza(to).into_element(),
        }
    }
}
