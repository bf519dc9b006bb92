//! Session lifecycle end to end: resource conflicts (RFC 6120 §7.7.2.2), generated
//! resources (§7.6), the legacy session IQ, keepalives and idle timeouts, stream close and
//! TCP close, and presence broadcast (RFC 6121 §4.2.2, §4.6).

use std::time::{Duration, Instant};

use jabberwock_tests::{RawClient, TestConfig, TestServer};

const QUIET: Duration = Duration::from_secs(1);
const SERVICE_UNAVAILABLE: &str =
    "<service-unavailable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>";

fn server_with_users(config: TestConfig, users: &[(&str, &str)]) -> TestServer {
    let server = TestServer::start_with(config);
    for (jid, password) in users {
        server.add_user(jid, password);
    }
    server
}

#[tokio::test]
async fn second_login_with_the_same_full_jid_replaces_the_first() {
    let server = server_with_users(
        TestConfig::default(),
        &[("alice@localhost", "pw-a"), ("bob@localhost", "pw-b")],
    );
    let cert = server.cert_path();
    let (mut first, _) =
        RawClient::login_standard(server.c2s, &cert, "alice", "pw-a", "desk").await;
    let (mut second, jid) =
        RawClient::login_standard(server.c2s, &cert, "alice", "pw-a", "desk").await;
    assert_eq!(jid, "alice@localhost/desk");

    let closed = first.read_to_close().await;
    assert!(
        closed.contains("<stream:error><conflict xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"),
        "{closed}"
    );
    assert!(closed.ends_with("</stream:stream>"), "{closed}");

    // The JID now belongs to the second session.
    second.ping("after-conflict", "").await;
    let (mut bob, _) = RawClient::login_standard(server.c2s, &cert, "bob", "pw-b", "home").await;
    bob.send(
        "<message type='chat' to='alice@localhost/desk' id='c1'><body>which one?</body></message>",
    )
    .await;
    let got = second.read_stanza_containing("id=\"c1\"").await;
    assert!(got.contains("<body>which one?</body>"), "{got}");
}

#[tokio::test]
async fn a_flash_session_replaced_by_a_standard_login_gets_conflict_in_flash_framing() {
    let server = server_with_users(TestConfig::default(), &[("alice@localhost", "pw-a")]);
    let (mut widget, _) = RawClient::login_flash(server.c2s, "alice", "pw-a", "chat").await;
    let (mut desk, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "pw-a", "chat").await;

    let closed = widget.read_to_close().await;
    assert!(
        closed.contains("<stream:error><conflict xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"),
        "{closed:?}"
    );
    assert!(
        closed.ends_with("</stream:error>\0</flash:stream>\0"),
        "{closed:?}"
    );
    desk.ping("mine-now", "").await;
}

