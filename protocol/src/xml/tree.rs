//! Parsing one complete unit (found by the scanner) into a tree, with our namespace scope.
//!
//! Each unit is parsed by quick-xml exactly once, from a slice that is known to be complete,
//! because quick-xml cannot resume on partial input. Every quick-xml error is a peer fault
//! and maps to `not-well-formed` (RFC 6120 §4.9.3.13).

use quick_xml::events::{BytesStart, Event as XmlEvent};
use quick_xml::Reader;

use super::element::Element;
use super::escape::{is_xml_char, normalize_eol, resolve_ref, unescape_attr, RefError};
use super::scope::Scope;
use crate::stream::{StreamCondition, StreamError};

/// A start tag with its qualified name and unescaped attributes, namespaces unresolved.
#[derive(Debug)]
pub(crate) struct StartTag {
    pub(crate) name: String,
    pub(crate) attrs: Vec<(String, String)>,
    pub(crate) self_closed: bool,
}

impl StartTag {
    /// `(prefix, local)`; the prefix is `""` when there is none.
    pub(crate) fn split_name(&self) -> (&str, &str) {
        split_qname(&self.name)
    }

    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn split_qname(name: &str) -> (&str, &str) {
    name.split_once(':').unwrap_or(("", name))
}

fn not_well_formed(text: impl Into<String>) -> StreamError {
    StreamError::with_text(StreamCondition::NotWellFormed, text)
}

fn restricted(text: &str) -> StreamError {
    StreamError::with_text(StreamCondition::RestrictedXml, text)
}

fn as_utf8(bytes: &[u8]) -> Result<&str, StreamError> {
    std::str::from_utf8(bytes).map_err(|_| not_well_formed("invalid UTF-8"))
}

fn reader(unit: &str) -> Reader<&[u8]> {
    let mut r = Reader::from_str(unit);
    let cfg = r.config_mut();
    cfg.check_end_names = true;
    cfg.expand_empty_elements = false;
    cfg.trim_text(false);
    r
}

/// Checks the XML declaration `<?xml …?>`: only UTF-8 is spoken (RFC 6120 §11.6).
pub(crate) fn check_declaration(unit: &[u8]) -> Result<(), StreamError> {
    let text = as_utf8(unit)?;
    match reader(text).read_event() {
        Ok(XmlEvent::Decl(decl)) => match decl.encoding() {
            None => Ok(()),
            Some(Ok(enc)) if enc.eq_ignore_ascii_case(b"UTF-8") => Ok(()),
            Some(Ok(_)) => Err(StreamError::new(StreamCondition::UnsupportedEncoding)),
            Some(Err(_)) => Err(not_well_formed("bad XML declaration")),
        },
        _ => Err(not_well_formed("bad XML declaration")),
    }
}

/// Parses a lone start tag (the stream header).
pub(crate) fn parse_start_tag(unit: &[u8]) -> Result<StartTag, StreamError> {
    let text = as_utf8(unit)?;
    match reader(text).read_event() {
        Ok(XmlEvent::Start(start)) => start_tag(&start, false),
        Ok(XmlEvent::Empty(start)) => start_tag(&start, true),
        Ok(_) => Err(not_well_formed("expected a stream header")),
        Err(e) => Err(not_well_formed(e.to_string())),
    }
}

fn start_tag(start: &BytesStart<'_>, self_closed: bool) -> Result<StartTag, StreamError> {
    let name = as_utf8(start.name().as_ref())?.to_owned();
    check_qname(&name)?;
    let mut attrs = Vec::new();
    // with_checks (the default) rejects duplicate, unquoted and valueless attributes.
    for attr in start.attributes() {
        let attr = attr.map_err(|e| not_well_formed(e.to_string()))?;
        let key = as_utf8(attr.key.as_ref())?;
        check_qname(key)?;
        let value = unescape_attr(as_utf8(&attr.value)?).map_err(ref_error)?;
        check_chars(&value)?;
        attrs.push((key.to_owned(), value.into_owned()));
    }
    Ok(StartTag {
        name,
        attrs,
        self_closed,
    })
}

/// A QName is one NCName or two joined by a colon (Namespaces in XML 1.0 §4). quick-xml
/// takes whatever precedes `=` as an attribute's name, quotes included, so the characters are
/// checked here: a name we accepted would otherwise be written, as it is, to a recipient.
fn check_qname(name: &str) -> Result<(), StreamError> {
    let ok = match name.split_once(':') {
        Some((prefix, local)) => is_ncname(prefix) && is_ncname(local),
        None => is_ncname(name),
    };
    if ok {
        Ok(())
    } else {
        Err(not_well_formed(format!("invalid name {name:?}")))
    }
}

/// XML 1.0 (fifth edition) §2.3 `Name` without colons.
fn is_ncname(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

fn is_name_start_char(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

fn ref_error(e: RefError) -> StreamError {
    match e {
        RefError::Unknown => not_well_formed("undeclared entity reference"),
        RefError::BadCharRef => not_well_formed("invalid character reference"),
    }
}

/// The scanner already refused C0 controls; U+FFFE and U+FFFF are the remaining non-chars
/// that UTF-8 can carry (XML 1.0 §2.2).
fn check_chars(s: &str) -> Result<(), StreamError> {
    if s.chars().all(is_xml_char) {
        Ok(())
    } else {
        Err(not_well_formed("character not allowed in XML"))
    }
}

/// Parses one complete element (a stanza) resolving names against `scope`, which holds the
/// stream header's bindings. The scope is left as it was found.
pub(crate) fn parse_element(unit: &[u8], scope: &mut Scope) -> Result<Element, StreamError> {
    let mark = scope.len();
    let result = build(unit, scope);
    scope.truncate(mark);
    result
}

fn build(unit: &[u8], scope: &mut Scope) -> Result<Element, StreamError> {
    let text = as_utf8(unit)?;
    let mut reader = reader(text);
    // Open elements with the scope mark to restore when each one ends.
    let mut stack: Vec<(Element, usize)> = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| not_well_formed(e.to_string()))?;
        let finished = match event {
            XmlEvent::Start(start) => {
                let mark = scope.len();
                let el = open_element(&start, scope)?;
                stack.push((el, mark));
                None
            }
            XmlEvent::Empty(start) => {
                let mark = scope.len();
                let el = open_element(&start, scope)?;
                scope.truncate(mark);
                attach(&mut stack, el)
            }
            XmlEvent::End(_) => {
                let (el, mark) = stack
                    .pop()
                    .ok_or_else(|| not_well_formed("unexpected end tag"))?;
                scope.truncate(mark);
                attach(&mut stack, el)
            }
            XmlEvent::Text(t) => {
                push_text(&mut stack, &normalize_eol(as_utf8(&t)?))?;
                None
            }
            XmlEvent::CData(t) => {
                push_text(&mut stack, &normalize_eol(as_utf8(&t)?))?;
                None
            }
            XmlEvent::GeneralRef(r) => {
                let c = resolve_ref(as_utf8(&r)?).map_err(ref_error)?;
                push_text(&mut stack, c.encode_utf8(&mut [0; 4]))?;
                None
            }
            XmlEvent::Comment(_) => return Err(restricted("comments are not allowed")),
            XmlEvent::PI(_) | XmlEvent::Decl(_) => {
                return Err(restricted("processing instructions are not allowed"))
            }
            XmlEvent::DocType(_) => return Err(restricted("DTDs are not allowed")),
            XmlEvent::Eof => return Err(not_well_formed("incomplete element")),
        };
        if let Some(root) = finished {
            return Ok(root);
        }
    }
}

/// Adds a finished element to its parent; returns it if it was the root.
fn attach(stack: &mut [(Element, usize)], el: Element) -> Option<Element> {
    match stack.last_mut() {
        Some((parent, _)) => {
            parent.push_child(el);
            None
        }
        None => Some(el),
    }
}

fn push_text(stack: &mut [(Element, usize)], text: &str) -> Result<(), StreamError> {
    check_chars(text)?;
    match stack.last_mut() {
        Some((parent, _)) => {
            parent.push_text(text);
            Ok(())
        }
        // The scanner hands over units that start with '<' and end with the root's '>'.
        None if text.trim().is_empty() => Ok(()),
        None => Err(not_well_formed("text outside the root element")),
    }
}

/// Builds the element for a start tag: applies its namespace declarations to `scope`, then
/// resolves its name. Declarations are not kept as attributes since `ns()` carries them.
fn open_element(start: &BytesStart<'_>, scope: &mut Scope) -> Result<Element, StreamError> {
    let tag = start_tag(start, false)?;
    scope.push_declarations(&tag.attrs)?;
    let (prefix, local) = tag.split_name();
    let uri = resolve(scope, prefix)?;
    let mut el = Element::new(local, uri);
    for (name, value) in &tag.attrs {
        if name == "xmlns" || name.starts_with("xmlns:") {
            continue;
        }
        let (prefix, _) = split_qname(name);
        if !prefix.is_empty() && prefix != "xml" {
            // Attribute prefixes are stored as written, so keep the declaration they need
            // on this element; otherwise re-serialising would emit an unbound prefix.
            let uri = resolve(scope, prefix)?.to_owned();
            let decl = format!("xmlns:{prefix}");
            if el.attr(&decl).is_none() {
                el.set_attr(&decl, uri);
            }
        }
        el.set_attr(name, value.as_str());
    }
    Ok(el)
}

fn resolve<'s>(scope: &'s Scope, prefix: &str) -> Result<&'s str, StreamError> {
    match scope.resolve(prefix) {
        Some(uri) => Ok(uri),
        // An unprefixed name with no default namespace in scope is simply in no namespace.
        None if prefix.is_empty() => Ok(""),
        None => Err(StreamError::with_text(
            StreamCondition::BadNamespacePrefix,
            format!("undeclared prefix {prefix:?}"),
        )),
    }
}
