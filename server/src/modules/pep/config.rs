//! A node's configuration (XEP-0060 §16.4.3 `pubsub#node_config`): what it holds, the
//! form it is read and changed through (§8.2), publish options (§7.1.5, XEP-0223) and who
//! may read the node (§4.5 access models). Nothing here knows whose service a node is on:
//! the personal eventing service decides who an asker is ([`Asker`]) and the defaults.

use jabberwock_protocol::forms::{DataForm, Field, FieldType, FormType};
use jabberwock_protocol::pubsub::{self, NODE_CONFIG, PUBLISH_OPTIONS};
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
    /// Only the owner (no affiliations can be granted here yet).
    Whitelist,
}

impl AccessModel {
    const ALL: [AccessModel; 4] = [
        AccessModel::Open,
        AccessModel::Presence,
        AccessModel::Roster,
        AccessModel::Whitelist,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccessModel::Open => "open",
            AccessModel::Presence => "presence",
            AccessModel::Roster => "roster",
            AccessModel::Whitelist => "whitelist",
        }
    }

    fn from_name(name: &str) -> Option<AccessModel> {
        AccessModel::ALL.into_iter().find(|m| m.as_str() == name)
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
}

fn boolean(var: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(bad(var, value)),
    }
}

fn bad(var: &str, value: &str) -> ConfigError {
    ConfigError::Value {
        var: var.to_owned(),
        value: value.to_owned(),
    }
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

    /// How many items the store keeps (`None`: none, they are only announced).
    pub fn keep(&self, ceiling: u64) -> Option<u64> {
        self.persist_items.then(|| self.max_items(ceiling))
    }

    /// §8.2.1: the configuration form, the owner's `groups` offered for the roster model.
    pub fn to_form(&self, ceiling: u64, groups: &[String]) -> DataForm {
        let mut access = Field::new("pubsub#access_model")
            .with_type(FieldType::ListSingle)
            .with_label("Who may subscribe and retrieve items")
            .with_value(self.access_model.as_str());
        for model in AccessModel::ALL {
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
        let mut send_last = Field::new("pubsub#send_last_published_item")
            .with_type(FieldType::ListSingle)
            .with_label("When to send the last published item")
            .with_value(self.send_last_published_item.as_str());
        for when in SendLastPublished::ALL {
            send_last = send_last.with_option(None, when.as_str());
        }
        let max = match self.max_items {
            Some(n) => n.to_string(),
            None => "max".to_owned(),
        };
        DataForm::new(FormType::Form)
            .with_form_type(NODE_CONFIG)
            .with_field(
                Field::new("pubsub#title")
                    .with_type(FieldType::TextSingle)
                    .with_label("A friendly name for the node")
                    .with_value(self.title.as_str()),
            )
            .with_field(access)
            .with_field(allowed)
            .with_field(
                Field::new("pubsub#publish_model")
                    .with_type(FieldType::ListSingle)
                    .with_label("Who may publish")
                    .with_value("publishers")
                    .with_option(None, "publishers"),
            )
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
            ))
    }

    /// Applies the fields a submitted form names (§8.2.4), checked against `form_type`
    /// (a form without FORM_TYPE is taken as that type); fields this server does not know
    /// are left out, as Prosody does, so a client's wish it can't honour does not fail the
    /// rest. A value out of range fails the whole form and changes nothing.
    pub fn apply(
        &mut self,
        form: &DataForm,
        form_type: &'static str,
        ceiling: u64,
    ) -> Result<(), ConfigError> {
        if form.form_type_field().is_some_and(|t| t != form_type) {
            return Err(ConfigError::FormType(form_type));
        }
        let mut next = self.clone();
        for field in &form.fields {
            let (Some(var), Some(value)) = (field.var.as_deref(), field.value()) else {
                continue;
            };
            match var {
                "pubsub#title" => next.title = value.to_owned(),
                "pubsub#access_model" => {
                    next.access_model =
                        AccessModel::from_name(value).ok_or_else(|| bad(var, value))?
                }
                "pubsub#roster_groups_allowed" => next.roster_groups_allowed = field.values.clone(),
                "pubsub#publish_model" if value != "publishers" => return Err(bad(var, value)),
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
                    next.send_last_published_item = SendLastPublished::ALL
                        .into_iter()
                        .find(|w| w.as_str() == value)
                        .ok_or_else(|| bad(var, value))?
                }
                "pubsub#deliver_notifications" => next.deliver_notifications = boolean(var, value)?,
                "pubsub#deliver_payloads" => next.deliver_payloads = boolean(var, value)?,
                "pubsub#notify_retract" => next.notify_retract = boolean(var, value)?,
                "pubsub#notify_delete" => next.notify_delete = boolean(var, value)?,
                _ => {}
            }
        }
        *self = next;
        Ok(())
    }

    /// §7.1.5: whether the node meets publish `options`, which are preconditions: every
    /// field they name already has that value.
    pub fn meets(&self, options: &DataForm, ceiling: u64) -> Result<bool, ConfigError> {
        let mut wished = self.clone();
        wished.apply(options, PUBLISH_OPTIONS, ceiling)?;
        Ok(wished == *self)
    }

    /// §4.5: whether `asker` may read the node (its items, its notifications).
    pub fn may_read(&self, asker: &Asker) -> Result<(), Denied> {
        if asker.owner {
            return Ok(());
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
            AccessModel::Whitelist => Err(Denied::ClosedNode),
        }
    }
}

/// Who asks, as access models see them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Asker {
    /// The node's owner.
    pub owner: bool,
    /// Subscribed to the owner's presence (the owner's roster says `from` or `both`).
    pub subscribed: bool,
    /// The asker's groups in the owner's roster (none when not in it).
    pub groups: Vec<String>,
}

/// Why an asker may not read a node (§6.5.9 error cases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    PresenceSubscriptionRequired,
    NotInRosterGroup,
    ClosedNode,
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit(form_type: &str, fields: &[(&str, &str)]) -> DataForm {
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
                256,
            )
            .unwrap();
        assert_eq!(config.access_model, AccessModel::Whitelist);
        assert_eq!(config.max_items, None);
        assert_eq!(config.max_items(256), 256);
        assert_eq!(config.send_last_published_item, SendLastPublished::Never);
        assert!(!config.notify_retract);
        // What the form shows, submitted back, changes nothing.
        let mut form = config.to_form(256, &[]);
        form.form_type = FormType::Submit;
        let mut again = config.clone();
        again.apply(&form, NODE_CONFIG, 256).unwrap();
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
            let err = config.apply(&form, NODE_CONFIG, 256).unwrap_err();
            assert!(matches!(err, ConfigError::Value { .. }), "{var}: {err:?}");
            assert_eq!(config, NodeConfig::default());
        }
        let other = submit("urn:example:other", &[]);
        assert_eq!(
            config.apply(&other, NODE_CONFIG, 256),
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
        assert_eq!(config.meets(&same, 256), Ok(true));
        let other = submit(PUBLISH_OPTIONS, &[("pubsub#access_model", "whitelist")]);
        assert_eq!(config.meets(&other, 256), Ok(false));
        let numbered = submit(PUBLISH_OPTIONS, &[("pubsub#max_items", "256")]);
        assert_eq!(config.meets(&numbered, 256), Ok(false));
    }

    #[test]
    fn access_models_decide_who_reads() {
        let stranger = Asker::default();
        let subscriber = Asker {
            subscribed: true,
            groups: vec!["Friends".into()],
            ..Asker::default()
        };
        let owner = Asker {
            owner: true,
            ..Asker::default()
        };
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
    }
}
