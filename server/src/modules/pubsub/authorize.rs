//! The `authorize` access model (XEP-0060 §4.5): a subscription waits, `pending`, until an
//! owner decides. Each owner is asked with the §8.6 form in a message; an owner answers
//! with the form submitted (`pubsub#allow`), or through the node's subscriptions (§8.8).
//! The subscriber hears the outcome as a subscription event (`subscribed` or `none`).

use jabberwock_protocol::jid::Jid;
use jabberwock_protocol::pubsub::{Event as PubsubEvent, SubscriptionState};
use jabberwock_protocol::pubsub_authorization::{
    AnswerError, AuthorizationAnswer, AuthorizationRequest,
};
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::{StoredSubscription, Subscribers};

use super::node::{item_not_found, Node};
use super::subscribe::entry;
use super::{notify, Ctx};
use crate::error::store_to_stanza_error;

/// §8.6: every owner of the node is asked about `subscription`.
pub(super) async fn ask_owners(ctx: &Ctx<'_>, node: &Node, subscription: &StoredSubscription) {
    for owner in node.owners() {
        ask(ctx, node, subscription, owner).await;
    }
}

/// §8.6: `to` (an owner) is asked about `subscription`.
pub(super) async fn ask(ctx: &Ctx<'_>, node: &Node, subscription: &StoredSubscription, to: &str) {
    let request = AuthorizationRequest {
        node: node.name.clone(),
        subscriber: subscription.jid.clone(),
        subid: subscription.subid.clone(),
    };
    let message = request.to_message(ctx.service, to, &notify::message_id());
    notify::send(ctx, message).await;
}

/// An owner's decision on a pending subscription: approved, it becomes a subscription
/// (the owners hear of it under `notify_sub`, the last item follows); denied, it goes.
/// The subscriber is told either way.
pub(super) async fn decide(
    ctx: &Ctx<'_>,
    node: &Node,
    mut found: StoredSubscription,
    allow: bool,
) -> Result<(), StanzaError> {
    let store = &ctx.server.store;
    let state = if allow {
        let bare = Jid::new(&found.jid)
            .map_err(|_| item_not_found())?
            .to_bare();
        found.pending = false;
        let put = store
            .put_pubsub_subscription(ctx.service, &node.name, bare.as_str(), &found)
            .await
            .map_err(store_to_stanza_error)?;
        if !put {
            return Err(item_not_found());
        }
        SubscriptionState::Subscribed
    } else {
        store
            .remove_pubsub_subscriptions(ctx.service, &node.name, Subscribers::Jid(&found.jid))
            .await
            .map_err(store_to_stanza_error)?
            .ok_or_else(item_not_found)?;
        SubscriptionState::None
    };
    let event = PubsubEvent::Subscription(entry(Some(&node.name), &found, state));
    notify::to_jid(ctx, &found.jid, &event).await;
    if allow {
        notify::to_owners(ctx, node, &event).await;
        notify::last_item(ctx, node, &found).await;
    }
    Ok(())
}

/// §8.6: a message to the service carrying an owner's answer. `None`: the message is no
/// answer (or a cancelled one); else what became of it, an error going back to the
/// sender.
pub(super) async fn answer(ctx: &Ctx<'_>, message: &Element) -> Option<Result<(), StanzaError>> {
    let answer = AuthorizationAnswer::from_message(message)?;
    Some(apply(ctx, answer).await)
}

async fn apply(
    ctx: &Ctx<'_>,
    answer: Result<AuthorizationAnswer, AnswerError>,
) -> Result<(), StanzaError> {
    let answer =
        answer.map_err(|e| StanzaError::with_text(Condition::BadRequest, e.to_string()))?;
    let node = Node::load(ctx, &answer.node).await?;
    // Only an owner decides (§8.6).
    node.require_owner(ctx)?;
    // The subscription must still be waiting: another owner may have decided already.
    let found = node
        .subscriptions(ctx)
        .await?
        .into_iter()
        .find(|s| {
            s.pending
                && s.jid == answer.subscriber
                && answer.subid.as_ref().is_none_or(|id| *id == s.subid)
        })
        .ok_or_else(|| {
            StanzaError::with_text(Condition::ItemNotFound, "no such pending subscription")
        })?;
    decide(ctx, &node, found, answer.allow).await
}
