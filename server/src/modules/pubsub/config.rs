//! A node's configuration (XEP-0060 §16.4.3 `pubsub#node_config`): what it holds, the
//! form it is read and changed through (§8.2), publish options (§7.1.5, XEP-0223) and who
//! may read the node (§4.5 access models). Nothing here knows whose service a node is on:
//! personal eventing (the `pep` module) and the service of its own (`pubsub`) each decide
//! who an asker is ([`Asker`]), the defaults, and what their nodes may be ([`Rules`]).

use jabberwock_protocol::forms::{DataForm, Field, FieldType, FormType};
use jabberwock_protocol::pubsub::{self, Affiliation, NODE_CONFIG, PUBLISH_OPTIONS};
use jabberwock_protocol::stanza::{Condition, StanzaError};
use serde::{Deserialize, Serialize};

/// §4.5: who may read a node's items and receive its notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessModel {
    /// Anyone.
    Open,
    /// Contacts with a subscription to the owner's presence (XEP-0163 §5's default).
    Presence,
    /// Contacts in one of the roster groups the node allows.
    Roster,
    /// The owner, and on a service of its own the members and publishers (§4.5).
    Whitelist,
    /// An owner approves every subscription; only subscribers (and the node's members
    /// and publishers) read. Explicit subscriptions only: a service of its own.
    Authorize,
}

impl AccessModel {
    const ALL: [AccessModel; 5] = [
        AccessModel::Open,
        AccessModel::Presence,
        AccessModel::Roster,
        AccessModel::Whitelist,
        AccessModel::Authorize,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccessModel::Open => "open",
            AccessModel::Presence => "presence",
            AccessModel::Roster => "roster",
            AccessModel::Whitelist => "whitelist",
            AccessModel::Authorize => "authorize",
        }
    }

    /// The models nodes under `rules` may have: `authorize` needs explicit subscriptions.
    fn offered(rules: Rules) -> impl Iterator<Item = AccessModel> {
        AccessModel::ALL
            .into_iter()
            .filter(move |m| rules.service || *m != AccessModel::Authorize)
    }
}

/// §16.4.3 `pubsub#send_last_published_item`: when a subscriber is sent the node's newest
/// item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendLastPublished {
    Never,
    /// When the subscription starts (for PEP: a presence subscription, XEP-0163 §6.1).
    OnSub,
    /// Then too, and whenever a subscriber's resource becomes available (XEP-0163 §4.3.2).
    OnSubAndPresence,
}

impl SendLastPublished {
    const ALL: [SendLastPublished; 3] = [
        SendLastPublished::Never,
        SendLastPublished::OnSub,
        SendLastPublished::OnSubAndPresence,
    ];

    fn as_str(self) -> &'static str {
        match self {
            SendLastPublished::Never => "never",
            SendLastPublished::OnSub => "on_sub",
            SendLastPublished::OnSubAndPresence => "on_sub_and_presence",
        }
    }
}

/// §16.4.3 `pubsub#publish_model`: who may publish (§4.1's table aside, which it widens).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishModel {
    /// Owners, publishers and publish-only entities.
    Publishers,
    /// Those too, and whoever is subscribed.
    Subscribers,
    /// Anyone but outcasts.
    Open,
}

impl PublishModel {
    const ALL: [PublishModel; 3] = [
        PublishModel::Publishers,
        PublishModel::Subscribers,
        PublishModel::Open,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PublishModel::Publishers => "publishers",
            PublishModel::Subscribers => "subscribers",
            PublishModel::Open => "open",
        }
    }
}

/// §16.4.3 `pubsub#itemreply`: who replies to an item go to (XEP-0033 `replyto` on the
/// notification).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemReply {
    Owner,
    Publisher,
}

impl ItemReply {
    const ALL: [ItemReply; 2] = [ItemReply::Owner, ItemReply::Publisher];

    fn as_str(self) -> &'static str {
        match self {
            ItemReply::Owner => "owner",
            ItemReply::Publisher => "publisher",
        }
    }
}

/// §16.4.3 `pubsub#notification_type`: the `type` of the messages that carry notifications
/// (`normal` ones may be kept for an offline subscriber, `headline` ones are not).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationType {
    #[default]
    Headline,
    Normal,
}

impl NotificationType {
    const ALL: [NotificationType; 2] = [NotificationType::Headline, NotificationType::Normal];

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationType::Headline => "headline",
            NotificationType::Normal => "normal",
        }
    }
}

/// What a service lets its nodes be: the ceiling of `pubsub#max_items`, and whether the
/// fields only a service of its own acts on (other publish models, subscription and
/// configuration notifications, item replies, a payload type, a description, the
/// notifications' message type, a payload size, whether to allow subscriptions, an
/// expiry of items, delivery to available subscribers only, purging an offline
/// publisher's items) are offered, with the ceiling of `pubsub#max_payload_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    pub ceiling: u64,
    pub service: bool,
    /// The service's largest payload, in bytes.
    pub max_payload: u64,
}

impl Rules {
    /// Personal eventing (XEP-0163): only the account publishes.
    pub fn pep(ceiling: u64) -> Rules {
        Rules {
            ceiling,
            service: false,
            max_payload: u64::MAX,
        }
    }
}

