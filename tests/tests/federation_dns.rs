//! Finding federation peers through DNS (RFC 6120 §3.2): SRV `_xmpp-server._tcp` targets in
//! priority order (a dead one skipped), the A record on port 5269 when there is no SRV
//! record, a `.` target meaning no service (and no fallback), and a domain that could not be
//! reached not looked up again for every stanza; `_xmpps-server._tcp` targets reached with
//! TLS from the first byte (XEP-0368) on our direct TLS listeners. The nameserver is the
//! test's own (`dns::TestDns` on a loopback address), named by `[modules.s2s] resolvers`.

use std::net::Ipv4Addr;

use jabberwock_tests::dns::TestDns;
use jabberwock_tests::s2s::{
    alice_and_bob, authenticated, bounces, federated_at, log_line, message_crosses, pinned,
    s2s_header,
};
use jabberwock_tests::tls::negotiated_alpn;
use jabberwock_tests::RawClient;

/// `a.test` finds `b.test` through SRV: the first target (priority 0) refuses, the second
/// (priority 10, another host name, port 5270) is b.test's listener. `b.test` finds
/// `a.test` through its A record alone, on port 5269. Messages cross both ways, and the
/// answers to dialback's questions go through the same lookups.
#[tokio::test]
async fn srv_targets_in_priority_order_and_the_a_record_fallback() {
    let dns = TestDns::start("127.0.41.53:0");
    dns.srv("_xmpp-server._tcp.b.test", 0, 0, 5270, "dead.b.test.");
    dns.a("dead.b.test", Ipv4Addr::new(127, 0, 41, 9));
    dns.srv("_xmpp-server._tcp.b.test", 10, 0, 5270, "xmpp.b.test.");
    dns.a("xmpp.b.test", Ipv4Addr::new(127, 0, 41, 2));
    dns.a("a.test", Ipv4Addr::new(127, 0, 41, 1));
    let resolvers = format!("resolvers = [\"{}\"]", dns.addr);
    let a = federated_at("a.test", "127.0.41.1:5269", &[], &[&resolvers]);
    let b = federated_at("b.test", "127.0.41.2:5270", &[], &[&resolvers]);
    a.add_user("alice@a.test", "alicepw");
    b.add_user("bob@b.test", "bobpw");
    let (mut alice, _) =
        RawClient::login_standard_at(a.c2s, &a.cert_path(), "a.test", "alice", "alicepw", "home")
            .await;
    let (mut bob, _) =
        RawClient::login_standard_at(b.c2s, &b.cert_path(), "b.test", "bob", "bobpw", "desk").await;

    alice
        .send("<message to='bob@b.test/desk' type='chat' id='m1'><body>via SRV</body></message>")
        .await;
    let got = bob.read_stanza_containing("via SRV").await;
    assert!(got.contains("from=\"alice@a.test/home\""), "{got}");
    bob.send("<message to='alice@a.test/home' type='chat' id='m2'><body>via A</body></message>")
        .await;
    let got = alice.read_stanza_containing("via A").await;
    assert!(got.contains("from=\"bob@b.test/desk\""), "{got}");

    let questions = dns.questions();
    assert!(dns.asked("dead.b.test", "A") >= 1, "{questions}");
    assert!(dns.asked("xmpp.b.test", "A") >= 1, "{questions}");
    // XEP-0368's direct TLS service is asked for too, and has no record here.
    assert!(
        dns.asked("_xmpps-server._tcp.b.test", "SRV") >= 1,
        "{questions}"
    );
    assert!(
        dns.asked("_xmpp-server._tcp.a.test", "SRV") >= 1,
        "{questions}"
    );
    assert!(dns.asked("a.test", "A") >= 1, "{questions}");
    // SRV records were found for b.test: its own A record is no fallback (§3.2.1).
    assert_eq!(dns.asked("b.test", "A"), 0, "{questions}");
}

/// A single `.` SRV target says the domain offers no s2s service: the message bounces and
/// the domain's A record is not tried. A domain with no record at all is tried through its
/// A record (none either) and bounces too.
#[tokio::test]
async fn a_dot_target_means_no_service_and_no_records_mean_not_found() {
    let dns = TestDns::start("127.0.42.53:0");
    dns.srv("_xmpp-server._tcp.none.test", 0, 0, 0, ".");
    dns.a("none.test", Ipv4Addr::new(127, 0, 42, 7));
    let resolvers = format!("resolvers = [\"{}\"]", dns.addr);
    let a = federated_at("a.test", "127.0.42.1:5269", &[], &[&resolvers]);
    a.add_user("alice@a.test", "alicepw");
    let (mut alice, _) =
        RawClient::login_standard_at(a.c2s, &a.cert_path(), "a.test", "alice", "alicepw", "home")
            .await;
    bounces(&mut alice, "bob@none.test", "m1", "remote-server-not-found").await;
    bounces(&mut alice, "bob@gone.test", "m2", "remote-server-not-found").await;
    let questions = dns.questions();
    assert!(
        dns.asked("_xmpp-server._tcp.none.test", "SRV") >= 1,
        "{questions}"
    );
    assert_eq!(dns.asked("none.test", "A"), 0, "{questions}");
    assert!(dns.asked("gone.test", "A") >= 1, "{questions}");
}

