//! Federation with a server we did not write: Jabberwock serves `a.test`, Debian's Prosody
//! 0.12 `b.test`, each on its own loopback address; both find the other through the test's
//! nameserver (SRV for b.test, the A record for a.test). The same IM scenario runs twice:
//! over XEP-0220 dialback after STARTTLS (Prosody's mod_dialback; `s2s_secure_auth =
//! false`, the certificates being self-signed), and over SASL EXTERNAL (XEP-0178) with
//! certificates a test CA issued and both sides trusting that CA and requiring them
//! (Prosody's `s2s_secure_auth = true`, our `require_valid_certificate`). slixmpp logs in
//! on each side.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use jabberwock_tests::dns::TestDns;
use jabberwock_tests::prosody::{require_root, Prosody, ProsodyTls};
use jabberwock_tests::s2s::{
    authenticated, federated_config_at, log_line, remote_occupant_chats, start_federated, TestCa,
};
use jabberwock_tests::slix::SlixIm;

/// How the two servers authenticate each other's streams.
#[derive(Clone, Copy, PartialEq)]
enum Method {
    /// Self-signed certificates nobody can check: XEP-0220 dialback.
    Dialback,
    /// Certificates from the test's CA, which both trust and require: XEP-0178 EXTERNAL.
    External,
}

impl Method {
    /// The word our log line names it by.
    fn logged(self) -> &'static str {
        match self {
            Method::Dialback => "dialback",
            Method::External => "EXTERNAL",
        }
    }
}

/// Prints the server's log if the test fails (Prosody's prints itself).
struct LogOnPanic<'a>(&'a jabberwock_tests::TestServer);

impl Drop for LogOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("a.test's log:\n{}", self.0.log_text());
        }
    }
}

#[tokio::test]
async fn prosody_and_jabberwock_users_subscribe_see_presence_chat_and_share_a_room() {
    federate_with_prosody(50, Method::Dialback).await;
}

#[tokio::test]
async fn prosody_and_jabberwock_federate_over_sasl_external_with_certificates_of_a_test_ca() {
    federate_with_prosody(51, Method::External).await;
}