/// A node's configuration, kept by the store as JSON (a key added later is absent from older
/// rows and takes its default).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeConfig {
    /// `pubsub#title`, empty for none.
    pub title: String,
    pub access_model: AccessModel,
    /// `pubsub#roster_groups_allowed`: the owner's roster groups whose contacts may read a
    /// node with the roster access model.
    pub roster_groups_allowed: Vec<String>,
    pub persist_items: bool,
    /// `pubsub#max_items`; `None` is `max`, the server's ceiling.
    pub max_items: Option<u64>,
    pub send_last_published_item: SendLastPublished,
    pub deliver_notifications: bool,
    pub deliver_payloads: bool,
    pub notify_retract: bool,
    pub notify_delete: bool,
    /// `pubsub#description`, empty for none.
    pub description: String,
    pub publish_model: PublishModel,
    /// `pubsub#notify_config`: subscribers hear of a new configuration (§8.2.5.1).
    pub notify_config: bool,
    /// `pubsub#notify_sub`: owners hear of subscriptions and unsubscriptions.
    pub notify_sub: bool,
    /// `pubsub#itemreply`, `None` when not set.
    pub itemreply: Option<ItemReply>,
    /// `pubsub#type`: the namespace payloads must have (§7.1.3.5); empty for any.
    #[serde(rename = "type")]
    pub payload_type: String,
    /// `pubsub#notification_type`.
    pub notification_type: NotificationType,
    /// `pubsub#max_payload_size` in bytes; `None`: the service's limit.
    pub max_payload_size: Option<u64>,
    /// `pubsub#subscribe`: whether subscriptions are allowed (§6.1).
    pub subscribe: bool,
    /// `pubsub#item_expire` in seconds; `None` (`max`): items never expire.
    pub item_expire: Option<u64>,
    /// `pubsub#presence_based_delivery`: notifications go only to subscribers that are
    /// available (ejabberd's field; local subscribers only, `notify.rs`).
    pub presence_based_delivery: bool,
    /// `pubsub#purge_offline`: a local publisher's items go when its last available
    /// resource does (ejabberd's field; `offline.rs`).
    pub purge_offline: bool,
}

/// XEP-0163 §5 and Prosody's choices where the XEP leaves room: readable by presence
/// subscribers, persistent, one item, sent again to every resource that comes online.
impl Default for NodeConfig {
    fn default() -> NodeConfig {
        NodeConfig {
            title: String::new(),
            access_model: AccessModel::Presence,
            roster_groups_allowed: Vec::new(),
            persist_items: true,
            max_items: Some(1),
            send_last_published_item: SendLastPublished::OnSubAndPresence,
            deliver_notifications: true,
            deliver_payloads: true,
            notify_retract: true,
            notify_delete: true,
            description: String::new(),
            publish_model: PublishModel::Publishers,
            notify_config: false,
            notify_sub: false,
            itemreply: None,
            payload_type: String::new(),
            notification_type: NotificationType::Headline,
            max_payload_size: None,
            subscribe: true,
            item_expire: None,
            presence_based_delivery: false,
            purge_offline: false,
        }
    }
}

impl NodeConfig {
    /// A new node of a service of its own (as Prosody's pubsub component and ejabberd's
    /// mod_pubsub default): open to read, written by its publishers, ten items kept, no
    /// last item sent (there is no presence subscription to the service to send it on).
    pub fn service_default() -> NodeConfig {
        NodeConfig {
            access_model: AccessModel::Open,
            max_items: Some(10),
            send_last_published_item: SendLastPublished::Never,
            ..NodeConfig::default()
        }
    }
}

/// Why a submitted form or publish options can't be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A form of another FORM_TYPE.
    #[error("the form is not a {0} form")]
    FormType(&'static str),
    /// A field whose value this server does not take.
    #[error("{var}: {value:?} is not a value this node takes")]
    Value { var: String, value: String },
    /// `pubsub#node_type` other than `leaf`: collection nodes are not made here.
    #[error("collection nodes are not supported")]
    Collections,
}

impl ConfigError {
    /// The error for a form that can't be applied: `condition` with what was wrong, or
    /// §8.1.3.1's `feature-not-implemented` + `<unsupported feature='collections'/>`.
    pub fn to_stanza_error(&self, condition: Condition) -> StanzaError {
        match self {
            ConfigError::Collections => pubsub::unsupported("collections"),
            _ => StanzaError::with_text(condition, self.to_string()),
        }
    }
}

fn boolean(var: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(bad(var, value)),
    }
}

/// The one of a list-single field's `options` that `value` names.
fn one_of<T: Copy>(
    options: &[T],
    name: fn(T) -> &'static str,
    var: &str,
    value: &str,
) -> Result<T, ConfigError> {
    options
        .iter()
        .copied()
        .find(|o| name(*o) == value)
        .ok_or_else(|| bad(var, value))
}

fn bad(var: &str, value: &str) -> ConfigError {
    ConfigError::Value {
        var: var.to_owned(),
        value: value.to_owned(),
    }
}

/// A list-single field showing `value`, offering each of `options`.
fn list_single(
    var: &str,
    label: &str,
    value: &str,
    options: impl IntoIterator<Item = &'static str>,
) -> Field {
    let mut field = Field::new(var)
        .with_type(FieldType::ListSingle)
        .with_label(label)
        .with_value(value);
    for option in options {
        field = field.with_option(None, option);
    }
    field
}

fn bool_field(var: &str, label: &str, value: bool) -> Field {
    Field::new(var)
        .with_type(FieldType::Boolean)
        .with_label(label)
        .with_value(if value { "1" } else { "0" })
}

