//! Reader tests: framing across arbitrary splits, namespaces, every error condition, and
//! the Flash byte sequences of flash-protocol.md §2b–2d.

use super::*;
use crate::ns;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>";

/// Feeds `input` in chunks of `chunk` bytes, collecting events until the input is used up
/// or an error occurs (which is returned as the last item).
fn run_chunked(limits: Limits, input: &[u8], chunk: usize) -> Vec<Result<Event, StreamError>> {
    let mut reader = StreamReader::new(limits);
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        reader.feed(piece);
        loop {
            match reader.next_event() {
                Ok(Some(ev)) => out.push(Ok(ev)),
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

fn run(input: &[u8]) -> Vec<Result<Event, StreamError>> {
    run_chunked(Limits::default(), input, input.len())
}

fn last_error(events: &[Result<Event, StreamError>]) -> Option<StreamCondition> {
    match events.last() {
        Some(Err(e)) => Some(e.condition),
        _ => None,
    }
}

fn stanzas(events: Vec<Result<Event, StreamError>>) -> Vec<Element> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Ok(Event::Stanza(el)) => Some(el),
            _ => None,
        })
        .collect()
}

fn in_stream(body: &str) -> Vec<u8> {
    format!("{HEADER}{body}").into_bytes()
}

fn error_in_stream(body: &str) -> Option<StreamCondition> {
    last_error(&run(&in_stream(body)))
}

fn full_session() -> Vec<u8> {
    let mut s = in_stream(concat!(
        "\n  <message to='a@example.com' id='m1' type='chat'><body>h\u{e9}llo \u{1F600} &amp; &#x263A;</body></message> \n",
        "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
        "<presence><show>away</show><status xml:lang='de'>\u{fc}ber &lt;3</status></presence>",
        "\t<message><body><![CDATA[<raw> & ]] ]]></body></message>",
        "</stream:stream>",
    ));
    s.extend_from_slice(b"ignored after close");
    s
}

#[test]
fn split_at_every_byte_gives_identical_events() {
    let input = full_session();
    let whole = run(&input);
    assert_eq!(whole.len(), 6, "{whole:?}");
    assert!(
        matches!(&whole[0], Ok(Event::Header(h)) if h.to.as_deref() == Some("example.com")
        && h.version.as_deref() == Some("1.0") && h.lang.as_deref() == Some("en")
        && h.dialect == Dialect::Xmpp && !h.self_closed)
    );
    assert_eq!(whole[5], Ok(Event::Close));
    for chunk in [1, 2, 3, 7, 64] {
        assert_eq!(
            run_chunked(Limits::default(), &input, chunk),
            whole,
            "chunk {chunk}"
        );
    }
    // Two arbitrary cut points, including inside multi-byte characters.
    for cut in 0..input.len() {
        let mut reader = StreamReader::new(Limits::default());
        let mut events = Vec::new();
        for part in [&input[..cut], &input[cut..]] {
            reader.feed(part);
            while let Ok(Some(ev)) = reader.next_event() {
                events.push(Ok(ev));
            }
        }
        assert_eq!(events, whole, "cut at {cut}");
    }
}

#[test]
fn stanza_content_is_decoded() {
    let els = stanzas(run(&full_session()));
    assert_eq!(els.len(), 4);
    let body = els[0].get_child("body", ns::CLIENT).map(Element::text);
    assert_eq!(body.as_deref(), Some("h\u{e9}llo \u{1F600} & \u{263A}"));
    assert_eq!(els[0].attr("to"), Some("a@example.com"));
    let status = els[2].get_child("status", ns::CLIENT);
    assert_eq!(status.and_then(|s| s.attr("xml:lang")), Some("de"));
    assert_eq!(status.map(Element::text).as_deref(), Some("\u{fc}ber <3"));
    let cdata = els[3].get_child("body", ns::CLIENT).map(Element::text);
    assert_eq!(cdata.as_deref(), Some("<raw> & ]] "));
}

