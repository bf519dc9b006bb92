//! XML: the element tree, its serialisation, and the incremental stream reader.
//!
//! Layout:
//! - `element.rs`: [`Element`] and [`Node`];
//! - `escape.rs`: escaping for output, entity resolution for input;
//! - `writer.rs`: serialisation rules (namespaces, `stream:` prefix);
//! - `scope.rs`: namespace prefix bindings;
//! - `scanner.rs`: byte-level framing of complete units, with limits;
//! - `tree.rs`: parsing one complete unit with quick-xml;
//! - [`reader`]: the public [`reader::StreamReader`] tying scanner and parser together;
//!   [`parse_stanza`] reads one stored element the same way.

mod element;
mod escape;
pub mod reader;
mod scanner;
pub(crate) mod scope;
pub(crate) mod tree;
pub(crate) mod writer;

pub use element::{Element, Node};

use crate::stream::{StreamCondition, StreamError};
use reader::{Event, Limits, StreamReader};

/// Parses one stored top-level element in the `jabber:client` namespace (e.g. an offline
/// message serialised earlier by [`Element::write_to`]), with the same rules as a stream.
pub fn parse_stanza(bytes: &[u8]) -> Result<Element, StreamError> {
    const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
    let limits = Limits {
        max_stanza_bytes: bytes.len().max(Limits::default().max_stanza_bytes),
        ..Limits::default()
    };
    let mut reader = StreamReader::new(limits);
    reader.feed(HEADER);
    reader.feed(bytes);
    match (reader.next_event()?, reader.next_event()?) {
        (Some(Event::Header(_)), Some(Event::Stanza(element))) => Ok(element),
        _ => Err(StreamError::new(StreamCondition::NotWellFormed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns;

    #[test]
    fn parse_stanza_round_trips_a_written_element() {
        let el = Element::new("message", ns::CLIENT)
            .with_attr("to", "a@b")
            .with_child(Element::new("body", ns::CLIENT).with_text("x < y & é"));
        assert_eq!(parse_stanza(&el.to_bytes(ns::CLIENT)).unwrap(), el);
        assert_eq!(
            parse_stanza(b"<message><body>x</message>")
                .unwrap_err()
                .condition,
            StreamCondition::NotWellFormed
        );
        assert!(parse_stanza(b"").is_err());
    }
}
