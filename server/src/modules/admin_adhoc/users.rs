//! XEP-0133 §4.1-4.18 as far as this server has them: adding, deleting and re-passwording
//! accounts, ending sessions, and counting and listing registered and online users. Every
//! account named must be the host's own.

use std::collections::BTreeSet;

use jabberwock_protocol::forms::{DataForm, Field, FieldType};
use jabberwock_protocol::jid::{BareJid, Jid};
use jabberwock_protocol::stream::{StreamCondition, StreamError};
use jabberwock_storage::StoreError;

use super::{admin_form, field, local_account, local_jid, required, result_form, AdminError, Kind};
use crate::accounts::{self, account_of, AccountError};
use crate::modules::commands::{CommandCall, Step};

/// What `kind` does at its first stage (`form: None`) or with the form submitted.
pub(super) async fn step(
    call: &CommandCall<'_>,
    kind: Kind,
    form: Option<&DataForm>,
) -> Result<Step, AdminError> {
    let Some(form) = form else {
        return first_stage(call, kind).await;
    };
    match kind {
        Kind::AddUser => add_user(call, form).await,
        Kind::DeleteUser => delete_users(call, form).await,
        Kind::ChangeUserPassword => change_password(call, form).await,
        Kind::EndUserSession => Ok(end_sessions(call, form)?),
        Kind::GetRegisteredUsersList => {
            let users = registered(call).await?;
            Ok(list(users, "registereduserjids", max_items(form)))
        }
        Kind::GetOnlineUsersList => Ok(list(online(call), "onlineuserjids", max_items(form))),
        // Single-stage commands: answered at the first stage.
        _ => first_stage(call, kind).await,
    }
}

async fn first_stage(call: &CommandCall<'_>, kind: Kind) -> Result<Step, AdminError> {
    let jid = |var, label| field(var, FieldType::JidSingle, label).required();
    let jids = |var, label| field(var, FieldType::JidMulti, label).required();
    let password = |var, label| field(var, FieldType::TextPrivate, label).required();
    let (title, fields) = match kind {
        Kind::AddUser => (
            "Adding a User",
            vec![
                jid("accountjid", "The Jabber ID for the account to be added"),
                password("password", "The password for this account"),
                password("password-verify", "Retype password"),
            ],
        ),
        Kind::DeleteUser => (
            "Deleting a User",
            vec![jids("accountjids", "The Jabber ID(s) to delete")],
        ),
        Kind::ChangeUserPassword => (
            "Changing a User Password",
            vec![
                jid("accountjid", "The Jabber ID for this account"),
                password("password", "The password for this account"),
            ],
        ),
        Kind::EndUserSession => (
            "Ending a User Session",
            vec![jids(
                "accountjids",
                "The Jabber ID(s) whose sessions to end (a bare JID: all of them)",
            )],
        ),
        Kind::GetRegisteredUsersList | Kind::GetOnlineUsersList => {
            let mut max = field(
                "max_items",
                FieldType::ListSingle,
                "Maximum number of items",
            );
            for n in ["25", "50", "75", "100", "150", "200"] {
                max = max.with_option(None, n);
            }
            (
                "Requesting a List of Users",
                vec![max.with_option(Some("None"), "none")],
            )
        }
        Kind::GetRegisteredUsersNum => {
            let n = registered(call).await?.len();
            return Ok(count(
                "registeredusersnum",
                "The number of registered users",
                n,
            ));
        }
        Kind::GetOnlineUsersNum => {
            let n = online(call).len();
            return Ok(count("onlineusersnum", "The number of online users", n));
        }
        Kind::Announce | Kind::SetMotd | Kind::EditMotd | Kind::DeleteMotd => {
            unreachable!("announce.rs runs {kind:?}")
        }
    };
    Ok(Step::Form {
        form: admin_form(title, "Fill out this form to complete the command.", fields),
        last: true,
    })
}

async fn add_user(call: &CommandCall<'_>, form: &DataForm) -> Result<Step, AdminError> {
    let jid = local_account(required(form, "accountjid")?, call.host)?;
    let password = required(form, "password")?;
    if required(form, "password-verify")? != password {
        return Err(AdminError::PasswordsDiffer);
    }
    let server = call.server;
    let created = accounts::create(
        &server.store,
        &account_of(&jid),
        password.to_owned(),
        &server.live.get().auth,
    )
    .await;
    match created {
        Err(AccountError::Store(StoreError::AlreadyExists)) => {
            Err(AdminError::Exists(jid.to_string()))
        }
        Err(e) => Err(e.into()),
        Ok(()) => {
            tracing::info!(account = %jid, by = %call.from, "account added by an administrator");
            Ok(Step::done(format!("{jid} added")))
        }
    }
}

