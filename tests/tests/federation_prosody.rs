//! Federation with a server we did not write: Jabberwock serves `a.test`, Debian's Prosody
//! 0.12 `b.test`, each on its own loopback address; both find the other through the test's
//! nameserver (SRV for b.test, the A record for a.test), and authenticate with XEP-0220
//! dialback after STARTTLS (Prosody's mod_dialback; `s2s_secure_auth = false`, the
//! certificates being self-signed). slixmpp logs in on each side.

use std::net::Ipv4Addr;

use jabberwock_tests::dns::TestDns;
use jabberwock_tests::prosody::{require_root, Prosody};
use jabberwock_tests::s2s::{federated_at, remote_occupant_chats};
use jabberwock_tests::slix::SlixIm;

/// The test's network: a.test on .1, b.test on .2, the nameserver on .53.
const NET: [u8; 3] = [127, 0, 50];

fn ip(host: u8) -> Ipv4Addr {
    Ipv4Addr::new(NET[0], NET[1], NET[2], host)
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
    require_root("Prosody as a peer");
    let dns = TestDns::start(&format!("{}:53", ip(53)));
    dns.a("a.test", ip(1));
    dns.a("conference.a.test", ip(1));
    dns.srv("_xmpp-server._tcp.b.test", 0, 0, 5269, "b.test.");
    dns.a("b.test", ip(2));
    let resolvers = format!("resolvers = [\"{}\"]", dns.addr);
    let a = federated_at("a.test", &format!("{}:5269", ip(1)), &[], &[&resolvers]);
    let b = Prosody::start("b.test", &ip(2).to_string(), &ip(53).to_string(), "");
    let _a_log = LogOnPanic(&a);
    a.add_user("alice@a.test", "alicepw");
    b.register("bob", "bobpw");

    // slixmpp with its XEP-0045 plugin (slix_muc.py: slix_im.py's commands and more).
    let mut alice = SlixIm::spawn_script(
        "slix_muc.py",
        "alice@a.test/slix",
        "alicepw",
        a.c2s.port(),
        &a.cert_path(),
    );
    alice.expect_all(&["session_start"]).await;
    let mut bob = SlixIm::spawn_script_at(
        "slix_muc.py",
        "bob@b.test/slix",
        "bobpw",
        b.c2s,
        &b.cert_path(),
    );
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

    // Both directions were dialback-authenticated streams, as each side logs them.
    assert!(
        a.wait_log("outgoing stream authenticated (dialback)"),
        "{}",
        a.log_text()
    );
    assert!(
        a.wait_log("incoming stream authenticated (dialback)"),
        "{}",
        a.log_text()
    );
    assert!(alice.quit().await);
    assert!(bob.quit().await);
}
