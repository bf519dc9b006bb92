//! The one registry every module registers through, and what the core asks of it.
//!
//! Each registration remembers its module, so a module switched off for a host (config:
//! `hosts."…".modules_disabled`) is skipped there: gone from routing, disco and stream
//! features. A module switched off globally never registers at all.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::jid::{FullJid, Jid};
use jabberwock_protocol::stanza::{IqType, Stanza, StanzaError};
use jabberwock_protocol::stream::StreamError;
use jabberwock_protocol::xml::Element;

use super::commands::AdHocCommand;
use super::config::{enabled_globally, split_enabled};
use super::hooks::{Event, EventKind, Flow, Hook};
use super::hosts::{host_mask, HostEntry, HostTable, LiveHosts};
use super::{SessionState, MODULES};
use crate::config::{Config, HostConfig};
use crate::error::SessionEnd;
use crate::live::Snapshot;
use crate::server::Server;
use crate::session::ClientWriter;

/// Who an IQ is addressed to (RFC 6120 §10.3): the server's domain, an account's bare JID
/// that the server answers for, or the domain of a service (`conference.HOST`).
///
/// What a module registers for `Service` shows on the domains of the services it owns
/// ([`Registrar::service`]); what a module that owns no service registers for `Service`
/// (disco itself, ping) shows on every service's domain of the hosts it runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Host,
    Account,
    Service,
}

/// Where a disco#info feature or identity shows (XEP-0030): the server's domain, an
/// account's bare JID, or a service's domain.
pub type DiscoTarget = Target;

/// One IQ for a handler: the payload is the iq's first child, already namespace-matched.
pub struct IqRequest<'a> {
    pub server: &'a Server,
    pub from: &'a FullJid,
    pub to: &'a Jid,
    pub stanza: &'a Stanza,
    pub payload: &'a Element,
}

#[async_trait]
pub trait IqHandler: Send + Sync {
    /// `Ok(Some(el))` answers a result carrying `el`, `Ok(None)` an empty result.
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError>;
}

/// Answers with an empty result: XEP-0199 pongs, RFC 3921 session establishment.
pub struct EmptyResult;

#[async_trait]
impl IqHandler for EmptyResult {
    async fn handle(&self, _request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        Ok(None)
    }
}

/// When a stream feature is offered (RFC 6120 §4.3.2). STARTTLS, SASL and resource binding
/// are the core's; modules add the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Before authentication, beside STARTTLS and SASL (e.g. XEP-0115 server caps).
    PreAuth,
    /// After authentication, beside resource binding (roster versioning, CSI, SM, ...).
    PostAuth,
}

/// What a stream feature may depend on.
pub struct FeatureContext<'a> {
    pub server: &'a Server,
    pub host: &'a str,
    pub encrypted: bool,
    /// The Flash policy applies (a Flash socket or a `<flash:stream>` header).
    pub flash: bool,
    /// Before authentication: the core offers a way to log in on this stream now (not, for
    /// one, before a required STARTTLS). After authentication: always true.
    pub auth_offered: bool,
}

/// An IQ on a stream that has not authenticated yet (XEP-0077 registration is the one
/// such exchange): there is no JID to route from, so c2s hands it to its handler directly.
pub struct PreAuthIq<'a> {
    pub ctx: &'a FeatureContext<'a>,
    /// The client's address.
    pub peer: std::net::IpAddr,
    pub stanza: &'a Stanza,
}

