//! XEP-0060 §8.6: approving subscriptions to a node of the `authorize` access model. The
//! service asks each owner with a `pubsub#subscribe_authorization` data form in a message;
//! an owner answers with the same form submitted, `pubsub#allow` saying yes or no.
//! Also the message an entity gets when its affiliation changes (§8.9.4).

use crate::forms::{DataForm, Field, FieldType, FormType};
use crate::ns;
use crate::pubsub::Affiliation;
use crate::xml::Element;

/// XEP-0060 §16.4.1: the FORM_TYPE of a subscription authorization.
pub const SUBSCRIBE_AUTHORIZATION: &str =
    "http://jabber.org/protocol/pubsub#subscribe_authorization";

/// One subscription waiting for an owner's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The node subscribed to.
    pub node: String,
    /// The JID that asked, bare or full, as it subscribed.
    pub subscriber: String,
    /// The pending subscription's id.
    pub subid: String,
}

impl AuthorizationRequest {
    /// §8.6: the form an owner is sent (`pubsub#allow` false until the owner says yes).
    pub fn to_form(&self) -> DataForm {
        DataForm::new(FormType::Form)
            .with_title("Subscription request")
            .with_instructions(format!(
                "{} asks to subscribe to {}: submit with allow set to approve, or unset to deny.",
                self.subscriber, self.node
            ))
            .with_form_type(SUBSCRIBE_AUTHORIZATION)
            .with_field(Field::hidden("pubsub#subid", self.subid.as_str()))
            .with_field(
                Field::new("pubsub#node")
                    .with_type(FieldType::TextSingle)
                    .with_label("Node")
                    .with_value(self.node.as_str()),
            )
            .with_field(
                Field::new("pubsub#subscriber_jid")
                    .with_type(FieldType::JidSingle)
                    .with_label("Subscriber")
                    .with_value(self.subscriber.as_str()),
            )
            .with_field(
                Field::new("pubsub#allow")
                    .with_type(FieldType::Boolean)
                    .with_label("Approve this subscription?")
                    .with_value("false"),
            )
    }

    /// The message to one owner (`to`) from the service.
    pub fn to_message(&self, service: &str, to: &str, id: &str) -> Element {
        Element::new("message", ns::CLIENT)
            .with_attr("from", service)
            .with_attr("to", to)
            .with_attr("id", id)
            .with_child(self.to_form().to_element())
    }
}

/// An owner's answer (§8.6): which subscription, and whether it is approved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationAnswer {
    /// The node subscribed to.
    pub node: String,
    /// The JID whose subscription it is.
    pub subscriber: String,
    /// The SubID the form carried, if it kept it.
    pub subid: Option<String>,
    /// `pubsub#allow`: approved (true) or denied.
    pub allow: bool,
}

/// Why a message's form is no answer the service can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// A submitted authorization form without the node or the subscriber.
    #[error("the authorization names no {0}")]
    Missing(&'static str),
    /// `pubsub#allow` is no boolean.
    #[error("pubsub#allow is no boolean")]
    BadAllow,
}

impl AuthorizationAnswer {
    /// The answer inside a message, if it carries a `subscribe_authorization` form:
    /// `None` for any other message or a cancelled form (the request stays pending),
    /// an error for a submitted form that can't be acted on.
    pub fn from_message(message: &Element) -> Option<Result<AuthorizationAnswer, AnswerError>> {
        let form = message
            .children()
            .filter(|c| c.is("x", ns::DATA_FORMS))
            .filter_map(|x| DataForm::parse(x).ok())
            .find(|f| f.form_type_field() == Some(SUBSCRIBE_AUTHORIZATION))?;
        if form.form_type != FormType::Submit {
            return None;
        }
        Some(Self::from_form(&form))
    }

    fn from_form(form: &DataForm) -> Result<AuthorizationAnswer, AnswerError> {
        let present = |var: &'static str| {
            form.value(var)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or(AnswerError::Missing(var))
        };
        let allow = match form.value("pubsub#allow") {
            Some("1" | "true") => true,
            Some("0" | "false") | None => false,
            Some(_) => return Err(AnswerError::BadAllow),
        };
        Ok(AuthorizationAnswer {
            node: present("pubsub#node")?,
            subscriber: present("pubsub#subscriber_jid")?,
            subid: form.value("pubsub#subid").map(str::to_owned),
            allow,
        })
    }
}

/// §8.9.4: the message telling `jid` its affiliation with `node` is now `affiliation`.
pub fn affiliation_notice(
    service: &str,
    node: &str,
    jid: &str,
    affiliation: Affiliation,
    id: &str,
) -> Element {
    let affiliations = Element::new("affiliations", ns::PUBSUB)
        .with_attr("node", node)
        .with_child(
            Element::new("affiliation", ns::PUBSUB)
                .with_attr("jid", jid)
                .with_attr("affiliation", affiliation.as_str()),
        );
    Element::new("message", ns::CLIENT)
        .with_attr("from", service)
        .with_attr("to", jid)
        .with_attr("id", id)
        .with_child(Element::new("pubsub", ns::PUBSUB).with_child(affiliations))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_stanza;

    #[test]
    fn the_request_form_round_trips_as_an_answer() {
        let request = AuthorizationRequest {
            node: "news".into(),
            subscriber: "bob@example.org/pc".into(),
            subid: "s1".into(),
        };
        let mut form = request.to_form();
        assert_eq!(form.form_type_field(), Some(SUBSCRIBE_AUTHORIZATION));
        assert_eq!(
            AuthorizationAnswer::from_form(&form).map(|a| a.allow),
            Ok(false)
        );
        form.form_type = FormType::Submit;
        for field in &mut form.fields {
            if field.var.as_deref() == Some("pubsub#allow") {
                field.values = vec!["1".into()];
            }
        }
        let message = Element::new("message", ns::CLIENT).with_child(form.to_element());
        let answer = AuthorizationAnswer::from_message(&message)
            .unwrap()
            .unwrap();
        assert_eq!(
            answer,
            AuthorizationAnswer {
                node: "news".into(),
                subscriber: "bob@example.org/pc".into(),
                subid: Some("s1".into()),
                allow: true,
            }
        );
    }

    #[test]
    fn other_messages_and_bad_answers() {
        let plain =
            parse_stanza(b"<message xmlns='jabber:client'><body>hi</body></message>").unwrap();
        assert_eq!(AuthorizationAnswer::from_message(&plain), None);
        let bad = parse_stanza(
            b"<message xmlns='jabber:client'><x xmlns='jabber:x:data' type='submit'>\
              <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#subscribe_authorization</value></field>\
              <field var='pubsub#node'><value>news</value></field>\
              <field var='pubsub#allow'><value>yes</value></field></x></message>",
        )
        .unwrap();
        assert_eq!(
            AuthorizationAnswer::from_message(&bad),
            Some(Err(AnswerError::BadAllow))
        );
    }
}