#[test]
fn namespaces_resolve() {
    let els = stanzas(run(&in_stream(concat!(
        "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'><x/></ping><y/></iq>",
        "<foo:bar xmlns:foo='urn:x'><foo:baz/><qux/></foo:bar>",
        "<stream:features/>",
        "<iq xmlns='jabber:client' xmlns:p='urn:p'><q p:a='1' xml:lang='en'/></iq>",
    ))));
    assert_eq!(els.len(), 4);
    // Stanzas without a declaration inherit the header's default namespace.
    assert!(els[0].is("iq", ns::CLIENT));
    let ping = els[0].get_child("ping", ns::PING);
    assert!(ping.and_then(|p| p.get_child("x", ns::PING)).is_some());
    assert!(els[0].get_child("y", ns::CLIENT).is_some());
    // Prefixed stanza: name resolved via its own declaration; unprefixed children keep the
    // default namespace in scope (jabber:client), not the prefix's.
    assert!(els[1].is("bar", "urn:x"));
    assert!(els[1].get_child("baz", "urn:x").is_some());
    assert!(els[1].get_child("qux", ns::CLIENT).is_some());
    assert_eq!(
        els[1].attrs().count(),
        0,
        "xmlns declarations are not attributes"
    );
    assert!(els[2].is("features", ns::STREAM));
    // A prefixed attribute keeps the declaration it needs to be re-serialised.
    let q = els[3].get_child("q", ns::CLIENT);
    assert_eq!(q.and_then(|q| q.attr("p:a")), Some("1"));
    assert_eq!(q.and_then(|q| q.attr("xmlns:p")), Some("urn:p"));
}

#[test]
fn keepalives_are_skipped() {
    let mut reader = StreamReader::new(Limits::default());
    reader.feed(HEADER.as_bytes());
    assert!(matches!(reader.next_event(), Ok(Some(Event::Header(_)))));
    for _ in 0..3 {
        reader.feed(b" \n\t\r\n");
        assert_eq!(reader.next_event(), Ok(None));
        assert_eq!(reader.buffered_len(), 0);
    }
    reader.feed(b"<presence/>");
    assert!(matches!(reader.next_event(), Ok(Some(Event::Stanza(_)))));
}

#[test]
fn declaration_and_bom_are_skipped() {
    let input = format!(
        "\u{FEFF}  <?xml version=\"1.0\" encoding=\"utf-8\"?>\n{}",
        &HEADER[21..]
    );
    for chunk in [1, 1000] {
        let ev = run_chunked(Limits::default(), input.as_bytes(), chunk);
        assert!(matches!(ev.as_slice(), [Ok(Event::Header(_))]), "{ev:?}");
    }
}

#[test]
fn restart_expects_a_new_header() {
    let mut reader = StreamReader::new(Limits::default());
    reader.feed(HEADER.as_bytes());
    reader.feed(
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>=</auth><pipelined",
    );
    assert!(matches!(reader.next_event(), Ok(Some(Event::Header(_)))));
    assert!(matches!(reader.next_event(), Ok(Some(Event::Stanza(e))) if e.is("auth", ns::SASL)));
    reader.restart();
    assert_eq!(reader.buffered_len(), 0, "pipelined bytes are discarded");
    reader.feed(HEADER.as_bytes());
    reader.feed(b"<iq type='set' id='b'/>");
    assert!(matches!(reader.next_event(), Ok(Some(Event::Header(_)))));
    assert!(matches!(reader.next_event(), Ok(Some(Event::Stanza(e))) if e.is("iq", ns::CLIENT)));
    assert_eq!(reader.dialect(), Some(Dialect::Xmpp));
}

/// After SASL success what the client pipelined behind `<auth/>` is the new stream, however
/// much of it had arrived at the restart.
#[test]
fn restart_keeping_input_replays_pipelined_bytes() {
    for flash in [false, true] {
        let (open, nul): (&[u8], &[u8]) = if flash {
            (FLASH_OPEN, b"\0")
        } else {
            (HEADER.as_bytes(), b"")
        };
        let auth: &[u8] =
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>=</auth>";
        let bind: &[u8] =
            b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>";
        let input = [open, auth, nul, open, bind, nul].concat();
        let restart_at = open.len() + auth.len() + 1;
        for cut in restart_at..input.len() {
            let mut reader = StreamReader::new(Limits::default());
            reader.feed(&input[..cut]);
            assert!(matches!(reader.next_event(), Ok(Some(Event::Header(_)))));
            assert!(
                matches!(reader.next_event(), Ok(Some(Event::Stanza(e))) if e.is("auth", ns::SASL))
            );
            // <success/> is sent and the stream restarted without reading further.
            reader.restart_keeping_input();
            reader.feed(&input[cut..]);
            let ev = reader.next_event();
            assert!(
                matches!(&ev, Ok(Some(Event::Header(_)))),
                "cut {cut}: {ev:?}"
            );
            let ev = reader.next_event();
            assert!(
                matches!(&ev, Ok(Some(Event::Stanza(e))) if e.is("iq", ns::CLIENT)),
                "cut {cut}: {ev:?}"
            );
            assert_eq!(reader.next_event(), Ok(None));
        }
    }
}

