//! Stanza errors (RFC 6120 §8.3): recoverable, bounced to the sender.

use crate::ns;
use crate::xml::Element;

/// The `type` of a stanza error (RFC 6120 §8.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    /// Retry after providing credentials.
    Auth,
    /// Do not retry: the error cannot be remedied.
    Cancel,
    /// Proceed: the condition was only a warning.
    Continue,
    /// Retry after changing the data sent.
    Modify,
    /// Retry after waiting: the error is temporary.
    Wait,
}

impl ErrorType {
    /// The attribute value, e.g. `"cancel"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorType::Auth => "auth",
            ErrorType::Cancel => "cancel",
            ErrorType::Continue => "continue",
            ErrorType::Modify => "modify",
            ErrorType::Wait => "wait",
        }
    }
}

/// The defined stanza error conditions of RFC 6120 §8.3.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Each variant is the condition of the same name in RFC 6120 §8.3.3.
pub enum Condition {
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    Gone,
    InternalServerError,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    PolicyViolation,
    RecipientUnavailable,
    Redirect,
    RegistrationRequired,
    RemoteServerNotFound,
    RemoteServerTimeout,
    ResourceConstraint,
    ServiceUnavailable,
    SubscriptionRequired,
    UndefinedCondition,
    UnexpectedRequest,
}

impl Condition {
    /// The element name used on the wire, e.g. `"service-unavailable"`.
    pub fn as_str(&self) -> &'static str {
        use Condition::*;
        match self {
            BadRequest => "bad-request",
            Conflict => "conflict",
            FeatureNotImplemented => "feature-not-implemented",
            Forbidden => "forbidden",
            Gone => "gone",
            InternalServerError => "internal-server-error",
            ItemNotFound => "item-not-found",
            JidMalformed => "jid-malformed",
            NotAcceptable => "not-acceptable",
            NotAllowed => "not-allowed",
            NotAuthorized => "not-authorized",
            PolicyViolation => "policy-violation",
            RecipientUnavailable => "recipient-unavailable",
            Redirect => "redirect",
            RegistrationRequired => "registration-required",
            RemoteServerNotFound => "remote-server-not-found",
            RemoteServerTimeout => "remote-server-timeout",
            ResourceConstraint => "resource-constraint",
            ServiceUnavailable => "service-unavailable",
            SubscriptionRequired => "subscription-required",
            UndefinedCondition => "undefined-condition",
            UnexpectedRequest => "unexpected-request",
        }
    }

    /// The error type RFC 6120 §8.3.3 uses in the example for each condition, which is
    /// what peers expect unless a protocol says otherwise.
    pub fn default_type(&self) -> ErrorType {
        use Condition::*;
        match self {
            BadRequest | JidMalformed | NotAcceptable | PolicyViolation | Redirect
            | UndefinedCondition => ErrorType::Modify,
            Forbidden | NotAuthorized | RegistrationRequired | SubscriptionRequired => {
                ErrorType::Auth
            }
            RecipientUnavailable | RemoteServerTimeout | ResourceConstraint | UnexpectedRequest => {
                ErrorType::Wait
            }
            Conflict
            | FeatureNotImplemented
            | Gone
            | InternalServerError
            | ItemNotFound
            | NotAllowed
            | RemoteServerNotFound
            | ServiceUnavailable => ErrorType::Cancel,
        }
    }
}

/// A stanza error: type, condition, optional text and optional application-specific
/// condition (RFC 6120 §8.3.2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("stanza error {} ({})", .condition.as_str(), .error_type.as_str())]
pub struct StanzaError {
    /// How the sender may react.
    pub error_type: ErrorType,
    /// What went wrong.
    pub condition: Condition,
    /// Optional human-readable explanation.
    pub text: Option<String>,
    /// An element in a protocol's own namespace that says more than the defined condition
    /// (RFC 6120 §8.3.4), e.g. XEP-0191's `<blocked xmlns='urn:xmpp:blocking:errors'/>`.
    /// Boxed because errors travel in `Result`s and are rarely this detailed.
    pub app: Option<Box<Element>>,
}

impl StanzaError {
    /// An error with the condition's [default type](Condition::default_type).
    pub fn new(condition: Condition) -> Self {
        StanzaError {
            error_type: condition.default_type(),
            condition,
            text: None,
            app: None,
        }
    }

    /// Like [`StanzaError::new`], with text.
    pub fn with_text(condition: Condition, text: impl Into<String>) -> Self {
        StanzaError {
            text: Some(text.into()),
            ..StanzaError::new(condition)
        }
    }

    /// Builder: adds the application-specific condition element.
    pub fn with_app(mut self, app: Element) -> Self {
        self.app = Some(Box::new(app));
        self
    }

    /// The `<error/>` child (in `jabber:client`) to put into the error stanza: the defined
    /// condition, then `<text/>`, then the application-specific element (RFC 6120 §8.3.2).
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("error", ns::CLIENT)
            .with_attr("type", self.error_type.as_str())
            .with_child(Element::new(self.condition.as_str(), ns::STANZAS));
        if let Some(text) = &self.text {
            el.push_child(Element::new("text", ns::STANZAS).with_text(text.as_str()));
        }
        if let Some(app) = &self.app {
            el.push_child(Element::clone(app));
        }
        el
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_types_follow_rfc_examples() {
        assert_eq!(
            Condition::ServiceUnavailable.default_type(),
            ErrorType::Cancel
        );
        assert_eq!(Condition::NotAuthorized.default_type(), ErrorType::Auth);
        assert_eq!(Condition::BadRequest.default_type(), ErrorType::Modify);
        assert_eq!(Condition::Conflict.default_type(), ErrorType::Cancel);
        assert_eq!(
            Condition::ResourceConstraint.default_type(),
            ErrorType::Wait
        );
    }

    #[test]
    fn element_bytes() {
        assert_eq!(
            StanzaError::new(Condition::ItemNotFound)
                .to_element()
                .to_string(),
            r#"<error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>"#
        );
        let e = StanzaError::with_text(Condition::BadRequest, "no <id>");
        assert_eq!(
            e.to_element().to_string(),
            concat!(
                r#"<error type="modify"><bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>"#,
                r#"<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">no &lt;id&gt;</text></error>"#
            )
        );
        assert_eq!(e.to_string(), "stanza error bad-request (modify)");
    }

    #[test]
    fn application_condition_follows_the_text() {
        let blocked = Element::new("blocked", "urn:xmpp:blocking:errors");
        let e = StanzaError::new(Condition::NotAcceptable).with_app(blocked.clone());
        assert_eq!(e.app.as_deref(), Some(&blocked));
        assert_eq!(
            e.to_element().to_string(),
            concat!(
                r#"<error type="modify"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>"#,
                r#"<blocked xmlns="urn:xmpp:blocking:errors"/></error>"#
            )
        );
        let e = StanzaError::with_text(Condition::Conflict, "taken")
            .with_app(Element::new("limit", "urn:example:app").with_attr("max", "3"));
        assert_eq!(
            e.to_element().to_string(),
            concat!(
                r#"<error type="cancel"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>"#,
                r#"<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">taken</text>"#,
                r#"<limit xmlns="urn:example:app" max="3"/></error>"#
            )
        );
        assert_eq!(StanzaError::new(Condition::Conflict).app, None);
    }
}
