//! SASL negotiation elements (RFC 6120 §6.4), wire format only.
//!
//! Mechanism logic lives in the server (it uses the `sasl` crate); this module turns
//! `<auth/>`, `<response/>` and `<abort/>` into bytes and builds the server's replies.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::ns;
use crate::xml::Element;

/// What the client sent during SASL negotiation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaslRequest {
    /// `<auth mechanism="…">`, with the decoded initial response if one was sent.
    Auth {
        /// The mechanism name as sent.
        mechanism: String,
        /// `None`: no initial response; `Some(empty)`: `=` (RFC 6120 §6.4.2).
        initial: Option<Vec<u8>>,
    },
    /// `<response>`, decoded.
    Response(Vec<u8>),
    /// `<abort/>` (RFC 6120 §6.4.4).
    Abort,
}

/// Why a SASL element could not be understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SaslWireError {
    /// The character data is not valid base64 (→ `incorrect-encoding`, RFC 6120 §6.5.2).
    #[error("SASL data is not valid base64")]
    IncorrectEncoding,
    /// `<auth/>` without a `mechanism` attribute (→ `invalid-mechanism`, RFC 6120 §6.5.5).
    #[error("SASL auth without mechanism")]
    MissingMechanism,
    /// Not a SASL request element (→ `malformed-request`, RFC 6120 §6.5.6).
    #[error("unexpected element in SASL negotiation")]
    UnexpectedElement,
}

impl SaslWireError {
    /// The `<failure/>` condition to answer with.
    pub fn failure(&self) -> SaslFailure {
        match self {
            SaslWireError::IncorrectEncoding => SaslFailure::IncorrectEncoding,
            SaslWireError::MissingMechanism => SaslFailure::InvalidMechanism,
            SaslWireError::UnexpectedElement => SaslFailure::MalformedRequest,
        }
    }
}

/// Parses a client's SASL element.
pub fn parse_request(el: &Element) -> Result<SaslRequest, SaslWireError> {
    if el.ns() != ns::SASL {
        return Err(SaslWireError::UnexpectedElement);
    }
    match el.name() {
        "auth" => {
            let mechanism = el
                .attr("mechanism")
                .ok_or(SaslWireError::MissingMechanism)?
                .to_owned();
            let text = el.text();
            // RFC 6120 §6.4.2: no character data means no initial response, while "="
            // means an initial response of zero length.
            let initial = if text.trim().is_empty() {
                None
            } else {
                Some(decode(&text)?)
            };
            Ok(SaslRequest::Auth { mechanism, initial })
        }
        "response" => Ok(SaslRequest::Response(decode(&el.text())?)),
        "abort" => Ok(SaslRequest::Abort),
        _ => Err(SaslWireError::UnexpectedElement),
    }
}

fn decode(text: &str) -> Result<Vec<u8>, SaslWireError> {
    // COMPAT: some clients wrap long base64 lines; whitespace carries no data.
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() || compact == "=" {
        return Ok(Vec::new());
    }
    STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| SaslWireError::IncorrectEncoding)
}

fn with_data(name: &str, data: &[u8]) -> Element {
    let el = Element::new(name, ns::SASL);
    // Empty data is sent as an empty element rather than "=": clients that base64-decode
    // the text blindly handle "" but not "=".
    if data.is_empty() {
        el
    } else {
        el.with_text(STANDARD.encode(data))
    }
}

/// `<challenge/>` carrying `data` (RFC 6120 §6.4.3).
pub fn challenge(data: &[u8]) -> Element {
    with_data("challenge", data)
}

/// `<success/>` with optional additional data (RFC 6120 §6.4.6); empty data gives no text.
pub fn success(data: &[u8]) -> Element {
    with_data("success", data)
}

/// The SASL failure conditions (RFC 6120 §6.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Each variant is the condition of the same name in RFC 6120 §6.5.
pub enum SaslFailure {
    Aborted,
    AccountDisabled,
    CredentialsExpired,
    EncryptionRequired,
    IncorrectEncoding,
    InvalidAuthzid,
    InvalidMechanism,
    MalformedRequest,
    MechanismTooWeak,
    NotAuthorized,
    TemporaryAuthFailure,
}

impl SaslFailure {
    /// The element name used on the wire.
    pub fn as_str(&self) -> &'static str {
        use SaslFailure::*;
        match self {
            Aborted => "aborted",
            AccountDisabled => "account-disabled",
            CredentialsExpired => "credentials-expired",
            EncryptionRequired => "encryption-required",
            IncorrectEncoding => "incorrect-encoding",
            InvalidAuthzid => "invalid-authzid",
            InvalidMechanism => "invalid-mechanism",
            MalformedRequest => "malformed-request",
            MechanismTooWeak => "mechanism-too-weak",
            NotAuthorized => "not-authorized",
            TemporaryAuthFailure => "temporary-auth-failure",
        }
    }
}

