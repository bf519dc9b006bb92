//! Stanzas (RFC 6120 §8): the three kinds of first-level elements in `jabber:client`, and
//! the replies the server builds from them.
//!
//! Layout: `mod.rs` ([`Stanza`] and replies), `error.rs` ([`StanzaError`]), `shared.rs`
//! ([`SharedStanza`]: one stanza for many recipients, serialised once).

mod error;
mod shared;

pub use error::{Condition, ErrorType, StanzaError};
pub use shared::SharedStanza;

use crate::ns;
use crate::stream::{StreamCondition, StreamError};
use crate::xml::Element;

/// Which of the three stanza kinds (RFC 6120 §8.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StanzaKind {
    /// `<message/>`: push, fire and forget.
    Message,
    /// `<presence/>`: availability broadcast and subscriptions.
    Presence,
    /// `<iq/>`: request / response.
    Iq,
}

impl StanzaKind {
    fn name(self) -> &'static str {
        match self {
            StanzaKind::Message => "message",
            StanzaKind::Presence => "presence",
            StanzaKind::Iq => "iq",
        }
    }
}

/// The `type` of an iq (RFC 6120 §8.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IqType {
    /// A request for information.
    Get,
    /// A request to change something.
    Set,
    /// A successful response.
    Result,
    /// A failed response.
    Error,
}

/// A stanza: an element known to be a message, presence or iq in `jabber:client`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stanza {
    kind: StanzaKind,
    element: Element,
}

impl Stanza {
    /// Wraps a top-level element; anything but message / presence / iq in `jabber:client`
    /// is `unsupported-stanza-type` (RFC 6120 §4.9.3.24).
    pub fn from_element(element: Element) -> Result<Stanza, StreamError> {
        let kind = if element.ns() != ns::CLIENT {
            None
        } else {
            match element.name() {
                "message" => Some(StanzaKind::Message),
                "presence" => Some(StanzaKind::Presence),
                "iq" => Some(StanzaKind::Iq),
                _ => None,
            }
        };
        match kind {
            Some(kind) => Ok(Stanza { kind, element }),
            None => Err(StreamError::with_text(
                StreamCondition::UnsupportedStanzaType,
                format!("unexpected element {:?}", element.name()),
            )),
        }
    }

    /// The kind of stanza.
    pub fn kind(&self) -> StanzaKind {
        self.kind
    }

    /// The underlying element.
    pub fn element(&self) -> &Element {
        &self.element
    }

    /// The underlying element, mutably (e.g. to stamp `from` or add a delay).
    pub fn element_mut(&mut self) -> &mut Element {
        &mut self.element
    }

    /// Unwraps the element.
    pub fn into_element(self) -> Element {
        self.element
    }

    /// The `to` attribute.
    pub fn to(&self) -> Option<&str> {
        self.element.attr("to")
    }

    /// The `from` attribute.
    pub fn from(&self) -> Option<&str> {
        self.element.attr("from")
    }

    /// The `id` attribute.
    pub fn id(&self) -> Option<&str> {
        self.element.attr("id")
    }

    /// The raw `type` attribute.
    pub fn type_attr(&self) -> Option<&str> {
        self.element.attr("type")
    }

    /// Sets `from` (the server stamps it on everything a client sends, RFC 6120 §8.1.2.1).
    pub fn set_from(&mut self, jid: &str) {
        self.element.set_attr("from", jid);
    }

    /// Sets `to`.
    pub fn set_to(&mut self, jid: &str) {
        self.element.set_attr("to", jid);
    }

    /// The iq type; `None` if this is not an iq or its type is missing or invalid.
    pub fn iq_type(&self) -> Option<IqType> {
        if self.kind != StanzaKind::Iq {
            return None;
        }
        match self.type_attr()? {
            "get" => Some(IqType::Get),
            "set" => Some(IqType::Set),
            "result" => Some(IqType::Result),
            "error" => Some(IqType::Error),
            _ => None,
        }
    }

    /// The payload of a get / set iq: its first element child (RFC 6120 §8.2.3 requires
    /// exactly one).
    pub fn iq_payload(&self) -> Option<&Element> {
        match self.iq_type()? {
            IqType::Get | IqType::Set => self.element.children().next(),
            IqType::Result | IqType::Error => None,
        }
    }

    /// A `result` iq answering this one (RFC 6120 §8.2.3): same id, addresses swapped.
    pub fn iq_result(&self, payload: Option<Element>) -> Element {
        let mut el = self.reply_shell(StanzaKind::Iq, "result");
        if let Some(payload) = payload {
            el.push_child(payload);
        }
        el
    }

    /// The error reply to this stanza (RFC 6120 §8.3.1): same kind and id, addresses
    /// swapped, `type="error"`, and the `<error/>` child. The original payload is not
    /// echoed, which the RFC allows and which avoids reflecting large payloads back.
    pub fn error_reply(&self, err: &StanzaError) -> Element {
        self.reply_shell(self.kind, "error")
            .with_child(err.to_element())
    }

