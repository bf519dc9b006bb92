//! Serialisation of [`Element`] trees.
//!
//! Rules, chosen so output is valid inside any stream this server opens and byte-stable:
//! - attribute values are double-quoted; `& < > "` are escaped there, `& < >` in text
//!   (see [`super::escape`] for dropped illegal characters);
//! - `xmlns="…"` is written only where the namespace differs from the enclosing one, so
//!   stanzas in `jabber:client` carry no redundant declarations;
//! - elements in the stream namespace are written as `stream:name` without a declaration,
//!   because every stream header the server sends binds `xmlns:stream` (RFC 6120 §4.8.1);
//!   they do not change the default namespace, so their children compare against the
//!   namespace that was in scope outside them; likewise for the other prefixes a caller
//!   says its stream header binds (`db` on a server-to-server stream, [`Bound`]);
//! - childless elements self-close; attributes keep insertion order.

use super::element::{Element, Node};
use super::escape::{escape_attr, escape_text};
use crate::ns;

/// (namespace, prefix) pairs the enclosing stream header declares, beside `stream`.
pub type Bound<'a> = &'a [(&'a str, &'a str)];

pub(crate) fn write_element(el: &Element, out: &mut Vec<u8>, parent_ns: &str) {
    write_element_at(el, out, parent_ns);
}

/// [`write_element`], returning where in `out` the element's own attributes end (the place
/// of one more attribute, which [`Element::set_attr`] would add last).
pub(crate) fn write_element_at(el: &Element, out: &mut Vec<u8>, parent_ns: &str) -> usize {
    write_bound(el, out, parent_ns, &[])
}

/// [`write_element_at`] inside a stream whose header also binds the prefixes in `bound`.
pub(crate) fn write_bound(el: &Element, out: &mut Vec<u8>, parent_ns: &str, bound: Bound) -> usize {
    let prefix = if el.ns() == ns::STREAM {
        Some("stream")
    } else {
        bound
            .iter()
            .find(|(uri, _)| *uri == el.ns())
            .map(|(_, p)| *p)
    };
    // Children see the default namespace in effect inside this element.
    let inner_ns = if prefix.is_some() { parent_ns } else { el.ns() };

    out.push(b'<');
    write_name(out, el, prefix);
    if prefix.is_none() && el.ns() != parent_ns {
        write_attr(out, "xmlns", el.ns());
    }
    for (name, value) in el.attr_pairs() {
        // The namespace is owned by `ns()`; a stray "xmlns" attribute would duplicate it.
        if name != "xmlns" {
            write_attr(out, name, value);
        }
    }
    let attrs_end = out.len();
    if el.nodes().is_empty() {
        out.extend_from_slice(b"/>");
        return attrs_end;
    }
    out.push(b'>');
    for node in el.nodes() {
        match node {
            Node::Element(child) => {
                write_bound(child, out, inner_ns, bound);
            }
            Node::Text(text) => escape_text(out, text),
        }
    }
    out.extend_from_slice(b"</");
    write_name(out, el, prefix);
    out.push(b'>');
    attrs_end
}

fn write_name(out: &mut Vec<u8>, el: &Element, prefix: Option<&str>) {
    if let Some(prefix) = prefix {
        out.extend_from_slice(prefix.as_bytes());
        out.push(b':');
    }
    out.extend_from_slice(el.name().as_bytes());
}

/// Writes ` name="value"` with the value escaped.
pub(crate) fn write_attr(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    escape_attr(out, value);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(el: &Element, parent: &str) -> String {
        String::from_utf8(el.to_bytes(parent)).unwrap_or_default()
    }

    #[test]
    fn xmlns_only_where_it_changes() {
        let iq = Element::new("iq", ns::CLIENT)
            .with_attr("type", "result")
            .with_child(
                Element::new("query", ns::ROSTER)
                    .with_child(Element::new("item", ns::ROSTER).with_attr("jid", "a@b")),
            );
        assert_eq!(
            s(&iq, ns::CLIENT),
            r#"<iq type="result"><query xmlns="jabber:iq:roster"><item jid="a@b"/></query></iq>"#
        );
        assert_eq!(s(&Element::new("x", ""), ns::CLIENT), r#"<x xmlns=""/>"#);
    }

    #[test]
    fn stream_namespace_uses_prefix() {
        let features = Element::new("features", ns::STREAM)
            .with_child(Element::new("starttls", ns::TLS))
            .with_child(Element::new("ver", ns::CLIENT));
        assert_eq!(
            s(&features, ns::CLIENT),
            r#"<stream:features><starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/><ver/></stream:features>"#
        );
    }

    #[test]
    fn bound_prefixes_are_used_and_children_keep_the_outer_default() {
        let answer = Element::new("result", ns::DIALBACK)
            .with_attr("type", "error")
            .with_child(
                Element::new("error", ns::CLIENT)
                    .with_child(Element::new("item-not-found", ns::STANZAS)),
            );
        let mut out = Vec::new();
        write_bound(&answer, &mut out, ns::CLIENT, &[(ns::DIALBACK, "db")]);
        assert_eq!(
            String::from_utf8(out).unwrap_or_default(),
            r#"<db:result type="error"><error><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></db:result>"#
        );
        // Without the binding the namespace is declared as usual.
        assert_eq!(
            s(&Element::new("result", ns::DIALBACK), ns::CLIENT),
            r#"<result xmlns="jabber:server:dialback"/>"#
        );
    }

    #[test]
    fn escapes_and_drops_controls() {
        let el = Element::new("body", ns::CLIENT)
            .with_attr("a", "\"<&>'\u{1}")
            .with_text("<&>\"'\u{0}\u{8}ok");
        assert_eq!(
            s(&el, ns::CLIENT),
            r#"<body a="&quot;&lt;&amp;&gt;'">&lt;&amp;&gt;"'ok</body>"#
        );
    }

    #[test]
    fn stray_xmlns_attribute_is_not_duplicated() {
        let el = Element::new("a", "urn:x").with_attr("xmlns", "urn:y");
        assert_eq!(s(&el, ns::CLIENT), r#"<a xmlns="urn:x"/>"#);
    }
}
