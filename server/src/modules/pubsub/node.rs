//! A node as one request sees it: its configuration and affiliations, read once, and who
//! the asker is to it (XEP-0060 §4.1 affiliations, §4.5 access models).
//!
//! The `presence` and `roster` access models name no roster of the service's own: as on
//! ejabberd, they look at the rosters of the node's owners that are accounts here (an
//! asker subscribed to an owner's presence, or in one of the allowed groups of an owner's
//! roster).

use std::collections::HashMap;

use jabberwock_protocol::jid::{BareJid, Jid};
use jabberwock_protocol::pubsub::Affiliation;
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_storage::{StoredSubscription, Subscription};

use super::config::{AccessModel, Asker, Denied, NodeConfig, Subscribed};
use super::Ctx;
use crate::accounts::account_of;
use crate::error::store_to_stanza_error;
use crate::server::Server;

pub(super) fn item_not_found() -> StanzaError {
    StanzaError::new(Condition::ItemNotFound)
}

pub(super) struct Node {
    pub name: String,
    pub config: NodeConfig,
    /// Bare JID → affiliation, as stored (`none` is never stored).
    pub affiliations: HashMap<String, Affiliation>,
}

impl Node {
    /// The node, or `item-not-found` (§6.1.3.12, §7.1.3.3, §8.2.3.4 and the like).
    pub async fn load(ctx: &Ctx<'_>, name: &str) -> Result<Node, StanzaError> {
        let store = &ctx.server.store;
        let config = store
            .pubsub_node(ctx.service, name)
            .await
            .map_err(store_to_stanza_error)?
            .ok_or_else(item_not_found)?;
        let affiliations = store
            .pubsub_affiliations(ctx.service, name)
            .await
            .map_err(store_to_stanza_error)?
            .ok_or_else(item_not_found)?
            .into_iter()
            .filter_map(|(jid, a)| Some((jid, Affiliation::from_name(&a)?)))
            .collect();
        Ok(Node {
            name: name.to_owned(),
            config: NodeConfig::from_stored(&config),
            affiliations,
        })
    }

    /// `jid`'s affiliation: the service's admins own every node.
    pub fn affiliation(&self, ctx: &Ctx<'_>, jid: &BareJid) -> Affiliation {
        if ctx.settings.is_admin(jid) {
            return Affiliation::Owner;
        }
        self.affiliations
            .get(jid.as_str())
            .copied()
            .unwrap_or(Affiliation::None)
    }

    /// §8: the owner's use cases are refused to anyone else with `forbidden`.
    pub fn require_owner(&self, ctx: &Ctx<'_>) -> Result<(), StanzaError> {
        if self.affiliation(ctx, &ctx.asker()) == Affiliation::Owner {
            Ok(())
        } else {
            Err(StanzaError::new(Condition::Forbidden))
        }
    }

    /// The node's owners (the admins aside), sorted.
    pub fn owners(&self) -> Vec<&str> {
        let mut owners: Vec<&str> = self
            .affiliations
            .iter()
            .filter(|(_, a)| **a == Affiliation::Owner)
            .map(|(jid, _)| jid.as_str())
            .collect();
        owners.sort_unstable();
        owners
    }

    /// Who `jid` is to the node, as the access models see it: its affiliation, and for the
    /// `presence` and `roster` models what the owners' rosters say of it.
    pub async fn asker(&self, ctx: &Ctx<'_>, jid: &BareJid) -> Result<Asker, StanzaError> {
        let affiliation = self.affiliation(ctx, jid);
        let mut asker = Asker {
            affiliation,
            ..Asker::default()
        };
        if self.config.access_model == AccessModel::Authorize
            && !matches!(affiliation, Affiliation::Owner | Affiliation::Outcast)
        {
            asker.subscription = self.subscription_of(ctx, jid).await?;
            return Ok(asker);
        }
        let rosters_matter = matches!(
            self.config.access_model,
            AccessModel::Presence | AccessModel::Roster
        );
        if !rosters_matter || matches!(affiliation, Affiliation::Owner | Affiliation::Outcast) {
            return Ok(asker);
        }
        for owner in self.owners() {
            let Ok(owner) = BareJid::new(owner) else {
                continue;
            };
            let seen = roster_view(ctx.server, &owner, jid).await?;
            asker.subscribed |= seen.subscribed;
            asker.groups.extend(seen.groups);
        }
        Ok(asker)
    }

    /// The node's explicit subscriptions (item-not-found if the node went meanwhile).
    pub async fn subscriptions(
        &self,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<StoredSubscription>, StanzaError> {
        ctx.server
            .store
            .pubsub_subscriptions(ctx.service, &self.name)
            .await
            .map_err(store_to_stanza_error)?
            .ok_or_else(item_not_found)
    }

    /// `jid`'s explicit subscription, its own or one of its resources' (an approved one
    /// over a pending one).
    async fn subscription_of(
        &self,
        ctx: &Ctx<'_>,
        jid: &BareJid,
    ) -> Result<Subscribed, StanzaError> {
        let mut found = Subscribed::No;
        for s in self.subscriptions(ctx).await? {
            if Jid::new(&s.jid).is_ok_and(|j| j.to_bare() == *jid) {
                if !s.pending {
                    return Ok(Subscribed::Yes);
                }
                found = Subscribed::Pending;
            }
        }
        Ok(found)
    }

    /// Whether `jid` is shown the node in the service's disco#items (§5.2): it may read
    /// it, or may ask an owner to (`authorize`).
    pub async fn may_discover(&self, ctx: &Ctx<'_>, jid: &BareJid) -> bool {
        let Ok(asker) = self.asker(ctx, jid).await else {
            return false;
        };
        matches!(
            self.config.may_read(&asker),
            Ok(()) | Err(Denied::NotSubscribed | Denied::PendingSubscription)
        )
    }

    /// Whether `jid` may read the node (its items, its notifications), as an error.
    pub async fn may_read(&self, ctx: &Ctx<'_>, jid: &BareJid) -> Result<(), StanzaError> {
        self.config
            .may_read(&self.asker(ctx, jid).await?)
            .map_err(|denied| denied.to_stanza_error())
    }
}

/// Who `asker` (a bare JID) is to the account `owner` by its roster: the entry's
/// subscription and groups. The owner itself is the owner; an owner that is no account
/// here has no roster to look at.
pub(in crate::modules) async fn roster_view(
    server: &Server,
    owner: &BareJid,
    asker: &BareJid,
) -> Result<Asker, StanzaError> {
    if owner == asker {
        return Ok(Asker::owner());
    }
    if !server.serves(owner.domain().as_str()) {
        return Ok(Asker::default());
    }
    let entry = server
        .store
        .roster_entry(&account_of(owner), asker.as_str())
        .await
        .map_err(store_to_stanza_error)?;
    Ok(entry.map_or_else(Asker::default, |e| Asker {
        affiliation: Affiliation::None,
        subscribed: matches!(e.subscription, Subscription::From | Subscription::Both),
        groups: if e.in_roster { e.groups } else { Vec::new() },
        ..Asker::default()
    }))
}
