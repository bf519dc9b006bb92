//! The slow-client policy: a client that stops reading while stanzas keep arriving for it is
//! disconnected once its queue is full (256 stanzas), with a warning in the log, and nothing
//! sent to it is lost: what it never read is handled as undeliverable (RFC 6121 §8.5.3.2),
//! here kept offline (XEP-0160) and delivered at the user's next login.

mod im_support;

use std::collections::BTreeSet;

use im_support::attr;
use jabberwock_tests::{RawClient, TestConfig, TestServer};

/// Enough 32 KiB messages to fill the socket buffers (a few MiB) and then the queue.
const MESSAGES: usize = 600;

/// The ids of the complete messages in `stream` (a cut last one is not complete).
fn complete_message_ids(stream: &str) -> Vec<String> {
    stream
        .split("<message")
        .skip(1)
        .filter(|m| m.contains("</message>"))
        .filter_map(|m| attr(&format!("<message{m}"), "id"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected_and_loses_nothing() {
    let server = TestServer::start_with(
        TestConfig::default().section("offline", &format!("max_messages = {MESSAGES}")),
    );
    server.wait_started();
    server.add_user("alice@localhost", "pw-a");
    server.add_user("bob@localhost", "pw-b");
    let cert = server.cert_path();
    let (mut stuck, _) =
        RawClient::login_standard(server.c2s, &cert, "alice", "pw-a", "stuck").await;
    let (mut bob, _) = RawClient::login_standard(server.c2s, &cert, "bob", "pw-b", "home").await;

    let body = "x".repeat(32 * 1024);
    for n in 0..MESSAGES {
        bob.send(format!(
            "<message type='chat' to='alice@localhost/stuck' id='m{n}'><body>{body}</body></message>"
        ))
        .await;
    }
    let before = bob.until_pong("sent").await;
    assert!(!before.contains("type=\"error\""), "{before}");
    assert!(
        server.wait_log("client reads too slowly"),
        "no warning: {}",
        server.log_text()
    );

    // The stuck client now reads what reached it, then the server's close.
    let read = stuck.read_to_close().await;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for id in complete_message_ids(&read) {
        assert!(seen.insert(id.clone()), "{id} twice on the stuck stream");
    }
    assert!(seen.len() < MESSAGES, "the client was not cut off");

    // The rest waited offline, each message once.
    let (mut alice, _) =
        RawClient::login_standard_no_presence(server.c2s, &cert, "alice", "pw-a", "desk").await;
    alice.send("<presence/>").await;
    while seen.len() < MESSAGES {
        let stanza = alice.read_stanza_containing("<message").await;
        assert!(stanza.contains("urn:xmpp:delay"), "not from storage");
        let id = attr(&stanza, "id").unwrap_or_default();
        assert!(seen.insert(id.clone()), "{id} delivered twice");
    }
    let expected: BTreeSet<String> = (0..MESSAGES).map(|n| format!("m{n}")).collect();
    assert_eq!(seen, expected);
}
