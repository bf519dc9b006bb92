//! XEP-0050: Ad-Hoc Commands on the hosts' JIDs and on the domains of services that offer
//! some (XEP-0060 §8.7 on a publish-subscribe service). Disco#items of the commands node lists the
//! commands the asker may run (§2.2); `<command/>` runs one stage at a time, the stages of
//! one run tied together by a session id that belongs to the requester's full JID (§3.4).
//! The commands themselves come from other modules ([`super::commands::AdHocCommand`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jabberwock_protocol::commands::{
    Action, CommandCondition, CommandRequest, CommandResponse, NoteType, Status,
};
use jabberwock_protocol::forms::{DataForm, FormType};
use jabberwock_protocol::jid::FullJid;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, StanzaError};
use jabberwock_protocol::xml::Element;
use rand::RngCore;

use super::commands::{AdHocCommand, CommandCall, Step};
use super::{xep, DiscoItems, IqHandler, IqRequest, Module, NoConfig, Registrar, Target, Xep};

/// How long a session waits for its next stage (§3.4 leaves it to the responder; Prosody
/// and ejabberd keep theirs for minutes).
const SESSION_LIFETIME: Duration = Duration::from_secs(600);
/// Sessions open at once, all requesters together: a requester that starts commands and
/// never finishes them can't grow the table without end.
const MAX_SESSIONS: usize = 1024;

pub struct AdHoc;

/// A command between two stages.
struct Session {
    node: &'static str,
    owner: FullJid,
    /// The stage the next submission runs.
    stage: usize,
    /// Whether that submission completes the command.
    last: bool,
    expires: Instant,
}

#[derive(Default)]
struct Sessions(Mutex<HashMap<String, Session>>);

/// What happened to a session id a requester sent.
enum Found {
    Running(Session),
    Expired,
    Unknown,
}

impl Sessions {
    fn take(&self, id: &str, owner: &FullJid) -> Found {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Someone else's session is no more found than one that never was.
        match map.get(id) {
            Some(s) if s.owner == *owner => {}
            _ => return Found::Unknown,
        }
        match map.remove(id) {
            Some(s) if s.expires > Instant::now() => Found::Running(s),
            Some(_) => Found::Expired,
            None => Found::Unknown,
        }
    }

    fn keep(&self, id: String, session: Session) -> Result<(), StanzaError> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_SESSIONS {
            let now = Instant::now();
            map.retain(|_, s| s.expires > now);
            if map.len() >= MAX_SESSIONS {
                return Err(StanzaError::new(Condition::ResourceConstraint));
            }
        }
        map.insert(id, session);
        Ok(())
    }
}

