//! Federation (RFC 6120 server-to-server streams, XEP-0220 dialback): two Jabberwock
//! instances, `a.test` and `b.test`, each on its own loopback address and found through
//! the other's static peer map, carry messages, IQs, presence and subscriptions between
//! their users over STARTTLS + dialback; a peer can't send from a domain it did not
//! prove, a wrong dialback key is refused, and unreachable domains bounce.

use jabberwock_tests::s2s::{
    bounces, federated, federated_pair, open_s2s, remote_occupant_chats, S2S_PORT,
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

    // Alice subscribes to Bob (RFC 6121 §3.1): the request crosses to b.test.
    alice
        .send("<presence to='bob@b.test' type='subscribe' id='s1'/>")
        .await;
    let request = bob.read_stanza_containing("type=\"subscribe\"").await;
    assert!(request.contains("from=\"alice@a.test\""), "{request}");
    bob.send("<presence to='alice@a.test' type='subscribed' id='s2'/>")
        .await;
    let approved = alice.read_stanza_containing("type=\"subscribed\"").await;
    assert!(approved.contains("from=\"bob@b.test\""), "{approved}");
    // §3.1.5: approving shares Bob's presence with Alice at once.
    let seen = alice
        .read_stanza_containing("from=\"bob@b.test/desk\"")
        .await;
    assert!(
        seen.starts_with("<presence") && !seen.contains("type="),
        "{seen}"
    );

    // And the other way round.
    bob.send("<presence to='alice@a.test' type='subscribe' id='s3'/>")
        .await;
    let request = alice.read_stanza_containing("type=\"subscribe\"").await;
    assert!(request.contains("from=\"bob@b.test\""), "{request}");
    alice
        .send("<presence to='bob@b.test' type='subscribed' id='s4'/>")
        .await;
    let seen = bob
        .read_stanza_containing("from=\"alice@a.test/home\"")
        .await;
    assert!(
        seen.starts_with("<presence") && !seen.contains("type="),
        "{seen}"
    );

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

    assert!(
        a.wait_log("outgoing stream authenticated (dialback)"),
        "{}",
        a.log_text()
    );
    assert!(
        b.wait_log("incoming stream authenticated (dialback)"),
        "{}",
        b.log_text()
    );
}

/// A raw peer proves `x.test` (its authoritative side, a listener of the test's, says the
/// key is good), then sends a stanza from `y.test`: `<invalid-from/>`, and the stanza
/// reaches no one.
#[tokio::test]
async fn a_stanza_from_a_domain_the_peer_did_not_prove_is_invalid_from() {
    let x_addr = format!("127.0.2.2:{S2S_PORT}");
    let authoritative = tokio::net::TcpListener::bind(&x_addr)
        .await
        .expect("bind x.test");
    let a = federated(
        "a.test",
        "127.0.2.1",
        &[("x.test", x_addr.clone())],
        &["require_encryption = false"],
    );
    a.add_user("alice@a.test", "alicepw");
    let (mut alice, _) =
        RawClient::login_standard_at(a.c2s, &a.cert_path(), "a.test", "alice", "alicepw", "home")
            .await;
    // x.test's authoritative server: answers every <db:verify/> valid.
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = authoritative.accept().await else {
                return;
            };
            tokio::spawn(answer_verify_valid(tcp));
        }
    });
    let a_addr = format!("127.0.2.1:{S2S_PORT}").parse().unwrap();

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

/// Plays x.test's authoritative server for one stream: header and features, then a valid
/// answer to the `<db:verify/>` asked.
async fn answer_verify_valid(tcp: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tcp;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let mut answered_header = false;
    loop {
        let Ok(n) = tcp.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).into_owned();
        if !answered_header && text.contains("version=\"1.0\">") {
            answered_header = true;
            let header = "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
                 xmlns:db='jabber:server:dialback' id='x-stream' from='x.test' to='a.test' version='1.0'>\
                 <stream:features/>";
            if tcp.write_all(header.as_bytes()).await.is_err() {
                return;
            }
        }
        if let Some(verify) = text
            .split("<verify")
            .nth(1)
            .filter(|v| v.contains("</verify>"))
        {
            let id = verify
                .split("id=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default();
            let answer = format!(
                "<db:verify from='x.test' to='a.test' id='{id}' type='valid'/></stream:stream>"
            );
            let _ = tcp.write_all(answer.as_bytes()).await;
            return;
        }
    }
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

/// slixmpp's XEP-0045 client (tests/clients/slix_muc.py) as `jid`, logged in to `server`
/// and available.
async fn slix_muc(server: &jabberwock_tests::TestServer, jid: &str, password: &str) -> SlixIm {
    let mut client = SlixIm::spawn_script(
        "slix_muc.py",
        &format!("{jid}/slix"),
        password,
        server.c2s.port(),
        &server.cert_path(),
    );
    client.expect_all(&["session_start"]).await;
    client.command(r#"{"cmd": "available"}"#).await;
    client
}

/// A user of b.test enters a room of a.test's MUC service (its domain, conference.a.test,
/// is in b.test's map and is dialback-authenticated on a stream of its own), sees the
/// local occupant, chats both ways and sees the local occupant leave.
#[tokio::test]
async fn a_remote_user_joins_a_room_and_chats_with_local_occupants() {
    let a_addr = format!("127.0.5.1:{S2S_PORT}");
    let a = federated(
        "a.test",
        "127.0.5.1",
        &[("b.test", format!("127.0.5.2:{S2S_PORT}"))],
        &[],
    );
    let b = federated(
        "b.test",
        "127.0.5.2",
        &[("a.test", a_addr.clone()), ("conference.a.test", a_addr)],
        &[],
    );
    a.add_user("alice@a.test", "alicepw");
    b.add_user("bob@b.test", "bobpw");
    let room = "lounge@conference.a.test";
    let mut alice = slix_muc(&a, "alice@a.test", "alicepw").await;
    let mut bob = slix_muc(&b, "bob@b.test", "bobpw").await;
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
