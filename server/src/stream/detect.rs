//! Sniffs a new connection's first bytes to tell which kind of client it is
//! (the stream layer's switch, in the spirit of Prosody's mod_net_multiplex).

use jabberwock_protocol::policy;

/// What the first bytes of a connection say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstBytes {
    /// A TLS record header (handshake, TLS 1.x): direct TLS, XEP-0368.
    Tls,
    /// A Flash Player socket policy probe: `<policy-file-request/>`.
    PolicyRequest,
    /// An XML stream: `<?xml`, `<stream:stream`, `<flash:stream` (the reader tells which).
    Xml,
    /// An HTTP request line (BOSH, WebSocket): served by a later transport.
    Http,
    /// Nothing any of our clients would send.
    Garbage,
    /// Too few bytes to decide.
    NeedMore,
}

const HTTP_METHODS: [&[u8]; 6] = [
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"OPTIONS ",
    b"PUT ",
    b"DELETE ",
];

/// Leading bytes a client may send before its first element: whitespace, a UTF-8 byte order
/// mark, and (COMPAT: Flash) stray NULs.
fn skip_preamble(mut buf: &[u8]) -> &[u8] {
    loop {
        match buf {
            [0xEF, 0xBB, 0xBF, rest @ ..] => buf = rest,
            [b' ' | b'\t' | b'\r' | b'\n' | 0, rest @ ..] => buf = rest,
            _ => return buf,
        }
    }
}

/// `NeedMore` while `buf` could still grow into `full`, `Some(true)` once it starts with it.
fn starts_with_or_prefix(buf: &[u8], full: &[u8]) -> Option<bool> {
    if buf.starts_with(full) {
        Some(true)
    } else if full.starts_with(buf) {
        None
    } else {
        Some(false)
    }
}

pub fn classify(buf: &[u8]) -> FirstBytes {
    // A TLS ClientHello starts with the handshake record type 0x16 and major version 3.
    match buf {
        [] => return FirstBytes::NeedMore,
        [0x16] => return FirstBytes::NeedMore,
        [0x16, 0x03, ..] => return FirstBytes::Tls,
        _ => {}
    }
    let rest = skip_preamble(buf);
    if rest.is_empty() {
        return FirstBytes::NeedMore;
    }
    match starts_with_or_prefix(rest, policy::REQUEST) {
        Some(true) => return FirstBytes::PolicyRequest,
        None => return FirstBytes::NeedMore,
        Some(false) => {}
    }
    let mut undecided = false;
    for method in HTTP_METHODS {
        match starts_with_or_prefix(rest, method) {
            Some(true) => return FirstBytes::Http,
            None => undecided = true,
            Some(false) => {}
        }
    }
    if rest[0] == b'<' {
        return FirstBytes::Xml;
    }
    if undecided {
        FirstBytes::NeedMore
    } else {
        FirstBytes::Garbage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_client_hello() {
        assert_eq!(classify(&[0x16, 0x03, 0x01, 0x02, 0x00]), FirstBytes::Tls);
        assert_eq!(classify(&[0x16]), FirstBytes::NeedMore);
    }

    #[test]
    fn policy_request_whole_and_split() {
        assert_eq!(
            classify(b"<policy-file-request/>\0"),
            FirstBytes::PolicyRequest
        );
        assert_eq!(classify(b"<policy-file"), FirstBytes::NeedMore);
        assert_eq!(
            classify(b"\0 <policy-file-request/>"),
            FirstBytes::PolicyRequest
        );
    }

    #[test]
    fn xml_streams() {
        assert_eq!(classify(b"<?xml version='1.0'?>"), FirstBytes::Xml);
        assert_eq!(classify(b"<stream:stream"), FirstBytes::Xml);
        assert_eq!(classify(b"\xEF\xBB\xBF  <flash:stream"), FirstBytes::Xml);
        // "<p" could still become a policy request.
        assert_eq!(classify(b"<p"), FirstBytes::NeedMore);
        assert_eq!(classify(b"<presence/>"), FirstBytes::Xml);
    }

    #[test]
    fn http_and_garbage() {
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), FirstBytes::Http);
        assert_eq!(classify(b"GE"), FirstBytes::NeedMore);
        assert_eq!(classify(b"hello there"), FirstBytes::Garbage);
        assert_eq!(classify(b"\x00\x01\x02"), FirstBytes::Garbage);
        assert_eq!(classify(b"   "), FirstBytes::NeedMore);
    }
}
