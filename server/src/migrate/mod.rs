//! Moving accounts in and out: `jabberwock import FILE|DIR` and `jabberwock export DIR`
//! (docs/migrating.md). Every source is read into [`Account`]s first, then written to the
//! store by one path (`store.rs`).
//!
//! Layout:
//! - `pie.rs`: XEP-0227 files (urn:xmpp:pie:0), read and written; ejabberd's
//!   `export_piefxis` and Prosody's migrator write these;
//! - `prosody.rs`: a Prosody data directory (its internal file storage), read;
//! - `lua.rs`: the Lua subset Prosody's files are written in;
//! - `store.rs`: accounts into and out of our store.

mod lua;
mod pie;
mod prosody;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jabberwock_protocol::xml::Element;
use jabberwock_storage::{RosterEntry, ScramCredential, Store, StoreError};

use crate::config::Config;
use crate::modules::pubsub::config::NodeConfig;

/// One account as a source holds it.
#[derive(Debug, Default)]
pub struct Account {
    /// Where it was read: the file and element, for messages.
    pub origin: String,
    pub username: String,
    pub host: String,
    pub secret: Secret,
    pub roster: Vec<RosterEntry>,
    /// `<vCard xmlns='vcard-temp'/>`.
    pub vcard: Option<Element>,
    /// `<message/>` stanzas in jabber:client.
    pub offline: Vec<Element>,
    /// XEP-0049 elements, each under its own namespace.
    pub private: Vec<Element>,
    /// XEP-0163 nodes of the account's personal eventing service.
    pub pep: Vec<PepNode>,
}

/// One personal eventing node as a source holds it (XEP-0227 §4: `<pubsub/>` in a user).
#[derive(Debug, Default)]
pub struct PepNode {
    pub node: String,
    /// Read from the `pubsub#node_config` form; our defaults where the source kept items
    /// only.
    pub config: NodeConfig,
    /// Oldest first.
    pub items: Vec<PepItem>,
}

impl PepNode {
    /// The node of that name in `nodes`, added if new: a source may name a node twice
    /// (its configuration and its items apart).
    pub fn named<'a>(nodes: &'a mut Vec<PepNode>, name: &str) -> &'a mut PepNode {
        let at = match nodes.iter().position(|n| n.node == name) {
            Some(at) => at,
            None => {
                nodes.push(PepNode {
                    node: name.to_owned(),
                    ..PepNode::default()
                });
                nodes.len() - 1
            }
        };
        &mut nodes[at]
    }
}

#[derive(Debug)]
pub struct PepItem {
    pub id: String,
    /// The bare JID that published it; `None`: the account itself.
    pub publisher: Option<String>,
    /// `None` for an item published without one (a notification-only node's).
    pub payload: Option<Element>,
}

/// What a source keeps of the password.
#[derive(Debug, Default)]
pub enum Secret {
    #[default]
    None,
    /// Converted to our SCRAM credentials on import.
    Plain(String),
    /// Kept as they are: a client's SCRAM proof or PLAIN password checks against them.
    Scram(Vec<ScramCredential>),
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{}: {element}: {reason}", file.display())]
    Malformed {
        file: PathBuf,
        element: String,
        reason: String,
    },
    #[error("{}: {}", path.display(), crate::config::io_reason(source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

impl MigrateError {
    /// A file or argument that cannot be read as a source is the caller's mistake (2).
    pub fn exit_code(&self) -> u8 {
        match self {
            MigrateError::Malformed { .. } | MigrateError::Io { .. } => 2,
            MigrateError::Store(_) => 1,
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> MigrateError + '_ {
    move |source| MigrateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// `jabberwock import PATH`: a XEP-0227 file, a directory of them, or a Prosody data
/// directory. Everything is read (and a malformed source refused) before anything is written.
pub async fn import(config: &Config, path: &Path, force: bool) -> Result<(), MigrateError> {
    let accounts = read_source(path)?;
    crate::cli::with_store(config, async |store| {
        import_accounts(config, store, accounts, force).await
    })
    .await
}

async fn import_accounts(
    config: &Config,
    store: &Arc<dyn Store>,
    accounts: Vec<Account>,
    force: bool,
) -> Result<(), MigrateError> {
    let mut imported = 0;
    for account in accounts {
        if config.host(&account.host).is_none() {
            warn(&format!(
                "{}: host {} is not served here; skipped",
                account.origin, account.host
            ));
            continue;
        }
        match store::import_account(store, config, account, force).await? {
            store::Outcome::Imported(jid) => {
                println!("imported {jid}");
                imported += 1;
            }
            store::Outcome::Skipped(why) => warn(&why),
        }
    }
    println!("{imported} accounts imported");
    Ok(())
}

/// `jabberwock export DIR`: one XEP-0227 file per served host, `DIR/HOST.xml`.
pub async fn export(config: &Config, dir: &Path) -> Result<(), MigrateError> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    crate::cli::with_store(config, async |store| export_hosts(config, store, dir).await).await
}

async fn export_hosts(
    config: &Config,
    store: &Arc<dyn Store>,
    dir: &Path,
) -> Result<(), MigrateError> {
    for host in config.hosts.keys() {
        let accounts = store::export_host(store, host).await?;
        let path = dir.join(format!("{host}.xml"));
        let bytes = pie::write_host(host, &accounts);
        write_private(&path, &bytes).map_err(io_error(&path))?;
        println!(
            "exported {} accounts of {host} to {}",
            accounts.len(),
            path.display()
        );
    }
    Ok(())
}

/// The export holds credentials: readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn read_source(path: &Path) -> Result<Vec<Account>, MigrateError> {
    let meta = std::fs::metadata(path).map_err(io_error(path))?;
    if !meta.is_dir() {
        return pie::read_file(path);
    }
    if prosody::is_data_dir(path) {
        return prosody::read_data_dir(path);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io_error(path))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(MigrateError::Malformed {
            file: path.to_owned(),
            element: "directory".into(),
            reason: "neither XEP-0227 files (*.xml) nor a Prosody data directory".into(),
        });
    }
    let mut accounts = Vec::new();
    for file in files {
        accounts.extend(pie::read_file(&file)?);
    }
    Ok(accounts)
}

fn warn(message: &str) {
    eprintln!("jabberwock: warning: {message}");
}
