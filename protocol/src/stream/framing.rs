//! XMPP over WebSocket (RFC 7395): reading the client's messages as stream events.
//!
//! There is no stream document on a WebSocket: every message is one complete element,
//! parsable on its own with its namespace declarations (§3.3.2). The stream header is an
//! empty `<open/>` and the closing tag a `<close/>`, both in the framing namespace
//! (§3.3.1), and a restart is a new `<open/>` (§3.3.3). [`FrameReader`] turns each message
//! into the same [`Event`] a TCP stream yields, so nothing above the stream layer can tell
//! the two apart; the server's side of the framing is [`super::server_header`] and
//! [`super::stream_close`] with [`Dialect::WebSocket`].
//!
//! Each message is parsed once, by the same reader (and under the same [`Limits`]) as a TCP
//! stream: a stream that stays open for the whole connection, fed one message at a time,
//! which must end exactly at an element's end.

use super::error::{StreamCondition, StreamError};
use super::header::{check_version, Dialect, StreamHeader};
use crate::ns;
use crate::xml::reader::{Event, Limits, StreamReader};
use crate::xml::Element;

/// The stream every message is read in: `jabber:client` by default, so a stanza that omits
/// its `xmlns` (which §3.3.2 requires) is still read as a client stanza, as Prosody does.
const FRAME_STREAM: &[u8] = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

/// Reads one WebSocket connection's messages.
#[derive(Debug)]
pub struct FrameReader {
    reader: StreamReader,
}

impl FrameReader {
    /// A reader for a new connection; `limits` apply to every message as to a stanza.
    pub fn new(limits: Limits) -> FrameReader {
        // The synthetic header must fit whatever header budget the caller set.
        let limits = Limits {
            max_header_bytes: limits.max_header_bytes.max(FRAME_STREAM.len()),
            ..limits
        };
        let mut reader = StreamReader::new(limits);
        reader.feed(FRAME_STREAM);
        let opened = matches!(reader.next_event(), Ok(Some(Event::Header(_))));
        debug_assert!(opened, "the framing stream header is well-formed");
        FrameReader { reader }
    }

    /// The event one text message carries; `Ok(None)` for a message of whitespace only
    /// (nothing to act on). A message that is not exactly one complete element is
    /// `not-well-formed`: §3.3.2 makes every message a standalone document.
    pub fn read(&mut self, message: &[u8]) -> Result<Option<Event>, StreamError> {
        self.reader.feed(skip_declaration(message)?);
        let event = self.reader.next_event()?;
        // Whatever follows the element (or a partial element) breaks the framing.
        if self.reader.next_event()?.is_some() || self.reader.buffered_len() > 0 {
            return Err(StreamError::with_text(
                StreamCondition::NotWellFormed,
                "a WebSocket message must be exactly one complete element (RFC 7395 §3.3.2)",
            ));
        }
        Ok(match event {
            Some(Event::Stanza(el)) => Some(framed(el)?),
            // The synthetic stream is never closed or reopened by a message.
            other => other,
        })
    }

    /// Releases buffer capacity while the connection is idle.
    pub fn shrink_to_fit(&mut self) {
        self.reader.shrink_to_fit();
    }
}

/// An XML declaration may start a message (§3.3.2: not recommended, not forbidden).
fn skip_declaration(message: &[u8]) -> Result<&[u8], StreamError> {
    let trimmed = message.trim_ascii_start();
    if !trimmed.starts_with(b"<?xml") {
        return Ok(message);
    }
    let end = trimmed
        .windows(2)
        .position(|w| w == b"?>")
        .ok_or_else(|| StreamError::new(StreamCondition::NotWellFormed))?;
    Ok(&trimmed[end + 2..])
}

