//! XEP-0363: HTTP File Upload, as a service beside each host (`upload.HOST`). A local
//! account asks the service for a slot (§4); the answer (§5) names a PUT URL on our HTTP
//! listeners whose path holds a random, unguessable slot id, stored with the owner, size,
//! content type and the slot's deadline; the client PUTs the file there (`http.rs`) and
//! shares the GET URL (the same one).
//!
//! **Design:** the slot row (storage's `UploadStore`) is the truth about a file: a file is
//! served only once its row says the upload completed, which happens only after its
//! bytes were written whole, fsync'd and renamed into place (`files.rs`), so a killed
//! upload leaves nothing served and takes no quota. Quotas count complete files only, and
//! are checked when a slot is given and again, holding the owner's account, when an
//! upload completes, so uploads racing each other cannot pass them together. Expiry is a
//! periodic sweep of bounded batches (`files.rs`). A removed account's uploads go with
//! it (`AccountDeleted`): a PUT still coming in for one of its slots can't complete, as
//! completing holds the owner's account, so its bytes are removed too.
//!
//! A reload's new options apply to the next slot request (and the next sweep, and the
//! next upload's completion for the quota); a slot given before keeps the size, type and
//! deadline stored with it. The domain is placed once, at start.
//!
//! - `mod.rs`: the module, its config, the service and the slot request;
//! - `http.rs`: PUT, GET and HEAD on the slot URLs;
//! - `files.rs`: the files on disk under `data_dir/uploads`, and the sweep.

mod files;
mod http;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, StanzaError, StanzaKind};
use jabberwock_protocol::upload::{self as wire, RequestError, Slot, SlotRequest};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::{SlotGranted, StoreError, UploadSlot};
use serde::Deserialize;

use super::config::TableError;
use super::registry::Identity;
use super::{
    xep, DiscoExtension, Event, EventKind, Flow, Hook, IqHandler, IqRequest, Module, Registrar,
    Service, ServiceDelivery, Target, Xep,
};
use crate::live::Snapshot;
use crate::server::Server;
use crate::StartError;

pub struct Upload;

/// `[modules.upload]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadConfig {
    /// The service's domain on each host; `{host}` is the host's name.
    domain: String,
    /// Largest file taken, in bytes (§3 `max-file-size`).
    max_file_size: u64,
    /// Content types a slot may be asked for (`image/*` names a whole type); empty: any.
    allowed_content_types: Vec<String>,
    /// Content types refused, even when allowed above.
    denied_content_types: Vec<String>,
    /// Bytes of complete files each account may keep; 0: no limit.
    quota: u64,
    /// Days a file is kept after its upload completed; 0: kept until removed by hand.
    expiry_days: u64,
    /// Seconds a slot waits for its PUT.
    slot_lifetime: u64,
    /// The base URL of the slot URLs (`https://upload.example.com`): where clients reach
    /// our HTTP listener. Empty: `http://HOST:PORT` of `http.listen` (or
    /// `https://HOST:PORT` of `http.tls_listen`).
    public_url: String,
}

impl Default for UploadConfig {
    fn default() -> UploadConfig {
        UploadConfig {
            domain: "upload.{host}".to_owned(),
            // Prosody's mod_http_file_share default.
            max_file_size: 10 * 1024 * 1024,
            allowed_content_types: Vec::new(),
            denied_content_types: Vec::new(),
            quota: 0,
            expiry_days: 7,
            slot_lifetime: 300,
            public_url: String::new(),
        }
    }
}

/// Where the slot URLs live: every route is below it.
const PREFIX: &str = "/upload";

impl UploadConfig {
    fn domain_of(&self, host: &str) -> String {
        self.domain.replace("{host}", host).to_lowercase()
    }

    fn quota(&self) -> Option<i64> {
        (self.quota > 0).then(|| i64::try_from(self.quota).unwrap_or(i64::MAX))
    }

    /// Whether a slot may be asked for this content type (`None`: the client named none).
    fn allows(&self, content_type: Option<&str>) -> bool {
        let essence = content_type.map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let matches = |pattern: &String| {
            let Some(essence) = &essence else {
                return false;
            };
            let pattern = pattern.to_ascii_lowercase();
            match pattern.strip_suffix("/*") {
                Some(kind) => essence.split('/').next() == Some(kind),
                None => *essence == pattern,
            }
        };
        let allowed =
            self.allowed_content_types.is_empty() || self.allowed_content_types.iter().any(matches);
        allowed && !self.denied_content_types.iter().any(matches)
    }
}