/// A domain whose only target refuses connections: with the default `retry_after`, three
/// stanzas in a row bounce after one lookup (the first attempt's); with `retry_after = 0`
/// each stanza looks the domain up again.
#[tokio::test]
async fn a_dead_domain_is_not_tried_again_for_every_stanza() {
    let dns = TestDns::start("127.0.43.53:0");
    dns.srv("_xmpp-server._tcp.dead.test", 0, 0, 5269, "host.dead.test.");
    dns.a("host.dead.test", Ipv4Addr::new(127, 0, 43, 9));
    let resolvers = format!("resolvers = [\"{}\"]", dns.addr);
    let a = federated_at("a.test", "127.0.43.1:5269", &[], &[&resolvers]);
    let c = federated_at(
        "c.test",
        "127.0.43.3:5269",
        &[],
        &[&resolvers, "retry_after = 0"],
    );
    a.add_user("alice@a.test", "alicepw");
    c.add_user("carol@c.test", "carolpw");
    let (mut alice, _) =
        RawClient::login_standard_at(a.c2s, &a.cert_path(), "a.test", "alice", "alicepw", "home")
            .await;
    for id in ["m1", "m2", "m3"] {
        bounces(&mut alice, "bob@dead.test", id, "remote-server-not-found").await;
    }
    assert_eq!(
        dns.asked("_xmpp-server._tcp.dead.test", "SRV"),
        1,
        "{}",
        dns.questions()
    );

    let (mut carol, _) =
        RawClient::login_standard_at(c.c2s, &c.cert_path(), "c.test", "carol", "carolpw", "home")
            .await;
    for id in ["m1", "m2", "m3"] {
        bounces(&mut carol, "bob@dead.test", id, "remote-server-not-found").await;
    }
    assert_eq!(
        dns.asked("_xmpp-server._tcp.dead.test", "SRV"),
        4,
        "{}",
        dns.questions()
    );
}

/// XEP-0368 both ways: each domain publishes `_xmpps-server._tcp` (priority 0, its direct
/// TLS port 5270) before `_xmpp-server._tcp` (priority 10, STARTTLS on 5269). Each server
/// connects to the other's direct TLS listener with TLS from the first byte (ALPN
/// `xmpp-server`), dialback authenticates the stream inside it, both logs say
/// `direct_tls=true` for both directions, and messages cross both ways. The listener
/// offers no STARTTLS inside TLS, takes only the `xmpp-server` protocol, and a plaintext
/// header gets no stream at all.
#[tokio::test]
async fn xmpps_server_records_lead_to_direct_tls_both_ways() {
    let dns = TestDns::start("127.0.44.53:0");
    for (domain, ip) in [("a.test", 1), ("b.test", 2)] {
        let host = format!("xmpp.{domain}.");
        dns.srv(&format!("_xmpps-server._tcp.{domain}"), 0, 0, 5270, &host);
        dns.srv(&format!("_xmpp-server._tcp.{domain}"), 10, 0, 5269, &host);
        dns.a(&host, Ipv4Addr::new(127, 0, 44, ip));
    }
    let resolvers = format!("resolvers = [\"{}\"]", dns.addr);
    let start = |domain: &str, ip: u8| {
        let direct = format!("direct_tls_listen = [\"127.0.44.{ip}:5270\"]");
        let listen = format!("127.0.44.{ip}:5269");
        pinned(federated_at(domain, &listen, &[], &[&resolvers, &direct]))
    };
    let (a, b) = (start("a.test", 1), start("b.test", 2));
    let (mut alice, mut bob) = alice_and_bob(&a, &b).await;
    message_crosses(&mut alice, &mut bob, "bob@b.test", "direct to b").await;
    message_crosses(&mut bob, &mut alice, "alice@a.test", "direct to a").await;
    for (server, direction, local, remote) in [
        (&a.0, "outgoing", "a.test", "b.test"),
        (&b.0, "incoming", "b.test", "a.test"),
        (&b.0, "outgoing", "b.test", "a.test"),
        (&a.0, "incoming", "a.test", "b.test"),
    ] {
        let line = authenticated(direction, local, remote, "dialback");
        log_line(server, &format!("{line} direct_tls=true"));
        assert!(
            !server.log_text().contains("direct_tls=false"),
            "{}",
            server.log_text()
        );
    }
    let questions = dns.questions();
    assert!(
        dns.asked("_xmpps-server._tcp.b.test", "SRV") >= 1,
        "{questions}"
    );

    let (b, b_cert) = &b;
    let direct = b
        .listening("s2s-direct-tls")
        .expect("the direct TLS listener");
    let alpn = negotiated_alpn(direct, b_cert, &[b"xmpp-server"]).await;
    assert_eq!(alpn.expect("handshake"), Some(b"xmpp-server".to_vec()));
    let refused = negotiated_alpn(direct, b_cert, &[b"xmpp-client"]).await;
    assert!(refused.is_err(), "{refused:?}");
    let mut peer = RawClient::connect_tls(direct, b_cert).await;
    peer.send(s2s_header("x.test", "b.test")).await;
    let features = peer.read_until("</stream:features>").await;
    assert!(
        features.contains("urn:xmpp:features:dialback") && !features.contains("starttls"),
        "{features}"
    );
    let mut plaintext = RawClient::connect(direct).await;
    plaintext.send(s2s_header("x.test", "b.test")).await;
    let answer = plaintext.read_to_close().await;
    assert!(!answer.contains("<stream"), "{answer}");
}
