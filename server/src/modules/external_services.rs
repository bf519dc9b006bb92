//! XEP-0215: External Service Discovery — the STUN and TURN servers an admin lists in
//! `[modules.external_services]`, told to the host's own accounts (audio/video calls need
//! them to get through NATs). With a `secret` shared with the TURN server, restricted
//! services come with credentials that expire after `ttl` seconds, made the way coturn's
//! `use-auth-secret` (the "TURN REST API") checks them: the user name is the expiry time
//! in Unix seconds, a colon and the account, the password the base64 of HMAC-SHA-1 of that
//! user name under the secret. No TURN server is run or asked here.

use std::sync::Arc;

use ::sasl::common::scram::{ScramProvider, Sha1};
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jabberwock_protocol::delay::datetime;
use jabberwock_protocol::extdisco::{self, Credentials, Request};
use jabberwock_protocol::jid::FullJid;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::ScramHash;
use serde::Deserialize;

use super::config::TableError;
use super::{xep, IqHandler, IqRequest, Module, Registrar, Target, Xep};
use crate::accounts::account_of;
use crate::error::store_to_stanza_error;
use crate::live::Snapshot;
use crate::modules::time::now_unix;
use crate::server::Server;

pub struct ExternalServices;

/// `[modules.external_services]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExternalServicesConfig {
    /// The services, in the order they are told.
    services: Vec<ServiceConfig>,
    /// Shared with the TURN server (coturn's `static-auth-secret`); without it no
    /// credentials are made.
    secret: Option<String>,
    /// How long credentials work, in seconds.
    ttl: u64,
}

impl Default for ExternalServicesConfig {
    fn default() -> Self {
        ExternalServicesConfig {
            services: Vec::new(),
            secret: None,
            // A day, as Prosody's and ejabberd's defaults.
            ttl: 86_400,
        }
    }
}

