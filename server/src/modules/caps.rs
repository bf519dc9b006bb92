//! XEP-0115: Entity Capabilities (version 1.6.0), both ways.
//!
//! The server's own: a `<c/>` stream feature before (once TLS is up, where it must be) and
//! after authentication (§6.3), whose
//! `ver` hashes the host's disco#info as the disco module answers it (so a host with a
//! module switched off has its own `ver`), and that info answered again under
//! `NODE#VER` (§6.2) through the disco module.
//!
//! Clients': the `<c/>` of a client's broadcast presence kept on its session, and resolved
//! to the client's features for modules that choose what to send by what a resource
//! supports (PEP's `+notify`, XEP-0163 §4): a `ver` already seen gives them at once, a new
//! one is asked of the client (disco#info of `NODE#VER`, from its own account as Prosody
//! asks) once, and its answer is remembered under the `ver` when it hashes to it (§5.4), so
//! every later client announcing it costs no query. `Event::ClientFeatures` says when a
//! session's features became known or changed.
//!
//! Other servers' clients: the available presence their servers send our accounts is kept
//! per full JID ([`RemoteResources`], shared with other modules through
//! `Registrar::shared`) until the resource's unavailable presence, its caps resolved the
//! same way (the query sent over federation from the account the presence came to), and
//! `Event::ClientFeatures` fired for it too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jabberwock_protocol::caps::{self, Caps as CapsElement, SHA_1};
use jabberwock_protocol::jid::{BareJid, FullJid, Jid};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{IqType, Stanza};
use jabberwock_protocol::xml::Element;
use serde::Deserialize;

use super::disco::info_query;
use super::{
    xep, Event, EventKind, FeatureContext, Flow, Hook, InfoNode, Module, OwnWrites, Registrar,
    SessionState, Stage, StreamFeature, Target, Xep,
};
use crate::live::Snapshot;
use crate::server::Server;

pub struct Caps;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CapsConfig {
    /// §4: a URI naming the software; peers cache the info by `ver`, not by it.
    node: String,
}

impl Default for CapsConfig {
    fn default() -> Self {
        CapsConfig {
            node: DEFAULT_NODE.to_owned(),
        }
    }
}

const DEFAULT_NODE: &str = "https://jabberwock.invalid/";

/// The server's caps: its node and, per host, the `ver` of that host's info.
struct ServerCaps {
    /// `[modules.caps] node`, which a reload may change.
    node: Snapshot<String>,
    vers: Mutex<Vers>,
}

/// Each host's `ver`, computed at the host's first stream. A reload may change a host's
/// modules (the hosts' table) and what they show (new options, XEP-0157's addresses), so
/// the `ver`s are computed again once either moved. Only served hosts are kept.
#[derive(Default)]
struct Vers {
    /// `Registry::hosts_generation` and `Registry::options_applied` when these were
    /// computed.
    under: (u64, u64),
    by_host: HashMap<String, Option<String>>,
}

impl ServerCaps {
    fn vers(&self) -> MutexGuard<'_, Vers> {
        self.vers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `ver` of `host`'s disco#info, `None` if it is ill-formed (§5.4: a peer could not
    /// check it, so none is offered).
    fn ver(&self, server: &Server, host: &str) -> Option<String> {
        // Read before the info is: a reload meanwhile leaves this `ver` unkept, computed
        // again at the next stream.
        let under = (
            server.modules.hosts_generation(),
            server.modules.options_applied(),
        );
        {
            let mut vers = self.vers();
            if vers.under != under {
                *vers = Vers {
                    under,
                    by_host: HashMap::new(),
                };
            }
            if let Some(ver) = vers.by_host.get(host) {
                return ver.clone();
            }
        }
        let ver = match caps::ver(&info_query(&server.modules, host, Target::Host)) {
            Ok(ver) => Some(ver),
            Err(e) => {
                tracing::warn!(host, error = %e, "no XEP-0115 ver: the disco#info is ill-formed");
                None
            }
        };
        let mut vers = self.vers();
        // Computed from what a reload since may have changed: left for the next stream.
        if server.serves(host) && vers.under == under {
            vers.by_host.insert(host.to_owned(), ver.clone());
        }
        ver
    }
}

/// The `<c/>` stream feature (§6.3).
struct Feature(Arc<ServerCaps>, Stage);