#[async_trait]
pub trait PreAuthIqHandler: Send + Sync {
    /// The reply to write, or `None` when the IQ may not be asked here (c2s then closes the
    /// stream with `not-authorized`, RFC 6120 §6.1).
    async fn handle(&self, iq: PreAuthIq<'_>) -> Option<Element>;
}

pub trait StreamFeature: Send + Sync {
    /// The feature's element, or `None` not to offer it on this stream.
    fn offer(&self, ctx: &FeatureContext<'_>) -> Option<Element>;
}

/// A stream feature that is always the same element.
impl StreamFeature for Element {
    fn offer(&self, _ctx: &FeatureContext<'_>) -> Option<Element> {
        Some(self.clone())
    }
}

/// What waits in storage for an account, written by the session itself once a resource
/// can take it (XEP-0160: at available presence with non-negative priority), before it
/// reads more input: a backlog may be larger than the session's inbox, which nothing
/// drains while the session's task is writing.
#[async_trait]
pub trait Backlog: Send + Sync {
    async fn write(
        &self,
        server: &Server,
        jid: &FullJid,
        out: &mut ClientWriter<'_>,
    ) -> Result<(), SessionEnd>;
}

/// A top-level element of a bound session that is not a stanza (XEP-0198's `<r/>`,
/// XEP-0352's `<active/>`), as its handler sees it.
pub struct Nonza<'a> {
    pub server: &'a Server,
    pub jid: &'a FullJid,
    pub state: &'a SessionState,
    pub element: &'a Element,
    /// Stanzas to write to the client, in order, before the handler's answer (e.g. what
    /// XEP-0352 held back while the client was inactive).
    pub out: &'a mut Vec<Element>,
}

#[async_trait]
pub trait NonzaHandler: Send + Sync {
    /// `Ok(Some(el))` is written back to the client; an error ends the stream.
    async fn handle(&self, nonza: Nonza<'_>) -> Result<Option<Element>, StreamError>;
}

/// A data form a module adds to a target's disco#info (XEP-0128), as it is when asked: a
/// form made of options a reload changes shows the new ones.
pub trait DiscoExtension: Send + Sync {
    /// The form, or `None` to add none now.
    fn form(&self) -> Option<Element>;
}

/// Items a module adds to a target's disco#items (XEP-0030 §4): an account's personal
/// eventing nodes (XEP-0163), say.
#[async_trait]
pub trait DiscoItems: Send + Sync {
    /// The `<item/>`s the asker of `request` may see: the target's (`node: None`) or a
    /// node's; `Ok(None)` when the node is none of this module's.
    async fn items(
        &self,
        request: &IqRequest<'_>,
        node: Option<&str>,
    ) -> Result<Option<Vec<Element>>, StanzaError>;
}

/// A disco#info node that names the target's own info under another name (XEP-0115 §6.2:
/// `NODE#VER`, the node a peer asks after reading a `ver`). The info of such a node is the
/// target's, with the node echoed.
pub trait InfoNode: Send + Sync {
    /// Whether `node` is one of these names of `host`'s info.
    fn is_own(&self, server: &Server, host: &str, node: &str) -> bool;
}

/// Routes a module serves on the HTTP listeners (`http.listen`, `http.tls_listen`, and
/// HTTP on the c2s ports), beside the core's endpoints: XEP-0363's uploads and downloads.
/// Every route is under [`HttpRoutes::prefix`], and the web safety layers
/// (`http/safety.rs`: client address, rate limit, origin check) wrap them like the rest.
/// What a module runs for as long as the server does, beside its hooks and handlers.
#[async_trait]
pub trait Lifetime: Send + Sync {
    /// The server starts: storage is open and services have started, nobody has connected
    /// yet. Work that must not wait for the first stanza begins here (the archive's
    /// retention, which an idle server must run too).
    async fn start(&self, _server: &Server) {}
    /// The server stops, after every session closed: what the module queued and has not
    /// made durable yet is finished (the archive's writer), so a clean stop loses nothing.
    async fn stop(&self, _server: &Server) {}
}

pub trait HttpRoutes: Send + Sync {
    /// The path every route starts with (`/upload`), distinct from the core's paths.
    fn prefix(&self) -> &str;
    /// The routes, with their state already given.
    fn router(&self, server: Arc<Server>) -> axum::Router;
    /// The routes read request bodies themselves, under limits of their own:
    /// `http.max_request_bytes` does not apply to them.
    fn own_body_limit(&self) -> bool {
        false
    }
    /// What a CORS preflight for these routes allows (`Access-Control-Allow-Methods`,
    /// `Access-Control-Allow-Headers`).
    fn cors(&self) -> (&'static str, &'static str) {
        ("GET, POST, OPTIONS", "Content-Type")
    }
    /// Origins (`scheme://host:port`) besides a page's own at which the server's own web
    /// pages (the chat page) reach these routes: their Content-Security-Policy lets them
    /// connect there and show images and media from there.
    fn page_origins(&self, _server: &Server) -> Vec<String> {
        Vec::new()
    }
}

/// A domain of its own that a module serves beside a host (XEP-0045's `conference.HOST`,
/// XEP-0363's `upload.HOST`), the way Prosody's components and ejabberd's service hosts
/// do. Every stanza addressed to the domain or to a JID at it (`room@conference.HOST/nick`)
/// comes to [`Service::receive`], except IQs to the bare domain that a handler registered
/// for [`Target::Service`] answers (disco#info, the owner's own). The service answers
/// through [`crate::router::Router::route_from_service`]. The host lists it in its
/// disco#items (XEP-0030 §4).
#[async_trait]
pub trait Service: Send + Sync {
    /// The service's domain on `host`, or `None` to run none there. Asked for every host
    /// each time the hosts are placed: at start, and at a reload that changes them.
    fn domain(&self, host: &str) -> Option<String>;
    /// The name shown beside the domain in the host's disco#items.
    fn name(&self) -> Option<&'static str> {
        None
    }
    /// A stanza for the service: a client's message, presence or IQ, or the error a stanza
    /// the service sent earned (RFC 6120 §8.3: never answer that one with an error).
    async fn receive(&self, delivery: ServiceDelivery<'_>);
    /// Runs once per domain the service got, after storage opened and before anyone
    /// connects (what it kept from an earlier run is loaded here), or, for a domain a
    /// reload placed (a new host's), before the new hosts are served. An error stops the
    /// server from starting, or the reload from changing the hosts.
    async fn start(
        &self,
        _server: &Server,
        _host: &str,
        _domain: &str,
    ) -> Result<(), crate::StartError> {
        Ok(())
    }
    /// The domain is no longer served (a reload removed its host, or the service there):
    /// what [`Service::start`] started for it ends, what it keeps in memory for it goes,
    /// storage keeps the rest. Runs while the domain is still routed, so what it sends
    /// (goodbyes) still goes out; the next stanzas find no such domain. A later start of
    /// the same domain starts it afresh.
    async fn stop(&self, _server: &Server, _host: &str, _domain: &str) {}
}

/// A registered service as the registry keeps it: [`Service`]'s promise that the handlers
/// registered for [`Target::Service`] answer IQs to the bare domain holds whoever asks. The
/// router looks them up itself for its own users; a remote server's user (RFC 6120 §10.3:
/// the domain answers for itself, whatever server the asker is on) reaches the service
/// with the IQ, and is answered here the same (XEP-0045 §6.1–§6.3: the MUC service's
/// disco#info and disco#items).
struct RegisteredFirst(Arc<dyn Service>);

#[async_trait]
impl Service for RegisteredFirst {
    fn domain(&self, host: &str) -> Option<String> {
        self.0.domain(host)
    }

    fn name(&self) -> Option<&'static str> {
        self.0.name()
    }

    async fn receive(&self, delivery: ServiceDelivery<'_>) {
        let Some(reply) = registered_answer(&delivery).await else {
            return self.0.receive(delivery).await;
        };
        let server = delivery.server;
        if let Ok(reply) = Stanza::from_element(reply) {
            server.router.route_from_service(server, reply).await;
        }
    }

    async fn start(
        &self,
        server: &Server,
        host: &str,
        domain: &str,
    ) -> Result<(), crate::StartError> {
        self.0.start(server, host, domain).await
    }

    async fn stop(&self, server: &Server, host: &str, domain: &str) {
        self.0.stop(server, host, domain).await
    }
}

/// The answer of the handler registered for an IQ request to the service's bare domain, if
/// one is. The asker must be a full JID, as for IQs the server answers for a host (a
/// remote server's own domain gets what the service says).
async fn registered_answer(delivery: &ServiceDelivery<'_>) -> Option<Element> {
    let ServiceDelivery {
        server,
        from,
        to,
        stanza,
        ..
    } = delivery;
    if to.node().is_some() || to.resource().is_some() {
        return None;
    }
    let iq_type = stanza
        .iq_type()
        .filter(|t| matches!(t, IqType::Get | IqType::Set))?;
    let payload = stanza.iq_payload()?;
    let from = from.try_as_full().ok()?;
    let handler = server.modules.iq_handler(
        to.domain().as_str(),
        iq_type,
        Target::Service,
        payload.ns(),
        payload.name(),
    )?;
    let request = IqRequest {
        server,
        from,
        to,
        stanza,
        payload,
    };
    Some(match handler.handle(request).await {
        Ok(result) => stanza.iq_result(result),
        Err(err) => stanza.error_reply(&err),
    })
}

/// One stanza for a [`Service`]: `from` is already checked (the session stamped it, RFC
/// 6120 §8.1.2.1), `to` is at the service's domain.
pub struct ServiceDelivery<'a> {
    pub server: &'a Server,
    /// The service's domain and the host it serves.
    pub domain: &'a str,
    pub host: &'a str,
    pub from: Jid,
    pub to: Jid,
    pub stanza: Stanza,
}

