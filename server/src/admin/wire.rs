//! The admin socket's protocol: the client writes one [`Request`] as a JSON line, the
//! server answers one [`Answer`] as a JSON line and closes. Ours alone; both ends are this
//! binary, so it changes with it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    Status,
    /// Every session, or those of one JID (bare: the account's; full: that resource).
    Sessions {
        jid: Option<String>,
    },
    /// Ends the sessions of `jid` with `policy-violation` and `reason` as its text.
    Kick {
        jid: String,
        reason: String,
    },
    /// SIGHUP's reload.
    Reload,
    /// Removes the account as in-band removal does (contacts told), ending its sessions.
    RemoveAccount {
        jid: String,
    },
    /// The account's password changed: its sessions end (`reset`).
    PasswordChanged {
        jid: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "kebab-case")]
pub enum Answer {
    Status(Status),
    Sessions {
        sessions: Vec<SessionRow>,
    },
    /// The full JIDs of the sessions told to end.
    Ended {
        sessions: Vec<String>,
    },
    Reloaded(ReloadReport),
    /// Refused; `code` is the exit code the command ends with (1 or 2).
    Error {
        code: u8,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub uptime_secs: u64,
    pub listeners: Vec<ListenerRow>,
    pub hosts: Vec<String>,
    /// Sessions by client kind (`tcp`, `tls`, `flash`, `ruffle`, `websocket`, `bosh`).
    pub sessions: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerRow {
    pub kind: String,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRow {
    pub jid: String,
    pub peer: String,
    pub kind: String,
    /// RFC 3339, UTC.
    pub since: String,
}

/// What a reload did: each entry a sentence naming the key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    pub applied: Vec<String>,
    pub needs_restart: Vec<String>,
    pub refused: Vec<String>,
    /// Applied, but with something the admin should fix (a new host the certificate does
    /// not name).
    #[serde(default)]
    pub warnings: Vec<String>,
}
