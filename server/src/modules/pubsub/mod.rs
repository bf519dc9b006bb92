//! XEP-0060: Publish-Subscribe, as a service of its own beside each host (`pubsub.HOST`),
//! for sites that push news or status to widgets and bots: nodes that local accounts make
//! and own, explicit subscriptions, affiliations, and notifications to every subscribed
//! JID. It runs on the engine personal eventing (XEP-0163, the `pep` module) uses: one
//! store (`PubsubStore`, keyed by service: here the domain, there the account) and the
//! node configuration of `config.rs`.
//!
//! - `config.rs`: a node's configuration, its form, publish options and access models;
//!   `payload.rs`: items' ids and payloads. Both are shared with `pep`.
//! - `node.rs`: a node as a request sees it (configuration and affiliations), and who
//!   the asker is to it (access models, with the owners' rosters for `presence` and
//!   `roster`).
//! - `publish.rs`: publish, retract, item retrieval with XEP-0059 pages.
//! - `subscribe.rs`: subscribe, unsubscribe, subscription options, the asker's own
//!   subscriptions and affiliations.
//! - `owner.rs`: create, configure, default, delete, purge, the node's affiliations and
//!   subscriptions.
//! - `notify.rs`: event notifications to subscribers and owners (with a `<body/>` for
//!   those who asked, `pubsub#include_body`), the last item.
//! - `expire.rs`: `pubsub#item_expire`: expired items left out of reads and removed, a
//!   sweep of each service's nodes.
//! - `offline.rs`: `pubsub#presence_based_delivery` (who is available) and
//!   `pubsub#purge_offline` (an account's items go when it does), for local accounts.
//! - `authorize.rs`: the `authorize` access model's pending subscriptions, the owners'
//!   approval form and their answers.
//! - `pending.rs`: the `get-pending` ad-hoc command (§8.7): an owner's pending
//!   subscriptions asked about again.
//! - `disco.rs`: the service's identity and features, its nodes, a node's meta-data.

mod authorize;
pub(crate) mod config;
mod disco;
mod expire;
pub(super) mod node;
mod notify;
mod offline;
mod owner;
pub(super) mod payload;
mod pending;
mod publish;
mod subscribe;

use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::jid::{BareJid, FullJid};
use jabberwock_protocol::ns;
use jabberwock_protocol::pubsub::{self, Request};
use jabberwock_protocol::stanza::{Condition, IqType, StanzaError, StanzaKind};
use jabberwock_protocol::xml::Element;
use serde::Deserialize;

use super::config::TableError;
use super::registry::Identity;
use super::{
    xep, EventKind, IqHandler, IqRequest, Module, Registrar, Service, ServiceDelivery, Target, Xep,
};
use crate::live::Snapshot;
use crate::server::Server;
use config::Rules;
use offline::{GoneOffline, Purging};

pub struct Pubsub;

/// `[modules.pubsub] create_nodes`: who may make nodes (§8.1.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateNodes {
    /// Every account of the server's hosts (Prosody's and ejabberd's default).
    #[default]
    Local,
    /// Only the JIDs of `admins`.
    Admins,
}

/// `[modules.pubsub]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PubsubConfig {
    /// The service's domain on each host; `{host}` is the host's name.
    pub domain: String,
    pub create_nodes: CreateNodes,
    /// Bare JIDs that may make nodes whatever `create_nodes` says, and own every node.
    pub admins: Vec<String>,
    /// Nodes the service holds at most, per host.
    pub max_nodes: u64,
    /// Items one node may keep, and what `pubsub#max_items` `max` means.
    pub max_items_per_node: u64,
    /// The largest payload of one item, serialized, in bytes.
    pub max_item_bytes: usize,
}

impl Default for PubsubConfig {
    fn default() -> Self {
        PubsubConfig {
            domain: "pubsub.{host}".to_owned(),
            create_nodes: CreateNodes::Local,
            admins: Vec::new(),
            max_nodes: 1024,
            max_items_per_node: 256,
            max_item_bytes: 65_536,
        }
    }
}

