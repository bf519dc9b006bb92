//! An entity's own subscriptions (XEP-0060 §6.1 subscribe, §6.2 unsubscribe, §6.3 options)
//! and what it can learn of itself (§5.6 subscriptions, §5.7 affiliations).
//!
//! One subscription per JID and node: subscribing again answers the subscription there is
//! (its SubID), so a JID never has several and notifications need no SubID headers.

use jabberwock_protocol::forms::{DataForm, Field, FieldType, FormType};
use jabberwock_protocol::jid::Jid;
use jabberwock_protocol::pubsub::{
    self, Affiliation, Event as PubsubEvent, SubscriptionEntry, SubscriptionState,
    SUBSCRIBE_OPTIONS,
};
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::{StoredSubscription, Subscribers};
use serde::{Deserialize, Serialize};

use super::authorize;
use super::config::{Approval, Denied};
use super::node::Node;
use super::notify;
use super::payload::item_id;
use super::Ctx;
use crate::error::store_to_stanza_error;

/// A subscription's options (§6.3, `pubsub#subscribe_options`), kept by the store as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct SubOptions {
    /// `pubsub#deliver`: notifications are sent at all.
    pub deliver: bool,
    /// `pubsub#include_body`: item notifications carry a `<body/>` saying what the item
    /// is (§16.4.2; Prosody's option).
    pub include_body: bool,
}

impl Default for SubOptions {
    fn default() -> SubOptions {
        SubOptions {
            deliver: true,
            include_body: false,
        }
    }
}

impl SubOptions {
    pub fn from_stored(json: &str) -> SubOptions {
        serde_json::from_str(json).unwrap_or_default()
    }

    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// §6.3.2: the options form.
    fn to_form(&self) -> DataForm {
        DataForm::new(FormType::Form)
            .with_form_type(SUBSCRIBE_OPTIONS)
            .with_field(
                Field::new("pubsub#deliver")
                    .with_type(FieldType::Boolean)
                    .with_label("Enable delivery?")
                    .with_value(if self.deliver { "1" } else { "0" }),
            )
            .with_field(
                Field::new("pubsub#include_body")
                    .with_type(FieldType::Boolean)
                    .with_label("Receive message body in addition to payload?")
                    .with_value(if self.include_body { "1" } else { "0" }),
            )
            .with_field(
                Field::new("pubsub#digest")
                    .with_type(FieldType::Boolean)
                    .with_label("Receive digest notifications (not offered)")
                    .with_value("0"),
            )
            .with_field(
                Field::new("pubsub#subscription_type")
                    .with_type(FieldType::ListSingle)
                    .with_label("Receive notification of items or of nodes")
                    .with_value("items")
                    .with_option(None, "items"),
            )
    }

    /// §6.3.5: a submitted form; a value this service does not offer fails it
    /// (`not-acceptable`, §6.3.6), fields it does not know are left out.
    fn apply(&mut self, form: &DataForm) -> Result<(), StanzaError> {
        if form
            .form_type_field()
            .is_some_and(|t| t != SUBSCRIBE_OPTIONS)
        {
            return Err(bad_options());
        }
        let mut next = self.clone();
        for field in &form.fields {
            let (Some(var), Some(value)) = (field.var.as_deref(), field.value()) else {
                continue;
            };
            match (var, value) {
                ("pubsub#deliver", "1" | "true") => next.deliver = true,
                ("pubsub#deliver", "0" | "false") => next.deliver = false,
                ("pubsub#include_body", "1" | "true") => next.include_body = true,
                ("pubsub#include_body", "0" | "false") => next.include_body = false,
                // Digests and node subscriptions (collections) are not offered.
                ("pubsub#digest", "0" | "false") | ("pubsub#subscription_type", "items") => {}
                (
                    "pubsub#deliver"
                    | "pubsub#include_body"
                    | "pubsub#digest"
                    | "pubsub#subscription_type",
                    _,
                ) => return Err(bad_options()),
                _ => {}
            }
        }
        *self = next;
        Ok(())
    }
}

/// §6.3.6: options this service can't take.
fn bad_options() -> StanzaError {
    pubsub::error(Condition::NotAcceptable, "invalid-options")
}

/// §6.1.3.1: the JID to subscribe must be the asker's own (bare or full); anything else,
/// or no JID at all, is `bad-request` + `<invalid-jid/>`.
fn own_jid(ctx: &Ctx<'_>, jid: &str) -> Result<Jid, StanzaError> {
    let invalid = || pubsub::error(Condition::BadRequest, "invalid-jid");
    let parsed = Jid::new(jid).map_err(|_| invalid())?;
    if parsed.to_bare() != ctx.asker() {
        return Err(invalid());
    }
    Ok(parsed)
}

