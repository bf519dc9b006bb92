//! Federation (RFC 6120 server-to-server streams, XEP-0178 SASL EXTERNAL, XEP-0220
//! dialback): two Jabberwock instances, `a.test` and `b.test`, each on its own loopback
//! address and found through the other's static peer map, carry messages, IQs, presence
//! and subscriptions between their users over STARTTLS, authenticated by certificates
//! from a CA the test makes or by dialback; a peer can't send from a domain it did not
//! prove, a wrong dialback key is refused, policy (a required valid certificate, a deny
//! list, a limit per address) refuses streams, and unreachable domains bounce. A host a
//! reload removes has its outgoing stream closed at once.

use jabberwock_tests::s2s::{
    alice_and_bob, authenticated, bounces, federated, federated_pair, federated_pair_configs,
    federated_with_x_test, log_line, message_crosses, open_s2s, pinned, remote_occupant_chats,
    start_federated, subscribe_both_ways, Pinned, TestCa, S2S_PORT,
};
use jabberwock_tests::slix::SlixIm;
use jabberwock_tests::RawClient;

#[tokio::test]
async fn two_servers_carry_messages_iqs_presence_and_subscriptions() {
    let (a, b) = federated_pair(1);
    a.add_user("alice@a.test", "alicepw");
    b.add_user("bob@b.test", "bobpw");
    let (mut alice, alice_jid) =
        RawClient::login_standard_at(a.c2s, &a.cert_path(), "a.test", "alice", "alicepw", "home")
            .await;
    let (mut bob, bob_jid) =
        RawClient::login_standard_at(b.c2s, &b.cert_path(), "b.test", "bob", "bobpw", "desk").await;
    assert_eq!(alice_jid, "alice@a.test/home");
    assert_eq!(bob_jid, "bob@b.test/desk");

    subscribe_both_ways(&mut alice, &mut bob).await;

    // Messages both ways.
    alice
        .send("<message to='bob@b.test' type='chat' id='m1'><body>hello from a</body></message>")
        .await;
    let got = bob.read_stanza_containing("hello from a").await;
    assert!(got.contains("from=\"alice@a.test/home\""), "{got}");
    bob.send(
        "<message to='alice@a.test/home' type='chat' id='m2'><body>hello from b</body></message>",
    )
    .await;
    let got = alice.read_stanza_containing("hello from b").await;
    assert!(got.contains("from=\"bob@b.test/desk\""), "{got}");

    // An IQ to a remote full JID and its answer (XEP-0199).
    alice
        .send("<iq type='get' to='bob@b.test/desk' id='ping1'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let ping = bob.read_stanza_containing("id=\"ping1\"").await;
    assert!(ping.contains("from=\"alice@a.test/home\""), "{ping}");
    bob.send("<iq type='result' to='alice@a.test/home' id='ping1'/>")
        .await;
    let pong = alice.read_stanza_containing("id=\"ping1\"").await;
    assert!(
        pong.contains("type=\"result\"") && pong.contains("from=\"bob@b.test/desk\""),
        "{pong}"
    );

    // An IQ the other server answers itself (XEP-0092).
    alice
        .send("<iq type='get' to='b.test' id='v1'><query xmlns='jabber:iq:version'/></iq>")
        .await;
    let version = alice.read_stanza_containing("id=\"v1\"").await;
    assert!(
        version.contains("type=\"result\"") && version.contains("<name>Jabberwock</name>"),
        "{version}"
    );

    // Unavailable presence crosses too (RFC 6121 §4.5).
    bob.send("<presence type='unavailable'/>").await;
    let gone = alice.read_stanza_containing("type=\"unavailable\"").await;
    assert!(gone.contains("from=\"bob@b.test/desk\""), "{gone}");

    // Self-signed certificates prove nothing: dialback, over TLS.
    assert!(
        a.wait_log(&authenticated("outgoing", "a.test", "b.test", "dialback")),
        "{}",
        a.log_text()
    );
    assert!(
        b.wait_log(&authenticated("incoming", "b.test", "a.test", "dialback")),
        "{}",
        b.log_text()
    );
}

