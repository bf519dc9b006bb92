//! The command line: `jabberwock [--config FILE]` runs the server; `jabberwock user …`
//! manages accounts in the same database the server uses.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use jabberwock_storage::{Store, StoreError};

use crate::accounts::{self, AccountError};
use crate::config::Config;
use crate::server::Server;
use crate::stream::transport::acceptor;
use jabberwock_protocol::jid::BareJid;

#[derive(Debug, Parser)]
#[command(
    name = "jabberwock",
    version,
    about = "An XMPP server for standard clients and Flash chat widgets"
)]
pub struct Cli {
    /// TOML configuration file; without it every option takes its default (see config.example.toml).
    /// Accepted before or after a subcommand (`jabberwock user list --config FILE`).
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; the password is read from a prompt, or the first line of stdin.
    Add { jid: String },
    /// Delete an account and everything stored for it.
    Remove { jid: String },
    /// Change an account's password (prompt or first line of stdin).
    Passwd { jid: String },
    /// List accounts, of one domain or of all.
    List { domain: Option<String> },
}

/// How a user command failed: a mistake in the arguments (exit 2) or a refusal (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("argument JID: {0}")]
    BadJid(String),
    #[error("argument: host {host} is not served here (configured hosts: {known})")]
    UnknownHost { host: String, known: String },
    #[error("{0}")]
    Refused(String),
    #[error("cannot read the password: {0}")]
    Password(String),
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::BadJid(_) | CliError::UnknownHost { .. } | CliError::Password(_) => 2,
            CliError::Refused(_) | CliError::Store(_) => 1,
        }
    }
}

pub async fn run_user_command(config: &Config, command: UserCommand) -> Result<(), CliError> {
    // A mistake in the arguments must not create the database as a side effect.
    match &command {
        UserCommand::Add { jid } | UserCommand::Remove { jid } | UserCommand::Passwd { jid } => {
            served_account(config, jid)?;
        }
        UserCommand::List {
            domain: Some(domain),
        } => served_host(config, domain)?,
        UserCommand::List { domain: None } => {}
    }
    let store: Arc<dyn Store> = jabberwock_storage::open(&config.storage_url()).await?;
    match command {
        UserCommand::Add { jid } => {
            let id = served_account(config, &jid)?;
            let password = read_password(true)?;
            accounts::create(&store, &id, password, &config.auth)
                .await
                .map_err(|e| refusal(e, &jid))?;
            println!("created {}@{}", id.username, id.domain);
        }
        UserCommand::Remove { jid } => {
            let id = served_account(config, &jid)?;
            if !store.account_exists(&id).await? {
                return Err(CliError::Refused(format!("no account {jid}")));
            }
            // The same removal as in-band (contacts' rosters updated), run by a server core
            // with no sessions: contacts see the change at their next roster fetch.
            let tls = crate::tls::ensure_identity(config)
                .and_then(|identity| crate::tls::server_config(&identity))
                .map_err(|e| CliError::Refused(format!("TLS setup: {e}")))?;
            let core = Server::new(config.clone(), store.clone(), acceptor(tls));
            let bare = BareJid::new(&format!("{}@{}", id.username, id.domain))
                .map_err(|e| CliError::BadJid(e.to_string()))?;
            crate::roster::remove_account(&core, &bare).await?;
            println!("removed {}@{}", id.username, id.domain);
        }
        UserCommand::Passwd { jid } => {
            let id = served_account(config, &jid)?;
            let password = read_password(true)?;
            accounts::set_password(&store, &id, password, &config.auth)
                .await
                .map_err(|e| refusal(e, &jid))?;
            println!("password changed for {}@{}", id.username, id.domain);
        }
        UserCommand::List { domain } => {
            for id in store.list_accounts(domain.as_deref()).await? {
                println!("{}@{}", id.username, id.domain);
            }
        }
    }
    Ok(())
}

fn served_account(config: &Config, jid: &str) -> Result<jabberwock_storage::AccountId, CliError> {
    let id = accounts::account_id(jid).map_err(|e| CliError::BadJid(e.to_string()))?;
    served_host(config, &id.domain)?;
    Ok(id)
}

/// An unknown host is a mistake in the arguments wherever a command names one.
fn served_host(config: &Config, host: &str) -> Result<(), CliError> {
    if config.host(host).is_none() {
        return Err(CliError::UnknownHost {
            host: host.to_owned(),
            known: config.hosts.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    }
    Ok(())
}

fn refusal(err: AccountError, jid: &str) -> CliError {
    match err {
        AccountError::Store(StoreError::AlreadyExists) => {
            CliError::Refused(format!("account {jid} already exists"))
        }
        AccountError::Store(StoreError::NotFound) => CliError::Refused(format!("no account {jid}")),
        AccountError::Store(e) => CliError::Store(e),
        // The rules in-band registration applies too (auth.min_password_length, RFC 8265).
        e @ (AccountError::EmptyPassword
        | AccountError::TooShort(_)
        | AccountError::BadCharacter) => CliError::Password(e.to_string()),
        other => CliError::BadJid(other.to_string()),
    }
}

/// From a no-echo prompt on a terminal (asked twice), else the first line of stdin.
/// Never from an argument: those end up in shell history and `ps`.
fn read_password(confirm: bool) -> Result<String, CliError> {
    let err = |e: std::io::Error| CliError::Password(e.to_string());
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(err)?;
        if confirm && rpassword::prompt_password("Repeat password: ").map_err(err)? != first {
            return Err(CliError::Password("the two passwords differ".into()));
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(err)?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        return Err(CliError::Password("no password on standard input".into()));
    }
    Ok(password)
}