impl PubsubConfig {
    fn rules(&self) -> Rules {
        Rules {
            ceiling: self.max_items_per_node,
            service: true,
            max_payload: u64::try_from(self.max_item_bytes).unwrap_or(u64::MAX),
        }
    }

    fn is_admin(&self, jid: &BareJid) -> bool {
        self.admins.iter().any(|a| a == jid.as_str())
    }
}

/// The features of the service (XEP-0060 §10): what is implemented, nothing more.
const FEATURES: &[&str] = &[
    "http://jabber.org/protocol/pubsub",
    "http://jabber.org/protocol/pubsub#access-authorize",
    "http://jabber.org/protocol/pubsub#access-open",
    "http://jabber.org/protocol/pubsub#access-presence",
    "http://jabber.org/protocol/pubsub#access-roster",
    "http://jabber.org/protocol/pubsub#access-whitelist",
    "http://jabber.org/protocol/pubsub#config-node",
    "http://jabber.org/protocol/pubsub#config-node-max",
    "http://jabber.org/protocol/pubsub#create-and-configure",
    "http://jabber.org/protocol/pubsub#create-nodes",
    "http://jabber.org/protocol/pubsub#delete-items",
    "http://jabber.org/protocol/pubsub#delete-nodes",
    "http://jabber.org/protocol/pubsub#get-pending",
    "http://jabber.org/protocol/pubsub#instant-nodes",
    "http://jabber.org/protocol/pubsub#item-ids",
    "http://jabber.org/protocol/pubsub#last-published",
    "http://jabber.org/protocol/pubsub#manage-subscriptions",
    "http://jabber.org/protocol/pubsub#member-affiliation",
    "http://jabber.org/protocol/pubsub#meta-data",
    "http://jabber.org/protocol/pubsub#modify-affiliations",
    "http://jabber.org/protocol/pubsub#multi-items",
    "http://jabber.org/protocol/pubsub#outcast-affiliation",
    "http://jabber.org/protocol/pubsub#persistent-items",
    "http://jabber.org/protocol/pubsub#publish",
    "http://jabber.org/protocol/pubsub#publish-only-affiliation",
    "http://jabber.org/protocol/pubsub#publish-options",
    "http://jabber.org/protocol/pubsub#publisher-affiliation",
    "http://jabber.org/protocol/pubsub#purge-nodes",
    "http://jabber.org/protocol/pubsub#retract-items",
    "http://jabber.org/protocol/pubsub#retrieve-affiliations",
    "http://jabber.org/protocol/pubsub#retrieve-default",
    "http://jabber.org/protocol/pubsub#retrieve-items",
    "http://jabber.org/protocol/pubsub#retrieve-subscriptions",
    "http://jabber.org/protocol/pubsub#rsm",
    "http://jabber.org/protocol/pubsub#subscribe",
    "http://jabber.org/protocol/pubsub#subscription-notifications",
    "http://jabber.org/protocol/pubsub#subscription-options",
];

/// One request to the service, as the handlers see it.
pub(super) struct Ctx<'a> {
    pub server: &'a Server,
    pub settings: &'a PubsubConfig,
    /// The service's domain.
    pub service: &'a str,
    pub from: &'a FullJid,
}

impl Ctx<'_> {
    pub fn asker(&self) -> BareJid {
        self.from.to_bare()
    }
}

/// The options in force, shared by the service's handlers: each request reads them once. A
/// reload replaces them but for `domain`, placed once at start.
type Settings = Arc<Snapshot<PubsubConfig>>;

/// Every `<pubsub/>` request to the service's domain.
struct Handler(Settings);

