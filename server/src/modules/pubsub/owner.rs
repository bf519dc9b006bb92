//! The owner's use cases (XEP-0060 §8): create (§8.1, instant nodes §8.1.2), configure
//! (§8.2), the default configuration (§8.3), delete (§8.4), purge (§8.5), and the node's
//! subscriptions (§8.8) and affiliations (§8.9, each changed entity told, §8.9.4).

use jabberwock_protocol::forms::{DataForm, FormType};
use jabberwock_protocol::jid::{BareJid, Jid};
use jabberwock_protocol::pubsub::{
    self, Affiliation, Event as PubsubEvent, SubscriptionEntry, SubscriptionState, NODE_CONFIG,
};
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::{Created, PubsubService, StoredSubscription, Subscribers};

use super::config::NodeConfig;
use super::node::{item_not_found, Node};
use super::offline::Purging;
use super::payload::{item_id, over_limit};
use super::subscribe::{entry, state_of, SubOptions};
use super::{authorize, notify, CreateNodes, Ctx};
use crate::error::store_to_stanza_error;

/// §8.1.1: who may make nodes (`[modules.pubsub] create_nodes`, and the admins).
fn may_create(ctx: &Ctx<'_>) -> bool {
    let asker = ctx.asker();
    ctx.settings.is_admin(&asker)
        || (ctx.settings.create_nodes == CreateNodes::Local
            && ctx.server.serves(asker.domain().as_str()))
}

pub(super) async fn create(
    ctx: &Ctx<'_>,
    node: Option<String>,
    form: Option<&DataForm>,
) -> Result<Option<Element>, StanzaError> {
    // §8.1.3.1: not allowed to create nodes.
    if !may_create(ctx) {
        return Err(StanzaError::new(Condition::Forbidden));
    }
    // §8.1.2: an instant node is named by the service.
    let node = node.unwrap_or_else(item_id);
    let mut config = NodeConfig::service_default();
    if let Some(form) = form.filter(|f| f.form_type == FormType::Submit) {
        config
            .apply(form, NODE_CONFIG, ctx.settings.rules())
            .map_err(|e| e.to_stanza_error(Condition::NotAcceptable))?;
    }
    let created = ctx
        .server
        .store
        .create_pubsub_node(
            &PubsubService {
                name: ctx.service,
                owner: None,
            },
            &node,
            &config.to_stored(),
            ctx.settings.max_nodes,
            Some(ctx.asker().as_str()),
        )
        .await
        .map_err(store_to_stanza_error)?;
    match created {
        Created::Done => {
            Purging::note_on(ctx.server, ctx.service, &node, config.purge_offline);
            Ok(Some(pubsub::create_result(&node)))
        }
        // §8.1.3.3: the node exists already.
        Created::Exists => Err(StanzaError::new(Condition::Conflict)),
        Created::TooManyNodes => Err(over_limit("max-nodes-exceeded")),
    }
}

/// §8.2: the configuration form (`form: None`), or a submitted form (a cancelled one
/// changes nothing, §8.2.6). Lowering `max_items` drops the oldest items at once;
/// `pubsub#notify_config` tells the subscribers.
pub(super) async fn configure(
    ctx: &Ctx<'_>,
    name: &str,
    form: Option<&DataForm>,
) -> Result<Option<Element>, StanzaError> {
    let mut node = Node::load(ctx, name).await?;
    node.require_owner(ctx)?;
    let rules = ctx.settings.rules();
    let Some(form) = form else {
        // The asker's roster groups are offered for the roster access model.
        let asker = ctx.asker();
        let mut groups = Vec::new();
        if ctx.server.serves(asker.domain().as_str()) {
            let (_, entries) = ctx
                .server
                .store
                .roster(&crate::accounts::account_of(&asker))
                .await
                .map_err(store_to_stanza_error)?;
            groups = entries.into_iter().flat_map(|e| e.groups).collect();
            groups.sort_unstable();
            groups.dedup();
        }
        let form = node.config.to_form(rules, &groups);
        return Ok(Some(pubsub::configure_result(Some(name), &form)));
    };
    if form.form_type == FormType::Cancel {
        return Ok(None);
    }
    // §8.2.5.3: a form that can't be applied.
    node.config
        .apply(form, NODE_CONFIG, rules)
        .map_err(|e| e.to_stanza_error(Condition::NotAcceptable))?;
    let keep = node.config.keep(rules.ceiling).unwrap_or(0);
    let found = ctx
        .server
        .store
        .configure_pubsub_node(ctx.service, name, &node.config.to_stored(), keep)
        .await
        .map_err(store_to_stanza_error)?;
    if !found {
        return Err(item_not_found());
    }
    Purging::note_on(ctx.server, ctx.service, name, node.config.purge_offline);
    // §8.2.5.1: with the new configuration if the node delivers payloads.
    if node.config.notify_config && node.config.deliver_notifications {
        let form = node.config.deliver_payloads.then(|| {
            let mut form = node.config.to_form(rules, &[]);
            form.form_type = FormType::Result;
            form
        });
        let event = PubsubEvent::Configuration {
            node: name.to_owned(),
            form,
        };
        notify::broadcast(ctx, &node, &event).await;
    }
    Ok(None)
}