impl StreamFeature for Feature {
    fn offer(&self, ctx: &FeatureContext<'_>) -> Option<Element> {
        // RFC 6120 §5.3.1: where TLS is mandatory-to-negotiate, a standard stream in clear
        // is offered STARTTLS alone: nothing else until the core offers a login.
        if self.1 == Stage::PreAuth && !ctx.auth_offered {
            return None;
        }
        let ver = self.0.ver(ctx.server, ctx.host)?;
        Some(
            CapsElement {
                hash: Some(SHA_1.to_owned()),
                node: self.0.node.get().to_string(),
                ver,
            }
            .to_element(),
        )
    }
}

/// `NODE#VER` names the host's own info (§6.2).
struct Node(Arc<ServerCaps>);

impl InfoNode for Node {
    fn is_own(&self, server: &Server, host: &str, node: &str) -> bool {
        let Some((name, ver)) = node.rsplit_once('#') else {
            return false;
        };
        name == self.0.node.get().as_str() && self.0.ver(server, host).is_some_and(|own| own == ver)
    }
}

/// What a client supports, as its disco#info lists it (XEP-0030 features), found through its
/// caps (§5).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ClientFeatures {
    /// The features, sorted.
    features: Vec<String>,
    /// XEP-0163 §4: the nodes of `NODE+notify` features (the client wants notifications of
    /// them), sorted.
    notify: Vec<String>,
}

impl ClientFeatures {
    /// The features of a disco#info `<query/>`.
    pub fn from_info(query: &Element) -> ClientFeatures {
        let mut features: Vec<String> = query
            .children()
            .filter(|c| c.is("feature", ns::DISCO_INFO))
            .filter_map(|c| c.attr("var"))
            .map(str::to_owned)
            .collect();
        features.sort_unstable();
        features.dedup();
        let notify = features
            .iter()
            .filter_map(|f| f.strip_suffix("+notify"))
            .map(str::to_owned)
            .collect();
        ClientFeatures { features, notify }
    }

    /// Whether the client lists `var`.
    pub fn has(&self, var: &str) -> bool {
        self.features
            .binary_search_by(|f| f.as_str().cmp(var))
            .is_ok()
    }

    /// XEP-0163 §4: whether the client wants notifications of `node` (`node+notify`).
    pub fn wants(&self, node: &str) -> bool {
        self.notify
            .binary_search_by(|n| n.as_str().cmp(node))
            .is_ok()
    }

    /// The nodes the client wants notifications of, sorted.
    pub fn notify_nodes(&self) -> &[String] {
        &self.notify
    }
}

/// What a session's client last said it is (§4), and what that resolved to, kept on its
/// session.
#[derive(Default)]
struct ClientCaps(Mutex<Announced>);

#[derive(Default)]
struct Announced {
    caps: Option<CapsElement>,
    features: Option<Arc<ClientFeatures>>,
}

