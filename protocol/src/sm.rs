//! XEP-0198: Stream Management (version 1.6.1) — the nonzas that turn acknowledgements and
//! resumption on, count stanzas, and resume a session on a new stream. Counts are the
//! protocol's unsigned 32-bit integers, which wrap (§4).

use crate::ns;
use crate::stanza::Condition;
use crate::xml::Element;

/// A stream management nonza from the client, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientNonza {
    /// `<enable/>` (§3): `resume` asks for a resumable session, `max` is the client's
    /// preferred longest wait in seconds.
    Enable {
        /// Resumption asked for.
        resume: bool,
        /// The client's preferred longest wait, in seconds.
        max: Option<u32>,
    },
    /// `<resume/>` (§5): the session to take over and how many of its stanzas the client
    /// handled.
    Resume {
        /// The `id` of the earlier `<enabled/>`.
        previd: String,
        /// Stanzas from us the client handled.
        h: u32,
    },
    /// `<r/>`: a request for our count of handled stanzas.
    Request,
    /// `<a/>`: the client's count of stanzas it handled.
    Answer {
        /// Stanzas from us the client handled.
        h: u32,
    },
}

/// Why a nonza in the XEP-0198 namespace could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SmError {
    /// An element of the namespace that clients do not send.
    #[error("not a stream management element the client sends: <{0}/>")]
    Unknown(String),
    /// A count that is missing or not an unsigned 32-bit integer.
    #[error("<{0}/> without a valid 'h'")]
    BadCount(&'static str),
    /// A resumption that names no session.
    #[error("<resume/> without 'previd'")]
    MissingPrevid,
}

/// §2: booleans are xs:boolean.
fn boolean(value: Option<&str>) -> bool {
    matches!(value, Some("true" | "1"))
}

fn count(el: &Element, name: &'static str) -> Result<u32, SmError> {
    el.attr("h")
        .and_then(|h| h.parse().ok())
        .ok_or(SmError::BadCount(name))
}

impl ClientNonza {
    /// Reads an element known to be in [`ns::SM`].
    pub fn parse(el: &Element) -> Result<ClientNonza, SmError> {
        match el.name() {
            "enable" => Ok(ClientNonza::Enable {
                resume: boolean(el.attr("resume")),
                max: el.attr("max").and_then(|m| m.parse().ok()),
            }),
            "resume" => Ok(ClientNonza::Resume {
                previd: el
                    .attr("previd")
                    .filter(|id| !id.is_empty())
                    .ok_or(SmError::MissingPrevid)?
                    .to_owned(),
                h: count(el, "resume")?,
            }),
            "r" => Ok(ClientNonza::Request),
            "a" => Ok(ClientNonza::Answer { h: count(el, "a")? }),
            other => Err(SmError::Unknown(other.to_owned())),
        }
    }
}

/// The stream feature (§3).
pub fn feature() -> Element {
    Element::new("sm", ns::SM)
}

/// `<enabled/>`: acknowledgements are on; with an `id`, the session can be resumed under it
/// for `max` seconds after its stream is lost.
pub fn enabled(resumption: Option<(&str, u32)>) -> Element {
    let mut el = Element::new("enabled", ns::SM);
    if let Some((id, max)) = resumption {
        el.set_attr("id", id);
        el.set_attr("resume", "true");
        el.set_attr("max", max.to_string());
    }
    el
}

/// `<resumed/>` (§5): the session `previd` goes on here; `h` stanzas of the client's were
/// handled.
pub fn resumed(previd: &str, h: u32) -> Element {
    Element::new("resumed", ns::SM)
        .with_attr("previd", previd)
        .with_attr("h", h.to_string())
}

/// `<failed/>` with a stanza error condition (§3, §5), and our count when we know it.
pub fn failed(condition: Condition, h: Option<u32>) -> Element {
    let mut el = Element::new("failed", ns::SM);
    if let Some(h) = h {
        el.set_attr("h", h.to_string());
    }
    el.push_child(Element::new(condition.as_str(), ns::STANZAS));
    el
}

/// `<r/>`.
pub fn request() -> Element {
    Element::new("r", ns::SM)
}

/// `<a h=''/>`.
pub fn answer(h: u32) -> Element {
    Element::new("a", ns::SM).with_attr("h", h.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_stanza;

    fn read(xml: &str) -> Result<ClientNonza, SmError> {
        ClientNonza::parse(&parse_stanza(xml.as_bytes()).unwrap())
    }

    #[test]
    fn reads_what_clients_send() {
        let sm = "xmlns='urn:xmpp:sm:3'";
        assert_eq!(
            read(&format!("<enable {sm} resume='true' max='120'/>")),
            Ok(ClientNonza::Enable {
                resume: true,
                max: Some(120)
            })
        );
        assert_eq!(
            read(&format!("<enable {sm}/>")),
            Ok(ClientNonza::Enable {
                resume: false,
                max: None
            })
        );
        assert_eq!(
            read(&format!("<enable {sm} resume='1'/>")),
            Ok(ClientNonza::Enable {
                resume: true,
                max: None
            })
        );
        assert_eq!(
            read(&format!("<resume {sm} previd='abc' h='4294967295'/>")),
            Ok(ClientNonza::Resume {
                previd: "abc".into(),
                h: u32::MAX
            })
        );
        assert_eq!(read(&format!("<r {sm}/>")), Ok(ClientNonza::Request));
        assert_eq!(
            read(&format!("<a {sm} h='7'/>")),
            Ok(ClientNonza::Answer { h: 7 })
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let sm = "xmlns='urn:xmpp:sm:3'";
        assert_eq!(
            read(&format!("<a {sm} h='-1'/>")),
            Err(SmError::BadCount("a"))
        );
        assert_eq!(
            read(&format!("<a {sm} h='4294967296'/>")),
            Err(SmError::BadCount("a"))
        );
        assert_eq!(
            read(&format!("<resume {sm} h='1'/>")),
            Err(SmError::MissingPrevid)
        );
        assert_eq!(
            read(&format!("<enabled {sm}/>")),
            Err(SmError::Unknown("enabled".into()))
        );
    }

    #[test]
    fn writes_the_servers_answers() {
        assert_eq!(
            String::from_utf8(enabled(Some(("x1", 300))).to_bytes(ns::CLIENT)).unwrap(),
            "<enabled xmlns=\"urn:xmpp:sm:3\" id=\"x1\" resume=\"true\" max=\"300\"/>"
        );
        assert_eq!(
            String::from_utf8(failed(Condition::ItemNotFound, Some(3)).to_bytes(ns::CLIENT))
                .unwrap(),
            "<failed xmlns=\"urn:xmpp:sm:3\" h=\"3\">\
             <item-not-found xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></failed>"
        );
        assert_eq!(
            String::from_utf8(resumed("x1", 9).to_bytes(ns::CLIENT)).unwrap(),
            "<resumed xmlns=\"urn:xmpp:sm:3\" previd=\"x1\" h=\"9\"/>"
        );
    }
}