/// XIFF's "terminated" standard header (STREAM_TYPE_STANDARD_TERMINATED): self-closed, then
/// stanzas, then perhaps a close tag; and again after a restart.
const XIFF_TERMINATED: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><stream:stream \
    xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/streams\" to=\"example.com\" \
    xml:lang=\"en\" version=\"1.0\" />";

#[test]
fn self_closed_standard_header_opens_the_stream() {
    let input = [
        XIFF_TERMINATED,
        b"<presence/><message><body>hi</body></message></stream:stream>",
    ]
    .concat();
    let whole = run(&input);
    for chunk in [1, 4] {
        assert_eq!(run_chunked(Limits::default(), &input, chunk), whole);
    }
    assert!(
        matches!(&whole[0], Ok(Event::Header(h)) if h.self_closed && h.dialect == Dialect::Xmpp),
        "{whole:?}"
    );
    assert!(matches!(&whole[1], Ok(Event::Stanza(e)) if e.is("presence", ns::CLIENT)));
    assert!(matches!(&whole[2], Ok(Event::Stanza(e)) if e.is("message", ns::CLIENT)));
    assert_eq!(whole[3], Ok(Event::Close));
    assert_eq!(whole.len(), 4);

    let mut reader = StreamReader::new(Limits::default());
    reader.feed(XIFF_TERMINATED);
    assert!(matches!(reader.next_event(), Ok(Some(Event::Header(_)))));
    reader.restart();
    reader.feed(XIFF_TERMINATED);
    reader.feed(b"<iq type='set' id='b'/>");
    assert!(matches!(reader.next_event(), Ok(Some(Event::Header(h))) if h.self_closed));
    assert!(matches!(reader.next_event(), Ok(Some(Event::Stanza(e))) if e.is("iq", ns::CLIENT)));
    assert_eq!(reader.next_event(), Ok(None));
}

/// A standard header followed by a NUL came from XMLSocket: the stream is read (and must
/// be answered) as Flash, also when the header was self-closed, and after a restart.
#[test]
fn nul_after_a_standard_header_makes_a_flash_stream() {
    for open in [XIFF_TERMINATED, HEADER.as_bytes()] {
        let input = [open, b"\0<presence/>\0 \0</stream:stream>\0"].concat();
        let whole = run(&input);
        assert!(
            matches!(&whole[0], Ok(Event::Header(h)) if h.dialect == Dialect::Flash),
            "{whole:?}"
        );
        assert!(matches!(&whole[1], Ok(Event::Stanza(e)) if e.is("presence", ns::CLIENT)));
        assert_eq!(whole[2], Ok(Event::Close));
        assert_eq!(whole.len(), 3);

        let mut reader = StreamReader::new(Limits::default());
        reader.feed(&[open, b"\0"].concat());
        assert!(matches!(reader.next_event(), Ok(Some(Event::Header(_)))));
        reader.restart();
        // The restart header's NUL has not arrived yet: the framing stays Flash.
        reader.feed(open);
        assert!(
            matches!(reader.next_event(), Ok(Some(Event::Header(h))) if h.dialect == Dialect::Flash)
        );
        reader.feed(b"\0<presence/>\0");
        assert!(matches!(reader.next_event(), Ok(Some(Event::Stanza(_)))));
    }
    // Without the NUL it stays a standard stream, where a NUL is not well-formed.
    let ev = run(&in_stream("<presence/>\0"));
    assert!(matches!(&ev[0], Ok(Event::Header(h)) if h.dialect == Dialect::Xmpp));
    assert_eq!(last_error(&ev), Some(StreamCondition::NotWellFormed));
}