/// Where stanzas go whose domain is neither one of our hosts nor one of our services:
/// federation (RFC 6120 §10.4.3, §13.7). One module provides it ([`Registrar::remote`]);
/// with none, the router bounces such stanzas with `remote-server-not-found` and lets
/// presence go. What comes back from a remote server enters the router through
/// [`crate::router::Router::route_from_remote`].
#[async_trait]
pub trait Remote: Send + Sync {
    /// Binds what the module listens on and logs it, after storage opened and before the
    /// server says it started. An error stops the server from starting.
    async fn start(&self, server: &Arc<Server>) -> Result<(), crate::StartError>;
    /// Serves until `shutdown`, then closes its streams.
    async fn serve(&self, server: Arc<Server>, shutdown: crate::shutdown::ShutdownSignal);
    /// Takes a stanza (`from` and `to` set) for a domain we don't serve. Never waits: it is
    /// queued, or it earns an error that comes back through `route_from_remote`.
    fn send(&self, server: &Server, stanza: Element);
}

/// A service as the registry keeps it, found by its domain.
pub struct ServiceEntry {
    pub domain: String,
    /// The host whose service this is (its modules and disco#items).
    pub host: String,
    pub name: Option<&'static str>,
    pub service: Arc<dyn Service>,
    /// The modules that show on this domain: the owner, and the host's modules that own no
    /// service.
    mask: u64,
    /// The owner's bit: its IQ handlers come first on its domain.
    owner: u64,
}

/// The service domains a reload of the hosts added (started) and took away.
#[derive(Debug, Default)]
pub struct PlacedServices {
    pub started: Vec<String>,
    pub stopped: Vec<String>,
}

/// Starts `entries` ([`Service::start`]) one after the other.
async fn start(server: &Server, entries: &[Arc<ServiceEntry>]) -> Result<(), crate::StartError> {
    for entry in entries {
        entry
            .service
            .start(server, &entry.host, &entry.domain)
            .await?;
    }
    Ok(())
}

/// Stops `entries` ([`Service::stop`]) one after the other.
async fn stop(server: &Server, entries: &[Arc<ServiceEntry>]) {
    for entry in entries {
        entry.service.stop(server, &entry.host, &entry.domain).await;
    }
}

/// A module's index in [`MODULES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModuleId(u8);

impl ModuleId {
    fn bit(self) -> u64 {
        1 << self.0
    }
}

/// An IQ handler and what it answers, filed under its payload namespace: a lookup hashes
/// the stanza's namespace as a borrowed `str` and scans the few entries of it, with no
/// allocation.
struct IqRoute {
    iq_type: IqType,
    target: Target,
    name: &'static str,
    module: ModuleId,
    handler: Arc<dyn IqHandler>,
}

type NonzaRoute = (&'static str, ModuleId, Arc<dyn NonzaHandler>);
type PreAuthRoute = (&'static str, ModuleId, Arc<dyn PreAuthIqHandler>);
type HookRoute = (i32, ModuleId, Arc<dyn Hook>);
type ReloadHook = Box<dyn Fn(toml::Table) -> Result<(), String> + Send + Sync>;

/// What takes a module's new options ([`Registrar::on_reload`]).
struct Reload {
    module: ModuleId,
    /// The keys that apply live; the others are bound at start.
    live: &'static [&'static str],
    apply: ReloadHook,
}

/// Why a module's new options were not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadRefused {
    /// Switched on or off, or the module cannot take new options while it runs, or only
    /// keys bound at start changed.
    Restart,
    /// The module refused them; the options in force stay.
    Invalid(String),
}

/// What a reload did with one module's changed options.
#[derive(Debug)]
pub struct ModuleReload {
    pub name: &'static str,
    /// Applied: the module's table now in force, for the running config to keep (`None`:
    /// no table). It is the new table, except that keys bound at start keep the values
    /// they started with until a restart.
    pub result: Result<Option<toml::Table>, ReloadRefused>,
}

/// A disco identity (XEP-0030 §3.1).
#[derive(Clone, Debug)]
pub struct Identity {
    pub category: &'static str,
    pub kind: &'static str,
    pub name: Option<&'static str>,
}

#[derive(Default)]
pub struct Registry {
    iq: HashMap<&'static str, Vec<IqRoute>>,
    /// Each feature with the modules that must run where it shows (its own, and any other
    /// it is offered through), as a mask.
    features: Vec<(u64, DiscoTarget, &'static str)>,
    identities: Vec<(ModuleId, DiscoTarget, Identity)>,
    /// XEP-0128 extended information: data forms in disco#info results.
    extensions: Vec<(ModuleId, DiscoTarget, Arc<dyn DiscoExtension>)>,
    /// Other names of a target's disco#info (XEP-0115 caps nodes).
    info_nodes: Vec<(ModuleId, DiscoTarget, Arc<dyn InfoNode>)>,
    /// What modules add to a target's disco#items.
    disco_items: Vec<(ModuleId, DiscoTarget, Arc<dyn DiscoItems>)>,
    /// XEP-0050 commands offered on the hosts' JIDs, or on the module's services' domains.
    commands: Vec<(ModuleId, Target, Arc<dyn AdHocCommand>)>,
    stream_features: Vec<(ModuleId, Stage, Arc<dyn StreamFeature>)>,
    backlogs: Vec<(ModuleId, Arc<dyn Backlog>)>,
    /// Handlers of IQs before authentication, by payload namespace: (name, module, handler).
    pre_auth_iqs: HashMap<&'static str, Vec<PreAuthRoute>>,
    /// Nonza handlers by namespace: (element name, module, handler).
    nonzas: HashMap<&'static str, Vec<NonzaRoute>>,
    /// Per event kind: (priority, module, listener), highest priority first.
    hooks: [Vec<HookRoute>; EventKind::COUNT],
    /// Services as registered (module, service), before their domains are known.
    service_list: Vec<(ModuleId, Arc<dyn Service>)>,
    /// Where stanzas for other servers go (federation), if a module took them.
    remote: Option<Arc<dyn Remote>>,
    /// What modules keep for the whole server and share with others (at most one value per
    /// type), e.g. the caps module's view of other servers' resources.
    shared: super::SessionState,
    /// What modules serve on the HTTP listeners.
    http_routes: Vec<Arc<dyn HttpRoutes>>,
    /// What modules begin when the server starts and finish when it stops.
    lifetimes: Vec<Arc<dyn Lifetime>>,
    /// What a scrape of `/metrics` shows: the core's series and what modules registered.
    metrics: crate::metrics::Registry,
    /// XEP-0198 in the session layer, on with these limits if a module turned it on.
    stream_management: Option<Arc<Snapshot<super::stream_management::SmSettings>>>,
    /// What takes a module's new options on reload.
    reloads: Vec<Reload>,
    /// How many times a reload applied a module's new options: what was derived from the
    /// disco#info (XEP-0115's `ver`) is derived again after one.
    options_applied: AtomicU64,
    /// The hosts in force: their settings, the modules on for each, their services'
    /// domains; a reload swaps it ([`Registry::set_hosts`]).
    hosts: LiveHosts,
    /// The modules on globally (for a domain that is none of the hosts).
    global: u64,
}

/// A module's handle on the registry while it registers.
pub struct Registrar<'a> {
    registry: &'a mut Registry,
    module: ModuleId,
}

