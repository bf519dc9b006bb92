//! The owner's requests: publish (XEP-0060 §7.1, with XEP-0163 §3 auto-create and §7.1.5
//! publish options), retract (§7.2), create (§8.1), configure (§8.2), the default
//! configuration (§8.3), delete (§8.4) and purge (§8.5). Each one's notifications go out
//! after the store has it.

use jabberwock_protocol::forms::{DataForm, FormType};
use jabberwock_protocol::jid::BareJid;
use jabberwock_protocol::pubsub::{
    self, Event as PubsubEvent, PublishedItem, NODE_CONFIG, PUBLISH_OPTIONS,
};
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::{Created, PublishPlan, Published, PubsubService, StoredItem};

use super::notify::broadcast;
use super::{convert, Ctx, PepConfig};
use crate::accounts::account_of;
use crate::error::store_to_stanza_error;
use crate::modules::pubsub::config::{NodeConfig, Rules};
use crate::modules::pubsub::payload::{item_id, over_limit, payload_of};
use crate::modules::time::now_unix;
use crate::server::Server;

fn item_not_found() -> StanzaError {
    StanzaError::new(Condition::ItemNotFound)
}

/// The node's configuration, if it exists (item-not-found otherwise, §6.5.9.11 and the
/// like).
async fn node_config(ctx: &Ctx<'_>, node: &str) -> Result<NodeConfig, StanzaError> {
    let stored = ctx
        .server
        .store
        .pubsub_node(ctx.service(), node)
        .await
        .map_err(store_to_stanza_error)?
        .ok_or_else(item_not_found)?;
    Ok(NodeConfig::from_stored(&stored))
}

pub(super) async fn publish(
    ctx: &Ctx<'_>,
    node: &str,
    item: Option<PublishedItem>,
    options: Option<&DataForm>,
) -> Result<Option<Element>, StanzaError> {
    ctx.require_owner()?;
    // §7.1.3.6: a node that persists items needs one (all of ours do, by default).
    let item = item.ok_or_else(|| pubsub::error(Condition::BadRequest, "item-required"))?;
    let (id, payload) = store_item(
        ctx.server,
        ctx.settings,
        &ctx.owner,
        node,
        item,
        Options::Preconditions(options),
    )
    .await?;
    // XEP-0398, XEP-0411: what the other stores keep follows.
    convert::node_changed(ctx.server, &ctx.owner, node, Some((&id, payload.as_ref()))).await;
    Ok(Some(pubsub::publish_result(node, &id)))
}

