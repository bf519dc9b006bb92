//! Namespace scope: which URI each prefix (and the default namespace) means at a point in
//! the stream (Namespaces in XML 1.0 §6).
//!
//! The stream header's declarations stay in force for the whole stream, so they form the
//! base; each element pushes its own declarations while its subtree is parsed and they are
//! dropped again when it ends. quick-xml's own resolver is not used because it cannot be
//! seeded from a header parsed earlier, and each stanza is parsed as a separate document.

use std::borrow::Cow;

use crate::ns;
use crate::stream::{StreamCondition, StreamError};

/// Prefixes and URIs a stream header binds, borrowed instead of copied: the header's scope
/// lives as long as the stream, so an idle session would otherwise keep a small heap string
/// for each (the performance issue's per-session budget).
const KNOWN: [&str; 8] = [
    "",
    "xml",
    "stream",
    "flash",
    ns::XML,
    ns::CLIENT,
    ns::STREAM,
    ns::FLASH,
];

fn name(s: &str) -> Cow<'static, str> {
    match KNOWN.iter().find(|known| **known == s) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(s.to_owned()),
    }
}

/// Prefix → URI bindings; `""` is the default namespace.
#[derive(Clone, Debug)]
pub(crate) struct Scope {
    bindings: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    implied_stream: bool,
}

impl Scope {
    /// A scope where only the reserved `xml` prefix is bound.
    pub(crate) fn new() -> Scope {
        Scope {
            bindings: vec![(Cow::Borrowed("xml"), Cow::Borrowed(ns::XML))],
            implied_stream: false,
        }
    }

    /// Releases room left by the deepest element parsed so far (for idle connections).
    pub(crate) fn shrink_to_fit(&mut self) {
        self.bindings.shrink_to_fit();
    }

    /// Number of bindings; a mark to [`Scope::truncate`] back to.
    pub(crate) fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Drops every binding made after `mark`.
    pub(crate) fn truncate(&mut self, mark: usize) {
        self.bindings.truncate(mark);
    }

    /// COMPAT: lets the `stream` prefix mean the stream namespace wherever nothing else binds
    /// it (XIFF's headers never declare it). A fallback rather than a binding, so a Flash
    /// stream's scope is no bigger than a standard one's.
    pub(crate) fn imply_stream_prefix(&mut self) {
        self.implied_stream = true;
    }

    /// Applies the `xmlns` / `xmlns:p` attributes among `attrs`.
    pub(crate) fn push_declarations(
        &mut self,
        attrs: &[(String, String)],
    ) -> Result<(), StreamError> {
        for (attr, value) in attrs {
            if attr == "xmlns" {
                self.bindings.push((Cow::Borrowed(""), name(value)));
            } else if let Some(prefix) = attr.strip_prefix("xmlns:") {
                check_declaration(prefix, value)?;
                self.bindings.push((name(prefix), name(value)));
            }
        }
        Ok(())
    }

    /// The URI bound to `prefix` (`""` = default namespace, which may be unbound).
    pub(crate) fn resolve(&self, prefix: &str) -> Option<&str> {
        self.bindings
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, uri)| uri.as_ref())
            .or((self.implied_stream && prefix == "stream").then_some(ns::STREAM))
    }
}

/// Namespaces in XML 1.0 §3: prefixes cannot be undeclared, `xmlns` cannot be declared, and
/// `xml` may only be bound to its own URI.
fn check_declaration(prefix: &str, uri: &str) -> Result<(), StreamError> {
    let bad = |why: &str| Err(StreamError::with_text(StreamCondition::NotWellFormed, why));
    if uri.is_empty() {
        return bad("a namespace prefix cannot be undeclared");
    }
    if prefix == "xmlns"
        || (prefix == "xml") != (uri == ns::XML)
        || uri == "http://www.w3.org/2000/xmlns/"
    {
        return bad("reserved namespace prefix or URI");
    }
    if prefix.is_empty() || prefix.contains(':') {
        return bad("invalid namespace prefix");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.to_owned(), v.to_owned())]
    }

    #[test]
    fn nested_bindings_shadow_and_unwind() {
        let mut s = Scope::new();
        s.push_declarations(&decl("xmlns", "jabber:client"))
            .unwrap_or(());
        let mark = s.len();
        s.push_declarations(&decl("xmlns", "urn:a")).unwrap_or(());
        s.push_declarations(&decl("xmlns:p", "urn:p")).unwrap_or(());
        assert_eq!(s.resolve(""), Some("urn:a"));
        assert_eq!(s.resolve("p"), Some("urn:p"));
        s.truncate(mark);
        assert_eq!(s.resolve(""), Some("jabber:client"));
        assert_eq!(s.resolve("p"), None);
        assert_eq!(s.resolve("xml"), Some(ns::XML));
    }

    #[test]
    fn header_names_are_not_copied() {
        let mut s = Scope::new();
        s.push_declarations(&decl("xmlns", ns::CLIENT))
            .unwrap_or(());
        s.push_declarations(&decl("xmlns:flash", ns::FLASH))
            .unwrap_or(());
        s.push_declarations(&decl("xmlns:stream", ns::STREAM))
            .unwrap_or(());
        s.push_declarations(&decl("xmlns:p", "urn:p")).unwrap_or(());
        let borrowed = |c: &Cow<'static, str>| matches!(c, Cow::Borrowed(_));
        let (known, other) = s.bindings.split_at(4);
        assert!(known.iter().all(|(p, u)| borrowed(p) && borrowed(u)));
        assert!(!borrowed(&other[0].1));
        assert_eq!(s.resolve("flash"), Some(ns::FLASH));
    }

    #[test]
    fn implied_stream_prefix_yields_to_declarations() {
        let mut s = Scope::new();
        assert_eq!(s.resolve("stream"), None);
        s.imply_stream_prefix();
        assert_eq!(s.resolve("stream"), Some(ns::STREAM));
        s.push_declarations(&decl("xmlns:stream", "urn:other"))
            .unwrap_or(());
        assert_eq!(s.resolve("stream"), Some("urn:other"));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn reserved_declarations_rejected() {
        let mut s = Scope::new();
        assert!(s.push_declarations(&decl("xmlns:p", "")).is_err());
        assert!(s.push_declarations(&decl("xmlns:xml", "urn:x")).is_err());
        assert!(s.push_declarations(&decl("xmlns:xmlns", "urn:x")).is_err());
        assert!(s.push_declarations(&decl("xmlns:xml", ns::XML)).is_ok());
    }
}