impl Registrar<'_> {
    /// Answer IQs of `iq_type` to `target` whose payload is `<name xmlns=ns>`.
    pub fn iq(
        &mut self,
        iq_type: IqType,
        target: Target,
        ns: &'static str,
        name: &'static str,
        handler: Arc<dyn IqHandler>,
    ) {
        self.registry.iq.entry(ns).or_default().push(IqRoute {
            iq_type,
            target,
            name,
            module: self.module,
            handler,
        });
    }

    /// A disco#info feature of `target`.
    pub fn disco_feature(&mut self, target: DiscoTarget, feature: &'static str) {
        self.registry
            .features
            .push((self.module.bit(), target, feature));
    }

    /// A disco#info feature of `target` that another module (`through`, by name) provides
    /// for this one: shown only where both run (a service's XEP-0050 commands, which the
    /// `adhoc` module executes).
    pub fn disco_feature_through(
        &mut self,
        target: DiscoTarget,
        feature: &'static str,
        through: &'static str,
    ) {
        let other = MODULES
            .iter()
            .position(|m| m.name == through)
            .unwrap_or_else(|| panic!("no module named {through}"));
        let required = self.module.bit() | ModuleId(other as u8).bit();
        self.registry.features.push((required, target, feature));
    }

    /// A disco#info identity of `target`.
    pub fn disco_identity(&mut self, target: DiscoTarget, identity: Identity) {
        self.registry
            .identities
            .push((self.module, target, identity));
    }

    /// A data form added to `target`'s disco#info (XEP-0128), e.g. XEP-0157's addresses.
    pub fn disco_extension(&mut self, target: DiscoTarget, form: Arc<dyn DiscoExtension>) {
        self.registry.extensions.push((self.module, target, form));
    }

    /// Another name for `target`'s disco#info: the nodes `node` says are its own.
    pub fn disco_info_node(&mut self, target: DiscoTarget, node: Arc<dyn InfoNode>) {
        self.registry.info_nodes.push((self.module, target, node));
    }

    /// Adds items to `target`'s disco#items (and answers disco#items of its nodes).
    pub fn disco_items(&mut self, target: DiscoTarget, items: Arc<dyn DiscoItems>) {
        self.registry.disco_items.push((self.module, target, items));
    }

    /// Offers an XEP-0050 command on the JID of each host this module runs on (the
    /// `adhoc` module lists and runs it).
    pub fn command(&mut self, command: Arc<dyn AdHocCommand>) {
        self.registry
            .commands
            .push((self.module, Target::Host, command));
    }

    /// Offers an XEP-0050 command on the domain of each service this module registers
    /// (XEP-0060 §8.7's `get-pending` on a publish-subscribe service, say).
    pub fn service_command(&mut self, command: Arc<dyn AdHocCommand>) {
        self.registry
            .commands
            .push((self.module, Target::Service, command));
    }

    /// A stream feature offered at `stage`.
    pub fn stream_feature(&mut self, stage: Stage, feature: Arc<dyn StreamFeature>) {
        self.registry
            .stream_features
            .push((self.module, stage, feature));
    }

    /// Writes what waits for an account when one of its resources can take it.
    pub fn backlog(&mut self, backlog: Arc<dyn Backlog>) {
        self.registry.backlogs.push((self.module, backlog));
    }

    /// Handles IQs whose payload is `<name xmlns=ns>` on streams not yet authenticated.
    pub fn pre_auth_iq(
        &mut self,
        ns: &'static str,
        name: &'static str,
        handler: Arc<dyn PreAuthIqHandler>,
    ) {
        self.registry
            .pre_auth_iqs
            .entry(ns)
            .or_default()
            .push((name, self.module, handler));
    }

    /// Handles the nonza `<name xmlns=ns/>` of bound sessions.
    pub fn nonza(&mut self, ns: &'static str, name: &'static str, handler: Arc<dyn NonzaHandler>) {
        self.registry
            .nonzas
            .entry(ns)
            .or_default()
            .push((name, self.module, handler));
    }

    /// Serves a domain beside each host this module runs on (see [`Service`]).
    pub fn service(&mut self, service: Arc<dyn Service>) {
        let service = Arc::new(RegisteredFirst(service));
        self.registry.service_list.push((self.module, service));
    }

    /// Serves `routes` on the HTTP listeners (see [`HttpRoutes`]); the module must declare
    /// [`super::Module::NEEDS_HTTP`], so the config has a listener for them.
    pub fn http_routes(&mut self, routes: Arc<dyn HttpRoutes>) {
        self.registry.http_routes.push(routes);
    }

    /// Starts and stops `lifetime` with the server (see [`Lifetime`]).
    pub fn lifetime(&mut self, lifetime: Arc<dyn Lifetime>) {
        self.registry.lifetimes.push(lifetime);
    }

    /// A counter this module keeps, shown on `/metrics` as `jabberwock_MODULE_NAME_total`
    /// (`name` in snake case, without `_total`). Counting is an atomic add: keep the
    /// handle and count on any path.
    pub fn counter(&mut self, name: &str, help: &str) -> crate::metrics::Counter {
        let module = MODULES[self.module.0 as usize].name;
        self.registry.metrics.counter(module, name, help)
    }

    /// A gauge this module sets, shown on `/metrics` as `jabberwock_MODULE_NAME`.
    pub fn gauge(&mut self, name: &str, help: &str) -> crate::metrics::Gauge {
        let module = MODULES[self.module.0 as usize].name;
        self.registry.metrics.gauge(module, name, help)
    }

    /// Takes the stanzas for domains we don't serve (see [`Remote`]); the last module to
    /// register one wins, and only one does (federation).
    pub fn remote(&mut self, remote: Arc<dyn Remote>) {
        self.registry.remote = Some(remote);
    }

    /// State the module keeps for the whole server, readable by other modules through
    /// [`Registry::shared`].
    pub fn shared(&self) -> &super::SessionState {
        &self.registry.shared
    }

    /// Turns the session layer's XEP-0198 acknowledgements and resumption on, with the
    /// limits in `settings` (which a reload may replace).
    pub fn stream_management(
        &mut self,
        settings: Arc<Snapshot<super::stream_management::SmSettings>>,
    ) {
        self.registry.stream_management = Some(settings);
    }

    /// Takes the module's new `[modules.NAME]` options when a reload finds any of the
    /// `live` keys changed: `apply` gets the options with the new values of those keys and
    /// the running values of the others, which are bound at start (a service's domain)
    /// and need a restart. They are checked first exactly as at start (the config type and
    /// [`super::Module::check`], with the hosts the module runs on); `apply` puts them in
    /// force, or says why it did not, and the options in force stay. A module that
    /// registers none needs a restart for any new option.
    pub fn on_reload<C, F>(&mut self, live: &'static [&'static str], apply: F)
    where
        C: serde::de::DeserializeOwned + Default,
        F: Fn(C) -> Result<(), String> + Send + Sync + 'static,
    {
        let apply: ReloadHook = Box::new(move |table| {
            let config = super::config::parse::<C>(table).map_err(reason)?;
            apply(config)
        });
        self.registry.reloads.push(Reload {
            module: self.module,
            live,
            apply,
        });
    }

    /// [`Self::on_reload`] for a module that keeps its options whole in `options`, read once
    /// per request: a reload swaps them.
    pub fn on_reload_swap<C>(&mut self, live: &'static [&'static str], options: Arc<Snapshot<C>>)
    where
        C: serde::de::DeserializeOwned + Default + Send + Sync + 'static,
    {
        self.on_reload(live, move |config: C| {
            options.set(config);
            Ok(())
        });
    }

    /// Listens to events of `kind`; higher `priority` runs first (0 is the usual).
    pub fn hook(&mut self, kind: EventKind, priority: i32, hook: Arc<dyn Hook>) {
        let list = &mut self.registry.hooks[kind as usize];
        list.push((priority, self.module, hook));
        // Stable: equal priorities keep module order.
        list.sort_by_key(|(p, _, _)| std::cmp::Reverse(*p));
    }
}