/// A raw peer proves `x.test` (its authoritative side, a listener of the test's, says the
/// key is good), then sends a stanza from `y.test`: `<invalid-from/>`, and the stanza
/// reaches no one.
#[tokio::test]
async fn a_stanza_from_a_domain_the_peer_did_not_prove_is_invalid_from() {
    let (a, a_addr) = federated_with_x_test(2, &[]).await;
    a.add_user("alice@a.test", "alicepw");
    let (mut alice, _) =
        RawClient::login_standard_at(a.c2s, &a.cert_path(), "a.test", "alice", "alicepw", "home")
            .await;

    let (mut x, features) = open_s2s(a_addr, "x.test", "a.test", None).await;
    assert!(
        features.contains("urn:xmpp:features:dialback"),
        "{features}"
    );
    x.send("<db:result from='x.test' to='a.test'>some-key</db:result>")
        .await;
    let answer = x.read_until("/>").await;
    assert!(answer.contains("type=\"valid\""), "{answer}");
    x.send("<message from='mallory@y.test' to='alice@a.test' type='chat'><body>forged</body></message>")
        .await;
    let closed = x.read_to_close().await;
    assert!(
        closed.contains("<invalid-from xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"),
        "{closed}"
    );

    // A proved domain's message on a new stream is the first thing Alice gets: the forged
    // one, sent before it, went nowhere.
    let (mut x, _) = open_s2s(a_addr, "x.test", "a.test", None).await;
    x.send("<db:result from='x.test' to='a.test'>some-key</db:result>")
        .await;
    x.read_until("type=\"valid\"").await;
    x.send("<message from='xavier@x.test/r' to='alice@a.test' type='chat'><body>genuine</body></message>")
        .await;
    let first = alice.read_stanza().await;
    assert!(
        first.contains("genuine") && !first.contains("forged"),
        "{first}"
    );
}

/// XEP-0220 §2: the dialback elements we send carry the `db` prefix our stream header
/// binds, not a default-namespace declaration (ejabberd reads no other form as dialback):
/// the `<db:verify/>` to x.test's authoritative server (the test's, which answers only
/// that form) and the `<db:result/>` answer to the peer.
#[tokio::test]
async fn dialback_elements_we_send_carry_the_db_prefix() {
    let (_a, a_addr) = federated_with_x_test(15, &[]).await;
    let (mut x, _) = open_s2s(a_addr, "x.test", "a.test", None).await;
    x.send("<db:result from='x.test' to='a.test'>some-key</db:result>")
        .await;
    let answer = x.read_until("/>").await;
    assert!(answer.starts_with("<db:result "), "{answer}");
    assert!(answer.contains("type=\"valid\""), "{answer}");
    assert!(!answer.contains("xmlns="), "{answer}");
}

/// A raw peer claims b.test to a.test with a key b.test never made: a.test asks b.test
/// (the authoritative server), which says invalid, so the claim is refused.
#[tokio::test]
async fn a_wrong_dialback_key_is_refused() {
    let (a, _b) = federated_pair(4);
    let a_addr = format!("127.0.4.1:{S2S_PORT}").parse().unwrap();
    let (mut peer, features) = open_s2s(a_addr, "b.test", "a.test", Some(&a.cert_path())).await;
    assert!(
        features.contains("urn:xmpp:features:dialback"),
        "{features}"
    );
    peer.send("<db:result from='b.test' to='a.test'>0123456789abcdef</db:result>")
        .await;
    let closed = peer.read_to_close().await;
    assert!(closed.contains("type=\"invalid\""), "{closed}");
    assert!(
        closed.contains("<not-authorized xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"),
        "{closed}"
    );
    assert!(
        a.wait_log("dialback key refused by the authoritative server"),
        "{}",
        a.log_text()
    );
}

