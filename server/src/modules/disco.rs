//! XEP-0030: Service Discovery, minimal: the server's identity and the features its
//! modules registered; no items yet.

use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, StanzaError};
use jabberwock_protocol::xml::Element;

use super::{IqHandler, IqRequest, Module, Registry, Target};

pub struct Disco;

struct Info;
struct Items;

#[async_trait]
impl IqHandler for Info {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        // XEP-0030 §3.1: nodes we don't know are item-not-found.
        if request.payload.attr("node").is_some() {
            return Err(StanzaError::new(Condition::ItemNotFound));
        }
        let mut query = Element::new("query", ns::DISCO_INFO).with_child(
            Element::new("identity", ns::DISCO_INFO)
                .with_attr("category", "server")
                .with_attr("type", "im")
                .with_attr("name", "Jabberwock"),
        );
        for feature in request.server.modules.features() {
            query.push_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", feature));
        }
        Ok(Some(query))
    }
}

#[async_trait]
impl IqHandler for Items {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        if request.payload.attr("node").is_some() {
            return Err(StanzaError::new(Condition::ItemNotFound));
        }
        Ok(Some(Element::new("query", ns::DISCO_ITEMS)))
    }
}

impl Module for Disco {
    fn name(&self) -> &'static str {
        "disco"
    }

    fn xeps(&self) -> &'static [(u16, &'static str)] {
        &[(30, "2.5rc3")]
    }

    fn register(&self, registry: &mut Registry) {
        registry.iq(
            IqType::Get,
            Target::Host,
            ns::DISCO_INFO,
            "query",
            Arc::new(Info),
        );
        registry.iq(
            IqType::Get,
            Target::Host,
            ns::DISCO_ITEMS,
            "query",
            Arc::new(Items),
        );
        registry.disco_feature(ns::DISCO_INFO);
        registry.disco_feature(ns::DISCO_ITEMS);
    }
}
