//! XEP-0133: Service Administration, as XEP-0050 commands on each host's JID for the
//! administrators `[modules.admin_adhoc] admins` lists (docs/admin-commands.md). Everyone
//! else sees none of them and is refused `forbidden` (the `adhoc` module's check).
//! `users.rs`: accounts and sessions; `announce.rs`: announcements and the message of the
//! day, which a hook sends to each resource that becomes available.

mod announce;
mod users;

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use jabberwock_protocol::commands::CommandCondition;
use jabberwock_protocol::forms::{DataForm, Field, FieldType, FormType};
use jabberwock_protocol::jid::{self, BareJid, Jid};
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_storage::StoreError;

use super::commands::{AdHocCommand, CommandCall, Step};
use super::config::TableError;
use super::hooks::EventKind;
use super::{xep, Module, Registrar, Xep};
use crate::accounts::AccountError;
use crate::error::store_to_stanza_error;

/// The `FORM_TYPE` of every XEP-0133 form (§5).
const FORM_TYPE: &str = "http://jabber.org/protocol/admin";

pub struct AdminAdhoc;

/// `[modules.admin_adhoc]`
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// `admins` (default `[]`): bare JIDs allowed to run the commands on every host the
    /// module runs on.
    pub admins: Vec<String>,
}

/// Why a command can't do what was asked; [`AdminError::into_stanza_error`] is the one
/// place these become XMPP conditions.
#[derive(Debug, thiserror::Error)]
enum AdminError {
    /// A field the stage needs was left empty (XEP-0050 §4.6 `bad-payload`).
    #[error("the field {0:?} is required")]
    MissingField(&'static str),
    #[error("{0:?} is not a valid JID")]
    BadJid(String),
    /// Accounts of another host are that host's administrators' business.
    #[error("{0} is not an account of this host")]
    NotLocal(String),
    #[error("the two passwords differ")]
    PasswordsDiffer,
    #[error("{0} already exists")]
    Exists(String),
    #[error("{0} does not exist")]
    NoSuchAccount(String),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AdminError {
    fn into_stanza_error(self) -> StanzaError {
        let text = self.to_string();
        match self {
            AdminError::MissingField(_) => {
                let mut err = CommandCondition::BadPayload.to_stanza_error();
                err.text = Some(text);
                err
            }
            AdminError::BadJid(_) => StanzaError::with_text(Condition::JidMalformed, text),
            AdminError::NotLocal(_) => StanzaError::with_text(Condition::NotAllowed, text),
            AdminError::PasswordsDiffer => StanzaError::with_text(Condition::NotAcceptable, text),
            AdminError::Exists(_) => StanzaError::with_text(Condition::Conflict, text),
            AdminError::NoSuchAccount(_) => StanzaError::with_text(Condition::ItemNotFound, text),
            AdminError::Account(e) => super::register::refused_password(e),
            AdminError::Store(e) => store_to_stanza_error(e),
        }
    }
}

impl From<AdminError> for StanzaError {
    fn from(e: AdminError) -> StanzaError {
        e.into_stanza_error()
    }
}

/// The commands, by their XEP-0133 node (the part after `#`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    AddUser,
    DeleteUser,
    ChangeUserPassword,
    EndUserSession,
    GetRegisteredUsersNum,
    GetOnlineUsersNum,
    GetRegisteredUsersList,
    GetOnlineUsersList,
    Announce,
    SetMotd,
    EditMotd,
    DeleteMotd,
}

const KINDS: [Kind; 12] = [
    Kind::AddUser,
    Kind::DeleteUser,
    Kind::ChangeUserPassword,
    Kind::EndUserSession,
    Kind::GetRegisteredUsersNum,
    Kind::GetOnlineUsersNum,
    Kind::GetRegisteredUsersList,
    Kind::GetOnlineUsersList,
    Kind::Announce,
    Kind::SetMotd,
    Kind::EditMotd,
    Kind::DeleteMotd,
];

impl Kind {
    /// The node (§4) and the name shown in disco#items.
    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Kind::AddUser => ("http://jabber.org/protocol/admin#add-user", "Add User"),
            Kind::DeleteUser => (
                "http://jabber.org/protocol/admin#delete-user",
                "Delete User",
            ),
            Kind::ChangeUserPassword => (
                "http://jabber.org/protocol/admin#change-user-password",
                "Change User Password",
            ),
            Kind::EndUserSession => (
                "http://jabber.org/protocol/admin#end-user-session",
                "End User Session",
            ),
            Kind::GetRegisteredUsersNum => (
                "http://jabber.org/protocol/admin#get-registered-users-num",
                "Get Number of Registered Users",
            ),
            Kind::GetOnlineUsersNum => (
                "http://jabber.org/protocol/admin#get-online-users-num",
                "Get Number of Online Users",
            ),
            Kind::GetRegisteredUsersList => (
                "http://jabber.org/protocol/admin#get-registered-users-list",
                "Get List of Registered Users",
            ),
            Kind::GetOnlineUsersList => (
                "http://jabber.org/protocol/admin#get-online-users-list",
                "Get List of Online Users",
            ),
            Kind::Announce => (
                "http://jabber.org/protocol/admin#announce",
                "Send Announcement to Online Users",
            ),
            Kind::SetMotd => (
                "http://jabber.org/protocol/admin#set-motd",
                "Set Message of the Day",
            ),
            Kind::EditMotd => (
                "http://jabber.org/protocol/admin#edit-motd",
                "Edit Message of the Day",
            ),
            Kind::DeleteMotd => (
                "http://jabber.org/protocol/admin#delete-motd",
                "Delete Message of the Day",
            ),
        }
    }
}