/// The subscription of exactly `jid` to the node, if there is one.
async fn subscription_of(
    ctx: &Ctx<'_>,
    node: &str,
    jid: &str,
) -> Result<Option<StoredSubscription>, StanzaError> {
    let subscriptions = ctx
        .server
        .store
        .pubsub_subscriptions(ctx.service, node)
        .await
        .map_err(store_to_stanza_error)?
        .ok_or_else(super::node::item_not_found)?;
    Ok(subscriptions.into_iter().find(|s| s.jid == jid))
}

/// §6.2.3 and §6.3.4: the asker's existing subscription of `jid`, checked against the
/// SubID it named.
async fn existing(
    ctx: &Ctx<'_>,
    node: &str,
    jid: &str,
    subid: Option<&str>,
) -> Result<StoredSubscription, StanzaError> {
    // §6.2.3.3, §6.3.4.2: someone else's subscription.
    let parsed = Jid::new(jid).map_err(|_| pubsub::error(Condition::BadRequest, "invalid-jid"))?;
    if parsed.to_bare() != ctx.asker() {
        return Err(StanzaError::new(Condition::Forbidden));
    }
    let found = subscription_of(ctx, node, parsed.as_str())
        .await?
        // §6.2.3.2, §6.3.4.3: no subscription.
        .ok_or_else(|| pubsub::error(Condition::UnexpectedRequest, "not-subscribed"))?;
    // §6.2.3.5, §6.3.4.4: another subscription's id.
    if subid.is_some_and(|s| s != found.subid) {
        return Err(pubsub::error(Condition::NotAcceptable, "invalid-subid"));
    }
    Ok(found)
}

/// A stored subscription's state: pending (§6.1.2) or subscribed.
pub(super) fn state_of(s: &StoredSubscription) -> SubscriptionState {
    if s.pending {
        SubscriptionState::Pending
    } else {
        SubscriptionState::Subscribed
    }
}

pub(super) fn entry(
    node: Option<&str>,
    s: &StoredSubscription,
    state: SubscriptionState,
) -> SubscriptionEntry {
    SubscriptionEntry {
        node: node.map(str::to_owned),
        jid: s.jid.clone(),
        subid: Some(s.subid.clone()),
        state,
    }
}

pub(super) async fn subscribe(
    ctx: &Ctx<'_>,
    name: &str,
    jid: &str,
    options: Option<&DataForm>,
) -> Result<Option<Element>, StanzaError> {
    let node = Node::load(ctx, name).await?;
    // §6.1.3 (subscriptions not supported): `pubsub#subscribe` off.
    if !node.config.subscribe {
        return Err(pubsub::unsupported("subscribe"));
    }
    let jid = own_jid(ctx, jid)?;
    // §6.1.3.2–§6.1.3.8: the access model (`authorize`: approval, §6.1.2), and outcasts.
    let approval = node
        .config
        .may_subscribe(&node.asker(ctx, &ctx.asker()).await?)
        .map_err(|denied| denied.to_stanza_error())?;
    if let Some(found) = subscription_of(ctx, name, jid.as_str()).await? {
        // §6.1.3.7: still waiting for the owner.
        if found.pending {
            return Err(Denied::PendingSubscription.to_stanza_error());
        }
        let entry = entry(Some(name), &found, SubscriptionState::Subscribed);
        return Ok(Some(pubsub::subscription_result(&entry)));
    }
    let mut wanted = SubOptions::default();
    if let Some(form) = options {
        wanted.apply(form)?;
    }
    let subscription = StoredSubscription {
        jid: jid.to_string(),
        subid: item_id(),
        options: wanted.to_stored(),
        pending: approval == Approval::Needed,
    };
    let found = ctx
        .server
        .store
        .put_pubsub_subscription(ctx.service, name, ctx.asker().as_str(), &subscription)
        .await
        .map_err(store_to_stanza_error)?;
    if !found {
        return Err(super::node::item_not_found());
    }
    let entry = entry(Some(name), &subscription, state_of(&subscription));
    if subscription.pending {
        // §8.6: the owners decide; the subscriber hears of it then.
        authorize::ask_owners(ctx, &node, &subscription).await;
    } else {
        notify::to_owners(ctx, &node, &PubsubEvent::Subscription(entry.clone())).await;
        notify::last_item(ctx, &node, &subscription).await;
    }
    Ok(Some(pubsub::subscription_result(&entry)))
}

