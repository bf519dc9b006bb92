//! Bad input. Each case makes one connection misbehave, asserts the exact
//! stream or SASL error the server answers with (RFC 6120 §4.9, §6.5) and that the connection is
//! closed, then proves that a client logged in before (the bystander) still works.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jabberwock_tests::raw::{FLASH_HEADER, STREAM_HEADER};
use jabberwock_tests::{RawClient, TestConfig, TestServer};

const STREAMS_NS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

/// The exact `<stream:error/>` bytes (protocol/src/stream/error.rs).
fn stream_error(condition: &str, text: Option<&str>) -> String {
    let text = text
        .map(|t| format!("<text xmlns=\"{STREAMS_NS}\">{t}</text>"))
        .unwrap_or_default();
    format!("<stream:error><{condition} xmlns=\"{STREAMS_NS}\"/>{text}</stream:error>")
}

/// What a standard stream gets after its header was sent: the error, then the close tag.
fn standard_close(condition: &str, text: Option<&str>) -> String {
    format!("{}</stream:stream>", stream_error(condition, text))
}

/// The same for a Flash stream: every unit NUL-terminated.
fn flash_close(condition: &str, text: Option<&str>) -> String {
    format!("{}\0</flash:stream>\0", stream_error(condition, text))
}

/// RFC 6120 §4.9.1.1: an error before the server's header still comes after a header. Checks
/// the header (ours, for the default host, with a fresh 32-hex-digit id) and returns the rest.
fn after_server_header(out: &str) -> &str {
    let prefix = "<?xml version='1.0'?><stream:stream xmlns=\"jabber:client\" \
                  xmlns:stream=\"http://etherx.jabber.org/streams\" id=\"";
    let rest = out
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("no server stream header first: {out:?}"));
    let (id, rest) = rest.split_at(32.min(rest.len()));
    assert!(
        id.bytes().all(|b| b.is_ascii_hexdigit()),
        "stream id {id:?} in {out:?}"
    );
    rest.strip_prefix("\" from=\"localhost\" version=\"1.0\" xml:lang=\"en\">")
        .unwrap_or_else(|| panic!("unexpected header attributes: {out:?}"))
}

fn users(server: &TestServer) {
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    server.add_user("carol@localhost", "christmas");
}

/// The bystander: a Flash client logged in before anything goes wrong.
async fn bystander(server: &TestServer) -> RawClient {
    let (alice, jid) = RawClient::login_flash(server.c2s, "alice", "wonderland", "xiff").await;
    assert_eq!(jid, "alice@localhost/xiff");
    alice
}

/// Proves the bystander's session survived: a ping round trip, and a message from a fresh
/// standard (STARTTLS) client arriving as one NUL-terminated unit.
async fn still_works(server: &TestServer, alice: &mut RawClient, tag: &str) {
    alice.ping(&format!("alive-{tag}"), "\0").await;
    let (mut carol, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "carol", "christmas", tag).await;
    let body = format!("still there? ({tag})");
    carol
        .send(format!("<message type='chat' to='alice@localhost/xiff' id='m-{tag}'><body>{body}</body></message>"))
        .await;
    let unit = next_message(alice).await;
    assert!(
        unit.contains(&format!("from=\"carol@localhost/{tag}\"")),
        "{unit}"
    );
    assert!(unit.contains(&format!("<body>{body}</body>")), "{unit}");
    carol.send("</stream:stream>").await;
    carol.read_to_close().await;
}

/// The next `<message>` unit on a Flash stream (presence and the like are skipped).
async fn next_message(flash: &mut RawClient) -> String {
    loop {
        let unit = flash.read_unit().await;
        if unit.starts_with("<message") {
            return unit;
        }
    }
}

/// A Flash stream up to the features, unauthenticated.
async fn flash_open(server: &TestServer) -> RawClient {
    let mut c = RawClient::connect(server.c2s).await;
    c.send(FLASH_HEADER).await;
    let header = c.read_unit().await;
    assert!(header.contains("<flash:stream "), "{header}");
    let features = c.read_unit().await;
    assert!(features.starts_with("<stream:features>"), "{features}");
    c
}