#[test]
fn nul_in_a_later_read_than_the_standard_header_still_makes_a_flash_stream() {
    // TCP may cut between the header and its NUL: the header is reported as standard, and
    // the NUL, when it comes, turns the stream Flash, so NULs keep being framing.
    for open in [XIFF_TERMINATED, HEADER.as_bytes()] {
        let mut reader = StreamReader::new(Limits::default());
        reader.feed(open);
        assert!(
            matches!(reader.next_event(), Ok(Some(Event::Header(h))) if h.dialect == Dialect::Xmpp)
        );
        assert_eq!(reader.dialect(), Some(Dialect::Xmpp));
        reader.feed(b" \0<presence/>\0");
        assert!(matches!(reader.next_event(), Ok(Some(Event::Stanza(_)))));
        assert_eq!(reader.dialect(), Some(Dialect::Flash));
        reader.feed(b"<presence/>\0</stream:stream>\0");
        assert!(matches!(reader.next_event(), Ok(Some(Event::Stanza(_)))));
        assert_eq!(reader.next_event(), Ok(Some(Event::Close)));
    }
    // Once a stanza came without one, a NUL is no longer framing but an error.
    let mut reader = StreamReader::new(Limits::default());
    reader.feed(HEADER.as_bytes());
    assert!(matches!(reader.next_event(), Ok(Some(Event::Header(_)))));
    reader.feed(b"<presence/>\0");
    assert!(matches!(reader.next_event(), Ok(Some(Event::Stanza(_)))));
    assert!(reader.next_event().is_err());
}

#[test]
fn other_stream_prefix_is_accepted() {
    let ev = run(b"<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams'><message/></s:stream>");
    assert!(matches!(
        ev.as_slice(),
        [Ok(Event::Header(_)), Ok(Event::Stanza(_)), Ok(Event::Close)]
    ));
}

// ---- errors -------------------------------------------------------------------------

#[test]
fn billion_laughs_is_restricted() {
    let doc = concat!(
        "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>",
        "<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>]>",
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>&lol2;"
    );
    assert_eq!(
        last_error(&run(doc.as_bytes())),
        Some(StreamCondition::RestrictedXml)
    );
    assert_eq!(
        error_in_stream("<!DOCTYPE x>"),
        Some(StreamCondition::RestrictedXml)
    );
    assert_eq!(
        error_in_stream("<!ENTITY x 'y'>"),
        Some(StreamCondition::RestrictedXml)
    );
}

#[test]
fn comments_and_processing_instructions_are_restricted() {
    assert_eq!(
        error_in_stream("<!-- hi -->"),
        Some(StreamCondition::RestrictedXml)
    );
    assert_eq!(
        error_in_stream("<message><!-- hi --></message>"),
        Some(StreamCondition::RestrictedXml)
    );
    assert_eq!(
        error_in_stream("<?php echo 1 ?>"),
        Some(StreamCondition::RestrictedXml)
    );
    assert_eq!(
        error_in_stream("<message><?pi x?></message>"),
        Some(StreamCondition::RestrictedXml)
    );
    assert_eq!(
        error_in_stream("<?xml version='1.0'?>"),
        Some(StreamCondition::RestrictedXml)
    );
    assert_eq!(
        last_error(&run(b"<!-- c --><stream:stream>")),
        Some(StreamCondition::RestrictedXml)
    );
    assert_eq!(
        last_error(&run(b"<?foo?><stream:stream>")),
        Some(StreamCondition::RestrictedXml)
    );
}

#[test]
fn entities_other_than_predefined_are_not_well_formed() {
    assert_eq!(
        error_in_stream("<message>&lol;</message>"),
        Some(StreamCondition::NotWellFormed)
    );
    assert_eq!(
        error_in_stream("<message a='&lol;'/>"),
        Some(StreamCondition::NotWellFormed)
    );
    assert_eq!(
        error_in_stream("<message>&#0;</message>"),
        Some(StreamCondition::NotWellFormed)
    );
    assert_eq!(
        error_in_stream("<message>&#x1;</message>"),
        Some(StreamCondition::NotWellFormed)
    );
    assert_eq!(
        error_in_stream("<message>a & b</message>"),
        Some(StreamCondition::NotWellFormed)
    );
}

