//! XEP-0220 Server Dialback: the `<db:result/>` and `<db:verify/>` elements, and the
//! XEP-0185 key a server derives from its secret.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::ns;
use crate::xml::Element;

/// Which dialback element: the originating server's claim on its own stream (`result`),
/// or the receiving server's question to the authoritative server (`verify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `<db:result/>`.
    Result,
    /// `<db:verify/>`.
    Verify,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Result => "result",
            Kind::Verify => "verify",
        }
    }
}

/// The `type` of an answer (XEP-0220 §2.1.3, §2.4); a request has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The key is genuine: the domain is proved.
    Valid,
    /// The key is not genuine.
    Invalid,
    /// XEP-0220 §2.4: the receiving server could not check (an error child says why).
    Error,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Invalid => "invalid",
            Outcome::Error => "error",
        }
    }
}

/// One dialback element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialback {
    /// Which element.
    pub kind: Kind,
    /// The sending domain.
    pub from: String,
    /// The domain it is for.
    pub to: String,
    /// The stream id the key was made for (required on `verify`, absent on `result`).
    pub id: Option<String>,
    /// The key (requests only).
    pub key: Option<String>,
    /// The answer's type (answers only).
    pub outcome: Option<Outcome>,
}

/// Why an element is no dialback element we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialbackError {
    /// Not in the dialback namespace, or another name.
    #[error("not a dialback element")]
    NotDialback,
    /// `from` or `to` missing.
    #[error("dialback element without from or to")]
    MissingAddress,
    /// A `<db:verify/>` names no stream.
    #[error("db:verify without an id")]
    MissingId,
    /// A `type` XEP-0220 does not define.
    #[error("unknown dialback type {0:?}")]
    UnknownType(String),
}

impl Dialback {
    /// A request: `<db:result/>` or `<db:verify/>` carrying `key`.
    pub fn request(kind: Kind, from: &str, to: &str, id: Option<&str>, key: &str) -> Dialback {
        Dialback {
            kind,
            from: from.to_owned(),
            to: to.to_owned(),
            id: id.map(str::to_owned),
            key: Some(key.to_owned()),
            outcome: None,
        }
    }

    /// The answer to this request: addresses swapped, the id kept, no key.
    pub fn answer(&self, outcome: Outcome) -> Dialback {
        Dialback {
            kind: self.kind,
            from: self.to.clone(),
            to: self.from.clone(),
            id: self.id.clone(),
            key: None,
            outcome: Some(outcome),
        }
    }

    /// Reads a dialback element.
    pub fn parse(element: &Element) -> Result<Dialback, DialbackError> {
        let kind = match (element.ns(), element.name()) {
            (ns::DIALBACK, "result") => Kind::Result,
            (ns::DIALBACK, "verify") => Kind::Verify,
            _ => return Err(DialbackError::NotDialback),
        };
        let (Some(from), Some(to)) = (element.attr("from"), element.attr("to")) else {
            return Err(DialbackError::MissingAddress);
        };
        let id = element.attr("id").map(str::to_owned);
        if kind == Kind::Verify && id.is_none() {
            return Err(DialbackError::MissingId);
        }
        let outcome = match element.attr("type") {
            None => None,
            Some("valid") => Some(Outcome::Valid),
            Some("invalid") => Some(Outcome::Invalid),
            Some("error") => Some(Outcome::Error),
            Some(other) => return Err(DialbackError::UnknownType(other.to_owned())),
        };
        let key = element.text();
        let key = (outcome.is_none() && !key.trim().is_empty()).then(|| key.trim().to_owned());
        Ok(Dialback {
            kind,
            from: from.to_owned(),
            to: to.to_owned(),
            id,
            key,
            outcome,
        })
    }

    /// The element, for the wire.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new(self.kind.name(), ns::DIALBACK)
            .with_attr("from", self.from.as_str())
            .with_attr("to", self.to.as_str());
        if let Some(id) = &self.id {
            el.set_attr("id", id.as_str());
        }
        if let Some(outcome) = self.outcome {
            el.set_attr("type", outcome.as_str());
        }
        if let Some(key) = &self.key {
            el.push_text(key.as_str());
        }
        el
    }
}

