//! XEP-0030: Service Discovery. The server's domain, services' domains and, on their
//! behalf, accounts' bare JIDs: identities and features are whatever the modules on for the
//! host registered (`Registrar::disco_identity`, `Registrar::disco_feature`, and XEP-0128
//! data forms from `Registrar::disco_extension`). A node is answered when a module says it
//! names the target's own info (`Registrar::disco_info_node`, XEP-0115's `NODE#VER`). The
//! host's items are its services (`Registrar::service`, XEP-0030 §4); a service that has
//! items of its own (rooms) answers its disco#items itself; modules add items of their own
//! to a target's, and answer for their nodes (`Registrar::disco_items`: an account's PEP
//! nodes).

use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::Subscription;

use super::registry::Identity;
use super::{xep, IqHandler, IqRequest, Module, NoConfig, Registrar, Registry, Target, Xep};
use crate::accounts::account_of;
use crate::error::store_to_stanza_error;

pub struct Disco;

struct Info(Target);
struct Items(Target);

/// XEP-0030 §4 (privacy): an account's disco is answered to the account itself and to
/// contacts it shares its presence with; anyone else learns nothing, not even that the
/// account exists (service-unavailable, as for an IQ nobody answers).
async fn may_see(request: &IqRequest<'_>, target: Target) -> Result<(), StanzaError> {
    if target != Target::Account {
        return Ok(());
    }
    let owner = request.to.to_bare();
    let requester = request.from.to_bare();
    if owner == requester {
        return Ok(());
    }
    let entry = request
        .server
        .store
        .roster_entry(&account_of(&owner), requester.as_str())
        .await
        .map_err(store_to_stanza_error)?;
    match entry.map(|e| e.subscription) {
        Some(Subscription::From | Subscription::Both) => Ok(()),
        _ => Err(StanzaError::new(Condition::ServiceUnavailable)),
    }
}

/// The disco#info `<query/>` of `target` on `host`: whatever the modules on for the host
/// registered. XEP-0115 hashes exactly this.
pub(crate) fn info_query(modules: &Registry, host: &str, target: Target) -> Element {
    let mut query = Element::new("query", ns::DISCO_INFO);
    for identity in modules.disco_identities(host, target) {
        let mut el = Element::new("identity", ns::DISCO_INFO)
            .with_attr("category", identity.category)
            .with_attr("type", identity.kind);
        if let Some(name) = identity.name {
            el.set_attr("name", name);
        }
        query.push_child(el);
    }
    for feature in modules.disco_features(host, target) {
        query.push_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", feature));
    }
    for form in modules.disco_extensions(host, target) {
        query.push_child(form);
    }
    query
}

#[async_trait]
impl IqHandler for Info {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        may_see(&request, self.0).await?;
        let host = request.to.domain().as_str();
        let modules = &request.server.modules;
        let node = request.payload.attr("node");
        // XEP-0030 §3.1: nodes we don't know are item-not-found. A module may name the
        // target's own info by a node (XEP-0115 §6.2), which is echoed.
        if node.is_some_and(|node| !modules.is_own_info_node(request.server, host, self.0, node)) {
            return Err(StanzaError::new(Condition::ItemNotFound));
        }
        let mut query = info_query(modules, host, self.0);
        if let Some(node) = node {
            query.set_attr("node", node);
        }
        Ok(Some(query))
    }
}

#[async_trait]
impl IqHandler for Items {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        may_see(&request, self.0).await?;
        let host = request.to.domain().as_str();
        let modules = &request.server.modules;
        let node = request.payload.attr("node");
        let mut query = Element::new("query", ns::DISCO_ITEMS);
        // A node is answered by the module whose it is (XEP-0163: a PEP node's items);
        // nodes nobody knows are item-not-found (§4.1).
        if let Some(node) = node {
            for provider in modules.disco_items(host, self.0) {
                if let Some(items) = provider.items(&request, Some(node)).await? {
                    for item in items {
                        query.push_child(item);
                    }
                    return Ok(Some(query.with_attr("node", node)));
                }
            }
            return Err(StanzaError::new(Condition::ItemNotFound));
        }
        for provider in modules.disco_items(host, self.0) {
            for item in provider.items(&request, None).await?.unwrap_or_default() {
                query.push_child(item);
            }
        }
        if self.0 == Target::Host {
            for service in request.server.modules.services_of(host) {
                let mut item =
                    Element::new("item", ns::DISCO_ITEMS).with_attr("jid", service.domain.as_str());
                if let Some(name) = service.name {
                    item.set_attr("name", name);
                }
                query.push_child(item);
            }
        }
        Ok(Some(query))
    }
}

impl Module for Disco {
    const NAME: &'static str = "disco";
    const XEPS: &'static [Xep] = &[xep(30, "2.5rc3")];
    type Config = NoConfig;

    fn register(_config: NoConfig, registry: &mut Registrar<'_>) {
        for target in [Target::Host, Target::Account, Target::Service] {
            registry.iq(
                IqType::Get,
                target,
                ns::DISCO_INFO,
                "query",
                Arc::new(Info(target)),
            );
            registry.iq(
                IqType::Get,
                target,
                ns::DISCO_ITEMS,
                "query",
                Arc::new(Items(target)),
            );
            registry.disco_feature(target, ns::DISCO_INFO);
            registry.disco_feature(target, ns::DISCO_ITEMS);
        }
        registry.disco_identity(
            Target::Host,
            Identity {
                category: "server",
                kind: "im",
                name: Some("Jabberwock"),
            },
        );
        // XEP-0030 §3.1, the registry of categories: an account the server hosts.
        registry.disco_identity(
            Target::Account,
            Identity {
                category: "account",
                kind: "registered",
                name: None,
            },
        );
    }
}
