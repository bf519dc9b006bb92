//! Two of ejabberd's node fields (XEP-0060 §16.4.3) that need to know who is online, which
//! the server knows of its own accounts (the router's session table):
//!
//! - `pubsub#presence_based_delivery`: notifications go only to subscribers that are
//!   available ([`available`]). A subscriber on another server is delivered to as if it
//!   were: the service holds no presence subscription to know otherwise.
//! - `pubsub#purge_offline`: when an account's last available resource goes unavailable,
//!   or a session of it ends leaving none available, the items it published to such
//!   nodes go, and the subscribers hear of it as of a retraction (§7.2.2.1, under the
//!   node's `notify_retract`). ejabberd does it per resource at each session's end, for
//!   the items that resource published; items here name their publisher's bare JID, so
//!   it is per account. Publishers on other servers: not covered.
//!
//! Presence changes cost nothing while no node has `purge_offline` on: [`Purging`] keeps,
//! in memory, the nodes of each service that have it (filled at start, kept by node
//! creation, configuration and deletion), and the hook is inactive while it is empty.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jabberwock_protocol::jid::{BareJid, FullJid, Jid};
use jabberwock_protocol::pubsub::Event as PubsubEvent;
use jabberwock_storage::ItemsWanted;

use super::config::NodeConfig;
use super::node::Node;
use super::{notify, Ctx, Settings};
use crate::modules::hooks::{Event, Flow, Hook};
use crate::server::Server;

/// §16.4.3 `pubsub#presence_based_delivery`: whether `jid`, a subscription's JID, is
/// available: an account here with an available resource (that resource, for a full
/// JID); anyone else is taken to be.
pub(super) fn available(server: &Server, jid: &Jid) -> bool {
    if !server.serves(jid.domain().as_str()) {
        return true;
    }
    let table = &server.router.table;
    match jid.try_as_full() {
        Ok(full) => table.is_available(full),
        Err(_) => !table.available_presences(jid.as_str()).is_empty(),
    }
}

/// The nodes with `pubsub#purge_offline` on, by service domain, shared by the service's
/// handlers (through the server's shared module state) and the presence hook.
#[derive(Default)]
pub(super) struct Purging {
    nodes: Mutex<HashMap<String, HashSet<String>>>,
    /// Whether any service has one: the one thing a presence change reads otherwise.
    any: AtomicBool,
}

impl Purging {
    /// Notes whether `node` of `service` purges its publishers' items when they go offline.
    pub fn note(&self, service: &str, node: &str, on: bool) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        if on {
            nodes
                .entry(service.to_owned())
                .or_default()
                .insert(node.to_owned());
        } else if let Some(set) = nodes.get_mut(service) {
            set.remove(node);
            if set.is_empty() {
                nodes.remove(service);
            }
        }
        self.any.store(!nodes.is_empty(), Ordering::Relaxed);
    }

    /// Forgets the nodes of `service` (no longer served).
    pub fn forget(&self, service: &str) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        nodes.remove(service);
        self.any.store(!nodes.is_empty(), Ordering::Relaxed);
    }

    /// [`Purging::note`] through the server's shared module state, for request handlers.
    pub fn note_on(server: &Server, service: &str, node: &str, on: bool) {
        if let Some(purging) = server.modules.shared().get::<Purging>() {
            purging.note(service, node, on);
        }
    }

    fn any(&self) -> bool {
        self.any.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> Vec<(String, Vec<String>)> {
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        nodes
            .iter()
            .map(|(service, set)| (service.clone(), set.iter().cloned().collect()))
            .collect()
    }

    /// Notes the nodes of `service` listed at start.
    pub fn load(&self, service: &str, nodes: &[(String, NodeConfig)]) {
        for (node, config) in nodes {
            if config.purge_offline {
                self.note(service, node, true);
            }
        }
    }
}

/// Listens for an account going offline: an unavailable broadcast from its last available
/// resource, or a session's end that leaves it none.
pub(super) struct GoneOffline {
    pub purging: Arc<Purging>,
    pub settings: Settings,
}

