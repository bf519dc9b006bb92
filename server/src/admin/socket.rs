//! The server's side of the admin socket: the file's life (created at start with mode
//! 0600, a stale one replaced, one a running server holds refused, removed at a clean
//! shutdown) and the answers to requests.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jabberwock_protocol::jid::{FullJid, Jid};
use jabberwock_protocol::stream::{StreamCondition, StreamError};
use tokio::io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::wire::{Answer, ListenerRow, Request, SessionRow, Status};
use super::SessionInfo;
use crate::config::io_reason;
use crate::reload::Reloader;
use crate::server::Server;
use crate::shutdown::ShutdownSignal;

/// A request is one short line; anything longer is not ours.
const MAX_REQUEST_BYTES: u64 = 64 * 1024;
/// How long a client gets to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("admin socket {}: another server is running with this data_dir (it answers there); stop it first", .0.display())]
    InUse(PathBuf),
    #[error("admin socket {}: {}", path.display(), io_reason(source))]
    Io { path: PathBuf, source: io::Error },
}

/// The bound socket; the file is removed when this is dropped (a clean shutdown, or a
/// start that failed later).
pub struct AdminSocket {
    path: PathBuf,
    listener: Option<UnixListener>,
}

impl AdminSocket {
    /// Creates `data_dir/admin.sock`, readable and writable by this user only.
    pub fn bind(data_dir: &Path) -> Result<AdminSocket, SocketError> {
        let path = super::socket_path(data_dir);
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SocketError::Io { path, source }
        };
        let mut dirs = std::fs::DirBuilder::new();
        dirs.recursive(true);
        std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
        dirs.create(data_dir).map_err(io_err(data_dir))?;
        // A socket file outlives a killed process; one nobody answers on is stale.
        match std::os::unix::net::UnixStream::connect(&path) {
            Ok(_) => return Err(SocketError::InUse(path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => std::fs::remove_file(&path).map_err(io_err(&path))?,
        }
        // Bound under a temporary name and given its mode before it takes its real one, so
        // no one else can connect in between (the umask is the process's, not ours to set).
        let tmp = data_dir.join(format!(".admin.sock.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let listener = UnixListener::bind(&tmp).map_err(io_err(&tmp))?;
        let made = (|| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(&path)(e));
        }
        Ok(AdminSocket {
            path,
            listener: Some(listener),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What answers requests until shutdown (each connection carries one); the file stays
    /// with `self`.
    pub fn serving(
        &mut self,
        admin: Arc<Admin>,
        mut shutdown: ShutdownSignal,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let listener = self.listener.take();
        async move {
            let Some(listener) = listener else {
                return;
            };
            loop {
                tokio::select! {
                    _ = shutdown.triggered() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            tokio::spawn(answer(admin.clone(), stream));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "admin socket: accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                }
            }
        }
    }
}

impl Drop for AdminSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the requests are answered from.
pub struct Admin {
    pub server: Arc<Server>,
    pub started: Instant,
    /// Every listener's kind and bound address.
    pub listeners: Vec<(String, SocketAddr)>,
    pub reloader: Arc<Reloader>,
}

async fn answer(admin: Arc<Admin>, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read).take(MAX_REQUEST_BYTES);
    let answer = match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await {
        Ok(Ok(_)) => match serde_json::from_str::<Request>(&line) {
            Ok(request) => admin.handle(request).await,
            Err(e) => refused(2, format!("not a request: {e}")),
        },
        Ok(Err(e)) => refused(2, format!("cannot read the request: {e}")),
        Err(_) => return,
    };
    let mut out = serde_json::to_vec(&answer).unwrap_or_default();
    out.push(b'\n');
    let _ = write.write_all(&out).await;
    let _ = write.shutdown().await;
}

fn refused(code: u8, message: String) -> Answer {
    Answer::Error { code, message }
}

impl Admin {
    async fn handle(&self, request: Request) -> Answer {
        match request {
            Request::Status => Answer::Status(self.status()),
            Request::Sessions { jid } => {
                let wanted = match jid.as_deref().map(|j| self.served_jid(j)).transpose() {
                    Ok(wanted) => wanted,
                    Err(e) => return e,
                };
                Answer::Sessions {
                    sessions: self.sessions(wanted.as_ref()),
                }
            }
            Request::Kick { jid, reason } => {
                // What ejabberd's kick_session sends: policy-violation, with the reason.
                let error = StreamError::with_text(StreamCondition::PolicyViolation, &reason);
                self.end_sessions(&jid, error, true)
            }
            Request::PasswordChanged { jid } => {
                // RFC 6120 §4.9.3.16: `reset` is for credentials that changed.
                let error = StreamError::with_text(StreamCondition::Reset, "Password changed");
                self.end_sessions(&jid, error, false)
            }
            Request::RemoveAccount { jid } => self.remove_account(&jid).await,
            Request::Reload => {
                let reloader = self.reloader.clone();
                match tokio::task::spawn_blocking(move || reloader.reload()).await {
                    Ok(report) => Answer::Reloaded(report),
                    Err(e) => refused(1, format!("reload failed: {e}")),
                }
            }
        }
    }

    fn status(&self) -> Status {
        let mut sessions = BTreeMap::new();
        self.server.router.table.for_each(&mut |_, state| {
            let kind = state
                .get::<SessionInfo>()
                .map_or("unknown", |info| info.kind.as_str());
            *sessions.entry(kind.to_owned()).or_insert(0) += 1;
        });
        Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_secs: self.started.elapsed().as_secs(),
            listeners: self
                .listeners
                .iter()
                .map(|(kind, addr)| ListenerRow {
                    kind: kind.clone(),
                    address: addr.to_string(),
                })
                .collect(),
            hosts: self.server.hosts(),
            sessions,
        }
    }

    /// `jid` parsed, its host one we serve (else the answer that refuses it).
    fn served_jid(&self, jid: &str) -> Result<Jid, Answer> {
        let parsed = Jid::new(jid).map_err(|e| refused(2, format!("argument JID {jid}: {e}")))?;
        if parsed.node().is_none() || !self.server.serves(parsed.domain().as_str()) {
            let known = self.server.hosts();
            if parsed.node().is_none() {
                return Err(refused(
                    2,
                    format!("argument JID {jid}: not an account's JID"),
                ));
            }
            return Err(refused(
                2,
                format!(
                    "argument: host {} is not served here (configured hosts: {})",
                    parsed.domain(),
                    known.join(", ")
                ),
            ));
        }
        Ok(parsed)
    }

    /// The sessions `wanted` names (a bare JID: all its resources), or every session.
    fn matching(&self, wanted: Option<&Jid>) -> Vec<(FullJid, Option<Arc<SessionInfo>>)> {
        let mut found = Vec::new();
        self.server.router.table.for_each(&mut |jid, state| {
            let matches = match wanted {
                None => true,
                Some(wanted) => match wanted.try_as_full() {
                    Ok(full) => full == jid,
                    Err(bare) => *bare == jid.to_bare(),
                },
            };
            if matches {
                found.push((jid.clone(), state.get::<SessionInfo>()));
            }
        });
        found.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        found
    }

    fn sessions(&self, wanted: Option<&Jid>) -> Vec<SessionRow> {
        self.matching(wanted)
            .into_iter()
            .map(|(jid, info)| SessionRow {
                jid: jid.to_string(),
                peer: info.as_ref().map_or("?".into(), |i| i.peer.to_string()),
                kind: info.as_ref().map_or("unknown", |i| i.kind.as_str()).into(),
                since: info.as_ref().map_or("?".into(), |i| rfc3339(i.since)),
            })
            .collect()
    }

    /// Ends the sessions of `jid` with `error`; none online is a refusal only when
    /// `must_exist` (a kick of no one is a mistake; a password change of an offline
    /// account is not).
    fn end_sessions(&self, jid: &str, error: StreamError, must_exist: bool) -> Answer {
        let wanted = match self.served_jid(jid) {
            Ok(wanted) => wanted,
            Err(e) => return e,
        };
        let mut ended = Vec::new();
        for (full, _) in self.matching(Some(&wanted)) {
            if self.server.router.table.close(&full, error.clone()) {
                ended.push(full.to_string());
            }
        }
        if ended.is_empty() && must_exist {
            return refused(1, format!("{jid} has no session"));
        }
        for full in &ended {
            tracing::info!(jid = %full, reason = ?error.text, condition = %error.condition.as_str(), "admin: session ended");
        }
        Answer::Ended { sessions: ended }
    }

    async fn remove_account(&self, jid: &str) -> Answer {
        let bare = match self.served_jid(jid).map(Jid::try_into_full) {
            Ok(Err(bare)) => bare,
            Ok(Ok(_)) => {
                return refused(
                    2,
                    format!("argument JID {jid}: a resource names no account"),
                )
            }
            Err(e) => return e,
        };
        match crate::roster::remove_account(&self.server, &bare).await {
            Ok(true) => {}
            Ok(false) => return refused(1, format!("no account {jid}")),
            Err(e) => return refused(1, format!("database: {e}")),
        }
        tracing::info!(account = %bare, "account removed by the admin");
        // As in-band removal (XEP-0077 §3.2): the account is gone, and so are its sessions.
        let error = StreamError::with_text(StreamCondition::NotAuthorized, "Account removed");
        self.end_sessions(jid, error, false)
    }
}

/// `at` as RFC 3339 text, UTC, to the second.
fn rfc3339(at: std::time::SystemTime) -> String {
    let at = time::OffsetDateTime::from(at);
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