pub(super) async fn unsubscribe(
    ctx: &Ctx<'_>,
    name: &str,
    jid: &str,
    subid: Option<&str>,
) -> Result<Option<Element>, StanzaError> {
    let node = Node::load(ctx, name).await?;
    let found = existing(ctx, name, jid, subid).await?;
    ctx.server
        .store
        .remove_pubsub_subscriptions(ctx.service, name, Subscribers::Jid(&found.jid))
        .await
        .map_err(store_to_stanza_error)?
        .ok_or_else(super::node::item_not_found)?;
    let entry = entry(Some(name), &found, SubscriptionState::None);
    notify::to_owners(ctx, &node, &PubsubEvent::Subscription(entry)).await;
    Ok(None)
}

/// §6.3: a subscription's options (`form: None`) or a submitted form.
pub(super) async fn options(
    ctx: &Ctx<'_>,
    name: &str,
    jid: &str,
    subid: Option<&str>,
    form: Option<&DataForm>,
) -> Result<Option<Element>, StanzaError> {
    let mut found = existing(ctx, name, jid, subid).await?;
    let mut current = SubOptions::from_stored(&found.options);
    let Some(form) = form else {
        let form = current.to_form();
        return Ok(Some(pubsub::options_result(
            name,
            &found.jid,
            Some(&found.subid),
            &form,
        )));
    };
    if form.form_type == FormType::Cancel {
        return Ok(None);
    }
    current.apply(form)?;
    found.options = current.to_stored();
    let put = ctx
        .server
        .store
        .put_pubsub_subscription(ctx.service, name, ctx.asker().as_str(), &found)
        .await
        .map_err(store_to_stanza_error)?;
    if !put {
        return Err(super::node::item_not_found());
    }
    Ok(None)
}

/// §5.6: the asker's subscriptions (its bare JID's and its resources'), of one node or
/// all.
pub(super) async fn own_subscriptions(
    ctx: &Ctx<'_>,
    node: Option<&str>,
) -> Result<Option<Element>, StanzaError> {
    let mine = ctx
        .server
        .store
        .pubsub_subscriptions_of(ctx.service, ctx.asker().as_str())
        .await
        .map_err(store_to_stanza_error)?;
    let list: Vec<SubscriptionEntry> = mine
        .iter()
        .filter(|(n, _)| node.is_none_or(|node| node == n))
        .map(|(n, s)| entry(Some(n), s, state_of(s)))
        .collect();
    Ok(Some(pubsub::subscriptions_result(false, node, &list)))
}

/// §5.7: the asker's affiliations, of one node or all.
pub(super) async fn own_affiliations(
    ctx: &Ctx<'_>,
    node: Option<&str>,
) -> Result<Option<Element>, StanzaError> {
    let mine = ctx
        .server
        .store
        .pubsub_affiliations_of(ctx.service, ctx.asker().as_str())
        .await
        .map_err(store_to_stanza_error)?;
    let list: Vec<(String, Affiliation)> = mine
        .into_iter()
        .filter(|(n, _)| node.is_none_or(|node| node == n))
        .filter_map(|(n, a)| Some((n, Affiliation::from_name(&a)?)))
        .collect();
    Ok(Some(pubsub::affiliations_result(false, node, &list)))
}

#[cfg(test)]
mod tests {
    use super::super::config::tests::submit;
    use super::*;

    fn submitted(fields: &[(&str, &str)]) -> DataForm {
        submit(SUBSCRIBE_OPTIONS, fields)
    }

    #[test]
    fn include_body_is_an_option() {
        let mut options = SubOptions::default();
        assert!(!options.include_body);
        assert_eq!(options.to_form().value("pubsub#include_body"), Some("0"));
        options
            .apply(&submitted(&[("pubsub#include_body", "true")]))
            .unwrap();
        assert!(options.include_body && options.deliver);
        let mut shown = options.to_form();
        assert_eq!(shown.value("pubsub#include_body"), Some("1"));
        shown.form_type = FormType::Submit;
        let mut again = options.clone();
        again.apply(&shown).unwrap();
        assert_eq!(again, options);
        assert_eq!(SubOptions::from_stored(&options.to_stored()), options);
        // Options kept before the field read as without a body.
        assert_eq!(
            SubOptions::from_stored(r#"{"deliver":false}"#),
            SubOptions {
                deliver: false,
                include_body: false
            }
        );
        let bad = submitted(&[("pubsub#deliver", "0"), ("pubsub#include_body", "yes")]);
        assert!(options.apply(&bad).is_err());
        assert!(options.include_body && options.deliver);
    }
}