impl NodeConfig {
    /// Reads what the store kept; a row that does not parse (written by a newer server,
    /// say) reads as the defaults rather than making the node unusable.
    pub fn from_stored(json: &str) -> NodeConfig {
        serde_json::from_str(json).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unreadable node configuration: defaults used");
            NodeConfig::default()
        })
    }

    pub fn to_stored(&self) -> String {
        // A struct of strings, numbers and unit enums always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The items the node keeps, under the server's `ceiling`.
    pub fn max_items(&self, ceiling: u64) -> u64 {
        self.max_items.map_or(ceiling, |n| n.min(ceiling))
    }

    /// The largest payload the node takes, in bytes, under the service's `limit`.
    pub fn max_payload(&self, limit: usize) -> usize {
        self.max_payload_size.map_or(limit, |n| {
            usize::try_from(n).unwrap_or(usize::MAX).min(limit)
        })
    }

    /// §16.4.3 `pubsub#item_expire`: at `now` (Unix seconds), the node's items published
    /// before the time this returns are gone; `None` if they never expire. Items are stamped
    /// in whole seconds, so one lives its full expiry and less than a second more, never
    /// less.
    pub fn expired_before(&self, now: i64) -> Option<i64> {
        let seconds = i64::try_from(self.item_expire?).unwrap_or(i64::MAX);
        Some(now.saturating_sub(seconds))
    }

    /// How many items the store keeps (`None`: none, they are only announced).
    pub fn keep(&self, ceiling: u64) -> Option<u64> {
        self.persist_items.then(|| self.max_items(ceiling))
    }

    /// §8.2.1: the configuration form, the owner's `groups` offered for the roster model.
    pub fn to_form(&self, rules: Rules, groups: &[String]) -> DataForm {
        let ceiling = rules.ceiling;
        let mut access = Field::new("pubsub#access_model")
            .with_type(FieldType::ListSingle)
            .with_label("Who may subscribe and retrieve items")
            .with_value(self.access_model.as_str());
        for model in AccessModel::offered(rules) {
            access = access.with_option(None, model.as_str());
        }
        let mut allowed = Field::new("pubsub#roster_groups_allowed")
            .with_type(FieldType::ListMulti)
            .with_label("Roster groups allowed to subscribe");
        for group in groups {
            allowed = allowed.with_option(None, group.as_str());
        }
        for group in &self.roster_groups_allowed {
            allowed = allowed.with_value(group.as_str());
        }
        let send_last = list_single(
            "pubsub#send_last_published_item",
            "When to send the last published item",
            self.send_last_published_item.as_str(),
            SendLastPublished::ALL.map(SendLastPublished::as_str),
        );
        let max = match self.max_items {
            Some(n) => n.to_string(),
            None => "max".to_owned(),
        };
        let mut publish = Field::new("pubsub#publish_model")
            .with_type(FieldType::ListSingle)
            .with_label("Who may publish")
            .with_value(self.publish_model.as_str());
        for model in PublishModel::ALL {
            if rules.service || model == PublishModel::Publishers {
                publish = publish.with_option(None, model.as_str());
            }
        }
        let form = DataForm::new(FormType::Form)
            .with_form_type(NODE_CONFIG)
            .with_field(
                Field::new("pubsub#title")
                    .with_type(FieldType::TextSingle)
                    .with_label("A friendly name for the node")
                    .with_value(self.title.as_str()),
            )
            .with_field(access)
            .with_field(allowed)
            .with_field(publish)
            .with_field(bool_field(
                "pubsub#persist_items",
                "Persist items to storage",
                self.persist_items,
            ))
            .with_field(
                Field::new("pubsub#max_items")
                    .with_type(FieldType::TextSingle)
                    .with_label(format!(
                        "Max # of items to persist (at most {ceiling}, or max)"
                    ))
                    .with_value(max),
            )
            .with_field(send_last)
            .with_field(bool_field(
                "pubsub#deliver_notifications",
                "Deliver event notifications",
                self.deliver_notifications,
            ))
            .with_field(bool_field(
                "pubsub#deliver_payloads",
                "Deliver payloads with event notifications",
                self.deliver_payloads,
            ))
            .with_field(bool_field(
                "pubsub#notify_retract",
                "Notify subscribers when items are removed",
                self.notify_retract,
            ))
            .with_field(bool_field(
                "pubsub#notify_delete",
                "Notify subscribers when the node is deleted",
                self.notify_delete,
            ));
        if rules.service {
            self.service_fields(form, rules)
        } else {
            form
        }
    }

    /// The fields only a service of its own acts on.
    fn service_fields(&self, form: DataForm, rules: Rules) -> DataForm {
        let kind = list_single(
            "pubsub#notification_type",
            "The message type of event notifications",
            self.notification_type.as_str(),
            NotificationType::ALL.map(NotificationType::as_str),
        );
        let size = self
            .max_payload_size
            .unwrap_or(rules.max_payload)
            .to_string();
        let expire = self
            .item_expire
            .map_or_else(|| "max".to_owned(), |n| n.to_string());
        let mut reply = Field::new("pubsub#itemreply")
            .with_type(FieldType::ListSingle)
            .with_label("Whom replies to items go to");
        if let Some(to) = self.itemreply {
            reply = reply.with_value(to.as_str());
        }
        for to in ItemReply::ALL {
            reply = reply.with_option(None, to.as_str());
        }
        form.with_field(
            Field::new("pubsub#description")
                .with_type(FieldType::TextSingle)
                .with_label("A description of the node")
                .with_value(self.description.as_str()),
        )
        .with_field(
            Field::new("pubsub#type")
                .with_type(FieldType::TextSingle)
                .with_label("The namespace of the node's payloads (empty: any)")
                .with_value(self.payload_type.as_str()),
        )
        .with_field(bool_field(
            "pubsub#notify_config",
            "Notify subscribers when the configuration changes",
            self.notify_config,
        ))
        .with_field(bool_field(
            "pubsub#notify_sub",
            "Notify owners about new subscribers and unsubscribes",
            self.notify_sub,
        ))
        .with_field(reply)
        .with_field(kind)
        .with_field(
            Field::new("pubsub#max_payload_size")
                .with_type(FieldType::TextSingle)
                .with_label(format!(
                    "Max payload size in bytes (at most {})",
                    rules.max_payload
                ))
                .with_value(size),
        )
        .with_field(bool_field(
            "pubsub#subscribe",
            "Whether to allow subscriptions",
            self.subscribe,
        ))
        .with_field(
            Field::new("pubsub#item_expire")
                .with_type(FieldType::TextSingle)
                .with_label("Seconds after which items are purged (or max: never)")
                .with_value(expire),
        )
        .with_field(bool_field(
            "pubsub#presence_based_delivery",
            "Deliver notifications only to available users",
            self.presence_based_delivery,
        ))
        .with_field(bool_field(
            "pubsub#purge_offline",
            "Purge a publisher's items when it goes offline",
            self.purge_offline,
        ))
        .with_field(
            Field::new("pubsub#node_type")
                .with_type(FieldType::ListSingle)
                .with_label("Whether the node is a leaf or a collection")
                .with_value("leaf")
                .with_option(None, "leaf"),
        )
    }

    /// Applies the fields a submitted form names (§8.2.4), checked against `form_type`
    /// (a form without FORM_TYPE is taken as that type); fields this server does not know
    /// are left out, as Prosody does, so a client's wish it can't honour does not fail the
    /// rest. A value out of range fails the whole form and changes nothing.
    pub fn apply(
        &mut self,
        form: &DataForm,
        form_type: &'static str,
        rules: Rules,
    ) -> Result<(), ConfigError> {
        let ceiling = rules.ceiling;
        if form.form_type_field().is_some_and(|t| t != form_type) {
            return Err(ConfigError::FormType(form_type));
        }
        let mut next = self.clone();
        for field in &form.fields {
            let Some(var) = field.var.as_deref() else {
                continue;
            };
            let value = match field.value() {
                Some(value) => value,
                // An empty text-single may come without a <value/> (XEP-0004 §3.3); an
                // empty `pubsub#item_expire` is no expiry.
                None if var == "pubsub#item_expire" => "",
                None => continue,
            };
            match var {
                "pubsub#title" => next.title = value.to_owned(),
                "pubsub#access_model" => {
                    next.access_model = AccessModel::offered(rules)
                        .find(|m| m.as_str() == value)
                        .ok_or_else(|| bad(var, value))?
                }
                "pubsub#roster_groups_allowed" => next.roster_groups_allowed = field.values.clone(),
                "pubsub#publish_model" => {
                    next.publish_model = PublishModel::ALL
                        .into_iter()
                        .filter(|m| rules.service || *m == PublishModel::Publishers)
                        .find(|m| m.as_str() == value)
                        .ok_or_else(|| bad(var, value))?
                }
                "pubsub#persist_items" => next.persist_items = boolean(var, value)?,
                "pubsub#max_items" => {
                    next.max_items = match value {
                        "max" => None,
                        n => Some(
                            n.trim()
                                .parse()
                                .ok()
                                .filter(|n| (1..=ceiling).contains(n))
                                .ok_or_else(|| bad(var, value))?,
                        ),
                    }
                }
                "pubsub#send_last_published_item" => {
                    next.send_last_published_item = one_of(
                        &SendLastPublished::ALL,
                        SendLastPublished::as_str,
                        var,
                        value,
                    )?
                }
                "pubsub#deliver_notifications" => next.deliver_notifications = boolean(var, value)?,
                "pubsub#deliver_payloads" => next.deliver_payloads = boolean(var, value)?,
                "pubsub#notify_retract" => next.notify_retract = boolean(var, value)?,
                "pubsub#notify_delete" => next.notify_delete = boolean(var, value)?,
                // §8.1.3: a collection is not made here (leaf nodes only).
                "pubsub#node_type" if value != "leaf" => return Err(ConfigError::Collections),
                _ if !rules.service => {}
                "pubsub#description" => next.description = value.to_owned(),
                "pubsub#type" => next.payload_type = value.to_owned(),
                "pubsub#notify_config" => next.notify_config = boolean(var, value)?,
                "pubsub#notify_sub" => next.notify_sub = boolean(var, value)?,
                "pubsub#notification_type" => {
                    next.notification_type =
                        one_of(&NotificationType::ALL, NotificationType::as_str, var, value)?
                }
                "pubsub#max_payload_size" => {
                    let n: u64 = value
                        .trim()
                        .parse()
                        .ok()
                        .filter(|n| (1..=rules.max_payload).contains(n))
                        .ok_or_else(|| bad(var, value))?;
                    // The service's own limit is no limit of the node's.
                    next.max_payload_size = (n < rules.max_payload).then_some(n);
                }
                "pubsub#subscribe" => next.subscribe = boolean(var, value)?,
                "pubsub#presence_based_delivery" => {
                    next.presence_based_delivery = boolean(var, value)?
                }
                "pubsub#purge_offline" => next.purge_offline = boolean(var, value)?,
                "pubsub#itemreply" => {
                    next.itemreply = Some(one_of(&ItemReply::ALL, ItemReply::as_str, var, value)?)
                }
                // §16.4.3: seconds, as ejabberd takes it; `max` or empty for never.
                "pubsub#item_expire" => {
                    next.item_expire = match value.trim() {
                        "" | "max" => None,
                        n => Some(
                            n.parse()
                                .ok()
                                .filter(|n| *n > 0)
                                .ok_or_else(|| bad(var, value))?,
                        ),
                    }
                }
                _ => {}
            }
        }
        *self = next;
        Ok(())
    }

    /// §7.1.5: whether the node meets publish `options`, which are preconditions: every
    /// field they name already has that value.
    pub fn meets(&self, options: &DataForm, rules: Rules) -> Result<bool, ConfigError> {
        let mut wished = self.clone();
        wished.apply(options, PUBLISH_OPTIONS, rules)?;
        Ok(wished == *self)
    }

    /// §4.5: whether `asker` may read the node (its items, its notifications).
    pub fn may_read(&self, asker: &Asker) -> Result<(), Denied> {
        match asker.affiliation {
            Affiliation::Owner => return Ok(()),
            // §4.1: an outcast, and a publish-only entity, neither subscribe nor retrieve.
            Affiliation::Outcast | Affiliation::PublishOnly => return Err(Denied::Forbidden),
            Affiliation::Publisher | Affiliation::Member | Affiliation::None => {}
        }
        match self.access_model {
            AccessModel::Open => Ok(()),
            AccessModel::Presence if asker.subscribed => Ok(()),
            AccessModel::Presence => Err(Denied::PresenceSubscriptionRequired),
            AccessModel::Roster
                if asker
                    .groups
                    .iter()
                    .any(|g| self.roster_groups_allowed.contains(g)) =>
            {
                Ok(())
            }
            AccessModel::Roster => Err(Denied::NotInRosterGroup),
            // §4.5: the whitelist is the node's members (and publishers).
            AccessModel::Whitelist
                if matches!(
                    asker.affiliation,
                    Affiliation::Member | Affiliation::Publisher
                ) =>
            {
                Ok(())
            }
            AccessModel::Whitelist => Err(Denied::ClosedNode),
            AccessModel::Authorize
                if matches!(
                    asker.affiliation,
                    Affiliation::Member | Affiliation::Publisher
                ) =>
            {
                Ok(())
            }
            AccessModel::Authorize => match asker.subscription {
                Subscribed::Yes => Ok(()),
                Subscribed::Pending => Err(Denied::PendingSubscription),
                Subscribed::No => Err(Denied::NotSubscribed),
            },
        }
    }

    /// §6.1: whether `asker` may subscribe, and whether the subscription waits for an
    /// owner's approval (`authorize`, §6.1.2: answered `pending`). Under `authorize` anyone
    /// not blocked may ask, but asking twice while pending is an error (§6.1.3.7).
    pub fn may_subscribe(&self, asker: &Asker) -> Result<Approval, Denied> {
        if self.access_model != AccessModel::Authorize {
            return self.may_read(asker).map(|()| Approval::Granted);
        }
        match self.may_read(asker) {
            Ok(()) => Ok(Approval::Granted),
            Err(Denied::NotSubscribed) => Ok(Approval::Needed),
            Err(denied) => Err(denied),
        }
    }
}