/// A domain whose address refuses connections bounces `remote-server-not-found`, one
/// that accepts and never answers `remote-server-timeout` after `connect_timeout`, and
/// one with no address at all `remote-server-not-found`.
#[tokio::test]
async fn unreachable_domains_bounce() {
    // Bound, never accepted: the TCP handshake completes in the backlog, no byte follows.
    let blackhole = std::net::TcpListener::bind(format!("127.0.3.3:{S2S_PORT}")).expect("bind");
    let a = federated(
        "a.test",
        "127.0.3.1",
        &[
            ("down.test", format!("127.0.3.2:{S2S_PORT}")),
            ("slow.test", format!("127.0.3.3:{S2S_PORT}")),
        ],
        &["connect_timeout = 1"],
    );
    a.add_user("alice@a.test", "alicepw");
    let (mut alice, _) =
        RawClient::login_standard_at(a.c2s, &a.cert_path(), "a.test", "alice", "alicepw", "home")
            .await;
    for (to, id, condition) in [
        ("bob@down.test", "m-down", "remote-server-not-found"),
        ("bob@nowhere.test", "m-nowhere", "remote-server-not-found"),
        ("bob@slow.test", "m-slow", "remote-server-timeout"),
    ] {
        bounces(&mut alice, to, id, condition).await;
    }
    drop(blackhole);
}

/// [`federated_pair_configs`]'s servers, each serving a certificate the test CA issued
/// for the names given and trusting that CA, b.test with `b_policy`'s (table, line)s.
/// Returns each server with the certificate its clients pin.
fn pair_with_certificates(
    net: u8,
    ca: &TestCa,
    a_names: &[&str],
    b_names: &[&str],
    b_policy: &[(&str, &str)],
) -> (Pinned, Pinned) {
    let (a, b) = federated_pair_configs(net);
    let (a, a_cert) = ca.configure(a, "a", a_names);
    let (mut b, b_cert) = ca.configure(b, "b", b_names);
    for (table, line) in b_policy {
        b = b.section(table, line);
    }
    ((start_federated(a), a_cert), (start_federated(b), b_cert))
}

/// Both servers' certificates come from a CA both trust: each side offers and uses SASL
/// EXTERNAL (XEP-0178), no dialback happens, and messages flow both ways.
#[tokio::test]
async fn certificates_from_a_trusted_ca_authenticate_with_sasl_external_both_ways() {
    let ca = TestCa::new();
    let (a, b) = pair_with_certificates(5, &ca, &["a.test"], &["b.test"], &[]);
    let (mut alice, mut bob) = alice_and_bob(&a, &b).await;
    message_crosses(&mut alice, &mut bob, "bob@b.test", "over external a").await;
    message_crosses(&mut bob, &mut alice, "alice@a.test", "over external b").await;
    let ((a, _), (b, _)) = (a, b);
    for (server, direction, local, remote) in [
        (&a, "outgoing", "a.test", "b.test"),
        (&a, "incoming", "a.test", "b.test"),
        (&b, "outgoing", "b.test", "a.test"),
        (&b, "incoming", "b.test", "a.test"),
    ] {
        log_line(server, &authenticated(direction, local, remote, "EXTERNAL"));
    }
    for server in [&a, &b] {
        assert!(
            !server.log_text().contains("method=dialback"),
            "{}",
            server.log_text()
        );
    }
}

/// a.test's certificate names another domain: b.test offers it no EXTERNAL and dialback
/// authenticates it instead, while b.test's good certificate still gets EXTERNAL.
#[tokio::test]
async fn a_certificate_for_the_wrong_name_falls_back_to_dialback() {
    let ca = TestCa::new();
    let (a, b) = pair_with_certificates(6, &ca, &["wrong.test"], &["b.test"], &[]);
    let (mut alice, mut bob) = alice_and_bob(&a, &b).await;
    message_crosses(&mut alice, &mut bob, "bob@b.test", "over dialback").await;
    message_crosses(&mut bob, &mut alice, "alice@a.test", "over external").await;
    let ((a, _), (b, _)) = (a, b);
    log_line(
        &a,
        &authenticated("outgoing", "a.test", "b.test", "dialback"),
    );
    log_line(
        &b,
        &authenticated("incoming", "b.test", "a.test", "dialback"),
    );
    log_line(
        &a,
        &authenticated("incoming", "a.test", "b.test", "EXTERNAL"),
    );
    log_line(
        &b,
        &authenticated("outgoing", "b.test", "a.test", "EXTERNAL"),
    );
}