impl Registry {
    /// Registers every module the config leaves on.
    pub fn build(config: &Config) -> Registry {
        let mut registry = Registry::default();
        for (index, module) in MODULES.iter().enumerate() {
            if !enabled_globally(&config.modules, module.name) {
                continue;
            }
            let id = ModuleId(index as u8);
            registry.global |= id.bit();
            let table = config
                .modules
                .0
                .get(module.name)
                .and_then(|t| split_enabled(module.name, t).ok())
                .map(|(_, rest)| rest)
                .unwrap_or_default();
            (module.register)(
                table,
                &mut Registrar {
                    registry: &mut registry,
                    module: id,
                },
            );
        }
        let table = registry.table_for(&config.hosts);
        registry.hosts.set(table);
        registry
    }

    /// Hands each running module whose live options differ between `old` and `new` its new
    /// ones, through its [`Registrar::on_reload`]; what only keys bound at start changed
    /// in, or what has no hook, is left for a restart.
    pub fn reload(
        &self,
        old: &super::config::ModuleTables,
        new: &super::config::ModuleTables,
    ) -> Vec<ModuleReload> {
        let mut outcomes = Vec::new();
        for (index, module) in MODULES.iter().enumerate() {
            let (before, after) = (old.0.get(module.name), new.0.get(module.name));
            if before == after {
                continue;
            }
            let id = ModuleId(index as u8);
            let split = |t: Option<&toml::Table>| match t {
                Some(t) => split_enabled(module.name, t).ok(),
                None => Some((module.on_by_default, toml::Table::new())),
            };
            let result = match (split(before), split(after)) {
                (Some((true, running)), Some((true, options))) if self.global & id.bit() != 0 => {
                    match self.reloads.iter().find(|r| r.module == id) {
                        Some(reload) => self.apply_options(module, reload, running, options, after),
                        None => Err(ReloadRefused::Restart),
                    }
                }
                _ => Err(ReloadRefused::Restart),
            };
            outcomes.push(ModuleReload {
                name: module.name,
                result,
            });
        }
        outcomes
    }

    /// Hands `reload` the `running` options with its live keys as in `new`, checked as at
    /// start; returns the table then in force (`after`'s `enabled` kept as written).
    fn apply_options(
        &self,
        module: &super::Descriptor,
        reload: &Reload,
        running: toml::Table,
        new: toml::Table,
        after: Option<&toml::Table>,
    ) -> Result<Option<toml::Table>, ReloadRefused> {
        let mut in_force = running;
        let mut changed = false;
        for key in reload.live {
            let value = new.get(*key);
            if in_force.get(*key) == value {
                continue;
            }
            changed = true;
            match value {
                Some(value) => in_force.insert((*key).to_owned(), value.clone()),
                None => in_force.remove(*key),
            };
        }
        // Only keys bound at start changed: the restart applies them.
        if !changed {
            return Err(ReloadRefused::Restart);
        }
        let id = reload.module;
        // The hosts in force (a reload applies options before it changes the hosts).
        let mut hosts: Vec<String> = self.hosts.read(|table| {
            table
                .hosts
                .iter()
                .filter(|(_, entry)| entry.mask & id.bit() != 0)
                .map(|(host, _)| host.clone())
                .collect()
        });
        hosts.sort();
        (module.check)(in_force.clone(), &hosts).map_err(|e| ReloadRefused::Invalid(reason(e)))?;
        (reload.apply)(in_force.clone()).map_err(ReloadRefused::Invalid)?;
        self.options_applied.fetch_add(1, Ordering::Relaxed);
        if let Some(enabled) = after.and_then(|t| t.get("enabled")) {
            in_force.insert("enabled".to_owned(), enabled.clone());
        }
        Ok((after.is_some() || !in_force.is_empty()).then_some(in_force))
    }

    /// How many times a reload applied a module's new options (see
    /// [`Registrar::on_reload`]): what is derived from what modules show and cached
    /// compares it.
    pub fn options_applied(&self) -> u64 {
        self.options_applied.load(Ordering::Relaxed)
    }

    /// Starts every placed service ([`Service::start`]), in domain order.
    pub async fn start_services(&self, server: &Server) -> Result<(), crate::StartError> {
        let mut entries: Vec<Arc<ServiceEntry>> =
            self.hosts.get().services.values().cloned().collect();
        entries.sort_by(|a, b| a.domain.cmp(&b.domain));
        start(server, &entries).await
    }