/// Whether a new subscription is made at once or waits for an owner (§6.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approval {
    Granted,
    Needed,
}

/// The asker's own explicit subscription to the node, as the `authorize` model sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Subscribed {
    #[default]
    No,
    /// Asked for, not yet approved (§6.1.2).
    Pending,
    Yes,
}

/// Who asks, as access models see them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asker {
    /// The asker's affiliation with the node (§4.1): a personal eventing node's owner is
    /// the account, everyone else is `None` there.
    pub affiliation: Affiliation,
    /// Subscribed to the owner's presence (the owner's roster says `from` or `both`).
    pub subscribed: bool,
    /// The asker's groups in the owner's roster (none when not in it).
    pub groups: Vec<String>,
    /// Its subscription to the node, for `authorize` (read only there).
    pub subscription: Subscribed,
}

impl Default for Asker {
    fn default() -> Asker {
        Asker {
            affiliation: Affiliation::None,
            subscribed: false,
            groups: Vec::new(),
            subscription: Subscribed::No,
        }
    }
}

impl Asker {
    /// The node's owner.
    pub fn owner() -> Asker {
        Asker {
            affiliation: Affiliation::Owner,
            ..Asker::default()
        }
    }
}

/// Why an asker may not read a node (§6.5.9 error cases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// An outcast (§6.1.3.8) or publish-only entity.
    Forbidden,
    PresenceSubscriptionRequired,
    NotInRosterGroup,
    ClosedNode,
    /// `authorize`: the asker's subscription is not approved yet.
    PendingSubscription,
    /// `authorize`: the asker has no subscription.
    NotSubscribed,
}

