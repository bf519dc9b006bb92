//! XEP-0313: Message Archive Management (version 1.1.3) — the archive query and its form,
//! the `<result/>` wrapper of each archived message, the `<fin/>` that ends a page, and
//! the `<prefs/>` element (§6); with XEP-0359's `<stanza-id/>` (version 0.7.0), the id
//! under which an archive keeps a message.

use crate::delay::{parse_datetime, DateTimeError, Delay};
use crate::forms::{DataForm, Field, FieldType, FormError, FormType};
use crate::ns;
use crate::rsm::{RsmError, SetQuery, SetResult};
use crate::xml::Element;

/// Why an archive query could not be used (answered with `bad-request`, or
/// `feature-not-implemented` for [`MamError::UnsupportedField`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MamError {
    /// The `<x/>` is no usable data form.
    #[error(transparent)]
    Form(#[from] FormError),
    /// A form whose FORM_TYPE is not `urn:xmpp:mam:2` (§4).
    #[error("unexpected FORM_TYPE {0:?}")]
    FormType(String),
    /// A field this server does not filter by (e.g. `{urn:xmpp:fulltext:0}fulltext`).
    #[error("unsupported field {0:?}")]
    UnsupportedField(String),
    /// `start` or `end` is no XEP-0082 DateTime.
    #[error("{field}: {error}")]
    Date {
        /// The field.
        field: &'static str,
        /// What was wrong with its value.
        error: DateTimeError,
    },
    /// The `<set/>` is no usable XEP-0059 request.
    #[error(transparent)]
    Rsm(#[from] RsmError),
    /// A `<prefs/>` with a `default` other than always, never or roster.
    #[error("unknown default {0:?}")]
    Default(String),
}

/// A client's `<query xmlns='urn:xmpp:mam:2'/>` (§4), its form read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MamQuery {
    /// Echoed in every result (`queryid`).
    pub queryid: Option<String>,
    /// `with`: a bare JID (every resource) or a full one (that resource), as sent.
    pub with: Option<String>,
    /// `start` and `end` (XEP-0082), Unix seconds.
    pub start: Option<i64>,
    /// See `start`.
    pub end: Option<i64>,
    /// The `urn:xmpp:mam:2#extended` fields (before-id, after-id, ids).
    pub before_id: Option<String>,
    /// Only messages after this archive id.
    pub after_id: Option<String>,
    /// Only messages with these archive ids.
    pub ids: Option<Vec<String>>,
    /// XEP-0059 paging.
    pub set: Option<SetQuery>,
    /// `<flip-page/>` (`urn:xmpp:mam:2#extended`): the page's messages in the other order.
    pub flip_page: bool,
}

/// The fields the query form of [`query_form`] offers, besides FORM_TYPE.
const FIELDS: &[&str] = &["with", "start", "end", "before-id", "after-id", "ids"];

impl MamQuery {
    /// Reads a `<query/>`.
    pub fn parse(query: &Element) -> Result<MamQuery, MamError> {
        let mut parsed = MamQuery {
            queryid: query.attr("queryid").map(str::to_owned),
            set: SetQuery::from_child_of(query)?,
            flip_page: query.get_child("flip-page", ns::MAM).is_some(),
            ..MamQuery::default()
        };
        let Some(x) = query.get_child("x", ns::DATA_FORMS) else {
            return Ok(parsed);
        };
        let form = DataForm::parse(x)?;
        match form.form_type_field() {
            Some(ns::MAM) | None => {}
            Some(other) => return Err(MamError::FormType(other.to_owned())),
        }
        for field in &form.fields {
            let var = field.var.as_deref().unwrap_or_default();
            if var == crate::forms::FORM_TYPE {
                continue;
            }
            if !FIELDS.contains(&var) {
                return Err(MamError::UnsupportedField(var.to_owned()));
            }
            // An empty field filters nothing (clients send the whole form back).
            let Some(value) = field.value().filter(|v| !v.is_empty()) else {
                continue;
            };
            match var {
                "with" => parsed.with = Some(value.to_owned()),
                "start" => parsed.start = Some(date("start", value)?),
                "end" => parsed.end = Some(date("end", value)?),
                "before-id" => parsed.before_id = Some(value.to_owned()),
                "after-id" => parsed.after_id = Some(value.to_owned()),
                _ => parsed.ids = Some(field.values.clone()),
            }
        }
        Ok(parsed)
    }
}

fn date(field: &'static str, value: &str) -> Result<i64, MamError> {
    parse_datetime(value).map_err(|error| MamError::Date { field, error })
}