    /// An iq without `id` (RFC 6120 §8.1.3: REQUIRED for iq): its response could not be
    /// matched to it, so it is refused with `bad-request` rather than processed. An iq of
    /// type `error` is never answered (§8.3.1), so it is only dropped.
    pub fn lacks_iq_id(&self) -> bool {
        self.kind == StanzaKind::Iq && self.id().is_none()
    }

    /// True if this stanza has `type="error"` (it must never be answered with an error,
    /// RFC 6120 §8.3.1).
    pub fn is_error(&self) -> bool {
        self.type_attr() == Some("error")
    }

    fn reply_shell(&self, kind: StanzaKind, type_: &str) -> Element {
        let mut el = Element::new(kind.name(), ns::CLIENT).with_attr("type", type_);
        if let Some(id) = self.id() {
            el.set_attr("id", id);
        }
        if let Some(from) = self.from() {
            el.set_attr("to", from);
        }
        if let Some(to) = self.to() {
            el.set_attr("from", to);
        }
        el
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iq(type_: &str) -> Stanza {
        let el = Element::new("iq", ns::CLIENT)
            .with_attr("id", "q1")
            .with_attr("type", type_)
            .with_attr("from", "u@example.com/r")
            .with_attr("to", "example.com")
            .with_child(Element::new("ping", ns::PING));
        match Stanza::from_element(el) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn accepts_the_three_kinds() {
        for (name, kind) in [
            ("message", StanzaKind::Message),
            ("presence", StanzaKind::Presence),
            ("iq", StanzaKind::Iq),
        ] {
            let s = Stanza::from_element(Element::new(name, ns::CLIENT));
            assert_eq!(s.map(|s| s.kind()), Ok(kind));
        }
    }

    #[test]
    fn rejects_other_elements() {
        let err = Stanza::from_element(Element::new("foo", ns::CLIENT)).map(|s| s.kind());
        assert_eq!(
            err.map_err(|e| e.condition),
            Err(StreamCondition::UnsupportedStanzaType)
        );
        let err = Stanza::from_element(Element::new("message", "urn:other")).map(|s| s.kind());
        assert_eq!(
            err.map_err(|e| e.condition),
            Err(StreamCondition::UnsupportedStanzaType)
        );
    }

    #[test]
    fn iq_accessors() {
        let s = iq("get");
        assert_eq!(s.iq_type(), Some(IqType::Get));
        assert_eq!(s.iq_payload().map(Element::name), Some("ping"));
        assert_eq!(iq("result").iq_payload(), None);
        assert_eq!(iq("bogus").iq_type(), None);
        assert!(!s.is_error());
        assert!(iq("error").is_error());
    }

    #[test]
    fn iq_result_bytes() {
        let s = iq("get");
        assert_eq!(
            s.iq_result(None).to_string(),
            r#"<iq type="result" id="q1" to="u@example.com/r" from="example.com"/>"#
        );
        let bare = Stanza::from_element(Element::new("iq", ns::CLIENT).with_attr("type", "get"));
        assert_eq!(
            bare.map(|b| b
                .iq_result(Some(Element::new("query", ns::ROSTER)))
                .to_string()),
            Ok(r#"<iq type="result"><query xmlns="jabber:iq:roster"/></iq>"#.to_owned())
        );
    }

    #[test]
    fn error_reply_bytes() {
        let s = iq("get");
        let reply = s.error_reply(&StanzaError::new(Condition::ServiceUnavailable));
        assert_eq!(
            reply.to_string(),
            concat!(
                r#"<iq type="error" id="q1" to="u@example.com/r" from="example.com">"#,
                r#"<error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>"#
            )
        );
        let msg = Stanza::from_element(
            Element::new("message", ns::CLIENT)
                .with_attr("from", "a@b/c")
                .with_child(Element::new("body", ns::CLIENT).with_text("hi")),
        );
        assert_eq!(
            msg.map(|m| m
                .error_reply(&StanzaError::new(Condition::NotAllowed))
                .to_string()),
            Ok(concat!(
                r#"<message type="error" to="a@b/c"><error type="cancel">"#,
                r#"<not-allowed xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>"#
            )
            .to_owned())
        );
    }

    #[test]
    fn set_addresses() {
        let mut s = iq("set");
        s.set_from("x@y/z");
        s.set_to("y");
        assert_eq!((s.from(), s.to()), (Some("x@y/z"), Some("y")));
        assert_eq!(s.clone().into_element().attr("from"), Some("x@y/z"));
        s.element_mut().set_attr("id", "new");
        assert_eq!(s.element().attr("id"), Some("new"));
    }
}