fn session_id() -> String {
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The command at `node` for the asker, or why not: unknown is item-not-found, another's
/// is forbidden (§4.6).
fn find_command(
    request: &IqRequest<'_>,
    target: Target,
    node: &str,
) -> Result<Arc<dyn AdHocCommand>, StanzaError> {
    let host = request.to.domain().as_str();
    let mut commands = request.server.modules.commands(host, target).peekable();
    // A service that offers no commands does not speak XEP-0050 at all (RFC 6120 §8.4).
    if target == Target::Service && commands.peek().is_none() {
        return Err(StanzaError::new(Condition::ServiceUnavailable));
    }
    let command = commands
        .find(|c| c.node() == node)
        .ok_or_else(|| StanzaError::new(Condition::ItemNotFound))?;
    if !command.allowed(&request.from.to_bare(), host) {
        return Err(StanzaError::new(Condition::Forbidden));
    }
    Ok(command.clone())
}

/// Runs commands on the JIDs of `Target` (hosts or services), one session table for all.
struct Execute(Arc<Sessions>, Target);

#[async_trait]
impl IqHandler for Execute {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let command_request = CommandRequest::parse(request.payload)?;
        let command = find_command(&request, self.1, &command_request.node)?;
        let node = command.node();
        let (stage, id) = match &command_request.sessionid {
            None => {
                // A new run starts with `execute`; anything else needs a session (§3.4).
                if command_request.action != Action::Execute {
                    return Err(CommandCondition::BadSessionid.into());
                }
                (0, session_id())
            }
            Some(id) => {
                let session = match self.0.take(id, request.from) {
                    Found::Running(s) if s.node == node => s,
                    Found::Expired => return Err(CommandCondition::SessionExpired.into()),
                    _ => return Err(CommandCondition::BadSessionid.into()),
                };
                // Only the actions the last answer offered (§3.4): `complete` at the last
                // stage, `next` before it; `execute` is whichever of them that was.
                let allowed = match command_request.action {
                    Action::Cancel => {
                        return Ok(Some(answer(node, id, Status::Canceled, None, None)));
                    }
                    Action::Execute => true,
                    Action::Complete => session.last,
                    Action::Next => !session.last,
                    Action::Prev => false,
                };
                let submitted = command_request
                    .form
                    .as_ref()
                    .is_some_and(|f| f.form_type != FormType::Cancel);
                if !allowed || !submitted {
                    // The session stays as it was: the requester may still send a good one.
                    self.0.keep(id.clone(), session)?;
                    let condition = if allowed {
                        CommandCondition::BadPayload
                    } else {
                        CommandCondition::BadAction
                    };
                    return Err(condition.into());
                }
                (session.stage, id.clone())
            }
        };
        let form = command_request
            .form
            .as_ref()
            .filter(|f| f.form_type != FormType::Cancel);
        let call = CommandCall {
            server: request.server,
            from: request.from,
            host: request.to.domain().as_str(),
        };
        let step = command.step(&call, stage, form).await?;
        Ok(Some(match step {
            Step::Form { form, last } => {
                self.0.keep(
                    id.clone(),
                    Session {
                        node,
                        owner: request.from.clone(),
                        stage: stage + 1,
                        last,
                        expires: Instant::now() + SESSION_LIFETIME,
                    },
                )?;
                let action = if last { Action::Complete } else { Action::Next };
                let mut response = response(node, &id, Status::Executing, Some(form), None);
                response.actions = Some((vec![action], action));
                response.to_element()
            }
            Step::Done { form, note } => answer(node, &id, Status::Completed, form, note),
        }))
    }
}

fn response(
    node: &str,
    id: &str,
    status: Status,
    form: Option<DataForm>,
    note: Option<String>,
) -> CommandResponse {
    CommandResponse {
        node: node.to_owned(),
        sessionid: id.to_owned(),
        status,
        actions: None,
        notes: note.map(|n| (NoteType::Info, n)).into_iter().collect(),
        form,
    }
}

fn answer(
    node: &str,
    id: &str,
    status: Status,
    form: Option<DataForm>,
    note: Option<String>,
) -> Element {
    response(node, id, status, form, note).to_element()
}

/// §2.2: the commands node of a host's (or a service's) disco#items lists what the asker
/// may run.
struct List(Target);

#[async_trait]
impl DiscoItems for List {
    async fn items(
        &self,
        request: &IqRequest<'_>,
        node: Option<&str>,
    ) -> Result<Option<Vec<Element>>, StanzaError> {
        if node != Some(ns::COMMANDS) {
            return Ok(None);
        }
        let host = request.to.domain().as_str();
        let asker = request.from.to_bare();
        let mut commands = request.server.modules.commands(host, self.0).peekable();
        // A service without commands has no commands node.
        if self.0 == Target::Service && commands.peek().is_none() {
            return Ok(None);
        }
        let items = commands
            .filter(|c| c.allowed(&asker, host))
            .map(|c| {
                Element::new("item", ns::DISCO_ITEMS)
                    .with_attr("jid", host)
                    .with_attr("node", c.node())
                    .with_attr("name", c.name())
            })
            .collect();
        Ok(Some(items))
    }
}

impl Module for AdHoc {
    const NAME: &'static str = "adhoc";
    const XEPS: &'static [Xep] = &[xep(50, "1.3.0")];
    const DEPENDS: &'static [&'static str] = &["disco"];
    type Config = NoConfig;

    fn register(_config: NoConfig, registry: &mut Registrar<'_>) {
        let sessions: Arc<Sessions> = Arc::default();
        for target in [Target::Host, Target::Service] {
            registry.iq(
                IqType::Set,
                target,
                ns::COMMANDS,
                "command",
                Arc::new(Execute(sessions.clone(), target)),
            );
            registry.disco_items(target, Arc::new(List(target)));
        }
        // A service's module names the feature itself where it offers commands.
        registry.disco_feature(Target::Host, ns::COMMANDS);
    }
}
