//! What a module implements to offer an XEP-0050 ad-hoc command on a host's JID
//! ([`super::Registrar::command`]) or on its service's domain
//! ([`super::Registrar::service_command`]). The `adhoc` module does the protocol around it: lists
//! the commands an asker may run, keeps the sessions between stages, checks actions, and
//! writes the answers; a command only says who may run it and what each stage does.

use async_trait::async_trait;
use jabberwock_protocol::forms::DataForm;
use jabberwock_protocol::jid::{BareJid, FullJid};
use jabberwock_protocol::stanza::StanzaError;

use crate::server::Server;

/// One stage of a command being run.
pub struct CommandCall<'a> {
    pub server: &'a Server,
    /// Who runs it.
    pub from: &'a FullJid,
    /// The host (or the service's domain) the command was sent to.
    pub host: &'a str,
}

/// What a stage gives back.
pub enum Step {
    /// Asks for `form` to be filled in (status `executing`); when `last`, submitting it
    /// completes the command, else it leads to another stage.
    Form { form: DataForm, last: bool },
    /// The command is done (status `completed`), with results as a form and a note.
    Done {
        form: Option<DataForm>,
        note: Option<String>,
    },
}

impl Step {
    /// Done, with only a note saying what happened.
    pub fn done(note: impl Into<String>) -> Step {
        Step::Done {
            form: None,
            note: Some(note.into()),
        }
    }
}

#[async_trait]
pub trait AdHocCommand: Send + Sync {
    /// The command's node (XEP-0050 §2.2), e.g. `http://jabber.org/protocol/admin#add-user`.
    fn node(&self) -> &'static str;
    /// Its human-readable name, shown in disco#items.
    fn name(&self) -> &'static str;
    /// Whether `asker` may see and run it on `host`; others are refused `forbidden`.
    fn allowed(&self, asker: &BareJid, host: &str) -> bool;
    /// Runs stage `stage`: 0 when the command is executed, then 1, 2, … with the form
    /// submitted for the previous stage's [`Step::Form`].
    async fn step(
        &self,
        call: &CommandCall<'_>,
        stage: usize,
        form: Option<&DataForm>,
    ) -> Result<Step, StanzaError>;
}
