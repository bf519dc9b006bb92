//! XEP-0050: Ad-Hoc Commands — the `<command xmlns='http://jabber.org/protocol/commands'/>`
//! a requester sends (node, action, session, the form it submits) and the one the responder
//! answers with (status, the actions allowed next, notes, a form), and the §4.6
//! application-specific error conditions.

use crate::forms::{DataForm, FormError};
use crate::ns;
use crate::stanza::{Condition, StanzaError};
use crate::xml::Element;

/// What the requester asks of a command (§3.4, §4.2). An absent `action` is `execute`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run the command, or go on with the stage the responder named as the default.
    Execute,
    /// Give up; the session ends.
    Cancel,
    /// Back to the previous stage.
    Prev,
    /// On to the next stage.
    Next,
    /// Finish with what was submitted.
    Complete,
}

impl Action {
    /// The attribute value, e.g. `"complete"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Execute => "execute",
            Action::Cancel => "cancel",
            Action::Prev => "prev",
            Action::Next => "next",
            Action::Complete => "complete",
        }
    }

    /// The action an attribute value names, if it is one of §4.2's.
    pub fn from_attr(value: &str) -> Option<Action> {
        Some(match value {
            "execute" => Action::Execute,
            "cancel" => Action::Cancel,
            "prev" => Action::Prev,
            "next" => Action::Next,
            "complete" => Action::Complete,
            _ => return None,
        })
    }
}

/// Where a command's session stands after the responder's answer (§4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// More stages follow.
    Executing,
    /// Done.
    Completed,
    /// Given up by the requester.
    Canceled,
}

impl Status {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Executing => "executing",
            Status::Completed => "completed",
            Status::Canceled => "canceled",
        }
    }
}

/// The kind of a `<note/>` (§4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteType {
    /// Information.
    Info,
    /// A warning.
    Warn,
    /// An error.
    Error,
}

impl NoteType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            NoteType::Info => "info",
            NoteType::Warn => "warn",
            NoteType::Error => "error",
        }
    }
}

/// The application-specific conditions of §4.6, each with the defined condition it goes
/// with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandCondition {
    /// The action is not one of §4.2's.
    #[error("malformed-action")]
    MalformedAction,
    /// The action is not allowed at this stage.
    #[error("bad-action")]
    BadAction,
    /// The payload (the submitted form) is not what the command takes.
    #[error("bad-payload")]
    BadPayload,
    /// No session of this requester has this id.
    #[error("bad-sessionid")]
    BadSessionid,
    /// The session timed out.
    #[error("session-expired")]
    SessionExpired,
}

impl CommandCondition {
    /// The element's name.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandCondition::MalformedAction => "malformed-action",
            CommandCondition::BadAction => "bad-action",
            CommandCondition::BadPayload => "bad-payload",
            CommandCondition::BadSessionid => "bad-sessionid",
            CommandCondition::SessionExpired => "session-expired",
        }
    }

    /// The stanza error: `bad-request` for all but an expired session, `not-allowed`.
    pub fn to_stanza_error(self) -> StanzaError {
        let condition = match self {
            CommandCondition::SessionExpired => Condition::NotAllowed,
            _ => Condition::BadRequest,
        };
        StanzaError::new(condition).with_app(Element::new(self.as_str(), ns::COMMANDS))
    }
}

impl From<CommandCondition> for StanzaError {
    fn from(condition: CommandCondition) -> StanzaError {
        condition.to_stanza_error()
    }
}

/// A `<command/>` from the requester.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandRequest {
    /// The command.
    pub node: String,
    /// What is asked of it.
    pub action: Action,
    /// The session of a run already started.
    pub sessionid: Option<String>,
    /// The `<x xmlns='jabber:x:data'/>` it carries, if any.
    pub form: Option<DataForm>,
}

/// Why a `<command/>` can't be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No `node` (§4.1: it is required).
    #[error("<command/> without a node")]
    MissingNode,
    /// One of §4.6's conditions.
    #[error("{0}")]
    Condition(CommandCondition),
    /// The form it carries is not one.
    #[error(transparent)]
    Form(#[from] FormError),
}

impl From<CommandError> for StanzaError {
    fn from(error: CommandError) -> StanzaError {
        match error {
            CommandError::MissingNode => StanzaError::with_text(Condition::BadRequest, "no node"),
            CommandError::Condition(c) => c.into(),
            CommandError::Form(e) => {
                let mut err = CommandCondition::BadPayload.to_stanza_error();
                err.text = Some(e.to_string());
                err
            }
        }
    }
}