impl ClientCaps {
    fn lock(&self) -> MutexGuard<'_, Announced> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The caps a client's broadcast presence says it has: `Some(None)` when it says nothing
/// (available without `<c/>`, or unavailable), `None` when the presence is not broadcast
/// (directed presence says nothing about the session).
fn announced(presence: &Element) -> Option<Option<CapsElement>> {
    if presence.attr("to").is_some() {
        return None;
    }
    match presence.attr("type") {
        None => Some(
            presence
                .get_child("c", ns::CAPS)
                .and_then(CapsElement::parse),
        ),
        Some("unavailable") => Some(None),
        Some(_) => None,
    }
}

/// How many `ver`s the server remembers the features of (clients share a handful; each
/// entry is a list of feature names).
const KNOWN_VERS: usize = 4096;
/// How long a client has to answer the disco#info query of its caps.
const ASK_TIMEOUT: Duration = Duration::from_secs(60);
/// How many such queries may wait for an answer at once; more clients with `ver`s not
/// yet known are asked once some are answered or expire.
const MAX_ASKED: usize = 1024;

/// A disco#info query sent to a client about its caps, waiting for the answer.
struct Asked {
    jid: FullJid,
    caps: CapsElement,
    at: Instant,
}

/// Clients' caps resolved to features: the `ver`s whose info is known (§5: asked once per
/// verification string, then shared by every client that announces it) and the queries
/// waiting for an answer.
#[derive(Default)]
struct Resolver {
    known: Mutex<HashMap<String, Arc<ClientFeatures>>>,
    asked: Mutex<HashMap<String, Asked>>,
    /// How many queries wait: IQs to accounts are looked at only while some do.
    waiting: AtomicUsize,
    next_id: AtomicU64,
}

impl Resolver {
    fn known(&self) -> MutexGuard<'_, HashMap<String, Arc<ClientFeatures>>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn asked(&self) -> MutexGuard<'_, HashMap<String, Asked>> {
        self.asked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The features of `caps` if its `ver` is known. Only hashed caps are looked up: a
    /// legacy `ver` (§4, no `hash`) names no fixed set of features.
    fn lookup(&self, caps: &CapsElement) -> Option<Arc<ClientFeatures>> {
        caps.hash.as_ref()?;
        self.known().get(&caps.ver).cloned()
    }

    /// Remembers the features of a checked `ver`.
    fn remember(&self, ver: &str, features: &Arc<ClientFeatures>) {
        let mut known = self.known();
        if known.len() >= KNOWN_VERS && !known.contains_key(ver) {
            // Any one goes: a `ver` forgotten is asked again of the next client with it.
            if let Some(old) = known.keys().next().cloned() {
                known.remove(&old);
            }
        }
        known.insert(ver.to_owned(), features.clone());
    }

    /// The disco#info query of `caps` for the client at `jid`, from the account `from` (a
    /// local client's own account, as its personal eventing service asks, XEP-0163 §4; for
    /// another server's client, the account of ours its presence came to), or `None` when
    /// the same query waits already or too many do.
    fn ask(&self, jid: &FullJid, caps: &CapsElement, from: &BareJid) -> Option<Element> {
        let now = Instant::now();
        let mut asked = self.asked();
        asked.retain(|_, a| now.duration_since(a.at) < ASK_TIMEOUT);
        // A presence repeated before the client answered asks nothing more.
        if asked.values().any(|a| &a.jid == jid && a.caps == *caps) {
            return None;
        }
        if asked.len() >= MAX_ASKED {
            self.waiting.store(asked.len(), Ordering::Relaxed);
            return None;
        }
        let id = format!("caps-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        asked.insert(
            id.clone(),
            Asked {
                jid: jid.clone(),
                caps: caps.clone(),
                at: now,
            },
        );
        self.waiting.store(asked.len(), Ordering::Relaxed);
        Some(
            Element::new("iq", ns::CLIENT)
                .with_attr("type", "get")
                .with_attr("id", id)
                .with_attr("from", from.as_str())
                .with_attr("to", jid.as_str())
                .with_child(
                    Element::new("query", ns::DISCO_INFO).with_attr("node", caps.disco_node()),
                ),
        )
    }

    /// The query `id` sent to `from`, if one waits. Queries past their time go too, so that
    /// IQs stop being looked at once none waits.
    fn answered(&self, id: &str, from: &FullJid) -> Option<CapsElement> {
        let mut asked = self.asked();
        let now = Instant::now();
        asked.retain(|_, a| now.duration_since(a.at) < ASK_TIMEOUT);
        let answered = match asked.get(id) {
            Some(a) if &a.jid == from => asked.remove(id).map(|a| a.caps),
            _ => None,
        };
        self.waiting.store(asked.len(), Ordering::Relaxed);
        answered
    }
}

/// Keeps the caps of each client's broadcast presence on its session, resolves them to the
/// client's features (asking the client when its `ver` is new), and takes the answers.
struct Record(Arc<Resolver>);

/// Sets what `jid`'s client supports and tells the modules when that changed.
async fn set_features(
    server: &Server,
    jid: &FullJid,
    state: &ClientCaps,
    features: Option<Arc<ClientFeatures>>,
) {
    let previous = std::mem::replace(&mut state.lock().features, features.clone());
    features_changed(server, jid, previous, features).await;
}

/// Tells the modules that what `jid`'s client supports went from `previous` to `features`,
/// if it did.
async fn features_changed(
    server: &Server,
    jid: &FullJid,
    previous: Option<Arc<ClientFeatures>>,
    features: Option<Arc<ClientFeatures>>,
) {
    if previous == features {
        return;
    }
    let mut event = Event::ClientFeatures {
        jid,
        features: features.as_ref(),
        previous: previous.as_ref(),
    };
    server.modules.fire(server, &mut event).await;
}

impl Record {
    async fn presence(
        &self,
        server: &Server,
        from: &FullJid,
        caps: Option<CapsElement>,
        own: &mut OwnWrites,
    ) {
        let Some(state) = server.router.table.session_state(from) else {
            return;
        };
        if caps.is_none() && !state.has::<ClientCaps>() {
            return;
        }
        let client = state.get_or_insert_with(ClientCaps::default);
        let same = {
            let mut announced = client.lock();
            let same = announced.caps == caps && announced.features.is_some();
            announced.caps = caps.clone();
            same
        };
        let Some(caps) = caps.filter(|_| !same) else {
            if !same {
                set_features(server, from, &client, None).await;
            }
            return;
        };
        match self.0.lookup(&caps) {
            Some(features) => set_features(server, from, &client, Some(features)).await,
            None => {
                // Until the client answers, what it supported before no longer holds.
                set_features(server, from, &client, None).await;
                own.stanzas.extend(self.0.ask(from, &caps, &from.to_bare()));
            }
        }
    }