/// XEP-0185 §2: HMAC-SHA256 keyed with the hex SHA-256 of the secret, over the receiving
/// server, the originating server and the stream id separated by spaces; lowercase hex.
pub fn key(secret: &[u8], receiving: &str, originating: &str, stream_id: &str) -> String {
    let hashed = hex(&Sha256::digest(secret));
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(hashed.as_bytes()) else {
        // HMAC takes keys of any length.
        return String::new();
    };
    mac.update(receiving.as_bytes());
    mac.update(b" ");
    mac.update(originating.as_bytes());
    mac.update(b" ");
    mac.update(stream_id.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Whether `offered` is the key for these inputs, compared in constant time.
pub fn key_matches(
    offered: &str,
    secret: &[u8],
    receiving: &str,
    originating: &str,
    stream_id: &str,
) -> bool {
    let expected = key(secret, receiving, originating, stream_id);
    offered.len() == expected.len()
        && offered
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_stanza;

    #[test]
    fn key_follows_xep_0185() {
        // The inputs of XEP-0185 §3's example; the value computed independently (Python's
        // hmac over the hex SHA-256 of the secret).
        let k = key(
            b"s3cr3tf0rd14lb4ck",
            "example.net",
            "example.com",
            "D60000229F",
        );
        assert_eq!(
            k,
            "008c689ff366b50c63d69a3e2d2c0e0e1f8404b0118eb688a0102c87cb691bdc"
        );
        assert!(key_matches(
            &k,
            b"s3cr3tf0rd14lb4ck",
            "example.net",
            "example.com",
            "D60000229F"
        ));
        assert!(!key_matches(
            &k,
            b"s3cr3tf0rd14lb4ck",
            "example.net",
            "example.com",
            "D60000229G"
        ));
        assert!(!key_matches(
            &k,
            b"other",
            "example.net",
            "example.com",
            "D60000229F"
        ));
        assert!(!key_matches(
            "",
            b"s3cr3tf0rd14lb4ck",
            "example.net",
            "example.com",
            "D60000229F"
        ));
    }

    #[test]
    fn result_and_verify_round_trip() {
        let result = Dialback::request(Kind::Result, "a.test", "b.test", None, "abc");
        let el = result.to_element();
        assert_eq!(
            el.to_string(),
            r#"<result xmlns="jabber:server:dialback" from="a.test" to="b.test">abc</result>"#
        );
        assert_eq!(Dialback::parse(&el), Ok(result.clone()));
        let answer = result.answer(Outcome::Valid);
        assert_eq!(answer.from, "b.test");
        assert_eq!(answer.key, None);
        assert_eq!(Dialback::parse(&answer.to_element()), Ok(answer));

        let verify = Dialback::request(Kind::Verify, "b.test", "a.test", Some("id1"), "abc");
        assert_eq!(Dialback::parse(&verify.to_element()), Ok(verify.clone()));
        let answer = verify.answer(Outcome::Invalid);
        assert_eq!(answer.id.as_deref(), Some("id1"));
        assert_eq!(Dialback::parse(&answer.to_element()), Ok(answer));
    }

    #[test]
    fn bad_elements_are_refused() {
        let parse = |xml: &str| {
            Dialback::parse(&parse_stanza(xml.as_bytes()).unwrap_or_else(|_| Element::new("x", "")))
        };
        let db = "xmlns='jabber:server:dialback'";
        assert_eq!(
            parse(&format!("<result {db} to='a'>k</result>")),
            Err(DialbackError::MissingAddress)
        );
        assert_eq!(
            parse(&format!("<verify {db} from='a' to='b'>k</verify>")),
            Err(DialbackError::MissingId)
        );
        assert_eq!(
            parse(&format!("<result {db} from='a' to='b' type='maybe'/>")),
            Err(DialbackError::UnknownType("maybe".into()))
        );
        assert_eq!(
            parse("<result xmlns='urn:other' from='a' to='b'/>"),
            Err(DialbackError::NotDialback)
        );
    }
}
