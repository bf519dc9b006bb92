//! Finding federation peers through DNS (RFC 6120 §3.2): SRV `_xmpp-server._tcp` targets in
//! priority order (a dead one skipped), the A record on port 5269 when there is no SRV
//! record, a `.` target meaning no service (and no fallback), and a domain that could not be
//! reached not looked up again for every stanza. The nameserver is the test's own
//! (`dns::TestDns` on a loopback address), named by `[modules.s2s] resolvers`.

use std::net::Ipv4Addr;

use jabberwock_tests::dns::TestDns;
use jabberwock_tests::s2s::{bounces, federated_at};
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