    /// The client's answer to a caps query: its features, remembered under the `ver` when
    /// the info hashes to it (§5.4: otherwise the `ver` is not trusted for anyone else).
    async fn answer(&self, server: &Server, from: &FullJid, caps: CapsElement, stanza: &Stanza) {
        let query = stanza
            .element()
            .get_child("query", ns::DISCO_INFO)
            .filter(|_| stanza.iq_type() == Some(IqType::Result));
        let features = query.map(|q| Arc::new(ClientFeatures::from_info(q)));
        if let (Some(query), Some(features)) = (query, &features) {
            let checked = caps.hash.as_deref() == Some(SHA_1)
                && caps::ver(query).is_ok_and(|ver| ver == caps.ver);
            if checked {
                self.0.remember(&caps.ver, features);
            } else {
                tracing::debug!(%from, ver = %caps.ver, "a client's disco#info does not match its caps");
            }
        }
        if !is_ours(server, from) {
            if let Some(remote) = server.modules.shared().get::<RemoteResources>() {
                remote.resolved(server, from, &caps, features).await;
            }
            return;
        }
        let Some(state) = server.router.table.session_state(from) else {
            return;
        };
        let Some(client) = state.get::<ClientCaps>() else {
            return;
        };
        // A newer presence may have announced other caps meanwhile.
        if client.lock().caps.as_ref() != Some(&caps) {
            return;
        }
        set_features(server, from, &client, features).await;
    }
}

#[async_trait]
impl Hook for Record {
    fn quick(&self, _server: &Server, event: &mut Event<'_>) -> Option<Flow> {
        // Only answers to our queries are for us among the IQs to accounts.
        match event {
            Event::IqIn { .. } if self.0.waiting.load(Ordering::Relaxed) == 0 => {
                Some(Flow::Continue)
            }
            _ => None,
        }
    }

    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        match event {
            Event::PresenceOut { from, stanza, own } => {
                if let Some(caps) = announced(stanza.element()) {
                    self.presence(server, from, caps, own).await;
                }
                Flow::Continue
            }
            Event::PresenceIn { to, presence } => {
                self.remote_presence(server, to, presence).await;
                Flow::Continue
            }
            Event::IqIn { from, to, stanza } => {
                // Asked from the client's own account, or from the account of ours that
                // another server's client sent its presence to.
                let answer = matches!(stanza.iq_type(), Some(IqType::Result | IqType::Error))
                    && to.try_as_full().is_err()
                    && (to.to_bare() == from.to_bare() || !is_ours(server, from));
                let Some(caps) = stanza
                    .id()
                    .filter(|_| answer)
                    .and_then(|id| self.0.answered(id, from))
                else {
                    return Flow::Continue;
                };
                self.answer(server, from, caps, stanza).await;
                Flow::Handled
            }
            _ => Flow::Continue,
        }
    }
}

fn is_ours(server: &Server, jid: &FullJid) -> bool {
    server.serves(jid.domain().as_str())
}

/// The priority of an available presence (RFC 6121 §4.7.2.3: 0 without one).
pub fn priority(presence: &Element) -> i8 {
    presence
        .get_child("priority", ns::CLIENT)
        .and_then(|p| p.text().trim().parse().ok())
        .unwrap_or(0)
}

/// How many other servers' accounts, and resources of each, are kept at most.
const REMOTE_ACCOUNTS: usize = 65_536;
const REMOTE_RESOURCES_PER_ACCOUNT: usize = 16;

/// What another server's available resource announced, from the presence its server sent
/// ours (RFC 6121 §4.4.3), and what its caps resolved to.
struct RemoteResource {
    caps: Option<CapsElement>,
    features: Option<Arc<ClientFeatures>>,
    priority: i8,
}

/// Other servers' available resources that sent presence to accounts of ours, by bare JID
/// then full JID: what personal eventing needs of contacts elsewhere (XEP-0163 §4: their
/// `NODE+notify`). A resource is forgotten on its unavailable presence.
#[derive(Default)]
pub struct RemoteResources(Mutex<HashMap<String, HashMap<String, RemoteResource>>>);

impl RemoteResources {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, RemoteResource>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The available resources of `bare` (another server's account) whose features are
    /// known, with their priority.
    pub fn of(&self, bare: &BareJid) -> Vec<(FullJid, i8, Arc<ClientFeatures>)> {
        let all = self.lock();
        let Some(resources) = all.get(bare.as_str()) else {
            return Vec::new();
        };
        resources
            .iter()
            .filter_map(|(full, r)| {
                let features = r.features.clone()?;
                Some((FullJid::new(full).ok()?, r.priority, features))
            })
            .collect()
    }

    /// Sets what `jid` is known to support, telling the modules when that changed.
    async fn set_features(
        &self,
        server: &Server,
        jid: &FullJid,
        features: Option<Arc<ClientFeatures>>,
    ) {
        let previous = {
            let mut all = self.lock();
            let Some(resource) = all
                .get_mut(jid.to_bare().as_str())
                .and_then(|r| r.get_mut(jid.as_str()))
            else {
                return;
            };
            std::mem::replace(&mut resource.features, features.clone())
        };
        features_changed(server, jid, previous, features).await;
    }

    /// The answer to the query of `caps` sent to `jid`, if it still announces them.
    async fn resolved(
        &self,
        server: &Server,
        jid: &FullJid,
        caps: &CapsElement,
        features: Option<Arc<ClientFeatures>>,
    ) {
        let current = self
            .lock()
            .get(jid.to_bare().as_str())
            .and_then(|r| r.get(jid.as_str()))
            .is_some_and(|r| r.caps.as_ref() == Some(caps));
        if current {
            self.set_features(server, jid, features).await;
        }
    }
}

impl Record {
    /// Presence another server sent one of our accounts: an available resource there is
    /// kept with its caps (resolved as a local client's are, the query sent from the
    /// account it came to), an unavailable one forgotten.
    async fn remote_presence(&self, server: &Server, to: &Jid, presence: &Element) {
        if !server.serves(to.domain().as_str()) || to.node().is_none() {
            return;
        }
        let Some(from) = presence.attr("from").and_then(|f| FullJid::new(f).ok()) else {
            return;
        };
        if is_ours(server, &from) {
            return;
        }
        let Some(remote) = server.modules.shared().get::<RemoteResources>() else {
            return;
        };
        let bare = from.to_bare();
        match presence.attr("type") {
            Some("unavailable") => {
                let mut all = remote.lock();
                if let Some(resources) = all.get_mut(bare.as_str()) {
                    resources.remove(from.as_str());
                    if resources.is_empty() {
                        all.remove(bare.as_str());
                    }
                }
            }
            None => {
                let caps = presence
                    .get_child("c", ns::CAPS)
                    .and_then(CapsElement::parse);
                let known = caps.as_ref().and_then(|c| self.0.lookup(c));
                let changed = {
                    let mut all = remote.lock();
                    // Bounded, as what another server sends us is: past the bounds a
                    // resource is not kept (it gets no notifications).
                    if !all.contains_key(bare.as_str()) && all.len() >= REMOTE_ACCOUNTS {
                        return;
                    }
                    let resources = all.entry(bare.as_str().to_owned()).or_default();
                    if !resources.contains_key(from.as_str())
                        && resources.len() >= REMOTE_RESOURCES_PER_ACCOUNT
                    {
                        return;
                    }
                    let resource =
                        resources
                            .entry(from.as_str().to_owned())
                            .or_insert(RemoteResource {
                                caps: None,
                                features: None,
                                priority: 0,
                            });
                    resource.priority = priority(presence);
                    let changed = resource.caps != caps || resource.features.is_none();
                    resource.caps = caps.clone();
                    changed
                };
                if !changed {
                    return;
                }
                let Some(caps) = caps else {
                    // Available without caps: nothing is known of what it supports.
                    return remote.set_features(server, &from, None).await;
                };
                // Asked, never waited for: the answer comes back as an IQ (or never).
                match known {
                    Some(features) => remote.set_features(server, &from, Some(features)).await,
                    None => {
                        remote.set_features(server, &from, None).await;
                        let query = self.0.ask(&from, &caps, &to.to_bare());
                        if let (Some(query), Some(federation)) = (query, server.modules.remote()) {
                            federation.send(server, query);
                        }
                    }
                }
            }
            Some(_) => {}
        }
    }
}

/// The caps (hash, node, ver) the client at `jid` announced in its last broadcast presence,
/// if it is bound, available and announced any.
pub fn client_caps(server: &Server, jid: &FullJid) -> Option<CapsElement> {
    server
        .router
        .table
        .session_state(jid)?
        .get::<ClientCaps>()?
        .lock()
        .caps
        .clone()
}

/// What the client of a session supports, if its caps resolved (it is available and
/// announced caps whose info is known).
pub fn features_of(state: &SessionState) -> Option<Arc<ClientFeatures>> {
    state.get::<ClientCaps>()?.lock().features.clone()
}

impl Module for Caps {
    const NAME: &'static str = "caps";
    const XEPS: &'static [Xep] = &[xep(115, "1.6.0")];
    /// The `ver` hashes the disco#info, and `NODE#VER` is answered, by the disco module.
    const DEPENDS: &'static [&'static str] = &["disco"];
    type Config = CapsConfig;

