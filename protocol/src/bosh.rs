//! The `<body/>` wrapper of BOSH (XEP-0124, XEP-0206): what a client's request says, and the
//! bytes of ours. Wire format only; the sessions live in the server's HTTP layer.
//!
//! Requests are parsed with the protocol crate's stanza parser (the same rules and limits as
//! a stream); the payload stanzas are kept as elements and written into the session's stream
//! by the caller. Responses are built as bytes: the payload is already serialised (relative
//! to the `httpbind` default namespace, so every stanza carries `xmlns='jabber:client'`).

use crate::ns;
use crate::xml::{self, Element, Node};

/// XEP-0124 §4: the namespace of `<body/>`.
pub const NS_HTTPBIND: &str = "http://jabber.org/protocol/httpbind";
/// XEP-0206 §3: the namespace of the `xmpp:version` / `xmpp:restart` attributes.
pub const NS_XBOSH: &str = "urn:xmpp:xbosh";

/// The XEP-0124 version we implement; a response never names a higher one (§7.1).
pub const OUR_VERSION: (u32, u32) = (1, 11);

/// Terminal binding conditions (XEP-0124 §17.2) we send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Each variant is the condition of the same name in XEP-0124 §17.2.
pub enum Condition {
    BadRequest,
    HostUnknown,
    ItemNotFound,
    PolicyViolation,
    RemoteStreamError,
    InternalServerError,
}

impl Condition {
    /// The `condition` attribute's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::BadRequest => "bad-request",
            Condition::HostUnknown => "host-unknown",
            Condition::ItemNotFound => "item-not-found",
            Condition::PolicyViolation => "policy-violation",
            Condition::RemoteStreamError => "remote-stream-error",
            Condition::InternalServerError => "internal-server-error",
        }
    }
}

/// One client request, as far as the connection manager cares.
#[derive(Debug, Default)]
pub struct Request {
    /// The session id, absent on a session creation request (§7.1).
    pub sid: Option<String>,
    /// The request id (§14).
    pub rid: Option<u64>,
    /// `type='terminate'` (§13).
    pub terminate: bool,
    /// `xmpp:restart='true'` (XEP-0206 §5).
    pub restart: bool,
    /// Session creation attributes (§7.1): the domain, ...
    pub to: Option<String>,
    /// ... the longest wait for an answer in seconds, ...
    pub wait: Option<u64>,
    /// ... how many requests the manager may hold, ...
    pub hold: Option<u64>,
    /// ... the client's XEP-0124 version, ...
    pub ver: Option<String>,
    /// ... and `xml:lang`.
    pub lang: Option<String>,
    /// `xmpp:version` (XEP-0206 §4).
    pub xmpp_version: Option<String>,
    /// The stanzas, each in `jabber:client` (or its own namespace, e.g. SASL's).
    pub payload: Vec<Element>,
}

/// Parses a request body. `None` means it is not a well-formed `<body/>` in the httpbind
/// namespace (answered with `bad-request`).
pub fn parse(bytes: &[u8]) -> Option<Request> {
    // The stanza parser reads the body as it would one stanza; the body declares its own
    // default namespace, so the `jabber:client` context of the parser does not leak in.
    let body = xml::parse_stanza(bytes).ok()?;
    if !body.is("body", NS_HTTPBIND) {
        return None;
    }
    let num = |name: &str| body.attr(name).and_then(|v| v.trim().parse::<u64>().ok());
    let text = |name: &str| body.attr(name).map(str::to_owned);
    Some(Request {
        sid: text("sid"),
        rid: num("rid"),
        terminate: body.attr("type") == Some("terminate"),
        restart: xbosh_attr(&body, "restart").is_some_and(|v| v == "true" || v == "1"),
        to: text("to"),
        wait: num("wait"),
        hold: num("hold"),
        ver: text("ver"),
        lang: text("xml:lang"),
        xmpp_version: xbosh_attr(&body, "version").map(str::to_owned),
        payload: body.children().map(requalify).collect(),
    })
}

/// An attribute in the `urn:xmpp:xbosh` namespace, whatever prefix the client bound to it
/// (`xmpp:` in every client seen, but the prefix is the client's choice).
fn xbosh_attr<'a>(body: &'a Element, local: &str) -> Option<&'a str> {
    body.attrs().find_map(|(name, value)| {
        let (prefix, name) = name.split_once(':')?;
        let bound = body.attr(&format!("xmlns:{prefix}")) == Some(NS_XBOSH);
        (bound && name == local).then_some(value)
    })
}

/// COMPAT: a stanza without its own `xmlns` inherits the body's namespace; it is meant to be
/// `jabber:client` (Prosody treats it so), and is rewritten to it, descendants included.
fn requalify(el: &Element) -> Element {
    if el.ns() != NS_HTTPBIND {
        return el.clone();
    }
    let mut out = Element::new(el.name(), ns::CLIENT);
    for (name, value) in el.attrs() {
        out.set_attr(name, value);
    }
    for node in el.nodes() {
        match node {
            Node::Element(child) => out.push_child(requalify(child)),
            Node::Text(text) => out.push_text(text.clone()),
        }
    }
    out
}

