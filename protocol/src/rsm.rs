//! XEP-0059: Result Set Management — `<set xmlns='http://jabber.org/protocol/rsm'/>`, the
//! paging element inside disco#items, MAM, MUC and PubSub queries.
//!
//! A request ([`SetQuery`]) names a page by the UIDs of neighbouring items or by index; a
//! response ([`SetResult`]) names the page it returned. Both read and write, so the server
//! can page its own answers and tests can build requests. Children of `<set/>` that are not
//! XEP-0059's are ignored.

use crate::ns;
use crate::xml::Element;

/// Why a `<set/>` could not be used; a request that fails so is answered with
/// `bad-request` (RFC 6120 §8.3.3.1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RsmError {
    /// Not `<set xmlns='http://jabber.org/protocol/rsm'/>`.
    #[error("not an RSM <set/> element")]
    WrongElement,
    /// A count or index that is not a non-negative integer.
    #[error("RSM <{element}/> is not a non-negative integer: {value:?}")]
    NotANumber {
        /// The element (or `first` for its `index` attribute) that held it.
        element: &'static str,
        /// What it held.
        value: String,
    },
}

/// The `<before/>` of a request (XEP-0059 §2.3, §2.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Before {
    /// `<before/>` empty: the last page of the set (§2.5).
    LastPage,
    /// `<before>uid</before>`: the page ending just before the item with this UID.
    Uid(String),
}

/// A request for one page (XEP-0059 §2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetQuery {
    /// `<max/>`: the most items to return; `0` asks only for the count (§2.7).
    pub max: Option<usize>,
    /// `<after/>`: the page starting just after the item with this UID (§2.2).
    pub after: Option<String>,
    /// `<before/>`: the previous page, or the last one.
    pub before: Option<Before>,
    /// `<index/>`: the page starting at this position, out of order (§2.6).
    pub index: Option<usize>,
}

impl SetQuery {
    /// Reads a `<set/>` from a request.
    pub fn parse(el: &Element) -> Result<SetQuery, RsmError> {
        if !el.is("set", ns::RSM) {
            return Err(RsmError::WrongElement);
        }
        let before = el.get_child("before", ns::RSM).map(|b| {
            let uid = b.text();
            // An empty element asks for the last page; UIDs are opaque, so a non-empty
            // one is kept exactly as sent.
            if uid.trim().is_empty() {
                Before::LastPage
            } else {
                Before::Uid(uid)
            }
        });
        Ok(SetQuery {
            max: number(el, "max")?,
            after: el.get_child("after", ns::RSM).map(Element::text),
            before,
            index: number(el, "index")?,
        })
    }

    /// Reads the `<set/>` among `parent`'s children, if there is one (e.g. inside a
    /// disco#items `<query/>`).
    pub fn from_child_of(parent: &Element) -> Result<Option<SetQuery>, RsmError> {
        parent
            .get_child("set", ns::RSM)
            .map(SetQuery::parse)
            .transpose()
    }

    /// Writes `<set/>` with max, after, before and index in that order (XEP-0059's examples).
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("set", ns::RSM);
        if let Some(max) = self.max {
            el.push_child(text_child("max", &max.to_string()));
        }
        if let Some(after) = &self.after {
            el.push_child(text_child("after", after));
        }
        match &self.before {
            Some(Before::LastPage) => el.push_child(Element::new("before", ns::RSM)),
            Some(Before::Uid(uid)) => el.push_child(text_child("before", uid)),
            None => {}
        }
        if let Some(index) = self.index {
            el.push_child(text_child("index", &index.to_string()));
        }
        el
    }
}

/// The description of the page a response returned (XEP-0059 §2.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetResult {
    /// `<first index='…'>uid</first>`: the first item's UID and its position in the set.
    /// Absent, like `last`, when the page is empty (§2.2).
    pub first: Option<(String, Option<usize>)>,
    /// `<last>uid</last>`: the last item's UID.
    pub last: Option<String>,
    /// `<count/>`: the number of items in the whole set.
    pub count: Option<usize>,
}

impl SetResult {
    /// Reads a `<set/>` from a response.
    pub fn parse(el: &Element) -> Result<SetResult, RsmError> {
        if !el.is("set", ns::RSM) {
            return Err(RsmError::WrongElement);
        }
        let first = match el.get_child("first", ns::RSM) {
            Some(first) => {
                let index = match first.attr("index") {
                    Some(index) => Some(parse_number("first", index)?),
                    None => None,
                };
                Some((first.text(), index))
            }
            None => None,
        };
        Ok(SetResult {
            first,
            last: el.get_child("last", ns::RSM).map(Element::text),
            count: number(el, "count")?,
        })
    }

    /// Writes `<set/>` with first, last and count in that order (XEP-0059's examples).
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("set", ns::RSM);
        if let Some((uid, index)) = &self.first {
            let mut first = text_child("first", uid);
            if let Some(index) = index {
                first.set_attr("index", index.to_string());
            }
            el.push_child(first);
        }
        if let Some(last) = &self.last {
            el.push_child(text_child("last", last));
        }
        if let Some(count) = self.count {
            el.push_child(text_child("count", &count.to_string()));
        }
        el
    }
}

fn text_child(name: &str, text: &str) -> Element {
    Element::new(name, ns::RSM).with_text(text)
}

/// The integer in child `name`, if present. Surrounding whitespace is allowed, as in any
/// XML Schema integer.
fn number(el: &Element, name: &'static str) -> Result<Option<usize>, RsmError> {
    el.get_child(name, ns::RSM)
        .map(|child| parse_number(name, &child.text()))
        .transpose()
}