impl CommandRequest {
    /// Reads a `<command/>` element.
    pub fn parse(el: &Element) -> Result<CommandRequest, CommandError> {
        let node = el
            .attr("node")
            .filter(|n| !n.is_empty())
            .ok_or(CommandError::MissingNode)?;
        let action = match el.attr("action") {
            None => Action::Execute,
            Some(a) => Action::from_attr(a)
                .ok_or(CommandError::Condition(CommandCondition::MalformedAction))?,
        };
        let form = el
            .get_child("x", ns::DATA_FORMS)
            .map(DataForm::parse)
            .transpose()?;
        Ok(CommandRequest {
            node: node.to_owned(),
            action,
            sessionid: el.attr("sessionid").map(str::to_owned),
            form,
        })
    }

    /// The `<command/>` element.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("command", ns::COMMANDS)
            .with_attr("node", self.node.as_str())
            .with_attr("action", self.action.as_str());
        if let Some(id) = &self.sessionid {
            el.set_attr("sessionid", id.as_str());
        }
        if let Some(form) = &self.form {
            el.push_child(form.to_element());
        }
        el
    }
}

/// The responder's `<command/>`.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandResponse {
    /// The command.
    pub node: String,
    /// The run's session.
    pub sessionid: String,
    /// Where the run stands.
    pub status: Status,
    /// While executing: the actions allowed next and the one `execute` means (§3.4).
    pub actions: Option<(Vec<Action>, Action)>,
    /// Notes for the requester's user (§4.3).
    pub notes: Vec<(NoteType, String)>,
    /// A form to fill in, or results.
    pub form: Option<DataForm>,
}

impl CommandResponse {
    /// The `<command/>` element.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("command", ns::COMMANDS)
            .with_attr("node", self.node.as_str())
            .with_attr("sessionid", self.sessionid.as_str())
            .with_attr("status", self.status.as_str());
        if let Some((allowed, default)) = &self.actions {
            let mut actions =
                Element::new("actions", ns::COMMANDS).with_attr("execute", default.as_str());
            for action in allowed {
                actions.push_child(Element::new(action.as_str(), ns::COMMANDS));
            }
            el.push_child(actions);
        }
        for (kind, text) in &self.notes {
            el.push_child(
                Element::new("note", ns::COMMANDS)
                    .with_attr("type", kind.as_str())
                    .with_text(text.as_str()),
            );
        }
        if let Some(form) = &self.form {
            el.push_child(form.to_element());
        }
        el
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::{Field, FormType};

    #[test]
    fn request_is_read_and_written() {
        let form =
            DataForm::new(FormType::Submit).with_field(Field::new("accountjid").with_value("a@b"));
        let request = CommandRequest {
            node: "http://jabber.org/protocol/admin#add-user".into(),
            action: Action::Complete,
            sessionid: Some("s1".into()),
            form: Some(form),
        };
        let parsed = CommandRequest::parse(&request.to_element()).unwrap();
        assert_eq!(parsed, request);
        assert_eq!(parsed.form.unwrap().value("accountjid"), Some("a@b"));
    }

    #[test]
    fn absent_action_is_execute_and_unknown_is_malformed() {
        let el = Element::new("command", ns::COMMANDS).with_attr("node", "n");
        assert_eq!(CommandRequest::parse(&el).unwrap().action, Action::Execute);
        let bad = el.clone().with_attr("action", "jump");
        assert_eq!(
            CommandRequest::parse(&bad),
            Err(CommandError::Condition(CommandCondition::MalformedAction))
        );
        let no_node = Element::new("command", ns::COMMANDS);
        assert_eq!(
            CommandRequest::parse(&no_node),
            Err(CommandError::MissingNode)
        );
    }

    #[test]
    fn conditions_carry_their_element() {
        let err = StanzaError::from(CommandCondition::BadSessionid);
        assert_eq!(err.condition, Condition::BadRequest);
        assert_eq!(err.app.unwrap().name(), "bad-sessionid");
        let expired = StanzaError::from(CommandCondition::SessionExpired);
        assert_eq!(expired.condition, Condition::NotAllowed);
    }

    #[test]
    fn response_lists_actions_with_the_default() {
        let response = CommandResponse {
            node: "n".into(),
            sessionid: "s".into(),
            status: Status::Executing,
            actions: Some((vec![Action::Complete], Action::Complete)),
            notes: vec![(NoteType::Info, "hi".into())],
            form: None,
        };
        let el = response.to_element();
        let actions = el.get_child("actions", ns::COMMANDS).unwrap();
        assert_eq!(actions.attr("execute"), Some("complete"));
        assert!(actions.get_child("complete", ns::COMMANDS).is_some());
        assert_eq!(el.get_child("note", ns::COMMANDS).unwrap().text(), "hi");
    }
}