/// The base URL slot URLs start with, for `host`: `public_url`, else derived from the HTTP
/// listeners (the plain one, unless a certificate is configured and there is a TLS one:
/// a generated self-signed certificate is one no client trusts).
fn base_url(config: &UploadConfig, server: &crate::config::Config, host: &str) -> Option<String> {
    if !config.public_url.is_empty() {
        return Some(config.public_url.trim_end_matches('/').to_owned());
    }
    let http = &server.http;
    let tls_first = server.tls.cert.is_some() && !http.tls_listen.is_empty();
    let (scheme, addr) = match (tls_first, http.listen.first(), http.tls_listen.first()) {
        (false, Some(addr), _) => ("http", addr),
        (_, _, Some(addr)) => ("https", addr),
        (true, Some(addr), None) => ("http", addr),
        (_, None, None) => return None,
    };
    Some(format!("{scheme}://{host}:{}", addr.port()))
}

/// Why a slot is not given, each answered as XEP-0363 §6 says ([`From`] below is the one
/// place they become stanza errors).
#[derive(Debug, thiserror::Error)]
enum SlotRefused {
    #[error("{0}")]
    BadRequest(#[from] RequestError),
    #[error("file too large: at most {max} bytes")]
    TooLarge { max: u64 },
    #[error("content type not allowed here")]
    ContentType,
    #[error("upload quota exceeded: {used} of {quota} bytes in use")]
    Quota { used: i64, quota: u64 },
    #[error("only accounts of this server may upload")]
    NotLocal,
    #[error("guest accounts can't upload files")]
    Guest,
    #[error("no HTTP listener to upload to")]
    NoListener,
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl From<SlotRefused> for StanzaError {
    fn from(refused: SlotRefused) -> StanzaError {
        let text = refused.to_string();
        match refused {
            SlotRefused::BadRequest(_) => StanzaError::with_text(Condition::BadRequest, text),
            // §6.1: not-acceptable with the limit in `file-too-large`.
            SlotRefused::TooLarge { max } => StanzaError::with_text(Condition::NotAcceptable, text)
                .with_app(wire::file_too_large(max)),
            SlotRefused::ContentType => StanzaError::with_text(Condition::NotAcceptable, text),
            // §6.2: a quota reached is resource-constraint (type wait).
            SlotRefused::Quota { .. } => {
                StanzaError::with_text(Condition::ResourceConstraint, text)
            }
            // §6.3: not allowed to upload.
            SlotRefused::NotLocal | SlotRefused::Guest => {
                StanzaError::with_text(Condition::Forbidden, text)
            }
            SlotRefused::NoListener => {
                tracing::error!("upload slot asked for, but no HTTP listener is bound");
                StanzaError::new(Condition::InternalServerError)
            }
            SlotRefused::Storage(e) => crate::error::store_to_stanza_error(e),
        }
    }
}

/// What the service, the slot request handler and the HTTP routes share.
struct Uploads {
    /// The options in force (the domain as the service started with it).
    config: Arc<Snapshot<UploadConfig>>,
    files: files::Files,
    /// The sweep runs once however many domains the service has.
    sweeping: AtomicBool,
}

/// §4: a slot request to the service's domain.
struct SlotRequests(Arc<Uploads>);

#[async_trait]
impl IqHandler for SlotRequests {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        Ok(Some(self.slot(&request).await?.to_element()))
    }
}

impl SlotRequests {
    async fn slot(&self, request: &IqRequest<'_>) -> Result<Slot, SlotRefused> {
        let config = &*self.0.config.get();
        let server = request.server;
        let domain = request.to.domain().as_str();
        let host = server
            .modules
            .service(domain)
            .map(|s| s.host.clone())
            .ok_or(SlotRefused::NotLocal)?;
        // Prosody's and ejabberd's default: the users of the host the service belongs to.
        if request.from.domain().as_str() != host || request.from.node().is_none() {
            return Err(SlotRefused::NotLocal);
        }
        let wanted = SlotRequest::parse(request.payload)?;
        if wanted.size > config.max_file_size {
            return Err(SlotRefused::TooLarge {
                max: config.max_file_size,
            });
        }
        if !config.allows(wanted.content_type.as_deref()) {
            return Err(SlotRefused::ContentType);
        }
        let owner = crate::accounts::account_of(&request.from.to_bare());
        if crate::accounts::is_guest(server.store.as_ref(), &owner).await? {
            return Err(SlotRefused::Guest);
        }
        let now = files::unix_now();
        let slot = UploadSlot {
            id: files::new_slot_id(),
            owner,
            filename: wanted.filename,
            // At most max_file_size, which a u64 config allows past i64: clamp.
            size: i64::try_from(wanted.size).unwrap_or(i64::MAX),
            content_type: wanted.content_type,
            created_at: now,
            slot_expires_at: now.saturating_add(config.slot_lifetime as i64),
            completed_at: None,
        };
        match server.store.add_upload_slot(&slot, config.quota()).await? {
            SlotGranted::Granted => {}
            SlotGranted::QuotaExceeded { used } => {
                return Err(SlotRefused::Quota {
                    used,
                    quota: config.quota,
                })
            }
        }
        // The listener's address is known once bound: derived when asked.
        let base = base_url(config, &server.config, &host).ok_or(SlotRefused::NoListener)?;
        let url = format!("{base}{}", http::slot_path(&slot.id, &slot.filename));
        tracing::info!(owner = %request.from.to_bare(), slot = %slot.id, size = slot.size, "upload slot given");
        Ok(Slot {
            put: url.clone(),
            put_headers: Vec::new(),
            get: url,
        })
    }
}

/// §3: the largest file taken, in the service's disco#info.
struct MaxFileSize(Arc<Uploads>);

impl DiscoExtension for MaxFileSize {
    fn form(&self) -> Option<Element> {
        Some(wire::max_file_size_form(self.0.config.get().max_file_size))
    }
}

/// The service on `upload.HOST`: IQs to its bare domain are the registered handlers'
/// (disco#info, slot requests); anything else is answered as nothing here.
struct UploadService(Arc<Uploads>);

#[async_trait]
impl Service for UploadService {
    fn domain(&self, host: &str) -> Option<String> {
        Some(self.0.config.get().domain_of(host))
    }

