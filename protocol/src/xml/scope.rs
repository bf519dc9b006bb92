//! Namespace scope: which URI each prefix (and the default namespace) means at a point in
//! the stream (Namespaces in XML 1.0 §6).
//!
//! The stream header's declarations stay in force for the whole stream, so they form the
//! base; each element pushes its own declarations while its subtree is parsed and they are
//! dropped again when it ends. quick-xml's own resolver is not used because it cannot be
//! seeded from a header parsed earlier, and each stanza is parsed as a separate document.

use crate::ns;
use crate::stream::{StreamCondition, StreamError};

/// Prefix → URI bindings; `""` is the default namespace.
#[derive(Clone, Debug)]
pub(crate) struct Scope {
    bindings: Vec<(String, String)>,
}

impl Scope {
    /// A scope where only the reserved `xml` prefix is bound.
    pub(crate) fn new() -> Scope {
        Scope {
            bindings: vec![("xml".to_owned(), ns::XML.to_owned())],
        }
    }

    /// Number of bindings; a mark to [`Scope::truncate`] back to.
    pub(crate) fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Drops every binding made after `mark`.
    pub(crate) fn truncate(&mut self, mark: usize) {
        self.bindings.truncate(mark);
    }

    /// Adds one binding in the current frame (used for implicit COMPAT bindings).
    pub(crate) fn bind_base(&mut self, prefix: &str, uri: &str) {
        self.bindings.push((prefix.to_owned(), uri.to_owned()));
    }

    /// Applies the `xmlns` / `xmlns:p` attributes among `attrs`.
    pub(crate) fn push_declarations(
        &mut self,
        attrs: &[(String, String)],
    ) -> Result<(), StreamError> {
        for (name, value) in attrs {
            if name == "xmlns" {
                self.bindings.push((String::new(), value.clone()));
            } else if let Some(prefix) = name.strip_prefix("xmlns:") {
                check_declaration(prefix, value)?;
                self.bindings.push((prefix.to_owned(), value.clone()));
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
            .map(|(_, uri)| uri.as_str())
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
    fn reserved_declarations_rejected() {
        let mut s = Scope::new();
        assert!(s.push_declarations(&decl("xmlns:p", "")).is_err());
        assert!(s.push_declarations(&decl("xmlns:xml", "urn:x")).is_err());
        assert!(s.push_declarations(&decl("xmlns:xmlns", "urn:x")).is_err());
        assert!(s.push_declarations(&decl("xmlns:xml", ns::XML)).is_ok());
    }
}