/// `<failure/>` with a condition and optional text (RFC 6120 §6.4.5).
pub fn failure(cond: SaslFailure, text: Option<&str>) -> Element {
    let mut el =
        Element::new("failure", ns::SASL).with_child(Element::new(cond.as_str(), ns::SASL));
    if let Some(text) = text {
        el.push_child(Element::new("text", ns::SASL).with_text(text));
    }
    el
}

/// `<auth mechanism="…"/>` with an initial response (RFC 6120 §6.4.2): `=` for an empty
/// one, as a server-to-server EXTERNAL without authorization identity sends (XEP-0178).
pub fn auth(mechanism: &str, initial: &[u8]) -> Element {
    let el = Element::new("auth", ns::SASL).with_attr("mechanism", mechanism);
    if initial.is_empty() {
        el.with_text("=")
    } else {
        el.with_text(STANDARD.encode(initial))
    }
}

/// The `<mechanisms/>` stream feature listing `names` in order (RFC 6120 §6.4.1).
pub fn mechanisms(names: &[&str]) -> Element {
    names
        .iter()
        .fold(Element::new("mechanisms", ns::SASL), |el, name| {
            el.with_child(Element::new("mechanism", ns::SASL).with_text(*name))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(text: Option<&str>) -> Element {
        let el = Element::new("auth", ns::SASL).with_attr("mechanism", "PLAIN");
        match text {
            Some(t) => el.with_text(t),
            None => el,
        }
    }

    #[test]
    fn auth_written_reads_back() {
        for initial in [&b""[..], b"a.test"] {
            assert_eq!(
                parse_request(&super::auth("EXTERNAL", initial)),
                Ok(SaslRequest::Auth {
                    mechanism: "EXTERNAL".into(),
                    initial: Some(initial.to_vec())
                })
            );
        }
    }

    #[test]
    fn auth_initial_response_forms() {
        let req = |t| parse_request(&auth(t));
        assert_eq!(
            req(Some("=")),
            Ok(SaslRequest::Auth {
                mechanism: "PLAIN".into(),
                initial: Some(Vec::new())
            })
        );
        assert_eq!(
            req(None),
            Ok(SaslRequest::Auth {
                mechanism: "PLAIN".into(),
                initial: None
            })
        );
        assert_eq!(
            req(Some("AGEAYg==")),
            Ok(SaslRequest::Auth {
                mechanism: "PLAIN".into(),
                initial: Some(b"\0a\0b".to_vec())
            })
        );
        assert_eq!(
            req(Some("!!notbase64")),
            Err(SaslWireError::IncorrectEncoding)
        );
        assert_eq!(
            req(Some("!")).map_err(|e| e.failure()),
            Err(SaslFailure::IncorrectEncoding)
        );
    }

    #[test]
    fn other_requests() {
        let resp = Element::new("response", ns::SASL).with_text("YWJj");
        assert_eq!(
            parse_request(&resp),
            Ok(SaslRequest::Response(b"abc".to_vec()))
        );
        let empty = Element::new("response", ns::SASL);
        assert_eq!(parse_request(&empty), Ok(SaslRequest::Response(Vec::new())));
        assert_eq!(
            parse_request(&Element::new("abort", ns::SASL)),
            Ok(SaslRequest::Abort)
        );
        assert_eq!(
            parse_request(&Element::new("auth", ns::SASL)),
            Err(SaslWireError::MissingMechanism)
        );
        assert_eq!(
            parse_request(&Element::new("abort", ns::CLIENT)),
            Err(SaslWireError::UnexpectedElement)
        );
    }

    #[test]
    fn reply_bytes() {
        assert_eq!(
            success(b"").to_string(),
            r#"<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/>"#
        );
        assert_eq!(
            success(b"v=abc").to_string(),
            r#"<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl">dj1hYmM=</success>"#
        );
        assert_eq!(
            challenge(b"abc").to_string(),
            r#"<challenge xmlns="urn:ietf:params:xml:ns:xmpp-sasl">YWJj</challenge>"#
        );
        assert_eq!(
            failure(SaslFailure::NotAuthorized, Some("bad")).to_string(),
            r#"<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized/><text>bad</text></failure>"#
        );
        assert_eq!(
            mechanisms(&["PLAIN", "SCRAM-SHA-1"]).to_string(),
            concat!(
                r#"<mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl">"#,
                "<mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms>"
            )
        );
    }
}