/// §8.3: what a node made now would be configured as.
pub(super) fn default_configuration(ctx: &Ctx<'_>) -> Result<Option<Element>, StanzaError> {
    let form = NodeConfig::service_default().to_form(ctx.settings.rules(), &[]);
    Ok(Some(pubsub::configure_result(None, &form)))
}

/// §8.4: the subscribers (read before the node goes) hear of it, with the redirect URI.
pub(super) async fn delete(
    ctx: &Ctx<'_>,
    name: &str,
    redirect: Option<String>,
) -> Result<Option<Element>, StanzaError> {
    let node = Node::load(ctx, name).await?;
    node.require_owner(ctx)?;
    let subscriptions = node.subscriptions(ctx).await?;
    let deleted = ctx
        .server
        .store
        .delete_pubsub_node(ctx.service, name)
        .await
        .map_err(store_to_stanza_error)?;
    if !deleted {
        return Err(item_not_found());
    }
    Purging::note_on(ctx.server, ctx.service, name, false);
    if node.config.notify_delete {
        let event = PubsubEvent::Delete {
            node: name.to_owned(),
            redirect,
        };
        notify::to_subscribers(ctx, &node, &subscriptions, &event, None).await;
    }
    Ok(None)
}

/// §8.5: every item goes; the subscribers hear of it (§8.5.2).
pub(super) async fn purge(ctx: &Ctx<'_>, name: &str) -> Result<Option<Element>, StanzaError> {
    let node = Node::load(ctx, name).await?;
    node.require_owner(ctx)?;
    let found = ctx
        .server
        .store
        .purge_pubsub_node(ctx.service, name)
        .await
        .map_err(store_to_stanza_error)?;
    if !found {
        return Err(item_not_found());
    }
    if node.config.deliver_notifications {
        let event = PubsubEvent::Purge {
            node: name.to_owned(),
        };
        notify::broadcast(ctx, &node, &event).await;
    }
    Ok(None)
}

/// A JID of an owner's change, as a bare JID (`bad-request` if it is none).
fn bare_of(jid: &str) -> Result<BareJid, StanzaError> {
    Jid::new(jid)
        .map(|j| j.to_bare())
        .map_err(|_| StanzaError::with_text(Condition::BadRequest, format!("{jid:?} is no JID")))
}

