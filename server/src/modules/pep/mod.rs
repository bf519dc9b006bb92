//! XEP-0163: Personal Eventing Protocol (version 1.2), the XEP-0060 subset it needs: every
//! account's bare JID is a publish-subscribe service whose nodes hold what clients keep per
//! account (XEP-0084 avatars, XEP-0172 nicknames, XEP-0402 bookmarks, XEP-0384 OMEMO keys).
//!
//! - The node's configuration, its form, publish options and access models, and items'
//!   payloads are the `pubsub` module's (`pubsub/config.rs`, `pubsub/payload.rs`), shared
//!   with the service of its own on pubsub.HOST.
//! - `publish.rs`: the owner's requests (publish with auto-create, retract, create,
//!   configure, purge, delete); `items.rs`: retrieving items.
//! - `notify.rs`: who gets what (XEP-0163 §4: contacts subscribed to the owner's presence,
//!   and the owner's own resources, whose client says `NODE+notify`), event notifications,
//!   and the last published items (§4.3.2, §6.1) when a resource's features become known
//!   and when a contact's subscription starts.
//!
//! What is personal eventing lives here: the service is the account (`to`, or the
//! sender's own account without one), only the account publishes and configures, and who an
//! asker is comes from the account's roster.

mod avatar;
mod bookmarks;
mod convert;
mod items;
mod notify;
mod publish;

use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::jid::{BareJid, FullJid};
use jabberwock_protocol::ns;
use jabberwock_protocol::pubsub::{self, Request};
use jabberwock_protocol::stanza::{Condition, IqType, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::PubsubService;
use serde::Deserialize;

use super::registry::Identity;
use super::{xep, DiscoItems, EventKind, IqHandler, IqRequest, Module, Registrar, Target, Xep};
use crate::error::store_to_stanza_error;
use crate::live::Snapshot;
use crate::modules::pubsub::config::{Asker, NodeConfig};
use crate::modules::pubsub::node::roster_view;
use crate::server::Server;

pub struct Pep;

/// `[modules.pep]`: what one account may keep.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PepConfig {
    /// Nodes one account may have.
    pub max_nodes_per_account: u64,
    /// Items one node may keep, and what `pubsub#max_items` `max` means.
    pub max_items_per_node: u64,
    /// Items all of one account's nodes may keep together.
    pub max_items_per_account: u64,
    /// The largest payload of one item, serialized, in bytes.
    pub max_item_bytes: usize,
}

impl Default for PepConfig {
    fn default() -> Self {
        PepConfig {
            max_nodes_per_account: 128,
            // Prosody's `pep_max_items`.
            max_items_per_node: 256,
            max_items_per_account: 1024,
            // Room for an XEP-0084 avatar's base64 data, below the default stanza limit.
            max_item_bytes: 131_072,
        }
    }
}

/// The features of the account's service (XEP-0060 §10, XEP-0163 §9).
const FEATURES: &[&str] = &[
    "http://jabber.org/protocol/pubsub",
    "http://jabber.org/protocol/pubsub#access-open",
    "http://jabber.org/protocol/pubsub#access-presence",
    "http://jabber.org/protocol/pubsub#access-roster",
    "http://jabber.org/protocol/pubsub#access-whitelist",
    "http://jabber.org/protocol/pubsub#auto-create",
    "http://jabber.org/protocol/pubsub#auto-subscribe",
    "http://jabber.org/protocol/pubsub#config-node",
    "http://jabber.org/protocol/pubsub#config-node-max",
    "http://jabber.org/protocol/pubsub#create-and-configure",
    "http://jabber.org/protocol/pubsub#create-nodes",
    "http://jabber.org/protocol/pubsub#delete-items",
    "http://jabber.org/protocol/pubsub#delete-nodes",
    "http://jabber.org/protocol/pubsub#filtered-notifications",
    "http://jabber.org/protocol/pubsub#item-ids",
    "http://jabber.org/protocol/pubsub#last-published",
    "http://jabber.org/protocol/pubsub#multi-items",
    "http://jabber.org/protocol/pubsub#persistent-items",
    "http://jabber.org/protocol/pubsub#presence-notifications",
    "http://jabber.org/protocol/pubsub#presence-subscribe",
    "http://jabber.org/protocol/pubsub#publish",
    "http://jabber.org/protocol/pubsub#publish-options",
    "http://jabber.org/protocol/pubsub#purge-nodes",
    "http://jabber.org/protocol/pubsub#retract-items",
    "http://jabber.org/protocol/pubsub#retrieve-default",
    "http://jabber.org/protocol/pubsub#retrieve-items",
];