fn parse_number(element: &'static str, value: &str) -> Result<usize, RsmError> {
    value.trim().parse().map_err(|_| RsmError::NotANumber {
        element,
        value: value.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_stanza;

    fn element(xml: &str) -> Element {
        parse_stanza(xml.as_bytes()).unwrap()
    }

    fn bytes(el: &Element) -> String {
        String::from_utf8(el.to_bytes(ns::CLIENT)).unwrap()
    }

    #[test]
    fn query_round_trips_byte_for_byte() {
        let xml = concat!(
            r#"<set xmlns="http://jabber.org/protocol/rsm"><max>10</max>"#,
            r#"<after>09af3-cc343-b409f</after><before>peter@pixyland.org</before><index>371</index></set>"#
        );
        let query = SetQuery::parse(&element(xml)).unwrap();
        assert_eq!(
            query,
            SetQuery {
                max: Some(10),
                after: Some("09af3-cc343-b409f".to_owned()),
                before: Some(Before::Uid("peter@pixyland.org".to_owned())),
                index: Some(371),
            }
        );
        assert_eq!(bytes(&query.to_element()), xml);
    }

    #[test]
    fn empty_before_asks_for_the_last_page() {
        let xml = r#"<set xmlns="http://jabber.org/protocol/rsm"><max>10</max><before/></set>"#;
        let query = SetQuery::parse(&element(xml)).unwrap();
        assert_eq!(query.before, Some(Before::LastPage));
        assert_eq!((query.after, query.index), (None, None));
        assert_eq!(
            bytes(&SetQuery::parse(&element(xml)).unwrap().to_element()),
            xml
        );
        assert_eq!(
            bytes(&SetQuery::default().to_element()),
            r#"<set xmlns="http://jabber.org/protocol/rsm"/>"#
        );
    }

    #[test]
    fn query_ignores_foreign_children_and_reads_padded_numbers() {
        let xml = concat!(
            r#"<set xmlns="http://jabber.org/protocol/rsm" extra="1"><max> 0 </max>"#,
            r#"<index xmlns="urn:example">x</index><extra/></set>"#
        );
        let query = SetQuery::parse(&element(xml)).unwrap();
        assert_eq!(
            query,
            SetQuery {
                max: Some(0),
                ..SetQuery::default()
            }
        );
    }

    #[test]
    fn finds_the_set_inside_a_query() {
        let query = element(concat!(
            r#"<query xmlns="http://jabber.org/protocol/disco#items">"#,
            r#"<set xmlns="http://jabber.org/protocol/rsm"><max>5</max></set></query>"#
        ));
        assert_eq!(
            SetQuery::from_child_of(&query).unwrap().and_then(|q| q.max),
            Some(5)
        );
        let bare = element(r#"<query xmlns="http://jabber.org/protocol/disco#items"/>"#);
        assert_eq!(SetQuery::from_child_of(&bare), Ok(None));
    }

    #[test]
    fn bad_numbers_and_elements_are_typed_errors() {
        fn not_a_number<T>(element: &'static str, value: &str) -> Result<T, RsmError> {
            Err(RsmError::NotANumber {
                element,
                value: value.to_owned(),
            })
        }
        let rsm = |inner: &str| element(&format!(r#"<set xmlns="{}">{inner}</set>"#, ns::RSM));
        assert_eq!(
            SetQuery::parse(&rsm("<max>ten</max>")),
            not_a_number("max", "ten")
        );
        assert_eq!(
            SetQuery::parse(&rsm("<max>-1</max>")),
            not_a_number("max", "-1")
        );
        assert_eq!(SetQuery::parse(&rsm("<index/>")), not_a_number("index", ""));
        assert_eq!(
            SetResult::parse(&rsm("<count>1e3</count>")),
            not_a_number("count", "1e3")
        );
        assert_eq!(
            SetResult::parse(&rsm(r#"<first index="one">a</first>"#)),
            not_a_number("first", "one")
        );
        let wrong = element(r#"<set xmlns="urn:example"/>"#);
        assert_eq!(SetQuery::parse(&wrong), Err(RsmError::WrongElement));
        assert_eq!(SetResult::parse(&wrong), Err(RsmError::WrongElement));
        assert_eq!(
            SetQuery::parse(&rsm("<max>x</max>"))
                .unwrap_err()
                .to_string(),
            r#"RSM <max/> is not a non-negative integer: "x""#
        );
    }

    #[test]
    fn result_round_trips_byte_for_byte() {
        let xml = concat!(
            r#"<set xmlns="http://jabber.org/protocol/rsm"><first index="20">stpeter@jabber.org</first>"#,
            r#"<last>peterpan@neverland.lit</last><count>800</count></set>"#
        );
        let result = SetResult::parse(&element(xml)).unwrap();
        assert_eq!(
            result,
            SetResult {
                first: Some(("stpeter@jabber.org".to_owned(), Some(20))),
                last: Some("peterpan@neverland.lit".to_owned()),
                count: Some(800),
            }
        );
        assert_eq!(bytes(&result.to_element()), xml);
    }

    #[test]
    fn empty_page_carries_only_the_count() {
        let result = SetResult {
            count: Some(0),
            ..SetResult::default()
        };
        let xml = r#"<set xmlns="http://jabber.org/protocol/rsm"><count>0</count></set>"#;
        assert_eq!(bytes(&result.to_element()), xml);
        assert_eq!(SetResult::parse(&element(xml)), Ok(result));
        let no_index = SetResult {
            first: Some(("a".to_owned(), None)),
            ..SetResult::default()
        };
        assert_eq!(
            bytes(&no_index.to_element()),
            r#"<set xmlns="http://jabber.org/protocol/rsm"><first>a</first></set>"#
        );
    }
}
