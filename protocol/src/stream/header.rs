//! The stream header: reading the peer's, writing ours (RFC 6120 §4.7), in two dialects.

use super::error::{StreamCondition, StreamError};
use crate::ns;
use crate::xml::scope::Scope;
use crate::xml::tree::StartTag;
use crate::xml::writer::write_attr;

/// Which stream framing the peer speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Standard `<stream:stream>` (RFC 6120).
    Xmpp,
    /// Flash XMLSocket: `<flash:stream>`, every unit terminated by a NUL byte (also a
    /// `<stream:stream>` header followed by a NUL: a standard header sent by XMLSocket).
    Flash,
    /// XMPP over WebSocket (RFC 7395): `<open/>` and `<close/>` in the framing namespace,
    /// one complete element per WebSocket message ([`super::framing`]).
    WebSocket,
}

/// What the peer's stream header said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamHeader {
    /// The framing the header used.
    pub dialect: Dialect,
    /// `to`: the domain the client wants to reach (RFC 6120 §4.7.2).
    pub to: Option<String>,
    /// `from`: the client's claimed address (RFC 6120 §4.7.1).
    pub from: Option<String>,
    /// `id`: should be absent from a client (RFC 6120 §4.7.3); reported as sent.
    pub id: Option<String>,
    /// `version`: `None` means a pre-XMPP-1.0 stream without features (RFC 6120 §4.7.5).
    pub version: Option<String>,
    /// `xml:lang` (RFC 6120 §4.7.4).
    pub lang: Option<String>,
    /// The header was written as an empty element `<… />`.
    ///
    /// COMPAT: jadc2s-era Flash clients and XIFF's "terminated" stream types (standard or
    /// Flash) self-close the header because their parser wants complete documents; it
    /// still opens the stream.
    pub self_closed: bool,
}

/// Validates a parsed header start tag and returns the header plus the namespace scope its
/// declarations establish for the rest of the stream.
///
/// `content` is the content namespace the stream must declare (RFC 6120 §4.8.2):
/// `jabber:client` on client streams, `jabber:server` on server-to-server streams.
pub(crate) fn from_start_tag(
    tag: &StartTag,
    content: &str,
) -> Result<(StreamHeader, Scope), StreamError> {
    let mut scope = Scope::new();
    scope.push_declarations(&tag.attrs)?;
    let (prefix, local) = tag.split_name();
    let root_ns = match scope.resolve(prefix) {
        Some(uri) => uri,
        // Unprefixed with no default namespace: in no namespace, hence not a stream.
        None if prefix.is_empty() => "",
        // COMPAT: hand-written widgets send `<flash:stream>` without `xmlns:flash`; the
        // prefix alone says Flash (Openfire's rule goes by the prefix too), as the stream
        // prefix is implied for their stanzas below.
        None if prefix == "flash" => ns::FLASH,
        None => return Err(StreamError::new(StreamCondition::BadNamespacePrefix)),
    };

    // Openfire's rule (flash-protocol.md §3): the `flash` prefix bound to the Flash or the
    // stream namespace marks a Flash client.
    let dialect = if prefix == "flash" && (root_ns == ns::FLASH || root_ns == ns::STREAM) {
        Dialect::Flash
    } else if root_ns == ns::STREAM {
        Dialect::Xmpp
    } else {
        return Err(invalid_namespace(
            "stream root is not in the stream namespace",
        ));
    };
    if local != "stream" {
        return Err(invalid_namespace("stream root must be named 'stream'"));
    }
    // RFC 6120 §4.8.2: a c2s stream's content namespace is jabber:client, an s2s
    // stream's jabber:server.
    if scope.resolve("") != Some(content) {
        return Err(invalid_namespace(if content == ns::SERVER {
            "content namespace must be jabber:server"
        } else {
            "content namespace must be jabber:client"
        }));
    }
    if dialect == Dialect::Flash && scope.resolve("stream").is_none() {
        // COMPAT: XIFF never declares xmlns:stream, yet stanzas such as <stream:error> may
        // use the prefix; bind it as every other Flash-aware server did.
        scope.imply_stream_prefix();
    }

    let header = StreamHeader {
        dialect,
        to: tag.attr("to").map(str::to_owned),
        from: tag.attr("from").map(str::to_owned),
        id: tag.attr("id").map(str::to_owned),
        version: tag.attr("version").map(str::to_owned),
        lang: tag.attr("xml:lang").map(str::to_owned),
        self_closed: tag.self_closed,
    };
    if let Some(v) = &header.version {
        check_version(v)?;
    }
    Ok((header, scope))
}

fn invalid_namespace(text: &str) -> StreamError {
    StreamError::with_text(StreamCondition::InvalidNamespace, text)
}

/// RFC 6120 §4.7.5: we speak 1.x; a higher major version cannot be understood.
pub(crate) fn check_version(v: &str) -> Result<(), StreamError> {
    let unsupported = || StreamError::with_text(StreamCondition::UnsupportedVersion, v);
    let (major, minor) = v.split_once('.').ok_or_else(unsupported)?;
    let is_num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !is_num(major) || !is_num(minor) {
        return Err(unsupported());
    }
    // Leading zeros are allowed by §4.7.5 ("01.0"); compare numerically without overflow.
    let major = major.trim_start_matches('0');
    if major.len() > 1 || major > "1" {
        return Err(unsupported());
    }
    Ok(())
}

