//! Room bookmarks in their two forms: XEP-0048's `<storage xmlns='storage:bookmarks'/>`
//! with a `<conference/>` per room (kept in XEP-0049 private storage), and XEP-0402's
//! `<conference xmlns='urn:xmpp:bookmarks:1'/>`, one PEP item per room whose id is the
//! room's JID. XEP-0411 converts between them through [`Conference`].

use crate::ns;
use crate::xml::Element;

/// One room bookmark, as both forms can say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    /// The room's bare JID.
    pub jid: String,
    /// A name for people.
    pub name: Option<String>,
    /// Join the room at login.
    pub autojoin: bool,
    /// The nickname to join with.
    pub nick: Option<String>,
    /// The room's password.
    pub password: Option<String>,
}

/// XML Schema booleans (XEP-0048 and XEP-0402 both use `xs:boolean`).
fn boolean(value: Option<&str>) -> bool {
    matches!(value.map(str::trim), Some("true" | "1"))
}

/// The text of child `name` of `el` in `namespace`, if any and not empty.
fn child_text(el: &Element, name: &str, namespace: &str) -> Option<String> {
    el.get_child(name, namespace)
        .map(|c| c.text())
        .filter(|t| !t.is_empty())
}

impl Conference {
    /// The bookmark of room `jid` from an XEP-0402 item's payload; `None` if it is no
    /// `<conference/>` of that namespace.
    pub fn from_pep(jid: &str, payload: &Element) -> Option<Conference> {
        if !payload.is("conference", ns::BOOKMARKS2) || jid.is_empty() {
            return None;
        }
        Some(Conference {
            jid: jid.to_owned(),
            name: payload.attr("name").map(str::to_owned),
            autojoin: boolean(payload.attr("autojoin")),
            nick: child_text(payload, "nick", ns::BOOKMARKS2),
            password: child_text(payload, "password", ns::BOOKMARKS2),
        })
    }

    /// The XEP-0402 payload, with the `<extensions/>` of `old` (the item it replaces), which
    /// XEP-0048 has no room for, kept.
    pub fn to_pep(&self, old: Option<&Element>) -> Element {
        let mut el = self.element(ns::BOOKMARKS2);
        if let Some(extensions) = old.and_then(|o| o.get_child("extensions", ns::BOOKMARKS2)) {
            el.push_child(extensions.clone());
        }
        el
    }

    /// XEP-0048's `<conference/>`.
    fn to_storage(&self) -> Element {
        self.element(ns::BOOKMARKS_STORAGE)
            .with_attr("jid", &self.jid)
    }

    /// `<conference/>` in `namespace` with what both forms say alike: the name and
    /// autojoin attributes, the nick and password children.
    fn element(&self, namespace: &str) -> Element {
        let mut el = Element::new("conference", namespace);
        if let Some(name) = &self.name {
            el.set_attr("name", name);
        }
        el.set_attr("autojoin", if self.autojoin { "true" } else { "false" });
        for (name, value) in [("nick", &self.nick), ("password", &self.password)] {
            if let Some(value) = value {
                el.push_child(Element::new(name, namespace).with_text(value));
            }
        }
        el
    }
}

/// The room bookmarks of XEP-0048 `<storage/>`, each room once (the first wins).
pub fn from_storage(storage: &Element) -> Vec<Conference> {
    let mut out: Vec<Conference> = Vec::new();
    for c in storage.children() {
        let Some(jid) = c.attr("jid").filter(|j| !j.is_empty()) else {
            continue;
        };
        if !c.is("conference", ns::BOOKMARKS_STORAGE) || out.iter().any(|o| o.jid == jid) {
            continue;
        }
        out.push(Conference {
            jid: jid.to_owned(),
            name: c.attr("name").map(str::to_owned),
            autojoin: boolean(c.attr("autojoin")),
            nick: child_text(c, "nick", ns::BOOKMARKS_STORAGE),
            password: child_text(c, "password", ns::BOOKMARKS_STORAGE),
        });
    }
    out
}

/// XEP-0048 `<storage/>` holding `conferences`, and whatever else `old` held besides room
/// bookmarks (`<url/>` bookmarks, which XEP-0402 has no place for).
pub fn to_storage(conferences: &[Conference], old: Option<&Element>) -> Element {
    let mut storage = Element::new("storage", ns::BOOKMARKS_STORAGE);
    for c in conferences {
        storage.push_child(c.to_storage());
    }
    for other in old
        .into_iter()
        .flat_map(|o| o.children())
        .filter(|c| !c.is("conference", ns::BOOKMARKS_STORAGE))
    {
        storage.push_child(other.clone());
    }
    storage
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_stanza;

    #[test]
    fn a_bookmark_goes_both_ways_keeping_what_only_one_form_has() {
        let storage = parse_stanza(
            b"<storage xmlns='storage:bookmarks'>\
              <conference jid='lobby@conference.example' name='Lobby' autojoin='1'>\
              <nick>al</nick><password>pw</password></conference>\
              <conference jid='lobby@conference.example' name='again'/>\
              <url name='site' url='https://example.org/'/></storage>",
        )
        .unwrap();
        let rooms = from_storage(&storage);
        assert_eq!(
            rooms,
            [Conference {
                jid: "lobby@conference.example".into(),
                name: Some("Lobby".into()),
                autojoin: true,
                nick: Some("al".into()),
                password: Some("pw".into()),
            }]
        );
        let old = parse_stanza(
            b"<conference xmlns='urn:xmpp:bookmarks:1' name='Old'>\
              <extensions><state xmlns='urn:example'/></extensions></conference>",
        )
        .unwrap();
        let pep = rooms[0].to_pep(Some(&old));
        assert_eq!(pep.attr("autojoin"), Some("true"));
        assert!(pep.get_child("extensions", ns::BOOKMARKS2).is_some());
        assert_eq!(
            Conference::from_pep("lobby@conference.example", &pep).as_ref(),
            Some(&rooms[0])
        );
        let back = to_storage(&rooms, Some(&storage));
        assert_eq!(from_storage(&back), rooms);
        assert!(back.get_child("url", ns::BOOKMARKS_STORAGE).is_some());
        assert_eq!(back.children().count(), 2);
    }

    #[test]
    fn other_payloads_are_no_bookmarks() {
        let other = Element::new("conference", ns::BOOKMARKS_STORAGE);
        assert!(Conference::from_pep("room@example", &other).is_none());
    }
}