/// b.test requires a valid certificate of a.test, whose certificate names another
/// domain: the stream is refused both ways and messages bounce.
#[tokio::test]
async fn a_required_valid_certificate_refuses_the_stream_and_messages_bounce() {
    let ca = TestCa::new();
    let policy = [(
        "modules.s2s.domains.\"a.test\"",
        "require_valid_certificate = true",
    )];
    let (a, b) = pair_with_certificates(7, &ca, &["wrong.test"], &["b.test"], &policy);
    let (mut alice, mut bob) = alice_and_bob(&a, &b).await;
    bounces(&mut alice, "bob@b.test", "to-b", "remote-server-not-found").await;
    bounces(&mut bob, "alice@a.test", "to-a", "remote-server-not-found").await;
    let ((_a, _), (b, _)) = (a, b);
    let refused = log_line(&b, "dialback refused by policy");
    assert!(
        refused.contains("a valid certificate is required"),
        "{refused}"
    );
    let outgoing = log_line(&b, "could not reach the remote server");
    assert!(
        outgoing.contains("a valid certificate is required"),
        "{outgoing}"
    );
    assert!(
        !b.log_text().contains("s2s stream authenticated"),
        "{}",
        b.log_text()
    );
}

/// a.test denies b.test: Alice's message for Bob bounces `not-allowed` at once (RFC 6120
/// §8.3.3.10), and b.test's stream to a.test is refused with `policy-violation`, so
/// Bob's message bounces too.
#[tokio::test]
async fn a_denied_domain_can_neither_send_nor_receive() {
    let (a, b) = federated_pair_configs(8);
    let a = start_federated(a.section("modules.s2s", "deny = [\"b.test\"]"));
    let b = start_federated(b);
    let (a, b) = (pinned(a), pinned(b));
    let (mut alice, mut bob) = alice_and_bob(&a, &b).await;
    bounces(&mut alice, "bob@b.test", "to-b", "not-allowed").await;
    bounces(&mut bob, "alice@a.test", "to-a", "remote-server-not-found").await;
    let refused = log_line(&a.0, "incoming stream refused");
    assert!(refused.contains("policy-violation"), "{refused}");
    log_line(&a.0, "stream from a denied domain");
    log_line(&a.0, "stanza for a denied domain bounced");
}

