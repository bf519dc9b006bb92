//! Fuzz targets for the parsers that read peer bytes (docs/fuzzing.md).
//!
//! Each target is a plain function taking the fuzzer's bytes, so the AFL binaries in
//! `fuzz_targets/` and the regression tests in `tests/` run exactly the same code. A target
//! panics on a finding: a panic inside the parser, or a broken invariant checked with
//! `assert!` (what splitting input differently, or writing and reading back, must not change).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jabberwock_protocol::jid::{parse_bare, parse_resource, BareJid, Jid};
use jabberwock_protocol::sasl::{self, SaslRequest};
use jabberwock_protocol::stream::framing::FrameReader;
use jabberwock_protocol::stream::{Dialect, StreamError};
use jabberwock_protocol::xml::reader::{Event, Limits, StreamReader};
use jabberwock_protocol::xml::{self, Element};
use jabberwock_protocol::{bosh, ns, scram};

/// Limits small enough that inputs of a few hundred bytes reach every limit check.
fn limits() -> Limits {
    Limits {
        max_stanza_bytes: 1024,
        max_depth: 8,
        max_attributes: 8,
        max_header_bytes: 512,
    }
}

/// Feeds `chunks` one after the other and collects every event, up to the first error.
///
/// A standard header's dialect is reported as the reader settled it: the NUL that makes it
/// a Flash stream may come in a later read than the header, and then the header event says
/// `Xmpp` while the stream is Flash from that NUL on (what the connection follows).
fn read_stream<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Result<Event, StreamError>> {
    let mut reader = StreamReader::new(limits());
    let mut out = Vec::new();
    'feed: for chunk in chunks {
        reader.feed(chunk);
        loop {
            match reader.next_event() {
                Ok(Some(event)) => out.push(Ok(event)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    break 'feed;
                }
            }
        }
    }
    if reader.dialect() == Some(Dialect::Flash) {
        for event in &mut out {
            if let Ok(Event::Header(header)) = event {
                header.dialect = Dialect::Flash;
            }
        }
    }
    out
}

