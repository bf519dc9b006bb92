//! XEP-0191 Blocking Command: slixmpp's own plugin (xep_0191) blocks and unblocks, and the
//! server stops messages and presence both ways, pushes the change to the user's other
//! resource, and keeps the list across a restart; raw bytes for the exact IQ answers and the
//! error a message to a blocked contact gets.

mod im_support;

use im_support::Peer;
use jabberwock_tests::slix::SlixIm;
use jabberwock_tests::TestServer;

const SCRIPT: &str = "slix_blocking.py";

fn spawn(server: &TestServer, jid: &str, password: &str) -> SlixIm {
    SlixIm::spawn_script(
        SCRIPT,
        jid,
        password,
        server.c2s.port(),
        &server.cert_path(),
    )
}

async fn login(server: &TestServer, jid: &str, password: &str) -> SlixIm {
    let mut client = spawn(server, jid, password);
    client.expect_all(&["session_start"]).await;
    client.command(r#"{"cmd": "get_roster"}"#).await;
    client
}

/// A round trip to the server: once it returns, everything the server queued for this
/// client before it was reported (slixmpp handles stanzas in order).
async fn barrier(client: &mut SlixIm) -> String {
    client.command(r#"{"cmd": "blocklist"}"#).await;
    client
        .events
        .iter()
        .rev()
        .find(|e| e.contains("\"event\": \"blocklist\""))
        .cloned()
        .expect("a blocklist event")
}

/// The events seen since `mark` (an index into `events`) that contain every needle.
fn seen_since<'a>(client: &'a SlixIm, mark: usize, needles: &[&str]) -> Vec<&'a String> {
    client.events[mark..]
        .iter()
        .filter(|e| needles.iter().all(|n| e.contains(n)))
        .collect()
}