#[async_trait]
impl IqHandler for Handler {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let parsed = Request::parse(request.payload).map_err(|e| e.to_stanza_error())?;
        let settings = self.0.get();
        let ctx = Ctx {
            server: request.server,
            settings: &settings,
            service: request.to.domain().as_str(),
            from: request.from,
        };
        let get = request.stanza.iq_type() == Some(IqType::Get);
        match (get, parsed) {
            (
                true,
                Request::Items {
                    node,
                    max_items,
                    ids,
                    rsm,
                },
            ) => publish::items(&ctx, &node, max_items, &ids, rsm.as_ref()).await,
            (
                false,
                Request::Publish {
                    node,
                    item,
                    options,
                },
            ) => publish::publish(&ctx, &node, item, options.as_ref()).await,
            (false, Request::Retract { node, notify, ids }) => {
                publish::retract(&ctx, &node, notify, &ids).await
            }
            (false, Request::Subscribe { node, jid, options }) => {
                subscribe::subscribe(&ctx, &node, &jid, options.as_ref()).await
            }
            (false, Request::Unsubscribe { node, jid, subid }) => {
                subscribe::unsubscribe(&ctx, &node, &jid, subid.as_deref()).await
            }
            (
                get,
                Request::Options {
                    node,
                    jid,
                    subid,
                    form,
                },
            ) if get == form.is_none() => {
                subscribe::options(&ctx, &node, &jid, subid.as_deref(), form.as_ref()).await
            }
            (true, Request::Subscriptions { node }) => {
                subscribe::own_subscriptions(&ctx, node.as_deref()).await
            }
            (true, Request::Affiliations { node }) => {
                subscribe::own_affiliations(&ctx, node.as_deref()).await
            }
            (false, Request::Create { node, config }) => {
                owner::create(&ctx, node, config.as_ref()).await
            }
            (get, Request::Configure { node, form }) if get == form.is_none() => {
                owner::configure(&ctx, &node, form.as_ref()).await
            }
            (true, Request::Default) => owner::default_configuration(&ctx),
            (false, Request::Purge { node }) => owner::purge(&ctx, &node).await,
            (false, Request::Delete { node, redirect }) => {
                owner::delete(&ctx, &node, redirect).await
            }
            (get, Request::NodeAffiliations { node, changes }) if get == changes.is_empty() => {
                owner::affiliations(&ctx, &node, &changes).await
            }
            (get, Request::NodeSubscriptions { node, changes }) if get == changes.is_empty() => {
                owner::subscriptions(&ctx, &node, &changes).await
            }
            (_, Request::Unsupported(feature)) => Err(pubsub::unsupported(feature)),
            // A request sent with the other IQ type (§6.5: items are a get; publish a set).
            _ => Err(StanzaError::new(Condition::BadRequest)),
        }
    }
}

pub struct PubsubService {
    settings: Settings,
    purging: Arc<Purging>,
    sweeps: expire::Sweeps,
}

#[async_trait]
impl Service for PubsubService {
    fn domain(&self, host: &str) -> Option<String> {
        Some(
            self.settings
                .get()
                .domain
                .replace("{host}", host)
                .to_lowercase(),
        )
    }

    fn name(&self) -> Option<&'static str> {
        Some("Publish-Subscribe")
    }

    /// `pubsub#item_expire`: what expired while the server was down goes before anyone
    /// connects; the domain's sweep runs every hour from then on. `pubsub#purge_offline`:
    /// the domain's nodes that have it are known before anyone connects.
    async fn start(
        &self,
        server: &Server,
        _host: &str,
        domain: &str,
    ) -> Result<(), crate::StartError> {
        // One listing of the nodes for both: the nodes that purge offline publishers'
        // items, and the items that expired while the server was down.
        let store = server.store.as_ref();
        if let Some(nodes) = expire::nodes_of(store, domain).await {
            self.purging.load(domain, &nodes);
            let now = crate::modules::time::now_unix();
            expire::sweep_nodes(store, domain, &nodes, now).await;
        }
        self.sweeps.start(server.store.clone(), domain);
        Ok(())
    }

    /// The host is gone: the domain's sweep ends and its nodes purge no more (storage
    /// keeps them for the host's return, whose start lists them again).
    async fn stop(&self, _server: &Server, _host: &str, domain: &str) {
        self.sweeps.stop(domain);
        self.purging.forget(domain);
    }

    /// What the registered handlers do not answer: an owner's answer to a subscription
    /// request (§8.6) in a message to the domain; nodes are no JIDs of their own here
    /// (they are `node` attributes of the domain, §4.6), so a request to anything else is
    /// `service-unavailable`; presence and errors are dropped (RFC 6120 §8.3).
    async fn receive(&self, delivery: ServiceDelivery<'_>) {
        let stanza = delivery.stanza;
        let asks = match stanza.kind() {
            StanzaKind::Iq => matches!(stanza.iq_type(), Some(IqType::Get | IqType::Set)),
            StanzaKind::Message => !stanza.is_error(),
            StanzaKind::Presence => false,
        };
        if !asks {
            return;
        }
        let mut error = StanzaError::new(Condition::ServiceUnavailable);
        if let (StanzaKind::Message, Ok(from)) = (stanza.kind(), delivery.from.try_as_full()) {
            let settings = self.settings.get();
            let ctx = Ctx {
                server: delivery.server,
                settings: &settings,
                service: delivery.domain,
                from,
            };
            match authorize::answer(&ctx, stanza.element()).await {
                Some(Ok(())) => return,
                Some(Err(e)) => error = e,
                None => {}
            }
        }
        let reply = stanza.error_reply(&error);
        if let Ok(reply) = jabberwock_protocol::stanza::Stanza::from_element(reply) {
            let server = delivery.server;
            server.router.route_from_service(server, reply).await;
        }
    }
}