    /// Serves the hosts `hosts` from now on (a reload): each host's modules and service
    /// domains placed as at start, the services new to the table started first (an error
    /// changes nothing), those gone from it stopped ([`Service::stop`]), then the new
    /// table swapped in. What it added and removed is returned.
    pub async fn set_hosts(
        &self,
        server: &Server,
        hosts: &BTreeMap<String, HostConfig>,
    ) -> Result<PlacedServices, crate::StartError> {
        let old = self.hosts.get();
        let new = self.table_for(hosts);
        // New: a domain the old table had not, or had for another module's service.
        let same = |a: &ServiceEntry, b: &ServiceEntry| {
            a.host == b.host && Arc::ptr_eq(&a.service, &b.service)
        };
        let mut started: Vec<Arc<ServiceEntry>> = new
            .services
            .values()
            .filter(|n| !old.services.get(&n.domain).is_some_and(|o| same(o, n)))
            .cloned()
            .collect();
        started.sort_by(|a, b| a.domain.cmp(&b.domain));
        let mut stopped: Vec<Arc<ServiceEntry>> = old
            .services
            .values()
            .filter(|o| !new.services.get(&o.domain).is_some_and(|n| same(o, n)))
            .cloned()
            .collect();
        stopped.sort_by(|a, b| a.domain.cmp(&b.domain));
        // A domain changing hands (a fixed one whose host went, now the next host's) is let
        // go by its old service before the new one takes it; the others start first, so an
        // error changes nothing.
        let (handed_over, fresh): (Vec<_>, Vec<_>) = started
            .iter()
            .cloned()
            .partition(|n| old.services.contains_key(&n.domain));
        start(server, &fresh).await?;
        let (letting_go, gone): (Vec<_>, Vec<_>) = stopped
            .iter()
            .cloned()
            .partition(|o| new.services.contains_key(&o.domain));
        stop(server, &letting_go).await;
        start(server, &handed_over).await?;
        stop(server, &gone).await;
        self.hosts.set(new);
        Ok(PlacedServices {
            started: started.iter().map(|s| s.domain.clone()).collect(),
            stopped: stopped.iter().map(|s| s.domain.clone()).collect(),
        })
    }

    /// The table for `hosts`: each host's module mask (the global modules less its
    /// `modules_disabled`) and each registered service's domain on every host its module
    /// runs on.
    fn table_for(&self, hosts: &BTreeMap<String, HostConfig>) -> HostTable {
        let mut table = HostTable::default();
        for (host, config) in hosts {
            let entry = HostEntry {
                mask: host_mask(self.global, config),
                config: Arc::new(config.clone()),
            };
            table.hosts.insert(host.clone(), entry);
        }
        table.uniform = table.hosts.values().all(|h| h.mask == self.global);
        let owners = self
            .service_list
            .iter()
            .fold(0, |bits, (m, _)| bits | m.bit());
        // In host order (`hosts` is sorted), so a clash is decided the same way every time.
        for (host, entry) in hosts.keys().filter_map(|h| Some((h, table.hosts.get(h)?))) {
            let host_mask = entry.mask;
            for (module, service) in &self.service_list {
                if host_mask & module.bit() == 0 {
                    continue;
                }
                let Some(domain) = service.domain(host).map(|d| d.to_lowercase()) else {
                    continue;
                };
                if table.hosts.contains_key(&domain) || table.services.contains_key(&domain) {
                    tracing::error!(
                        %domain,
                        module = MODULES[module.0 as usize].name,
                        "a service's domain is already a host's or another service's: not served"
                    );
                    continue;
                }
                let entry = ServiceEntry {
                    domain: domain.clone(),
                    host: host.clone(),
                    name: service.name(),
                    service: service.clone(),
                    mask: (host_mask & !owners) | module.bit(),
                    owner: module.bit(),
                };
                table.services.insert(domain, Arc::new(entry));
            }
        }
        table
    }

    /// The settings of host `domain` in force (matched as [`Config::host`] matches).
    pub fn host(&self, domain: &str) -> Option<Arc<HostConfig>> {
        self.hosts.read(|t| t.host(domain))
    }

    /// Whether `domain` is one of the hosts in force (no clone of its settings).
    pub fn serves_host(&self, domain: &str) -> bool {
        self.hosts.read(|t| t.entry(domain).is_some())
    }

    /// The hosts in force, sorted.
    pub fn host_names(&self) -> Vec<String> {
        self.hosts.read(HostTable::names)
    }

    /// Changes each time the hosts in force change (see [`LiveHosts::generation`]).
    pub fn hosts_generation(&self) -> u64 {
        self.hosts.generation()
    }

    /// Wakes after each change of the hosts in force (see [`LiveHosts::watch`]).
    pub fn hosts_changed(&self) -> tokio::sync::watch::Receiver<()> {
        self.hosts.watch()
    }

    /// The modules that show on `domain`: a host's, or a service domain's.
    fn mask(&self, domain: &str) -> u64 {
        self.hosts.read(|table| self.mask_in(table, domain))
    }

    fn mask_in(&self, table: &HostTable, domain: &str) -> u64 {
        if let Some(service) = table.services.get(domain) {
            return service.mask;
        }
        if table.uniform {
            return self.global;
        }
        table.hosts.get(domain).map_or(self.global, |h| h.mask)
    }

    /// XEP-0198's limits in force, if a module turned it on; a reader takes them once for
    /// what it starts ([`Snapshot::get`]).
    pub fn stream_management(&self) -> Option<&Snapshot<super::stream_management::SmSettings>> {
        self.stream_management.as_deref()
    }

    /// Where stanzas for other servers go, if a module takes them.
    pub fn remote(&self) -> Option<&Arc<dyn Remote>> {
        self.remote.as_ref()
    }

    /// What modules keep for the whole server (one value per type, see
    /// [`Registrar::shared`]).
    pub fn shared(&self) -> &super::SessionState {
        &self.shared
    }

    /// Starts the remote delivery, if any ([`Remote::start`]).
    pub async fn start_remote(&self, server: &Arc<Server>) -> Result<(), crate::StartError> {
        match &self.remote {
            Some(remote) => remote.start(server).await,
            None => Ok(()),
        }
    }

    /// Serves the remote delivery until shutdown, if there is one.
    pub async fn serve_remote(
        &self,
        server: Arc<Server>,
        shutdown: crate::shutdown::ShutdownSignal,
    ) {
        if let Some(remote) = &self.remote {
            remote.serve(server, shutdown).await;
        }
    }

    /// The server starts: every module's [`Lifetime::start`], in registration order.
    pub async fn start_modules(&self, server: &Server) {
        for lifetime in &self.lifetimes {
            lifetime.start(server).await;
        }
    }

    /// The server stops: every module's [`Lifetime::stop`], one after the other.
    pub async fn stop_modules(&self, server: &Server) {
        for lifetime in &self.lifetimes {
            lifetime.stop(server).await;
        }
    }