/// Alice and Bob subscribe to each other (slixmpp asks and approves) and see each other.
async fn befriend(alice: &mut SlixIm, bob: &mut SlixIm) {
    alice
        .command(r#"{"cmd": "subscribe", "to": "bob@localhost"}"#)
        .await;
    bob.expect_all(&[r#""from": "alice@localhost", "type": "subscribe""#])
        .await;
    bob.command(r#"{"cmd": "authorize", "to": "alice@localhost"}"#)
        .await;
    bob.command(r#"{"cmd": "subscribe", "to": "alice@localhost"}"#)
        .await;
    alice
        .expect_all(&[r#""from": "bob@localhost", "type": "subscribe""#])
        .await;
    alice
        .command(r#"{"cmd": "authorize", "to": "bob@localhost"}"#)
        .await;
    alice
        .expect_ever(&[r#""from": "bob@localhost/slix", "type": "available""#])
        .await;
    bob.expect_ever(&[r#""from": "alice@localhost/one", "type": "available""#])
        .await;
}

/// Messages both ways are stopped: Bob's gets `service-unavailable` (Alice looks offline,
/// §3.3), Alice's gets `not-acceptable` with `<blocked/>`; neither arrives.
async fn messages_are_stopped(alice: &mut SlixIm, bob: &mut SlixIm) {
    let alice_mark = alice.events.len();
    bob.command(r#"{"cmd": "message", "to": "alice@localhost", "body": "let me in"}"#)
        .await;
    bob.expect_all(&[
        "message_error",
        r#""condition": "service-unavailable""#,
        r#""blocked": false"#,
    ])
    .await;
    alice
        .command(r#"{"cmd": "message", "to": "bob@localhost", "body": "psst"}"#)
        .await;
    alice
        .expect_all(&[
            "message_error",
            r#""from": "bob@localhost""#,
            r#""condition": "not-acceptable""#,
            r#""blocked": true"#,
        ])
        .await;
    let bob_mark = bob.events.len();
    barrier(bob).await;
    barrier(alice).await;
    assert!(
        seen_since(alice, alice_mark, &["received"]).is_empty(),
        "{:?}",
        alice.events
    );
    assert!(
        seen_since(bob, bob_mark, &["received"]).is_empty(),
        "{:?}",
        bob.events
    );
}

#[tokio::test]
async fn slixmpp_blocks_and_unblocks_and_the_block_holds_both_ways_across_a_restart() {
    let mut server = TestServer::start();
    server.wait_started();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");

    let mut alice = login(&server, "alice@localhost/one", "wonderland").await;
    let mut other = login(&server, "alice@localhost/two", "wonderland").await;
    let mut bob = login(&server, "bob@localhost/slix", "builder").await;
    // §3.1: the server says it supports blocking.
    alice.command(r#"{"cmd": "disco_server"}"#).await;
    assert!(
        alice
            .events
            .iter()
            .any(|e| e.contains("\"features\"") && e.contains("\"urn:xmpp:blocking\"")),
        "{:?}",
        alice.events
    );
    for client in [&mut alice, &mut other, &mut bob] {
        client.command(r#"{"cmd": "available"}"#).await;
    }
    befriend(&mut alice, &mut bob).await;
    // Both of Alice's resources retrieved the (empty) list, so both hear of changes (§3.2).
    assert!(barrier(&mut alice).await.contains("\"items\": []"));
    assert!(barrier(&mut other).await.contains("\"items\": []"));

    // Alice blocks Bob: her other resource gets the push, Bob sees her go offline (§3.3).
    alice
        .command(r#"{"cmd": "block", "jids": ["bob@localhost"]}"#)
        .await;
    other
        .expect_all(&["\"event\": \"blocked\"", r#""items": ["bob@localhost"]"#])
        .await;
    bob.expect_ever(&[r#""from": "alice@localhost/one", "type": "unavailable""#])
        .await;
    bob.expect_ever(&[r#""from": "alice@localhost/two", "type": "unavailable""#])
        .await;
    // Read up to the unavailable: whatever Bob hears of Alice from here on is a leak.
    let bob_mark = bob.events.len();
    assert!(barrier(&mut alice)
        .await
        .contains(r#""items": ["bob@localhost"]"#));

    messages_are_stopped(&mut alice, &mut bob).await;

    // Presence is stopped both ways: Bob's new presence never reaches Alice, Alice's never
    // reaches Bob.
    let alice_mark = alice.events.len();
    bob.command(r#"{"cmd": "available"}"#).await;
    alice.command(r#"{"cmd": "available"}"#).await;
    barrier(&mut bob).await;
    barrier(&mut alice).await;
    assert!(
        seen_since(&alice, alice_mark, &[r#""from": "bob@localhost"#]).is_empty(),
        "{:?}",
        alice.events
    );
    assert!(
        seen_since(
            &bob,
            bob_mark,
            &[r#""from": "alice@localhost"#, "\"available\""]
        )
        .is_empty(),
        "{:?}",
        bob.events
    );

    // The list is stored: after a restart it is still there and still enforced, and a
    // login's probes do not bring the blocked contact's presence back.
    for client in [alice, other, bob] {
        assert!(client.quit().await);
    }
    assert!(server.terminate().success());
    server.restart();
    let mut bob = login(&server, "bob@localhost/slix", "builder").await;
    bob.command(r#"{"cmd": "available"}"#).await;
    let mut alice = login(&server, "alice@localhost/one", "wonderland").await;
    alice.command(r#"{"cmd": "available"}"#).await;
    assert!(barrier(&mut alice)
        .await
        .contains(r#""items": ["bob@localhost"]"#));
    barrier(&mut bob).await;
    assert!(
        seen_since(&alice, 0, &[r#""from": "bob@localhost"#]).is_empty(),
        "{:?}",
        alice.events
    );
    assert!(
        seen_since(&bob, 0, &[r#""from": "alice@localhost"#]).is_empty(),
        "{:?}",
        bob.events
    );
    messages_are_stopped(&mut alice, &mut bob).await;

    // Unblocking restores everything: presence both ways at once (§3.4), then messages.
    alice
        .command(r#"{"cmd": "unblock", "jids": ["bob@localhost"]}"#)
        .await;
    bob.expect_all(&[r#""from": "alice@localhost/one", "type": "available""#])
        .await;
    alice
        .expect_ever(&[r#""from": "bob@localhost/slix", "type": "available""#])
        .await;
    bob.command(r#"{"cmd": "message", "to": "alice@localhost", "body": "hello again"}"#)
        .await;
    alice
        .expect_all(&["received", r#""body": "hello again""#])
        .await;
    alice
        .command(r#"{"cmd": "message", "to": "bob@localhost", "body": "welcome back"}"#)
        .await;
    bob.expect_all(&["received", r#""body": "welcome back""#])
        .await;
    assert!(barrier(&mut alice).await.contains("\"items\": []"));
    assert!(alice.quit().await);
    assert!(bob.quit().await);
}

#[tokio::test]
async fn raw_iqs_and_the_blocked_error_are_exact() {
    let server = TestServer::start();
    server.wait_started();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let cert = server.cert_path();
    let mut alice = Peer::login(server.c2s, &cert, "alice", "wonderland", "desk").await;
    let mut bob = Peer::login(server.c2s, &cert, "bob", "builder", "phone").await;

    alice
        .send("<iq type='get' id='l1'><blocklist xmlns='urn:xmpp:blocking'/></iq>")
        .await;
    assert_eq!(
        alice.c.read_stanza().await,
        "<iq type=\"result\" id=\"l1\" to=\"alice@localhost/desk\">\
         <blocklist xmlns=\"urn:xmpp:blocking\"/></iq>"
    );
    // §3.3: a block with no item is bad-request; an item that is no JID, jid-malformed;
    // neither changes the list.
    alice
        .send("<iq type='set' id='b0'><block xmlns='urn:xmpp:blocking'/></iq>")
        .await;
    assert_eq!(
        alice.c.read_stanza().await,
        "<iq type=\"error\" id=\"b0\" to=\"alice@localhost/desk\">\
         <error type=\"modify\"><bad-request xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>\
         </error></iq>"
    );
    alice
        .send(
            "<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'>\
             <item jid='carol@localhost'/><item jid='@@'/></block></iq>",
        )
        .await;
    assert_eq!(
        alice.c.read_stanza().await,
        "<iq type=\"error\" id=\"b1\" to=\"alice@localhost/desk\">\
         <error type=\"modify\"><jid-malformed xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>\
         </error></iq>"
    );
    // The JID is kept in its normal form.
    alice
        .send(
            "<iq type='set' id='b2'><block xmlns='urn:xmpp:blocking'>\
             <item jid='Bob@LOCALHOST'/></block></iq>",
        )
        .await;
    let answers = [alice.c.read_stanza().await, alice.c.read_stanza().await];
    assert!(
        answers.contains(&"<iq type=\"result\" id=\"b2\" to=\"alice@localhost/desk\"/>".to_owned()),
        "{answers:?}"
    );
    alice
        .send("<iq type='get' id='l2'><blocklist xmlns='urn:xmpp:blocking'/></iq>")
        .await;
    assert_eq!(
        alice.c.read_stanza_containing("id=\"l2\"").await,
        "<iq type=\"result\" id=\"l2\" to=\"alice@localhost/desk\">\
         <blocklist xmlns=\"urn:xmpp:blocking\"><item jid=\"bob@localhost\"/></blocklist></iq>"
    );

    // §3.3: the user's message to a blocked contact comes back with not-acceptable and the
    // application condition, after the defined condition (RFC 6120 §8.3.2).
    alice
        .send("<message to='bob@localhost' id='m1' type='chat'><body>hi</body></message>")
        .await;
    assert_eq!(
        alice.c.read_stanza_containing("id=\"m1\"").await,
        "<message type=\"error\" id=\"m1\" to=\"alice@localhost/desk\" from=\"bob@localhost\">\
         <error type=\"modify\"><not-acceptable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>\
         <blocked xmlns=\"urn:xmpp:blocking:errors\"/></error></message>"
    );
    // An IQ to the blocked contact's full JID too; the contact's IQ to the user gets
    // service-unavailable, as if nobody were there.
    alice
        .send("<iq to='bob@localhost/phone' type='get' id='q1'><query xmlns='jabber:iq:version'/></iq>")
        .await;
    assert_eq!(
        alice.c.read_stanza_containing("id=\"q1\"").await,
        "<iq type=\"error\" id=\"q1\" to=\"alice@localhost/desk\" from=\"bob@localhost/phone\">\
         <error type=\"modify\"><not-acceptable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>\
         <blocked xmlns=\"urn:xmpp:blocking:errors\"/></error></iq>"
    );
    bob.send(
        "<iq to='alice@localhost/desk' type='get' id='q2'><query xmlns='jabber:iq:version'/></iq>",
    )
    .await;
    assert_eq!(
        bob.c.read_stanza_containing("id=\"q2\"").await,
        "<iq type=\"error\" id=\"q2\" to=\"bob@localhost/phone\" from=\"alice@localhost/desk\">\
         <error type=\"cancel\"><service-unavailable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>\
         </error></iq>"
    );
    // §3.5 covers what the server answers on an account's behalf too: the contact's vCard
    // request to the user's bare JID finds nobody, the user's to the contact is refused.
    bob.send("<iq to='alice@localhost' type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>")
        .await;
    assert_eq!(
        bob.c.read_stanza_containing("id=\"v1\"").await,
        "<iq type=\"error\" id=\"v1\" to=\"bob@localhost/phone\" from=\"alice@localhost\">\
         <error type=\"cancel\"><service-unavailable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>\
         </error></iq>"
    );
    alice
        .send("<iq to='bob@localhost' type='get' id='v2'><vCard xmlns='vcard-temp'/></iq>")
        .await;
    assert_eq!(
        alice.c.read_stanza_containing("id=\"v2\"").await,
        "<iq type=\"error\" id=\"v2\" to=\"alice@localhost/desk\" from=\"bob@localhost\">\
         <error type=\"modify\"><not-acceptable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>\
         <blocked xmlns=\"urn:xmpp:blocking:errors\"/></error></iq>"
    );
    // Neither the message nor the IQ reached Bob or Alice.
    let to_bob = bob.sync().await;
    assert!(
        to_bob
            .iter()
            .all(|s| !s.contains("id=\"m1\"") && !s.contains("id=\"q1\"")),
        "{to_bob:?}"
    );
    let to_alice = alice.sync().await;
    assert!(
        to_alice.iter().all(|s| !s.contains("id=\"q2\"")),
        "{to_alice:?}"
    );

    // §3.5: an empty unblock empties the list.
    let (result, _) = alice
        .iq("<iq type='set' id='{id}'><unblock xmlns='urn:xmpp:blocking'/></iq>")
        .await;
    assert!(result.contains("type=\"result\""), "{result}");
    let (list, _) = alice
        .iq("<iq type='get' id='{id}'><blocklist xmlns='urn:xmpp:blocking'/></iq>")
        .await;
    assert!(
        list.contains("<blocklist xmlns=\"urn:xmpp:blocking\"/>"),
        "{list}"
    );
    // Unblocked, the same vCard requests are answered.
    let (vcard, _) = bob
        .iq("<iq to='alice@localhost' type='get' id='{id}'><vCard xmlns='vcard-temp'/></iq>")
        .await;
    assert!(vcard.contains("type=\"result\""), "{vcard}");
    let (vcard, _) = alice
        .iq("<iq to='bob@localhost' type='get' id='{id}'><vCard xmlns='vcard-temp'/></iq>")
        .await;
    assert!(vcard.contains("type=\"result\""), "{vcard}");
}

#[tokio::test]
async fn a_blocked_senders_message_is_not_kept_offline() {
    let server = TestServer::start();
    server.wait_started();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let cert = server.cert_path();
    let mut alice = Peer::login(server.c2s, &cert, "alice", "wonderland", "desk").await;
    let (result, _) = alice
        .iq("<iq type='set' id='{id}'><block xmlns='urn:xmpp:blocking'><item jid='localhost/x'/><item jid='bob@localhost'/></block></iq>")
        .await;
    assert!(result.contains("type=\"result\""), "{result}");
    alice.send("</stream:stream>").await;
    assert!(server.wait_log("session ended jid=alice@localhost/desk"));

    // Alice is offline: Bob's message is refused from the stored list, not kept.
    let mut bob = Peer::login(server.c2s, &cert, "bob", "builder", "phone").await;
    bob.send("<message to='alice@localhost' id='off1' type='chat'><body>later</body></message>")
        .await;
    let bounce = bob.c.read_stanza_containing("id=\"off1\"").await;
    assert!(
        bounce.contains("type=\"error\"") && bounce.contains("<service-unavailable"),
        "{bounce}"
    );
    let mut alice = Peer::login(server.c2s, &cert, "alice", "wonderland", "desk").await;
    let backlog = alice.sync().await;
    assert!(backlog.iter().all(|s| !s.contains("later")), "{backlog:?}");
}
