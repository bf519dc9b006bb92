//! XEP-0060: Publish-Subscribe (version 1.26) on the wire, what a personal eventing service
//! (XEP-0163) and a service of its own answer: requests inside `<pubsub/>` and
//! `<pubsub xmlns='…#owner'/>`, the results, the `pubsub#errors` conditions, and event
//! notifications.
//!
//! What a node's configuration means is the server's; here are only the elements.

use crate::forms::{DataForm, FormError};
use crate::ns;
use crate::rsm::{RsmError, SetQuery, SetResult};
use crate::stanza::{Condition, StanzaError};
use crate::xml::Element;

/// XEP-0060 §16.4.3: the FORM_TYPE of a node's configuration form.
pub const NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";
/// XEP-0060 §16.4.5: the FORM_TYPE of publish options (§7.1.5).
pub const PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";
/// XEP-0060 §16.4.4: the FORM_TYPE of a node's metadata in disco#info (§5.4).
pub const META_DATA: &str = "http://jabber.org/protocol/pubsub#meta-data";

/// XEP-0060 §16.4.2: the FORM_TYPE of subscription options (§6.3).
pub const SUBSCRIBE_OPTIONS: &str = "http://jabber.org/protocol/pubsub#subscribe_options";

/// §4.1: what an entity is to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)] // The XEP's names.
pub enum Affiliation {
    Owner,
    Publisher,
    PublishOnly,
    Member,
    None,
    Outcast,
}

impl Affiliation {
    /// Every affiliation, from the most rights to the least.
    pub const ALL: [Affiliation; 6] = [
        Affiliation::Owner,
        Affiliation::Publisher,
        Affiliation::PublishOnly,
        Affiliation::Member,
        Affiliation::None,
        Affiliation::Outcast,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Affiliation::Owner => "owner",
            Affiliation::Publisher => "publisher",
            Affiliation::PublishOnly => "publish-only",
            Affiliation::Member => "member",
            Affiliation::None => "none",
            Affiliation::Outcast => "outcast",
        }
    }

    /// Reads a name on the wire.
    pub fn from_name(name: &str) -> Option<Affiliation> {
        Affiliation::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// §4.2: the state of a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // The XEP's names.
pub enum SubscriptionState {
    None,
    Pending,
    Unconfigured,
    Subscribed,
}

impl SubscriptionState {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionState::None => "none",
            SubscriptionState::Pending => "pending",
            SubscriptionState::Unconfigured => "unconfigured",
            SubscriptionState::Subscribed => "subscribed",
        }
    }

    /// Reads a name on the wire.
    pub fn from_name(name: &str) -> Option<SubscriptionState> {
        [
            SubscriptionState::None,
            SubscriptionState::Pending,
            SubscriptionState::Unconfigured,
            SubscriptionState::Subscribed,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// One `<subscription/>` of a result or a notification (§5.6, §6.1.2, §8.8.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionEntry {
    /// Left out inside an element that names the node already (§8.8.1).
    pub node: Option<String>,
    /// The subscribed JID, bare or full.
    pub jid: String,
    /// The subscription's id (§6.1.6).
    pub subid: Option<String>,
    /// `subscription='…'`.
    pub state: SubscriptionState,
}

impl SubscriptionEntry {
    fn to_element(&self, ns: &str) -> Element {
        let mut el = Element::new("subscription", ns);
        if let Some(node) = &self.node {
            el.set_attr("node", node.as_str());
        }
        el.set_attr("jid", self.jid.as_str());
        if let Some(subid) = &self.subid {
            el.set_attr("subid", subid.as_str());
        }
        el.with_attr("subscription", self.state.as_str())
    }
}

/// An item as a publish carries it (§7.1): its id, if the publisher chose one, and what it
/// holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedItem {
    /// The `id` the publisher gave (§7.1.1), if any.
    pub id: Option<String>,
    /// The item's child elements: one payload, as a rule.
    pub payloads: Vec<Element>,
}