/// `<open/>` and `<close/>` become the header and the close; anything else is a stanza.
fn framed(el: Element) -> Result<Event, StreamError> {
    if el.ns() != ns::FRAMING {
        return Ok(Event::Stanza(el));
    }
    if !el.nodes().is_empty() {
        return Err(StreamError::with_text(
            StreamCondition::BadFormat,
            "framing elements are empty",
        ));
    }
    match el.name() {
        "open" => open_header(&el).map(Event::Header),
        "close" => Ok(Event::Close),
        _ => Err(StreamError::with_text(
            StreamCondition::BadFormat,
            "unknown element in the framing namespace",
        )),
    }
}

/// RFC 7395 §3.4: `<open/>` carries the attributes of the `<stream>` header (RFC 6120
/// §4.7), with the same meaning and checks.
fn open_header(el: &Element) -> Result<StreamHeader, StreamError> {
    let header = StreamHeader {
        dialect: Dialect::WebSocket,
        to: el.attr("to").map(str::to_owned),
        from: el.attr("from").map(str::to_owned),
        id: el.attr("id").map(str::to_owned),
        version: el.attr("version").map(str::to_owned),
        lang: el.attr("xml:lang").map(str::to_owned),
        // An empty element that opens the stream, as a Flash self-closed header does.
        self_closed: false,
    };
    if let Some(v) = &header.version {
        check_version(v)?;
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{server_header, stream_close};

    fn reader() -> FrameReader {
        FrameReader::new(Limits::default())
    }

    #[test]
    fn open_is_the_header() {
        let mut r = reader();
        let ev = r.read(br#"<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.com" version="1.0" xml:lang="fr"/>"#);
        let Ok(Some(Event::Header(h))) = ev else {
            panic!("{ev:?}")
        };
        assert_eq!(h.dialect, Dialect::WebSocket);
        assert_eq!(h.to.as_deref(), Some("example.com"));
        assert_eq!(h.version.as_deref(), Some("1.0"));
        assert_eq!(h.lang.as_deref(), Some("fr"));
        // A restart is just another <open/>, with a declaration this time.
        let again = r.read(b"<?xml version='1.0'?>\n<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>");
        assert!(matches!(again, Ok(Some(Event::Header(_)))), "{again:?}");
    }

    #[test]
    fn close_and_stanzas() {
        let mut r = reader();
        assert_eq!(
            r.read(br#"<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>"#),
            Ok(Some(Event::Close))
        );
        let ev = r.read(br#"<message xmlns="jabber:client" to="a@b"><body>hi</body></message>"#);
        let Ok(Some(Event::Stanza(el))) = ev else {
            panic!("{ev:?}")
        };
        assert!(el.is("message", ns::CLIENT));
        assert_eq!(el.attr("to"), Some("a@b"));
        // Lenient like Prosody: a stanza without xmlns is still jabber:client.
        let ev = r.read(b"<presence/>");
        assert!(matches!(ev, Ok(Some(Event::Stanza(el))) if el.is("presence", ns::CLIENT)));
        let ev = r.read(
            br#"<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">AGEAYg==</auth>"#,
        );
        assert!(matches!(ev, Ok(Some(Event::Stanza(el))) if el.is("auth", ns::SASL)));
        assert_eq!(r.read(b" \n "), Ok(None));
    }

    #[test]
    fn a_message_is_one_complete_element() {
        for bad in [
            &b"<message xmlns='jabber:client'><body>hi</body>"[..],
            b"<presence/><presence/>",
            b"<presence/>trailing",
            b"<message><body>x</message>",
            b"not xml",
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' version='2.0'/>",
            b"<bogus xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
        ] {
            let mut r = reader();
            assert!(r.read(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn server_side_forms() {
        let open = server_header(&Dialect::WebSocket, "example.com", "x1", None, true, "en");
        assert_eq!(
            String::from_utf8(open).unwrap(),
            r#"<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" id="x1" from="example.com" version="1.0" xml:lang="en"/>"#
        );
        assert_eq!(
            stream_close(&Dialect::WebSocket),
            br#"<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>"#
        );
    }
}
