//! Publishing (XEP-0060 §7.1, §7.1.5 publish options as preconditions), retracting (§7.2)
//! and retrieving items (§6.5), a page at a time with XEP-0059 (§6.5.4).

use jabberwock_protocol::forms::DataForm;
use jabberwock_protocol::pubsub::{self, Affiliation, Event as PubsubEvent, PublishedItem};
use jabberwock_protocol::rsm::{Before, SetQuery, SetResult};
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::{ItemsWanted, PublishPlan, Published, PubsubService, StoredItem};

use super::config::{ItemReply, NodeConfig, PublishModel};
use super::expire;
use super::node::{item_not_found, Node};
use super::notify::{self, reply_to};
use super::payload::{item_id, item_payload, over_limit, payload_of};
use super::Ctx;
use crate::error::store_to_stanza_error;
use crate::modules::time::now_unix;

/// §7.1.3.1: whether the asker may publish, by its affiliation and the publish model.
async fn may_publish(ctx: &Ctx<'_>, node: &Node) -> Result<(), StanzaError> {
    let asker = ctx.asker();
    let allowed = match node.affiliation(ctx, &asker) {
        Affiliation::Outcast => false,
        Affiliation::Owner | Affiliation::Publisher | Affiliation::PublishOnly => true,
        Affiliation::Member | Affiliation::None => match node.config.publish_model {
            PublishModel::Publishers => false,
            PublishModel::Open => true,
            PublishModel::Subscribers => {
                let subscriptions = node.subscriptions(ctx).await?;
                notify::subscriber_bares(&subscriptions).contains(&asker)
            }
        },
    };
    if allowed {
        Ok(())
    } else {
        Err(StanzaError::new(Condition::Forbidden))
    }
}

/// §7.1.3.6, by the node's event type (§4.3: persistent or transient, notification-only or
/// with payloads): a persistent node needs an item (`item-required`), which under
/// `deliver_payloads` carries a payload (`payload-required`) and else may be empty; a
/// transient node with payloads needs one too and keeps nothing; a transient
/// notification-only node takes no item at all (`item-forbidden`).
fn fits_event_type(config: &NodeConfig, item: Option<&PublishedItem>) -> Result<(), StanzaError> {
    let refuse = |condition| Err(pubsub::error(Condition::BadRequest, condition));
    match (config.persist_items, config.deliver_payloads, item) {
        (false, false, Some(_)) => refuse("item-forbidden"),
        (false, false, None) => Ok(()),
        (true, _, None) => refuse("item-required"),
        (false, true, None) => refuse("payload-required"),
        (_, true, Some(item)) if item.payloads.is_empty() => refuse("payload-required"),
        (_, _, Some(_)) => Ok(()),
    }
}

