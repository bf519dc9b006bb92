//! Stanza routing end to end (RFC 6120 §10, RFC 6121 §8.5): full and bare JIDs, priorities,
//! unavailable recipients, the server's own IQs, remote and malformed addresses, and the
//! `from` the server stamps. Standard (STARTTLS) and Flash (NUL-framed) clients are mixed:
//! they share one router, so every rule must hold across the two dialects.

use std::time::Duration;

use jabberwock_tests::{RawClient, TestServer};

const SERVICE_UNAVAILABLE: &str =
    "<service-unavailable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>";
/// The start of the XEP-0203 stamp on a message kept offline (XEP-0160).
const DELAY: &str = "<delay xmlns=\"urn:xmpp:delay\" from=\"localhost\" stamp=\"";
/// Long enough for a misrouted stanza to show up on loopback.
const QUIET: Duration = Duration::from_secs(1);

fn server_with_users(users: &[(&str, &str)]) -> TestServer {
    let server = TestServer::start();
    // Not before the server's own migrations are done.
    server.wait_started();
    for (jid, password) in users {
        server.add_user(jid, password);
    }
    server
}

async fn standard(server: &TestServer, user: &str, password: &str, resource: &str) -> RawClient {
    let (c, jid) =
        RawClient::login_standard(server.c2s, &server.cert_path(), user, password, resource).await;
    assert_eq!(jid, format!("{user}@localhost/{resource}"));
    c
}

async fn flash(server: &TestServer, user: &str, password: &str, resource: &str) -> RawClient {
    let (c, jid) = RawClient::login_flash(server.c2s, user, password, resource).await;
    assert_eq!(jid, format!("{user}@localhost/{resource}"));
    c
}

/// Sends broadcast presence with `priority` and waits for its echo, so the router has
/// recorded the priority before the test goes on (RFC 6121 §4.2.2: presence comes back).
async fn set_priority(c: &mut RawClient, id: &str, priority: i8, sep: &str) {
    c.send(format!(
        "<presence id='{id}'><priority>{priority}</priority></presence>{sep}"
    ))
    .await;
    let echo = c.read_stanza_containing(&format!("id=\"{id}\"")).await;
    assert!(
        echo.contains(&format!("<priority>{priority}</priority>")),
        "{echo}"
    );
}

/// Pings the server and returns everything that arrived before the pong. Stanzas of one
/// stream are processed in order, so an error for an earlier stanza would be in it.
async fn until_pong(c: &mut RawClient, id: &str, sep: &str) -> String {
    c.send(format!(
        "<iq type='get' id='{id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>{sep}"
    ))
    .await;
    let got = c.read_until(&format!("id=\"{id}\"")).await;
    c.read_until(">").await;
    got
}

/// Asserts that nothing containing `needle` arrives within [`QUIET`].
async fn assert_not_received(c: &mut RawClient, needle: &str, who: &str) {
    let got = c.read_for(QUIET).await;
    assert!(
        !got.contains(needle),
        "{who} should not have received {needle}: {got}"
    );
}

#[tokio::test]
async fn message_to_full_jid_reaches_only_that_resource() {
    let server = server_with_users(&[("alice@localhost", "pw-a"), ("bob@localhost", "pw-b")]);
    let mut desk = standard(&server, "alice", "pw-a", "desk").await;
    let mut widget = flash(&server, "alice", "pw-a", "widget").await;
    let mut bob = standard(&server, "bob", "pw-b", "home").await;

    bob.send("<message type='chat' to='alice@localhost/widget' id='m1'><body>to the widget</body></message>")
        .await;
    let got = widget.read_stanza_containing("id=\"m1\"").await;
    assert!(got.contains("<body>to the widget</body>"), "{got}");
    assert!(got.contains("from=\"bob@localhost/home\""), "{got}");
    assert_not_received(&mut desk, "id=\"m1\"", "alice/desk").await;

    widget
        .send("<message type=\"chat\" to=\"alice@localhost/desk\" id=\"m2\"><body>note to self</body></message>\0")
        .await;
    let got = desk.read_stanza_containing("id=\"m2\"").await;
    assert!(got.contains("from=\"alice@localhost/widget\""), "{got}");
    assert_not_received(&mut widget, "id=\"m2\"", "alice/widget").await;
}