/// A standard stream before TLS, up to the features (only STARTTLS is offered).
async fn standard_open(server: &TestServer) -> RawClient {
    let mut c = RawClient::connect(server.c2s).await;
    c.send(STREAM_HEADER).await;
    let features = c.read_until("</stream:features>").await;
    assert!(
        features.contains("<stream:features><starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"><required/></starttls></stream:features>"),
        "require_encryption: only STARTTLS is offered: {features}"
    );
    c
}

fn plain_auth(user: &str, password: &str) -> String {
    let token = B64.encode(format!("\0{user}\0{password}"));
    format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
}

/// Standard client over STARTTLS, authenticated with PLAIN and restarted, not yet bound.
async fn standard_authenticated(server: &TestServer, user: &str, password: &str) -> RawClient {
    let (mut c, features) = RawClient::starttls_stream(server.c2s, &server.cert_path()).await;
    assert!(
        features.contains("<mechanism>PLAIN</mechanism>"),
        "{features}"
    );
    c.send(plain_auth(user, password)).await;
    assert_eq!(
        c.read_until("/>").await,
        "<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>"
    );
    c.send(STREAM_HEADER).await;
    let features = c.read_until("</stream:features>").await;
    assert!(
        features.contains("<bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"/>"),
        "{features}"
    );
    c
}

#[tokio::test]
async fn malformed_xml_after_the_header_is_not_well_formed() {
    let server = TestServer::start();
    users(&server);
    let mut alice = bystander(&server).await;

    // Flash: mismatched end tags, a complete unit by depth, refused by the XML parser.
    let mut bad = flash_open(&server).await;
    bad.send("<message><body>x</message></body>\0").await;
    let out = bad.read_to_close().await;
    assert!(out.ends_with("</flash:stream>\0"), "{out:?}");
    assert!(
        out.starts_with(&format!(
            "<stream:error><not-well-formed xmlns=\"{STREAMS_NS}\"/>"
        )),
        "{out:?}"
    );
    assert_eq!(out.matches("<stream:error>").count(), 1, "{out:?}");

    // Flash: `</message>` does not close `<body>`: refused as soon as it arrives.
    let mut bad = flash_open(&server).await;
    bad.send("<message><body>x</message>\0").await;
    assert_eq!(
        bad.read_to_close().await,
        flash_close(
            "not-well-formed",
            Some("end tag does not match its start tag")
        )
    );

    // Standard, over STARTTLS and authenticated.
    let mut bad = standard_authenticated(&server, "bob", "builder").await;
    bad.send("<message><body>x</message></body>").await;
    let out = bad.read_to_close().await;
    assert!(
        out.starts_with(&format!(
            "<stream:error><not-well-formed xmlns=\"{STREAMS_NS}\"/>"
        )),
        "{out:?}"
    );
    assert!(out.ends_with("</stream:error></stream:stream>"), "{out:?}");

    still_works(&server, &mut alice, "nwf").await;
}

/// RFC 6120 §4.9.3.13: a mismatched end tag in a bound session is answered at once, not
/// left waiting for an end tag that would balance the depth.
#[tokio::test]
async fn a_mismatched_end_tag_is_not_well_formed_without_waiting() {
    let server = TestServer::start();
    users(&server);
    let mut alice = bystander(&server).await;

    let (mut bad, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "builder", "desk").await;
    bad.send("<message to='alice@localhost/xiff'><body>x</message>")
        .await;
    let out = bad.read_to_close().await;
    assert!(
        out.ends_with(&standard_close(
            "not-well-formed",
            Some("end tag does not match its start tag")
        )),
        "{out:?}"
    );

    let (mut bad, _) = RawClient::login_flash(server.c2s, "carol", "christmas", "xiff").await;
    bad.send("<message to='alice@localhost/xiff'><body>x</message>\0")
        .await;
    let out = bad.read_to_close().await;
    assert!(
        out.ends_with(&flash_close(
            "not-well-formed",
            Some("end tag does not match its start tag")
        )),
        "{out:?}"
    );

    still_works(&server, &mut alice, "mismatch").await;
}

#[tokio::test]
async fn dtds_comments_and_processing_instructions_are_restricted_xml() {
    let server = TestServer::start();
    users(&server);
    let mut alice = bystander(&server).await;
    let dtd = Some("comments and DTDs are not allowed");

    // Billion laughs in the prolog, before the stream header: refused before any expansion.
    let mut bad = RawClient::connect(server.c2s).await;
    bad.send(concat!(
        "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol \"lol\">",
        "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">",
        "<!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">]>",
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>",
        "<message><body>&lol2;</body></message>"
    ))
    .await;
    let out = bad.read_to_close().await;
    assert_eq!(
        after_server_header(&out),
        standard_close("restricted-xml", dtd)
    );

    // The same DTD after the header (Flash).
    let mut bad = flash_open(&server).await;
    bad.send("<!DOCTYPE lolz [<!ENTITY lol \"lol\">]>\0").await;
    assert_eq!(
        bad.read_to_close().await,
        flash_close("restricted-xml", dtd)
    );

    // A comment between stanzas (Flash).
    let mut bad = flash_open(&server).await;
    bad.send("<!-- hello -->\0").await;
    assert_eq!(
        bad.read_to_close().await,
        flash_close("restricted-xml", dtd)
    );

    // A processing instruction between stanzas (standard, before TLS).
    let mut bad = standard_open(&server).await;
    bad.send("<?php echo 1; ?>").await;
    assert_eq!(
        bad.read_to_close().await,
        standard_close(
            "restricted-xml",
            Some("processing instructions are not allowed")
        )
    );

    // A comment inside a stanza of an authenticated standard session, over TLS.
    let mut bad = standard_authenticated(&server, "bob", "builder").await;
    bad.send("<message to='alice@localhost/xiff'><!-- c --><body>x</body></message>")
        .await;
    assert_eq!(
        bad.read_to_close().await,
        standard_close("restricted-xml", dtd)
    );

    still_works(&server, &mut alice, "restricted").await;
}

#[tokio::test]
async fn an_oversized_stanza_is_a_policy_violation() {
    let server = TestServer::start_with(TestConfig::default().c2s("max_stanza_bytes = 4096"));
    users(&server);
    let mut alice = bystander(&server).await;

    let (mut bob, _) = RawClient::login_flash(server.c2s, "bob", "builder", "big").await;
    let body = "x".repeat(10 * 1024);
    bob.try_send(format!(
        "<message type=\"chat\" to=\"alice@localhost/xiff\" id=\"big\"><body>{body}</body></message>\0"
    ))
    .await
    .expect("send the big stanza");
    let out = bob.read_to_close().await;
    assert_eq!(
        out,
        flash_close("policy-violation", Some("stanza too large"))
    );

    // Nothing of it reached alice: her next message is carol's.
    still_works(&server, &mut alice, "big").await;
}

#[tokio::test]
async fn wrong_passwords_fail_slowly_and_too_many_close_the_stream() {
    let delay = Duration::from_millis(300);
    let server = TestServer::start_with(
        TestConfig::default()
            .c2s("max_auth_failures = 2")
            .c2s("auth_failure_delay_ms = 300"),
    );
    users(&server);
    let mut alice = bystander(&server).await;
    let failure = "<failure xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"><not-authorized/></failure>";
    let wrong = B64.encode("bob@localhost\0bob\0not-the-password");
    let auth = format!(
        "<auth mechanism=\"PLAIN\" xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\">{wrong}</auth>\0"
    );

    let mut bad = flash_open(&server).await;
    for attempt in 1..=2 {
        let started = Instant::now();
        bad.send(&auth).await;
        assert_eq!(bad.read_unit().await, failure, "attempt {attempt}");
        let took = started.elapsed();
        assert!(
            took >= delay,
            "failure {attempt} answered after {took:?}, before the {delay:?} delay"
        );
    }
    // The second failure reached max_auth_failures (RFC 6120 §6.4.5: the server may close).
    assert_eq!(
        bad.read_to_close().await,
        flash_close(
            "not-authorized",
            Some("Too many failed authentication attempts")
        )
    );

    // Standard over STARTTLS: the same SASL failure, and the stream stays usable for a retry.
    let (mut std, _) = RawClient::starttls_stream(server.c2s, &server.cert_path()).await;
    std.send(plain_auth("carol", "wrong")).await;
    assert_eq!(std.read_until("</failure>").await, failure);
    std.send(plain_auth("carol", "christmas")).await;
    assert_eq!(
        std.read_until("/>").await,
        "<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>"
    );

    still_works(&server, &mut alice, "auth").await;
}

/// RFC 6120 §6.4.2: an `<auth/>` naming a mechanism we don't offer, or none at all, is
/// `invalid-mechanism`, and the stream stays open for a proper attempt.
#[tokio::test]
async fn an_unknown_or_missing_sasl_mechanism_is_invalid_mechanism() {
    let server = TestServer::start();
    users(&server);
    let mut alice = bystander(&server).await;
    let invalid =
        "<failure xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"><invalid-mechanism/></failure>";

    for auth in [
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>",
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>AGJvYgBidWlsZGVy</auth>",
    ] {
        let (mut c, features) = RawClient::starttls_stream(server.c2s, &server.cert_path()).await;
        assert!(!features.contains("DIGEST-MD5"), "{features}");
        c.send(auth).await;
        assert_eq!(c.read_until("</failure>").await, invalid, "{auth}");
        // An offered mechanism still works on the same stream.
        c.send(plain_auth("bob", "builder")).await;
        assert_eq!(
            c.read_until("/>").await,
            "<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>"
        );

        // Flash: the same answer, NUL-terminated.
        let mut flash = flash_open(&server).await;
        flash.send(format!("{auth}\0")).await;
        assert_eq!(flash.read_unit().await, invalid, "{auth}");
    }

    still_works(&server, &mut alice, "mech").await;
}

/// RFC 6120 §8.1.3: `id` is required on an iq. One without it is answered `bad-request`
/// (with no `id`, there being none to repeat) and goes nowhere: not to its addressee, not
/// to the server's handlers; before binding too.
#[tokio::test]
async fn an_iq_without_id_is_bad_request_and_goes_nowhere() {
    let server = TestServer::start();
    users(&server);
    let mut alice = bystander(&server).await;
    let bad_request = "<bad-request xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>";

    // Before binding: the bind request without id is refused, one with an id binds.
    let mut c = standard_authenticated(&server, "bob", "builder").await;
    c.send("<iq type='set'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>desk</resource></bind></iq>")
        .await;
    let reply = c.read_until("</iq>").await;
    assert!(
        reply.starts_with("<iq type=\"error\"><error type=\"modify\">")
            && reply.contains(bad_request),
        "{reply}"
    );
    c.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>desk</resource></bind></iq>")
        .await;
    assert!(c
        .read_until("</iq>")
        .await
        .contains("<jid>bob@localhost/desk</jid>"));

    // Bound: to the server (a ping that would be answered with a result) and to alice.
    c.send("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let reply = c.read_until("</iq>").await;
    assert!(
        reply.starts_with("<iq type=\"error\" to=\"bob@localhost/desk\">")
            && reply.contains(bad_request),
        "{reply}"
    );
    c.send("<iq type='get' to='alice@localhost/xiff'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let reply = c.read_until("</iq>").await;
    assert!(
        reply.starts_with(
            "<iq type=\"error\" to=\"bob@localhost/desk\" from=\"alice@localhost/xiff\">"
        ) && reply.contains(bad_request),
        "{reply}"
    );
    // An error iq without id is not answered at all: the next reply is the ping's.
    c.send("<iq type='error' to='alice@localhost/xiff'/>").await;
    c.send("<iq type='get' id='after' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let reply = c.read_until("/>").await;
    assert!(
        reply.starts_with("<iq type=\"result\" id=\"after\""),
        "{reply}"
    );
    // Nothing reached alice: the first stanza she gets is bob's message.
    c.send(
        "<message type='chat' to='alice@localhost/xiff' id='m'><body>only this</body></message>",
    )
    .await;
    let unit = alice.read_unit().await;
    assert!(unit.contains("<body>only this</body>"), "{unit}");

    still_works(&server, &mut alice, "noid").await;
}

#[tokio::test]
async fn binding_an_invalid_resource_is_bad_request_and_a_valid_one_still_works() {
    let server = TestServer::start();
    users(&server);
    let mut alice = bystander(&server).await;

    let mut c = standard_authenticated(&server, "bob", "builder").await;
    let bad_request = "<error type=\"modify\"><bad-request xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error>";
    // RFC 7622 §3.1: at most 1023 bytes; U+E000 (private use) is prohibited by resourceprep.
    for (id, resource) in [
        ("long", "r".repeat(1024)),
        ("pua", "bad\u{E000}res".to_owned()),
    ] {
        c.send(format!(
            "<iq type='set' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
        ))
        .await;
        assert_eq!(
            c.read_until("</iq>").await,
            format!("<iq type=\"error\" id=\"{id}\">{bad_request}</iq>"),
            "resource {id}"
        );
    }
    c.send("<iq type='set' id='ok'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>fine</resource></bind></iq>")
        .await;
    assert_eq!(
        c.read_until("</iq>").await,
        "<iq type=\"result\" id=\"ok\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><jid>bob@localhost/fine</jid></bind></iq>"
    );
    c.ping("bound", "").await;

    still_works(&server, &mut alice, "bind").await;
}

#[tokio::test]
async fn garbage_first_bytes_get_a_header_and_not_well_formed() {
    let server = TestServer::start();
    users(&server);
    let mut alice = bystander(&server).await;

    for junk in [&b"hello\r\n"[..], &b"\x01\x02\xfe\xff\x00junk\x7f"[..]] {
        let mut bad = RawClient::connect(server.c2s).await;
        bad.send(junk).await;
        let out = bad.read_to_close().await;
        assert_eq!(
            after_server_header(&out),
            standard_close("not-well-formed", None),
            "after {junk:?}"
        );
    }

    still_works(&server, &mut alice, "garbage").await;
}

#[tokio::test]
async fn silent_clients_get_connection_timeout() {
    let server = TestServer::start_with(TestConfig::default().c2s("handshake_timeout = 1"));
    users(&server);
    let mut alice = bystander(&server).await;

    // Says nothing at all: RFC 6120 §4.9.3.4, after a header of ours.
    let started = Instant::now();
    let mut silent = RawClient::connect(server.c2s).await;
    let out = silent.read_to_close().await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "closed after {:?}",
        started.elapsed()
    );
    assert_eq!(
        after_server_header(&out),
        standard_close("connection-timeout", None)
    );

    // Sends its header, then nothing.
    let started = Instant::now();
    let mut half = standard_open(&server).await;
    assert_eq!(
        half.read_to_close().await,
        standard_close("connection-timeout", None)
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "closed after {:?}",
        started.elapsed()
    );

    // Flash header, then nothing.
    let mut half = flash_open(&server).await;
    assert_eq!(
        half.read_to_close().await,
        flash_close("connection-timeout", None)
    );

    // The handshake timeout does not apply to sessions that are already bound.
    still_works(&server, &mut alice, "timeout").await;
}

#[tokio::test]
async fn a_spoofed_from_is_invalid_from_and_never_delivered() {
    let server = TestServer::start();
    users(&server);
    let mut alice = bystander(&server).await;
    let (mut carol, _) = RawClient::login_standard(
        server.c2s,
        &server.cert_path(),
        "carol",
        "christmas",
        "desk",
    )
    .await;

    let (mut bob, _) = RawClient::login_flash(server.c2s, "bob", "builder", "spoof").await;
    bob.send("<message from=\"alice@localhost/xiff\" to=\"carol@localhost/desk\" type=\"chat\"><body>spoofed</body></message>\0")
        .await;
    assert_eq!(bob.read_to_close().await, flash_close("invalid-from", None));

    // Standard over TLS: another resource of the sender's own account is a spoof too.
    let (mut bob2, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "builder", "one").await;
    bob2.send("<message from='bob@localhost/other' to='carol@localhost/desk' type='chat'><body>spoofed too</body></message>")
        .await;
    assert_eq!(
        bob2.read_to_close().await,
        standard_close("invalid-from", None)
    );

    // The check runs before routing, so once the error is in, nothing can still arrive:
    // carol's next message is alice's genuine one.
    alice
        .send("<message type=\"chat\" to=\"carol@localhost/desk\" id=\"real\"><body>genuine</body></message>\0")
        .await;
    let received = carol.read_until("</message>").await;
    assert!(!received.contains("spoofed"), "{received}");
    let message = &received[received.rfind("<message").expect("a message")..];
    assert!(
        message.contains("from=\"alice@localhost/xiff\""),
        "{message}"
    );
    assert!(message.contains("<body>genuine</body>"), "{message}");

    still_works(&server, &mut alice, "spoof").await;
}

#[tokio::test]
async fn a_stanza_before_authentication_is_not_authorized() {
    let server = TestServer::start();
    users(&server);
    let mut alice = bystander(&server).await;

    let mut bad = flash_open(&server).await;
    bad.send("<message to=\"alice@localhost/xiff\" type=\"chat\"><body>sneaky</body></message>\0")
        .await;
    assert_eq!(
        bad.read_to_close().await,
        flash_close("not-authorized", None)
    );

    let mut bad = standard_open(&server).await;
    bad.send("<message to='alice@localhost/xiff' type='chat'><body>sneaky</body></message>")
        .await;
    assert_eq!(
        bad.read_to_close().await,
        standard_close("not-authorized", None)
    );

    // Nothing reached alice: her next message is carol's.
    still_works(&server, &mut alice, "preauth").await;
}

#[tokio::test]
async fn a_wrong_stream_namespace_or_unknown_host_is_refused() {
    let server = TestServer::start();
    users(&server);
    let mut alice = bystander(&server).await;

    let mut bad = RawClient::connect(server.c2s).await;
    bad.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' to='localhost' version='1.0'>")
        .await;
    let out = bad.read_to_close().await;
    assert_eq!(
        after_server_header(&out),
        standard_close(
            "invalid-namespace",
            Some("stream root is not in the stream namespace")
        )
    );
    assert!(!out.contains("<stream:features>"), "{out}");

    let mut bad = RawClient::connect(server.c2s).await;
    bad.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='nope.example' version='1.0'>")
        .await;
    let out = bad.read_to_close().await;
    assert_eq!(
        after_server_header(&out),
        standard_close("host-unknown", None)
    );
    assert!(!out.contains("<stream:features>"), "{out}");

    still_works(&server, &mut alice, "ns").await;
}

/// XML 1.0 §2.3: element and attribute names are Names. quick-xml takes whatever precedes `=`
/// as an attribute's name, so `a=''''b='1'` gave an attribute named `''b`, and the message was
/// delivered with it written as is: markup the recipient's parser must refuse, ending that
/// recipient's stream. Found by the `websocket_framing` fuzz target.
#[tokio::test]
async fn a_name_that_is_not_an_xml_name_is_not_well_formed_and_never_delivered() {
    let server = TestServer::start();
    users(&server);
    let mut alice = bystander(&server).await;

    let (mut bob, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "builder", "b").await;
    bob.send(
        "<message type='chat' to='alice@localhost/xiff' a=''''b='1'><body>broken</body></message>",
    )
    .await;
    let out = bob.read_to_close().await;
    assert!(
        out.contains(&format!(
            "<stream:error><not-well-formed xmlns=\"{STREAMS_NS}\"/>"
        )),
        "{out:?}"
    );
    assert!(out.ends_with("</stream:error></stream:stream>"), "{out:?}");

    // Nothing of it reached Alice: her next message is the bystander check's.
    still_works(&server, &mut alice, "names").await;
}