/// One request to an account's service, as the handlers see it.
pub(super) struct Ctx<'a> {
    pub server: &'a Server,
    pub settings: &'a PepConfig,
    /// The account whose service this is.
    pub owner: BareJid,
    pub from: &'a FullJid,
}

impl Ctx<'_> {
    /// The service's name: the account's bare JID.
    pub fn service(&self) -> &str {
        self.owner.as_str()
    }

    /// The service as the store names it when writing: the account's, whose data it is.
    pub fn store_service<'s>(
        &'s self,
        account: &'s jabberwock_storage::AccountId,
    ) -> PubsubService<'s> {
        PubsubService {
            name: self.owner.as_str(),
            owner: Some(account),
        }
    }

    pub fn is_owner(&self) -> bool {
        self.from.to_bare() == self.owner
    }

    /// XEP-0163 §3: only the account publishes to and manages its own nodes.
    pub fn require_owner(&self) -> Result<(), StanzaError> {
        if self.is_owner() {
            Ok(())
        } else {
            Err(StanzaError::new(Condition::Forbidden))
        }
    }

    /// Who the asker is to the account (one roster read, none for the owner).
    pub async fn asker(&self) -> Result<Asker, StanzaError> {
        asker(self.server, &self.owner, &self.from.to_bare()).await
    }
}

/// Who `asker` (a bare JID) is to the account `owner`: its roster entry's subscription and
/// groups.
pub(super) async fn asker(
    server: &Server,
    owner: &BareJid,
    asker: &BareJid,
) -> Result<Asker, StanzaError> {
    roster_view(server, owner, asker).await
}

/// The limits in force, which a reload replaces: each request (and each conversion) reads
/// them once.
type Settings = Arc<Snapshot<PepConfig>>;

/// Every `<pubsub/>` request to an account.
struct Handler(Settings);

#[async_trait]
impl IqHandler for Handler {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let parsed = Request::parse(request.payload).map_err(|e| e.to_stanza_error())?;
        let settings = self.0.get();
        let ctx = Ctx {
            server: request.server,
            settings: &settings,
            owner: request.to.to_bare(),
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
                    ..
                },
            ) => items::retrieve(&ctx, &node, max_items, &ids).await,
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
            (false, Request::Create { node, config }) => {
                publish::create(&ctx, node, config.as_ref()).await
            }
            (true, Request::Configure { node, form: None }) => {
                publish::configuration(&ctx, &node).await
            }
            (
                false,
                Request::Configure {
                    node,
                    form: Some(form),
                },
            ) => publish::configure(&ctx, &node, &form).await,
            (true, Request::Default) => publish::default_configuration(&ctx).await,
            (false, Request::Purge { node }) => publish::purge(&ctx, &node).await,
            (false, Request::Delete { node, .. }) => publish::delete(&ctx, &node).await,
            (_, Request::Unsupported(feature)) => Err(pubsub::unsupported(feature)),
            // Personal eventing's subscribers are the account's presence subscribers
            // (XEP-0163 §4): no explicit subscriptions or affiliations here.
            (_, Request::Subscribe { .. } | Request::Unsubscribe { .. }) => {
                Err(pubsub::unsupported("subscribe"))
            }
            (_, Request::Options { .. }) => Err(pubsub::unsupported("subscription-options")),
            (_, Request::Subscriptions { .. }) => {
                Err(pubsub::unsupported("retrieve-subscriptions"))
            }
            (_, Request::Affiliations { .. }) => Err(pubsub::unsupported("retrieve-affiliations")),
            (_, Request::NodeAffiliations { .. }) => {
                Err(pubsub::unsupported("modify-affiliations"))
            }
            (_, Request::NodeSubscriptions { .. }) => {
                Err(pubsub::unsupported("manage-subscriptions"))
            }
            // A request sent with the other IQ type (§6.5: items are a get; publish a set).
            _ => Err(StanzaError::new(Condition::BadRequest)),
        }
    }
}

/// XEP-0163 §6.2: disco#items of the account lists only the nodes the asker may read; a
/// node's lists its items (XEP-0060 §5.5).
struct Nodes;