    fn register(config: CapsConfig, registry: &mut Registrar<'_>) {
        let server_caps = Arc::new(ServerCaps {
            node: Snapshot::new(config.node),
            vers: Mutex::default(),
        });
        // A new node goes into the `<c/>` of the streams that start after the reload.
        let reloaded = server_caps.clone();
        registry.on_reload(&["node"], move |config: CapsConfig| {
            reloaded.node.set(config.node);
            Ok(())
        });
        for stage in [Stage::PreAuth, Stage::PostAuth] {
            registry.stream_feature(stage, Arc::new(Feature(server_caps.clone(), stage)));
        }
        registry.disco_info_node(Target::Host, Arc::new(Node(server_caps)));
        registry
            .shared()
            .get_or_insert_with(RemoteResources::default);
        let record = Arc::new(Record(Arc::new(Resolver::default())));
        registry.hook(EventKind::PresenceOut, 0, record.clone());
        registry.hook(EventKind::PresenceIn, 0, record.clone());
        registry.hook(EventKind::IqIn, 0, record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jabberwock_protocol::xml::parse_stanza;

    fn presence(xml: &str) -> Element {
        parse_stanza(xml.as_bytes()).unwrap()
    }

    const C: &str = "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' \
                     node='https://example.org/client' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>";

    #[test]
    fn broadcast_available_presence_announces_its_caps() {
        let caps = announced(&presence(&format!(
            "<presence xmlns='jabber:client'>{C}</presence>"
        )))
        .unwrap()
        .unwrap();
        assert_eq!(caps.hash.as_deref(), Some("sha-1"));
        assert_eq!(caps.node, "https://example.org/client");
        assert_eq!(caps.ver, "QgayPKawpkPSDYmwT/WM94uAlu0=");
    }

    #[test]
    fn presence_without_caps_or_unavailable_announces_none() {
        let plain = presence("<presence xmlns='jabber:client'><show>away</show></presence>");
        assert_eq!(announced(&plain), Some(None));
        let gone = presence(&format!(
            "<presence xmlns='jabber:client' type='unavailable'>{C}</presence>"
        ));
        assert_eq!(announced(&gone), Some(None));
    }

    #[test]
    fn directed_presence_and_subscriptions_say_nothing_of_the_session() {
        let directed = presence(&format!(
            "<presence xmlns='jabber:client' to='room@muc.example.org/me'>{C}</presence>"
        ));
        assert_eq!(announced(&directed), None);
        let subscribe =
            presence("<presence xmlns='jabber:client' to='b@example.org' type='subscribe'/>");
        assert_eq!(announced(&subscribe), None);
        let probe = presence("<presence xmlns='jabber:client' type='probe'/>");
        assert_eq!(announced(&probe), None);
    }
}
