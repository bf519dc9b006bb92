//! The dedicated Flash socket policy listener (port 843 by default, here an
//! ephemeral port). It answers `<policy-file-request/>` + NUL with the policy built from
//! config, byte for byte, plus one NUL, then closes; anything else is closed without a byte
//! (docs/flash-protocol.md §5). An address it cannot bind is skipped, not fatal.

use std::time::{Duration, Instant};

use jabberwock_tests::{RawClient, TestConfig, TestServer};

const REQUEST: &str = "<policy-file-request/>\0";

fn configured() -> TestServer {
    TestServer::start_with(
        TestConfig::default()
            .flash("policy_domains = [\"*.example.org\", \"chat.example.com\"]")
            .flash("policy_ports = \"5222,5229\""),
    )
}

/// What Flash Player gets for that config: the document, one NUL.
const EXPECTED: &str = "<?xml version=\"1.0\"?><cross-domain-policy><site-control permitted-cross-domain-policies=\"master-only\"/><allow-access-from domain=\"*.example.org\" to-ports=\"5222,5229\"/><allow-access-from domain=\"chat.example.com\" to-ports=\"5222,5229\"/></cross-domain-policy>\0";

#[tokio::test]
async fn answers_byte_exactly_from_config_then_closes() {
    let server = configured();
    let addr = server.flash_policy.expect("policy listener");
    let mut client = RawClient::connect(addr).await;
    client.send(REQUEST).await;
    assert_eq!(client.read_to_close().await, EXPECTED);

    // The same document as on the c2s port.
    let mut c2s = RawClient::connect(server.c2s).await;
    c2s.send(REQUEST).await;
    assert_eq!(c2s.read_to_close().await, EXPECTED);
}

#[tokio::test]
async fn default_policy_grants_the_c2s_ports() {
    let server = TestServer::start();
    let mut client = RawClient::connect(server.flash_policy.expect("policy listener")).await;
    client.send(REQUEST).await;
    let port = server.c2s.port();
    assert_eq!(
        client.read_to_close().await,
        format!("<?xml version=\"1.0\"?><cross-domain-policy><site-control permitted-cross-domain-policies=\"master-only\"/><allow-access-from domain=\"*\" to-ports=\"{port}\"/></cross-domain-policy>\0")
    );
}

#[tokio::test]
async fn request_split_across_two_writes_is_answered() {
    let server = configured();
    let mut client = RawClient::connect(server.flash_policy.unwrap()).await;
    client.send("<policy-file").await;
    // Only to put the two halves in separate TCP segments; nothing waits on it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.send("-request/>\0").await;
    assert_eq!(client.read_to_close().await, EXPECTED);
}

#[tokio::test]
async fn anything_else_is_closed_without_a_byte() {
    let server = configured();
    let addr = server.flash_policy.unwrap();
    for garbage in [
        "hello\0",
        "GET /crossdomain.xml HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "<?xml version=\"1.0\"?><flash:stream xmlns=\"jabber:client\" xmlns:flash=\"http://www.jabber.com/streams/flash\" to=\"localhost\" version=\"1.0\">\0",
        "<policy-file-request/>and more\0",
    ] {
        let mut client = RawClient::connect(addr).await;
        client.send(garbage).await;
        let started = Instant::now();
        assert_eq!(client.read_to_close().await, "", "{garbage:?}");
        // Refused at once, not after the request timeout.
        assert!(started.elapsed() < Duration::from_secs(3), "{garbage:?}");
    }
    // A long line without a NUL is cut off too.
    let mut client = RawClient::connect(addr).await;
    let _ = client.try_send("x".repeat(2000)).await;
    assert_eq!(client.read_to_close().await, "");
}

#[tokio::test]
async fn silence_is_closed_after_the_timeout_without_a_byte() {
    let server = configured();
    let mut client = RawClient::connect(server.flash_policy.unwrap()).await;
    let started = Instant::now();
    assert_eq!(client.read_to_close().await, "");
    let waited = started.elapsed();
    // The listener waits 5 s for a request.
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
}

#[tokio::test]
async fn an_address_in_use_is_skipped_and_the_server_still_serves() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().unwrap();
    let server = TestServer::start_with(
        TestConfig::default().flash(&format!("policy_listen = [\"{addr}\"]")),
    );
    server.add_user("alice@localhost", "wonderland");
    assert_eq!(server.flash_policy, None, "{}", server.log_text());
    let log = server.log_text();
    let warning = log
        .lines()
        .find(|l| l.contains(&addr.to_string()))
        .unwrap_or_else(|| panic!("no log line names {addr}:\n{log}"));
    assert!(
        warning.contains("WARN")
            && warning.contains("Flash socket policy")
            && warning.contains("in use")
            && warning.contains("c2s port"),
        "{warning}"
    );
    // c2s works, policy included.
    let (mut flash, jid) = RawClient::login_flash(server.c2s, "alice", "wonderland", "xiff").await;
    assert_eq!(jid, "alice@localhost/xiff");
    flash.ping("p1", "\0").await;
    let mut policy = RawClient::connect(server.c2s).await;
    policy.send(REQUEST).await;
    assert!(policy
        .read_to_close()
        .await
        .ends_with("</cross-domain-policy>\0"));
    drop(taken);
}

#[tokio::test]
async fn off_when_empty_or_when_flash_is_disabled() {
    let server = TestServer::start_with(TestConfig::default().flash("policy_listen = []"));
    server.wait_started();
    assert_eq!(server.flash_policy, None, "{}", server.log_text());
    let server = TestServer::start_with(TestConfig::default().flash("enabled = false"));
    server.wait_started();
    assert_eq!(server.flash_policy, None, "{}", server.log_text());
    // The Ruffle endpoint goes with it (the HTTP listener stays for the web transports).
    let http = server
        .http
        .expect("the HTTP listener serves the web transports");
    let mut c = RawClient::connect(http).await;
    c.send("GET /flash HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    let answer = c.read_to_close().await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}
