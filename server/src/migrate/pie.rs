//! XEP-0227 (Portable Import/Export Format, urn:xmpp:pie:0): reading a file into
//! [`Account`]s and writing a host's accounts as one file.
//!
//! Read: a `<server-data/>` root holding `<host/>`s (Prosody's migrator writes one file
//! per user in this form), or a `<host/>` root (ejabberd's `export_piefxis` writes one
//! per host, beside a `<server-data/>` file that includes them with XInclude, which we
//! skip: the directory is read whole). Written: one `<server-data/>` per host.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jabberwock_protocol::jid;
use jabberwock_protocol::ns;
use jabberwock_protocol::xml::{parse_stanza, Element, Node};
use jabberwock_storage::{RosterEntry, ScramCredential, ScramHash, Subscription};

use jabberwock_protocol::forms::{DataForm, FormType};
use jabberwock_protocol::pubsub::NODE_CONFIG;

use super::{io_error, Account, MigrateError, PepItem, PepNode, Secret};
use crate::modules::pubsub::config::Rules;

/// No ceiling of ours on what a source kept: the node's own `pubsub#max_items` holds.
pub(super) const ANY_MAX_ITEMS: u64 = u64::MAX;

pub const PIE: &str = "urn:xmpp:pie:0";
/// XEP-0227 §4: SCRAM credentials instead of a password.
pub const PIE_SCRAM: &str = "urn:xmpp:pie:0#scram";
const XINCLUDE: &str = "http://www.w3.org/2001/XInclude";

pub fn read_file(path: &Path) -> Result<Vec<Account>, MigrateError> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    let bad = |element: &str, reason: String| MigrateError::Malformed {
        file: path.to_owned(),
        element: element.to_owned(),
        reason,
    };
    let root = parse_stanza(without_prolog(&bytes)).map_err(|e| {
        bad(
            "document",
            format!("not well-formed XML ({:?})", e.condition),
        )
    })?;
    let hosts: Vec<&Element> = if root.is("server-data", PIE) {
        root.children()
            .filter(|c| !c.is("include", XINCLUDE))
            .collect()
    } else {
        vec![&root]
    };
    let mut accounts = Vec::new();
    for host in hosts {
        if !host.is("host", PIE) {
            return Err(bad(
                &format!("<{}/>", host.name()),
                format!("expected <host/> or <server-data/> in {PIE}"),
            ));
        }
        let Some(domain) = host.attr("jid") else {
            return Err(bad("<host/>", "no jid attribute".into()));
        };
        for user in host.children() {
            let element = format!("<host jid='{domain}'>/<{}/>", user.name());
            if !user.is("user", PIE) {
                return Err(bad(&element, "expected <user/>".into()));
            }
            let Some(name) = user.attr("name") else {
                return Err(bad(&element, "no name attribute".into()));
            };
            let element = format!("<host jid='{domain}'>/<user name='{name}'>");
            let account = read_user(user, name, domain).map_err(|reason| bad(&element, reason))?;
            accounts.push(Account {
                origin: format!("{}: {element}", path.display()),
                ..account
            });
        }
    }
    Ok(accounts)
}