pub(super) async fn publish(
    ctx: &Ctx<'_>,
    name: &str,
    item: Option<PublishedItem>,
    options: Option<&DataForm>,
) -> Result<Option<Element>, StanzaError> {
    // §7.1.3.3: no auto-create on this service: the node must exist.
    let node = Node::load(ctx, name).await?;
    may_publish(ctx, &node).await?;
    fits_event_type(&node.config, item.as_ref())?;
    // The payload, if the item has one (a notification-only node's may be empty).
    let mut xml = String::new();
    if let Some(item) = item.as_ref().filter(|i| !i.payloads.is_empty()) {
        // §16.4.3 `pubsub#max_payload_size`, under the service's own limit.
        let limit = node.config.max_payload(ctx.settings.max_item_bytes);
        let (payload, serialized) = payload_of(item, limit)?;
        // §7.1.3.5: a payload of another namespace than the node's `pubsub#type`.
        let wanted = &node.config.payload_type;
        if !wanted.is_empty() && payload.ns() != wanted.as_str() {
            return Err(pubsub::error(Condition::BadRequest, "invalid-payload"));
        }
        xml = serialized;
    }
    // No item, no id (§7.1: a transient notification-only publish has neither).
    let id = item.as_ref().map(|item| {
        item.id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(item_id)
    });
    let publisher = ctx.asker();
    let now = now_unix();
    let stored_item = StoredItem {
        id: id.clone().unwrap_or_default(),
        publisher: publisher.to_string(),
        payload: xml,
        published_at: now,
    };
    let rules = ctx.settings.rules();
    let mut refusal = None;
    let mut used = None;
    let outcome = ctx
        .server
        .store
        .publish_pubsub_item(
            &PubsubService {
                name: ctx.service,
                owner: None,
            },
            name,
            &stored_item,
            &mut |stored| {
                let Some(json) = stored else {
                    return PublishPlan::Refuse;
                };
                let config = NodeConfig::from_stored(json);
                // §7.1.5: publish options are preconditions.
                match options.map(|o| config.meets(o, rules)) {
                    Some(Ok(false)) => {
                        refusal = Some(pubsub::error(Condition::Conflict, "precondition-not-met"));
                        return PublishPlan::Refuse;
                    }
                    Some(Err(e)) => {
                        refusal = Some(e.to_stanza_error(Condition::BadRequest));
                        return PublishPlan::Refuse;
                    }
                    _ => {}
                }
                // Checked again as written: the node may have been reconfigured since.
                if let Err(e) = fits_event_type(&config, item.as_ref()) {
                    refusal = Some(e);
                    return PublishPlan::Refuse;
                }
                let plan = PublishPlan::Publish {
                    create: None,
                    max_nodes: ctx.settings.max_nodes,
                    keep: config.keep(rules.ceiling),
                    max_service_items: u64::MAX,
                };
                used = Some(config);
                plan
            },
        )
        .await
        .map_err(store_to_stanza_error)?;
    match outcome {
        Published::Done { .. } => {}
        // The node went between the read and the write.
        Published::Refused if refusal.is_none() => return Err(item_not_found()),
        Published::Refused => {
            return Err(refusal.unwrap_or_else(|| StanzaError::new(Condition::InternalServerError)))
        }
        Published::NoSuchNode => return Err(item_not_found()),
        Published::TooManyNodes => return Err(over_limit("max-nodes-exceeded")),
        Published::TooManyItems => return Err(over_limit("max-items-exceeded")),
    }
    let config = used.unwrap_or(node.config.clone());
    // §16.4.3 pubsub#item_expire: what expired of the node goes as it is written to.
    let store = ctx.server.store.as_ref();
    expire::remove_expired(store, ctx.service, name, &config, now).await;
    if config.deliver_notifications {
        // §7.1.2.2: without payloads, the item's id only; §7.1 (the note on publishing):
        // a transient notification-only publish is announced by an empty <items/>.
        let items = match (&id, item) {
            (Some(id), Some(item)) => {
                let payload = item.payloads.into_iter().next();
                vec![(id.clone(), payload.filter(|_| config.deliver_payloads))]
            }
            _ => Vec::new(),
        };
        let event = PubsubEvent::Items {
            node: name.to_owned(),
            items,
        };
        // §16.4.3 pubsub#itemreply: where replies to the item go (XEP-0033 replyto).
        let replies: Vec<String> = match config.itemreply {
            Some(ItemReply::Publisher) => vec![publisher.to_string()],
            Some(ItemReply::Owner) => node.owners().into_iter().map(str::to_owned).collect(),
            None => Vec::new(),
        };
        let replies: Vec<&str> = replies.iter().map(String::as_str).collect();
        let node = Node { config, ..node };
        match ctx
            .server
            .store
            .pubsub_subscriptions(ctx.service, name)
            .await
        {
            Ok(Some(subscriptions)) => {
                let extra = reply_to(&replies);
                notify::to_subscribers(ctx, &node, &subscriptions, &event, extra.as_ref()).await
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, node = %name, "subscribers not read"),
        }
    }
    // §7.1.2: the id the service made, if it made one.
    Ok(id.map(|id| pubsub::publish_result(name, &id)))
}

/// §7.2: owners and publishers retract items (§7.2.3.1: anyone else is `forbidden`).
pub(super) async fn retract(
    ctx: &Ctx<'_>,
    name: &str,
    notify: bool,
    ids: &[String],
) -> Result<Option<Element>, StanzaError> {
    let node = Node::load(ctx, name).await?;
    if !matches!(
        node.affiliation(ctx, &ctx.asker()),
        Affiliation::Owner | Affiliation::Publisher
    ) {
        return Err(StanzaError::new(Condition::Forbidden));
    }
    let removed = ctx
        .server
        .store
        .retract_pubsub_items(ctx.service, name, ids)
        .await
        .map_err(store_to_stanza_error)?
        .ok_or_else(item_not_found)?;
    // §7.2.3.5: no such item.
    if removed.is_empty() {
        return Err(item_not_found());
    }
    // §7.2.2.1: the node sends retractions, or the publisher asked for them.
    if (node.config.notify_retract || notify) && node.config.deliver_notifications {
        let event = PubsubEvent::Retract {
            node: name.to_owned(),
            ids: removed,
        };
        notify::broadcast(ctx, &node, &event).await;
    }
    Ok(None)
}

