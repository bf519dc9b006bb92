//! JIDs (RFC 7622).
//!
//! Parsing, PRECIS-era stringprep normalisation and the 1023-byte part limits come from the
//! `jid` crate; this module only adds what resource binding needs.

pub use ::jid::{BareJid, Error as JidError, FullJid, Jid};

/// Parses a bare JID that names a stored identity (an account): [`BareJid::new`], and an
/// address whose normal form is not its own normal form is refused.
///
/// Stringprep is not idempotent on code points unassigned in Unicode 3.2, which is why
/// RFC 3454 §7 keeps them out of stored strings: nodeprep maps U+03F9 `Ϲ` to `Σ` (NFKC, no
/// case folding for a code point its tables lack) and `Σ` to `σ`. Accepted, `Ϲ@host` would
/// be stored as `Σ@host` and bound, one normalisation later, as `σ@host`: another account.
/// The error is the prep profile's (`NodePrep` or `NamePrep`), as for any refused part.
pub fn parse_bare(s: &str) -> Result<BareJid, JidError> {
    let bare = BareJid::new(s)?;
    let again = BareJid::new(bare.as_str())?;
    if again == bare {
        Ok(bare)
    } else if again.node() != bare.node() {
        Err(JidError::NodePrep)
    } else {
        Err(JidError::NamePrep)
    }
}

/// Validates and normalises a resource requested by a client (RFC 6120 §7.7.2.2).
///
/// Returns the normalised resource, or the reason it is unacceptable (empty, longer than
/// 1023 bytes, or refused by resourceprep), which the caller maps to `bad-request`.
pub fn parse_resource(s: &str) -> Result<String, JidError> {
    // The jid crate checks a resource only as part of a JID, so validate it against a fixed
    // placeholder bare JID; the domain is ASCII and always valid, so any error is about `s`.
    let bare = BareJid::new("resource.check")?;
    let full = bare.with_resource_str(s)?;
    Ok(full.resource().as_str().to_owned())
}

/// The bare part of a JID's text, up to the first `/` (RFC 7622 §3.1: the domain and local
/// parts hold none; a resource may), without parsing it: for JIDs that are already
/// normalised, on paths where parsing again would cost.
pub fn bare_part(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(bare, _)| bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_part_cuts_at_the_first_slash() {
        assert_eq!(bare_part("a@b/c/d"), "a@b");
        assert_eq!(bare_part("a@b"), "a@b");
        assert_eq!(bare_part("b/c"), "b");
    }

    #[test]
    fn accepts_ordinary_resource() {
        assert_eq!(parse_resource("laptop").as_deref(), Ok("laptop"));
        assert_eq!(
            parse_resource("Home / Office").as_deref(),
            Ok("Home / Office")
        );
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(parse_resource(""), Err(JidError::ResourceEmpty));
    }

    #[test]
    fn rejects_too_long() {
        let long = "a".repeat(1024);
        assert_eq!(parse_resource(&long), Err(JidError::ResourceTooLong));
        assert!(parse_resource(&"a".repeat(1023)).is_ok());
    }

    #[test]
    fn unstable_normal_forms_are_refused() {
        assert_eq!(parse_bare("\u{3f9}@example.com"), Err(JidError::NodePrep));
        assert_eq!(parse_bare("user@\u{3f9}"), Err(JidError::NamePrep));
        assert_eq!(
            parse_bare("\u{3a3}@Example.com").map(|j| j.to_string()),
            Ok("\u{3c3}@example.com".to_owned())
        );
    }

    #[test]
    fn rejects_forbidden_characters() {
        // Control characters are prohibited by resourceprep (RFC 3920 appendix B).
        assert_eq!(parse_resource("bad\u{7}res"), Err(JidError::ResourcePrep));
        assert!(parse_resource("a\u{0}b").is_err());
    }
}
