//! Every module across servers as it is locally: two Jabberwock instances, `a.test` and
//! `b.test` (`s2s::federated_pair`), and users of each. Offline storage (XEP-0160) keeps a
//! remote user's message with its sender and a XEP-0203 delay; carbons (XEP-0280) copy what
//! crosses, and a carbon forged by a remote sender is neither copied nor made one; vCards
//! (XEP-0054) are read across, with the XEP-0153 avatar hash in presence; blocking
//! (XEP-0191) a remote contact or its whole domain stops everything both ways, presence
//! included, until unblocked; the MUC service answers a remote user's disco as a local
//! one's (XEP-0045 §6). Each test has a loopback network of its own (127.0.7x.0).
//!
//! Ordering: a server handles the stanzas one stream brings in order, to the end, and a
//! session writes its inbox in order, so a ping answered by the other server (then one by
//! the client's own) comes after whatever the stanzas sent before it caused: what has not
//! arrived by then never will.

use jabberwock_tests::muc::{instant_room_at, DISCO_INFO, DISCO_ITEMS};
use jabberwock_tests::s2s::{
    alice_and_bob, bounces, error_for, federated_pair, message_crosses, pinned, subscribe_both_ways,
};
use jabberwock_tests::slix::{avatar_reaches, SlixIm};
use jabberwock_tests::RawClient;

/// XEP-0160 across servers: Bob's chat and normal messages for Alice, who is offline, are
/// kept by a.test and delivered at her next login, from Bob's full JID and stamped with a
/// XEP-0203 delay from a.test; his headline and his error message are let go without a
/// bounce (RFC 6121 §8.5.2.2.1, as for a local sender).
#[tokio::test]
async fn a_remote_users_messages_wait_offline_with_their_sender_and_a_delay() {
    let (a, b) = federated_pair(71);
    a.add_user("alice@a.test", "alicepw");
    b.add_user("bob@b.test", "bobpw");
    let (mut bob, _) =
        RawClient::login_standard_at(b.c2s, &b.cert_path(), "b.test", "bob", "bobpw", "desk").await;
    for kind in ["chat", "normal", "headline"] {
        bob.send(format!(
            "<message to='alice@a.test' type='{kind}' id='m-{kind}'><body>{kind} while away</body></message>"
        ))
        .await;
    }
    bob.send(
        "<message to='alice@a.test' type='error' id='m-error'><body>error while away</body>\
         <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
    )
    .await;
    // a.test answers this ping after it stored or let go every message above.
    let before = bob.until_pong_from("a.test", "p1").await;
    assert!(!before.contains("<message"), "a message bounced: {before}");

    let (mut alice, _) =
        RawClient::login_standard_at(a.c2s, &a.cert_path(), "a.test", "alice", "alicepw", "home")
            .await;
    for kind in ["chat", "normal"] {
        let got = alice.read_stanza_containing("<message").await;
        assert!(got.contains(&format!("id=\"m-{kind}\"")), "{got}");
        assert!(got.contains(&format!("type=\"{kind}\"")), "{got}");
        assert!(got.contains("from=\"bob@b.test/desk\""), "{got}");
        assert!(
            got.contains("<delay xmlns=\"urn:xmpp:delay\" from=\"a.test\" stamp=\""),
            "{got}"
        );
    }
    let rest = alice.until_pong_from("a.test", "p2").await;
    assert!(!rest.contains("<message"), "{rest}");
}