/// The document without its XML declaration, comments and doctype, which the stanza
/// parser does not take.
fn without_prolog(mut bytes: &[u8]) -> &[u8] {
    loop {
        bytes = bytes.trim_ascii_start();
        let end = if bytes.starts_with(b"<?") {
            find(bytes, b"?>").map(|i| i + 2)
        } else if bytes.starts_with(b"<!--") {
            find(bytes, b"-->").map(|i| i + 3)
        } else if bytes.starts_with(b"<!") {
            find(bytes, b">").map(|i| i + 1)
        } else {
            None
        };
        match end {
            Some(end) => bytes = &bytes[end..],
            None => return bytes,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn read_user(user: &Element, name: &str, host: &str) -> Result<Account, String> {
    let mut account = Account {
        username: name.to_owned(),
        host: host.to_owned(),
        ..Account::default()
    };
    let mut scram = Vec::new();
    for child in user.children() {
        if child.is("scram-credentials", PIE_SCRAM) {
            scram.push(read_scram(child)?);
        } else if child.is("query", ns::ROSTER) {
            for item in child.children().filter(|i| i.is("item", ns::ROSTER)) {
                account.roster.push(read_item(item)?);
            }
        } else if child.is("vCard", ns::VCARD) {
            account.vcard = Some(child.clone());
        } else if child.is("offline-messages", PIE) {
            for message in child.children() {
                // A message written without its own xmlns is in the file's namespace.
                let mut message = message.clone();
                rehome(&mut message, PIE, ns::CLIENT);
                if !message.is("message", ns::CLIENT) {
                    return Err(format!("<offline-messages/> holds a <{}/>", message.name()));
                }
                account.offline.push(message);
            }
        } else if child.is("query", ns::PRIVATE) {
            account.private.extend(child.children().cloned());
        } else if child.is("pubsub", ns::PUBSUB) {
            read_pep_items(child, &mut account.pep)?;
        } else if child.is("pubsub", ns::PUBSUB_OWNER) {
            read_pep_configs(child, &mut account.pep)?;
        }
    }
    account.secret = match (scram.is_empty(), user.attr("password")) {
        (false, _) => Secret::Scram(scram),
        (true, Some(password)) => Secret::Plain(password.to_owned()),
        (true, None) => Secret::None,
    };
    Ok(account)
}

/// The node named by `el`'s `node` attribute, added if new.
fn pep_node<'a>(el: &Element, nodes: &'a mut Vec<PepNode>) -> Result<&'a mut PepNode, String> {
    let name = el
        .attr("node")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("a <{}/> without node", el.name()))?;
    Ok(PepNode::named(nodes, name))
}

/// XEP-0227 §4: `<pubsub xmlns='…pubsub'>` holds each node's `<items node>`, with
/// `<item id>` and its payload (Prosody writes them so, oldest first).
fn read_pep_items(pubsub: &Element, nodes: &mut Vec<PepNode>) -> Result<(), String> {
    for items in pubsub.children().filter(|c| c.is("items", ns::PUBSUB)) {
        let node = pep_node(items, nodes)?;
        for item in items.children().filter(|c| c.is("item", ns::PUBSUB)) {
            let id = item
                .attr("id")
                .filter(|id| !id.is_empty())
                .ok_or_else(|| format!("<items node='{}'>: an <item/> without id", node.node))?;
            node.items.push(PepItem {
                id: id.to_owned(),
                publisher: item.attr("publisher").map(str::to_owned),
                payload: item.children().next().cloned(),
            });
        }
    }
    Ok(())
}

/// XEP-0227 §4: `<pubsub xmlns='…pubsub#owner'>` holds each node's `<configure node>` with
/// its `pubsub#node_config` form (affiliations and subscriptions there are not kept: a
/// personal eventing node's readers follow the roster).
fn read_pep_configs(owner: &Element, nodes: &mut Vec<PepNode>) -> Result<(), String> {
    for configure in owner
        .children()
        .filter(|c| c.is("configure", ns::PUBSUB_OWNER))
    {
        let node = pep_node(configure, nodes)?;
        if let Some(x) = configure.get_child("x", ns::DATA_FORMS) {
            let bad = |e: &dyn std::fmt::Display| format!("<configure node='{}'>: {e}", node.node);
            let form = DataForm::parse(x).map_err(|e| bad(&e))?;
            node.config
                .apply(&form, NODE_CONFIG, Rules::pep(ANY_MAX_ITEMS))
                .map_err(|e| bad(&e))?;
        }
    }
    Ok(())
}

/// `<scram-credentials mechanism='SCRAM-SHA-…'>` with `<iter-count/>`, and `<salt/>`,
/// `<server-key/>`, `<stored-key/>` in base64 (XEP-0227 §4).
fn read_scram(el: &Element) -> Result<ScramCredential, String> {
    let hash = match el.attr("mechanism") {
        Some("SCRAM-SHA-1") => ScramHash::Sha1,
        Some("SCRAM-SHA-256") => ScramHash::Sha256,
        other => {
            return Err(format!(
                "<scram-credentials/>: unsupported mechanism {other:?}"
            ))
        }
    };
    let text = |name: &str| {
        el.get_child(name, PIE_SCRAM)
            .map(|c| c.text().split_whitespace().collect::<String>())
            .ok_or_else(|| format!("<scram-credentials/> has no <{name}/>"))
    };
    let base64 = |name: &str| {
        B64.decode(text(name)?)
            .map_err(|e| format!("<scram-credentials/>/<{name}/>: not base64 ({e})"))
    };
    let iterations = text("iter-count")?
        .parse()
        .map_err(|_| "<scram-credentials/>/<iter-count/>: not a number".to_owned())?;
    Ok(ScramCredential {
        hash,
        salt: base64("salt")?,
        iterations,
        stored_key: base64("stored-key")?,
        server_key: base64("server-key")?,
    })
}

