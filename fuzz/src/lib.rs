//! Fuzz targets for the parsers that read peer bytes (docs/fuzzing.md).
//!
//! Each target is a plain function taking the fuzzer's bytes, so the AFL binaries in
//! `fuzz_targets/` and the regression tests in `tests/` run exactly the same code. A target
//! panics on a finding: a panic inside the parser, or a broken invariant checked with
//! `assert!` (what splitting input differently, or writing and reading back, must not change).

use jabberwock_protocol::jid::{parse_resource, Jid};
use jabberwock_protocol::ns;
use jabberwock_protocol::stream::framing::FrameReader;
use jabberwock_protocol::stream::{Dialect, StreamError};
use jabberwock_protocol::xml::reader::{Event, Limits, StreamReader};
use jabberwock_protocol::xml::{self, Element};

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
fn read_stream<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Result<Event, StreamError>> {
    let mut reader = StreamReader::new(limits());
    let mut out = Vec::new();
    for chunk in chunks {
        reader.feed(chunk);
        loop {
            match reader.next_event() {
                Ok(Some(event)) => out.push(Ok(event)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
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
    let input: Vec<u8> = match data.first() {
        Some(b) if b % 2 == 0 => [FLASH_HEADER, &data[1..]].concat(),
        Some(_) => data[1..].to_vec(),
        None => return,
    };
    let whole = read_stream([&input[..]]);
    if data[0] % 2 == 0 {
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

/// Target `jid`: JIDs and bind resources as text. Normalisation must be idempotent: a
/// stored or routed JID is parsed again and must stay the same address.
pub fn jid(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(jid) = Jid::new(text) {
        let again = Jid::new(jid.as_str())
            .unwrap_or_else(|e| panic!("normalised JID {jid} does not parse: {e}"));
        assert_eq!(again, jid, "normalising twice changed the JID");
        let bare = jid.to_bare();
        let bare_again = Jid::new(bare.as_str())
            .unwrap_or_else(|e| panic!("bare JID {bare} does not parse: {e}"));
        assert_eq!(bare_again, Jid::from(bare));
    }
    if let Ok(resource) = parse_resource(text) {
        assert_eq!(
            parse_resource(&resource).as_deref(),
            Ok(resource.as_str()),
            "resourceprep is not idempotent"
        );
    }
}