/// §6.5: all items (oldest first), the `max_items` newest (§6.5.7), those of `ids` that
/// exist (§6.5.8), or one XEP-0059 page of them (§6.5.4).
pub(super) async fn items(
    ctx: &Ctx<'_>,
    name: &str,
    max_items: Option<u64>,
    ids: &[String],
    rsm: Option<&SetQuery>,
) -> Result<Option<Element>, StanzaError> {
    let node = Node::load(ctx, name).await?;
    // §6.5.9: the access model, outcasts and publish-only entities.
    node.may_read(ctx, &ctx.asker()).await?;
    // §6.5.9 (persistent items not supported): a transient node keeps none to retrieve.
    if !node.config.persist_items {
        return Err(pubsub::unsupported("persistent-items"));
    }
    let wanted = if ids.is_empty() {
        ItemsWanted::Newest(max_items.unwrap_or(u64::MAX))
    } else {
        ItemsWanted::Ids(ids)
    };
    let found = ctx
        .server
        .store
        .pubsub_items(ctx.service, name, wanted)
        .await
        .map_err(store_to_stanza_error)?
        .ok_or_else(item_not_found)?;
    // §16.4.3 pubsub#item_expire: expired items are not there, nor counted in pages.
    let found = expire::unexpired(ctx, &node, found.items).await;
    let (items, set) = match rsm {
        Some(query) => {
            let (page, set) = page(&found, query)?;
            (page, Some(set))
        }
        None => (found.as_slice(), None),
    };
    let items = items
        .iter()
        .filter_map(|item| Some((item.id.clone(), item_payload(item)?)));
    Ok(Some(pubsub::items_result(name, items, set.as_ref())))
}

/// One XEP-0059 page of `items` (oldest first, the order of a full retrieval): after or
/// before an item id, the last page, or from an index; at most `max`. The list is a
/// node's, which holds at most `max_items_per_node`, so it is paged in memory.
fn page<'a>(
    items: &'a [StoredItem],
    query: &SetQuery,
) -> Result<(&'a [StoredItem], SetResult), StanzaError> {
    let count = items.len();
    let max = query.max.unwrap_or(count);
    let position = |id: &str| {
        items
            .iter()
            .position(|i| i.id == id)
            // XEP-0059 §2.5: an item the set does not hold.
            .ok_or_else(item_not_found)
    };
    let (start, end) = match (&query.after, &query.before, query.index) {
        (Some(after), _, _) => {
            let start = position(after)? + 1;
            (start, start.saturating_add(max).min(count))
        }
        (None, Some(Before::Uid(before)), _) => {
            let end = position(before)?;
            (end.saturating_sub(max), end)
        }
        (None, Some(Before::LastPage), _) => (count.saturating_sub(max), count),
        (None, None, Some(index)) => {
            let start = index.min(count);
            (start, start.saturating_add(max).min(count))
        }
        (None, None, None) => (0, max.min(count)),
    };
    let page = &items[start..end];
    let set = SetResult {
        first: page.first().map(|i| (i.id.clone(), Some(start))),
        last: page.last().map(|i| i.id.clone()),
        count: Some(count),
    };
    Ok((page, set))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<StoredItem> {
        (0..n)
            .map(|i| StoredItem {
                id: format!("i{i}"),
                publisher: "a@b".into(),
                payload: "<x/>".into(),
                published_at: 0,
            })
            .collect()
    }

    fn ids(page: &[StoredItem]) -> Vec<&str> {
        page.iter().map(|i| i.id.as_str()).collect()
    }

    #[test]
    fn pages_go_both_ways() {
        let all = items(5);
        let first = SetQuery {
            max: Some(2),
            ..SetQuery::default()
        };
        let (page, set) = page(&all, &first).unwrap();
        assert_eq!(ids(page), ["i0", "i1"]);
        assert_eq!(set.first, Some(("i0".into(), Some(0))));
        assert_eq!(set.count, Some(5));
        let next = SetQuery {
            max: Some(2),
            after: set.last.clone(),
            ..SetQuery::default()
        };
        let (page, _) = super::page(&all, &next).unwrap();
        assert_eq!(ids(page), ["i2", "i3"]);
        let last = SetQuery {
            max: Some(2),
            before: Some(Before::LastPage),
            ..SetQuery::default()
        };
        let (page, set) = super::page(&all, &last).unwrap();
        assert_eq!(ids(page), ["i3", "i4"]);
        let previous = SetQuery {
            max: Some(2),
            before: set.first.map(|(id, _)| Before::Uid(id)),
            ..SetQuery::default()
        };
        let (page, _) = super::page(&all, &previous).unwrap();
        assert_eq!(ids(page), ["i1", "i2"]);
        let count_only = SetQuery {
            max: Some(0),
            ..SetQuery::default()
        };
        let (page, set) = super::page(&all, &count_only).unwrap();
        assert!(page.is_empty());
        assert_eq!((set.first, set.count), (None, Some(5)));
        let unknown = SetQuery {
            after: Some("nope".into()),
            ..SetQuery::default()
        };
        assert!(super::page(&all, &unknown).is_err());
    }
}
