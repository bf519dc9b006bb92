//! Escaping for output and entity resolution for input.
//!
//! Output: characters that XML 1.0 forbids (§2.2 `Char`: C0 controls other than TAB, LF and
//! CR, and U+FFFE / U+FFFF) are **dropped**. They cannot be represented at all, not even as
//! character references, and replacing them with a visible character would silently change
//! e.g. a resource or a password; dropping keeps the stream well-formed, which is what
//! protects the peer. CR, and in attributes TAB and LF, are written as character references
//! because a parser normalises them otherwise (XML 1.0 §2.11, §3.3.3).
//!
//! Input: only the five predefined entities and numeric character references exist in
//! XMPP, since RFC 6120 §11.1 forbids DTDs and therefore any other entity declaration.

use std::borrow::Cow;

/// True for characters allowed by XML 1.0 §2.2 (`Char`).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// Appends `text` escaped for element content.
pub(crate) fn escape_text(out: &mut Vec<u8>, text: &str) {
    escape(out, text, false);
}

/// Appends `value` escaped for a double-quoted attribute value.
pub(crate) fn escape_attr(out: &mut Vec<u8>, value: &str) {
    escape(out, value, true);
}

fn escape(out: &mut Vec<u8>, s: &str, in_attr: bool) {
    // Copy runs of harmless characters in one go; only special ones need a decision.
    let mut run_start = 0;
    for (i, c) in s.char_indices() {
        let replacement: Option<&str> = match c {
            '&' => Some("&amp;"),
            '<' => Some("&lt;"),
            '>' => Some("&gt;"),
            '"' if in_attr => Some("&quot;"),
            '\r' => Some("&#13;"),
            '\t' if in_attr => Some("&#9;"),
            '\n' if in_attr => Some("&#10;"),
            c if !is_xml_char(c) => Some(""),
            _ => None,
        };
        if let Some(rep) = replacement {
            out.extend_from_slice(&s.as_bytes()[run_start..i]);
            out.extend_from_slice(rep.as_bytes());
            run_start = i + c.len_utf8();
        }
    }
    out.extend_from_slice(&s.as_bytes()[run_start..]);
}

/// Why an entity or character reference was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RefError {
    /// Not one of the five predefined entities (would need a DTD: restricted by RFC 6120 §11.1,
    /// but without a DTD it is simply undeclared, hence not well-formed).
    Unknown,
    /// A numeric reference that is malformed or names a character XML forbids.
    BadCharRef,
}

/// Resolves the body of a reference (`amp`, `#x41`, `#65`) to its character.
pub(crate) fn resolve_ref(name: &str) -> Result<char, RefError> {
    match name {
        "amp" => Ok('&'),
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        _ => {
            let num = name.strip_prefix('#').ok_or(RefError::Unknown)?;
            let code = match num.strip_prefix('x') {
                Some(hex) => parse_digits(hex, 16),
                None => parse_digits(num, 10),
            }
            .ok_or(RefError::BadCharRef)?;
            char::from_u32(code)
                .filter(|c| is_xml_char(*c))
                .ok_or(RefError::BadCharRef)
        }
    }
}

fn parse_digits(s: &str, radix: u32) -> Option<u32> {
    // from_str_radix would accept a leading '+', which XML does not.
    if s.is_empty() || !s.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(s, radix).ok()
}

/// Unescapes an attribute value as written, applying attribute-value normalisation
/// (XML 1.0 §3.3.3: literal TAB, LF and CR become spaces; references are kept verbatim).
pub(crate) fn unescape_attr(raw: &str) -> Result<Cow<'_, str>, RefError> {
    if !raw.contains(['&', '\t', '\n', '\r']) {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '\t', '\n', '\r']) {
        out.push_str(&rest[..i]);
        if rest.as_bytes()[i] == b'&' {
            let after = &rest[i + 1..];
            let end = after.find(';').ok_or(RefError::Unknown)?;
            out.push(resolve_ref(&after[..end])?);
            rest = &after[end + 1..];
        } else {
            // CRLF counts as one line end (§2.11) before normalisation to a space.
            let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
            out.push(' ');
            rest = &rest[i + skip..];
        }
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Normalises line ends in character data (XML 1.0 §2.11: CRLF and lone CR become LF).
pub(crate) fn normalize_eol(text: &str) -> Cow<'_, str> {
    if text.contains('\r') {
        Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        let mut out = Vec::new();
        escape_text(&mut out, s);
        String::from_utf8(out).unwrap_or_default()
    }

    fn attr(s: &str) -> String {
        let mut out = Vec::new();
        escape_attr(&mut out, s);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn escapes_specials() {
        assert_eq!(text(r#"a<b>&"c'"#), r#"a&lt;b&gt;&amp;"c'"#);
        assert_eq!(attr(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c'");
    }

    #[test]
    fn drops_illegal_characters() {
        assert_eq!(text("a\u{0}b\u{1b}c\u{FFFE}d\tе\n"), "abcd\tе\n");
        assert_eq!(attr("x\u{7}y\tz\n"), "xy&#9;z&#10;");
        assert_eq!(text("cr\r"), "cr&#13;");
    }

    #[test]
    fn resolves_references() {
        assert_eq!(resolve_ref("amp"), Ok('&'));
        assert_eq!(resolve_ref("#x41"), Ok('A'));
        assert_eq!(resolve_ref("#65"), Ok('A'));
        assert_eq!(resolve_ref("#0"), Err(RefError::BadCharRef));
        assert_eq!(resolve_ref("#x1F"), Err(RefError::BadCharRef));
        assert_eq!(resolve_ref("#+5"), Err(RefError::BadCharRef));
        assert_eq!(resolve_ref("lol"), Err(RefError::Unknown));
    }

    #[test]
    fn attribute_normalisation() {
        assert_eq!(unescape_attr("a\r\nb\tc&#10;").as_deref(), Ok("a b c\n"));
        assert_eq!(unescape_attr("a&x"), Err(RefError::Unknown));
    }
}
