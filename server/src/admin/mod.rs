//! The admin control socket: a Unix socket in `data_dir` (`admin.sock`, mode 0600) through
//! which the `jabberwock` command asks the running server for its status and its sessions,
//! ends sessions and reloads the config (docs/admin.md).
//!
//! - [`wire`]: the requests and answers, one JSON object per line each way.
//! - [`socket`]: the server's side: the socket file's life and the request handling.
//! - [`client`]: the command's side.
//! - [`SessionInfo`]: what a session shows an admin, kept in its module state.

pub mod client;
pub mod socket;
pub mod wire;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::modules::SessionState;
use crate::stream::connection::{ClientKind, Connection};

/// The socket's name inside `data_dir`: the server and the command find it from the same
/// config.
const SOCKET_NAME: &str = "admin.sock";

/// Where the admin socket of a server with this `data_dir` is.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// A session's connection as `jabberwock sessions` lists it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub peer: SocketAddr,
    pub kind: ClientKind,
    pub since: SystemTime,
}

impl SessionInfo {
    /// The info of a session now served over `conn`; a resumed session (XEP-0198) keeps
    /// the start `state` already holds.
    pub fn of(conn: &Connection, state: &SessionState) -> SessionInfo {
        SessionInfo {
            peer: conn.peer,
            kind: conn.client_kind(),
            since: state
                .get::<SessionInfo>()
                .map_or_else(SystemTime::now, |info| info.since),
        }
    }
}
