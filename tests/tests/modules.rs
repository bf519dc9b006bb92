//! The module API as an admin and a client see it: a module switched off in config is gone
//! from disco, stream features and routing (everywhere, or on one host only); a mistake in
//! `[modules.NAME]` exits 2 naming file, key and line; disco on an account's bare JID is
//! answered by the server on the account's behalf.

use jabberwock_tests::{RawClient, TestConfig, TestServer};

const SERVICE_UNAVAILABLE: &str =
    "<service-unavailable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>";

fn disco_info(id: &str, to: &str) -> String {
    format!(
        "<iq type='get' id='{id}' to='{to}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    )
}

fn ping(id: &str, to: &str) -> String {
    format!("<iq type='get' id='{id}' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>")
}

/// Starts a server with `config` and alice on it; logs her in up to the post-auth
/// features, which it returns with her client.
async fn alice_logs_in(config: TestConfig) -> (TestServer, RawClient, String) {
    let server = TestServer::start_with(config);
    server.add_user("alice@localhost", "pw-alice");
    let (alice, features) =
        RawClient::login_standard_features(server.c2s, &server.cert_path(), "alice", "pw-alice")
            .await;
    (server, alice, features)
}

/// XEP-0199 is gone from localhost: not in its disco#info, and a ping is not answered.
async fn ping_is_gone(client: &mut RawClient) {
    client.send(disco_info("gone-d", "localhost")).await;
    let info = client.read_stanza_containing("id=\"gone-d\"").await;
    assert!(info.contains("type=\"result\""), "{info}");
    assert!(!info.contains("urn:xmpp:ping"), "{info}");
    client.send(ping("gone-p", "localhost")).await;
    let err = client.read_stanza_containing("id=\"gone-p\"").await;
    assert!(err.contains(SERVICE_UNAVAILABLE), "{err}");
}

#[tokio::test]
async fn a_module_switched_off_for_one_host_is_gone_there_and_only_there() {
    let config = TestConfig::default()
        .host("localhost", "modules_disabled = [\"ping\", \"roster\"]")
        .host("example.org", "registration = false");
    let (_server, mut alice, features) = alice_logs_in(config).await;
    // Roster versioning is the roster module's stream feature; the legacy session's stays.
    assert!(
        !features.contains("urn:xmpp:features:rosterver"),
        "{features}"
    );
    assert!(
        features.contains("urn:ietf:params:xml:ns:xmpp-session"),
        "{features}"
    );
    alice.bind_only("desk", "").await;

    ping_is_gone(&mut alice).await;
    // Routing: nobody answers a roster request on this host any more.
    alice
        .send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
        .await;
    let err = alice.read_stanza_containing("id=\"r1\"").await;
    assert!(err.contains(SERVICE_UNAVAILABLE), "{err}");

    // The other host keeps them.
    alice.send(disco_info("d2", "example.org")).await;
    let info = alice.read_stanza_containing("id=\"d2\"").await;
    assert!(info.contains("<feature var=\"urn:xmpp:ping\"/>"), "{info}");
    alice.send(ping("p2", "example.org")).await;
    let pong = alice.read_stanza_containing("id=\"p2\"").await;
    assert!(pong.contains("type=\"result\""), "{pong}");
}

#[tokio::test]
async fn a_module_switched_off_globally_is_gone_from_features_disco_and_routing() {
    let config = TestConfig::default()
        .section("modules.roster", "enabled = false")
        .section("modules.ping", "enabled = false");
    let (_server, mut alice, features) = alice_logs_in(config).await;
    assert!(
        !features.contains("urn:xmpp:features:rosterver"),
        "{features}"
    );
    alice.bind_only("desk", "").await;
    ping_is_gone(&mut alice).await;
}

#[tokio::test]
async fn stream_features_come_from_the_modules_when_all_are_on() {
    let (_server, _alice, features) = alice_logs_in(TestConfig::default()).await;
    for feature in [
        "urn:ietf:params:xml:ns:xmpp-bind",
        "urn:xmpp:features:rosterver",
        "urn:ietf:params:xml:ns:xmpp-session",
    ] {
        assert!(features.contains(feature), "missing {feature}: {features}");
    }
}

#[tokio::test]
async fn disco_of_an_account_is_answered_to_itself_and_to_contacts_it_shares_presence_with() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "pw-alice");
    server.add_user("mallory@localhost", "pw-mallory");
    let (mut alice, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "pw-alice", "desk")
            .await;
    alice.send(disco_info("a1", "alice@localhost")).await;
    let info = alice.read_stanza_containing("id=\"a1\"").await;
    assert!(info.contains("type=\"result\""), "{info}");
    assert!(info.contains("from=\"alice@localhost\""), "{info}");
    assert!(
        info.contains("category=\"account\"") && info.contains("type=\"registered\""),
        "{info}"
    );
    assert!(
        info.contains("<feature var=\"http://jabber.org/protocol/disco#info\"/>"),
        "{info}"
    );

    // XEP-0030 §4: someone alice shares no presence with learns nothing.
    let (mut mallory, _) = RawClient::login_standard(
        server.c2s,
        &server.cert_path(),
        "mallory",
        "pw-mallory",
        "m",
    )
    .await;
    mallory.send(disco_info("m1", "alice@localhost")).await;
    let err = mallory.read_stanza_containing("id=\"m1\"").await;
    assert!(err.contains("type=\"error\""), "{err}");
    assert!(err.contains(SERVICE_UNAVAILABLE), "{err}");
    assert!(!err.contains("registered"), "{err}");
}

#[tokio::test]
async fn the_core_features_are_modules_too_registration_and_offline_storage() {
    let config = TestConfig::default()
        .host("localhost", "registration = true")
        .section("modules.register", "enabled = false")
        .section("modules.offline", "enabled = false");
    let server = TestServer::start_with(config);
    // XEP-0077 before authentication: no <register/> feature, and asking anyway is not
    // answered (the stream closes, RFC 6120 §6.1: no stanzas before authentication).
    let (mut c, features) = RawClient::starttls_stream(server.c2s, &server.cert_path()).await;
    assert!(features.contains("<mechanisms"), "{features}");
    assert!(
        !features.contains("jabber.org/features/iq-register"),
        "{features}"
    );
    c.send("<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>")
        .await;
    let closed = c.read_to_close().await;
    assert!(closed.contains("<not-authorized"), "{closed}");

    // XEP-0160 off: a chat message for an account with no available resource bounces.
    server.add_user("alice@localhost", "pw-alice");
    server.add_user("bob@localhost", "pw-bob");
    let (mut alice, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "pw-alice", "desk")
            .await;
    alice
        .send("<message to='bob@localhost' type='chat' id='m1'><body>hi</body></message>")
        .await;
    let err = alice.read_stanza_containing("id=\"m1\"").await;
    assert!(err.contains("type=\"error\""), "{err}");
    assert!(err.contains(SERVICE_UNAVAILABLE), "{err}");
}