/// XEP-0280 across servers: Alice has two slixmpp devices with carbons on. Bob's message to
/// one is copied to the other (§7), hers to Bob too (§8); `<private/>` ones are not (§9),
/// and b.test takes the `<private/>` out before Bob gets it. A `<received/>` or `<sent/>`
/// wrapper Bob sends her is routed as it is (a server can't make it a carbon: only her own
/// bare JID sends those, and b.test can only send from b.test): slixmpp's plugin ignores
/// it, as §11 asks of clients, and the server copies it to no other device.
#[tokio::test]
async fn carbons_copy_what_crosses_and_a_forged_carbon_stays_a_plain_message() {
    let (a, b) = federated_pair(72);
    a.add_user("alice@a.test", "alicepw");
    b.add_user("bob@b.test", "bobpw");
    let mut phone = SlixIm::available(&a, "slix_devices.py", "alice@a.test/phone", "alicepw").await;
    let mut laptop =
        SlixIm::available(&a, "slix_devices.py", "alice@a.test/laptop", "alicepw").await;
    phone.command(r#"{"cmd": "carbons_enable"}"#).await;
    laptop.command(r#"{"cmd": "carbons_enable"}"#).await;
    let (mut bob, _) =
        RawClient::login_standard_at(b.c2s, &b.cert_path(), "b.test", "bob", "bobpw", "desk").await;

    // §7: Bob writes to the phone; the laptop gets a received carbon from Alice's bare JID.
    bob_says(&mut bob, "hello phone", "", &mut phone).await;
    let carbon = laptop
        .expect_all(&["\"carbon_received\"", "hello phone"])
        .await;
    assert!(
        carbon.contains("\"from\": \"alice@a.test\"")
            && carbon.contains("\"forwarded_from\": \"bob@b.test/desk\"")
            && carbon.contains("\"forwarded_to\": \"alice@a.test/phone\""),
        "{carbon}"
    );
    // §8: the phone answers; the laptop gets a sent carbon, Bob the message.
    phone
        .command(r#"{"cmd": "message", "to": "bob@b.test/desk", "body": "hi bob"}"#)
        .await;
    bob.read_stanza_containing("hi bob").await;
    let carbon = laptop.expect_all(&["\"carbon_sent\"", "hi bob"]).await;
    assert!(
        carbon.contains("\"forwarded_from\": \"alice@a.test/phone\"")
            && carbon.contains("\"forwarded_to\": \"bob@b.test/desk\""),
        "{carbon}"
    );

    // §9: private messages are copied neither way; the next ones, after them on the same
    // paths, are.
    let private = "<private xmlns='urn:xmpp:carbons:2'/>";
    let secret = bob_says(&mut bob, "secret in", private, &mut phone).await;
    assert!(secret.contains("\"private\": false"), "{secret}");
    bob_says(&mut bob, "open in", "", &mut phone).await;
    laptop.expect_all(&["\"carbon_received\"", "open in"]).await;
    phone
        .command(r#"{"cmd": "private_message", "to": "bob@b.test/desk", "body": "secret out"}"#)
        .await;
    let got = bob.read_stanza_containing("secret out").await;
    assert!(!got.contains("urn:xmpp:carbons:2"), "{got}");
    phone
        .command(r#"{"cmd": "message", "to": "bob@b.test/desk", "body": "open out"}"#)
        .await;
    laptop.expect_all(&["\"carbon_sent\"", "open out"]).await;
    assert!(!laptop.seen(&["secret"]), "{:?}", laptop.events);

    // Forged carbons from Bob: routed unchanged to the phone, whose client sees they are
    // not from Alice; no copy of them reaches the laptop (a copy would come before that of
    // Bob's next message).
    for direction in ["received", "sent"] {
        let forged = format!(
            "<{direction} xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
             <message xmlns='jabber:client' from='alice@a.test/laptop' to='carol@c.test' type='chat'>\
             <body>forged {direction}</body></message></forwarded></{direction}>"
        );
        bob.send(format!(
            "<message to='alice@a.test/phone' type='chat'>{forged}</message>"
        ))
        .await;
        let ignored = phone
            .expect_all(&["\"carbon_ignored\"", &format!("forged {direction}")])
            .await;
        assert!(
            ignored.contains("\"from\": \"bob@b.test/desk\"")
                && ignored.contains(&format!("\"direction\": \"{direction}\"")),
            "{ignored}"
        );
    }
    bob_says(&mut bob, "after the forgeries", "", &mut phone).await;
    laptop
        .expect_all(&["\"carbon_received\"", "after the forgeries"])
        .await;
    for event in ["\"carbon_received\"", "\"carbon_sent\""] {
        assert!(!phone.seen(&[event, "forged"]), "{:?}", phone.events);
    }
    assert!(!laptop.seen(&["forged"]), "{:?}", laptop.events);
    assert!(phone.quit().await);
    assert!(laptop.quit().await);
}

/// Bob's chat message (with `extra` inside) to Alice's phone, and what the phone makes of it.
async fn bob_says(bob: &mut RawClient, body: &str, extra: &str, phone: &mut SlixIm) -> String {
    bob.send(format!(
        "<message to='alice@a.test/phone' type='chat'><body>{body}</body>{extra}</message>"
    ))
    .await;
    phone
        .expect_all(&["\"received\"", "bob@b.test/desk", body])
        .await
}

/// XEP-0054 across servers: Bob reads the vCard Alice published on a.test and Alice reads
/// Bob's from b.test, each answered by the contact's own server for the account (RFC 6120
/// §10.3.3); Alice's avatar hash (XEP-0153) reaches Bob in her presence, put there by her
/// client and, for a client that puts none, by a.test.
#[tokio::test]
async fn vcards_are_read_across_servers_and_the_avatar_hash_reaches_the_remote_contact() {
    let (a, b) = federated_pair(74);
    a.add_user("alice@a.test", "alicepw");
    b.add_user("bob@b.test", "bobpw");
    let mut alice = SlixIm::available(&a, "slix_features.py", "alice@a.test/slix", "alicepw").await;
    let mut bob = SlixIm::available(&b, "slix_features.py", "bob@b.test/slix", "bobpw").await;
    // Both clients approve and return subscriptions by themselves.
    bob.command(r#"{"cmd": "subscribe", "to": "alice@a.test"}"#)
        .await;
    bob.expect_ever(&["\"event\": \"presence\"", "\"from\": \"alice@a.test/slix\""])
        .await;

    alice
        .command(r#"{"cmd": "set_fn", "fn": "Alice Liddell"}"#)
        .await;
    bob.command(r#"{"cmd": "set_fn", "fn": "Bob the Builder"}"#)
        .await;
    bob.command(r#"{"cmd": "vcard", "to": "alice@a.test"}"#)
        .await;
    let vcard = bob.latest("vcard");
    assert!(vcard.contains("\"fn\": \"Alice Liddell\""), "{vcard}");
    alice
        .command(r#"{"cmd": "vcard", "to": "bob@b.test"}"#)
        .await;
    let vcard = alice.latest("vcard");
    assert!(vcard.contains("\"fn\": \"Bob the Builder\""), "{vcard}");
    assert!(!alice.seen(&["iq_error"]), "{:?}", alice.events);
    assert!(!bob.seen(&["iq_error"]), "{:?}", bob.events);

    let hash = avatar_reaches(&mut alice, "alice@a.test/slix", &mut bob).await;
    let vcard = bob.latest("vcard");
    assert!(vcard.contains("\"fn\": \"Alice Liddell\""), "{vcard}");
    let (_raw, _) =
        RawClient::login_standard_at(a.c2s, &a.cert_path(), "a.test", "alice", "alicepw", "raw")
            .await;
    bob.expect_all(&[
        "\"event\": \"presence\"",
        "\"from\": \"alice@a.test/raw\"",
        &format!("\"photo\": \"{hash}\""),
    ])
    .await;
    assert!(alice.quit().await);
    assert!(bob.quit().await);
}

/// XEP-0191's application-specific error (§3.3), as the server writes it.
const BLOCKED: &str = "<blocked xmlns=\"urn:xmpp:blocking:errors\"/>";

/// Everything Alice and Bob got up to now (see the module's note on ordering): each pings
/// the other's server, so what each sent earlier has been handled there, then its own, so
/// what that handling sent it has arrived. Returns (Alice's, Bob's).
async fn settled(alice: &mut RawClient, bob: &mut RawClient, id: &str) -> (String, String) {
    let mut alice_got = alice.until_pong_from("b.test", &format!("{id}-a1")).await;
    let mut bob_got = bob.until_pong_from("a.test", &format!("{id}-b1")).await;
    alice_got += &alice.until_pong_from("a.test", &format!("{id}-a2")).await;
    bob_got += &bob.until_pong_from("b.test", &format!("{id}-b2")).await;
    (alice_got, bob_got)
}

/// Alice's blocklist change (`command` is "block" or "unblock", `items` the `<item/>`s),
/// answered with a result.
async fn blocklist_change(alice: &mut RawClient, id: &str, command: &str, items: &str) {
    alice
        .send(format!(
            "<iq type='set' id='{id}'><{command} xmlns='urn:xmpp:blocking'>{items}</{command}></iq>"
        ))
        .await;
    let answer = alice.read_stanza_containing(&format!("id=\"{id}\"")).await;
    assert!(answer.contains("type=\"result\""), "{answer}");
}

/// With Alice blocking Bob (his JID or his domain), everything is stopped both ways
/// (XEP-0191 §3.3): his message and IQs get `service-unavailable`, hers get
/// `not-acceptable` with `<blocked/>`, and neither's presence reaches the other.
async fn stopped_both_ways(alice: &mut RawClient, bob: &mut RawClient, round: &str) {
    bounces(
        bob,
        "alice@a.test",
        &format!("{round}-m1"),
        "service-unavailable",
    )
    .await;
    for (to, payload) in [
        ("alice@a.test/home", "<ping xmlns='urn:xmpp:ping'/>"),
        ("alice@a.test", "<vCard xmlns='vcard-temp'/>"),
    ] {
        let id = format!("{round}-{to}");
        bob.send(format!("<iq type='get' to='{to}' id='{id}'>{payload}</iq>"))
            .await;
        error_for(bob, &id, to, "service-unavailable").await;
    }
    for (n, (kind, payload)) in [
        ("message type='chat'", "<body>psst</body>"),
        ("iq type='get'", "<ping xmlns='urn:xmpp:ping'/>"),
    ]
    .into_iter()
    .enumerate()
    {
        let name = kind.split(' ').next().unwrap_or(kind);
        let id = format!("{round}-out{n}");
        alice
            .send(format!(
                "<{kind} to='bob@b.test/desk' id='{id}'>{payload}</{name}>"
            ))
            .await;
        let error = error_for(alice, &id, "bob@b.test/desk", "not-acceptable").await;
        assert!(error.contains(BLOCKED), "{error}");
    }

    // Neither his presence nor his unsubscribe reaches Alice or her roster (which would
    // change, pushed to her, and leave her presence hidden from him after the unblock).
    bob.send(format!("<presence><status>{round} bob</status></presence>"))
        .await;
    bob.send("<presence to='alice@a.test' type='unsubscribe'/>")
        .await;
    alice
        .send(format!(
            "<presence><status>{round} alice</status></presence>"
        ))
        .await;
    let (alice_got, bob_got) = settled(alice, bob, round).await;
    assert!(!bob_got.contains("from=\"alice@a.test"), "{bob_got}");
    assert!(!bob_got.contains("psst"), "{bob_got}");
    assert!(!alice_got.contains("bob@b.test"), "{alice_got}");
}

/// XEP-0191 across servers: Alice and Bob share presence; Alice blocks Bob, and Bob sees
/// her go unavailable (§3.3); everything is stopped both ways; unblocking (§3.4) shows each
/// the other's current presence again and messages flow. Blocking Bob's whole domain does
/// the same, and unblocking everything (§3.5) undoes it.
#[tokio::test]
async fn blocking_a_remote_contact_or_its_domain_stops_everything_until_unblocked() {
    let (a, b) = federated_pair(73);
    let (a, b) = (pinned(a), pinned(b));
    let (mut alice, mut bob) = alice_and_bob(&a, &b).await;
    subscribe_both_ways(&mut alice, &mut bob).await;

    for (round, item) in [("jid", "bob@b.test"), ("domain", "b.test")] {
        blocklist_change(
            &mut alice,
            &format!("{round}-block"),
            "block",
            &format!("<item jid='{item}'/>"),
        )
        .await;
        let gone = bob
            .read_stanza_containing("from=\"alice@a.test/home\"")
            .await;
        assert!(gone.contains("type=\"unavailable\""), "{gone}");

        stopped_both_ways(&mut alice, &mut bob, round).await;

        // §3.4, §3.5: unblocked, each sees the other's latest presence at once.
        let items = if round == "jid" {
            format!("<item jid='{item}'/>")
        } else {
            String::new()
        };
        blocklist_change(&mut alice, &format!("{round}-unblock"), "unblock", &items).await;
        let back = bob
            .read_stanza_containing("from=\"alice@a.test/home\"")
            .await;
        assert!(
            !back.contains("type=") && back.contains(&format!("{round} alice")),
            "{back}"
        );
        let back = alice
            .read_stanza_containing("from=\"bob@b.test/desk\"")
            .await;
        assert!(
            !back.contains("type=") && back.contains(&format!("{round} bob")),
            "{back}"
        );
        message_crosses(
            &mut bob,
            &mut alice,
            "alice@a.test",
            &format!("{round} hi a"),
        )
        .await;
        message_crosses(&mut alice, &mut bob, "bob@b.test", &format!("{round} hi b")).await;
    }
}

/// The payload of an IQ answer as the client got it: from its first child on, so that the
/// same answer to two askers compares equal whatever its addresses and id.
fn answer_payload(iq: &str) -> String {
    assert!(iq.contains("type=\"result\""), "{iq}");
    let start = iq.find("><").map_or(iq.len(), |i| i + 1);
    iq[start..].to_owned()
}

/// XEP-0045 §6.1–§6.4 from another server: Bob (b.test) asks a.test's MUC service for its
/// info and its rooms, a room for its info, and pings the service; each answer is the one
/// Alice, a local user, gets.
#[tokio::test]
async fn the_muc_service_answers_a_remote_users_disco_as_a_local_users() {
    let (a, b) = federated_pair(75);
    let (a, b) = (pinned(a), pinned(b));
    let (mut alice, mut bob) = alice_and_bob(&a, &b).await;
    let room = "lounge@conference.a.test";
    instant_room_at(&mut alice, room, "alice").await;
    let ping = "<ping xmlns='urn:xmpp:ping'/>";
    for (n, (to, payload)) in [
        ("conference.a.test", DISCO_INFO),
        ("conference.a.test", DISCO_ITEMS),
        (room, DISCO_INFO),
        ("conference.a.test", ping),
    ]
    .into_iter()
    .enumerate()
    {
        let mut answers = Vec::new();
        for client in [&mut alice, &mut bob] {
            let id = format!("q{n}");
            client
                .send(format!("<iq type='get' to='{to}' id='{id}'>{payload}</iq>"))
                .await;
            let answer = client.read_stanza_containing(&format!("id=\"{id}\"")).await;
            assert!(answer.contains(&format!("from=\"{to}\"")), "{answer}");
            answers.push(answer_payload(&answer));
        }
        assert_eq!(answers[0], answers[1], "{to} {payload}");
    }
    // The service lists the room, and says what it is, to both.
    let items = answers_of(&mut bob, "conference.a.test", DISCO_ITEMS).await;
    assert!(items.contains(&format!("jid=\"{room}\"")), "{items}");
    let info = answers_of(&mut bob, "conference.a.test", DISCO_INFO).await;
    assert!(
        info.contains("category=\"conference\"")
            && info.contains("var=\"http://jabber.org/protocol/muc\""),
        "{info}"
    );
}

/// One more `payload` IQ from `client` to `to`, its answer.
async fn answers_of(client: &mut RawClient, to: &str, payload: &str) -> String {
    client
        .send(format!(
            "<iq type='get' to='{to}' id='again'>{payload}</iq>"
        ))
        .await;
    client.read_stanza_containing("id=\"again\"").await
}
