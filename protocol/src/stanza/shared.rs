//! One stanza for many recipients (a room's groupchat message to its occupants): serialised
//! once per form of output, then written to each recipient with only its own `to` put in.
//!
//! The bytes are kept split where the `to` attribute goes (after the stanza's other
//! attributes, where [`Element::set_attr`] adds a new one), so a recipient's bytes are the
//! prefix, ` to="JID"` escaped as the writer escapes every attribute, and the suffix: the
//! same bytes as its own copy with that `to` written by [`Element::write_to`].

use std::sync::OnceLock;

use super::Stanza;
use crate::ns;
use crate::xml::{writer, Element};

/// A stanza without a `to`, shared by its recipients (behind an `Arc`), with its bytes made
/// at most once per form, when the first recipient of that form is written.
#[derive(Debug)]
pub struct SharedStanza {
    stanza: Stanza,
    /// Inside a stream whose default namespace is `jabber:client` (standard and Flash).
    in_stream: OnceLock<Split>,
    /// As a document of its own, `xmlns` declared (RFC 7395 §3.3.2: one stanza a message).
    standalone: OnceLock<Split>,
}

/// Serialised bytes, and where the recipient's `to` goes in them.
#[derive(Debug)]
struct Split {
    bytes: Box<[u8]>,
    at: usize,
}

impl Split {
    fn of(element: &Element, parent_ns: &str) -> Split {
        let mut bytes = Vec::new();
        let at = writer::write_element_at(element, &mut bytes, parent_ns);
        Split {
            bytes: bytes.into_boxed_slice(),
            at,
        }
    }
}

impl SharedStanza {
    /// Shares `stanza`; its `to`, if any, is dropped (each recipient's is put in instead).
    pub fn new(stanza: Stanza) -> SharedStanza {
        let mut stanza = stanza;
        stanza.element_mut().remove_attr("to");
        SharedStanza {
            stanza,
            in_stream: OnceLock::new(),
            standalone: OnceLock::new(),
        }
    }

    /// The shared stanza, without a `to`.
    pub fn stanza(&self) -> &Stanza {
        &self.stanza
    }

    /// The shared element, without a `to`.
    pub fn element(&self) -> &Element {
        self.stanza.element()
    }

    /// One recipient's own copy, `to` set.
    pub fn to_stanza(&self, to: &str) -> Stanza {
        let mut stanza = self.stanza.clone();
        stanza.set_to(to);
        stanza
    }

    /// Writes the stanza for the recipient `to` into `out`, as [`Element::write_to`] would
    /// write its own copy inside an element in `parent_ns`. The two forms a server writes
    /// stanzas in (`jabber:client` inherited, or nothing inherited) are made once each;
    /// any other is written from a copy. True when this call serialised the stanza (for a
    /// form's first recipient, or a copy).
    pub fn write_to(&self, out: &mut Vec<u8>, parent_ns: &str, to: &str) -> bool {
        let split = match parent_ns {
            ns::CLIENT => &self.in_stream,
            "" => &self.standalone,
            _ => {
                self.to_stanza(to).element().write_to(out, parent_ns);
                return true;
            }
        };
        let mut made = false;
        let split = split.get_or_init(|| {
            made = true;
            Split::of(self.element(), parent_ns)
        });
        let (prefix, suffix) = split.bytes.split_at(split.at);
        out.reserve(split.bytes.len() + to.len() + 6);
        out.extend_from_slice(prefix);
        writer::write_attr(out, "to", to);
        out.extend_from_slice(suffix);
        made
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(children: bool) -> Stanza {
        let mut element = Element::new("message", ns::CLIENT)
            .with_attr("to", "room@muc.example")
            .with_attr("from", "room@muc.example/n\"ck")
            .with_attr("type", "groupchat")
            .with_attr("id", "a&b");
        if children {
            element.push_child(Element::new("body", ns::CLIENT).with_text("x < y & 'z'"));
            element.push_child(Element::new("occupant-id", "urn:xmpp:occupant-id:0"));
        }
        Stanza::from_element(element).unwrap()
    }

    #[test]
    fn each_recipient_gets_its_own_copys_bytes() {
        let recipients = [
            "alice@example.com/desk",
            "o'brien@example.com/it's & <that>",
            "b\"q@example.com/\u{e9}t\u{e9}",
        ];
        for children in [true, false] {
            let shared = SharedStanza::new(message(children));
            assert_eq!(shared.element().attr("to"), None);
            for parent_ns in [ns::CLIENT, "", "jabber:server"] {
                for to in recipients {
                    let mut got = b"<prior/>".to_vec();
                    shared.write_to(&mut got, parent_ns, to);
                    let mut own = message(children).into_element();
                    own.remove_attr("to");
                    own.set_attr("to", to);
                    let mut want = b"<prior/>".to_vec();
                    own.write_to(&mut want, parent_ns);
                    assert_eq!(
                        String::from_utf8_lossy(&got),
                        String::from_utf8_lossy(&want),
                        "{parent_ns} {to}"
                    );
                    assert_eq!(shared.to_stanza(to).element(), &own);
                }
            }
        }
    }

    #[test]
    fn the_to_is_escaped_like_any_attribute() {
        let shared = SharedStanza::new(message(false));
        let mut out = Vec::new();
        assert!(shared.write_to(&mut out, ns::CLIENT, "a&b@x/'\"<>"));
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"<message from="room@muc.example/n&quot;ck" type="groupchat" id="a&amp;b" to="a&amp;b@x/'&quot;&lt;&gt;"/>"#
        );
        let mut out = Vec::new();
        assert!(shared.write_to(&mut out, "", "a@x/r"));
        // Made once per form: the next recipient's bytes are the kept ones.
        assert!(!shared.write_to(&mut Vec::new(), ns::CLIENT, "c@x/r"));
        assert!(!shared.write_to(&mut Vec::new(), "", "c@x/r"));
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"<message xmlns="jabber:client" from="room@muc.example/n&quot;ck" type="groupchat" id="a&amp;b" to="a@x/r"/>"#
        );
    }
}