    fn name(&self) -> Option<&'static str> {
        Some("HTTP File Upload")
    }

    /// The directories, what a killed run left half-written, and the expiry sweep.
    async fn start(&self, server: &Server, _host: &str, _domain: &str) -> Result<(), StartError> {
        if self.0.sweeping.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.0.files.prepare(&server.config.data_dir)?;
        let uploads = self.0.clone();
        let store = server.store.clone();
        tokio::spawn(async move { uploads.files.sweep_forever(store, &uploads.config).await });
        Ok(())
    }

    async fn receive(&self, delivery: ServiceDelivery<'_>) {
        let ServiceDelivery { server, stanza, .. } = delivery;
        // RFC 6120 §8.3: never answer an error or a result; IQ requests get an error.
        if stanza.kind() != StanzaKind::Iq
            || !matches!(stanza.iq_type(), Some(IqType::Get | IqType::Set))
        {
            return;
        }
        let error = StanzaError::new(Condition::ServiceUnavailable);
        if let Ok(reply) =
            jabberwock_protocol::stanza::Stanza::from_element(stanza.error_reply(&error))
        {
            server.router.route_from_service(server, reply).await;
        }
    }
}

/// A removed account's slots and files go with it (`files::remove_account`).
struct AccountRemoved;

#[async_trait]
impl Hook for AccountRemoved {
    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        if let Event::AccountDeleted { account } = event {
            let owner = crate::accounts::account_of(account);
            files::remove_account(server.store.as_ref(), &server.config.data_dir, &owner).await;
        }
        Flow::Continue
    }
}

impl Module for Upload {
    const NAME: &'static str = "upload";
    const XEPS: &'static [Xep] = &[xep(363, "1.1.0")];
    // Off unless enabled: it stores users' files on this machine's disk.
    const ON_BY_DEFAULT: bool = false;
    const NEEDS_HTTP: bool = true;
    type Config = UploadConfig;