/// The form a `type='get'` query answers with ("Retrieving form fields"): the fields
/// this server filters by.
pub fn query_form() -> Element {
    let form = DataForm::new(FormType::Form)
        .with_form_type(ns::MAM)
        .with_field(Field::new("with").with_type(FieldType::JidSingle))
        .with_field(Field::new("start").with_type(FieldType::TextSingle))
        .with_field(Field::new("end").with_type(FieldType::TextSingle))
        .with_field(Field::new("before-id").with_type(FieldType::TextSingle))
        .with_field(Field::new("after-id").with_type(FieldType::TextSingle))
        .with_field(Field::new("ids").with_type(FieldType::ListMulti));
    Element::new("query", ns::MAM).with_child(form.to_element())
}

/// The `<result/>` a result message carries ("Query results"): the archived `message`, forwarded
/// (XEP-0297) with the time it was archived.
pub fn result(queryid: Option<&str>, id: &str, stamp: i64, message: Element) -> Element {
    let mut result = Element::new("result", ns::MAM);
    if let Some(queryid) = queryid {
        result.set_attr("queryid", queryid);
    }
    result.set_attr("id", id);
    let delay = Delay {
        from: None,
        stamp,
        reason: None,
    };
    result.with_child(
        Element::new("forwarded", ns::FORWARD)
            .with_child(delay.to_element())
            .with_child(message),
    )
}

/// The `<fin/>` of the IQ result that ends a page ("Query results"): whether the page reached the
/// end of the results in the direction of paging, and the page's first and last ids.
pub fn fin(complete: bool, set: &SetResult) -> Element {
    let mut fin = Element::new("fin", ns::MAM);
    if complete {
        fin.set_attr("complete", "true");
    }
    fin.with_child(set.to_element())
}

/// XEP-0359 `<stanza-id by='…' id='…'/>`.
pub fn stanza_id(by: &str, id: &str) -> Element {
    Element::new("stanza-id", ns::SID)
        .with_attr("by", by)
        .with_attr("id", id)
}

/// Removes every `<stanza-id/>` whose `by` is one of `claims` (XEP-0359 §3: only the
/// entity named may have put it there, so one that arrives from elsewhere is a spoof);
/// true if one was removed.
pub fn strip_stanza_ids(message: &mut Element, claims: &[&str]) -> bool {
    let spoofed = |e: &Element| {
        e.is("stanza-id", ns::SID) && e.attr("by").is_some_and(|by| claims.contains(&by))
    };
    if !message.children().any(spoofed) {
        return false;
    }
    message.retain_children(|e| !spoofed(e));
    true
}

/// The default of `<prefs/>` (§6): archive messages with any JID, none, or those in the
/// roster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultRule {
    /// Every message.
    Always,
    /// None.
    Never,
    /// Those with a JID in the roster.
    Roster,
}

impl DefaultRule {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultRule::Always => "always",
            DefaultRule::Never => "never",
            DefaultRule::Roster => "roster",
        }
    }

    /// The rule an attribute value names.
    pub fn from_name(name: &str) -> Option<DefaultRule> {
        match name {
            "always" => Some(DefaultRule::Always),
            "never" => Some(DefaultRule::Never),
            "roster" => Some(DefaultRule::Roster),
            _ => None,
        }
    }
}

/// `<prefs xmlns='urn:xmpp:mam:2'/>` (§6): the default, and the bare JIDs always or never
/// archived whatever it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefs {
    /// For JIDs in neither list.
    pub default: DefaultRule,
    /// Bare JIDs whose messages are archived.
    pub always: Vec<String>,
    /// Bare JIDs whose messages are not.
    pub never: Vec<String>,
}

