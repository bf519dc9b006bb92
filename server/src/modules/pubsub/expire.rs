//! `pubsub#item_expire` (XEP-0060 §16.4.3, as ejabberd offers it): an item older than its
//! node's expiry is gone. Every read leaves such items out (§6.5 items, the last item sent
//! to a new subscriber, a node's disco#items) and removes them from the store when it meets
//! some; a publish to the node removes them too. For the nodes nobody reads or publishes
//! to, a sweep of each service's nodes, at start (before anyone connects) and then every
//! hour, removes what expired meanwhile, so expired items do not stay in the database.
//! The hourly sweep runs while its service does ([`Sweeps`]): a reload that removes the
//! service's host ends it, and one that brings the host back starts one again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jabberwock_storage::{Store, StoredItem};
use tokio::sync::oneshot;

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

/// The hourly sweep of each service domain that runs, by domain. Its sender ends the
/// sweep when dropped: at its next wait, never in the middle of a sweep.
#[derive(Default)]
pub(super) struct Sweeps(Mutex<HashMap<String, oneshot::Sender<()>>>);

impl Sweeps {
    /// Runs the sweep of `service` from now on, in place of the one it had, if any.
    pub fn start(&self, store: Arc<dyn Store>, service: &str) {
        let (keep, stopped) = oneshot::channel();
        let mut running = self.0.lock().unwrap_or_else(|p| p.into_inner());
        running.insert(service.to_owned(), keep);
        tokio::spawn(sweep_forever(store, service.to_owned(), stopped));
    }

    /// Ends the sweep of `service` (its host is no longer served).
    pub fn stop(&self, service: &str) {
        let mut running = self.0.lock().unwrap_or_else(|p| p.into_inner());
        running.remove(service);
    }
}

/// The sweep of the service `service` every [`SWEEP_EVERY`] from now, until `stopped`.
async fn sweep_forever(store: Arc<dyn Store>, service: String, mut stopped: oneshot::Receiver<()>) {
    let first = tokio::time::Instant::now() + SWEEP_EVERY;
    let mut every = tokio::time::interval_at(first, SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Tests count these.
    tracing::debug!(%service, "pubsub expiry sweep started");
    loop {
        tokio::select! {
            _ = every.tick() => sweep(store.as_ref(), &service, now_unix()).await,
            _ = &mut stopped => break,
        }
    }
    tracing::debug!(%service, "pubsub expiry sweep ended");
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

    /// Waits (boundedly) until `running` tasks hold `store` besides the test.
    async fn sweeps_hold(store: &Arc<dyn Store>, running: usize) -> bool {
        for _ in 0..500 {
            if Arc::strong_count(store) == 1 + running {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        false
    }

    #[tokio::test]
    async fn one_sweep_runs_per_service_and_a_stopped_one_ends() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let store = jabberwock_storage::open(&url).await.unwrap();
        let sweeps = Sweeps::default();
        sweeps.start(store.clone(), "pubsub.a.example");
        sweeps.start(store.clone(), "pubsub.b.example");
        assert!(sweeps_hold(&store, 2).await);
        // The host removed: its service's sweep ends, the other's goes on.
        sweeps.stop("pubsub.a.example");
        assert!(sweeps_hold(&store, 1).await);
        // Back again: one sweep again, even if its start comes twice.
        sweeps.start(store.clone(), "pubsub.a.example");
        sweeps.start(store.clone(), "pubsub.a.example");
        assert!(sweeps_hold(&store, 2).await);
        sweeps.stop("pubsub.a.example");
        sweeps.stop("pubsub.b.example");
        assert!(sweeps_hold(&store, 0).await);
    }

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
