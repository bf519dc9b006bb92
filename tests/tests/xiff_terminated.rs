//! XIFF 3 (and the Flex clients built on it) may open with its "terminated" standard header,
//! a self-closed `<stream:stream … />`, and then go on as on an open stream, as Openfire let
//! it: stanzas, a restart with the same header after SASL, perhaps `</stream:stream>`. Over
//! a binary socket the bytes come bare; over XMLSocket each unit ends in a NUL, and the
//! client sees only what we NUL-terminate, so such a stream is served as a Flash stream.
//! (The same through Ruffle's `/flash` endpoint: tests/tests/flash_proxy.rs.)

use jabberwock_tests::raw::{xiff_plain_auth, XIFF_TERMINATED_HEADER};
use jabberwock_tests::{RawClient, TestConfig, TestServer};

const SUCCESS: &str = "<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>";

fn bind_request(resource: &str) -> String {
    format!("<iq type=\"set\" id=\"bind_1\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><resource>{resource}</resource></bind></iq>")
}

#[tokio::test]
async fn a_self_closed_standard_header_opens_the_stream_on_a_binary_socket() {
    // XIFF has no STARTTLS: this host lets standard clients log in without TLS.
    let server = TestServer::start_with(
        TestConfig::default()
            .c2s("require_encryption = false")
            .c2s("allow_plain_without_tls = true"),
    );
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let (mut bob, _) = RawClient::login_flash(server.c2s, "bob", "builder", "xiff").await;

    let mut c = RawClient::connect(server.c2s).await;
    c.send(XIFF_TERMINATED_HEADER).await;
    let open = c.read_until("</stream:features>").await;
    assert!(
        open.starts_with("<?xml version='1.0'?><stream:stream ")
            && open.contains("<mechanism>PLAIN</mechanism>")
            && !open.contains("</stream:stream>"),
        "{open}"
    );
    c.send(xiff_plain_auth("alice", "wonderland")).await;
    assert_eq!(c.read_until("/>").await, SUCCESS);
    // The restart header is self-closed again.
    c.send(XIFF_TERMINATED_HEADER).await;
    let restart = c.read_until("</stream:features>").await;
    assert!(
        restart.contains("<stream:stream ") && restart.contains("urn:ietf:params:xml:ns:xmpp-bind"),
        "{restart}"
    );
    c.send(bind_request("xiff3")).await;
    let bound = c.read_until("</iq>").await;
    assert!(
        bound.contains("<jid>alice@localhost/xiff3</jid>"),
        "{bound}"
    );

    c.send("<message type=\"chat\" to=\"bob@localhost/xiff\" id=\"m1\"><body>from a terminated stream</body></message>")
        .await;
    let unit = bob.read_unit().await;
    assert!(
        unit.contains("from=\"alice@localhost/xiff3\"")
            && unit.contains("<body>from a terminated stream</body>"),
        "{unit}"
    );
    bob.send("<message type=\"chat\" to=\"alice@localhost/xiff3\" id=\"m2\"><body>back</body></message>\0")
        .await;
    let back = c.read_until("</message>").await;
    assert!(back.contains("<body>back</body>"), "{back}");

    // The stream closes when the client sends the close tag, not before.
    c.send("</stream:stream>").await;
    assert_eq!(c.read_to_close().await, "</stream:stream>");
}

#[tokio::test]
async fn a_nul_terminated_self_closed_standard_header_is_a_flash_stream() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let (mut bob, _) = RawClient::login_flash(server.c2s, "bob", "builder", "xiff").await;

    let mut c = RawClient::connect(server.c2s).await;
    c.send(format!("{XIFF_TERMINATED_HEADER}\0")).await;
    // Framed and offered as to any Flash client: NUL-terminated units, PLAIN without TLS.
    let header = c.read_unit().await;
    assert!(header.contains("<flash:stream "), "{header}");
    let features = c.read_unit().await;
    assert!(
        features.starts_with("<stream:features>")
            && features.contains("<mechanism>PLAIN</mechanism>")
            && !features.contains("starttls"),
        "{features}"
    );
    c.send(format!("{}\0", xiff_plain_auth("alice", "wonderland")))
        .await;
    assert_eq!(c.read_unit().await, SUCCESS);
    c.send(format!("{XIFF_TERMINATED_HEADER}\0")).await;
    let restart = c.read_unit().await;
    assert!(
        restart.contains("<flash:stream ") && restart.ends_with("</stream:features>"),
        "{restart}"
    );
    c.send(format!("{}\0", bind_request("xiff3"))).await;
    let bound = c.read_unit().await;
    assert!(
        bound.contains("<jid>alice@localhost/xiff3</jid>"),
        "{bound}"
    );

    // A keepalive as XIFF sends it, then a message each way.
    c.send(" \0<message type=\"chat\" to=\"bob@localhost/xiff\" id=\"m1\"><body>hi bob</body></message>\0")
        .await;
    let unit = bob.read_unit().await;
    assert!(unit.contains("<body>hi bob</body>"), "{unit}");
    bob.send("<message type=\"chat\" to=\"alice@localhost/xiff3\" id=\"m2\"><body>hi alice</body></message>\0")
        .await;
    let unit = c.read_unit().await;
    assert!(unit.contains("<body>hi alice</body>"), "{unit}");

    c.send("</stream:stream>\0").await;
    assert_eq!(c.read_to_close().await, "</flash:stream>\0");
}
