//! XEP-0352 Client State Indication end to end: while alice's client says it is inactive,
//! her contact's presence updates wait (only the latest of each of his resources kept)
//! until it says it is active again; a message goes at once, after what was held. Exact
//! bytes with our raw client, and slixmpp's own xep_0352 plugin.

use std::time::Duration;

use jabberwock_tests::slix::SlixIm;
use jabberwock_tests::{RawClient, TestServer};

const INACTIVE: &str = "<inactive xmlns='urn:xmpp:csi:0'/>";
const ACTIVE: &str = "<active xmlns='urn:xmpp:csi:0'/>";
/// How long a presence that is not held would take, at most, to reach a client on loopback
/// once its sender's echo came back.
const QUIET: Duration = Duration::from_secs(1);

fn server() -> TestServer {
    let server = TestServer::start();
    server.wait_started();
    server.add_user("alice@localhost", "pw-alice");
    server.add_user("bob@localhost", "pw-bob");
    server
}

async fn login(server: &TestServer, user: &str, resource: &str) -> RawClient {
    let password = format!("pw-{user}");
    RawClient::login_standard(server.c2s, &server.cert_path(), user, &password, resource)
        .await
        .0
}

/// Bob broadcasts presence with `status`; once its echo is back, a copy is in the inbox of
/// each of his subscribers' sessions (the echo is queued after them).
async fn bob_status(bob: &mut RawClient, id: &str, status: &str) {
    bob.send(format!(
        "<presence id='{id}'><show>away</show><status>{status}</status></presence>"
    ))
    .await;
    bob.read_stanza_containing(&format!("id=\"{id}\"")).await;
}