fn read_item(item: &Element) -> Result<RosterEntry, String> {
    let raw = item
        .attr("jid")
        .ok_or_else(|| "a roster <item/> without jid".to_owned())?;
    let contact = jid::parse_bare(raw)
        .map_err(|e| format!("roster <item jid='{raw}'/>: {e}"))?
        .to_string();
    let subscription = match item.attr("subscription") {
        None => Subscription::None,
        Some(s) => Subscription::from_name(s)
            .ok_or_else(|| format!("roster <item jid='{raw}'/>: subscription {s:?}"))?,
    };
    let mut groups: Vec<String> = Vec::new();
    for group in item.children().filter(|g| g.is("group", ns::ROSTER)) {
        let name = group.text();
        if !groups.contains(&name) {
            groups.push(name);
        }
    }
    Ok(RosterEntry {
        contact,
        name: item.attr("name").map(str::to_owned),
        groups,
        subscription,
        pending_out: item.attr("ask") == Some("subscribe"),
        in_roster: true,
        ..RosterEntry::default()
    })
}

/// The node's configuration as a submitted `pubsub#node_config` form (as Prosody writes
/// it): the values only, without the labels and options of the form a client is shown.
fn config_form(node: &PepNode) -> DataForm {
    let mut form = node.config.to_form(Rules::pep(ANY_MAX_ITEMS), &[]);
    form.form_type = FormType::Submit;
    for field in &mut form.fields {
        field.label = None;
        field.desc = None;
        field.options.clear();
    }
    form
}

/// Moves `el` and its descendants from namespace `from` to `to`.
fn rehome(el: &mut Element, from: &str, to: &str) {
    if el.ns() != from {
        return;
    }
    let mut moved = Element::new(el.name(), to);
    for (k, v) in el.attrs() {
        moved.set_attr(k, v);
    }
    for node in el.nodes() {
        match node {
            Node::Element(child) => {
                let mut child = child.clone();
                rehome(&mut child, from, to);
                moved.push_child(child);
            }
            Node::Text(text) => moved.push_text(text.clone()),
        }
    }
    *el = moved;
}

/// One `<server-data/>` file holding `host` and its accounts.
pub fn write_host(host: &str, accounts: &[Account]) -> Vec<u8> {
    let mut host_el = Element::new("host", PIE).with_attr("jid", host);
    for account in accounts {
        host_el.push_child(write_user(account));
    }
    let root = Element::new("server-data", PIE).with_child(host_el);
    let mut out = b"<?xml version='1.0' encoding='UTF-8'?>\n".to_vec();
    root.write_to(&mut out, "");
    out.push(b'\n');
    out
}