impl GoneOffline {
    /// Whether no resource of `bare` but `except` is available.
    fn none_available_but(server: &Server, bare: &BareJid, except: Option<&FullJid>) -> bool {
        server
            .router
            .table
            .available_presences(bare.as_str())
            .iter()
            .all(|(full, _)| except.is_some_and(|e| e.as_str() == full))
    }
}

#[async_trait]
impl Hook for GoneOffline {
    fn active(&self) -> bool {
        self.purging.any()
    }

    fn quick(&self, server: &Server, event: &mut Event<'_>) -> Option<Flow> {
        let going = match event {
            // Before the presence module records it: this resource is still available.
            Event::PresenceOut { from, stanza, .. } => {
                stanza.to().is_none()
                    && stanza.type_attr() == Some("unavailable")
                    && server.router.table.is_available(from)
                    && Self::none_available_but(server, &from.to_bare(), Some(from))
            }
            // After the presence module said unavailable for it; a session replaced by a
            // newer one of the same resource is no departure.
            Event::SessionEnded { jid, replaced, .. } => {
                !*replaced && Self::none_available_but(server, &jid.to_bare(), None)
            }
            _ => false,
        };
        (!going).then_some(Flow::Continue)
    }

    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        let from = match event {
            Event::PresenceOut { from, .. } => (*from).clone(),
            Event::SessionEnded { jid, .. } => (*jid).clone(),
            _ => return Flow::Continue,
        };
        let settings = self.settings.get();
        for (service, nodes) in self.purging.snapshot() {
            let ctx = Ctx {
                server,
                settings: &settings,
                service: &service,
                from: &from,
            };
            for node in nodes {
                purge(&ctx, &self.purging, &node).await;
            }
        }
        Flow::Continue
    }
}

/// The items of `name` that the asker (the account gone offline) published go; the
/// subscribers hear of it as of a retraction.
async fn purge(ctx: &Ctx<'_>, purging: &Purging, name: &str) {
    let Ok(node) = Node::load(ctx, name).await else {
        // Gone since (deleted while the set was read): nothing to purge.
        purging.note(ctx.service, name, false);
        return;
    };
    if !node.config.purge_offline {
        purging.note(ctx.service, name, false);
        return;
    }
    let store = ctx.server.store.as_ref();
    let publisher = ctx.asker();
    let items = match store
        .pubsub_items(ctx.service, name, ItemsWanted::Newest(u64::MAX))
        .await
    {
        Ok(found) => found.map(|f| f.items).unwrap_or_default(),
        Err(e) => {
            tracing::error!(error = %e, node = %name, "items not read for purge_offline");
            return;
        }
    };
    let ids: Vec<String> = items
        .into_iter()
        .filter(|item| item.publisher == publisher.as_str())
        .map(|item| item.id)
        .collect();
    if ids.is_empty() {
        return;
    }
    let removed = match store.retract_pubsub_items(ctx.service, name, &ids).await {
        Ok(removed) => removed.unwrap_or_default(),
        Err(e) => {
            tracing::error!(error = %e, node = %name, "items not purged for purge_offline");
            return;
        }
    };
    if removed.is_empty() {
        return;
    }
    tracing::debug!(node = %name, %publisher, count = removed.len(), "offline publisher's items purged");
    // §7.2.2.1, as a retraction by the publisher would be notified.
    if node.config.notify_retract && node.config.deliver_notifications {
        let event = PubsubEvent::Retract {
            node: name.to_owned(),
            ids: removed,
        };
        notify::broadcast(ctx, &node, &event).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_follows_the_nodes() {
        let purging = Purging::default();
        assert!(!purging.any());
        purging.note("pubsub.a", "news", true);
        purging.note("pubsub.b", "feed", true);
        assert!(purging.any());
        purging.note("pubsub.a", "news", false);
        assert!(purging.any());
        assert_eq!(
            purging.snapshot(),
            vec![("pubsub.b".to_owned(), vec!["feed".to_owned()])]
        );
        // Turning off a node that was never on changes nothing.
        purging.note("pubsub.a", "other", false);
        purging.note("pubsub.b", "feed", false);
        assert!(!purging.any());
        assert!(purging.snapshot().is_empty());
    }
}