#[async_trait]
impl DiscoItems for Nodes {
    async fn items(
        &self,
        request: &IqRequest<'_>,
        node: Option<&str>,
    ) -> Result<Option<Vec<Element>>, StanzaError> {
        let server = request.server;
        let owner = request.to.to_bare();
        let asker = asker(server, &owner, &request.from.to_bare()).await?;
        let item = |name: Option<&str>, node: Option<&str>| {
            let mut el = Element::new("item", ns::DISCO_ITEMS).with_attr("jid", owner.as_str());
            if let Some(node) = node {
                el.set_attr("node", node);
            }
            if let Some(name) = name.filter(|n| !n.is_empty()) {
                el.set_attr("name", name);
            }
            el
        };
        let Some(node) = node else {
            let nodes = server
                .store
                .pubsub_nodes(owner.as_str())
                .await
                .map_err(store_to_stanza_error)?;
            let readable = nodes.into_iter().filter_map(|n| {
                let config = NodeConfig::from_stored(&n.config);
                config
                    .may_read(&asker)
                    .is_ok()
                    .then(|| item(Some(&config.title), Some(&n.node)))
            });
            return Ok(Some(readable.collect()));
        };
        // XEP-0060 §5.5: a node's items, named by their ids.
        let Some(found) = server
            .store
            .pubsub_items(
                owner.as_str(),
                node,
                jabberwock_storage::ItemsWanted::Newest(u64::MAX),
            )
            .await
            .map_err(store_to_stanza_error)?
        else {
            return Ok(None);
        };
        NodeConfig::from_stored(&found.config)
            .may_read(&asker)
            .map_err(|d| d.to_stanza_error())?;
        Ok(Some(
            found
                .items
                .iter()
                .map(|i| item(Some(&i.id), None))
                .collect(),
        ))
    }
}

impl Module for Pep {
    const NAME: &'static str = "pep";
    const XEPS: &'static [Xep] = &[
        xep(163, "1.2"),
        xep(60, "1.26"),
        xep(223, "1.1"),
        xep(398, "0.3.0"),
        xep(402, "1.2.0"),
        xep(411, "1.0.0"),
    ];
    /// Notifications go to resources whose client features say `+notify` (XEP-0115).
    const DEPENDS: &'static [&'static str] = &["caps"];
    type Config = PepConfig;

    fn register(config: PepConfig, registry: &mut Registrar<'_>) {
        let config: Settings = Arc::new(Snapshot::new(config));
        registry.on_reload_swap(
            &[
                "max_nodes_per_account",
                "max_items_per_node",
                "max_items_per_account",
                "max_item_bytes",
            ],
            config.clone(),
        );
        let handler = Arc::new(Handler(config.clone()));
        for iq_type in [IqType::Get, IqType::Set] {
            for namespace in [ns::PUBSUB, ns::PUBSUB_OWNER] {
                registry.iq(
                    iq_type,
                    Target::Account,
                    namespace,
                    "pubsub",
                    handler.clone(),
                );
            }
        }
        registry.disco_identity(
            Target::Account,
            Identity {
                category: "pubsub",
                kind: "pep",
                name: None,
            },
        );
        for feature in FEATURES {
            registry.disco_feature(Target::Account, feature);
        }
        registry.disco_items(Target::Account, Arc::new(Nodes));
        // XEP-0398 §2 and XEP-0411 §2: the conversions, on the account.
        registry.disco_feature(Target::Account, ns::PEP_VCARD_CONVERSION);
        registry.disco_feature(Target::Account, ns::BOOKMARKS_CONVERSION);
        // XEP-0402 §5.3 (Compatibility): the same unification, announced in XEP-0402's own
        // words. Clients that find it (Converse.js) keep their bookmarks on the XEP-0402
        // node; without it they fall back to XEP-0048 in a single PEP item, which is not
        // converted, and see none of the bookmarks other clients saved.
        registry.disco_feature(Target::Account, ns::BOOKMARKS2_COMPAT);
        registry.hook(
            EventKind::AccountDataStored,
            0,
            Arc::new(convert::Stored(config.clone())),
        );
        let last = Arc::new(notify::LastItems);
        registry.hook(EventKind::ClientFeatures, 0, last.clone());
        registry.hook(EventKind::RosterChanged, 0, last);
    }
}