    /// The series `/metrics` shows (`crate::metrics`).
    pub fn metrics(&self) -> &crate::metrics::Registry {
        &self.metrics
    }

    /// What modules serve on the HTTP listeners.
    pub fn http_routes(&self) -> &[Arc<dyn HttpRoutes>] {
        &self.http_routes
    }

    /// The service whose domain is `domain`.
    pub fn service(&self, domain: &str) -> Option<Arc<ServiceEntry>> {
        self.hosts.read(|t| t.services.get(domain).cloned())
    }

    /// Whether `domain` is a service's (no clone of its entry).
    pub fn is_service(&self, domain: &str) -> bool {
        self.hosts.read(|t| t.services.contains_key(domain))
    }

    /// The services of `host`, by domain (its disco#items, XEP-0030 §4).
    pub fn services_of(&self, host: &str) -> Vec<Arc<ServiceEntry>> {
        let mut list: Vec<Arc<ServiceEntry>> = self.hosts.read(|t| {
            t.services
                .values()
                .filter(|s| s.host == host)
                .cloned()
                .collect()
        });
        list.sort_by(|a, b| a.domain.cmp(&b.domain));
        list
    }

    /// Whether module `name` runs for `host`.
    pub fn is_enabled(&self, host: &str, name: &str) -> bool {
        MODULES
            .iter()
            .position(|m| m.name == name)
            .is_some_and(|i| self.mask(host) & ModuleId(i as u8).bit() != 0)
    }

    /// The handler for an IQ of `iq_type` to `target` on `domain` (a host's, or a service's
    /// for [`Target::Service`]) with this payload. On a service's domain, its owner's
    /// handler comes before another module's for the same payload.
    pub fn iq_handler(
        &self,
        domain: &str,
        iq_type: IqType,
        target: Target,
        ns: &str,
        name: &str,
    ) -> Option<&Arc<dyn IqHandler>> {
        let (mask, owner) = self.hosts.read(|t| match t.services.get(domain) {
            Some(service) if target == Target::Service => (service.mask, service.owner),
            _ => (self.mask_in(t, domain), 0),
        });
        let mut found = None;
        for r in self.iq.get(ns)?.iter().filter(|r| {
            r.iq_type == iq_type
                && r.target == target
                && r.name == name
                && mask & r.module.bit() != 0
        }) {
            if owner == 0 || r.module.bit() == owner {
                return Some(&r.handler);
            }
            found.get_or_insert(&r.handler);
        }
        found
    }

    /// The disco#info features of `target` on `host`, sorted and without repeats.
    pub fn disco_features(&self, host: &str, target: DiscoTarget) -> Vec<&'static str> {
        let mask = self.mask(host);
        let mut features: Vec<&'static str> = self
            .features
            .iter()
            .filter(|(required, t, _)| *t == target && mask & required == *required)
            .map(|(_, _, f)| *f)
            .collect();
        features.sort_unstable();
        features.dedup();
        features
    }

    /// The disco#info identities of `target` on `host`.
    pub fn disco_identities(&self, host: &str, target: DiscoTarget) -> Vec<&Identity> {
        let mask = self.mask(host);
        self.identities
            .iter()
            .filter(|(m, t, _)| *t == target && mask & m.bit() != 0)
            .map(|(_, _, i)| i)
            .collect()
    }

    /// The XEP-0128 data forms of `target` on `host`, as they are now.
    pub fn disco_extensions(&self, host: &str, target: DiscoTarget) -> Vec<Element> {
        let mask = self.mask(host);
        self.extensions
            .iter()
            .filter(|(m, t, _)| *t == target && mask & m.bit() != 0)
            .filter_map(|(_, _, form)| form.form())
            .collect()
    }

    /// Whether disco#info `node` of `target` on `host` is the target's own info.
    pub fn is_own_info_node(
        &self,
        server: &Server,
        host: &str,
        target: DiscoTarget,
        node: &str,
    ) -> bool {
        let mask = self.mask(host);
        self.info_nodes
            .iter()
            .filter(|(m, t, _)| *t == target && mask & m.bit() != 0)
            .any(|(_, _, n)| n.is_own(server, host, node))
    }

    /// What the modules on for `host` add to `target`'s disco#items, in module order.
    pub fn disco_items(
        &self,
        host: &str,
        target: DiscoTarget,
    ) -> impl Iterator<Item = &Arc<dyn DiscoItems>> {
        let mask = self.mask(host);
        self.disco_items
            .iter()
            .filter(move |(m, t, _)| *t == target && mask & m.bit() != 0)
            .map(|(_, _, items)| items)
    }

    /// The XEP-0050 commands on `domain`, in registration order: a host's, of the modules
    /// on for it ([`Target::Host`]); a service's, of the module whose service it is
    /// ([`Target::Service`]).
    pub fn commands(
        &self,
        domain: &str,
        target: Target,
    ) -> impl Iterator<Item = &Arc<dyn AdHocCommand>> {
        let mask = match target {
            Target::Service => self
                .hosts
                .read(|t| t.services.get(domain).map_or(0, |s| s.owner)),
            _ => self.mask(domain),
        };
        self.commands
            .iter()
            .filter(move |(m, t, _)| *t == target && mask & m.bit() != 0)
            .map(|(_, _, c)| c)
    }

    /// The module-offered stream features at `stage`, in registration order.
    pub fn stream_features(&self, stage: Stage, ctx: &FeatureContext<'_>) -> Vec<Element> {
        let mask = self.mask(ctx.host);
        self.stream_features
            .iter()
            .filter(|(m, s, _)| *s == stage && mask & m.bit() != 0)
            .filter_map(|(_, _, f)| f.offer(ctx))
            .collect()
    }

    /// The handler for a nonza on a session of `host`.
    pub fn nonza_handler(&self, host: &str, element: &Element) -> Option<&Arc<dyn NonzaHandler>> {
        let mask = self.mask(host);
        self.nonzas
            .get(element.ns())?
            .iter()
            .find(|(name, module, _)| *name == element.name() && mask & module.bit() != 0)
            .map(|(_, _, handler)| handler)
    }

    /// The backlogs of the modules on for `host`, in module order.
    pub fn backlogs(&self, host: &str) -> impl Iterator<Item = &Arc<dyn Backlog>> {
        let mask = self.mask(host);
        self.backlogs
            .iter()
            .filter(move |(m, _)| mask & m.bit() != 0)
            .map(|(_, b)| b)
    }

    /// The handler for an IQ with this payload on an unauthenticated stream for `host`.
    pub fn pre_auth_iq_handler(
        &self,
        host: &str,
        payload: &Element,
    ) -> Option<&Arc<dyn PreAuthIqHandler>> {
        let mask = self.mask(host);
        self.pre_auth_iqs
            .get(payload.ns())?
            .iter()
            .find(|(name, module, _)| *name == payload.name() && mask & module.bit() != 0)
            .map(|(_, _, handler)| handler)
    }

    /// Whether any module listens to `kind` (lets the core skip preparing an event).
    pub fn listens(&self, kind: EventKind) -> bool {
        self.hooks[kind as usize].iter().any(|(_, _, h)| h.active())
    }

    /// Runs the listeners of `event` until one handles or refuses it.
    pub async fn fire(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        let hooks = &self.hooks[event.kind() as usize];
        if hooks.is_empty() {
            return Flow::Continue;
        }
        // The usual case, every host running the same modules, needs no host lookup.
        let mask = if self.hosts.uniform() {
            self.global
        } else {
            self.mask(event.host())
        };
        for (_, module, hook) in hooks {
            if mask & module.bit() == 0 || !hook.active() {
                continue;
            }
            let flow = match hook.quick(server, event) {
                Some(flow) => flow,
                None => hook.on(server, event).await,
            };
            match flow {
                Flow::Continue => {}
                stop => return stop,
            }
        }
        Flow::Continue
    }
}