impl Prefs {
    /// Reads a `<prefs/>` (no `default`: always).
    pub fn parse(el: &Element) -> Result<Prefs, MamError> {
        let default = el.attr("default").unwrap_or("always");
        let default =
            DefaultRule::from_name(default).ok_or_else(|| MamError::Default(default.to_owned()))?;
        let jids = |name: &str| -> Vec<String> {
            el.get_child(name, ns::MAM)
                .map(|list| {
                    list.children()
                        .filter(|j| j.is("jid", ns::MAM))
                        .map(|j| j.text().trim().to_owned())
                        .filter(|j| !j.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(Prefs {
            default,
            always: jids("always"),
            never: jids("never"),
        })
    }

    /// Written with both lists, empty or not: the server says all it has.
    pub fn to_element(&self) -> Element {
        let list = |name: &str, jids: &[String]| {
            let mut list = Element::new(name, ns::MAM);
            for jid in jids {
                list.push_child(Element::new("jid", ns::MAM).with_text(jid.as_str()));
            }
            list
        };
        Element::new("prefs", ns::MAM)
            .with_attr("default", self.default.as_str())
            .with_child(list("always", &self.always))
            .with_child(list("never", &self.never))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_stanza;

    fn element(xml: &str) -> Element {
        parse_stanza(xml.as_bytes()).unwrap()
    }

    #[test]
    fn query_reads_the_form_and_the_set() {
        let query = element(concat!(
            r#"<query xmlns="urn:xmpp:mam:2" queryid="q1"><x xmlns="jabber:x:data" type="submit">"#,
            r#"<field var="FORM_TYPE" type="hidden"><value>urn:xmpp:mam:2</value></field>"#,
            r#"<field var="with"><value>juliet@capulet.lit</value></field>"#,
            r#"<field var="start"><value>2010-06-07T00:00:00Z</value></field>"#,
            r#"<field var="end"><value/></field>"#,
            r#"<field var="ids"><value>a</value><value>b</value></field></x>"#,
            r#"<set xmlns="http://jabber.org/protocol/rsm"><max>10</max><before/></set>"#,
            r#"<flip-page/></query>"#
        ));
        let q = MamQuery::parse(&query).unwrap();
        assert_eq!(q.queryid.as_deref(), Some("q1"));
        assert_eq!(q.with.as_deref(), Some("juliet@capulet.lit"));
        assert_eq!(q.start, Some(1_275_868_800));
        assert_eq!(q.end, None);
        assert_eq!(q.ids, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(q.set.unwrap().max, Some(10));
        assert!(q.flip_page);
    }

    #[test]
    fn bad_queries_are_typed_errors() {
        let with_field = |var: &str, value: &str| {
            element(&format!(
                r#"<query xmlns="urn:xmpp:mam:2"><x xmlns="jabber:x:data" type="submit"><field var="{var}"><value>{value}</value></field></x></query>"#
            ))
        };
        assert_eq!(
            MamQuery::parse(&with_field("fulltext", "hi")),
            Err(MamError::UnsupportedField("fulltext".to_owned()))
        );
        assert!(matches!(
            MamQuery::parse(&with_field("start", "yesterday")),
            Err(MamError::Date { field: "start", .. })
        ));
        assert_eq!(
            MamQuery::parse(&with_field("FORM_TYPE", "urn:xmpp:mam:1")),
            Err(MamError::FormType("urn:xmpp:mam:1".to_owned()))
        );
    }

    #[test]
    fn result_forwards_the_message_with_its_stamp() {
        let message = Element::new("message", ns::CLIENT).with_attr("id", "m");
        let result = result(Some("q"), "abc", 1_700_000_000, message.clone());
        let forwarded = result.get_child("forwarded", ns::FORWARD).unwrap();
        assert_eq!(result.attr("id"), Some("abc"));
        assert_eq!(
            forwarded
                .get_child("delay", ns::DELAY)
                .and_then(|d| d.attr("stamp")),
            Some("2023-11-14T22:13:20Z")
        );
        assert_eq!(forwarded.get_child("message", ns::CLIENT), Some(&message));
    }

    #[test]
    fn only_stanza_ids_by_the_claimed_entities_are_removed() {
        let mut message = Element::new("message", ns::CLIENT)
            .with_child(stanza_id("bob@x", "spoof"))
            .with_child(stanza_id("room@muc.x", "kept"))
            .with_child(stanza_id("x", "spoof-too"));
        assert!(strip_stanza_ids(&mut message, &["bob@x", "x"]));
        let left: Vec<_> = message.children().filter_map(|c| c.attr("id")).collect();
        assert_eq!(left, ["kept"]);
        assert!(!strip_stanza_ids(&mut message, &["bob@x"]));
    }

    #[test]
    fn prefs_round_trip() {
        let xml = concat!(
            r#"<prefs xmlns="urn:xmpp:mam:2" default="roster"><always><jid>a@x</jid></always>"#,
            r#"<never><jid>b@x</jid><jid>c@x</jid></never></prefs>"#
        );
        let prefs = Prefs::parse(&element(xml)).unwrap();
        assert_eq!(prefs.default, DefaultRule::Roster);
        assert_eq!(prefs.never, ["b@x", "c@x"]);
        assert_eq!(prefs.to_element().to_bytes(ns::CLIENT), xml.as_bytes());
        assert_eq!(
            Prefs::parse(&element(
                r#"<prefs xmlns="urn:xmpp:mam:2" default="sometimes"/>"#
            )),
            Err(MamError::Default("sometimes".to_owned()))
        );
    }
}