#[tokio::test]
async fn bare_jid_message_goes_to_the_highest_priority_and_follows_changes() {
    let server = server_with_users(&[("alice@localhost", "pw-a"), ("bob@localhost", "pw-b")]);
    let mut a = standard(&server, "alice", "pw-a", "a").await;
    let mut b = flash(&server, "alice", "pw-a", "b").await;
    let mut bob = standard(&server, "bob", "pw-b", "home").await;

    set_priority(&mut a, "pa1", 5, "").await;
    set_priority(&mut b, "pb1", 1, "\0").await;
    bob.send("<message type='chat' to='alice@localhost' id='m1'><body>one</body></message>")
        .await;
    let got = a.read_stanza_containing("id=\"m1\"").await;
    assert!(got.contains("<body>one</body>"), "{got}");
    assert_not_received(&mut b, "id=\"m1\"", "the priority 1 resource").await;

    // Swap: routing follows the latest broadcast presence.
    set_priority(&mut a, "pa2", 1, "").await;
    set_priority(&mut b, "pb2", 5, "\0").await;
    bob.send("<message type='chat' to='alice@localhost' id='m2'><body>two</body></message>")
        .await;
    let got = b.read_stanza_containing("id=\"m2\"").await;
    assert!(got.contains("<body>two</body>"), "{got}");
    assert_not_received(&mut a, "id=\"m2\"", "the priority 1 resource").await;

    // RFC 6121 §8.5.2.1.1: equal highest priorities both get it.
    set_priority(&mut a, "pa3", 5, "").await;
    bob.send("<message type='chat' to='alice@localhost' id='m3'><body>three</body></message>")
        .await;
    let got_a = a.read_stanza_containing("id=\"m3\"").await;
    let got_b = b.read_stanza_containing("id=\"m3\"").await;
    assert!(got_a.contains("<body>three</body>") && got_b.contains("<body>three</body>"));
    assert_not_received(&mut bob, "type=\"error\"", "bob").await;
}

#[tokio::test]
async fn negative_priority_only_gets_nothing_and_the_message_waits_for_a_non_negative_login() {
    let server = server_with_users(&[("alice@localhost", "pw-a"), ("bob@localhost", "pw-b")]);
    let mut alice = flash(&server, "alice", "pw-a", "shy").await;
    let mut bob = standard(&server, "bob", "pw-b", "home").await;
    set_priority(&mut alice, "p1", -1, "\0").await;

    // RFC 6121 §8.5.2.2 with XEP-0160: no resource with non-negative priority, so the
    // message is kept offline and the sender gets no error.
    bob.send("<message type='chat' to='alice@localhost' id='neg1'><body>hello?</body></message>")
        .await;
    let before_pong = until_pong(&mut bob, "after-neg1", "").await;
    assert!(!before_pong.contains("id=\"neg1\""), "{before_pong}");
    assert_not_received(&mut alice, "id=\"neg1\"", "a negative-priority resource").await;

    // A full JID still reaches it (RFC 6121 §8.5.3.1: priority only matters for the bare JID).
    bob.send(
        "<message type='chat' to='alice@localhost/shy' id='neg2'><body>direct</body></message>",
    )
    .await;
    let got = alice.read_stanza_containing("id=\"neg2\"").await;
    assert!(got.contains("<body>direct</body>"), "{got}");

    // XEP-0160 §3: the next initial presence with non-negative priority gets it, delayed.
    let mut desk = standard(&server, "alice", "pw-a", "desk").await;
    let got = desk.read_stanza_containing("id=\"neg1\"").await;
    assert!(got.contains("<body>hello?</body>"), "{got}");
    assert!(got.contains("from=\"bob@localhost/home\""), "{got}");
    assert!(got.contains(DELAY), "{got}");
    assert_not_received(&mut alice, "id=\"neg1\"", "the negative-priority resource").await;
}