/// A module table's problem as a reload reports it: `key: what is wrong`.
fn reason(e: super::config::TableError) -> String {
    format!("{}: {}", e.path.join("."), e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[(&str, HostConfig)]) -> BTreeMap<String, HostConfig> {
        list.iter()
            .map(|(name, config)| (name.to_string(), config.clone()))
            .collect()
    }

    /// A live key is one of its module's options: a misspelt one would leave the real
    /// option needing a restart, without a word. Each key is handed to the module's reload
    /// alone, with an odd value: taken, or refused for its value, never for its name (the
    /// options refuse names they don't know, as a name that is none shows).
    #[test]
    fn every_live_key_names_an_option_of_its_module() {
        let mut config = Config::default();
        for module in MODULES {
            let mut table = toml::Table::new();
            table.insert("enabled".into(), toml::Value::Boolean(true));
            config.modules.0.insert(module.name.into(), table);
        }
        let registry = Registry::build(&config);
        let mut checked = 0;
        let odd = || {
            toml::Value::Array(vec![toml::Value::Datetime(
                "1979-05-27T07:32:00Z".parse().unwrap(),
            )])
        };
        for reload in &registry.reloads {
            let module = MODULES[reload.module.0 as usize].name;
            let none = toml::Table::from_iter([("no_such_option".to_owned(), odd())]);
            let refused = (reload.apply)(none).expect_err(module);
            assert!(refused.contains("unknown field"), "{module}: {refused}");
            for key in reload.live {
                let table = toml::Table::from_iter([((*key).to_owned(), odd())]);
                if let Err(refused) = (reload.apply)(table) {
                    assert!(
                        !refused.contains("unknown field"),
                        "modules.{module}: live key {key:?}: {refused}"
                    );
                }
                checked += 1;
            }
        }
        assert!(checked >= 20, "{checked} live keys");
    }

    #[test]
    fn a_new_host_gets_its_services_placed_as_at_start() {
        let registry = Registry::build(&Config::default());
        let no_pubsub = HostConfig {
            modules_disabled: vec!["pubsub".into()],
            ..HostConfig::default()
        };
        let table = registry.table_for(&hosts(&[
            ("localhost", HostConfig::default()),
            ("new.example", HostConfig::default()),
            ("quiet.example", no_pubsub),
        ]));
        let placed = |domain: &str| table.services.get(domain).map(|s| s.host.as_str());
        assert_eq!(placed("pubsub.localhost"), Some("localhost"));
        assert_eq!(placed("pubsub.new.example"), Some("new.example"));
        assert_eq!(placed("conference.new.example"), Some("new.example"));
        // Off for the host: neither the module nor its service there.
        assert_eq!(placed("pubsub.quiet.example"), None);
        assert_eq!(placed("conference.quiet.example"), Some("quiet.example"));
        let pubsub = 1u64 << MODULES.iter().position(|m| m.name == "pubsub").unwrap();
        assert_eq!(table.hosts["quiet.example"].mask & pubsub, 0);
        assert_ne!(table.hosts["new.example"].mask & pubsub, 0);
        assert!(!table.uniform);
    }

    fn config(text: &str) -> Config {
        Config::from_toml_str(text, None).unwrap()
    }

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn a_reload_applies_the_live_keys_and_keeps_the_bound_ones() {
        let upload = "enabled = true\ndomain = \"files.{host}\"\n";
        let old = config(&format!("[modules.upload]\n{upload}max_file_size = 5000\n"));
        let registry = Registry::build(&old);
        let reload = |options: &str| {
            let mut new = old.modules.clone();
            new.0.insert("upload".to_owned(), table(options));
            let outcomes = registry.reload(&old.modules, &new);
            assert_eq!(outcomes.len(), 1, "{outcomes:?}");
            outcomes.into_iter().next().unwrap().result
        };
        let before = registry.options_applied();

        // The domain is placed at start: it keeps its value, the limit is applied.
        let in_force = reload("enabled = true\ndomain = \"up.{host}\"\nmax_file_size = 100\n")
            .unwrap()
            .unwrap();
        assert_eq!(in_force, table(&format!("{upload}max_file_size = 100\n")));
        assert_eq!(registry.options_applied(), before + 1);

        // Only a bound key changed: nothing to apply.
        assert_eq!(
            reload("enabled = true\ndomain = \"up.{host}\"\nmax_file_size = 5000\n"),
            Err(ReloadRefused::Restart)
        );

        // Checked as at start: refused with the reason, nothing applied.
        assert_eq!(
            reload(&format!("{upload}max_file_size = 0\n")),
            Err(ReloadRefused::Invalid(
                "max_file_size: must be at least 1 byte".to_owned()
            ))
        );
        assert_eq!(registry.options_applied(), before + 1);
    }

    #[test]
    fn a_module_without_a_reload_hook_or_switched_on_needs_a_restart() {
        let old = config("[modules.last]\nenabled = true\n");
        let registry = Registry::build(&old);
        let new = config("[modules.upload]\nenabled = true\n[modules.muc]\nenabled = false\n");
        let outcomes = registry.reload(&old.modules, &new.modules);
        let names: Vec<_> = outcomes.iter().map(|o| o.name).collect();
        assert_eq!(names, ["last", "muc", "upload"]);
        assert!(outcomes
            .iter()
            .all(|o| o.result == Err(ReloadRefused::Restart)));
    }
}