/// a.test's own domain and its MUC service both send to b.test: the service's stanza
/// rides the stream a.test opened, authenticated there by a second dialback (XEP-0220
/// §2.5), so b.test sees both domains authenticated on one TCP connection.
#[tokio::test]
async fn two_of_our_domains_share_one_outgoing_stream() {
    let (a, b) = federated_pair(9);
    let (a, b) = (pinned(a), pinned(b));
    let (mut alice, mut bob) = alice_and_bob(&a, &b).await;
    message_crosses(&mut alice, &mut bob, "bob@b.test", "first from a.test").await;
    // Bob asks the MUC service; its answer, whatever it is, comes from conference.a.test
    // to b.test.
    bob.send("<iq type='get' to='conference.a.test' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
        .await;
    let answer = bob.read_stanza_containing("id=\"d1\"").await;
    assert!(answer.contains("from=\"conference.a.test\""), "{answer}");
    let ((a, _), (b, _)) = (a, b);
    log_line(
        &a,
        &authenticated("outgoing", "conference.a.test", "b.test", "dialback"),
    );
    let first = log_line(
        &b,
        &authenticated("incoming", "b.test", "a.test", "dialback"),
    );
    let second = log_line(
        &b,
        &authenticated("incoming", "b.test", "conference.a.test", "dialback"),
    );
    let peer = |line: &str| {
        line.split("peer=")
            .nth(1)
            .and_then(|rest| rest.split(['}', ' ']).next())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no peer address in {line}"))
    };
    assert_eq!(peer(&first), peer(&second), "{first}\n{second}");
}

/// A host a reload removes has its streams closed at once, both ways, not when they would
/// have gone idle: the outgoing one to b.test, and b.test's incoming one to it, which ends
/// with `<host-gone/>`. a.test's streams go on.
#[tokio::test]
async fn a_host_removed_by_reload_closes_its_streams() {
    // a.test also serves x.test, which b.test finds at a.test's address (dialback asks
    // it there).
    let a_addr = format!("127.0.16.1:{S2S_PORT}");
    let (a_config, _) = federated_pair_configs(16);
    let b = federated(
        "b.test",
        "127.0.16.2",
        &[("a.test", a_addr.clone()), ("x.test", a_addr)],
        &[],
    );
    let a = start_federated(a_config.clone().host("x.test", ""));
    a.add_user("carol@x.test", "carolpw");
    let (a, b) = (pinned(a), pinned(b));
    let (mut alice, mut bob) = alice_and_bob(&a, &b).await;
    let (mut carol, _) =
        RawClient::login_standard_at(a.0.c2s, &a.1, "x.test", "carol", "carolpw", "pc").await;
    message_crosses(
        &mut carol,
        &mut bob,
        "bob@b.test",
        "from the host that goes",
    )
    .await;
    log_line(
        &a.0,
        &authenticated("outgoing", "x.test", "b.test", "dialback"),
    );
    message_crosses(
        &mut bob,
        &mut carol,
        "carol@x.test",
        "to the host that goes",
    )
    .await;
    log_line(
        &a.0,
        &authenticated("incoming", "x.test", "b.test", "dialback"),
    );

    let out = a.0.reload_as(&a_config);
    assert!(out.contains("applied: hosts: removed x.test"), "{out}");
    // Its stream to b.test is closed at once, not when it would have gone idle.
    let closed = log_line(
        &a.0,
        "our domain is no longer served: outgoing stream closed",
    );
    assert!(closed.contains("local=x.test"), "{closed}");
    let closed = log_line(
        &a.0,
        "our domain is no longer served: incoming stream closed",
    );
    assert!(closed.contains("local=x.test remote=b.test"), "{closed}");
    let told = log_line(&b.0, "the remote server ended the stream with an error");
    assert!(told.contains("condition=\"host-gone\""), "{told}");
    // a.test's own streams go on, both ways.
    message_crosses(
        &mut alice,
        &mut bob,
        "bob@b.test",
        "from the host that stays",
    )
    .await;
    message_crosses(
        &mut bob,
        &mut alice,
        "alice@a.test",
        "to the host that stays",
    )
    .await;
    let streams = a.0.log_text();
    for way in ["outgoing", "incoming"] {
        assert_eq!(
            streams.matches(&format!("{way} stream closed")).count(),
            1,
            "{streams}"
        );
    }
}

/// A burst of messages crosses whole and in order: the outgoing stream writes what queued
/// up while it was writing in one go (how many per write depends on timing; the stream
/// layer's unit test shows the batch's bytes). 200 stay below Bob's inbox depth (256),
/// past which b.test would end a session that reads too slowly.
#[tokio::test]
async fn a_burst_of_messages_crosses_whole_and_in_order() {
    let (a, b) = federated_pair_configs(66);
    let (a, b) = (start_federated(a), start_federated(b));
    let (a_cert, b_cert) = (a.cert_path(), b.cert_path());
    let (a, b) = ((a, a_cert), (b, b_cert));
    let (mut alice, mut bob) = alice_and_bob(&a, &b).await;
    message_crosses(&mut alice, &mut bob, "bob@b.test", "the stream is up").await;
    let burst: String = (0..200)
        .map(|i| format!("<message to='bob@b.test' type='chat'><body>burst {i}.</body></message>"))
        .collect();
    alice.send(burst).await;
    // Each read skips what comes before its message: one out of order never comes.
    for i in 0..200 {
        bob.read_stanza_containing(&format!("burst {i}.")).await;
    }
}

/// With `max_streams_per_address = 1`, a second stream from the same address is refused
/// with `policy-violation` while the first goes on.
#[tokio::test]
async fn the_incoming_limit_per_address_refuses_the_extra_stream() {
    let a = federated(
        "a.test",
        "127.0.10.1",
        &[],
        &["max_streams_per_address = 1"],
    );
    let a_addr = format!("127.0.10.1:{S2S_PORT}").parse().unwrap();
    let (mut first, features) = open_s2s(a_addr, "x.test", "a.test", None).await;
    assert!(features.contains("starttls"), "{features}");
    let mut second = RawClient::connect(a_addr).await;
    let closed = second.read_to_close().await;
    assert!(
        closed.contains("<policy-violation xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"),
        "{closed}"
    );
    log_line(&a, "too many from this address");
    // The first stream is still served: STARTTLS proceeds.
    first
        .send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await;
    first.read_until("<proceed").await;
}

/// A peer without a certificate that tries SASL anyway gets the SASL failure for each
/// attempt (XEP-0178: `not-authorized`; RFC 6120 §6.5.5: `invalid-mechanism`), and the
/// stream stays open for dialback, which then checks its key.
#[tokio::test]
async fn a_refused_sasl_external_leaves_dialback_possible() {
    let (a, _b) = federated_pair(11);
    let a_addr = format!("127.0.11.1:{S2S_PORT}").parse().unwrap();
    let (mut peer, features) = open_s2s(a_addr, "b.test", "a.test", Some(&a.cert_path())).await;
    assert!(!features.contains("EXTERNAL"), "{features}");
    peer.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
        .await;
    let failure = peer.read_until("</failure>").await;
    assert!(
        failure.contains("<not-authorized/>") && failure.contains("no certificate"),
        "{failure}"
    );
    peer.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>")
        .await;
    let failure = peer.read_until("</failure>").await;
    assert!(failure.contains("<invalid-mechanism/>"), "{failure}");
    peer.send("<db:result from='b.test' to='a.test'>0123456789abcdef</db:result>")
        .await;
    let closed = peer.read_to_close().await;
    assert!(closed.contains("type=\"invalid\""), "{closed}");
    log_line(&a, "SASL EXTERNAL refused");
}

/// With `max_streams_per_domain = 1`, a second stream that proves the same remote domain
/// is refused with `policy-violation` instead of its `valid` answer.
#[tokio::test]
async fn the_incoming_limit_per_domain_refuses_the_extra_stream() {
    let (a, a_addr) = federated_with_x_test(12, &["max_streams_per_domain = 1"]).await;
    let (mut first, _) = open_s2s(a_addr, "x.test", "a.test", None).await;
    first
        .send("<db:result from='x.test' to='a.test'>some-key</db:result>")
        .await;
    first.read_until("type=\"valid\"").await;
    let (mut second, _) = open_s2s(a_addr, "x.test", "a.test", None).await;
    second
        .send("<db:result from='x.test' to='a.test'>some-key</db:result>")
        .await;
    let closed = second.read_to_close().await;
    assert!(
        closed.contains("<policy-violation xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"),
        "{closed}"
    );
    assert!(!closed.contains("type=\"valid\""), "{closed}");
    log_line(&a, "too many streams authenticated for one remote domain");
}

/// A peer that answers the dialback of a.test's own domain but never that of its MUC
/// service on the same stream: after `connect_timeout` the service's stanza is given up
/// (and bounced), rather than waiting as long as the stream lives.
// Multi-threaded: the scripted b.test answers while the test waits for log lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_piggybacked_dialback_left_unanswered_times_out() {
    let b_addr = format!("127.0.13.2:{S2S_PORT}");
    let scripted_b = tokio::net::TcpListener::bind(&b_addr)
        .await
        .expect("bind b.test");
    let a = federated(
        "a.test",
        "127.0.13.1",
        &[("b.test", b_addr)],
        &["require_encryption = false", "connect_timeout = 1"],
    );
    tokio::spawn(async move {
        while let Ok((tcp, _)) = scripted_b.accept().await {
            tokio::spawn(play_b_test_answering_a_test_only(tcp));
        }
    });
    // Bob's server (a raw peer) proves b.test to a.test and its MUC service, then asks
    // each something: the answers go back over a.test's stream to b.test.
    let a_addr = format!("127.0.13.1:{S2S_PORT}").parse().unwrap();
    let (mut bob_server, _) = open_s2s(a_addr, "b.test", "a.test", None).await;
    for to in ["a.test", "conference.a.test"] {
        bob_server
            .send(format!(
                "<db:result from='b.test' to='{to}'>some-key</db:result>"
            ))
            .await;
        bob_server.read_until("type=\"valid\"").await;
    }
    bob_server
        .send("<iq from='bob@b.test/r' to='a.test' type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>")
        .await;
    log_line(
        &a,
        &authenticated("outgoing", "a.test", "b.test", "dialback")
            .replace(" tls=TLSv1.3", " tls=none"),
    );
    bob_server
        .send("<iq from='bob@b.test/r' to='conference.a.test' type='get' id='v2'><query xmlns='jabber:iq:version'/></iq>")
        .await;
    log_line(
        &a,
        "no dialback answer for another of our domains within connect_timeout",
    );
}