/// What publish options mean for a publish.
pub(super) enum Options<'a> {
    /// §7.1.5: preconditions on a node that exists, the configuration of one made for it.
    Preconditions(Option<&'a DataForm>),
    /// The server's own publish (a conversion): only the configuration of a node it makes.
    ForNewNode(&'a DataForm),
}

/// Stores `item` on `owner`'s `node` (made for it if missing) and notifies those entitled;
/// the item's id and payload come back.
pub(super) async fn store_item(
    server: &Server,
    settings: &PepConfig,
    owner: &BareJid,
    node: &str,
    item: PublishedItem,
    options: Options<'_>,
) -> Result<(String, Option<Element>), StanzaError> {
    let (_, xml) = payload_of(&item, settings.max_item_bytes)?;
    let payload = item.payloads.into_iter().next();
    let id = item.id.filter(|id| !id.is_empty()).unwrap_or_else(item_id);
    let rules = Rules::pep(settings.max_items_per_node);
    let ceiling = rules.ceiling;
    let stored_item = StoredItem {
        id: id.clone(),
        publisher: owner.to_string(),
        payload: xml,
        published_at: now_unix(),
    };
    let (preconditions, for_new) = match options {
        Options::Preconditions(form) => (form, form),
        Options::ForNewNode(form) => (None, Some(form)),
    };
    let account = account_of(owner);
    let service = PubsubService {
        name: owner.as_str(),
        owner: Some(&account),
    };
    let mut refusal = None;
    let mut used = None;
    let outcome = server
        .store
        .publish_pubsub_item(&service, node, &stored_item, &mut |stored| {
            let (config, create) = match stored {
                // §7.1.5: the options are preconditions on a node that exists...
                Some(json) => {
                    let config = NodeConfig::from_stored(json);
                    match preconditions.map(|o| config.meets(o, rules)) {
                        Some(Ok(false)) => {
                            refusal =
                                Some(pubsub::error(Condition::Conflict, "precondition-not-met"));
                            return PublishPlan::Refuse;
                        }
                        Some(Err(e)) => {
                            refusal = Some(e.to_stanza_error(Condition::BadRequest));
                            return PublishPlan::Refuse;
                        }
                        _ => (config, None),
                    }
                }
                // ...and the configuration of one made for this publish (XEP-0163 §3).
                None => {
                    let mut config = NodeConfig::default();
                    if let Some(Err(e)) = for_new.map(|o| config.apply(o, PUBLISH_OPTIONS, rules)) {
                        refusal = Some(e.to_stanza_error(Condition::BadRequest));
                        return PublishPlan::Refuse;
                    }
                    let json = config.to_stored();
                    (config, Some(json))
                }
            };
            let plan = PublishPlan::Publish {
                create,
                max_nodes: settings.max_nodes_per_account,
                keep: config.keep(ceiling),
                max_service_items: settings.max_items_per_account,
            };
            used = Some(config);
            plan
        })
        .await
        .map_err(store_to_stanza_error)?;
    match outcome {
        Published::Done { .. } => {}
        Published::Refused => {
            return Err(refusal.unwrap_or_else(|| StanzaError::new(Condition::InternalServerError)))
        }
        Published::NoSuchNode => return Err(item_not_found()),
        Published::TooManyNodes => return Err(over_limit("max-nodes-exceeded")),
        Published::TooManyItems => return Err(over_limit("max-items-exceeded")),
    }
    let config = used.unwrap_or_default();
    if config.deliver_notifications {
        let event = PubsubEvent::Items {
            node: node.to_owned(),
            items: vec![(
                id.clone(),
                payload.clone().filter(|_| config.deliver_payloads),
            )],
        };
        broadcast(server, owner, &config, &event).await;
    }
    Ok((id, payload))
}

pub(super) async fn retract(
    ctx: &Ctx<'_>,
    node: &str,
    notify: bool,
    ids: &[String],
) -> Result<Option<Element>, StanzaError> {
    ctx.require_owner()?;
    retract_items(ctx.server, &ctx.owner, node, notify, ids).await?;
    convert::node_changed(ctx.server, &ctx.owner, node, None).await;
    Ok(None)
}

/// Removes `ids` from `owner`'s `node`, notified when `notify` and the node says so.
pub(super) async fn retract_items(
    server: &Server,
    owner: &BareJid,
    node: &str,
    notify: bool,
    ids: &[String],
) -> Result<(), StanzaError> {
    let stored = server
        .store
        .pubsub_node(owner.as_str(), node)
        .await
        .map_err(store_to_stanza_error)?
        .ok_or_else(item_not_found)?;
    let config = NodeConfig::from_stored(&stored);
    let removed = server
        .store
        .retract_pubsub_items(owner.as_str(), node, ids)
        .await
        .map_err(store_to_stanza_error)?
        .ok_or_else(item_not_found)?;
    // §7.2.3.5: no such item.
    if removed.is_empty() {
        return Err(item_not_found());
    }
    // §7.2.2.1: the publisher asked for notifications, and the node sends them.
    if notify && config.notify_retract && config.deliver_notifications {
        let event = PubsubEvent::Retract {
            node: node.to_owned(),
            ids: removed,
        };
        broadcast(server, owner, &config, &event).await;
    }
    Ok(())
}

pub(super) async fn create(
    ctx: &Ctx<'_>,
    node: Option<String>,
    form: Option<&DataForm>,
) -> Result<Option<Element>, StanzaError> {
    ctx.require_owner()?;
    // §8.1.2: no instant nodes here (XEP-0163 §2.3: a node is named by its namespace).
    let node = node.ok_or_else(|| pubsub::error(Condition::NotAcceptable, "nodeid-required"))?;
    let ceiling = ctx.settings.max_items_per_node;
    let mut config = NodeConfig::default();
    if let Some(form) = form.filter(|f| f.form_type == FormType::Submit) {
        config
            .apply(form, NODE_CONFIG, Rules::pep(ceiling))
            .map_err(|e| e.to_stanza_error(Condition::NotAcceptable))?;
    }
    let account = account_of(&ctx.owner);
    let created = ctx
        .server
        .store
        .create_pubsub_node(
            &ctx.store_service(&account),
            &node,
            &config.to_stored(),
            ctx.settings.max_nodes_per_account,
            None,
        )
        .await
        .map_err(store_to_stanza_error)?;
    match created {
        Created::Done => Ok(None),
        // §8.1.3.3: the node exists already.
        Created::Exists => Err(StanzaError::new(Condition::Conflict)),
        Created::TooManyNodes => Err(over_limit("max-nodes-exceeded")),
    }
}

/// §8.2.1: the node's configuration form, the owner's roster groups offered for the roster
/// access model.
pub(super) async fn configuration(
    ctx: &Ctx<'_>,
    node: &str,
) -> Result<Option<Element>, StanzaError> {
    ctx.require_owner()?;
    let config = node_config(ctx, node).await?;
    let (_, entries) = ctx
        .server
        .store
        .roster(&account_of(&ctx.owner))
        .await
        .map_err(store_to_stanza_error)?;
    let mut groups: Vec<String> = entries.into_iter().flat_map(|e| e.groups).collect();
    groups.sort_unstable();
    groups.dedup();
    let form = config.to_form(Rules::pep(ctx.settings.max_items_per_node), &groups);
    Ok(Some(pubsub::configure_result(Some(node), &form)))
}

/// §8.2.4: a submitted configuration (a cancelled one changes nothing, §8.2.6).
pub(super) async fn configure(
    ctx: &Ctx<'_>,
    node: &str,
    form: &DataForm,
) -> Result<Option<Element>, StanzaError> {
    ctx.require_owner()?;
    let mut config = node_config(ctx, node).await?;
    if form.form_type == FormType::Cancel {
        return Ok(None);
    }
    let ceiling = ctx.settings.max_items_per_node;
    // §8.2.5.3: a form that can't be applied.
    config
        .apply(form, NODE_CONFIG, Rules::pep(ceiling))
        .map_err(|e| e.to_stanza_error(Condition::NotAcceptable))?;
    // A node that no longer persists keeps nothing.
    let keep = config.keep(ceiling).unwrap_or(0);
    let found = ctx
        .server
        .store
        .configure_pubsub_node(ctx.service(), node, &config.to_stored(), keep)
        .await
        .map_err(store_to_stanza_error)?;
    if !found {
        return Err(item_not_found());
    }
    Ok(None)
}

/// §8.3: what a node made now would be configured as.
pub(super) async fn default_configuration(ctx: &Ctx<'_>) -> Result<Option<Element>, StanzaError> {
    let form = NodeConfig::default().to_form(Rules::pep(ctx.settings.max_items_per_node), &[]);
    Ok(Some(pubsub::configure_result(None, &form)))
}

/// Purge and delete: the owner's change `op` to an existing node, whose configuration (as
/// it was) comes back for the notifications.
async fn change_node<F>(ctx: &Ctx<'_>, node: &str, op: F) -> Result<NodeConfig, StanzaError>
where
    F: std::future::Future<Output = Result<bool, jabberwock_storage::StoreError>>,
{
    ctx.require_owner()?;
    let config = node_config(ctx, node).await?;
    if !op.await.map_err(store_to_stanza_error)? {
        return Err(item_not_found());
    }
    Ok(config)
}

pub(super) async fn purge(ctx: &Ctx<'_>, node: &str) -> Result<Option<Element>, StanzaError> {
    let store = &ctx.server.store;
    let config = change_node(ctx, node, store.purge_pubsub_node(ctx.service(), node)).await?;
    // §8.5.2.
    if config.deliver_notifications {
        let event = PubsubEvent::Purge {
            node: node.to_owned(),
        };
        broadcast(ctx.server, &ctx.owner, &config, &event).await;
    }
    convert::node_changed(ctx.server, &ctx.owner, node, None).await;
    Ok(None)
}

pub(super) async fn delete(ctx: &Ctx<'_>, node: &str) -> Result<Option<Element>, StanzaError> {
    let store = &ctx.server.store;
    let config = change_node(ctx, node, store.delete_pubsub_node(ctx.service(), node)).await?;
    // §8.4.2: those who could read it learn it is gone.
    if config.notify_delete {
        let event = PubsubEvent::Delete {
            node: node.to_owned(),
            redirect: None,
        };
        broadcast(ctx.server, &ctx.owner, &config, &event).await;
    }
    convert::node_changed(ctx.server, &ctx.owner, node, None).await;
    Ok(None)
}