/// §8.9: the node's affiliations (`changes` empty: the list, §8.9.1), or changes to them
/// (§8.9.2), all or none: a change that would leave the node without an owner is
/// `not-acceptable`. An outcast or publish-only entity loses its subscriptions (§4.1: it
/// may not subscribe).
pub(super) async fn affiliations(
    ctx: &Ctx<'_>,
    name: &str,
    changes: &[(String, Affiliation)],
) -> Result<Option<Element>, StanzaError> {
    let node = Node::load(ctx, name).await?;
    node.require_owner(ctx)?;
    if changes.is_empty() {
        let mut list: Vec<(String, Affiliation)> = node
            .affiliations
            .iter()
            .map(|(jid, a)| (jid.clone(), *a))
            .collect();
        list.sort();
        return Ok(Some(pubsub::affiliations_result(true, Some(name), &list)));
    }
    let mut rows = Vec::with_capacity(changes.len());
    for (jid, affiliation) in changes {
        let bare = bare_of(jid)?;
        let stored = (*affiliation != Affiliation::None).then(|| affiliation.as_str().to_owned());
        rows.push((bare.to_string(), stored));
    }
    let written = ctx
        .server
        .store
        .set_pubsub_affiliations(
            ctx.service,
            name,
            &rows,
            &[
                Affiliation::Outcast.as_str(),
                Affiliation::PublishOnly.as_str(),
            ],
            &mut |after| after.iter().any(|(_, a)| a == Affiliation::Owner.as_str()),
        )
        .await
        .map_err(store_to_stanza_error)?
        .ok_or_else(item_not_found)?;
    if !written {
        return Err(StanzaError::with_text(
            Condition::NotAcceptable,
            "the node would have no owner",
        ));
    }
    let told: Vec<(String, Affiliation)> = rows
        .iter()
        .zip(changes)
        .map(|((bare, _), (_, affiliation))| (bare.clone(), *affiliation))
        .collect();
    notify::affiliations_changed(ctx, name, &told).await;
    Ok(None)
}

/// §8.8: the node's subscriptions (`changes` empty: the list, §8.8.1, pending ones with
/// `subscription='pending'`), or changes to them (§8.8.2): `subscribed` makes one (with
/// default options) or approves a pending one, `none` removes one or denies a pending
/// one; each affected JID hears its new state. `pending` and `unconfigured` can't be set
/// (`not-acceptable`).
pub(super) async fn subscriptions(
    ctx: &Ctx<'_>,
    name: &str,
    changes: &[(String, SubscriptionState)],
) -> Result<Option<Element>, StanzaError> {
    let node = Node::load(ctx, name).await?;
    node.require_owner(ctx)?;
    let current = node.subscriptions(ctx).await?;
    if changes.is_empty() {
        let list: Vec<SubscriptionEntry> = current
            .iter()
            .map(|s| entry(None, s, state_of(s)))
            .collect();
        return Ok(Some(pubsub::subscriptions_result(true, Some(name), &list)));
    }
    if changes
        .iter()
        .any(|(_, s)| !matches!(s, SubscriptionState::Subscribed | SubscriptionState::None))
    {
        return Err(StanzaError::new(Condition::NotAcceptable));
    }
    let store = &ctx.server.store;
    for (jid, state) in changes {
        let bare = bare_of(jid)?;
        let jid = Jid::new(jid).map_err(|_| item_not_found())?;
        let existing = current.iter().find(|s| s.jid == jid.as_str());
        if let Some(found) = existing.filter(|s| s.pending) {
            authorize::decide(
                ctx,
                &node,
                found.clone(),
                *state == SubscriptionState::Subscribed,
            )
            .await?;
            continue;
        }
        if *state == SubscriptionState::None {
            let removed = store
                .remove_pubsub_subscriptions(ctx.service, name, Subscribers::Jid(jid.as_str()))
                .await
                .map_err(store_to_stanza_error)?
                .unwrap_or_default();
            if let Some(found) = existing.filter(|_| !removed.is_empty()) {
                let event = PubsubEvent::Subscription(entry(Some(name), found, *state));
                notify::to_jid(ctx, &found.jid, &event).await;
            }
            continue;
        }
        if existing.is_some() {
            continue;
        }
        // An outcast can't be made a subscriber (§4.1).
        if node.affiliation(ctx, &bare) == Affiliation::Outcast {
            return Err(StanzaError::new(Condition::NotAcceptable));
        }
        let subscription = StoredSubscription {
            jid: jid.to_string(),
            subid: item_id(),
            options: SubOptions::default().to_stored(),
            pending: false,
        };
        store
            .put_pubsub_subscription(ctx.service, name, bare.as_str(), &subscription)
            .await
            .map_err(store_to_stanza_error)?;
        let event = PubsubEvent::Subscription(entry(Some(name), &subscription, *state));
        notify::to_jid(ctx, &subscription.jid, &event).await;
    }
    Ok(None)
}