/// b.test played by the test, without TLS: answers a header with its own, a
/// `<db:verify/>` valid, and a `<db:result/>` valid only for a.test.
async fn play_b_test_answering_a_test_only(mut tcp: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let mut done = 0;
    loop {
        let Ok(n) = tcp.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        let mut answers = String::new();
        // Each complete unit not yet answered: the header, then dialback elements.
        while let Some(end) = seen[done..].find('>').map(|e| done + e + 1) {
            let unit = &seen[done..end];
            if unit.contains("<stream:stream") {
                answers.push_str(
                    "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
                     xmlns:db='jabber:server:dialback' id='b-stream' from='b.test' version='1.0'>\
                     <stream:features/>",
                );
            } else if unit.starts_with("<db:verify") {
                let id = unit
                    .split("id=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or_default();
                answers.push_str(&format!(
                    "<db:verify from='b.test' to='a.test' id='{id}' type='valid'/>"
                ));
            } else if unit.starts_with("<db:result") && unit.contains("from=\"a.test\"") {
                answers.push_str("<db:result from='b.test' to='a.test' type='valid'/>");
            }
            done = end;
        }
        if !answers.is_empty() && tcp.write_all(answers.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A user of b.test enters a room of a.test's MUC service (its domain, conference.a.test,
/// is in b.test's map and is dialback-authenticated on a stream of its own), sees the
/// local occupant, chats both ways and sees the local occupant leave.
#[tokio::test]
async fn a_remote_user_joins_a_room_and_chats_with_local_occupants() {
    let (a, b) = federated_pair(14);
    a.add_user("alice@a.test", "alicepw");
    b.add_user("bob@b.test", "bobpw");
    let room = "lounge@conference.a.test";
    let mut alice = SlixIm::available(&a, "slix_muc.py", "alice@a.test/slix", "alicepw").await;
    let mut bob = SlixIm::available(&b, "slix_muc.py", "bob@b.test/slix", "bobpw").await;
    remote_occupant_chats(&mut alice, &mut bob, room).await;

    // Alice goes offline: she leaves the room, and Bob is told.
    alice.command(r#"{"cmd": "unavailable"}"#).await;
    bob.expect_all(&[
        "muc_presence",
        r#""nick": "alice""#,
        r#""type": "unavailable""#,
    ])
    .await;
    assert!(bob.quit().await);
    assert!(alice.quit().await);
}