/// Up to 16 cut points spread over `len`, plus one chosen by the input itself.
fn cut_points(data: &[u8]) -> Vec<usize> {
    let len = data.len();
    let mut cuts: Vec<usize> = (1..16).map(|i| i * len / 16).collect();
    if let Some(&b) = data.first() {
        cuts.push(usize::from(b) % (len + 1));
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// The reader must give the same events however the bytes arrive (one read, one byte per
/// read, or cut in two anywhere): TCP may split the peer's writes at any byte.
fn check_split_invariance(data: &[u8], whole: &[Result<Event, StreamError>]) {
    let bytewise = read_stream(data.chunks(1));
    assert_eq!(
        whole,
        &bytewise[..],
        "byte-by-byte feeding changed the events"
    );
    for cut in cut_points(data) {
        let (a, b) = data.split_at(cut);
        let split = read_stream([a, b]);
        assert_eq!(whole, &split[..], "a cut at {cut} changed the events");
    }
}

/// A stanza written out and read back must serialise to the same bytes (offline storage,
/// BOSH and WebSocket re-serialise what they read).
fn check_round_trip(el: &Element) {
    let bytes = el.to_bytes(ns::CLIENT);
    let again = xml::parse_stanza(&bytes).unwrap_or_else(|e| {
        panic!(
            "our own serialisation does not parse ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(
        String::from_utf8_lossy(&again.to_bytes(ns::CLIENT)),
        String::from_utf8_lossy(&bytes),
        "write → read → write is not stable"
    );
}

fn check_stanzas(events: &[Result<Event, StreamError>]) {
    for event in events {
        if let Ok(Event::Stanza(el)) = event {
            check_round_trip(el);
        }
    }
}

/// Target `stream_xmpp`: a standard client's stream, bytes as sent.
pub fn stream_xmpp(data: &[u8]) {
    let whole = read_stream([data]);
    check_split_invariance(data, &whole);
    check_stanzas(&whole);
}

/// A Flash client's header as XIFF sends it, for inputs that are only the rest of a stream.
const FLASH_HEADER: &[u8] = b"<flash:stream to='localhost' xmlns='jabber:client' xmlns:flash='http://www.jabber.com/streams/flash' version='1.0'>\0";

/// Target `stream_flash`: a Flash XMLSocket stream, NUL after each unit. An input whose
/// first byte is even gets a fixed Flash header in front (so mutations explore what follows
/// a Flash header); an odd one is read as it is (so they explore Flash headers too).
pub fn stream_flash(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let prefixed = mode & 1 == 0;
    let input = if prefixed {
        [FLASH_HEADER, rest].concat()
    } else {
        rest.to_vec()
    };
    let whole = read_stream([&input[..]]);
    if prefixed {
        assert!(
            matches!(whole.first(), Some(Ok(Event::Header(h))) if h.dialect == Dialect::Flash),
            "the Flash header was not read as one: {:?}",
            whole.first()
        );
    }
    check_split_invariance(&input, &whole);
    // XMLSocket hands over one NUL-terminated unit per read.
    let units = read_stream(input.split_inclusive(|&b| b == 0));
    assert_eq!(whole, units, "unit-by-unit feeding changed the events");
    check_stanzas(&whole);
}

/// Target `websocket_framing`: RFC 7395 messages, separated in the input by 0xFF (a byte
/// that UTF-8 never contains, so no message loses a meaningful one).
pub fn websocket_framing(data: &[u8]) {
    let mut reader = FrameReader::new(limits());
    for message in data.split(|&b| b == 0xFF) {
        match reader.read(message) {
            Ok(Some(Event::Stanza(el))) => {
                // What we write for a WebSocket peer must read back as the same stanza.
                let bytes = el.to_bytes(ns::CLIENT);
                let again = FrameReader::new(Limits::default()).read(&bytes);
                match again {
                    Ok(Some(Event::Stanza(back))) => assert_eq!(
                        String::from_utf8_lossy(&back.to_bytes(ns::CLIENT)),
                        String::from_utf8_lossy(&bytes)
                    ),
                    other => panic!(
                        "our own message does not read back ({other:?}): {}",
                        String::from_utf8_lossy(&bytes)
                    ),
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// Target `jid`: JIDs and bind resources as text. Any address parses without panicking
/// (routing reads `to` with `Jid::new`); an identity we store or bind ([`parse_bare`], the
/// resource) must be its own normal form, since it is parsed again wherever it is read back.
pub fn jid(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Jid::new(text);
    if let Ok(bare) = parse_bare(text) {
        assert_eq!(
            BareJid::new(bare.as_str()).as_ref(),
            Ok(&bare),
            "normalising twice changed the JID"
        );
    }
    if let Ok(resource) = parse_resource(text) {
        assert_eq!(
            parse_resource(&resource).as_deref(),
            Ok(resource.as_str()),
            "resourceprep is not idempotent"
        );
    }
}

/// Target `bosh_body`: a BOSH request body (XEP-0124 §7, XEP-0206).
pub fn bosh_body(data: &[u8]) {
    let Some(request) = bosh::parse(data) else {
        return;
    };
    // The payload is written into the session's stream as jabber:client stanzas.
    for el in &request.payload {
        check_round_trip(el);
    }
    // Our response wrapper around the same payload must read back as that payload.
    let mut payload = Vec::new();
    for el in &request.payload {
        bosh::write_payload(&mut payload, el);
    }
    let sid = request.sid.as_deref().unwrap_or("sid");
    let response = bosh::response(&[("sid", sid)], &payload);
    let back = bosh::parse(&response).unwrap_or_else(|| {
        panic!(
            "our response does not parse: {}",
            String::from_utf8_lossy(&response)
        )
    });
    assert_eq!(back.sid.as_deref(), Some(sid));
    let written = |els: &[Element]| -> Vec<Vec<u8>> {
        els.iter().map(|el| el.to_bytes(ns::CLIENT)).collect()
    };
    assert_eq!(written(&back.payload), written(&request.payload));
    // §7.1: never a version above ours, whatever the client sent.
    let ver = bosh::answer_version(request.ver.as_deref());
    let (major, minor) = ver.split_once('.').expect("a dotted version");
    let ours = (major.parse().unwrap(), minor.parse().unwrap());
    assert!(ours <= bosh::OUR_VERSION, "answered version {ver}");
}

/// Target `scram`: SCRAM client messages (RFC 5802 §7), raw or, for an input starting
/// with `<`, inside the SASL element that carries them (RFC 6120 §6.4).
pub fn scram(data: &[u8]) {
    if data.first() == Some(&b'<') {
        sasl_element(data);
    } else {
        scram_messages(data);
    }
}

fn sasl_element(data: &[u8]) {
    let Ok(el) = xml::parse_stanza(data) else {
        return;
    };
    let payload = match sasl::parse_request(&el) {
        Ok(SaslRequest::Auth {
            initial: Some(p), ..
        })
        | Ok(SaslRequest::Response(p)) => p,
        _ => return,
    };
    // What we decoded is what the same data, base64-encoded by us, decodes to.
    let ours = Element::new("response", ns::SASL).with_text(STANDARD.encode(&payload));
    assert_eq!(
        sasl::parse_request(&ours),
        Ok(SaslRequest::Response(payload.clone()))
    );
    scram_messages(&payload);
}

/// `saslname` encoding (RFC 5802 §5.1), the inverse of `scram::decode_saslname`.
fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

fn scram_messages(msg: &[u8]) {
    if let Ok(first) = scram::parse_client_first(msg) {
        assert_eq!(
            format!("{}{}", first.gs2_header, first.bare).as_bytes(),
            msg,
            "header and bare message are the whole message"
        );
        assert!(!first.username.is_empty() && !first.nonce.is_empty());
        // The same identities written canonically parse to the same values.
        let authzid = first
            .authzid
            .as_deref()
            .map(|a| format!("a={}", encode_saslname(a)))
            .unwrap_or_default();
        let canonical = format!(
            "n,{authzid},n={},r={}",
            encode_saslname(&first.username),
            first.nonce
        );
        let again = scram::parse_client_first(canonical.as_bytes())
            .unwrap_or_else(|e| panic!("canonical form {canonical:?} does not parse: {e}"));
        assert_eq!(
            (again.username, again.authzid, again.nonce),
            (first.username, first.authzid, first.nonce)
        );
    }
    if let Ok(last) = scram::parse_client_final(msg) {
        assert_eq!(
            format!("{},p={}", last.without_proof, last.proof_base64).as_bytes(),
            msg
        );
        assert!(!last.channel_binding.is_empty() && !last.nonce.is_empty());
        if let Ok(proof) = last.proof() {
            assert_eq!(STANDARD.encode(proof), last.proof_base64);
        }
    }
}