#[tokio::test]
async fn bare_jid_message_without_an_available_resource_waits_offline_unless_it_cannot() {
    let server = server_with_users(&[("alice@localhost", "pw-a"), ("bob@localhost", "pw-b")]);
    let mut bob = flash(&server, "bob", "pw-b", "widget").await;

    // Offline: the account exists but nobody is logged in. Kept, no error (XEP-0160).
    bob.send("<message type=\"chat\" to=\"alice@localhost\" id=\"off1\"><body>anyone?</body></message>\0")
        .await;
    let before_pong = until_pong(&mut bob, "after-off1", "\0").await;
    assert!(!before_pong.contains("id=\"off1\""), "{before_pong}");

    // Groupchat to a bare JID is still service-unavailable (RFC 6121 §8.5.2.2.1).
    bob.send("<message type=\"groupchat\" to=\"alice@localhost\" id=\"gc1\"><body>room?</body></message>\0")
        .await;
    let err = bob.read_stanza_containing("id=\"gc1\"").await;
    assert!(
        err.starts_with("<message") && err.contains("type=\"error\""),
        "{err}"
    );
    assert!(err.contains(SERVICE_UNAVAILABLE), "{err}");
    assert!(err.contains("to=\"bob@localhost/widget\""), "{err}");

    // An account that doesn't exist: service-unavailable (RFC 6121 §8.5.1).
    bob.send(
        "<message type=\"chat\" to=\"nobody@localhost\" id=\"nx1\"><body>hello?</body></message>\0",
    )
    .await;
    let err = bob.read_stanza_containing("id=\"nx1\"").await;
    assert!(
        err.contains("type=\"error\"") && err.contains(SERVICE_UNAVAILABLE),
        "{err}"
    );
    assert!(err.contains("from=\"nobody@localhost\""), "{err}");

    // Bound but never available (no initial presence, RFC 6121 §4.2): not delivered, kept.
    let (mut alice, _) = RawClient::login_standard_no_presence(
        server.c2s,
        &server.cert_path(),
        "alice",
        "pw-a",
        "quiet",
    )
    .await;
    bob.send(
        "<message type=\"chat\" to=\"alice@localhost\" id=\"off2\"><body>now?</body></message>\0",
    )
    .await;
    let before_pong = until_pong(&mut bob, "after-off2", "\0").await;
    assert!(!before_pong.contains("id=\"off2\""), "{before_pong}");
    assert_not_received(&mut alice, "id=\"off2\"", "an unavailable session").await;

    // Its initial presence brings both, in order, with delay stamps; the groupchat was not
    // kept.
    alice.send("<presence/>").await;
    let first = alice.read_stanza_containing("<message").await;
    assert!(
        first.contains("id=\"off1\"") && first.contains("<body>anyone?</body>"),
        "{first}"
    );
    assert!(first.contains(DELAY), "{first}");
    let second = alice.read_stanza_containing("<message").await;
    assert!(
        second.contains("id=\"off2\"") && second.contains(DELAY),
        "{second}"
    );
    assert_not_received(&mut alice, "id=\"gc1\"", "alice").await;
}

#[tokio::test]
async fn message_to_an_unbound_full_jid_falls_back_to_the_bare_jid_and_waits_offline() {
    let server = server_with_users(&[
        ("alice@localhost", "pw-a"),
        ("bob@localhost", "pw-b"),
        ("carol@localhost", "pw-c"),
    ]);
    let mut alice = flash(&server, "alice", "pw-a", "widget").await;
    let mut bob = standard(&server, "bob", "pw-b", "home").await;

    // RFC 6121 §8.5.3.2.1: the resource is gone, so the bare JID rules apply.
    bob.send("<message type='chat' to='alice@localhost/phone' id='fb1'><body>wherever you are</body></message>")
        .await;
    let got = alice.read_stanza_containing("id=\"fb1\"").await;
    assert!(got.contains("<body>wherever you are</body>"), "{got}");
    assert!(got.contains("from=\"bob@localhost/home\""), "{got}");

    // ... and with no available resource at all, the bare JID rule keeps it offline.
    bob.send(
        "<message type='chat' to='carol@localhost/phone' id='fb2'><body>carol?</body></message>",
    )
    .await;
    let before_pong = until_pong(&mut bob, "after-fb2", "").await;
    assert!(!before_pong.contains("id=\"fb2\""), "{before_pong}");
    // (Standard login: the Flash login helper reads past what follows its presence.)
    let mut carol = standard(&server, "carol", "pw-c", "laptop").await;
    let got = carol.read_stanza_containing("id=\"fb2\"").await;
    assert!(got.contains("<body>carol?</body>"), "{got}");
    // Still addressed as sent; the stamp says it waited.
    assert!(got.contains("to=\"carol@localhost/phone\""), "{got}");
    assert!(got.contains(DELAY), "{got}");
}