#[test]
fn oversized_stanza_is_refused_before_it_is_buffered() {
    let limits = Limits {
        max_stanza_bytes: 1024,
        ..Limits::default()
    };
    let mut reader = StreamReader::new(limits);
    reader.feed(HEADER.as_bytes());
    assert!(matches!(reader.next_event(), Ok(Some(Event::Header(_)))));
    reader.feed(b"<message><body>");
    let mut fed = 15;
    let err = loop {
        assert!(fed <= 1024 + 100, "kept buffering past the limit");
        reader.feed(&[b'a'; 100]);
        fed += 100;
        match reader.next_event() {
            Ok(None) => assert!(reader.buffered_len() <= 1024 + 100),
            Ok(Some(ev)) => panic!("unexpected {ev:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.condition, StreamCondition::PolicyViolation);
    assert_eq!(reader.buffered_len(), 0);
    reader.feed(&[b'a'; 100]);
    assert_eq!(reader.buffered_len(), 0, "a failed reader buffers nothing");
    assert_eq!(reader.next_event(), Err(err), "the error is sticky");
}

#[test]
fn stanza_at_the_size_limit_is_accepted() {
    let stanza = format!("<message><body>{}</body></message>", "a".repeat(100));
    let limits = Limits {
        max_stanza_bytes: stanza.len(),
        ..Limits::default()
    };
    let input = in_stream(&stanza);
    assert_eq!(stanzas(run_chunked(limits.clone(), &input, 1)).len(), 1);
    let tight = Limits {
        max_stanza_bytes: stanza.len() - 1,
        ..limits
    };
    assert_eq!(
        last_error(&run_chunked(tight, &input, 1)),
        Some(StreamCondition::PolicyViolation)
    );
}

#[test]
fn deep_nesting_is_a_policy_violation() {
    let nest = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
    assert_eq!(stanzas(run(&in_stream(&nest(32)))).len(), 1);
    assert_eq!(
        error_in_stream(&nest(33)),
        Some(StreamCondition::PolicyViolation)
    );
    // Refused as soon as the 33rd start tag arrives, without waiting for the end.
    assert_eq!(
        error_in_stream(&"<a>".repeat(33)),
        Some(StreamCondition::PolicyViolation)
    );
}

#[test]
fn too_many_attributes_is_a_policy_violation() {
    let attrs = |n: usize| (0..n).map(|i| format!(" a{i}='x=y'")).collect::<String>();
    assert_eq!(
        stanzas(run(&in_stream(&format!("<message{}/>", attrs(64))))).len(),
        1
    );
    assert_eq!(
        error_in_stream(&format!("<message{}/>", attrs(65))),
        Some(StreamCondition::PolicyViolation)
    );
    let header = format!("<stream:stream{}>", attrs(65));
    assert_eq!(
        last_error(&run(header.as_bytes())),
        Some(StreamCondition::PolicyViolation)
    );
}

#[test]
fn oversized_header_is_a_policy_violation() {
    let header = format!("<stream:stream to='{}'>", "x".repeat(5000));
    assert_eq!(
        last_error(&run(header.as_bytes())),
        Some(StreamCondition::PolicyViolation)
    );
    let spaces = " ".repeat(5000);
    assert_eq!(
        last_error(&run(spaces.as_bytes())),
        Some(StreamCondition::PolicyViolation)
    );
}

#[test]
fn invalid_utf8_is_not_well_formed() {
    let mut input = in_stream("<message><body>");
    input.extend_from_slice(&[0xC3, 0x28, 0xFF]);
    input.extend_from_slice(b"</body></message>");
    assert_eq!(
        last_error(&run(&input)),
        Some(StreamCondition::NotWellFormed)
    );
    let mut header = b"<stream:stream to='".to_vec();
    header.extend_from_slice(&[0xFF, b'\'', b'>']);
    assert_eq!(
        last_error(&run(&header)),
        Some(StreamCondition::NotWellFormed)
    );
}

#[test]
fn control_characters_are_not_well_formed() {
    assert_eq!(
        error_in_stream("<message>\u{1}</message>"),
        Some(StreamCondition::NotWellFormed)
    );
    assert_eq!(
        error_in_stream("<message a='\u{1b}'/>"),
        Some(StreamCondition::NotWellFormed)
    );
    assert_eq!(
        error_in_stream("<message>\u{FFFF}</message>"),
        Some(StreamCondition::NotWellFormed)
    );
}

#[test]
fn nul_in_a_standard_stream_is_not_well_formed() {
    // (Right after the header a NUL makes the stream Flash instead: see below.)
    assert_eq!(
        error_in_stream("<presence/>\0"),
        Some(StreamCondition::NotWellFormed)
    );
    assert_eq!(
        error_in_stream("<message>\0</message>"),
        Some(StreamCondition::NotWellFormed)
    );
}

#[test]
fn malformed_markup_is_not_well_formed() {
    for bad in [
        "<message></iq>",
        "<message><body></message></body>",
        "<message a='1' a='2'/>",
        "<message a=1/>",
        "hello",
        "<![CDATA[x]]>",
        "<message><![CDAT[x]]></message>",
        "</stream:other>",
    ] {
        assert_eq!(
            error_in_stream(bad),
            Some(StreamCondition::NotWellFormed),
            "{bad}"
        );
    }
}

/// RFC 6120 §4.9.3.13: a mismatched end tag is caught when it arrives, not when (if ever)
/// the depth count reaches zero, in every dialect and at every split of the input.
#[test]
fn mismatched_end_tag_is_not_well_formed_at_once() {
    for (open, body) in [
        (HEADER.as_bytes(), &b"<message><body>x</message>"[..]),
        (HEADER.as_bytes(), b"<message><body><b/>x</bod ></message>"),
        (
            HEADER.as_bytes(),
            b"<iq><query xmlns='urn:x'><a></b></query></iq>",
        ),
        (HEADER.as_bytes(), b"<message></stream:stream>"),
        (HEADER.as_bytes(), b"<message><body>x</>"),
        (FLASH_OPEN, b"<message><body>x</message>"),
    ] {
        let input = [open, body].concat();
        let text = String::from_utf8_lossy(body);
        for chunk in [1, 3, input.len()] {
            let ev = run_chunked(Limits::default(), &input, chunk);
            let Some(Err(e)) = ev.last() else {
                panic!("{text} (chunk {chunk}): waits for more: {ev:?}")
            };
            assert_eq!(e.condition, StreamCondition::NotWellFormed, "{text}");
        }
    }
    // Matching names, with whitespace before '>' and prefixes, still frame normally.
    let els = stanzas(run(&in_stream(
        "<message><body >x</body\n><p:x xmlns:p='urn:p'><p:y></p:y ></p:x></message ><presence/>",
    )));
    assert_eq!(els.len(), 2, "{els:?}");
}

#[test]
fn undeclared_prefix_is_bad_namespace_prefix() {
    assert_eq!(
        error_in_stream("<foo:bar/>"),
        Some(StreamCondition::BadNamespacePrefix)
    );
    assert_eq!(
        error_in_stream("<message><x:y/></message>"),
        Some(StreamCondition::BadNamespacePrefix)
    );
    assert_eq!(
        error_in_stream("<message x:a='1'/>"),
        Some(StreamCondition::BadNamespacePrefix)
    );
    assert_eq!(
        last_error(&run(b"<stream:stream xmlns='jabber:client'>")),
        Some(StreamCondition::BadNamespacePrefix)
    );
}

#[test]
fn wrong_stream_namespaces_are_invalid_namespace() {
    for header in [
        "<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong'>",
        "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>",
        "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
        "<stream:foo xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        "<policy-file-request/>",
    ] {
        assert_eq!(
            last_error(&run(header.as_bytes())),
            Some(StreamCondition::InvalidNamespace),
            "{header}"
        );
    }
}

#[test]
fn version_and_encoding_are_checked() {
    let header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='2.0'>";
    assert_eq!(
        last_error(&run(header.as_bytes())),
        Some(StreamCondition::UnsupportedVersion)
    );
    let decl = "<?xml version='1.0' encoding='ISO-8859-1'?>";
    assert_eq!(
        last_error(&run(decl.as_bytes())),
        Some(StreamCondition::UnsupportedEncoding)
    );
}

// ---- Flash (flash-protocol.md §2b–2d) -----------------------------------------------

const FLASH_OPEN: &[u8] = b"<?xml version=\"1.0\"?><flash:stream xmlns=\"jabber:client\" \
    xmlns:flash=\"http://www.jabber.com/streams/flash\" to=\"example.com\" version=\"1.0\">\0";

#[test]
fn flash_session() {
    let mut input = FLASH_OPEN.to_vec();
    input.extend_from_slice(b"<auth mechanism=\"PLAIN\" xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\">dXNlckBleGFtcGxlLmNvbQB1c2VyAHNlY3JldA==</auth>\0");
    input.extend_from_slice(b"<iq type=\"set\" id=\"bind_1\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><resource>xiff</resource></bind></iq>\0");
    input.extend_from_slice(
        b"<message type=\"chat\" to=\"friend@example.com\" id=\"m_1\"><body>hi</body></message>\0",
    );
    input.extend_from_slice(b" \0");
    input.extend_from_slice(b"</flash:stream>\0");
    let whole = run(&input);
    for chunk in [1, 5] {
        assert_eq!(run_chunked(Limits::default(), &input, chunk), whole);
    }
    assert_eq!(whole.len(), 5, "{whole:?}");
    assert!(
        matches!(&whole[0], Ok(Event::Header(h)) if h.dialect == Dialect::Flash
        && h.to.as_deref() == Some("example.com") && !h.self_closed)
    );
    assert!(matches!(&whole[1], Ok(Event::Stanza(e)) if e.is("auth", ns::SASL)));
    assert!(matches!(&whole[2], Ok(Event::Stanza(e)) if e.get_child("bind", ns::BIND).is_some()));
    assert!(matches!(&whole[3], Ok(Event::Stanza(e)) if e.is("message", ns::CLIENT)));
    assert_eq!(whole[4], Ok(Event::Close));
}

#[test]
fn flash_restart_and_dialect() {
    let mut reader = StreamReader::new(Limits::default());
    reader.feed(FLASH_OPEN);
    assert!(matches!(reader.next_event(), Ok(Some(Event::Header(_)))));
    assert_eq!(reader.dialect(), Some(Dialect::Flash));
    reader.restart();
    reader.feed(FLASH_OPEN);
    reader.feed(b"<iq type=\"set\" id=\"sess_1\"><session xmlns=\"urn:ietf:params:xml:ns:xmpp-session\"/></iq>\0");
    assert!(
        matches!(reader.next_event(), Ok(Some(Event::Header(h))) if h.dialect == Dialect::Flash)
    );
    assert!(matches!(reader.next_event(), Ok(Some(Event::Stanza(_)))));
    assert_eq!(reader.next_event(), Ok(None));
}

#[test]
fn flash_self_closed_header_opens_the_stream() {
    // XIFF "terminatedFlash": attribute order of XIFF 2.0, header ends with " />".
    let input = b"<flash:stream to=\"example.com\" xmlns=\"jabber:client\" \
        xmlns:flash=\"http://www.jabber.com/streams/flash\" version=\"1.0\" />\0<presence/>\0";
    let ev = run(input);
    assert!(matches!(&ev[0], Ok(Event::Header(h)) if h.self_closed && h.dialect == Dialect::Flash));
    assert!(matches!(&ev[1], Ok(Event::Stanza(e)) if e.is("presence", ns::CLIENT)));
    assert_eq!(ev.len(), 2);
}

#[test]
fn flash_header_binds_stream_prefix_implicitly() {
    let mut input = FLASH_OPEN.to_vec();
    input.extend_from_slice(
        b"<stream:error><conflict xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/></stream:error>\0",
    );
    let els = stanzas(run(&input));
    assert!(els.first().is_some_and(|e| e.is("error", ns::STREAM)));
}

#[test]
fn undeclared_flash_prefix_on_the_root_is_a_flash_stream() {
    let input = b"<flash:stream xmlns=\"jabber:client\" to=\"example.com\">\0<message><body>hi</body></message>\0</flash:stream>\0";
    let ev = run(input);
    assert!(
        matches!(&ev[0], Ok(Event::Header(h)) if h.dialect == Dialect::Flash),
        "{ev:?}"
    );
    assert!(matches!(&ev[1], Ok(Event::Stanza(e)) if e.is("message", ns::CLIENT)));
    assert_eq!(ev[2], Ok(Event::Close));
    // Any other undeclared prefix on the root is still refused.
    assert_eq!(
        last_error(&run(b"<other:stream xmlns=\"jabber:client\">")),
        Some(StreamCondition::BadNamespacePrefix)
    );
}

#[test]
fn flash_prefix_bound_to_stream_namespace() {
    let input = b"<flash:stream xmlns=\"jabber:client\" xmlns:flash=\"http://etherx.jabber.org/streams\">\0";
    assert!(matches!(run(input).as_slice(), [Ok(Event::Header(h))] if h.dialect == Dialect::Flash));
}

#[test]
fn nul_inside_a_flash_stanza_is_not_well_formed() {
    let mut input = FLASH_OPEN.to_vec();
    input.extend_from_slice(b"<message>\0</message>");
    assert_eq!(
        last_error(&run(&input)),
        Some(StreamCondition::NotWellFormed)
    );
}

// ---- writer round trip ----------------------------------------------------------------

#[test]
fn written_elements_read_back_identically() {
    let el = Element::new("message", ns::CLIENT)
        .with_attr("to", "a&b<c>\"d'")
        .with_attr("xml:lang", "en")
        .with_attr("tabs", "a\tb\nc\rd")
        .with_child(
            Element::new("body", ns::CLIENT).with_text("<&>\"' \u{e9}\u{1F600}\r\n line\ttab"),
        )
        .with_child(
            Element::new("x", "urn:x")
                .with_child(Element::new("y", "urn:x").with_text("]]>"))
                .with_child(Element::new("z", ns::CLIENT)),
        )
        .with_child(Element::new("features", ns::STREAM).with_child(Element::new("w", ns::CLIENT)));
    let els = stanzas(run(&in_stream(&el.to_string())));
    assert_eq!(els, vec![el]);
}

#[test]
fn control_characters_are_never_written() {
    let el = Element::new("message", ns::CLIENT)
        .with_attr("a", "x\u{0}y")
        .with_text("p\u{1}q\u{FFFE}");
    let bytes = el.to_bytes(ns::CLIENT);
    assert!(bytes.iter().all(|&b| b >= 0x20));
    let els = stanzas(run(&in_stream(&el.to_string())));
    assert_eq!(els.first().map(Element::text).as_deref(), Some("pq"));
    assert_eq!(els.first().and_then(|e| e.attr("a")), Some("xy"));
}

#[test]
fn shrink_releases_capacity() {
    let mut reader = StreamReader::new(Limits::default());
    reader.feed(HEADER.as_bytes());
    reader.feed(&in_stream(&format!("<message>{}</message>", "a".repeat(10_000)))[HEADER.len()..]);
    while let Ok(Some(_)) = reader.next_event() {}
    reader.shrink_to_fit();
    assert_eq!(reader.buffered_len(), 0);
}

#[test]
fn server_streams_read_jabber_server_as_jabber_client() {
    let mut reader = StreamReader::for_servers(Limits::default());
    reader.feed(
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
          xmlns:db='jabber:server:dialback' from='b.test' to='a.test' version='1.0'>\
          <db:result from='b.test' to='a.test'>k</db:result>\
          <message from='u@b.test' to='v@a.test'><body>hi</body></message>",
    );
    let Ok(Some(Event::Header(header))) = reader.next_event() else {
        panic!("no header");
    };
    assert_eq!(header.from.as_deref(), Some("b.test"));
    let Ok(Some(Event::Stanza(db))) = reader.next_event() else {
        panic!("no dialback element");
    };
    assert!(db.is("result", ns::DIALBACK));
    let Ok(Some(Event::Stanza(message))) = reader.next_event() else {
        panic!("no message");
    };
    assert!(message.is("message", ns::CLIENT));
    assert!(message.get_child("body", ns::CLIENT).is_some());
}

#[test]
fn server_streams_refuse_jabber_client_and_client_streams_jabber_server() {
    let mut reader = StreamReader::for_servers(Limits::default());
    reader.feed(HEADER.as_bytes());
    let err = reader.next_event().err().map(|e| e.condition);
    assert_eq!(err, Some(StreamCondition::InvalidNamespace));
    let mut reader = StreamReader::new(Limits::default());
    reader.feed(
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>",
    );
    let err = reader.next_event().err().map(|e| e.condition);
    assert_eq!(err, Some(StreamCondition::InvalidNamespace));
}