/// `ver` of our answer: the lower of the client's and ours (§7.1).
pub fn answer_version(client: Option<&str>) -> String {
    let parsed = client.and_then(|v| {
        let (major, minor) = v.trim().split_once('.')?;
        Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
    });
    let (major, minor) = match parsed {
        Some(v) if v < OUR_VERSION => v,
        _ => OUR_VERSION,
    };
    format!("{major}.{minor}")
}

/// A response `<body/>` with these attributes around `payload` (already serialised).
/// `xmlns:stream` is always declared: features and stream errors use the prefix.
pub fn response(attrs: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + payload.len());
    out.extend_from_slice(b"<body");
    write_attr(&mut out, "xmlns", NS_HTTPBIND);
    write_attr(&mut out, "xmlns:stream", ns::STREAM);
    for (name, value) in attrs {
        write_attr(&mut out, name, value);
    }
    if payload.is_empty() {
        out.extend_from_slice(b"/>");
    } else {
        out.push(b'>');
        out.extend_from_slice(payload);
        out.extend_from_slice(b"</body>");
    }
    out
}

/// `<body type='terminate' condition='…'/>` (§13, §17.2), with whatever was still pending.
pub fn terminate(condition: Option<Condition>, payload: &[u8]) -> Vec<u8> {
    match condition {
        Some(c) => response(&[("type", "terminate"), ("condition", c.as_str())], payload),
        None => response(&[("type", "terminate")], payload),
    }
}

/// Appends one element of the server's stream to a response payload.
pub fn write_payload(out: &mut Vec<u8>, element: &Element) {
    element.write_to(out, NS_HTTPBIND);
}

fn write_attr(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    for c in value.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '"' => out.extend_from_slice(b"&quot;"),
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_request() {
        let req = parse(
            br#"<body content='text/xml; charset=utf-8' hold='1' rid='1573741820' to='example.com'
              ver='1.6' wait='60' xml:lang='en' xmpp:version='1.0'
              xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>"#,
        )
        .unwrap();
        assert_eq!(req.rid, Some(1573741820));
        assert_eq!(req.to.as_deref(), Some("example.com"));
        assert_eq!((req.wait, req.hold), (Some(60), Some(1)));
        assert_eq!(req.xmpp_version.as_deref(), Some("1.0"));
        assert_eq!(req.lang.as_deref(), Some("en"));
        assert!(req.sid.is_none() && !req.restart && !req.terminate && req.payload.is_empty());
    }

    #[test]
    fn restart_with_another_prefix_and_payload() {
        let req = parse(
            b"<body rid='2' sid='s' x:restart='true' xmlns:x='urn:xmpp:xbosh' xmlns='http://jabber.org/protocol/httpbind'/>",
        )
        .unwrap();
        assert!(req.restart);
        let req = parse(
            b"<body rid='3' sid='s' type='terminate' xmlns='http://jabber.org/protocol/httpbind'>\
              <message xmlns='jabber:client' to='a@b'><body>hi</body></message><presence type='unavailable'/></body>",
        )
        .unwrap();
        assert!(req.terminate && !req.restart);
        assert_eq!(req.payload.len(), 2);
        assert!(req.payload[0].is("message", ns::CLIENT));
        // No xmlns of its own: taken as jabber:client, children too.
        assert!(req.payload[1].is("presence", ns::CLIENT));
        assert_eq!(
            req.payload[0].to_bytes(ns::CLIENT),
            b"<message to=\"a@b\"><body>hi</body></message>"
        );
    }

    #[test]
    fn not_a_body() {
        assert!(parse(b"<body rid='1'/>").is_none());
        assert!(parse(b"<x xmlns='http://jabber.org/protocol/httpbind'/>").is_none());
        assert!(parse(b"<body xmlns='http://jabber.org/protocol/httpbind'>").is_none());
        assert!(parse(b"").is_none());
    }

    #[test]
    fn versions() {
        assert_eq!(answer_version(Some("1.6")), "1.6");
        assert_eq!(answer_version(Some("1.12")), "1.11");
        assert_eq!(answer_version(Some("2.0")), "1.11");
        assert_eq!(answer_version(None), "1.11");
        assert_eq!(answer_version(Some("junk")), "1.11");
    }

    #[test]
    fn responses() {
        assert_eq!(
            String::from_utf8(terminate(Some(Condition::ItemNotFound), b"")).unwrap(),
            r#"<body xmlns="http://jabber.org/protocol/httpbind" xmlns:stream="http://etherx.jabber.org/streams" type="terminate" condition="item-not-found"/>"#
        );
        let mut payload = Vec::new();
        write_payload(
            &mut payload,
            &Element::new("message", ns::CLIENT).with_attr("to", "a&b"),
        );
        write_payload(
            &mut payload,
            &Element::new("features", ns::STREAM).with_child(Element::new("bind", ns::BIND)),
        );
        assert_eq!(
            String::from_utf8(response(&[("sid", "x\"y")], &payload)).unwrap(),
            concat!(
                r#"<body xmlns="http://jabber.org/protocol/httpbind" xmlns:stream="http://etherx.jabber.org/streams" sid="x&quot;y">"#,
                r#"<message xmlns="jabber:client" to="a&amp;b"/>"#,
                r#"<stream:features><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></stream:features></body>"#
            )
        );
    }
}