#[tokio::test]
async fn bind_without_a_resource_gets_a_generated_one() {
    let server = server_with_users(TestConfig::default(), &[("alice@localhost", "pw-a")]);
    let mut c =
        RawClient::login_standard_unbound(server.c2s, &server.cert_path(), "alice", "pw-a").await;
    c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        .await;
    let result = c.read_stanza_containing("id=\"b1\"").await;
    assert!(result.contains("type=\"result\""), "{result}");
    let jid = result
        .split("<jid>")
        .nth(1)
        .and_then(|r| r.split("</jid>").next())
        .unwrap_or_else(|| panic!("no jid: {result}"));
    let resource = jid
        .strip_prefix("alice@localhost/")
        .unwrap_or_else(|| panic!("{jid}"));
    assert!(!resource.is_empty(), "{jid}");

    // The generated JID is the one the session is bound to.
    c.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let pong = c.read_stanza_containing("id=\"p1\"").await;
    assert!(
        pong.contains(&format!("to=\"{jid}\"")) && pong.contains("type=\"result\""),
        "{pong}"
    );

    // Another login without a resource gets a different one.
    let mut c2 =
        RawClient::login_standard_unbound(server.c2s, &server.cert_path(), "alice", "pw-a").await;
    c2.send("<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        .await;
    let result2 = c2.read_stanza_containing("id=\"b2\"").await;
    assert!(
        result2.contains("<jid>alice@localhost/") && !result2.contains(jid),
        "{result2}"
    );
}

#[tokio::test]
async fn legacy_session_iq_gets_an_empty_result() {
    let server = server_with_users(TestConfig::default(), &[("alice@localhost", "pw-a")]);
    let (mut c, _) = RawClient::login_standard_no_presence(
        server.c2s,
        &server.cert_path(),
        "alice",
        "pw-a",
        "old",
    )
    .await;
    c.send("<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
        .await;
    let result = c.read_stanza_containing("id=\"sess1\"").await;
    assert!(
        result.starts_with("<iq ") && result.ends_with("/>"),
        "must be empty: {result}"
    );
    assert!(result.contains("type=\"result\""), "{result}");
    c.send("<iq type='set' id='sess2' to='localhost'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
        .await;
    let result = c.read_stanza_containing("id=\"sess2\"").await;
    assert!(
        result.contains("type=\"result\"") && result.ends_with("/>"),
        "{result}"
    );
}

/// Sends `keepalive` every 0.5 s for 3 s (longer than the 2 s idle timeout), then pings.
async fn keep_alive_then_ping(mut c: RawClient, keepalive: &str, sep: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        // The pacing of the keepalives is the point here, not synchronisation.
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.send(keepalive).await;
    }
    let got = c.read_for(Duration::from_millis(100)).await;
    assert!(
        !got.contains("connection-timeout"),
        "closed despite keepalives: {got:?}"
    );
    c.ping("after-keepalives", sep).await;
}

#[tokio::test]
async fn whitespace_keepalives_keep_sessions_open_past_the_idle_timeout() {
    let config = TestConfig::default().c2s("idle_timeout = 2");
    let server = server_with_users(
        config,
        &[("alice@localhost", "pw-a"), ("bob@localhost", "pw-b")],
    );
    let (standard, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "pw-a", "desk").await;
    let (flash, _) = RawClient::login_flash(server.c2s, "bob", "pw-b", "widget").await;
    tokio::join!(
        keep_alive_then_ping(standard, " ", ""),
        keep_alive_then_ping(flash, " \0", "\0")
    );
}

#[tokio::test]
async fn idle_sessions_are_closed_with_connection_timeout() {
    let config = TestConfig::default().c2s("idle_timeout = 2");
    let server = server_with_users(
        config,
        &[("alice@localhost", "pw-a"), ("bob@localhost", "pw-b")],
    );
    let (mut standard, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "pw-a", "desk").await;
    let (mut flash, _) = RawClient::login_flash(server.c2s, "bob", "pw-b", "widget").await;
    let idle_since = Instant::now();

    let closed = standard.read_to_close().await;
    assert!(
        idle_since.elapsed() >= Duration::from_millis(1500),
        "closed too early"
    );
    assert!(
        closed.contains(
            "<stream:error><connection-timeout xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"
        ),
        "{closed}"
    );
    assert!(closed.ends_with("</stream:stream>"), "{closed}");
    let closed = flash.read_to_close().await;
    assert!(
        closed.contains("<connection-timeout xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"),
        "{closed:?}"
    );
    assert!(closed.ends_with("</flash:stream>\0"), "{closed:?}");
}

#[tokio::test]
async fn client_stream_close_is_answered_and_the_connection_closes() {
    let server = server_with_users(
        TestConfig::default(),
        &[("alice@localhost", "pw-a"), ("bob@localhost", "pw-b")],
    );
    let (mut alice, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "pw-a", "desk").await;
    let (mut bob, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "pw-b", "home").await;
    alice.read_for(Duration::from_millis(100)).await;

    alice.send("</stream:stream>").await;
    let closed = alice.read_to_close().await;
    assert_eq!(closed.trim(), "</stream:stream>", "{closed}");

    // The session is gone from the router: an IQ to its full JID bounces (a message would
    // now wait offline, see offline.rs).
    assert!(
        server.wait_log("session ended jid=alice@localhost/desk"),
        "{}",
        server.log_text()
    );
    bob.send(
        "<iq type='get' id='gone1' to='alice@localhost/desk'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    let err = bob.read_stanza_containing("id=\"gone1\"").await;
    assert!(
        err.contains("type=\"error\"") && err.contains(SERVICE_UNAVAILABLE),
        "{err}"
    );
}

#[tokio::test]
async fn tcp_close_without_stream_close_ends_the_session() {
    let server = server_with_users(
        TestConfig::default(),
        &[("alice@localhost", "pw-a"), ("bob@localhost", "pw-b")],
    );
    let (bob, _) = RawClient::login_flash(server.c2s, "bob", "pw-b", "widget").await;
    let (mut alice, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "pw-a", "desk").await;

    // The widget's tab is closed: TCP goes away without </flash:stream>.
    drop(bob);
    assert!(
        server.wait_log("session ended jid=bob@localhost/widget"),
        "{}",
        server.log_text()
    );

    // A message to the vanished resource waits offline (XEP-0160) and reaches bob's next
    // login; an IQ to it bounces.
    alice.send("<message type='chat' to='bob@localhost/widget' id='tcp1'><body>still there?</body></message>").await;
    let (mut bob, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "pw-b", "back").await;
    let kept = bob.read_stanza_containing("id=\"tcp1\"").await;
    assert!(
        kept.contains("still there?") && kept.contains("urn:xmpp:delay"),
        "{kept}"
    );
    alice
        .send(
            "<iq type='get' id='tcp2' to='bob@localhost/widget'><ping xmlns='urn:xmpp:ping'/></iq>",
        )
        .await;
    let err = alice.read_stanza_containing("id=\"tcp2\"").await;
    assert!(
        err.contains("type=\"error\"") && err.contains(SERVICE_UNAVAILABLE),
        "{err}"
    );
}

#[tokio::test]
async fn presence_is_broadcast_to_self_and_own_resources_and_directed_presence_is_delivered() {
    let server = server_with_users(
        TestConfig::default(),
        &[("alice@localhost", "pw-a"), ("bob@localhost", "pw-b")],
    );
    let (mut one, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "pw-a", "one").await;
    let (mut two, _) = RawClient::login_flash(server.c2s, "alice", "pw-a", "two").await;
    let (mut bob, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "pw-b", "home").await;

    // RFC 6121 §4.2.2: broadcast presence goes to the user's own available resources,
    // the sender included.
    one.send("<presence id='pr1'><show>away</show></presence>")
        .await;
    let echo = one.read_stanza_containing("id=\"pr1\"").await;
    assert!(
        echo.contains("from=\"alice@localhost/one\"") && echo.contains("<show>away</show>"),
        "{echo}"
    );
    let other = two.read_stanza_containing("id=\"pr1\"").await;
    assert!(
        other.contains("from=\"alice@localhost/one\"") && other.contains("<show>away</show>"),
        "{other}"
    );
    // Not to another user (no roster subscription exists).
    let got = bob.read_for(QUIET).await;
    assert!(!got.contains("id=\"pr1\""), "{got}");

    // RFC 6121 §4.6: directed presence to a full JID reaches exactly that resource.
    bob.send("<presence id='dp1' to='alice@localhost/two'><status>hi two</status></presence>")
        .await;
    let got = two.read_stanza_containing("id=\"dp1\"").await;
    assert!(
        got.contains("from=\"bob@localhost/home\"") && got.contains("<status>hi two</status>"),
        "{got}"
    );
    let got = one.read_for(QUIET).await;
    assert!(!got.contains("id=\"dp1\""), "{got}");
}