/// The server's stream header, bytes ready to send (RFC 6120 §4.7, §4.8).
///
/// `version` adds `version="1.0"`; pass it only when the client sent a version, since a
/// pre-1.0 client expects no features (RFC 6120 §4.7.5). Flash output is exactly the
/// Openfire form (flash-protocol.md §2b) that XIFF was tested against; the NUL terminator is
/// the caller's job, as it is appended to every write.
pub fn server_header(
    dialect: &Dialect,
    from: &str,
    id: &str,
    to: Option<&str>,
    version: bool,
    lang: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    match dialect {
        Dialect::Xmpp => {
            out.extend_from_slice(b"<?xml version='1.0'?><stream:stream");
            write_attr(&mut out, "xmlns", ns::CLIENT);
            write_attr(&mut out, "xmlns:stream", ns::STREAM);
            write_attr(&mut out, "id", id);
            write_attr(&mut out, "from", from);
            if let Some(to) = to {
                write_attr(&mut out, "to", to);
            }
            if version {
                write_attr(&mut out, "version", "1.0");
            }
            write_attr(&mut out, "xml:lang", lang);
        }
        Dialect::Flash => {
            out.extend_from_slice(b"<?xml version='1.0' encoding='UTF-8'?><flash:stream");
            write_attr(&mut out, "xmlns:flash", ns::FLASH);
            // Declared so that <stream:features> and <stream:error> are bound (§2b notes).
            write_attr(&mut out, "xmlns:stream", ns::STREAM);
            write_attr(&mut out, "xmlns", ns::CLIENT);
            write_attr(&mut out, "from", from);
            write_attr(&mut out, "id", id);
            if let Some(to) = to {
                write_attr(&mut out, "to", to);
            }
            write_attr(&mut out, "xml:lang", lang);
            if version {
                write_attr(&mut out, "version", "1.0");
            }
        }
        Dialect::WebSocket => {
            // RFC 7395 §3.4: the attributes of RFC 6120 §4.7 on an empty <open/>, no XML
            // declaration (§3.3.2: not recommended, every message is UTF-8 already).
            out.extend_from_slice(b"<open");
            write_attr(&mut out, "xmlns", ns::FRAMING);
            write_attr(&mut out, "id", id);
            write_attr(&mut out, "from", from);
            if let Some(to) = to {
                write_attr(&mut out, "to", to);
            }
            if version {
                write_attr(&mut out, "version", "1.0");
            }
            write_attr(&mut out, "xml:lang", lang);
            out.extend_from_slice(b"/>");
            return out;
        }
    }
    out.push(b'>');
    out
}

/// Our header on a server-to-server stream (RFC 6120 §4.7, §4.8.2), initiating (`id`
/// absent) or responding: content namespace `jabber:server`, and the `db` prefix declared
/// as XEP-0220 §2.1 asks of a server that speaks dialback.
pub fn s2s_header(from: &str, to: Option<&str>, id: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"<?xml version='1.0'?><stream:stream");
    write_attr(&mut out, "xmlns", ns::SERVER);
    write_attr(&mut out, "xmlns:stream", ns::STREAM);
    write_attr(&mut out, "xmlns:db", ns::DIALBACK);
    if let Some(id) = id {
        write_attr(&mut out, "id", id);
    }
    write_attr(&mut out, "from", from);
    if let Some(to) = to {
        write_attr(&mut out, "to", to);
    }
    write_attr(&mut out, "version", "1.0");
    out.push(b'>');
    out
}

/// The closing tag matching [`server_header`] (RFC 6120 §4.4).
pub fn stream_close(dialect: &Dialect) -> &'static [u8] {
    match dialect {
        Dialect::Xmpp => b"</stream:stream>",
        Dialect::Flash => b"</flash:stream>",
        // RFC 7395 §3.6.
        Dialect::WebSocket => br#"<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>"#,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap_or_default()
    }

    #[test]
    fn xmpp_header_bytes() {
        assert_eq!(
            s(server_header(
                &Dialect::Xmpp,
                "example.com",
                "abc",
                Some("u@example.com"),
                true,
                "en"
            )),
            concat!(
                r#"<?xml version='1.0'?><stream:stream xmlns="jabber:client" "#,
                r#"xmlns:stream="http://etherx.jabber.org/streams" id="abc" from="example.com" "#,
                r#"to="u@example.com" version="1.0" xml:lang="en">"#
            )
        );
        assert_eq!(
            s(server_header(
                &Dialect::Xmpp,
                "a&b",
                "\"",
                None,
                false,
                "en"
            )),
            concat!(
                r#"<?xml version='1.0'?><stream:stream xmlns="jabber:client" "#,
                r#"xmlns:stream="http://etherx.jabber.org/streams" id="&quot;" from="a&amp;b" xml:lang="en">"#
            )
        );
    }

    #[test]
    fn flash_header_bytes_match_openfire() {
        assert_eq!(
            s(server_header(
                &Dialect::Flash,
                "example.com",
                "4a7b2c",
                None,
                true,
                "en"
            )),
            concat!(
                "<?xml version='1.0' encoding='UTF-8'?><flash:stream ",
                r#"xmlns:flash="http://www.jabber.com/streams/flash" "#,
                r#"xmlns:stream="http://etherx.jabber.org/streams" xmlns="jabber:client" "#,
                r#"from="example.com" id="4a7b2c" xml:lang="en" version="1.0">"#
            )
        );
    }

    #[test]
    fn close_tags() {
        assert_eq!(stream_close(&Dialect::Xmpp), b"</stream:stream>");
        assert_eq!(stream_close(&Dialect::Flash), b"</flash:stream>");
    }

    #[test]
    fn versions() {
        assert!(check_version("1.0").is_ok());
        assert!(check_version("1.1").is_ok());
        assert!(check_version("0.9").is_ok());
        assert!(check_version("01.0").is_ok());
        for bad in ["2.0", "10.0", "1", "x.y", "1.", "+1.0"] {
            assert_eq!(
                check_version(bad).map_err(|e| e.condition),
                Err(StreamCondition::UnsupportedVersion),
                "{bad}"
            );
        }
    }
}