/// Alice's subscription to bob's presence (RFC 6121 §3.1), approved; returns once bob's
/// presence reached her.
async fn alice_follows_bob(alice: &mut RawClient, bob: &mut RawClient) {
    alice
        .send("<presence to='bob@localhost' type='subscribe'/>")
        .await;
    bob.read_stanza_containing("type=\"subscribe\"").await;
    bob.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    alice
        .read_stanza_containing("from=\"bob@localhost/desk\"")
        .await;
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[tokio::test]
async fn inactive_client_gets_the_latest_presence_of_each_contact_when_active_again() {
    let server = server();
    let (mut alice, features) =
        RawClient::login_standard_features(server.c2s, &server.cert_path(), "alice", "pw-alice")
            .await;
    // §4.1: offered after authentication.
    assert!(
        features.contains("<csi xmlns=\"urn:xmpp:csi:0\"/>"),
        "{features}"
    );
    alice.bind_only("phone", "").await;
    alice.send("<presence/>").await;
    alice.read_stanza_containing("<presence").await;
    let mut bob = login(&server, "bob", "desk").await;
    alice_follows_bob(&mut alice, &mut bob).await;
    let mut tablet = login(&server, "bob", "tablet").await;
    alice
        .read_stanza_containing("from=\"bob@localhost/tablet\"")
        .await;

    alice.send(INACTIVE).await;
    // Stanzas and nonzas are handled in order: once the pong is back, alice is inactive.
    let before = alice.until_pong("p1").await;
    assert!(!before.contains("<presence"), "{before}");

    bob_status(&mut bob, "s1", "one").await;
    bob_status(&mut bob, "s2", "two").await;
    bob_status(&mut tablet, "t1", "tablet one").await;
    bob_status(&mut bob, "s3", "three").await;
    let quiet = alice.read_for(QUIET).await;
    assert!(!quiet.contains("<presence"), "held back, yet: {quiet}");

    alice.send(ACTIVE).await;
    let flushed = alice.until_pong("p2").await;
    assert_eq!(count(&flushed, "<presence"), 2, "{flushed}");
    assert_eq!(
        count(&flushed, "from=\"bob@localhost/desk\""),
        1,
        "{flushed}"
    );
    assert_eq!(
        count(&flushed, "from=\"bob@localhost/tablet\""),
        1,
        "{flushed}"
    );
    assert!(flushed.contains("<status>three</status>"), "{flushed}");
    assert!(flushed.contains("<status>tablet one</status>"), "{flushed}");
    // The latest first from the tablet, then the desk: in the order of their last updates.
    assert!(
        flushed.find("tablet one") < flushed.find("three"),
        "{flushed}"
    );

    // Active again: updates come at once.
    bob_status(&mut bob, "s4", "four").await;
    let now = alice.read_stanza_containing("<status>four</status>").await;
    assert!(now.contains("from=\"bob@localhost/desk\""), "{now}");
}

#[tokio::test]
async fn a_message_to_an_inactive_client_comes_at_once_after_what_was_held() {
    let server = server();
    let mut alice = login(&server, "alice", "phone").await;
    let mut bob = login(&server, "bob", "desk").await;
    alice_follows_bob(&mut alice, &mut bob).await;

    alice.send(INACTIVE).await;
    alice.until_pong("p1").await;
    bob_status(&mut bob, "s1", "gone fishing").await;
    bob.send("<message type='chat' to='alice@localhost/phone' id='m1'><body>still there?</body></message>")
        .await;
    // Inactive, and yet the message arrives; the held presence, older, just before it.
    let presence = alice.read_stanza().await;
    assert!(
        presence.starts_with("<presence") && presence.contains("gone fishing"),
        "{presence}"
    );
    let message = alice.read_stanza().await;
    assert!(
        message.starts_with("<message") && message.contains("still there?"),
        "{message}"
    );
    // Nothing is held twice: the presence is not repeated when the client is active again.
    alice.send(ACTIVE).await;
    let after = alice.until_pong("p2").await;
    assert!(!after.contains("<presence"), "{after}");

    // A subscription request is for the user to answer: it is never held.
    alice.send(INACTIVE).await;
    alice.until_pong("p3").await;
    server.add_user("carol@localhost", "pw-carol");
    let mut carol = login(&server, "carol", "lab").await;
    carol
        .send("<presence to='alice@localhost' type='subscribe'/>")
        .await;
    let request = alice.read_stanza_containing("type=\"subscribe\"").await;
    assert!(request.contains("from=\"carol@localhost\""), "{request}");
}

#[tokio::test]
async fn slixmpp_uses_csi_and_its_inactive_holds_presence() {
    let server = server();
    let mut alice = SlixIm::spawn_script(
        "slix_devices.py",
        "alice@localhost/slix",
        "pw-alice",
        server.c2s.port(),
        &server.cert_path(),
    );
    alice.expect_all(&["session_start"]).await;
    // slixmpp's plugin saw the stream feature.
    let csi = alice.command(r#"{"cmd": "csi_state"}"#).await;
    assert!(alice.seen(&["\"csi\"", "\"enabled\": true"]), "{csi}");
    alice.command(r#"{"cmd": "get_roster"}"#).await;
    alice.command(r#"{"cmd": "available"}"#).await;
    let mut bob = login(&server, "bob", "desk").await;
    alice
        .command(r#"{"cmd": "subscribe", "to": "bob@localhost"}"#)
        .await;
    bob.read_stanza_containing("type=\"subscribe\"").await;
    bob.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    alice
        .expect_all(&["\"presence\"", "bob@localhost/desk"])
        .await;

    alice.command(r#"{"cmd": "inactive"}"#).await;
    // Its ping after <inactive/> is answered: the server has read <inactive/>.
    alice.command(r#"{"cmd": "ping"}"#).await;
    bob_status(&mut bob, "s1", "held").await;
    let early = tokio::time::timeout(QUIET, alice.expect_all(&["\"presence\"", "held"])).await;
    assert!(early.is_err(), "presence while inactive: {early:?}");

    alice.command(r#"{"cmd": "active"}"#).await;
    alice
        .expect_all(&["\"presence\"", "bob@localhost/desk", "held"])
        .await;
    assert!(alice.quit().await);
}
