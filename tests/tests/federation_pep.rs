//! XEP-0163 personal eventing across servers: two Jabberwock instances, `a.test` and
//! `b.test` (`s2s::federated_pair`), with slixmpp's own PEP plugins on both sides
//! (tests/clients/slix_pep.py: xep_0163 with xep_0115's caps, xep_0172 nicknames). a.test
//! keeps the available resources b.test's presence tells it of, asks their clients what
//! their caps mean (once per `ver`), and sends notifications and last items to those whose
//! caps say `NODE+notify`, through federation. Each test has a loopback network of its own.
//!
//! Ordering: a server handles the stanzas one stream brings in order, and a session writes
//! its inbox in order, so a chat message that crossed after a stanza was sent on the same
//! path arrives after it: what has not arrived by then never will.

use jabberwock_tests::s2s::federated_pair;
use jabberwock_tests::slix::{befriend, pep_event, pep_online, settle, SlixIm};
use jabberwock_tests::TestServer;

const SCRIPT: &str = "slix_pep.py";
const NICK: &str = "http://jabber.org/protocol/nick";
const METADATA: &str = "urn:xmpp:avatar:metadata";

/// `jid` (password `pw-USER`) available on `server`, its caps saying it wants
/// notifications of exactly `nodes`.
async fn online_wanting(server: &TestServer, jid: &str, nodes: &[&str]) -> SlixIm {
    pep_online(server, SCRIPT, jid, nodes).await
}

/// a.test (alice) and b.test (bob, carol, dave) with their accounts.
fn servers(net: u8) -> (TestServer, TestServer) {
    let (a, b) = federated_pair(net);
    a.add_user("alice@a.test", "pw-alice");
    for user in ["bob", "carol", "dave"] {
        b.add_user(&format!("{user}@b.test"), &format!("pw-{user}"));
    }
    (a, b)
}

/// `contact`'s client is asked by `owner`'s server what its caps mean (on behalf of
/// `owner`), and anything it sends `owner` afterwards (its answer first) has been handled
/// by then.
async fn caps_asked_across(contact: &mut SlixIm, owner: &mut SlixIm, owner_jid: &str) {
    let bare = owner_jid.split('/').next().unwrap_or(owner_jid);
    contact
        .expect_ever(&[
            "\"event\": \"peer_caps_query\"",
            &format!("\"from\": \"{bare}\""),
        ])
        .await;
    settle(contact, owner, owner_jid, "caps answered").await;
}

#[tokio::test]
async fn notifications_reach_remote_contacts_that_want_them_and_nobody_else() {
    let (a, b) = servers(86);
    let mut alice = online_wanting(&a, "alice@a.test/phone", &[NICK, METADATA]).await;
    // Each client on b.test announces caps a.test has not seen: a.test asks each of them.
    let mut bob = online_wanting(&b, "bob@b.test/pc", &[NICK]).await;
    let mut carol = online_wanting(&b, "carol@b.test/pc", &["urn:example:other"]).await;
    let mut dave = online_wanting(&b, "dave@b.test/pc", &[NICK, "urn:x"]).await;
    befriend(&mut bob, "bob@b.test/pc", &mut alice, "alice@a.test/phone").await;
    caps_asked_across(&mut bob, &mut alice, "alice@a.test/phone").await;
    befriend(
        &mut carol,
        "carol@b.test/pc",
        &mut alice,
        "alice@a.test/phone",
    )
    .await;
    caps_asked_across(&mut carol, &mut alice, "alice@a.test/phone").await;

    alice
        .command(r#"{"cmd": "nick", "nick": "Alice Liddell"}"#)
        .await;
    // XEP-0163 §4: bob, subscribed both ways and wanting nicknames, hears of it across.
    let got = pep_event(&mut bob, "publish", "alice@a.test", NICK).await;
    assert!(got.contains("\"text\": \"Alice Liddell\""), "{got}");
    assert!(got.contains("\"type\": \"headline\""), "{got}");
    assert!(got.contains("\"delayed\": false"), "{got}");
    // Carol is subscribed but wants no nicknames (no NICK+notify); dave wants them but is no contact.
    settle(&mut alice, &mut carol, "carol@b.test/pc", "after the nick").await;
    settle(&mut alice, &mut dave, "dave@b.test/pc", "after the nick").await;
    assert!(!carol.seen(&["\"event\": \"pep\""]), "{:?}", carol.events);
    assert!(!dave.seen(&["\"event\": \"pep\""]), "{:?}", dave.events);
    assert!(!dave.seen(&["peer_caps_query"]), "{:?}", dave.events);

    // Reading items over federation keeps its access checks (presence access).
    bob.command(&format!(
        r#"{{"cmd": "items", "to": "alice@a.test", "node": "{NICK}"}}"#
    ))
    .await;
    let items = bob.latest("items");
    assert!(items.contains("\"texts\": [\"Alice Liddell\"]"), "{items}");
    dave.command(&format!(
        r#"{{"cmd": "items", "to": "alice@a.test", "node": "{NICK}"}}"#
    ))
    .await;
    let refused = dave
        .expect_ever(&["\"event\": \"iq_error\"", "\"cmd\": \"items\""])
        .await;
    assert!(
        refused.contains("\"pubsub\": \"presence-subscription-required\""),
        "{refused}"
    );

    // XEP-0163 §4.3.4: bob's next resource gets the last item, stamped, once its available
    // presence crosses; its caps are a `ver` a.test knows now, so nobody asks it.
    assert!(bob.quit().await);
    let mut bob = online_wanting(&b, "bob@b.test/laptop", &[NICK]).await;
    let last = pep_event(&mut bob, "publish", "alice@a.test", NICK).await;
    assert!(last.contains("\"text\": \"Alice Liddell\""), "{last}");
    assert!(last.contains("\"delayed\": true"), "{last}");
    assert!(!bob.seen(&["peer_caps_query"]), "{:?}", bob.events);
    // A resource of bob's that wants other nodes gets nothing.
    let mut quiet = online_wanting(&b, "bob@b.test/quiet", &[METADATA]).await;
    caps_asked_across(&mut quiet, &mut alice, "alice@a.test/phone").await;
    settle(&mut alice, &mut quiet, "bob@b.test/quiet", "hello quiet").await;
    assert!(!quiet.seen(&["\"event\": \"pep\""]), "{:?}", quiet.events);

    for client in [alice, bob, carol, dave, quiet] {
        assert!(client.quit().await);
    }
}
