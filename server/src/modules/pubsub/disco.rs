//! Service discovery of the service (XEP-0060 §5): disco#info of the domain (the identity
//! `pubsub/service` and the features, as the disco module builds them) and of a node
//! (§5.4: `pubsub/leaf` and the `pubsub#meta-data` form), disco#items of the domain (§5.2:
//! the nodes the asker may read or ask to subscribe to, named by their titles) and of a
//! node (§5.5: its items).

use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::forms::{DataForm, Field, FieldType, FormType};
use jabberwock_protocol::ns;
use jabberwock_protocol::pubsub::META_DATA;
use jabberwock_protocol::stanza::{IqType, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::ItemsWanted;

use super::expire;
use super::node::{item_not_found, Node};
use super::{Ctx, PubsubConfig, Settings};
use crate::error::store_to_stanza_error;
use crate::modules::disco::info_query;
use crate::modules::{DiscoItems, IqHandler, IqRequest, Registrar, Target};

pub(super) fn register(settings: Settings, registry: &mut Registrar<'_>) {
    registry.iq(
        IqType::Get,
        Target::Service,
        ns::DISCO_INFO,
        "query",
        Arc::new(Info(settings.clone())),
    );
    registry.disco_items(Target::Service, Arc::new(Nodes(settings)));
}

fn ctx<'a>(settings: &'a PubsubConfig, request: &'a IqRequest<'_>) -> Ctx<'a> {
    Ctx {
        server: request.server,
        settings,
        service: request.to.domain().as_str(),
        from: request.from,
    }
}

struct Info(Settings);

#[async_trait]
impl IqHandler for Info {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let settings = self.0.get();
        let ctx = ctx(&settings, &request);
        let Some(name) = request.payload.attr("node") else {
            let query = info_query(&request.server.modules, ctx.service, Target::Service);
            return Ok(Some(query));
        };
        let node = Node::load(&ctx, name).await?;
        let config = &node.config;
        let mut owners = Field::new("pubsub#owner").with_type(FieldType::JidMulti);
        for owner in node.owners() {
            owners = owners.with_value(owner);
        }
        let text = |var: &str, value: &str| Field::new(var).with_value(value);
        let form = DataForm::new(FormType::Result)
            .with_form_type(META_DATA)
            .with_field(text("pubsub#title", &config.title))
            .with_field(text("pubsub#description", &config.description))
            .with_field(text("pubsub#type", &config.payload_type))
            .with_field(text("pubsub#access_model", config.access_model.as_str()))
            .with_field(text("pubsub#publish_model", config.publish_model.as_str()))
            .with_field(owners);
        let query = Element::new("query", ns::DISCO_INFO)
            .with_attr("node", name)
            .with_child(
                Element::new("identity", ns::DISCO_INFO)
                    .with_attr("category", "pubsub")
                    .with_attr("type", "leaf"),
            )
            .with_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", ns::PUBSUB))
            .with_child(form.to_element());
        Ok(Some(query))
    }
}

struct Nodes(Settings);

#[async_trait]
impl DiscoItems for Nodes {
    async fn items(
        &self,
        request: &IqRequest<'_>,
        node: Option<&str>,
    ) -> Result<Option<Vec<Element>>, StanzaError> {
        let settings = self.0.get();
        let ctx = ctx(&settings, request);
        let asker = ctx.asker();
        let item = |node: &str, name: &str| {
            let mut el = Element::new("item", ns::DISCO_ITEMS)
                .with_attr("jid", ctx.service)
                .with_attr("node", node);
            if !name.is_empty() {
                el.set_attr("name", name);
            }
            el
        };
        let Some(name) = node else {
            let nodes = ctx
                .server
                .store
                .pubsub_nodes(ctx.service)
                .await
                .map_err(store_to_stanza_error)?;
            let mut listed = Vec::new();
            for stored in nodes {
                let node = Node::load(&ctx, &stored.node).await?;
                if node.may_discover(&ctx, &asker).await {
                    listed.push(item(&node.name, &node.config.title));
                }
            }
            return Ok(Some(listed));
        };
        let node = match Node::load(&ctx, name).await {
            Ok(node) => node,
            Err(_) => return Ok(None),
        };
        node.may_read(&ctx, &asker).await?;
        let found = ctx
            .server
            .store
            .pubsub_items(ctx.service, name, ItemsWanted::Newest(u64::MAX))
            .await
            .map_err(store_to_stanza_error)?
            .ok_or_else(item_not_found)?;
        let items = expire::unexpired(&ctx, &node, found.items).await;
        Ok(Some(items.iter().map(|i| item(&i.id, &i.id)).collect()))
    }
}
