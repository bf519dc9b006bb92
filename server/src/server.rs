//! What every connection task shares: configuration, storage, the router, the module
//! registry and the TLS acceptor. Read-only after start-up except through the router's and
//! the throttle's own synchronisation, the limits a reload swaps (`live.rs`) and the hosts it
//! swaps (`modules/hosts.rs`).

use std::sync::Arc;

use jabberwock_protocol::policy::{self, PolicyRule};
use jabberwock_protocol::xml::reader::Limits;
use jabberwock_storage::Store;
use tokio_rustls::TlsAcceptor;

use crate::c2s::throttle::AuthThrottle;
use crate::config::{Config, HostConfig};
use crate::live::{ConnectionCap, Live, LiveConfig};
use crate::modules::Registry;
use crate::per_ip::{IpConnections, RegistrationRate};
use crate::router::Router;

pub struct Server {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub router: Router,
    pub modules: Registry,
    pub tls: TlsAcceptor,
    /// The certificate `tls` serves, for other TLS configs that present it (federation's
    /// outgoing and incoming streams); `None` until [`Server::with_certificate`].
    pub certificate: Option<Arc<crate::tls::CurrentCert>>,
    pub throttle: AuthThrottle,
    /// One permit per open client connection, TCP or WebSocket (`c2s.max_connections`).
    pub connections: ConnectionCap,
    /// The limits a reload changes (`live.rs`); `config` keeps them as they were at start.
    pub live: LiveConfig,
    /// Open client connections per address (`c2s.max_connections_per_ip`).
    pub per_ip: Arc<IpConnections>,
    /// In-band registrations per address (`auth.registration_interval`).
    pub registrations: RegistrationRate,
    /// The secret behind the SCRAM salts shown for unknown users (`c2s/sasl.rs`); random
    /// per process until [`Server::with_decoy_key`] sets the one kept in `data_dir`.
    pub decoy_key: Vec<u8>,
    /// What this node's guest accounts are tagged with (`node_id.rs`); random per process
    /// until [`Server::with_node_id`] sets the one kept in `data_dir`.
    pub node_id: String,
    /// The HTTP stack, for HTTP requests arriving on a c2s port (set while it serves).
    pub http_handoff: std::sync::Mutex<Option<crate::http::conn::Handoff>>,
    /// XEP-0198 sessions that can be resumed, by id.
    pub resumptions: crate::session::Resumptions,
    policy: Vec<u8>,
}

impl Server {
    pub fn new(config: Config, store: Arc<dyn Store>, tls: TlsAcceptor) -> Self {
        let policy = policy_for(&config, &config.policy_ports());
        Server {
            throttle: AuthThrottle::new(config.c2s.auth_failure_delay),
            connections: ConnectionCap::new(config.c2s.max_connections),
            live: LiveConfig::new(Live::from_config(&config)),
            per_ip: Arc::new(IpConnections::new(&config)),
            registrations: RegistrationRate::new(&config),
            decoy_key: crate::accounts::random_secret(),
            node_id: crate::node_id::random(),
            modules: Registry::build(&config),
            router: Router::new(),
            http_handoff: std::sync::Mutex::new(None),
            resumptions: Default::default(),
            config,
            store,
            tls,
            certificate: None,
            policy,
        }
    }

    /// Shares `current`, the certificate the c2s listeners serve, with other TLS configs.
    pub fn with_certificate(mut self, current: Arc<crate::tls::CurrentCert>) -> Self {
        self.certificate = Some(current);
        self
    }

    /// Uses `key` (kept in `data_dir`, see [`crate::accounts::decoy_key`]) for decoy salts.
    pub fn with_decoy_key(mut self, key: Vec<u8>) -> Self {
        self.decoy_key = key;
        self
    }

    /// Tags this node's guests with `id` (kept in `data_dir`, see [`crate::node_id`]).
    pub fn with_node_id(mut self, id: String) -> Self {
        self.node_id = id;
        self
    }

    /// The host named in errors sent before we know which host the client wanted: the
    /// first of the hosts in force.
    pub fn default_host(&self) -> String {
        self.modules
            .host_names()
            .into_iter()
            .next()
            .unwrap_or_else(|| "localhost".to_owned())
    }

    /// The settings of virtual host `domain`, as the last reload left them (`config.hosts`
    /// stays as started): matched case-insensitively, one trailing dot ignored. Owned, so
    /// nothing is held while the caller awaits; one read lock and an `Arc` clone.
    pub fn host(&self, domain: &str) -> Option<Arc<HostConfig>> {
        self.modules.host(domain)
    }

    /// Whether `domain` is one of the hosts in force ([`Server::host`] without the clone).
    pub fn serves(&self, domain: &str) -> bool {
        self.modules.serves_host(domain)
    }

    /// The hosts in force, sorted.
    pub fn hosts(&self) -> Vec<String> {
        self.modules.host_names()
    }

    /// The parser's limits for a new connection (they hold for its lifetime).
    pub fn limits(&self) -> Limits {
        let live = self.live.get();
        let c = &live.c2s;
        Limits {
            max_stanza_bytes: c.max_stanza_bytes,
            max_depth: c.max_depth,
            max_attributes: c.max_attributes,
            max_header_bytes: c.max_header_bytes,
        }
    }

    /// The Flash socket policy document, built once from config (no trailing NUL).
    pub fn policy(&self) -> &[u8] {
        &self.policy
    }
}

/// The policy document: one `<allow-access-from/>` per configured domain, all for `ports`.
fn policy_for(config: &Config, ports: &str) -> Vec<u8> {
    let rules: Vec<PolicyRule> = config
        .flash
        .policy_domains
        .iter()
        .map(|domain| PolicyRule {
            domain: domain.clone(),
            to_ports: ports.to_owned(),
        })
        .collect();
    policy::policy_document(&rules, Some("master-only"))
}