impl Denied {
    pub fn to_stanza_error(self) -> StanzaError {
        match self {
            // §6.5.9.4, §6.5.9.5: not-authorized, with what would have authorized it.
            Denied::PresenceSubscriptionRequired => {
                pubsub::error(Condition::NotAuthorized, "presence-subscription-required")
            }
            Denied::NotInRosterGroup => {
                pubsub::error(Condition::NotAuthorized, "not-in-roster-group")
            }
            // §6.5.9.6: a whitelist the asker is not on.
            Denied::ClosedNode => pubsub::error(Condition::NotAllowed, "closed-node"),
            // §6.1.3.7 (and items of a node not yet readable): approval pending.
            Denied::PendingSubscription => {
                pubsub::error(Condition::NotAuthorized, "pending-subscription")
            }
            // §6.5.9.3: only subscribers retrieve items.
            Denied::NotSubscribed => pubsub::error(Condition::NotAuthorized, "not-subscribed"),
            // §6.1.3.8: blocked.
            Denied::Forbidden => StanzaError::new(Condition::Forbidden),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A submitted form of `form_type` with one value for each field.
    pub(in crate::modules::pubsub) fn submit(form_type: &str, fields: &[(&str, &str)]) -> DataForm {
        let mut form = DataForm::new(FormType::Submit).with_form_type(form_type);
        for (var, value) in fields {
            form = form.with_field(Field::new(*var).with_value(*value));
        }
        form
    }

    #[test]
    fn the_form_round_trips_through_apply() {
        let mut config = NodeConfig::default();
        config
            .apply(
                &submit(
                    NODE_CONFIG,
                    &[
                        ("pubsub#access_model", "whitelist"),
                        ("pubsub#max_items", "max"),
                        ("pubsub#send_last_published_item", "never"),
                        ("pubsub#persist_items", "true"),
                        ("pubsub#notify_retract", "0"),
                        ("pubsub#title", "Bookmarks"),
                        ("pubsub#unknown_to_us", "x"),
                    ],
                ),
                NODE_CONFIG,
                Rules::pep(256),
            )
            .unwrap();
        assert_eq!(config.access_model, AccessModel::Whitelist);
        assert_eq!(config.max_items, None);
        assert_eq!(config.max_items(256), 256);
        assert_eq!(config.send_last_published_item, SendLastPublished::Never);
        assert!(!config.notify_retract);
        // What the form shows, submitted back, changes nothing.
        let mut form = config.to_form(Rules::pep(256), &[]);
        form.form_type = FormType::Submit;
        let mut again = config.clone();
        again.apply(&form, NODE_CONFIG, Rules::pep(256)).unwrap();
        assert_eq!(again, config);
        let stored = NodeConfig::from_stored(&config.to_stored());
        assert_eq!(stored, config);
    }

    #[test]
    fn bad_values_change_nothing() {
        let mut config = NodeConfig::default();
        for (var, value) in [
            ("pubsub#access_model", "authorize"),
            ("pubsub#max_items", "0"),
            ("pubsub#max_items", "257"),
            ("pubsub#persist_items", "maybe"),
            ("pubsub#publish_model", "open"),
        ] {
            let form = submit(NODE_CONFIG, &[("pubsub#title", "t"), (var, value)]);
            let err = config
                .apply(&form, NODE_CONFIG, Rules::pep(256))
                .unwrap_err();
            assert!(matches!(err, ConfigError::Value { .. }), "{var}: {err:?}");
            assert_eq!(config, NodeConfig::default());
        }
        let other = submit("urn:example:other", &[]);
        assert_eq!(
            config.apply(&other, NODE_CONFIG, Rules::pep(256)),
            Err(ConfigError::FormType(NODE_CONFIG))
        );
    }

    #[test]
    fn publish_options_are_preconditions() {
        let config = NodeConfig {
            access_model: AccessModel::Open,
            max_items: None,
            ..NodeConfig::default()
        };
        let same = submit(
            PUBLISH_OPTIONS,
            &[
                ("pubsub#access_model", "open"),
                ("pubsub#persist_items", "1"),
                ("pubsub#max_items", "max"),
            ],
        );
        assert_eq!(config.meets(&same, Rules::pep(256)), Ok(true));
        let other = submit(PUBLISH_OPTIONS, &[("pubsub#access_model", "whitelist")]);
        assert_eq!(config.meets(&other, Rules::pep(256)), Ok(false));
        let numbered = submit(PUBLISH_OPTIONS, &[("pubsub#max_items", "256")]);
        assert_eq!(config.meets(&numbered, Rules::pep(256)), Ok(false));
    }

    #[test]
    fn access_models_decide_who_reads() {
        let stranger = Asker::default();
        let subscriber = Asker {
            subscribed: true,
            groups: vec!["Friends".into()],
            ..Asker::default()
        };
        let owner = Asker::owner();
        let node = |access_model| NodeConfig {
            access_model,
            roster_groups_allowed: vec!["Friends".into()],
            ..NodeConfig::default()
        };
        assert_eq!(node(AccessModel::Open).may_read(&stranger), Ok(()));
        assert_eq!(
            node(AccessModel::Presence).may_read(&stranger),
            Err(Denied::PresenceSubscriptionRequired)
        );
        assert_eq!(node(AccessModel::Presence).may_read(&subscriber), Ok(()));
        assert_eq!(node(AccessModel::Roster).may_read(&subscriber), Ok(()));
        assert_eq!(
            node(AccessModel::Roster).may_read(&stranger),
            Err(Denied::NotInRosterGroup)
        );
        assert_eq!(
            node(AccessModel::Whitelist).may_read(&subscriber),
            Err(Denied::ClosedNode)
        );
        assert_eq!(node(AccessModel::Whitelist).may_read(&owner), Ok(()));
        let member = Asker {
            affiliation: Affiliation::Member,
            ..Asker::default()
        };
        assert_eq!(node(AccessModel::Whitelist).may_read(&member), Ok(()));
        let outcast = Asker {
            affiliation: Affiliation::Outcast,
            ..Asker::default()
        };
        assert_eq!(
            node(AccessModel::Open).may_read(&outcast),
            Err(Denied::Forbidden)
        );
    }

    #[test]
    fn authorize_waits_for_the_owner() {
        let node = NodeConfig {
            access_model: AccessModel::Authorize,
            ..NodeConfig::default()
        };
        let with = |subscription| Asker {
            subscription,
            ..Asker::default()
        };
        assert_eq!(
            node.may_read(&with(Subscribed::No)),
            Err(Denied::NotSubscribed)
        );
        assert_eq!(
            node.may_read(&with(Subscribed::Pending)),
            Err(Denied::PendingSubscription)
        );
        assert_eq!(node.may_read(&with(Subscribed::Yes)), Ok(()));
        assert_eq!(
            node.may_subscribe(&with(Subscribed::No)),
            Ok(Approval::Needed)
        );
        assert_eq!(
            node.may_subscribe(&with(Subscribed::Pending)),
            Err(Denied::PendingSubscription)
        );
        let member = Asker {
            affiliation: Affiliation::Member,
            ..Asker::default()
        };
        assert_eq!(node.may_subscribe(&member), Ok(Approval::Granted));
        let outcast = Asker {
            affiliation: Affiliation::Outcast,
            ..Asker::default()
        };
        assert_eq!(node.may_subscribe(&outcast), Err(Denied::Forbidden));
        // Personal eventing has no explicit subscriptions to approve.
        let form = submit(NODE_CONFIG, &[("pubsub#access_model", "authorize")]);
        let mut pep = NodeConfig::default();
        assert!(pep.apply(&form, NODE_CONFIG, Rules::pep(256)).is_err());
    }

    #[test]
    fn a_service_offers_more_than_personal_eventing() {
        let service = Rules {
            ceiling: 100,
            service: true,
            max_payload: 1000,
        };
        let form = submit(
            NODE_CONFIG,
            &[
                ("pubsub#publish_model", "open"),
                ("pubsub#notify_sub", "1"),
                ("pubsub#type", "urn:example:news"),
                ("pubsub#itemreply", "publisher"),
                ("pubsub#notification_type", "normal"),
                ("pubsub#max_payload_size", "500"),
                ("pubsub#subscribe", "0"),
            ],
        );
        let mut pep = NodeConfig::default();
        assert!(matches!(
            pep.apply(&form, NODE_CONFIG, Rules::pep(100)),
            Err(ConfigError::Value { .. })
        ));
        let mut config = NodeConfig::service_default();
        config.apply(&form, NODE_CONFIG, service).unwrap();
        assert_eq!(config.publish_model, PublishModel::Open);
        assert!(config.notify_sub);
        assert_eq!(config.payload_type, "urn:example:news");
        assert_eq!(config.itemreply, Some(ItemReply::Publisher));
        assert_eq!(config.notification_type, NotificationType::Normal);
        assert_eq!(config.max_payload(1000), 500);
        assert!(!config.subscribe);
        // Over the service's limit is refused; the limit itself is the service's.
        let mut wider = config.clone();
        let too_big = submit(NODE_CONFIG, &[("pubsub#max_payload_size", "1001")]);
        assert!(wider.apply(&too_big, NODE_CONFIG, service).is_err());
        let whole = submit(NODE_CONFIG, &[("pubsub#max_payload_size", "1000")]);
        wider.apply(&whole, NODE_CONFIG, service).unwrap();
        assert_eq!(wider.max_payload_size, None);
        let mut shown = config.to_form(service, &[]);
        shown.form_type = FormType::Submit;
        let mut again = config.clone();
        again.apply(&shown, NODE_CONFIG, service).unwrap();
        assert_eq!(again, config);
        let collection = submit(NODE_CONFIG, &[("pubsub#node_type", "collection")]);
        assert_eq!(
            config.apply(&collection, NODE_CONFIG, service),
            Err(ConfigError::Collections)
        );
    }

    #[test]
    fn item_expire_is_seconds_or_never() {
        let service = Rules {
            ceiling: 100,
            service: true,
            max_payload: 1000,
        };
        let mut config = NodeConfig::service_default();
        assert_eq!(config.item_expire, None);
        assert_eq!(config.expired_before(1_000), None);
        let form = submit(NODE_CONFIG, &[("pubsub#item_expire", "60")]);
        config.apply(&form, NODE_CONFIG, service).unwrap();
        assert_eq!(config.item_expire, Some(60));
        // Gone once older than 60 seconds: published at 940 it is 60 at 1000, kept.
        assert_eq!(config.expired_before(1_000), Some(940));
        // The form shows it, and what it shows changes nothing when sent back.
        let mut shown = config.to_form(service, &[]);
        assert_eq!(shown.value("pubsub#item_expire"), Some("60"));
        shown.form_type = FormType::Submit;
        let mut again = config.clone();
        again.apply(&shown, NODE_CONFIG, service).unwrap();
        assert_eq!(again, config);
        // Kept in the stored JSON; a row from before the field reads as no expiry.
        assert_eq!(NodeConfig::from_stored(&config.to_stored()), config);
        let old = r#"{"title":"t","access_model":"open","max_items":10}"#;
        assert_eq!(NodeConfig::from_stored(old).item_expire, None);
        // Anything but a positive number of seconds, `max` or empty fails the form.
        for bad in ["0", "-5", "1.5", "soon", "99999999999999999999"] {
            let form = submit(
                NODE_CONFIG,
                &[("pubsub#title", "changed"), ("pubsub#item_expire", bad)],
            );
            let mut tried = config.clone();
            assert!(
                matches!(
                    tried.apply(&form, NODE_CONFIG, service),
                    Err(ConfigError::Value { .. })
                ),
                "{bad}"
            );
            assert_eq!(tried, config, "{bad}");
        }
        for never in ["max", ""] {
            let mut cleared = config.clone();
            let form = submit(NODE_CONFIG, &[("pubsub#item_expire", never)]);
            cleared.apply(&form, NODE_CONFIG, service).unwrap();
            assert_eq!(cleared.item_expire, None, "{never:?}");
            assert_eq!(
                cleared.to_form(service, &[]).value("pubsub#item_expire"),
                Some("max")
            );
        }
        // A text-single sent without any <value/> is empty too.
        let mut cleared = config.clone();
        let valueless = DataForm::new(FormType::Submit)
            .with_form_type(NODE_CONFIG)
            .with_field(Field::new("pubsub#item_expire"));
        cleared.apply(&valueless, NODE_CONFIG, service).unwrap();
        assert_eq!(cleared.item_expire, None);
        // Personal eventing does not offer it: not in its form, ignored when sent.
        let mut pep = NodeConfig::default();
        assert!(pep
            .to_form(Rules::pep(100), &[])
            .field("pubsub#item_expire")
            .is_none());
        pep.apply(&form, NODE_CONFIG, Rules::pep(100)).unwrap();
        assert_eq!(pep.item_expire, None);
        // §7.1.5: as a publish option it is a precondition like the others.
        let same = submit(PUBLISH_OPTIONS, &[("pubsub#item_expire", "60")]);
        assert_eq!(config.meets(&same, service), Ok(true));
        let other = submit(PUBLISH_OPTIONS, &[("pubsub#item_expire", "max")]);
        assert_eq!(config.meets(&other, service), Ok(false));
        let bad = submit(PUBLISH_OPTIONS, &[("pubsub#item_expire", "never")]);
        assert!(config.meets(&bad, service).is_err());
    }

    #[test]
    fn presence_fields_are_the_services() {
        let service = Rules {
            ceiling: 100,
            service: true,
            max_payload: 1000,
        };
        // ejabberd's defaults: off.
        let mut config = NodeConfig::service_default();
        assert!(!config.presence_based_delivery && !config.purge_offline);
        let shown = config.to_form(service, &[]);
        assert_eq!(shown.value("pubsub#presence_based_delivery"), Some("0"));
        assert_eq!(shown.value("pubsub#purge_offline"), Some("0"));
        let form = submit(
            NODE_CONFIG,
            &[
                ("pubsub#presence_based_delivery", "true"),
                ("pubsub#purge_offline", "1"),
            ],
        );
        config.apply(&form, NODE_CONFIG, service).unwrap();
        assert!(config.presence_based_delivery && config.purge_offline);
        // What the form shows, submitted back, changes nothing; the JSON keeps both.
        let mut shown = config.to_form(service, &[]);
        assert_eq!(shown.value("pubsub#purge_offline"), Some("1"));
        shown.form_type = FormType::Submit;
        let mut again = config.clone();
        again.apply(&shown, NODE_CONFIG, service).unwrap();
        assert_eq!(again, config);
        assert_eq!(NodeConfig::from_stored(&config.to_stored()), config);
        // A row from before the fields reads as both off.
        let old = r#"{"title":"t","access_model":"open","max_items":10}"#;
        let old = NodeConfig::from_stored(old);
        assert!(!old.presence_based_delivery && !old.purge_offline);
        // A value that is no boolean fails the whole form.
        for var in ["pubsub#presence_based_delivery", "pubsub#purge_offline"] {
            let form = submit(NODE_CONFIG, &[("pubsub#title", "changed"), (var, "often")]);
            let mut tried = config.clone();
            assert!(matches!(
                tried.apply(&form, NODE_CONFIG, service),
                Err(ConfigError::Value { .. })
            ));
            assert_eq!(tried, config, "{var}");
        }
        // Personal eventing does not offer them: not in its form, ignored when sent.
        let mut pep = NodeConfig::default();
        let pep_form = pep.to_form(Rules::pep(100), &[]);
        assert!(pep_form.field("pubsub#presence_based_delivery").is_none());
        assert!(pep_form.field("pubsub#purge_offline").is_none());
        pep.apply(&form, NODE_CONFIG, Rules::pep(100)).unwrap();
        assert_eq!(pep, NodeConfig::default());
        // §7.1.5: publish options are preconditions.
        let same = submit(
            PUBLISH_OPTIONS,
            &[
                ("pubsub#presence_based_delivery", "1"),
                ("pubsub#purge_offline", "true"),
            ],
        );
        assert_eq!(config.meets(&same, service), Ok(true));
        let other = submit(PUBLISH_OPTIONS, &[("pubsub#purge_offline", "0")]);
        assert_eq!(config.meets(&other, service), Ok(false));
        let bad = submit(PUBLISH_OPTIONS, &[("pubsub#presence_based_delivery", "x")]);
        assert!(config.meets(&bad, service).is_err());
    }
}