fn write_user(account: &Account) -> Element {
    let mut user = Element::new("user", PIE).with_attr("name", &account.username);
    match &account.secret {
        Secret::Scram(credentials) => {
            for c in credentials {
                let mechanism = match c.hash {
                    ScramHash::Sha1 => "SCRAM-SHA-1",
                    ScramHash::Sha256 => "SCRAM-SHA-256",
                };
                let field =
                    |name: &str, text: String| Element::new(name, PIE_SCRAM).with_text(text);
                user.push_child(
                    Element::new("scram-credentials", PIE_SCRAM)
                        .with_attr("mechanism", mechanism)
                        .with_child(field("iter-count", c.iterations.to_string()))
                        .with_child(field("salt", B64.encode(&c.salt)))
                        .with_child(field("server-key", B64.encode(&c.server_key)))
                        .with_child(field("stored-key", B64.encode(&c.stored_key))),
                );
            }
        }
        Secret::Plain(password) => user.set_attr("password", password),
        Secret::None => {}
    }
    if !account.roster.is_empty() {
        let mut query = Element::new("query", ns::ROSTER);
        for entry in &account.roster {
            let mut item = Element::new("item", ns::ROSTER)
                .with_attr("jid", &entry.contact)
                .with_attr("subscription", entry.subscription.as_str());
            if let Some(name) = &entry.name {
                item.set_attr("name", name);
            }
            if entry.pending_out {
                item.set_attr("ask", "subscribe");
            }
            for group in &entry.groups {
                item.push_child(Element::new("group", ns::ROSTER).with_text(group));
            }
            query.push_child(item);
        }
        user.push_child(query);
    }
    if let Some(vcard) = &account.vcard {
        user.push_child(vcard.clone());
    }
    if !account.offline.is_empty() {
        let mut offline = Element::new("offline-messages", PIE);
        for message in &account.offline {
            offline.push_child(message.clone());
        }
        user.push_child(offline);
    }
    if !account.private.is_empty() {
        let mut query = Element::new("query", ns::PRIVATE);
        for element in &account.private {
            query.push_child(element.clone());
        }
        user.push_child(query);
    }
    if !account.pep.is_empty() {
        let mut owner = Element::new("pubsub", ns::PUBSUB_OWNER);
        let mut pubsub = Element::new("pubsub", ns::PUBSUB);
        for node in &account.pep {
            let mut configure =
                Element::new("configure", ns::PUBSUB_OWNER).with_attr("node", node.node.as_str());
            configure.push_child(config_form(node).to_element());
            owner.push_child(configure);
            if node.items.is_empty() {
                continue;
            }
            let mut items = Element::new("items", ns::PUBSUB).with_attr("node", node.node.as_str());
            for item in &node.items {
                let mut el = Element::new("item", ns::PUBSUB).with_attr("id", item.id.as_str());
                if let Some(publisher) = &item.publisher {
                    el.set_attr("publisher", publisher);
                }
                if let Some(payload) = &item.payload {
                    el.push_child(payload.clone());
                }
                items.push_child(el);
            }
            pubsub.push_child(items);
        }
        user.push_child(owner);
        if pubsub.children().next().is_some() {
            user.push_child(pubsub);
        }
    }
    user
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::pubsub::config::NodeConfig;

    fn read(text: &str) -> Result<Vec<Account>, MigrateError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.xml");
        std::fs::write(&path, text).unwrap();
        read_file(&path)
    }

    #[test]
    fn reads_the_xeps_example_shape() {
        let accounts = read(
            "<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'>\
             <host jid='capulet.lit'><user name='juliet' password='s3crEt'>\
             <query xmlns='jabber:iq:roster'><item jid='Romeo@Montague.lit' name='Romeo' \
             subscription='both' ask='subscribe'><group>Friends</group><group>Friends</group></item></query>\
             <vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>\
             <offline-messages><message to='juliet@capulet.lit' from='romeo@montague.lit'>\
             <body>hi</body></message></offline-messages>\
             <query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'/></query>\
             </user></host></server-data>",
        )
        .unwrap();
        let a = &accounts[0];
        assert_eq!(
            (a.username.as_str(), a.host.as_str()),
            ("juliet", "capulet.lit")
        );
        assert!(matches!(&a.secret, Secret::Plain(p) if p == "s3crEt"));
        assert_eq!(a.roster[0].contact, "romeo@montague.lit");
        assert_eq!(a.roster[0].groups, ["Friends"]);
        assert!(a.roster[0].pending_out);
        assert!(a.vcard.is_some());
        assert!(a.offline[0].is("message", ns::CLIENT));
        assert!(a.offline[0].get_child("body", ns::CLIENT).is_some());
        assert!(a.private[0].is("exodus", "exodus:prefs"));
    }

    #[test]
    fn writes_what_it_reads() {
        let account = Account {
            username: "alice".into(),
            host: "example.org".into(),
            secret: Secret::Scram(vec![ScramCredential {
                hash: ScramHash::Sha256,
                salt: vec![1, 2, 3],
                iterations: 4096,
                stored_key: vec![4; 32],
                server_key: vec![5; 32],
            }]),
            ..Account::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.xml");
        std::fs::write(&path, write_host("example.org", &[account])).unwrap();
        let back = read_file(&path).unwrap();
        match &back[0].secret {
            Secret::Scram(c) => {
                assert_eq!(c[0].hash, ScramHash::Sha256);
                assert_eq!(c[0].salt, [1, 2, 3]);
                assert_eq!(c[0].server_key, [5; 32]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_pep_nodes_as_prosody_writes_them() {
        let accounts = read(
            "<server-data xmlns='urn:xmpp:pie:0'><host jid='capulet.lit'>\
             <user name='juliet' password='s3crEt'>\
             <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
             <configure node='urn:xmpp:bookmarks:1'><x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>\
             <field var='pubsub#access_model'><value>whitelist</value></field>\
             <field var='pubsub#max_items'><value>max</value></field>\
             <field var='pubsub#itemreply'><value>owner</value></field></x></configure>\
             <affiliations node='urn:xmpp:bookmarks:1'/></pubsub>\
             <pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <items node='urn:xmpp:bookmarks:1'><item id='a@conf.lit'>\
             <conference xmlns='urn:xmpp:bookmarks:1' name='A'/></item></items>\
             <items node='http://jabber.org/protocol/nick'><item id='current' publisher='juliet@capulet.lit'>\
             <nick xmlns='http://jabber.org/protocol/nick'>J</nick></item></items></pubsub>\
             </user></host></server-data>",
        )
        .unwrap();
        let pep = &accounts[0].pep;
        assert_eq!(pep.len(), 2);
        assert_eq!(pep[0].node, "urn:xmpp:bookmarks:1");
        assert_eq!(pep[0].config.access_model.as_str(), "whitelist");
        assert_eq!(pep[0].config.max_items, None);
        assert_eq!(pep[0].items[0].id, "a@conf.lit");
        assert!(pep[0].items[0]
            .payload
            .as_ref()
            .unwrap()
            .is("conference", "urn:xmpp:bookmarks:1"));
        // Items alone: the node takes our defaults.
        assert_eq!(pep[1].config, NodeConfig::default());
        assert_eq!(
            pep[1].items[0].publisher.as_deref(),
            Some("juliet@capulet.lit")
        );

        let err = read(
            "<server-data xmlns='urn:xmpp:pie:0'><host jid='capulet.lit'><user name='juliet'>\
             <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='n'>\
             <x xmlns='jabber:x:data' type='submit'><field var='pubsub#max_items'><value>none</value></field>\
             </x></configure></pubsub></user></host></server-data>",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("<configure node='n'>") && err.contains("max_items"),
            "{err}"
        );
    }

    #[test]
    fn writes_pep_nodes_it_reads() {
        let account = Account {
            username: "alice".into(),
            host: "example.org".into(),
            pep: vec![PepNode {
                node: "n".into(),
                config: NodeConfig {
                    max_items: Some(7),
                    ..NodeConfig::default()
                },
                items: vec![PepItem {
                    id: "i".into(),
                    publisher: None,
                    payload: Some(Element::new("p", "x-test")),
                }],
            }],
            ..Account::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.xml");
        std::fs::write(&path, write_host("example.org", &[account])).unwrap();
        let back = read_file(&path).unwrap();
        let node = &back[0].pep[0];
        assert_eq!((node.node.as_str(), node.config.max_items), ("n", Some(7)));
        assert_eq!(node.items[0].id, "i");
        assert!(node.items[0].payload.as_ref().unwrap().is("p", "x-test"));
    }

    #[test]
    fn errors_name_the_file_and_element() {
        let err = read("<server-data xmlns='urn:xmpp:pie:0'><host jid='a.example'><user/></host></server-data>")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("in.xml") && err.contains("<user/>") && err.contains("name"),
            "{err}"
        );
        let err = read("<server-data xmlns='urn:xmpp:pie:0'><host").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = read("<server-data xmlns='urn:xmpp:pie:0'><host jid='a.example'><user name='x'>\
                        <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>\
                        <iter-count>many</iter-count></scram-credentials></user></host></server-data>")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("<user name='x'>") && err.contains("iter-count"),
            "{err}"
        );
    }
}