/// On the network 127.0.`net`.0/24 (a.test on .1, b.test on .2, the nameserver on .53),
/// Jabberwock's alice and Prosody's bob subscribe to each other, see presence go and
/// come, chat both ways, and bob chats with alice in a room of conference.a.test; every
/// stream between the servers is authenticated by `method`, as our log shows.
async fn federate_with_prosody(net: u8, method: Method) {
    require_root("Prosody as a peer");
    let ip = |host| Ipv4Addr::new(127, 0, net, host);
    let dns = TestDns::start(&format!("{}:53", ip(53)));
    dns.a("a.test", ip(1));
    dns.a("conference.a.test", ip(1));
    dns.srv("_xmpp-server._tcp.b.test", 0, 0, 5269, "b.test.");
    dns.a("b.test", ip(2));
    let resolvers = format!("resolvers = [\"{}\"]", dns.addr);
    let a_config = federated_config_at("a.test", &format!("{}:5269", ip(1)), &[], &[&resolvers]);
    let ca = TestCa::new();
    let (b_ip, b_dns) = (ip(2).to_string(), ip(53).to_string());
    // What each side's clients trust: the server's own certificate, or the CA.
    let (a, b, a_trust, b_trust): (_, _, PathBuf, PathBuf) = match method {
        Method::Dialback => {
            let a = start_federated(a_config);
            let b = Prosody::start("b.test", &b_ip, &b_dns, ProsodyTls::SelfSigned, "");
            let (a_trust, b_trust) = (a.cert_path(), b.cert_path());
            (a, b, a_trust, b_trust)
        }
        Method::External => {
            let (a_config, _) = ca.configure(a_config, "a", &["a.test", "conference.a.test"]);
            // No dialback with b.test, neither as a fallback nor for conference.a.test
            // joining a.test's stream (XEP-0220 §2.5): every stream proves its domain by
            // certificate.
            let policy = "modules.s2s.domains.\"b.test\"";
            let a_config = a_config
                .section(policy, "require_valid_certificate = true")
                .section(policy, "allow_dialback = false");
            let (cert, key) = ca.issue("b", &["b.test", "conference.b.test"]);
            let tls = ProsodyTls::Issued {
                cert: &cert,
                key: &key,
                ca: &ca.ca_file(),
            };
            let a = start_federated(a_config);
            let b = Prosody::start("b.test", &b_ip, &b_dns, tls, "");
            (a, b, ca.ca_file(), ca.ca_file())
        }
    };
    let _a_log = LogOnPanic(&a);
    a.add_user("alice@a.test", "alicepw");
    b.register("bob", "bobpw");

    // slixmpp with its XEP-0045 plugin (slix_muc.py: slix_im.py's commands and more).
    let mut alice = SlixIm::spawn_script(
        "slix_muc.py",
        "alice@a.test/slix",
        "alicepw",
        a.c2s.port(),
        &a_trust,
    );
    alice.expect_all(&["session_start"]).await;
    let mut bob =
        SlixIm::spawn_script_at("slix_muc.py", "bob@b.test/slix", "bobpw", b.c2s, &b_trust);
    bob.expect_all(&["session_start"]).await;
    alice.command(r#"{"cmd": "available"}"#).await;
    bob.command(r#"{"cmd": "available"}"#).await;

    // Alice asks for Bob's presence; Bob, on Prosody, approves; and the other way round.
    alice
        .command(r#"{"cmd": "subscribe", "to": "bob@b.test"}"#)
        .await;
    bob.expect_all(&[
        "\"presence\"",
        "\"from\": \"alice@a.test\"",
        "\"subscribe\"",
    ])
    .await;
    bob.command(r#"{"cmd": "authorize", "to": "alice@a.test"}"#)
        .await;
    alice
        .expect_all(&["\"presence\"", "\"from\": \"bob@b.test\"", "\"subscribed\""])
        .await;
    // Approval shares Bob's current presence with Alice (RFC 6121 §3.1.5).
    alice
        .expect_ever(&[
            "\"presence\"",
            "\"from\": \"bob@b.test/slix\"",
            "\"available\"",
        ])
        .await;
    bob.command(r#"{"cmd": "subscribe", "to": "alice@a.test"}"#)
        .await;
    alice
        .expect_all(&["\"presence\"", "\"from\": \"bob@b.test\"", "\"subscribe\""])
        .await;
    alice
        .command(r#"{"cmd": "authorize", "to": "bob@b.test"}"#)
        .await;
    bob.expect_ever(&[
        "\"presence\"",
        "\"from\": \"alice@a.test/slix\"",
        "\"available\"",
    ])
    .await;

    // Messages both ways.
    alice
        .command(r#"{"cmd": "message", "to": "bob@b.test", "body": "hello Prosody"}"#)
        .await;
    bob.expect_all(&["\"received\"", "alice@a.test/slix", "hello Prosody"])
        .await;
    bob.command(r#"{"cmd": "message", "to": "alice@a.test/slix", "body": "hello Jabberwock"}"#)
        .await;
    alice
        .expect_all(&["\"received\"", "bob@b.test/slix", "hello Jabberwock"])
        .await;

    // Presence goes and comes back, each way.
    bob.command(r#"{"cmd": "unavailable"}"#).await;
    alice
        .expect_all(&[
            "\"presence\"",
            "\"from\": \"bob@b.test/slix\"",
            "\"unavailable\"",
        ])
        .await;
    bob.command(r#"{"cmd": "available"}"#).await;
    alice
        .expect_all(&[
            "\"presence\"",
            "\"from\": \"bob@b.test/slix\"",
            "\"available\"",
        ])
        .await;
    alice.command(r#"{"cmd": "unavailable"}"#).await;
    bob.expect_all(&[
        "\"presence\"",
        "\"from\": \"alice@a.test/slix\"",
        "\"unavailable\"",
    ])
    .await;
    alice.command(r#"{"cmd": "available"}"#).await;
    bob.expect_all(&[
        "\"presence\"",
        "\"from\": \"alice@a.test/slix\"",
        "\"available\"",
    ])
    .await;

    // Bob, on Prosody, enters a room of ours (Prosody finds conference.a.test through
    // DNS) and chats with Alice there.
    remote_occupant_chats(&mut alice, &mut bob, "lounge@conference.a.test").await;

    // Every stream between the servers was authenticated by `method`, as our log shows:
    // both directions for a.test, and conference.a.test's to and from b.test for the room.
    for (direction, local) in [
        ("outgoing", "a.test"),
        ("incoming", "a.test"),
        ("outgoing", "conference.a.test"),
        ("incoming", "conference.a.test"),
    ] {
        log_line(
            &a,
            &authenticated(direction, local, "b.test", method.logged()),
        );
    }
    if method == Method::External {
        assert!(
            !a.log_text().contains("method=dialback"),
            "{}",
            a.log_text()
        );
        // Prosody's mod_saslauth logs its side of both directions.
        for needle in [
            "Accepting SASL EXTERNAL identity from a.test",
            "Accepting SASL EXTERNAL identity from conference.a.test",
            "SASL EXTERNAL with a.test succeeded",
            "SASL EXTERNAL with conference.a.test succeeded",
        ] {
            assert!(b.wait_log(needle), "no {needle:?} in Prosody's log");
        }
    }
    assert!(alice.quit().await);
    assert!(bob.quit().await);
}
