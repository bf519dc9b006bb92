//! The element tree: what a stanza is once parsed, and what replies are built from.

use std::fmt;

/// One XML element: local name, resolved namespace URI, attributes and child nodes.
///
/// Names are stored without a prefix; the namespace is the resolved URI, so callers compare
/// with [`Element::is`] and never care how the peer spelled its prefixes. Attributes keep
/// their qualified name as written (`to`, `xml:lang`) and their insertion order, which makes
/// serialisation byte-stable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    name: String,
    ns: String,
    attrs: Vec<(String, String)>,
    nodes: Vec<Node>,
}

/// A child of an element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data, unescaped.
    Text(String),
}

impl Element {
    /// Creates an empty element `name` in namespace `ns`.
    pub fn new(name: &str, ns: &str) -> Element {
        Element {
            name: name.to_owned(),
            ns: ns.to_owned(),
            attrs: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// The local name (no prefix).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace URI.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// True if this element has the given local name and namespace.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// The value of the attribute with this qualified name, e.g. `"to"` or `"xml:lang"`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets an attribute, replacing its value in place if present (order is kept).
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name.to_owned(), value)),
        }
    }

    /// Removes an attribute, returning its value.
    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let idx = self.attrs.iter().position(|(k, _)| k == name)?;
        Some(self.attrs.remove(idx).1)
    }

    /// All attributes in insertion order.
    pub fn attrs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attrs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Builder form of [`Element::set_attr`].
    pub fn with_attr(mut self, name: &str, value: impl Into<String>) -> Element {
        self.set_attr(name, value);
        self
    }

    /// Builder form of [`Element::push_child`].
    pub fn with_child(mut self, child: Element) -> Element {
        self.push_child(child);
        self
    }

    /// Builder form of [`Element::push_text`].
    pub fn with_text(mut self, text: impl Into<String>) -> Element {
        self.push_text(text);
        self
    }

    /// Appends a child element.
    pub fn push_child(&mut self, child: Element) {
        self.nodes.push(Node::Element(child));
    }

    /// Appends character data; adjacent text is merged so `nodes()` stays canonical.
    pub fn push_text(&mut self, text: impl Into<String>) {
        let text = text.into();
        if text.is_empty() {
            return;
        }
        match self.nodes.last_mut() {
            Some(Node::Text(prev)) => prev.push_str(&text),
            _ => self.nodes.push(Node::Text(text)),
        }
    }

    /// All child nodes in document order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Element children only, in document order.
    pub fn children(&self) -> impl Iterator<Item = &Element> {
        self.nodes.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element with this name and namespace.
    pub fn get_child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children().find(|c| c.is(name, ns))
    }

    /// Mutable form of [`Element::get_child`].
    pub fn get_child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Element> {
        self.nodes.iter_mut().find_map(|n| match n {
            Node::Element(e) if e.is(name, ns) => Some(e),
            _ => None,
        })
    }

    /// Removes the child elements with this name and namespace; true if there was one.
    pub fn remove_child(&mut self, name: &str, ns: &str) -> bool {
        if self.get_child(name, ns).is_none() {
            return false;
        }
        self.retain_children(|e| !e.is(name, ns));
        true
    }

    /// Keeps only the child elements `keep` says yes to (text stays).
    pub fn retain_children(&mut self, mut keep: impl FnMut(&Element) -> bool) {
        // Rebuilt through `push_text` so the text around a removed child merges again.
        for node in std::mem::take(&mut self.nodes) {
            match node {
                Node::Element(e) if !keep(&e) => {}
                Node::Element(e) => self.nodes.push(Node::Element(e)),
                Node::Text(t) => self.push_text(t),
            }
        }
    }

    /// Removes all child nodes (elements and text).
    pub fn remove_children(&mut self) {
        self.nodes.clear();
    }

    /// The concatenation of the direct text children.
    pub fn text(&self) -> String {
        self.nodes
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// Serialises into `out`; see [`crate::xml::writer`] for the rules.
    pub fn write_to(&self, out: &mut Vec<u8>, parent_ns: &str) {
        super::writer::write_element(self, out, parent_ns);
    }

    /// Serialises into `out` inside a stream whose header also binds the (namespace, prefix)
    /// pairs in `bound`: elements of those namespaces are written with the prefix and no
    /// declaration.
    pub fn write_to_bound(&self, out: &mut Vec<u8>, parent_ns: &str, bound: &[(&str, &str)]) {
        super::writer::write_bound(self, out, parent_ns, bound);
    }

    /// Serialises into a new buffer.
    pub fn to_bytes(&self, parent_ns: &str) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out, parent_ns);
        out
    }

    /// Serialises into a new string, for storage: the writer only ever writes UTF-8 (its
    /// input is Rust strings), so the buffer becomes the string without a copy.
    pub fn to_xml_string(&self, parent_ns: &str) -> String {
        String::from_utf8(self.to_bytes(parent_ns))
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    pub(crate) fn attr_pairs(&self) -> &[(String, String)] {
        &self.attrs
    }
}

impl fmt::Display for Element {
    /// Serialises as it would appear inside a `jabber:client` stream (for logs and tests).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes(crate::ns::CLIENT);
        f.write_str(&String::from_utf8_lossy(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_string_form_is_the_bytes_form() {
        let e = Element::new("message", "jabber:client")
            .with_attr("to", "jürgen@example.org")
            .with_child(Element::new("body", "jabber:client").with_text("grüß <dich> & 😀"));
        let text = e.to_xml_string("jabber:client");
        assert_eq!(text.as_bytes(), e.to_bytes("jabber:client"));
        assert!(text.contains("grüß &lt;dich&gt; &amp; 😀"), "{text}");
    }

    #[test]
    fn attributes_replace_in_place() {
        let mut e = Element::new("iq", "jabber:client")
            .with_attr("id", "1")
            .with_attr("type", "get");
        e.set_attr("id", "2");
        assert_eq!(
            e.attrs().collect::<Vec<_>>(),
            [("id", "2"), ("type", "get")]
        );
        assert_eq!(e.remove_attr("id").as_deref(), Some("2"));
        assert_eq!(e.attr("id"), None);
    }

    #[test]
    fn children_and_text() {
        let mut e = Element::new("message", "jabber:client")
            .with_text("a")
            .with_child(Element::new("body", "jabber:client").with_text("hi"))
            .with_text("b")
            .with_text("c");
        assert_eq!(e.text(), "abc");
        assert_eq!(e.nodes().len(), 3);
        assert_eq!(
            e.get_child("body", "jabber:client")
                .map(Element::text)
                .as_deref(),
            Some("hi")
        );
        assert!(e.get_child("body", "other").is_none());
        if let Some(b) = e.get_child_mut("body", "jabber:client") {
            b.push_text("!");
        }
        assert_eq!(
            e.children().next().map(Element::text).as_deref(),
            Some("hi!")
        );
        e.remove_children();
        assert!(e.nodes().is_empty());
    }

    #[test]
    fn removing_a_child_merges_the_text_around_it() {
        let mut e = Element::new("message", "jabber:client")
            .with_text("a")
            .with_child(Element::new("private", "urn:xmpp:carbons:2"))
            .with_text("b")
            .with_child(Element::new("body", "jabber:client"));
        assert!(!e.remove_child("private", "jabber:client"));
        assert!(e.remove_child("private", "urn:xmpp:carbons:2"));
        assert_eq!(e.nodes().len(), 2);
        assert_eq!(e.text(), "ab");
        assert!(e.get_child("body", "jabber:client").is_some());
    }
}
