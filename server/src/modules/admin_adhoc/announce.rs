//! XEP-0133 §4.23-4.26: an announcement to every online user of the host, and the message
//! of the day — stored per host ([`jabberwock_storage::MotdStore`]) and sent, as Prosody's
//! mod_motd does, to each resource of the host as it becomes available.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jabberwock_protocol::forms::{DataForm, FieldType};
use jabberwock_protocol::jid::FullJid;
use jabberwock_protocol::ns;
use jabberwock_protocol::xml::Element;

use super::{admin_form, field, text, AdminError, Kind};
use crate::modules::commands::{CommandCall, Step};
use crate::modules::{Event, Flow, Hook};
use crate::server::Server;
use jabberwock_storage::StoreError;

/// How long a message of the day read from the store is used before it is read again: set
/// or deleted here it is known at once, but another node on the same database may change
/// it too.
const MOTD_FRESH: Duration = Duration::from_secs(60);

type Motd = Option<(String, String)>;

/// The hosts' messages of the day as last read or set here, so that a login does not read
/// the store for it.
#[derive(Default)]
pub(super) struct Motds(Mutex<HashMap<String, (Instant, Motd)>>);

impl Motds {
    async fn get(&self, server: &Server, host: &str) -> Result<Motd, StoreError> {
        if let Some((at, motd)) = self.lock().get(host) {
            if at.elapsed() < MOTD_FRESH {
                return Ok(motd.clone());
            }
        }
        let motd = server.store.motd(host).await?;
        self.put(host, motd.clone());
        Ok(motd)
    }

    fn put(&self, host: &str, motd: Motd) {
        self.lock().insert(host.to_owned(), (Instant::now(), motd));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Motd)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A message from the host to `to`: the announcement or the message of the day.
fn notice(host: &str, to: &FullJid, subject: &str, body: &str) -> Element {
    let mut message = Element::new("message", ns::CLIENT)
        .with_attr("from", host)
        .with_attr("to", to.as_str());
    if !subject.is_empty() {
        message.push_child(Element::new("subject", ns::CLIENT).with_text(subject));
    }
    message.with_child(Element::new("body", ns::CLIENT).with_text(body))
}

/// Announce, set-motd and edit-motd: a subject and a body, then what they are for.
pub(super) async fn step(
    call: &CommandCall<'_>,
    kind: Kind,
    form: Option<&DataForm>,
    motds: &Motds,
) -> Result<Step, AdminError> {
    let Some(form) = form else {
        let (mut subject, mut body) = (
            field("subject", FieldType::TextSingle, "Subject"),
            field("body", FieldType::TextMulti, "Message body").required(),
        );
        // §4.24: edit-motd shows the message as it is.
        if kind == Kind::EditMotd {
            if let Some((s, b)) = motds.get(call.server, call.host).await? {
                subject = subject.with_value(s);
                for line in b.lines() {
                    body = body.with_value(line);
                }
            }
        }
        let title = match kind {
            Kind::Announce => "Making an Announcement",
            _ => "Setting the Message of the Day",
        };
        return Ok(Step::Form {
            form: admin_form(
                title,
                "Fill out this form to complete the command.",
                vec![subject, body],
            ),
            last: true,
        });
    };
    let subject = text(form, "subject");
    let body = text(form, "body");
    if body.trim().is_empty() {
        return Err(AdminError::MissingField("body"));
    }
    if kind != Kind::Announce {
        call.server
            .store
            .set_motd(call.host, &subject, &body)
            .await?;
        motds.put(call.host, Some((subject, body)));
        tracing::info!(host = call.host, by = %call.from, "message of the day set");
        return Ok(Step::done("Message of the day set"));
    }
    let table = &call.server.router.table;
    let mut reached = 0;
    for to in super::online_sessions(call.server, call.host) {
        if table
            .send_to_full(&to, notice(call.host, &to, &subject, &body))
            .is_ok()
        {
            reached += 1;
        }
    }
    tracing::info!(host = call.host, sessions = reached, by = %call.from, "announcement sent");
    Ok(Step::done(format!(
        "Announcement sent to {reached} session(s)"
    )))
}

/// §4.25: delete-motd needs no form.
pub(super) async fn delete_motd(call: &CommandCall<'_>, motds: &Motds) -> Result<Step, AdminError> {
    let deleted = call.server.store.delete_motd(call.host).await?;
    motds.put(call.host, None);
    tracing::info!(host = call.host, by = %call.from, deleted, "message of the day deleted");
    Ok(Step::done(if deleted {
        "Message of the day deleted"
    } else {
        "There was no message of the day"
    }))
}

/// Sends the host's message of the day to each resource that becomes available (each
/// login, and a resource that comes back from unavailable).
pub(super) struct SendMotd(pub(super) Arc<Motds>);

#[async_trait]
impl Hook for SendMotd {
    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        let Event::InitialPresence { jid } = event else {
            return Flow::Continue;
        };
        let host = jid.domain().as_str();
        match self.0.get(server, host).await {
            Ok(Some((subject, body))) => {
                // Not taken only when the session is already ending: nothing to tell it.
                let _ = server
                    .router
                    .table
                    .send_to_full(jid, notice(host, jid, &subject, &body));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(%jid, error = %e, "message of the day not read"),
        }
        Flow::Continue
    }
}
