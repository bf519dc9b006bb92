//! The Flash socket policy (docs/flash-protocol.md §5) served on the
//! c2s port: `<policy-file-request/>` NUL in, exactly one policy document and one NUL out, then
//! the server closes the connection.

use std::time::Duration;

use jabberwock_tests::{RawClient, TestConfig, TestServer};

const REQUEST: &str = "<policy-file-request/>\0";

fn policy(rules: &[(&str, &str)]) -> String {
    let mut doc = String::from(
        "<?xml version=\"1.0\"?><cross-domain-policy><site-control permitted-cross-domain-policies=\"master-only\"/>",
    );
    for (domain, ports) in rules {
        doc.push_str(&format!(
            "<allow-access-from domain=\"{domain}\" to-ports=\"{ports}\"/>"
        ));
    }
    doc.push_str("</cross-domain-policy>\0");
    doc
}

#[tokio::test]
async fn policy_request_gets_the_default_policy_for_the_c2s_port_then_close() {
    let server = TestServer::start();
    let mut c = RawClient::connect(server.c2s).await;
    c.send(REQUEST).await;
    // Default policy_ports: the port the c2s listener actually has.
    let port = server.c2s.port().to_string();
    assert_eq!(c.read_to_close().await, policy(&[("*", &port)]));
}

#[tokio::test]
async fn configured_domains_and_ports_are_listed() {
    let server = TestServer::start_with(
        TestConfig::default()
            .flash("policy_domains = [\"example.com\", \"*.example.org\"]")
            .flash("policy_ports = \"5222,5229\""),
    );
    let mut c = RawClient::connect(server.c2s).await;
    c.send(REQUEST).await;
    assert_eq!(
        c.read_to_close().await,
        policy(&[("example.com", "5222,5229"), ("*.example.org", "5222,5229")])
    );
}

#[tokio::test]
async fn a_request_split_across_two_writes_is_answered() {
    let server = TestServer::start();
    let mut c = RawClient::connect(server.c2s).await;
    c.send("<policy-file").await;
    // A prefix alone is not enough to decide: no answer, no close.
    assert_eq!(c.read_for(Duration::from_millis(300)).await, "");
    c.send("-request/>\0").await;
    let port = server.c2s.port().to_string();
    assert_eq!(c.read_to_close().await, policy(&[("*", &port)]));
}

#[tokio::test]
async fn no_policy_when_flash_is_disabled() {
    let server = TestServer::start_with(TestConfig::default().flash("enabled = false"));
    let mut c = RawClient::connect(server.c2s).await;
    c.send(REQUEST).await;
    let out = c.read_to_close().await;
    assert!(!out.contains("cross-domain-policy"), "{out:?}");
    // Not an XMPP stream either: the stream-level answer to unrecognised bytes.
    assert!(
        out.ends_with("<stream:error><not-well-formed xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/></stream:error></stream:stream>"),
        "{out:?}"
    );
}