#[tokio::test]
async fn iq_to_an_offline_full_jid_fails_and_to_an_online_one_round_trips() {
    let server = server_with_users(&[("alice@localhost", "pw-a"), ("bob@localhost", "pw-b")]);
    let mut alice = flash(&server, "alice", "pw-a", "widget").await;
    let mut bob = standard(&server, "bob", "pw-b", "home").await;

    // RFC 6121 §8.5.3.2.2: an IQ for an unbound full JID is service-unavailable.
    bob.send("<iq type='get' id='v1' to='alice@localhost/nowhere'><query xmlns='jabber:iq:version'/></iq>")
        .await;
    let err = bob.read_stanza_containing("id=\"v1\"").await;
    assert!(
        err.starts_with("<iq") && err.contains("type=\"error\""),
        "{err}"
    );
    assert!(err.contains(SERVICE_UNAVAILABLE), "{err}");
    assert!(err.contains("from=\"alice@localhost/nowhere\""), "{err}");
    assert_not_received(&mut alice, "id=\"v1\"", "another resource").await;

    bob.send("<iq type='get' id='v2' to='alice@localhost/widget'><query xmlns='jabber:iq:version'/></iq>")
        .await;
    let request = alice.read_stanza_containing("id=\"v2\"").await;
    assert!(
        request.contains("type=\"get\"") && request.contains("from=\"bob@localhost/home\""),
        "{request}"
    );
    assert!(
        request.contains("<query xmlns=\"jabber:iq:version\"/>"),
        "{request}"
    );
    alice
        .send("<iq type=\"result\" id=\"v2\" to=\"bob@localhost/home\"><query xmlns=\"jabber:iq:version\"><name>XIFF</name></query></iq>\0")
        .await;
    let result = bob.read_stanza_containing("id=\"v2\"").await;
    assert!(result.contains("type=\"result\""), "{result}");
    assert!(
        result.contains("from=\"alice@localhost/widget\""),
        "{result}"
    );
    assert!(result.contains("<name>XIFF</name>"), "{result}");
}

