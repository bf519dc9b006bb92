//! Stream errors (RFC 6120 §4.9): unrecoverable, sent as `<stream:error/>` before closing.

use crate::ns;
use crate::xml::Element;

/// The defined stream error conditions, all of RFC 6120 §4.9.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Each variant is the condition of the same name in RFC 6120 §4.9.3.
pub enum StreamCondition {
    BadFormat,
    BadNamespacePrefix,
    Conflict,
    ConnectionTimeout,
    HostGone,
    HostUnknown,
    ImproperAddressing,
    InternalServerError,
    InvalidFrom,
    InvalidNamespace,
    InvalidXml,
    NotAuthorized,
    NotWellFormed,
    PolicyViolation,
    RemoteConnectionFailed,
    Reset,
    ResourceConstraint,
    RestrictedXml,
    SeeOtherHost,
    SystemShutdown,
    UndefinedCondition,
    UnsupportedEncoding,
    UnsupportedFeature,
    UnsupportedStanzaType,
    UnsupportedVersion,
}

impl StreamCondition {
    /// The element name used on the wire, e.g. `"not-well-formed"`.
    pub fn as_str(&self) -> &'static str {
        use StreamCondition::*;
        match self {
            BadFormat => "bad-format",
            BadNamespacePrefix => "bad-namespace-prefix",
            Conflict => "conflict",
            ConnectionTimeout => "connection-timeout",
            HostGone => "host-gone",
            HostUnknown => "host-unknown",
            ImproperAddressing => "improper-addressing",
            InternalServerError => "internal-server-error",
            InvalidFrom => "invalid-from",
            InvalidNamespace => "invalid-namespace",
            InvalidXml => "invalid-xml",
            NotAuthorized => "not-authorized",
            NotWellFormed => "not-well-formed",
            PolicyViolation => "policy-violation",
            RemoteConnectionFailed => "remote-connection-failed",
            Reset => "reset",
            ResourceConstraint => "resource-constraint",
            RestrictedXml => "restricted-xml",
            SeeOtherHost => "see-other-host",
            SystemShutdown => "system-shutdown",
            UndefinedCondition => "undefined-condition",
            UnsupportedEncoding => "unsupported-encoding",
            UnsupportedFeature => "unsupported-feature",
            UnsupportedStanzaType => "unsupported-stanza-type",
            UnsupportedVersion => "unsupported-version",
        }
    }
}

/// A stream-level error: the condition to send, with optional human-readable text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("stream error {}{}", .condition.as_str(), .text.as_deref().map(|t| format!(": {t}")).unwrap_or_default())]
pub struct StreamError {
    /// The RFC 6120 §4.9.3 condition.
    pub condition: StreamCondition,
    /// Optional explanation (RFC 6120 §4.9.2 `<text/>`); never required by the peer.
    pub text: Option<String>,
}

impl StreamError {
    /// An error without text.
    pub fn new(condition: StreamCondition) -> Self {
        StreamError {
            condition,
            text: None,
        }
    }

    /// An error with an explanatory text.
    pub fn with_text(condition: StreamCondition, text: impl Into<String>) -> Self {
        StreamError {
            condition,
            text: Some(text.into()),
        }
    }

    /// The `<stream:error/>` element (RFC 6120 §4.9.2).
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("error", ns::STREAM)
            .with_child(Element::new(self.condition.as_str(), ns::STREAMS));
        if let Some(text) = &self.text {
            el.push_child(Element::new("text", ns::STREAMS).with_text(text.as_str()));
        }
        el
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_bytes() {
        let e = StreamError::new(StreamCondition::NotWellFormed);
        assert_eq!(
            e.to_element().to_string(),
            r#"<stream:error><not-well-formed xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></stream:error>"#
        );
        let e = StreamError::with_text(StreamCondition::PolicyViolation, "too big & bad");
        assert_eq!(
            e.to_element().to_string(),
            concat!(
                r#"<stream:error><policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>"#,
                r#"<text xmlns="urn:ietf:params:xml:ns:xmpp-streams">too big &amp; bad</text></stream:error>"#
            )
        );
        assert_eq!(
            e.to_string(),
            "stream error policy-violation: too big & bad"
        );
    }

    #[test]
    fn condition_names() {
        assert_eq!(
            StreamCondition::UnsupportedStanzaType.as_str(),
            "unsupported-stanza-type"
        );
        assert_eq!(StreamCondition::SeeOtherHost.as_str(), "see-other-host");
    }
}