/// One request in `<pubsub/>` (an entity's use cases, §6 and §7) or in
/// `<pubsub xmlns='…#owner'/>` (the owner's, §8).
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Fields are the request's attributes and children of the same name.
pub enum Request {
    /// §7.1, with §7.1.5 publish options.
    Publish {
        node: String,
        item: Option<PublishedItem>,
        options: Option<DataForm>,
    },
    /// §7.2; `notify` asks for retraction notifications (§7.2.2.1).
    Retract {
        node: String,
        notify: bool,
        ids: Vec<String>,
    },
    /// §6.5: all items, the `max_items` most recent (§6.5.7) or some by id (§6.5.8), a
    /// page of them with XEP-0059 (§6.5.4).
    Items {
        node: String,
        max_items: Option<u64>,
        ids: Vec<String>,
        rsm: Option<SetQuery>,
    },
    /// §6.1, with §6.3.7 options.
    Subscribe {
        node: String,
        jid: String,
        options: Option<DataForm>,
    },
    /// §6.2.
    Unsubscribe {
        node: String,
        jid: String,
        subid: Option<String>,
    },
    /// §6.3: a subscription's options (`form: None`) or a submitted form.
    Options {
        node: String,
        jid: String,
        subid: Option<String>,
        form: Option<DataForm>,
    },
    /// §5.6: the asker's own subscriptions, of one node or all.
    Subscriptions { node: Option<String> },
    /// §5.7: the asker's own affiliations, of one node or all.
    Affiliations { node: Option<String> },
    /// §8.8: a node's subscriptions (none: the list) or changes to them.
    NodeSubscriptions {
        node: String,
        changes: Vec<(String, SubscriptionState)>,
    },
    /// §8.9: a node's affiliations (none: the list) or changes to them.
    NodeAffiliations {
        node: String,
        changes: Vec<(String, Affiliation)>,
    },
    /// §8.1: a node by name (`None`: an instant node, §8.1.2), with a configuration form
    /// (§8.1.3).
    Create {
        node: Option<String>,
        config: Option<DataForm>,
    },
    /// §8.2: the configuration form (`form: None`) or a submitted one.
    Configure {
        node: String,
        form: Option<DataForm>,
    },
    /// §8.3: the default configuration.
    Default,
    /// §8.5.
    Purge { node: String },
    /// §8.4, with §8.4.1's optional redirect URI.
    Delete {
        node: String,
        redirect: Option<String>,
    },
    /// A request this server does not answer: the §10 feature it belongs to (`subscribe`,
    /// `retrieve-subscriptions`, …), for `<unsupported feature='…'/>`.
    Unsupported(&'static str),
}

/// Why a `<pubsub/>` request can't be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No request element, or one that is no request of its namespace.
    #[error("no pubsub request")]
    Empty,
    /// A request that names no node where it needs one (§7.1.3.3 and the like).
    #[error("the request names no node")]
    NodeIdRequired,
    /// A retraction without an item id (§7.2.3.3).
    #[error("the retraction names no item")]
    ItemRequired,
    /// `max_items` is not a number (§6.5.7).
    #[error("max_items is not a number")]
    BadMaxItems,
    /// A subscription request that names no JID (§6.1.3.1, §6.2.3.3).
    #[error("the request names no JID")]
    JidRequired,
    /// An owner's change naming no JID, or an affiliation or subscription state that is
    /// none of §4.1's and §4.2's.
    #[error("a change names no JID or an unknown state")]
    BadChange,
    /// A `<set/>` that can't be read (XEP-0059).
    #[error("bad result set: {0}")]
    Rsm(#[from] RsmError),
    /// A data form that can't be read.
    #[error("bad data form: {0}")]
    Form(#[from] FormError),
}

impl RequestError {
    /// The error XEP-0060 gives for it.
    pub fn to_stanza_error(&self) -> StanzaError {
        match self {
            RequestError::NodeIdRequired => error(Condition::BadRequest, "nodeid-required"),
            RequestError::ItemRequired => error(Condition::BadRequest, "item-required"),
            RequestError::JidRequired => error(Condition::BadRequest, "jid-required"),
            RequestError::Empty
            | RequestError::BadMaxItems
            | RequestError::BadChange
            | RequestError::Rsm(_)
            | RequestError::Form(_) => {
                StanzaError::with_text(Condition::BadRequest, self.to_string())
            }
        }
    }
}

/// A stanza error with a `pubsub#errors` condition (§7, §8 error cases), e.g.
/// `conflict` + `<precondition-not-met/>`.
pub fn error(condition: Condition, pubsub_condition: &str) -> StanzaError {
    StanzaError::new(condition).with_app(Element::new(pubsub_condition, ns::PUBSUB_ERRORS))
}

/// `feature-not-implemented` + `<unsupported feature='…'/>` (§7.1.3.6 and the like).
pub fn unsupported(feature: &str) -> StanzaError {
    StanzaError::new(Condition::FeatureNotImplemented)
        .with_app(Element::new("unsupported", ns::PUBSUB_ERRORS).with_attr("feature", feature))
}

/// The `node` attribute, which must be there and not be empty.
fn node_of(el: &Element) -> Result<String, RequestError> {
    match el.attr("node") {
        Some(node) if !node.is_empty() => Ok(node.to_owned()),
        _ => Err(RequestError::NodeIdRequired),
    }
}

/// The data form inside a wrapper element (`<publish-options/>`, `<configure/>`), if any.
fn form_in(wrapper: Option<&Element>) -> Result<Option<DataForm>, RequestError> {
    let Some(x) = wrapper.and_then(|w| w.get_child("x", ns::DATA_FORMS)) else {
        return Ok(None);
    };
    Ok(Some(DataForm::parse(x)?))
}

/// `true`/`1` (XEP-0060 uses the XML Schema boolean, §7.2.2.1).
fn is_true(value: Option<&str>) -> bool {
    matches!(value, Some("true" | "1"))
}

/// The `jid` attribute, which must be there (§6.1.3.1: `jid-required`).
fn jid_of(el: &Element) -> Result<String, RequestError> {
    match el.attr("jid") {
        Some(jid) if !jid.is_empty() => Ok(jid.to_owned()),
        _ => Err(RequestError::JidRequired),
    }
}

/// An optional, non-empty attribute.
fn opt_attr(el: &Element, name: &str) -> Option<String> {
    el.attr(name).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// The `(jid, state)` changes inside an owner's `<subscriptions/>` or `<affiliations/>`
/// (§8.8.2, §8.9.2), read with `state`.
fn changes<T>(
    el: &Element,
    child: &str,
    attr: &str,
    state: fn(&str) -> Option<T>,
) -> Result<Vec<(String, T)>, RequestError> {
    el.children()
        .filter(|c| c.is(child, ns::PUBSUB_OWNER))
        .map(|c| {
            let jid = c.attr("jid").filter(|j| !j.is_empty());
            match (jid, c.attr(attr).and_then(state)) {
                (Some(jid), Some(state)) => Ok((jid.to_owned(), state)),
                _ => Err(RequestError::BadChange),
            }
        })
        .collect()
}

fn item_ids(el: &Element, ns: &str) -> Vec<String> {
    el.children()
        .filter(|c| c.is("item", ns))
        .filter_map(|c| c.attr("id"))
        .map(str::to_owned)
        .collect()
}

impl Request {
    /// Reads the `<pubsub/>` element of an IQ, in either namespace.
    pub fn parse(pubsub: &Element) -> Result<Request, RequestError> {
        let owner = pubsub.ns() == ns::PUBSUB_OWNER;
        let ns = pubsub.ns();
        let first = pubsub
            .children()
            .find(|c| c.ns() == ns)
            .ok_or(RequestError::Empty)?;
        if owner {
            return match first.name() {
                "configure" => Ok(Request::Configure {
                    node: node_of(first)?,
                    form: form_in(Some(first))?,
                }),
                "default" => Ok(Request::Default),
                "purge" => Ok(Request::Purge {
                    node: node_of(first)?,
                }),
                "delete" => Ok(Request::Delete {
                    node: node_of(first)?,
                    redirect: first
                        .get_child("redirect", ns)
                        .and_then(|r| opt_attr(r, "uri")),
                }),
                "affiliations" => Ok(Request::NodeAffiliations {
                    node: node_of(first)?,
                    changes: changes(first, "affiliation", "affiliation", Affiliation::from_name)?,
                }),
                "subscriptions" => Ok(Request::NodeSubscriptions {
                    node: node_of(first)?,
                    changes: changes(
                        first,
                        "subscription",
                        "subscription",
                        SubscriptionState::from_name,
                    )?,
                }),
                _ => Err(RequestError::Empty),
            };
        }
        match first.name() {
            "publish" => {
                let item = first.get_child("item", ns).map(|item| PublishedItem {
                    id: item.attr("id").map(str::to_owned),
                    payloads: item.children().cloned().collect(),
                });
                Ok(Request::Publish {
                    node: node_of(first)?,
                    item,
                    options: form_in(pubsub.get_child("publish-options", ns))?,
                })
            }
            "retract" => {
                let node = node_of(first)?;
                let ids = item_ids(first, ns);
                if ids.is_empty() {
                    return Err(RequestError::ItemRequired);
                }
                Ok(Request::Retract {
                    node,
                    notify: is_true(first.attr("notify")),
                    ids,
                })
            }
            "items" => {
                let max_items = match first.attr("max_items") {
                    Some(n) => Some(n.trim().parse().map_err(|_| RequestError::BadMaxItems)?),
                    None => None,
                };
                Ok(Request::Items {
                    node: node_of(first)?,
                    max_items,
                    ids: item_ids(first, ns),
                    rsm: SetQuery::from_child_of(pubsub)?,
                })
            }
            "create" => Ok(Request::Create {
                node: first
                    .attr("node")
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned),
                config: form_in(pubsub.get_child("configure", ns))?,
            }),
            "subscribe" => Ok(Request::Subscribe {
                node: node_of(first)?,
                jid: jid_of(first)?,
                options: form_in(pubsub.get_child("options", ns))?,
            }),
            "unsubscribe" => Ok(Request::Unsubscribe {
                node: node_of(first)?,
                jid: jid_of(first)?,
                subid: opt_attr(first, "subid"),
            }),
            "options" => Ok(Request::Options {
                node: node_of(first)?,
                jid: jid_of(first)?,
                subid: opt_attr(first, "subid"),
                form: form_in(Some(first))?,
            }),
            "subscriptions" => Ok(Request::Subscriptions {
                node: opt_attr(first, "node"),
            }),
            "affiliations" => Ok(Request::Affiliations {
                node: opt_attr(first, "node"),
            }),
            "default" => Ok(Request::Unsupported("retrieve-default-sub")),
            _ => Err(RequestError::Empty),
        }
    }
}

/// An `<item/>` in namespace `ns` (the pubsub one in results, the event one in
/// notifications) with its payload, if it carries one.
fn item(ns: &str, id: &str, payload: Option<Element>) -> Element {
    let mut el = Element::new("item", ns).with_attr("id", id);
    if let Some(payload) = payload {
        el.push_child(payload);
    }
    el
}

/// §7.1.2: the result of a publish, naming the item's id.
pub fn publish_result(node: &str, id: &str) -> Element {
    Element::new("pubsub", ns::PUBSUB).with_child(
        Element::new("publish", ns::PUBSUB)
            .with_attr("node", node)
            .with_child(item(ns::PUBSUB, id, None)),
    )
}

/// §8.1.2: the result of creating a node.
pub fn create_result(node: &str) -> Element {
    Element::new("pubsub", ns::PUBSUB)
        .with_child(Element::new("create", ns::PUBSUB).with_attr("node", node))
}

/// §6.5.2: items, in the order given, with the XEP-0059 page they are (§6.5.4) if asked
/// for one.
pub fn items_result(
    node: &str,
    items: impl IntoIterator<Item = (String, Option<Element>)>,
    page: Option<&SetResult>,
) -> Element {
    let mut el = Element::new("items", ns::PUBSUB).with_attr("node", node);
    for (id, payload) in items {
        el.push_child(item(ns::PUBSUB, &id, payload));
    }
    let mut pubsub = Element::new("pubsub", ns::PUBSUB).with_child(el);
    if let Some(page) = page {
        pubsub.push_child(page.to_element());
    }
    pubsub
}

/// §6.1.2: the subscription a subscribe made (or found).
pub fn subscription_result(entry: &SubscriptionEntry) -> Element {
    Element::new("pubsub", ns::PUBSUB).with_child(entry.to_element(ns::PUBSUB))
}

/// §5.6 (`owner: false`: the asker's, across nodes or of `node`) and §8.8.1 (`owner: true`:
/// a node's): a list of subscriptions.
pub fn subscriptions_result(
    owner: bool,
    node: Option<&str>,
    list: &[SubscriptionEntry],
) -> Element {
    let ns = if owner { ns::PUBSUB_OWNER } else { ns::PUBSUB };
    let mut el = Element::new("subscriptions", ns);
    if let Some(node) = node {
        el.set_attr("node", node);
    }
    for entry in list {
        el.push_child(entry.to_element(ns));
    }
    Element::new("pubsub", ns).with_child(el)
}

/// §5.7 (`owner: false`: the asker's, `(node, affiliation)`) and §8.9.1 (`owner: true`:
/// a node's, `(jid, affiliation)`): a list of affiliations.
pub fn affiliations_result(
    owner: bool,
    node: Option<&str>,
    list: &[(String, Affiliation)],
) -> Element {
    let ns = if owner { ns::PUBSUB_OWNER } else { ns::PUBSUB };
    let key = if owner { "jid" } else { "node" };
    let mut el = Element::new("affiliations", ns);
    if let Some(node) = node {
        el.set_attr("node", node);
    }
    for (name, affiliation) in list {
        el.push_child(
            Element::new("affiliation", ns)
                .with_attr(key, name.as_str())
                .with_attr("affiliation", affiliation.as_str()),
        );
    }
    Element::new("pubsub", ns).with_child(el)
}

/// §6.3.2: a subscription's options form.
pub fn options_result(node: &str, jid: &str, subid: Option<&str>, form: &DataForm) -> Element {
    let mut el = Element::new("options", ns::PUBSUB)
        .with_attr("node", node)
        .with_attr("jid", jid);
    if let Some(subid) = subid {
        el.set_attr("subid", subid);
    }
    el.push_child(form.to_element());
    Element::new("pubsub", ns::PUBSUB).with_child(el)
}

/// §8.2.1: the configuration form of a node; §8.3.2: the default one (`node: None`).
pub fn configure_result(node: Option<&str>, form: &DataForm) -> Element {
    let mut el = match node {
        Some(node) => Element::new("configure", ns::PUBSUB_OWNER).with_attr("node", node),
        None => Element::new("default", ns::PUBSUB_OWNER),
    };
    el.push_child(form.to_element());
    Element::new("pubsub", ns::PUBSUB_OWNER).with_child(el)
}

/// An event notification's payload (§7.1.2.1, §7.2.2.1, §8.4.2, §8.5.2):
/// `<event xmlns='…#event'>` around what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Fields are the notification's attributes and children of the same name.
pub enum Event {
    /// Published items, each with its payload unless the node delivers none
    /// (`pubsub#deliver_payloads` off).
    Items {
        node: String,
        items: Vec<(String, Option<Element>)>,
    },
    Retract {
        node: String,
        ids: Vec<String>,
    },
    Purge {
        node: String,
    },
    /// §8.4.2, with the URI subscribers are sent to instead (§8.4.1).
    Delete {
        node: String,
        redirect: Option<String>,
    },
    /// §8.2.5.1: the node was configured; the new configuration if the node delivers
    /// payloads.
    Configuration {
        node: String,
        form: Option<DataForm>,
    },
    /// §8.8.4 and `pubsub#notify_sub`: a subscription changed.
    Subscription(SubscriptionEntry),
}

impl Event {
    /// The `<event/>` element, for a `<message/>`.
    pub fn to_element(&self) -> Element {
        let inner = match self {
            Event::Items { node, items } => {
                let mut el = Element::new("items", ns::PUBSUB_EVENT).with_attr("node", node);
                for (id, payload) in items {
                    el.push_child(item(ns::PUBSUB_EVENT, id, payload.clone()));
                }
                el
            }
            Event::Retract { node, ids } => {
                let mut el = Element::new("items", ns::PUBSUB_EVENT).with_attr("node", node);
                for id in ids {
                    el.push_child(Element::new("retract", ns::PUBSUB_EVENT).with_attr("id", id));
                }
                el
            }
            Event::Purge { node } => {
                Element::new("purge", ns::PUBSUB_EVENT).with_attr("node", node)
            }
            Event::Delete { node, redirect } => {
                let mut el = Element::new("delete", ns::PUBSUB_EVENT).with_attr("node", node);
                if let Some(uri) = redirect {
                    el.push_child(
                        Element::new("redirect", ns::PUBSUB_EVENT).with_attr("uri", uri.as_str()),
                    );
                }
                el
            }
            Event::Configuration { node, form } => {
                let mut el =
                    Element::new("configuration", ns::PUBSUB_EVENT).with_attr("node", node);
                if let Some(form) = form {
                    el.push_child(form.to_element());
                }
                el
            }
            Event::Subscription(entry) => entry.to_element(ns::PUBSUB_EVENT),
        };
        Element::new("event", ns::PUBSUB_EVENT).with_child(inner)
    }

    /// The node the event is about.
    pub fn node(&self) -> &str {
        match self {
            Event::Items { node, .. }
            | Event::Retract { node, .. }
            | Event::Purge { node }
            | Event::Delete { node, .. }
            | Event::Configuration { node, .. } => node,
            Event::Subscription(entry) => entry.node.as_deref().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_stanza;

    fn pubsub(xml: &str) -> Result<Request, RequestError> {
        Request::parse(&parse_stanza(xml.as_bytes()).unwrap())
    }

    #[test]
    fn publish_with_options_is_read() {
        let request = pubsub(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
               <publish node='urn:xmpp:bookmarks:1'><item id='room@muc.example'>\
                 <conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'/></item></publish>\
               <publish-options><x xmlns='jabber:x:data' type='submit'>\
                 <field var='FORM_TYPE' type='hidden'>\
                   <value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
                 <field var='pubsub#access_model'><value>whitelist</value></field>\
               </x></publish-options></pubsub>",
        )
        .unwrap();
        let Request::Publish {
            node,
            item,
            options,
        } = request
        else {
            panic!("{request:?}");
        };
        assert_eq!(node, "urn:xmpp:bookmarks:1");
        let item = item.unwrap();
        assert_eq!(item.id.as_deref(), Some("room@muc.example"));
        assert_eq!(item.payloads.len(), 1);
        assert!(item.payloads[0].is("conference", "urn:xmpp:bookmarks:1"));
        let options = options.unwrap();
        assert_eq!(options.form_type_field(), Some(PUBLISH_OPTIONS));
        assert_eq!(options.value("pubsub#access_model"), Some("whitelist"));
    }

    #[test]
    fn requests_without_what_they_need_are_refused_with_the_xep_conditions() {
        let no_node = pubsub(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish><item/></publish></pubsub>",
        );
        assert_eq!(no_node, Err(RequestError::NodeIdRequired));
        let err = no_node.unwrap_err().to_stanza_error();
        assert_eq!(err.condition, Condition::BadRequest);
        assert!(err.app.unwrap().is("nodeid-required", ns::PUBSUB_ERRORS));
        assert_eq!(
            pubsub(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='n'/></pubsub>"
            ),
            Err(RequestError::ItemRequired)
        );
        assert_eq!(
            pubsub(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
                 <items node='n' max_items='many'/></pubsub>"
            ),
            Err(RequestError::BadMaxItems)
        );
        assert_eq!(
            pubsub("<pubsub xmlns='http://jabber.org/protocol/pubsub'/>"),
            Err(RequestError::Empty)
        );
    }

    #[test]
    fn items_retract_and_owner_requests_are_read() {
        assert_eq!(
            pubsub(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
                 <items node='n' max_items='2'><item id='a'/><item id='b'/></items></pubsub>"
            ),
            Ok(Request::Items {
                node: "n".into(),
                max_items: Some(2),
                ids: vec!["a".into(), "b".into()],
                rsm: None,
            })
        );
        assert_eq!(
            pubsub(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
                 <retract node='n' notify='1'><item id='a'/></retract></pubsub>"
            ),
            Ok(Request::Retract {
                node: "n".into(),
                notify: true,
                ids: vec!["a".into()],
            })
        );
        assert_eq!(
            pubsub("<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><purge node='n'/></pubsub>"),
            Ok(Request::Purge { node: "n".into() })
        );
        assert_eq!(
            pubsub(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='n'/></pubsub>"
            ),
            Ok(Request::Configure {
                node: "n".into(),
                form: None
            })
        );
        assert_eq!(
            pubsub(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
                 <subscribe node='n' jid='a@b'/></pubsub>"
            ),
            Ok(Request::Subscribe {
                node: "n".into(),
                jid: "a@b".into(),
                options: None,
            })
        );
    }

    #[test]
    fn subscriptions_affiliations_and_pages_are_read() {
        assert_eq!(
            pubsub(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
                 <unsubscribe node='n' jid='a@b/r' subid='7'/></pubsub>"
            ),
            Ok(Request::Unsubscribe {
                node: "n".into(),
                jid: "a@b/r".into(),
                subid: Some("7".into()),
            })
        );
        assert_eq!(
            pubsub(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='n'/></pubsub>"
            ),
            Err(RequestError::JidRequired)
        );
        assert_eq!(
            pubsub("<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscriptions/></pubsub>"),
            Ok(Request::Subscriptions { node: None })
        );
        assert_eq!(
            pubsub(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='n'>\
                 <affiliation jid='a@b' affiliation='publish-only'/>\
                 <affiliation jid='c@d' affiliation='outcast'/></affiliations></pubsub>"
            ),
            Ok(Request::NodeAffiliations {
                node: "n".into(),
                changes: vec![
                    ("a@b".into(), Affiliation::PublishOnly),
                    ("c@d".into(), Affiliation::Outcast),
                ],
            })
        );
        assert_eq!(
            pubsub(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='n'>\
                 <affiliation jid='a@b' affiliation='king'/></affiliations></pubsub>"
            ),
            Err(RequestError::BadChange)
        );
        assert_eq!(
            pubsub(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><delete node='n'>\
                 <redirect uri='xmpp:pubsub.example?;node=m'/></delete></pubsub>"
            ),
            Ok(Request::Delete {
                node: "n".into(),
                redirect: Some("xmpp:pubsub.example?;node=m".into()),
            })
        );
        let Ok(Request::Items { rsm: Some(rsm), .. }) = pubsub(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'/>\
             <set xmlns='http://jabber.org/protocol/rsm'><max>2</max><after>x</after></set>\
             </pubsub>",
        ) else {
            panic!("no page read");
        };
        assert_eq!(rsm.max, Some(2));
        assert_eq!(rsm.after.as_deref(), Some("x"));
    }

    #[test]
    fn lists_are_written_in_their_namespace() {
        let entry = SubscriptionEntry {
            node: None,
            jid: "a@b".into(),
            subid: Some("1".into()),
            state: SubscriptionState::Subscribed,
        };
        assert_eq!(
            String::from_utf8(subscriptions_result(true, Some("n"), &[entry]).to_bytes(ns::CLIENT))
                .unwrap(),
            "<pubsub xmlns=\"http://jabber.org/protocol/pubsub#owner\">\
             <subscriptions node=\"n\"><subscription jid=\"a@b\" subid=\"1\" \
             subscription=\"subscribed\"/></subscriptions></pubsub>"
        );
        assert_eq!(
            String::from_utf8(
                affiliations_result(false, None, &[("n".into(), Affiliation::Owner)])
                    .to_bytes(ns::CLIENT)
            )
            .unwrap(),
            "<pubsub xmlns=\"http://jabber.org/protocol/pubsub\"><affiliations>\
             <affiliation node=\"n\" affiliation=\"owner\"/></affiliations></pubsub>"
        );
    }

    #[test]
    fn notifications_are_written_in_the_event_namespace() {
        let event = Event::Items {
            node: "urn:xmpp:avatar:metadata".into(),
            items: vec![(
                "abc".into(),
                Some(Element::new("metadata", "urn:xmpp:avatar:metadata")),
            )],
        };
        assert_eq!(
            String::from_utf8(event.to_element().to_bytes(ns::CLIENT)).unwrap(),
            "<event xmlns=\"http://jabber.org/protocol/pubsub#event\">\
             <items node=\"urn:xmpp:avatar:metadata\"><item id=\"abc\">\
             <metadata xmlns=\"urn:xmpp:avatar:metadata\"/></item></items></event>"
        );
        let retract = Event::Retract {
            node: "n".into(),
            ids: vec!["a".into()],
        };
        assert_eq!(
            String::from_utf8(retract.to_element().to_bytes(ns::CLIENT)).unwrap(),
            "<event xmlns=\"http://jabber.org/protocol/pubsub#event\">\
             <items node=\"n\"><retract id=\"a\"/></items></event>"
        );
    }
}