#[tokio::test]
async fn server_iqs_ping_disco_and_unknown_namespaces() {
    let server = server_with_users(&[("alice@localhost", "pw-a"), ("bob@localhost", "pw-b")]);
    let mut std_client = standard(&server, "alice", "pw-a", "desk").await;
    let mut widget = flash(&server, "bob", "pw-b", "widget").await;

    // RFC 6120 §8.4: an IQ nobody handles is service-unavailable, type cancel.
    std_client
        .send("<iq type='get' id='u1' to='localhost'><query xmlns='jabber:iq:version-nope'/></iq>")
        .await;
    let err = std_client.read_stanza_containing("id=\"u1\"").await;
    assert!(err.contains("type=\"error\""), "{err}");
    assert!(
        err.contains(&format!(
            "<error type=\"cancel\">{SERVICE_UNAVAILABLE}</error>"
        )),
        "{err}"
    );
    assert!(err.contains("from=\"localhost\""), "{err}");

    // XEP-0199 §4: the pong is an empty result.
    widget
        .send(
            "<iq type=\"get\" id=\"ping1\" to=\"localhost\"><ping xmlns=\"urn:xmpp:ping\"/></iq>\0",
        )
        .await;
    let pong = widget.read_stanza_containing("id=\"ping1\"").await;
    assert!(
        pong.contains("type=\"result\"") && pong.ends_with("/>"),
        "pong must be empty: {pong}"
    );
    assert!(
        pong.contains("from=\"localhost\"") && pong.contains("to=\"bob@localhost/widget\""),
        "{pong}"
    );

    // XEP-0030 §3.1: the server's identity and features.
    std_client
        .send("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
        .await;
    let info = std_client.read_stanza_containing("id=\"d1\"").await;
    assert!(info.contains("type=\"result\""), "{info}");
    let identity = info
        .split("<identity")
        .nth(1)
        .expect("an identity")
        .split("/>")
        .next()
        .unwrap();
    assert!(
        identity.contains("category=\"server\"") && identity.contains("type=\"im\""),
        "{info}"
    );
    for feature in ["urn:xmpp:ping", "http://jabber.org/protocol/disco#info"] {
        assert!(
            info.contains(&format!("<feature var=\"{feature}\"/>")),
            "missing {feature}: {info}"
        );
    }

    // A node we don't have is item-not-found.
    widget
        .send("<iq type=\"get\" id=\"d2\" to=\"localhost\"><query xmlns=\"http://jabber.org/protocol/disco#info\" node=\"nope\"/></iq>\0")
        .await;
    let err = widget.read_stanza_containing("id=\"d2\"").await;
    assert!(err.contains("type=\"error\""), "{err}");
    assert!(
        err.contains("<item-not-found xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"),
        "{err}"
    );
}

#[tokio::test]
async fn remote_domains_and_malformed_addresses_bounce() {
    let server = server_with_users(&[("alice@localhost", "pw-a")]);
    let mut alice = standard(&server, "alice", "pw-a", "desk").await;

    // No federation: RFC 6120 §10.4.3.
    alice
        .send(
            "<message type='chat' to='someone@example.net' id='r1'><body>far away</body></message>",
        )
        .await;
    let err = alice.read_stanza_containing("id=\"r1\"").await;
    assert!(err.contains("type=\"error\""), "{err}");
    assert!(
        err.contains("<remote-server-not-found xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"),
        "{err}"
    );
    assert!(err.contains("from=\"someone@example.net\""), "{err}");

    // RFC 6120 §8.3.3.8: an unparsable address is jid-malformed.
    alice
        .send("<message type='chat' to='@@@' id='r2'><body>??</body></message>")
        .await;
    let err = alice.read_stanza_containing("id=\"r2\"").await;
    assert!(err.contains("type=\"error\""), "{err}");
    assert!(
        err.contains("<jid-malformed xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"),
        "{err}"
    );

    // The session survives both.
    alice.ping("alive", "").await;
}

#[tokio::test]
async fn error_stanzas_are_never_answered_with_errors() {
    let server = server_with_users(&[("alice@localhost", "pw-a")]);
    let mut alice = standard(&server, "alice", "pw-a", "desk").await;
    let mut widget = flash(&server, "alice", "pw-a", "widget").await;

    // Each of these would bounce if it were not itself an error (RFC 6120 §8.3.1).
    alice
        .send("<message type='error' to='nobody@localhost' id='e1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
        .await;
    alice
        .send("<message type='error' to='someone@example.net' id='e2'/>")
        .await;
    alice
        .send("<iq type='error' to='alice@localhost/gone' id='e3'/>")
        .await;
    widget
        .send("<message type=\"error\" to=\"@@@\" id=\"e4\"/>\0")
        .await;
    // (alice/desk may still see alice/widget's initial presence; nothing else may come.)
    for (client, who) in [(&mut alice, "alice/desk"), (&mut widget, "alice/widget")] {
        let got = client.read_for(QUIET).await;
        assert!(
            !got.contains("type=\"error\"") && !got.contains("<message"),
            "{who}: an error was answered: {got}"
        );
    }

    alice.ping("still-here", "").await;
    widget.ping("still-here", "\0").await;
}

#[tokio::test]
async fn server_stamps_the_senders_full_jid() {
    let server = server_with_users(&[("alice@localhost", "pw-a"), ("bob@localhost", "pw-b")]);
    let mut alice = flash(&server, "alice", "pw-a", "widget").await;
    let mut bob = standard(&server, "bob", "pw-b", "home").await;

    // No from: stamped.
    bob.send("<message type='chat' to='alice@localhost/widget' id='s1'><body>one</body></message>")
        .await;
    let got = alice.read_stanza_containing("id=\"s1\"").await;
    assert!(got.contains("from=\"bob@localhost/home\""), "{got}");

    // Its own bare JID: accepted, and replaced by the full JID (RFC 6120 §8.1.2.1).
    bob.send("<message type='chat' from='bob@localhost' to='alice@localhost/widget' id='s2'><body>two</body></message>")
        .await;
    let got = alice.read_stanza_containing("id=\"s2\"").await;
    assert!(got.contains("from=\"bob@localhost/home\""), "{got}");
    assert!(!got.contains("from=\"bob@localhost\""), "{got}");

    // Same from a Flash client.
    alice
        .send("<message type=\"chat\" from=\"alice@localhost\" to=\"bob@localhost/home\" id=\"s3\"><body>three</body></message>\0")
        .await;
    let got = bob.read_stanza_containing("id=\"s3\"").await;
    assert!(got.contains("from=\"alice@localhost/widget\""), "{got}");
}

/// Presence to a domain we don't serve can't be delivered until federation exists: a
/// subscription request and directed available presence (joining a room on a service that
/// does not exist) come back as presence errors with remote-server-not-found (RFC 6120
/// §8.3.3.12, RFC 6121 §3.1.3 and §4.6.2) instead of vanishing; the subscribe still gets its
/// roster push (RFC 6121 §3.1.2). Unavailable and probes expect no answer and get none.
#[tokio::test]
async fn presence_to_a_remote_domain_bounces_with_remote_server_not_found() {
    const NOT_FOUND: &str =
        "<remote-server-not-found xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>";
    let server = server_with_users(&[("alice@localhost", "pw-a")]);
    let mut alice = standard(&server, "alice", "pw-a", "desk").await;
    // Interested in roster pushes (RFC 6121 §2.1.6).
    alice
        .send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>")
        .await;
    alice.read_stanza_containing("id=\"r0\"").await;

    alice
        .send("<presence type='subscribe' to='carol@elsewhere.example' id='s1'/>")
        .await;
    let before = until_pong(&mut alice, "p1", "").await;
    let push = before
        .split("<iq")
        .find(|s| s.contains("jabber:iq:roster"))
        .unwrap_or_else(|| panic!("no roster push: {before}"));
    assert!(push.contains("jid=\"carol@elsewhere.example\""), "{push}");
    assert!(push.contains("ask=\"subscribe\""), "{push}");
    let err = before
        .split("<presence")
        .find(|s| s.contains("id=\"s1\""))
        .unwrap_or_else(|| panic!("subscribe not bounced: {before}"));
    assert!(err.contains("type=\"error\""), "{err}");
    assert!(err.contains("from=\"carol@elsewhere.example\""), "{err}");
    assert!(err.contains("to=\"alice@localhost/desk\""), "{err}");
    assert!(err.contains(NOT_FOUND), "{err}");

    alice
        .send("<presence to='room@conference.nowhere.example/alice' id='j1'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
        .await;
    let err = alice.read_stanza_containing("id=\"j1\"").await;
    assert!(err.starts_with("<presence"), "{err}");
    assert!(err.contains("type=\"error\""), "{err}");
    assert!(
        err.contains("from=\"room@conference.nowhere.example/alice\""),
        "{err}"
    );
    assert!(err.contains(NOT_FOUND), "{err}");

    // Nothing answers these, so nothing bounces.
    alice
        .send("<presence type='unavailable' to='room@conference.nowhere.example/alice' id='u1'/>")
        .await;
    alice
        .send("<presence type='probe' to='carol@elsewhere.example' id='pr1'/>")
        .await;
    let before = until_pong(&mut alice, "p2", "").await;
    assert!(!before.contains("id=\"u1\""), "{before}");
    assert!(!before.contains("id=\"pr1\""), "{before}");
    // An error presence is never answered with an error (RFC 6120 §8.3.1).
    alice
        .send("<presence type='error' to='carol@elsewhere.example' id='e1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>")
        .await;
    let before = until_pong(&mut alice, "p3", "").await;
    assert!(!before.contains("id=\"e1\""), "{before}");
}