async fn delete_users(call: &CommandCall<'_>, form: &DataForm) -> Result<Step, AdminError> {
    let jids = accounts_named(call, form)?;
    let server = call.server;
    let mut missing = Vec::new();
    for jid in &jids {
        if !crate::roster::remove_account(server, jid).await? {
            missing.push(jid.to_string());
            continue;
        }
        tracing::info!(account = %jid, by = %call.from, "account deleted by an administrator");
        // As for XEP-0077 §3.2: the account is gone, so are its sessions.
        let err = StreamError::with_text(StreamCondition::NotAuthorized, "Account removed");
        server.router.table.close_all(jid.as_str(), &err);
    }
    let deleted = jids.len() - missing.len();
    let mut note = format!("{deleted} account(s) deleted");
    if !missing.is_empty() {
        note.push_str(&format!("; no such account: {}", missing.join(", ")));
    }
    Ok(Step::done(note))
}

async fn change_password(call: &CommandCall<'_>, form: &DataForm) -> Result<Step, AdminError> {
    let jid = local_account(required(form, "accountjid")?, call.host)?;
    let password = required(form, "password")?;
    let server = call.server;
    let id = account_of(&jid);
    if !server.store.account_exists(&id).await? {
        return Err(AdminError::NoSuchAccount(jid.to_string()));
    }
    accounts::set_password(
        &server.store,
        &id,
        password.to_owned(),
        &server.live.get().auth,
    )
    .await?;
    tracing::info!(account = %jid, by = %call.from, "password changed by an administrator");
    Ok(Step::done(format!("Password of {jid} changed")))
}

/// §4.5: a bare JID ends every session of the account, a full JID that one.
fn end_sessions(call: &CommandCall<'_>, form: &DataForm) -> Result<Step, AdminError> {
    let values = values(form, "accountjids")?;
    let jids = values
        .iter()
        .map(|v| local_jid(v, call.host))
        .collect::<Result<Vec<_>, _>>()?;
    let table = &call.server.router.table;
    let err = StreamError::with_text(
        StreamCondition::PolicyViolation,
        "Session ended by an administrator",
    );
    let mut ended = 0;
    for jid in jids {
        match jid.try_into_full() {
            Ok(full) => ended += usize::from(table.close(&full, err.clone())),
            Err(bare) => {
                ended += table.resource_count(bare.as_str());
                table.close_all(bare.as_str(), &err);
            }
        }
    }
    tracing::info!(sessions = ended, by = %call.from, "sessions ended by an administrator");
    Ok(Step::done(format!("{ended} session(s) ended")))
}

/// The non-empty values of a multi-value field, at least one.
fn values<'f>(form: &'f DataForm, var: &'static str) -> Result<Vec<&'f str>, AdminError> {
    let values: Vec<&str> = form
        .field(var)
        .map(|f| {
            f.values
                .iter()
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if values.is_empty() {
        return Err(AdminError::MissingField(var));
    }
    Ok(values)
}

fn accounts_named(call: &CommandCall<'_>, form: &DataForm) -> Result<Vec<BareJid>, AdminError> {
    values(form, "accountjids")?
        .into_iter()
        .map(|v| local_account(v, call.host))
        .collect()
}

async fn registered(call: &CommandCall<'_>) -> Result<Vec<String>, AdminError> {
    let ids = call.server.store.list_accounts(Some(call.host)).await?;
    Ok(ids
        .into_iter()
        .map(|id| format!("{}@{}", id.username, id.domain))
        .collect())
}

/// The host's accounts with a bound session, each once.
fn online(call: &CommandCall<'_>) -> Vec<String> {
    let sessions = super::online_sessions(call.server, call.host);
    let bare: BTreeSet<String> = sessions
        .iter()
        .map(|full| Jid::from(full.clone()).to_bare().to_string())
        .collect();
    bare.into_iter().collect()
}

/// §4.16's `max_items`: a number, or none for all.
fn max_items(form: &DataForm) -> usize {
    form.value("max_items")
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX)
}

fn count(var: &str, label: &str, n: usize) -> Step {
    Step::Done {
        form: Some(result_form(vec![Field::new(var)
            .with_label(label)
            .with_value(n.to_string())])),
        note: None,
    }
}

fn list(users: Vec<String>, var: &str, max: usize) -> Step {
    let mut field = Field::new(var).with_type(FieldType::JidMulti);
    for user in users.into_iter().take(max) {
        field = field.with_value(user);
    }
    Step::Done {
        form: Some(result_form(vec![field])),
        note: None,
    }
}