impl Module for Pubsub {
    const NAME: &'static str = "pubsub";
    const XEPS: &'static [Xep] = &[xep(60, "1.26"), xep(59, "1.0")];
    type Config = PubsubConfig;

    fn check(config: &PubsubConfig, _hosts: &[String]) -> Result<(), TableError> {
        for admin in &config.admins {
            if BareJid::new(admin).map_or(true, |jid| jid.as_str() != admin) {
                return Err(TableError {
                    path: vec!["admins".to_owned()],
                    message: format!("{admin:?} is not a bare JID in its normal form"),
                });
            }
        }
        if config.create_nodes == CreateNodes::Admins && config.admins.is_empty() {
            return Err(TableError {
                path: vec!["create_nodes".to_owned()],
                message: "\"admins\" needs at least one JID in admins".to_owned(),
            });
        }
        if config.max_items_per_node == 0 {
            return Err(TableError {
                path: vec!["max_items_per_node".to_owned()],
                message: "must be 1 or more".to_owned(),
            });
        }
        Ok(())
    }

    fn register(config: PubsubConfig, registry: &mut Registrar<'_>) {
        let settings: Settings = Arc::new(Snapshot::new(config));
        // Node creation, item ceilings and payload sizes: from the next request on.
        registry.on_reload_swap(
            &[
                "create_nodes",
                "admins",
                "max_nodes",
                "max_items_per_node",
                "max_item_bytes",
            ],
            settings.clone(),
        );
        let purging = registry.shared().get_or_insert_with(Purging::default);
        registry.service(Arc::new(PubsubService {
            settings: settings.clone(),
            purging: purging.clone(),
            sweeps: expire::Sweeps::default(),
        }));
        // `pubsub#purge_offline`: an account's unavailable broadcast (before the presence
        // module's, lowest, records it) and a session's end (after the presence module's,
        // highest, said unavailable for it).
        let offline = Arc::new(GoneOffline {
            purging,
            settings: settings.clone(),
        });
        registry.hook(EventKind::PresenceOut, 0, offline.clone());
        registry.hook(EventKind::SessionEnded, 0, offline);
        let handler = Arc::new(Handler(settings.clone()));
        for iq_type in [IqType::Get, IqType::Set] {
            for namespace in [ns::PUBSUB, ns::PUBSUB_OWNER] {
                registry.iq(
                    iq_type,
                    Target::Service,
                    namespace,
                    "pubsub",
                    handler.clone(),
                );
            }
        }
        registry.disco_identity(
            Target::Service,
            Identity {
                category: "pubsub",
                kind: "service",
                name: Some("Publish-Subscribe"),
            },
        );
        for feature in FEATURES {
            registry.disco_feature(Target::Service, feature);
        }
        // §8.7 through the `adhoc` module, which runs the service's commands.
        registry.service_command(Arc::new(pending::GetPending(settings.clone())));
        registry.disco_feature_through(Target::Service, ns::COMMANDS, "adhoc");
        disco::register(settings, registry);
    }
}
