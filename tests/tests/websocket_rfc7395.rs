//! XMPP over WebSocket (RFC 7395) and XEP-0156 discovery, on the HTTP listener,
//! the HTTPS listener and the c2s ports. The client is tokio-tungstenite (not ours) sending
//! RFC 7395 messages: `<open/>`, one element per text message, `<close/>`.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures::SinkExt;
use jabberwock_tests::xmpp_ws::{assert_open, transport, Got, Io, XmppWs, CLOSE, FRAMING, OPEN};
use jabberwock_tests::{RawClient, TestConfig, TestServer, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

fn config() -> TestConfig {
    TestConfig::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_over_websocket_with_tcp_and_flash_clients() {
    let server = TestServer::start_with(config());
    server.wait_started();
    for user in ["alice", "bob", "carol"] {
        server.add_user(&format!("{user}@localhost"), "pw-secret");
    }
    let http = server.http.expect("HTTP listener");
    let mut alice = XmppWs::connect(http, None).await;
    let alice_jid = alice.login("alice", "pw-secret", "web").await;
    assert_eq!(alice_jid, "alice@localhost/web");
    let (mut bob, bob_jid) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "pw-secret", "tcp").await;
    let (mut carol, carol_jid) =
        RawClient::login_flash(server.c2s, "carol", "pw-secret", "swf").await;

    // Roster get over the WebSocket.
    alice
        .send("<iq xmlns='jabber:client' type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
        .await;
    let roster = alice.recv_containing("id=\"r1\"").await;
    assert!(
        roster.contains("type=\"result\"") && roster.contains("jabber:iq:roster"),
        "{roster}"
    );

    // Presence: alice subscribes to bob (TCP), bob approves, bob's presence reaches alice.
    alice
        .send("<presence xmlns='jabber:client' to='bob@localhost' type='subscribe'/>")
        .await;
    let request = bob.read_stanza_containing("type=\"subscribe\"").await;
    assert!(request.contains("from=\"alice@localhost\""), "{request}");
    bob.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    let approved = alice.recv_containing("type=\"subscribed\"").await;
    assert!(approved.contains("from=\"bob@localhost\""), "{approved}");
    let available = alice
        .recv_containing(&format!(
            "<presence xmlns=\"jabber:client\" from=\"{bob_jid}\""
        ))
        .await;
    assert!(!available.contains("type="), "{available}");

    // Messages both ways with the TCP client.
    alice
        .send(&format!(
            "<message xmlns='jabber:client' to='{bob_jid}' type='chat' id='m1'><body>hello from the web</body></message>"
        ))
        .await;
    let got = bob.read_stanza_containing("hello from the web").await;
    assert!(got.contains(&format!("from=\"{alice_jid}\"")), "{got}");
    bob.send(format!(
        "<message to='{alice_jid}' type='chat' id='m2'><body>hello from tcp</body></message>"
    ))
    .await;
    let got = alice.recv_containing("hello from tcp").await;
    assert!(got.starts_with("<message xmlns=\"jabber:client\""), "{got}");
    assert!(got.contains(&format!("from=\"{bob_jid}\"")), "{got}");

    // And with the Flash client.
    alice
        .send(&format!(
            "<message xmlns='jabber:client' to='{carol_jid}' type='chat'><body>hello flash</body></message>"
        ))
        .await;
    let got = carol.read_until("hello flash").await;
    assert!(got.contains(&format!("from=\"{alice_jid}\"")), "{got}");
    carol
        .send(format!(
            "<message to='{alice_jid}' type='chat'><body>hello from the swf</body></message>\0"
        ))
        .await;
    let got = alice.recv_containing("hello from the swf").await;
    assert!(got.contains(&format!("from=\"{carol_jid}\"")), "{got}");

    alice.assert_framing();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_restart_ping_and_close() {
    let server = TestServer::start_with(config());
    server.wait_started();
    server.add_user("dave@localhost", "pw-secret");
    let mut ws = XmppWs::connect(server.http.expect("HTTP listener"), None).await;
    ws.login("dave", "pw-secret", "r").await;

    // WebSocket ping → pong (RFC 6455 §5.5.2), and the stream goes on.
    ws.ws
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    ws.send("<iq xmlns='jabber:client' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let pong = ws.recv_containing("id=\"p1\"").await;
    assert!(pong.contains("type=\"result\""), "{pong}");
    assert_eq!(ws.pongs, vec![b"are you there".to_vec()]);

    // RFC 7395 §3.6: the client's <close/> is answered with <close/>, then the WebSocket
    // closing handshake.
    ws.send(CLOSE).await;
    let (texts, end) = ws.rest_until_closed().await;
    assert_eq!(
        texts.last().map(String::as_str),
        Some("<close xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\"/>"),
        "{texts:?}"
    );
    assert_eq!(end, Got::Closed);
    ws.assert_framing();
    // Two <open/> answers (first stream and the restart after SASL), each its own message.
    assert_eq!(
        ws.seen.iter().filter(|m| m.starts_with("<open ")).count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_message_is_a_stream_error_then_close() {
    let server = TestServer::start_with(config());
    let http = server.http.expect("HTTP listener");
    for bad in [
        // Not one complete element (RFC 7395 §3.3.2).
        "<message xmlns='jabber:client' to='a@localhost'><body>unfinished",
        "<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>",
        "<message><body>x</message>",
    ] {
        let mut ws = XmppWs::connect(http, None).await;
        ws.open().await;
        ws.send(bad).await;
        let (texts, end) = ws.rest_until_closed().await;
        assert_eq!(texts.len(), 2, "{bad}: {texts:?}");
        assert!(
            texts[0].starts_with(
                "<stream:error xmlns:stream=\"http://etherx.jabber.org/streams\"><not-well-formed"
            ),
            "{bad}: {texts:?}"
        );
        assert_eq!(
            texts[1],
            "<close xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\"/>"
        );
        assert_eq!(end, Got::Closed, "{bad}");
    }

    // An error before the client's <open/>: our <open/> first, then the error (§3.5).
    let mut ws = XmppWs::connect(http, None).await;
    ws.send("<presence xmlns='jabber:client'/>").await;
    let (texts, end) = ws.rest_until_closed().await;
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert_open(&texts[0]);
    assert!(
        texts[1].starts_with("<stream:error xmlns:stream="),
        "{texts:?}"
    );
    assert_eq!(
        texts[2],
        "<close xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\"/>"
    );
    assert_eq!(end, Got::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_subprotocol_is_refused() {
    let server = TestServer::start_with(config());
    let http = server.http.expect("HTTP listener");
    for protocol in [None, Some("chat")] {
        match XmppWs::try_connect(http, None, "/xmpp-websocket", protocol).await {
            Err(WsError::Http(response)) => {
                assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{protocol:?}")
            }
            Err(e) => panic!("{protocol:?}: expected HTTP 400, got {e}"),
            Ok(_) => panic!("{protocol:?}: upgraded without the xmpp subprotocol"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn see_other_uri_answers_the_open() {
    let server = TestServer::start_with(config().section(
        "http",
        "websocket_see_other_uri = \"wss://elsewhere.example/xmpp-websocket\"",
    ));
    let mut ws = XmppWs::connect(server.http.expect("HTTP listener"), None).await;
    ws.send(OPEN).await;
    let (texts, end) = ws.rest_until_closed().await;
    assert_eq!(
        texts,
        vec![format!(
            "<close xmlns=\"{FRAMING}\" see-other-uri=\"wss://elsewhere.example/xmpp-websocket\"/>"
        )]
    );
    assert_eq!(end, Got::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_on_the_tls_listener() {
    // Plain ws:// from loopback would count as encrypted by default: turn that off, so only
    // the TLS of the HTTPS listener makes this stream encrypted.
    let server = TestServer::start_with(config().section("http", "loopback_is_encrypted = false"));
    server.wait_started();
    server.add_user("erin@localhost", "pw-secret");
    let https = server.listening("https").expect("HTTPS listener");
    let mut ws = XmppWs::connect(https, Some(&server.cert_path())).await;
    let jid = ws.login("erin", "pw-secret", "secure").await;
    assert_eq!(jid, "erin@localhost/secure");
    ws.send("<iq xmlns='jabber:client' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    assert!(ws
        .recv_containing("id=\"p1\"")
        .await
        .contains("type=\"result\""));
    ws.assert_framing();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_ws_follows_require_encryption() {
    let server = TestServer::start_with(config().section("http", "loopback_is_encrypted = false"));
    let mut ws = XmppWs::connect(server.http.expect("HTTP listener"), None).await;
    let features = ws.open().await;
    // c2s.require_encryption (default on), no STARTTLS possible: nothing to offer.
    assert_eq!(
        features,
        "<stream:features xmlns:stream=\"http://etherx.jabber.org/streams\"/>"
    );
    let token = B64.encode("\0x\0y");
    ws.send(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
    ))
    .await;
    let failure = ws.recv().await;
    assert!(failure.contains("<encryption-required/>"), "{failure}");
}

/// A WebSocket on the c2s port takes the one place its TCP connection has under
/// `c2s.max_connections`, not a second one: with a cap of one it gets in, and while it is
/// open no other connection does; once it is closed, the next one gets the place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_on_the_c2s_port_counts_once_against_max_connections() {
    let server = TestServer::start_with(config().c2s("max_connections = 1"));
    server.wait_started();
    server.add_user("frank@localhost", "pw-secret");
    let mut frank = XmppWs::connect(server.c2s, None).await;
    frank.login("frank", "pw-secret", "ws").await;
    // Accepted by the kernel, but no place: the stream layer never answers it.
    let mut waiting = RawClient::connect(server.c2s).await;
    waiting
        .send("<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
        .await;
    let early = waiting.read_for(Duration::from_millis(500)).await;
    assert_eq!(early, "", "a second connection was served over the cap");
    frank.send(CLOSE).await;
    frank.rest_until_closed().await;
    drop(frank);
    // The place is given back: the waiting connection is served.
    let header = waiting.read_until("<stream:features").await;
    assert!(header.contains("<stream:stream"), "{header}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_and_tcp_sessions_on_the_c2s_port() {
    let server = TestServer::start_with(config());
    server.wait_started();
    server.add_user("frank@localhost", "pw-secret");
    server.add_user("grace@localhost", "pw-secret");
    // A WebSocket on the c2s port (5222): the stream layer hands the HTTP request over.
    let mut frank = XmppWs::connect(server.c2s, None).await;
    let frank_jid = frank.login("frank", "pw-secret", "ws").await;
    // And an ordinary TCP session on the same port.
    let (mut grace, grace_jid) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "grace", "pw-secret", "tcp")
            .await;
    frank
        .send(&format!(
            "<message xmlns='jabber:client' to='{grace_jid}' type='chat'><body>same port</body></message>"
        ))
        .await;
    let got = grace.read_stanza_containing("same port").await;
    assert!(got.contains(&format!("from=\"{frank_jid}\"")), "{got}");
    grace
        .send(format!(
            "<message to='{frank_jid}' type='chat'><body>back on 5222</body></message>"
        ))
        .await;
    let got = frank.recv_containing("back on 5222").await;
    assert!(got.contains(&format!("from=\"{grace_jid}\"")), "{got}");
    frank.assert_framing();

    // wss:// on the direct TLS port works the same way (TLS first, then HTTP inside).
    let mut secure = XmppWs::connect(server.direct_tls, Some(&server.cert_path())).await;
    let features = secure.open().await;
    assert!(
        features.contains("<mechanism>PLAIN</mechanism>"),
        "{features}"
    );
}

/// One HTTP/1.1 GET over `io`; returns the status line, the headers and the body.
async fn get(mut io: Box<dyn Io>, path: &str, host: &str) -> (String, String) {
    io.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    timeout(WAIT, io.read_to_end(&mut response))
        .await
        .expect("response in time")
        .ok();
    let response = String::from_utf8(response).expect("UTF-8 response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a complete response");
    (head.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_meta_lists_websocket_and_bosh() {
    let server = TestServer::start_with(config());
    let http = server.http.expect("HTTP listener");

    let (head, xml) = get(
        transport(http, None).await,
        "/.well-known/host-meta",
        "chat.example:5280",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/xrd+xml"),
        "{head}"
    );
    assert!(
        xml.contains("<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>"),
        "{xml}"
    );
    assert!(
        xml.contains("<Link rel=\"urn:xmpp:alt-connections:websocket\" href=\"ws://chat.example:5280/xmpp-websocket\"/>"),
        "{xml}"
    );
    assert!(
        xml.contains("<Link rel=\"urn:xmpp:alt-connections:xbosh\" href=\"http://chat.example:5280/http-bind\"/>"),
        "{xml}"
    );

    // The JSON form, over TLS: the secure schemes.
    let https = server.listening("https").expect("HTTPS listener");
    let (head, json) = get(
        transport(https, Some(&server.cert_path())).await,
        "/.well-known/host-meta.json",
        "chat.example:5281",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let links = doc["links"].as_array().expect("links");
    let href = |rel: &str| {
        links
            .iter()
            .find(|l| l["rel"] == rel)
            .and_then(|l| l["href"].as_str())
            .map(str::to_owned)
    };
    assert_eq!(
        href("urn:xmpp:alt-connections:websocket").as_deref(),
        Some("wss://chat.example:5281/xmpp-websocket")
    );
    assert_eq!(
        href("urn:xmpp:alt-connections:xbosh").as_deref(),
        Some("https://chat.example:5281/http-bind")
    );

    // On the c2s port too (same HTTP stack).
    let (head, xml) = get(
        transport(server.c2s, None).await,
        "/.well-known/host-meta",
        "localhost",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(xml.contains("ws://localhost/xmpp-websocket"), "{xml}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_meta_uses_public_url_and_omits_what_is_off() {
    let server = TestServer::start_with(
        config()
            .section("http", "public_url = \"https://chat.example.com\"")
            .section("http", "bosh_path = \"\""),
    );
    let (_, json) = get(
        transport(server.http.expect("HTTP listener"), None).await,
        "/.well-known/host-meta.json",
        "127.0.0.1",
    )
    .await;
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(
        doc,
        serde_json::json!({"links": [
            {"rel": "urn:xmpp:alt-connections:websocket", "href": "wss://chat.example.com/xmpp-websocket"}
        ]})
    );
}