/// The kinds of service XEP-0215 §7 registers that a call needs.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Stun,
    Turn,
    Turns,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Stun => "stun",
            Kind::Turn => "turn",
            Kind::Turns => "turns",
        }
    }

    /// RFC 8489 §18.6 / RFC 8656: 3478, and 5349 over TLS.
    fn default_port(self) -> u16 {
        match self {
            Kind::Stun | Kind::Turn => 3478,
            Kind::Turns => 5349,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Transport {
    Udp,
    Tcp,
}

/// One `[[modules.external_services.services]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceConfig {
    #[serde(rename = "type")]
    kind: Kind,
    host: String,
    port: Option<u16>,
    transport: Option<Transport>,
    #[serde(default)]
    restricted: bool,
    name: Option<String>,
}

impl ServiceConfig {
    fn service(&self) -> extdisco::Service {
        extdisco::Service {
            kind: self.kind.as_str().to_owned(),
            host: self.host.clone(),
            port: Some(self.port.unwrap_or(self.kind.default_port())),
            transport: self.transport.map(|t| {
                match t {
                    Transport::Udp => "udp",
                    Transport::Tcp => "tcp",
                }
                .to_owned()
            }),
            name: self.name.clone(),
            restricted: self.restricted,
            credentials: None,
        }
    }
}

/// The TURN REST API credentials for `account` until `expires` (Unix seconds) under
/// `secret`: `EXPIRES:ACCOUNT`, and base64(HMAC-SHA-1(secret, that)).
fn turn_credentials(secret: &str, account: &str, expires: i64) -> Credentials {
    let username = format!("{expires}:{account}");
    // HMAC takes keys of any length: this cannot fail.
    let mac = Sha1::hmac(username.as_bytes(), secret.as_bytes()).unwrap_or_default();
    Credentials {
        username,
        password: B64.encode(mac),
        expires: datetime(expires),
    }
}

/// The services in force: a reload's list, secret and ttl apply to the next request.
struct Handler(Arc<Snapshot<ExternalServicesConfig>>);

impl ExternalServicesConfig {
    /// `service` as told to `asker`: a restricted service with the credentials made for it
    /// when a secret is configured.
    fn told(&self, service: &ServiceConfig, asker: &str) -> extdisco::Service {
        let mut told = service.service();
        if let (true, Some(secret)) = (service.restricted, &self.secret) {
            let expires = now_unix().saturating_add(self.ttl as i64);
            told.credentials = Some(turn_credentials(secret, asker, expires));
        }
        told
    }
}

/// Whether `from` is one of this server's accounts with a password: not another server's
/// user, and not a guest (a SASL ANONYMOUS account has no credentials). TURN relays cost
/// the operator bandwidth, so XEP-0215 §3 leaves it to the server whom it tells.
async fn is_own_account(server: &Server, from: &FullJid) -> Result<bool, StanzaError> {
    if !server.serves(from.domain().as_str()) {
        return Ok(false);
    }
    let account = account_of(&from.to_bare());
    for hash in [ScramHash::Sha256, ScramHash::Sha1] {
        let credential = server
            .store
            .credential(&account, hash)
            .await
            .map_err(store_to_stanza_error)?;
        if credential.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

#[async_trait]
impl IqHandler for Handler {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let parsed = Request::parse(request.payload)
            .map_err(|e| StanzaError::with_text(Condition::BadRequest, e.to_string()))?;
        if !is_own_account(request.server, request.from).await? {
            return Err(StanzaError::new(Condition::Forbidden));
        }
        let asker = request.from.to_bare();
        let config = self.0.get();
        match parsed {
            Request::Services { kind } => {
                let services: Vec<extdisco::Service> = config
                    .services
                    .iter()
                    .filter(|s| kind.as_deref().is_none_or(|k| s.kind.as_str() == k))
                    .map(|s| config.told(s, asker.as_str()))
                    .collect();
                Ok(Some(extdisco::services_result(kind.as_deref(), &services)))
            }
            // §3.3: the service named, with credentials; none by that name: item-not-found.
            Request::Credentials { host, kind, port } => {
                let found = config.services.iter().find(|s| {
                    s.host == host
                        && s.kind.as_str() == kind
                        && port.is_none_or(|p| p == s.port.unwrap_or(s.kind.default_port()))
                });
                let found = found.ok_or_else(|| StanzaError::new(Condition::ItemNotFound))?;
                let service = config.told(found, asker.as_str());
                if found.restricted && service.credentials.is_none() {
                    // Restricted, but this server has nothing to give for it.
                    return Err(StanzaError::new(Condition::NotAllowed));
                }
                Ok(Some(extdisco::credentials_result(&service)))
            }
        }
    }
}

fn table_error(path: &str, message: impl Into<String>) -> TableError {
    TableError {
        path: path.split('.').map(str::to_owned).collect(),
        message: message.into(),
    }
}

impl Module for ExternalServices {
    const NAME: &'static str = "external_services";
    const XEPS: &'static [Xep] = &[xep(215, "1.0.0")];
    type Config = ExternalServicesConfig;

    fn check(config: &ExternalServicesConfig, _hosts: &[String]) -> Result<(), TableError> {
        for (i, service) in config.services.iter().enumerate() {
            if service.host.trim().is_empty() {
                return Err(table_error(
                    &format!("services[{i}].host"),
                    "must name a host or an address",
                ));
            }
            if service.port == Some(0) {
                return Err(table_error(
                    &format!("services[{i}].port"),
                    "must be 1 to 65535",
                ));
            }
            if service.restricted && config.secret.is_none() {
                return Err(table_error(
                    &format!("services[{i}].restricted"),
                    "a restricted service needs `secret`, to make its credentials",
                ));
            }
        }
        if config.secret.as_deref().is_some_and(str::is_empty) {
            return Err(table_error("secret", "must not be empty"));
        }
        if config.ttl == 0 || config.ttl > i64::MAX as u64 / 2 {
            return Err(table_error("ttl", "must be a number of seconds above 0"));
        }
        Ok(())
    }

    fn register(config: ExternalServicesConfig, registry: &mut Registrar<'_>) {
        // Nothing to tell: nothing to offer, and services listed later need a restart to
        // be offered (the disco feature is placed at start).
        if config.services.is_empty() {
            return;
        }
        let config = Arc::new(Snapshot::new(config));
        registry.on_reload_swap(&["services", "secret", "ttl"], config.clone());
        let handler = Arc::new(Handler(config));
        for name in ["services", "credentials"] {
            registry.iq(
                IqType::Get,
                Target::Host,
                ns::EXTDISCO,
                name,
                handler.clone(),
            );
        }
        registry.disco_feature(Target::Host, ns::EXTDISCO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_the_turn_rest_api_ones() {
        // coturn checks base64(HMAC-SHA-1(static-auth-secret, username)); RFC 2202's
        // second HMAC-SHA-1 test case gives the MAC of a known key and text.
        let mac = Sha1::hmac(b"what do ya want for nothing?", b"Jefe").unwrap();
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        let c = turn_credentials("Jefe", "alice@example.org", 1_700_000_000);
        assert_eq!(c.username, "1700000000:alice@example.org");
        assert_eq!(c.expires, "2023-11-14T22:13:20Z");
        let mac = Sha1::hmac(c.username.as_bytes(), b"Jefe").unwrap();
        assert_eq!(c.password, B64.encode(mac));
    }

    fn parsed(toml: &str) -> Result<(), TableError> {
        let table: toml::Table = toml.parse().unwrap();
        let config = super::super::config::parse::<ExternalServicesConfig>(table)?;
        ExternalServices::check(&config, &[])
    }

    #[test]
    fn config_mistakes_name_their_key() {
        let e =
            parsed("[[services]]\ntype = \"turn\"\nhost = \"t\"\nrestricted = true\n").unwrap_err();
        assert_eq!(e.path, ["services[0]", "restricted"]);
        let e = parsed("[[services]]\ntype = \"turm\"\nhost = \"t\"\n").unwrap_err();
        assert_eq!(e.path, ["services[0]", "type"]);
        let e = parsed("[[services]]\ntype = \"stun\"\nhost = \"t\"\ntransport = \"sctp\"\n")
            .unwrap_err();
        assert_eq!(e.path, ["services[0]", "transport"]);
        let e = parsed("secret = \"s\"\nttl = 0\n").unwrap_err();
        assert_eq!(e.path, ["ttl"]);
        assert!(parsed(
            "secret = \"s\"\n[[services]]\ntype = \"turns\"\nhost = \"t\"\nrestricted = true\n"
        )
        .is_ok());
    }
}
