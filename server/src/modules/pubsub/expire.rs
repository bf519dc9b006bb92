//! `pubsub#item_expire` (XEP-0060 §16.4.3, as ejabberd offers it): an item older than its
//! node's expiry is gone. Every read leaves such items out (§6.5 items, the last item sent
//! to a new subscriber, a node's disco#items) and removes them from the store when it meets
//! some; a publish to the node removes them too. For the nodes nobody reads or publishes
//! to, a sweep of each service's nodes, at start (before anyone connects) and then every
//! hour, removes what expired meanwhile, so expired items do not stay in the database.

use std::sync::Arc;
use std::time::Duration;

use jabberwock_storage::{Store, StoredItem};

use super::config::NodeConfig;
use super::node::Node;
use super::Ctx;
use crate::modules::time::now_unix;

/// How often the sweep looks at every node of a service. Expired items are never shown
/// whatever it does: it only frees their rows.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Leaves out of `items` those the node's expiry took by `now`; true if there were any
/// (the store still holds them).
fn drop_expired(config: &NodeConfig, items: &mut Vec<StoredItem>, now: i64) -> bool {
    let Some(before) = config.expired_before(now) else {
        return false;
    };
    let read = items.len();
    items.retain(|item| item.published_at >= before);
    items.len() < read
}

/// Removes from the store the node's items expired at `now`; how many went. A failure is
/// only logged: reads leave those items out anyway, and the next publish or sweep tries
/// again.
pub(super) async fn remove_expired(
    store: &dyn Store,
    service: &str,
    node: &str,
    config: &NodeConfig,
    now: i64,
) -> u64 {
    let Some(before) = config.expired_before(now) else {
        return 0;
    };
    match store.expire_pubsub_items(service, node, before).await {
        Ok(removed) => removed.unwrap_or(0),
        Err(e) => {
            tracing::error!(error = %e, %service, %node, "expired pubsub items not removed");
            0
        }
    }
}

/// The items a read of `node` found, without the expired ones, which go from the store.
/// Items are stamped in publication order, so of the `n` newest read the ones left are
/// the `n` newest the node still holds.
pub(super) async fn unexpired(
    ctx: &Ctx<'_>,
    node: &Node,
    mut items: Vec<StoredItem>,
) -> Vec<StoredItem> {
    let now = now_unix();
    if drop_expired(&node.config, &mut items, now) {
        let store = ctx.server.store.as_ref();
        remove_expired(store, ctx.service, &node.name, &node.config, now).await;
    }
    items
}

/// The sweep of the service `service` every [`SWEEP_EVERY`] from now.
pub(super) async fn sweep_forever(store: Arc<dyn Store>, service: String) {
    let first = tokio::time::Instant::now() + SWEEP_EVERY;
    let mut every = tokio::time::interval_at(first, SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        sweep(store.as_ref(), &service, now_unix()).await;
    }
}

/// Removes the expired items of every node of `service` that has an expiry: one delete
/// per such node, of at most the items the node keeps.
pub(super) async fn sweep(store: &dyn Store, service: &str, now: i64) {
    if let Some(nodes) = nodes_of(store, service).await {
        sweep_nodes(store, service, &nodes, now).await;
    }
}

/// The nodes of `service` with their configurations, or `None` (logged) when the store
/// could not list them.
pub(super) async fn nodes_of(
    store: &dyn Store,
    service: &str,
) -> Option<Vec<(String, NodeConfig)>> {
    match store.pubsub_nodes(service).await {
        Ok(nodes) => Some(
            nodes
                .into_iter()
                .map(|stored| (stored.node, NodeConfig::from_stored(&stored.config)))
                .collect(),
        ),
        Err(e) => {
            tracing::error!(error = %e, %service, "pubsub nodes not listed");
            None
        }
    }
}

/// [`sweep`] of `nodes`, the service's nodes as [`nodes_of`] listed them.
pub(super) async fn sweep_nodes(
    store: &dyn Store,
    service: &str,
    nodes: &[(String, NodeConfig)],
    now: i64,
) {
    let mut removed = 0;
    for (node, config) in nodes {
        removed += remove_expired(store, service, node, config, now).await;
    }
    if removed > 0 {
        tracing::info!(%service, removed, "expired pubsub items removed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, published_at: i64) -> StoredItem {
        StoredItem {
            id: id.into(),
            publisher: "a@b".into(),
            payload: String::new(),
            published_at,
        }
    }

    #[test]
    fn expired_items_are_left_out() {
        let mut items = vec![item("old", 89), item("edge", 90), item("new", 100)];
        let never = NodeConfig::service_default();
        assert!(!drop_expired(&never, &mut items, 1_000_000));
        assert_eq!(items.len(), 3);
        let config = NodeConfig {
            item_expire: Some(10),
            ..NodeConfig::service_default()
        };
        // At 100, "edge" is 10 seconds old: not older than the expiry yet.
        assert!(drop_expired(&config, &mut items, 100));
        let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["edge", "new"]);
        assert!(!drop_expired(&config, &mut items, 100));
    }
}
