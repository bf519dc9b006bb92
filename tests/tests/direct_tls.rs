//! Direct TLS (XEP-0368) on the direct TLS port, TLS sniffed on the
//! STARTTLS port too, and a plaintext stream on the direct TLS port refused.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jabberwock_tests::raw::STREAM_HEADER;
use jabberwock_tests::slix::Slix;
use jabberwock_tests::{RawClient, TestServer};

/// After TLS the offer is SASL, with PLAIN, and no STARTTLS (RFC 6120 §5.3.1: TLS is done).
fn assert_secured_offer(features: &str) {
    assert!(!features.contains("starttls"), "{features}");
    assert!(
        features.contains("<mechanism>SCRAM-SHA-256</mechanism>"),
        "{features}"
    );
    assert!(
        features.contains("<mechanism>SCRAM-SHA-1</mechanism>"),
        "{features}"
    );
    assert!(
        features.contains("<mechanism>PLAIN</mechanism>"),
        "{features}"
    );
}

/// TLS first, then a standard stream, PLAIN, restart and bind, step by step.
async fn login_over_tls(
    server: &TestServer,
    addr: std::net::SocketAddr,
    resource: &str,
) -> RawClient {
    let mut c = RawClient::connect_tls(addr, &server.cert_path()).await;
    c.send(STREAM_HEADER).await;
    let features = c.read_until("</stream:features>").await;
    assert!(
        features.starts_with("<?xml version='1.0'?><stream:stream "),
        "{features}"
    );
    assert_secured_offer(&features);
    let token = B64.encode("\0bob\0builder");
    c.send(format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
    ))
    .await;
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
    c.send(format!(
        "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
    ))
    .await;
    assert_eq!(
        c.read_until("</iq>").await,
        format!("<iq type=\"result\" id=\"b1\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><jid>bob@localhost/{resource}</jid></bind></iq>")
    );
    c
}

#[tokio::test]
async fn raw_client_logs_in_over_direct_tls() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let (mut flash, _) = RawClient::login_flash(server.c2s, "alice", "wonderland", "xiff").await;

    let mut bob = login_over_tls(&server, server.direct_tls, "direct").await;
    bob.ping("p1", "").await;
    bob.send("<message type='chat' to='alice@localhost/xiff' id='d1'><body>over direct TLS</body></message>")
        .await;
    let unit = loop {
        let unit = flash.read_unit().await;
        if unit.starts_with("<message") {
            break unit;
        }
    };
    assert!(unit.contains("from=\"bob@localhost/direct\""), "{unit}");
    assert!(unit.contains("<body>over direct TLS</body>"), "{unit}");

    // The harness helper does the same flow.
    let (mut again, jid) = RawClient::login_direct_tls(
        server.direct_tls,
        &server.cert_path(),
        "bob",
        "builder",
        "helper",
    )
    .await;
    assert_eq!(jid, "bob@localhost/helper");
    again.ping("p2", "").await;
}

#[tokio::test]
async fn slixmpp_direct_tls_scram_sha1_chats_with_a_flash_client() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let (mut flash, _) = RawClient::login_flash(server.c2s, "alice", "wonderland", "xiff").await;

    let port = server.direct_tls.port().to_string();
    let cert = server.cert_path();
    let mut slix = Slix::spawn(&[
        "--jid",
        "bob@localhost/slix",
        "--password",
        "builder",
        "--port",
        &port,
        "--cafile",
        cert.to_str().unwrap(),
        "--direct-tls",
        "--mechanism",
        "SCRAM-SHA-1",
        "--send-to",
        "alice@localhost",
        "--body",
        "hello flash, over direct TLS",
        "--expect-from",
        "alice@localhost",
    ]);
    let auth = slix.expect("auth_success").await;
    assert!(auth.contains("\"SCRAM-SHA-1\""), "{auth}");
    slix.expect("session_start").await;

    let message = loop {
        let unit = flash.read_unit().await;
        if unit.starts_with("<message") {
            break unit;
        }
    };
    assert!(message.contains("from=\"bob@localhost/slix\""), "{message}");
    assert!(
        message.contains("<body>hello flash, over direct TLS</body>"),
        "{message}"
    );

    flash
        .send("<message type=\"chat\" to=\"bob@localhost/slix\" id=\"m_1\"><body>hi back over TLS</body></message>\0")
        .await;
    let received = slix.expect("\"event\": \"received\"").await;
    assert!(received.contains("alice@localhost/xiff"), "{received}");
    assert!(received.contains("hi back over TLS"), "{received}");
    assert!(slix.finish().await, "slixmpp reported failure");
}

#[tokio::test]
async fn tls_on_the_starttls_port_is_sniffed_and_accepted() {
    let server = TestServer::start();
    server.add_user("bob@localhost", "builder");
    let mut bob = login_over_tls(&server, server.c2s, "sniffed").await;
    bob.ping("p1", "").await;
}

#[tokio::test]
async fn plaintext_on_the_direct_tls_port_is_refused() {
    let server = TestServer::start();
    server.add_user("bob@localhost", "builder");
    let mut c = RawClient::connect(server.direct_tls).await;
    c.send(STREAM_HEADER).await;
    let out = c.read_to_close().await;
    assert!(
        !out.contains("<stream:features"),
        "features offered in clear text: {out}"
    );
    assert!(!out.contains("<mechanism"), "{out}");
    assert!(
        out.ends_with("<stream:error><not-well-formed xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/></stream:error></stream:stream>"),
        "{out:?}"
    );
}

#[tokio::test]
async fn alpn_is_xmpp_client_on_xmpp_ports_and_http_on_the_https_listener() {
    use jabberwock_tests::tls::negotiated_alpn;
    let server = TestServer::start();
    server.wait_started();
    let cert = server.cert_path();
    let https = server.listening("https").expect("HTTPS listener");
    // What Chromium and curl offer: h2 and http/1.1; only HTTP/1.1 is served.
    let browser: &[&[u8]] = &[b"h2", b"http/1.1"];
    let chosen = negotiated_alpn(https, &cert, browser).await;
    assert_eq!(chosen.expect("HTTPS handshake"), Some(b"http/1.1".to_vec()));
    // A client without ALPN still gets in.
    let chosen = negotiated_alpn(https, &cert, &[]).await;
    assert_eq!(chosen.expect("HTTPS handshake without ALPN"), None);
    // XEP-0368: the XMPP direct TLS port (and TLS sniffed on the c2s port) says xmpp-client.
    for port in [server.direct_tls, server.c2s] {
        let chosen = negotiated_alpn(port, &cert, &[b"xmpp-client", b"http/1.1"]).await;
        assert_eq!(
            chosen.expect("direct TLS handshake"),
            Some(b"xmpp-client".to_vec())
        );
    }
}
