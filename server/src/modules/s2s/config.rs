//! `[modules.s2s]`: where federation listens, where peers are, its timeouts, whom it
//! trusts and refuses, and its limits per peer.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::modules::config::TableError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S2sConfig {
    /// Where other servers connect (RFC 6120 §14.7: port 5269).
    pub listen: Vec<SocketAddr>,
    /// Where other servers connect with TLS from the first byte (XEP-0368 direct TLS, ALPN
    /// `xmpp-server`), found through `_xmpps-server._tcp` SRV records; none by default.
    pub direct_tls_listen: Vec<SocketAddr>,
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
    /// PEM file of CA certificates trusted beside the system's roots for peers'
    /// certificates (a lab's or a private federation's CA). `""`: the system's only.
    #[serde(deserialize_with = "crate::config::empty_path_as_none")]
    pub ca_file: Option<PathBuf>,
    /// Remote domains refused both ways: their streams are closed with
    /// `policy-violation`, stanzas for them bounce with `not-allowed`.
    pub deny: Vec<String>,
    /// The policy for remote domains without a table of their own in `domains`.
    pub require_valid_certificate: bool,
    pub allow_dialback: bool,
    /// A policy per remote domain (`[modules.s2s.domains."b.example"]`), each key
    /// defaulting to the one above.
    pub domains: BTreeMap<String, DomainPolicy>,
    /// Incoming streams open at once from one IP address; more are refused with
    /// `policy-violation`.
    pub max_streams_per_address: usize,
    /// Incoming streams authenticated at once for one remote domain; more are refused
    /// with `policy-violation`.
    pub max_streams_per_domain: usize,
}

/// How one remote domain must authenticate, both ways.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DomainPolicy {
    /// Its certificate must be valid for it (RFC 6125): no stream otherwise, whatever
    /// dialback would say.
    pub require_valid_certificate: Option<bool>,
    /// XEP-0220 dialback may authenticate it (else only SASL EXTERNAL, XEP-0178).
    pub allow_dialback: Option<bool>,
}

/// The policy that applies to one remote domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub require_valid_certificate: bool,
    pub allow_dialback: bool,
}

impl Default for S2sConfig {
    fn default() -> Self {
        S2sConfig {
            listen: vec![
                SocketAddr::from(([0, 0, 0, 0], 5269)),
                SocketAddr::from(([0u16; 8], 5269)),
            ],
            direct_tls_listen: Vec::new(),
            peers: BTreeMap::new(),
            resolvers: Vec::new(),
            retry_after: 30,
            connect_timeout: 10,
            idle_timeout: 600,
            require_encryption: true,
            max_queue: 1000,
            ca_file: None,
            deny: Vec::new(),
            require_valid_certificate: false,
            allow_dialback: true,
            domains: BTreeMap::new(),
            // A server with many domains may open a stream per pair of domains (and
            // dialback opens more), so an address gets room for several.
            max_streams_per_address: 32,
            max_streams_per_domain: 8,
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

    /// Whether `domain` is on the deny list.
    pub fn denied(&self, domain: &str) -> bool {
        self.deny.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// The policy for `domain`: its own table's keys, the defaults for the rest.
    pub fn policy(&self, domain: &str) -> Policy {
        let own = self
            .domains
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(domain))
            .map(|(_, p)| p.clone())
            .unwrap_or_default();
        Policy {
            require_valid_certificate: own
                .require_valid_certificate
                .unwrap_or(self.require_valid_certificate),
            allow_dialback: own.allow_dialback.unwrap_or(self.allow_dialback),
        }
    }

    /// Every peer address must be `IP:port` (no names to resolve yet), the CA file must
    /// hold certificates, limits must let something through.
    pub fn check(&self) -> Result<(), TableError> {
        if let Some(path) = &self.ca_file {
            if let Err(e) = super::certificate::read_ca_file(path) {
                return Err(TableError {
                    path: vec!["ca_file".to_owned()],
                    message: format!("{}: {e}", path.display()),
                });
            }
        }
        for (key, value) in [
            ("max_streams_per_address", self.max_streams_per_address),
            ("max_streams_per_domain", self.max_streams_per_domain),
        ] {
            if value == 0 {
                return Err(TableError {
                    path: vec![key.to_owned()],
                    message: "must be at least 1".to_owned(),
                });
            }
        }
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