/// The administrators in force; a reload replaces the list.
type Admins = Arc<RwLock<Vec<BareJid>>>;

fn admins_of(config: &AdminConfig) -> Vec<BareJid> {
    config
        .admins
        .iter()
        .filter_map(|a| jid::parse_bare(a).ok())
        .collect()
}

struct AdminCommand {
    kind: Kind,
    admins: Admins,
    motds: Arc<announce::Motds>,
}

#[async_trait]
impl AdHocCommand for AdminCommand {
    fn node(&self) -> &'static str {
        self.kind.describe().0
    }

    fn name(&self) -> &'static str {
        self.kind.describe().1
    }

    fn allowed(&self, asker: &BareJid, _host: &str) -> bool {
        self.admins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(asker)
    }

    async fn step(
        &self,
        call: &CommandCall<'_>,
        stage: usize,
        form: Option<&DataForm>,
    ) -> Result<Step, StanzaError> {
        let step = match (self.kind, form.filter(|_| stage > 0)) {
            (Kind::Announce | Kind::SetMotd | Kind::EditMotd, submitted) => {
                announce::step(call, self.kind, submitted, &self.motds).await
            }
            (Kind::DeleteMotd, _) => announce::delete_motd(call, &self.motds).await,
            (kind, submitted) => users::step(call, kind, submitted).await,
        };
        Ok(step?)
    }
}

/// An XEP-0133 form to fill in.
/// The full JIDs of the bound sessions of `host`'s accounts, sorted.
fn online_sessions(server: &crate::server::Server, host: &str) -> Vec<jid::FullJid> {
    let mut list = Vec::new();
    server.router.table.for_each(&mut |full, _| {
        if full.domain().as_str() == host {
            list.push(full.clone());
        }
    });
    list.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    list
}

fn admin_form(title: &str, instructions: &str, fields: Vec<Field>) -> DataForm {
    let mut form = DataForm::new(FormType::Form)
        .with_form_type(FORM_TYPE)
        .with_title(title)
        .with_instructions(instructions);
    for field in fields {
        form = form.with_field(field);
    }
    form
}

/// An XEP-0133 result form.
fn result_form(fields: Vec<Field>) -> DataForm {
    let mut form = DataForm::new(FormType::Result).with_form_type(FORM_TYPE);
    for field in fields {
        form = form.with_field(field);
    }
    form
}

fn field(var: &str, kind: FieldType, label: &str) -> Field {
    Field::new(var).with_type(kind).with_label(label)
}

/// A field's one value, required.
fn required<'f>(form: &'f DataForm, var: &'static str) -> Result<&'f str, AdminError> {
    form.value(var)
        .filter(|v| !v.is_empty())
        .ok_or(AdminError::MissingField(var))
}

/// A field's values as one text, lines joined (a `text-multi` field's lines, §3.3).
fn text(form: &DataForm, var: &str) -> String {
    form.field(var)
        .map(|f| f.values.join("\n"))
        .unwrap_or_default()
}

/// A JID naming an account of `host`.
fn local_account(value: &str, host: &str) -> Result<BareJid, AdminError> {
    let jid = jid::parse_bare(value.trim()).map_err(|_| AdminError::BadJid(value.into()))?;
    if jid.node().is_none() || jid.domain().as_str() != host {
        return Err(AdminError::NotLocal(value.into()));
    }
    Ok(jid)
}

/// A JID of `host`'s user, bare or full (a session).
fn local_jid(value: &str, host: &str) -> Result<Jid, AdminError> {
    let jid = Jid::new(value.trim()).map_err(|_| AdminError::BadJid(value.into()))?;
    if jid.node().is_none() || jid.domain().as_str() != host {
        return Err(AdminError::NotLocal(value.into()));
    }
    Ok(jid)
}

impl Module for AdminAdhoc {
    const NAME: &'static str = "admin_adhoc";
    const XEPS: &'static [Xep] = &[xep(133, "1.3.0")];
    const DEPENDS: &'static [&'static str] = &["adhoc"];
    type Config = AdminConfig;

    fn check(config: &AdminConfig, _hosts: &[String]) -> Result<(), TableError> {
        for (i, admin) in config.admins.iter().enumerate() {
            let valid = jid::parse_bare(admin).is_ok_and(|j| j.node().is_some());
            if !valid {
                return Err(TableError {
                    path: vec![format!("admins[{i}]")],
                    message: format!("{admin:?} is not a bare JID user@domain"),
                });
            }
        }
        Ok(())
    }

    fn register(config: AdminConfig, registry: &mut Registrar<'_>) {
        let admins: Admins = Arc::new(RwLock::new(admins_of(&config)));
        // The list applies to each command as it is asked, so a reload's takes effect for
        // the next one.
        let reloaded = admins.clone();
        registry.on_reload(&["admins"], move |config: AdminConfig| {
            *reloaded.write().unwrap_or_else(|p| p.into_inner()) = admins_of(&config);
            Ok(())
        });
        let motds = Arc::new(announce::Motds::default());
        for kind in KINDS {
            registry.command(Arc::new(AdminCommand {
                kind,
                admins: admins.clone(),
                motds: motds.clone(),
            }));
        }
        registry.hook(
            EventKind::InitialPresence,
            0,
            Arc::new(announce::SendMotd(motds)),
        );
    }
}