    fn check(config: &UploadConfig, _hosts: &[String]) -> Result<(), TableError> {
        let err = |key: &str, message: &str| TableError {
            path: vec![key.to_owned()],
            message: message.to_owned(),
        };
        if config.max_file_size == 0 || config.max_file_size > i64::MAX as u64 {
            return Err(err("max_file_size", "must be at least 1 byte"));
        }
        if config.slot_lifetime == 0 || config.slot_lifetime > 86_400 {
            return Err(err("slot_lifetime", "must be 1 to 86400 seconds"));
        }
        if config.expiry_days > 36_500 {
            return Err(err("expiry_days", "must be at most 36500 (0: never)"));
        }
        if config.domain.trim().is_empty() {
            return Err(err("domain", "must not be empty"));
        }
        let url = &config.public_url;
        let valid_url = url.is_empty()
            || ["http://", "https://"].iter().any(|scheme| {
                url.strip_prefix(scheme).is_some_and(|rest| {
                    !rest.is_empty() && !rest.contains(['?', '#', ' ', ';', ',', '\''])
                })
            });
        if !valid_url {
            return Err(err("public_url", "must be an http:// or https:// URL"));
        }
        let lists = [
            ("allowed_content_types", &config.allowed_content_types),
            ("denied_content_types", &config.denied_content_types),
        ];
        for (key, list) in lists {
            if let Some(bad) = list.iter().find(|t| !is_type_pattern(t)) {
                return Err(err(
                    key,
                    &format!("{bad:?} is not a content type (`image/png`, `image/*`)"),
                ));
            }
        }
        Ok(())
    }

    fn register(config: UploadConfig, registry: &mut Registrar<'_>) {
        let config = Arc::new(Snapshot::new(config));
        registry.on_reload_swap(
            &[
                "max_file_size",
                "allowed_content_types",
                "denied_content_types",
                "quota",
                "expiry_days",
                "slot_lifetime",
                "public_url",
            ],
            config.clone(),
        );
        let uploads = Arc::new(Uploads {
            files: files::Files::default(),
            sweeping: AtomicBool::new(false),
            config,
        });
        registry.service(Arc::new(UploadService(uploads.clone())));
        // §3: the service is a file store speaking XEP-0363, with its limit.
        registry.disco_identity(
            Target::Service,
            Identity {
                category: "store",
                kind: "file",
                name: Some("HTTP File Upload"),
            },
        );
        registry.disco_feature(Target::Service, ns::HTTP_UPLOAD);
        registry.disco_extension(Target::Service, Arc::new(MaxFileSize(uploads.clone())));
        registry.iq(
            IqType::Get,
            Target::Service,
            ns::HTTP_UPLOAD,
            "request",
            Arc::new(SlotRequests(uploads.clone())),
        );
        registry.http_routes(Arc::new(http::Routes(uploads)));
        registry.hook(EventKind::AccountDeleted, 0, Arc::new(AccountRemoved));
    }
}

/// `type/subtype` or `type/*`.
fn is_type_pattern(text: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    text.split_once('/')
        .is_some_and(|(kind, sub)| token(kind) && (sub == "*" || token(sub)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_rules() {
        let mut config = UploadConfig::default();
        assert!(config.allows(None) && config.allows(Some("application/x-anything")));
        config.allowed_content_types = vec!["image/*".into(), "text/plain".into()];
        config.denied_content_types = vec!["image/svg+xml".into()];
        assert!(config.allows(Some("image/png")));
        assert!(config.allows(Some("Text/Plain; charset=utf-8")));
        assert!(!config.allows(Some("image/svg+xml")));
        assert!(!config.allows(Some("text/html")));
        assert!(!config.allows(None));
        assert!(is_type_pattern("image/*") && !is_type_pattern("*/*") && !is_type_pattern("x"));
    }

    #[test]
    fn base_urls() {
        let mut server = crate::config::Config::default();
        let mut config = UploadConfig::default();
        server.http.listen = vec!["127.0.0.1:5280".parse().unwrap()];
        server.http.tls_listen = vec!["127.0.0.1:5281".parse().unwrap()];
        let base = |c: &UploadConfig, s: &crate::config::Config| base_url(c, s, "a.example");
        assert_eq!(base(&config, &server).unwrap(), "http://a.example:5280");
        server.tls.cert = Some("cert.pem".into());
        assert_eq!(base(&config, &server).unwrap(), "https://a.example:5281");
        config.public_url = "https://files.example/".into();
        assert_eq!(base(&config, &server).unwrap(), "https://files.example");
        config.public_url.clear();
        server.http.listen.clear();
        server.http.tls_listen.clear();
        assert_eq!(base(&config, &server), None);
    }
}
