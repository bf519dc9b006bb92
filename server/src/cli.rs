//! The command line: `jabberwock [--config FILE]` runs the server; `jabberwock user …`
//! manages accounts in the same database the server uses; `status`, `sessions`, `kick` and
//! `reload` ask the running server through its admin socket (`admin/`); `check` and
//! `about` need no server (docs/admin.md); `import` and `export` move accounts in and out
//! (`migrate/`, docs/migrating.md).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use jabberwock_storage::{Store, StoreError};

use crate::accounts::{self, AccountError};
use crate::admin::client::{ask, ask_if_running, AskError};
use crate::admin::wire::{Answer, Request, SessionRow, Status};
use crate::config::Config;
use crate::server::Server;
use crate::stream::transport::acceptor;
use jabberwock_protocol::jid::{BareJid, Jid};

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
    /// The running server's version, uptime, listeners, hosts and sessions by kind.
    Status,
    /// Who is online: every session, an account's (bare JID) or one resource's (full JID).
    Sessions { jid: Option<String> },
    /// End sessions with a stream error: all of an account's (bare JID), or one (full JID).
    Kick {
        jid: String,
        /// The text sent with the `policy-violation` stream error.
        #[arg(long, default_value = "Disconnected by the administrator")]
        reason: String,
    },
    /// Re-read the config file and the TLS certificate, as SIGHUP does.
    Reload,
    /// Validate the config file (`--config`) and its certificate without starting.
    Check,
    /// Version, build and license.
    About,
    /// Bring accounts in: a XEP-0227 file, a directory of them (ejabberd's
    /// `export_piefxis`), or a Prosody data directory (docs/migrating.md).
    Import {
        path: PathBuf,
        /// Replace accounts that exist already (they are skipped otherwise).
        #[arg(long)]
        force: bool,
    },
    /// Write every served host's accounts as XEP-0227, one file per host: DIR/HOST.xml.
    Export { dir: PathBuf },
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
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Admin(#[from] AskError),
    #[error(transparent)]
    Migrate(#[from] crate::migrate::MigrateError),
    /// The server refused the request; `code` is the exit code it chose.
    #[error("{message}")]
    Server { code: u8, message: String },
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::BadJid(_)
            | CliError::UnknownHost { .. }
            | CliError::Password(_)
            | CliError::Config(_) => 2,
            CliError::Refused(_) | CliError::Store(_) | CliError::Admin(_) => 1,
            CliError::Server { code, .. } => *code,
            CliError::Migrate(e) => e.exit_code(),
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
    with_store(config, async |store| {
        user_command(config, store, command).await
    })
    .await
}

/// Runs `command` on the configured store, which is closed after it whatever it did: as at
/// a server's clean stop, SQLite folds its WAL into the database file, so the file alone
/// holds what the command changed.
pub(crate) async fn with_store<T, E: From<StoreError>>(
    config: &Config,
    command: impl AsyncFnOnce(&Arc<dyn Store>) -> Result<T, E>,
) -> Result<T, E> {
    let store = jabberwock_storage::open(&config.storage_url()).await?;
    let done = command(&store).await;
    store.close().await;
    done
}

async fn user_command(
    config: &Config,
    store: &Arc<dyn Store>,
    command: UserCommand,
) -> Result<(), CliError> {
    match command {
        UserCommand::Add { jid } => {
            let id = served_account(config, &jid)?;
            let password = read_password(true)?;
            accounts::create(store, &id, password, &config.auth)
                .await
                .map_err(|e| refusal(e, &jid))?;
            println!("created {}@{}", id.username, id.domain);
        }
        UserCommand::Remove { jid } => {
            let id = served_account(config, &jid)?;
            if !store.account_exists(&id).await? {
                return Err(CliError::Refused(format!("no account {jid}")));
            }
            let bare = format!("{}@{}", id.username, id.domain);
            // A running server removes it itself: contacts online see the change at once,
            // and the account's sessions end.
            let request = Request::RemoveAccount { jid: bare.clone() };
            if let Some(answer) = ask_if_running(&config.data_dir, &request).await? {
                let ended = ended(answer)?;
                println!("removed {bare}{}", sessions_ended(ended.len()));
                return Ok(());
            }
            // The same removal as in-band (contacts' rosters updated), run by a server core
            // with no sessions: contacts see the change at their next roster fetch.
            let tls = crate::tls::ensure_identity(config)
                .and_then(|identity| crate::tls::server_config(&identity))
                .map_err(|e| CliError::Refused(format!("TLS setup: {e}")))?;
            let core = Server::new(config.clone(), store.clone(), acceptor(tls));
            let bare = BareJid::new(&bare).map_err(|e| CliError::BadJid(e.to_string()))?;
            crate::roster::remove_account(&core, &bare).await?;
            println!("removed {bare}");
        }
        UserCommand::Passwd { jid } => {
            let id = served_account(config, &jid)?;
            let password = read_password(true)?;
            accounts::set_password(store, &id, password, &config.auth)
                .await
                .map_err(|e| refusal(e, &jid))?;
            // As Prosody does: the sessions logged in with the old password end (`reset`),
            // and their clients log in again with the new one.
            let bare = format!("{}@{}", id.username, id.domain);
            let request = Request::PasswordChanged { jid: bare.clone() };
            let count = match ask_if_running(&config.data_dir, &request).await? {
                Some(answer) => ended(answer)?.len(),
                None => 0,
            };
            println!("password changed for {bare}{}", sessions_ended(count));
        }
        UserCommand::List { domain } => {
            let request = Request::Sessions { jid: None };
            let online: std::collections::BTreeSet<String> =
                match ask_if_running(&config.data_dir, &request).await? {
                    Some(answer) => sessions(answer)?
                        .into_iter()
                        .map(|row| jabberwock_protocol::jid::bare_part(&row.jid).to_owned())
                        .collect(),
                    None => Default::default(),
                };
            for id in store.list_accounts(domain.as_deref()).await? {
                let jid = format!("{}@{}", id.username, id.domain);
                match online.contains(&jid) {
                    true => println!("{jid}\tonline"),
                    false => println!("{jid}"),
                }
            }
        }
    }
    Ok(())
}

/// The commands that ask the running server (and `check`, `about`, which need none).
pub async fn run_admin_command(config: &Config, command: Command) -> Result<(), CliError> {
    match command {
        Command::User(command) => run_user_command(config, command).await,
        Command::Status => match ask(&config.data_dir, &Request::Status).await? {
            Answer::Status(status) => {
                print_status(&status);
                Ok(())
            }
            other => Err(unexpected(other)),
        },
        Command::Sessions { jid } => {
            if let Some(jid) = &jid {
                served_jid(config, jid)?;
            }
            let answer = ask(&config.data_dir, &Request::Sessions { jid }).await?;
            for row in sessions(answer)? {
                println!("{}\t{}\t{}\t{}", row.jid, row.kind, row.peer, row.since);
            }
            Ok(())
        }
        Command::Kick { jid, reason } => {
            served_jid(config, &jid)?;
            let answer = ask(&config.data_dir, &Request::Kick { jid, reason }).await?;
            for full in ended(answer)? {
                println!("kicked {full}");
            }
            Ok(())
        }
        Command::Reload => match ask(&config.data_dir, &Request::Reload).await? {
            Answer::Reloaded(report) => {
                for line in &report.applied {
                    println!("applied: {line}");
                }
                for key in &report.needs_restart {
                    println!("needs a restart: {key}");
                }
                for line in &report.refused {
                    println!("refused: {line}");
                }
                for line in &report.warnings {
                    println!("warning: {line}");
                }
                if report.applied.is_empty()
                    && report.needs_restart.is_empty()
                    && report.refused.is_empty()
                {
                    println!("no change");
                }
                match report.refused.is_empty() {
                    true => Ok(()),
                    false => Err(CliError::Refused("the reload was refused in part".into())),
                }
            }
            other => Err(unexpected(other)),
        },
        Command::Check => check(config),
        Command::About => {
            about();
            Ok(())
        }
        Command::Import { path, force } => Ok(crate::migrate::import(config, &path, force).await?),
        Command::Export { dir } => Ok(crate::migrate::export(config, &dir).await?),
    }
}

/// `jabberwock check`: the config was loaded and validated by then (main.rs); the
/// certificate and key are read too. Nothing is written.
fn check(config: &Config) -> Result<(), CliError> {
    let file = config.source.as_ref().map_or_else(
        || "no config file (defaults)".to_owned(),
        |p| p.display().to_string(),
    );
    let key = match config.tls.cert {
        Some(_) => "cert",
        None => "data_dir",
    };
    match crate::tls::check(config).map_err(|e| config.problem(&["tls", key], e.to_string()))? {
        Some(cert) => match crate::tls::summary(&cert) {
            Some(s) => println!(
                "certificate {}: {}, SHA-256 {}, until {}",
                cert.display(),
                s.subject,
                s.sha256,
                s.not_after
            ),
            None => println!("certificate {}", cert.display()),
        },
        None => {
            println!("certificate: none yet (a self-signed one is generated at the first start)")
        }
    }
    println!("ok: {file}");
    Ok(())
}

fn about() {
    println!("Jabberwock {}", env!("CARGO_PKG_VERSION"));
    println!("{}", env!("CARGO_PKG_DESCRIPTION"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "build: {} {} ({profile})",
        std::env::consts::ARCH,
        std::env::consts::OS
    );
    println!(
        "license: {} (you may share and change it; users of a modified server get its source)",
        env!("CARGO_PKG_LICENSE")
    );
    let homepage = option_env!("CARGO_PKG_HOMEPAGE").filter(|h| !h.is_empty());
    if let Some(homepage) = homepage {
        println!("homepage: {homepage}");
    }
}

fn print_status(status: &Status) {
    let up = status.uptime_secs;
    println!("version: {}", status.version);
    println!(
        "uptime: {}d {:02}:{:02}:{:02}",
        up / 86_400,
        up % 86_400 / 3600,
        up % 3600 / 60,
        up % 60
    );
    for l in &status.listeners {
        println!("listening: {} {}", l.kind, l.address);
    }
    println!("hosts: {}", status.hosts.join(" "));
    let total: usize = status.sessions.values().sum();
    let by_kind: Vec<String> = status
        .sessions
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    match by_kind.is_empty() {
        true => println!("sessions: 0"),
        false => println!("sessions: {total} ({})", by_kind.join(", ")),
    }
}

fn sessions(answer: Answer) -> Result<Vec<SessionRow>, CliError> {
    match answer {
        Answer::Sessions { sessions } => Ok(sessions),
        other => Err(unexpected(other)),
    }
}

fn ended(answer: Answer) -> Result<Vec<String>, CliError> {
    match answer {
        Answer::Ended { sessions } => Ok(sessions),
        other => Err(unexpected(other)),
    }
}

fn sessions_ended(count: usize) -> String {
    match count {
        0 => String::new(),
        1 => "; 1 session ended".into(),
        n => format!("; {n} sessions ended"),
    }
}

/// The server's refusal as the command's, or an answer to another question.
fn unexpected(answer: Answer) -> CliError {
    match answer {
        Answer::Error { code, message } => CliError::Server { code, message },
        other => CliError::Refused(format!("unexpected answer from the server: {other:?}")),
    }
}

/// A bare or full JID of an account on a host we serve.
fn served_jid(config: &Config, jid: &str) -> Result<Jid, CliError> {
    let parsed = Jid::new(jid).map_err(|e| CliError::BadJid(format!("{jid}: {e}")))?;
    if parsed.node().is_none() {
        return Err(CliError::BadJid(format!("{jid}: not an account's JID")));
    }
    served_host(config, parsed.domain().as_str())?;
    Ok(parsed)
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
