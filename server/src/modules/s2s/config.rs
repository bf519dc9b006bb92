//! `[modules.s2s]`: where federation listens, where peers are, and its timeouts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::modules::config::TableError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S2sConfig {
    /// Where other servers connect (RFC 6120 §14.7: port 5269).
    pub listen: Vec<SocketAddr>,
    /// Remote domains and the address each is reached at (`"b.test" = "127.0.0.1:5270"`),
    /// asked before DNS: a domain listed here is never looked up.
    pub peers: BTreeMap<String, String>,
    /// Nameservers asked for SRV, A and AAAA records (`["127.0.0.53:53"]`); empty = the
    /// system's (/etc/resolv.conf).
    pub resolvers: Vec<SocketAddr>,
    /// Seconds a domain that could not be reached is not tried again: stanzas for it
    /// bounce at once with the same error, so a dead domain costs one lookup and one
    /// connection attempt per period rather than per stanza. 0 = try every time.
    pub retry_after: u64,
    /// Seconds to connect, STARTTLS and pass dialback before queued stanzas bounce with
    /// `remote-server-timeout`.
    pub connect_timeout: u64,
    /// Seconds an outgoing or incoming stream may carry nothing before it is closed.
    pub idle_timeout: u64,
    /// STARTTLS before dialback, both ways (RFC 6120 §5.1 recommends it).
    pub require_encryption: bool,
    /// Stanzas queued per remote domain while its stream is being set up; more bounce.
    pub max_queue: usize,
}

impl Default for S2sConfig {
    fn default() -> Self {
        S2sConfig {
            listen: vec![
                SocketAddr::from(([0, 0, 0, 0], 5269)),
                SocketAddr::from(([0u16; 8], 5269)),
            ],
            peers: BTreeMap::new(),
            resolvers: Vec::new(),
            retry_after: 30,
            connect_timeout: 10,
            idle_timeout: 600,
            require_encryption: true,
            max_queue: 1000,
        }
    }
}

impl S2sConfig {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout)
    }

    pub fn retry_after(&self) -> Duration {
        Duration::from_secs(self.retry_after)
    }

    /// The address `domain` is reached at, if the static map has it.
    pub fn peer(&self, domain: &str) -> Option<SocketAddr> {
        self.peers.get(domain).and_then(|a| a.parse().ok())
    }

    /// Every peer address must be `IP:port` (no names to resolve yet).
    pub fn check(&self) -> Result<(), TableError> {
        for (domain, addr) in &self.peers {
            if addr.parse::<SocketAddr>().is_err() {
                return Err(TableError {
                    path: vec!["peers".to_owned(), domain.clone()],
                    message: format!("expected an address as IP:port, found {addr:?}"),
                });
            }
        }
        if self.connect_timeout == 0 {
            return Err(TableError {
                path: vec!["connect_timeout".to_owned()],
                message: "must be at least 1 second".to_owned(),
            });
        }
        Ok(())
    }
}
