//! XEP-0163 personal eventing on every account, driven through slixmpp's own plugins
//! (tests/clients/slix_pep.py: xep_0060, xep_0163 with xep_0115's caps, xep_0084 avatars,
//! xep_0172 nicknames, xep_0402 bookmarks): notifications only to the resources that want
//! them and may read them, last items when a resource comes online or a subscription
//! starts, publish options as preconditions, access models, limits, and what survives a
//! restart.

use jabberwock_tests::slix::{
    assert_bookmarks_node_is_private, avatar_hash, befriend, interests, pep_event as event,
    read_items, settle, SlixIm, PNG_B64,
};
use jabberwock_tests::{TestConfig, TestServer};

const SCRIPT: &str = "slix_pep.py";
const NICK: &str = "http://jabber.org/protocol/nick";
const METADATA: &str = "urn:xmpp:avatar:metadata";
const BOOKMARKS: &str = "urn:xmpp:bookmarks:1";

/// `jid` logged in with slix_pep.py, not yet available.
async fn login(server: &TestServer, jid: &str) -> SlixIm {
    let password = password(jid);
    let mut client = SlixIm::spawn_script(
        SCRIPT,
        jid,
        &password,
        server.c2s.port(),
        &server.cert_path(),
    );
    client.expect_all(&["session_start"]).await;
    client
}

fn password(jid: &str) -> String {
    format!("pw-{}", jid.split('@').next().unwrap_or(jid))
}

/// `jid` available, wanting what xep_0084 and xep_0172 want (avatar metadata, nicknames).
async fn online(server: &TestServer, jid: &str) -> SlixIm {
    let mut client = login(server, jid).await;
    client.command(r#"{"cmd": "available"}"#).await;
    client
}

/// `jid` available, its caps saying it wants notifications of exactly `nodes`.
async fn online_wanting(server: &TestServer, jid: &str, nodes: &[&str]) -> SlixIm {
    let mut client = login(server, jid).await;
    interests(&mut client, nodes).await;
    client.command(r#"{"cmd": "available"}"#).await;
    client
}

/// Each client quits, having reported success.
async fn quit_all<const N: usize>(clients: [SlixIm; N]) {
    for client in clients {
        assert!(client.quit().await);
    }
}

/// A server with these accounts (`USER@localhost`, password `pw-USER`).
fn server_with(config: TestConfig, users: &[&str]) -> TestServer {
    let server = TestServer::start_with(config);
    for user in users {
        server.add_user(&format!("{user}@localhost"), &format!("pw-{user}"));
    }
    server
}

/// The IQ error `client` reported for its last command `cmd`.
fn iq_error(client: &SlixIm, cmd: &str) -> String {
    client
        .events
        .iter()
        .rev()
        .find(|l| {
            l.contains("\"event\": \"iq_error\"") && l.contains(&format!("\"cmd\": \"{cmd}\""))
        })
        .cloned()
        .unwrap_or_else(|| panic!("no iq_error for {cmd}: {:?}", client.events))
}

/// The last command `client` finished (its last `ok`) reported no IQ error.
fn no_error(client: &SlixIm) {
    let oks: Vec<usize> = client
        .events
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("\"event\": \"ok\""))
        .map(|(i, _)| i)
        .collect();
    let from = oks.len().checked_sub(2).map_or(0, |i| oks[i]);
    let to = oks.last().copied().unwrap_or(client.events.len());
    assert!(
        !client.events[from..to]
            .iter()
            .any(|l| l.contains("iq_error")),
        "{:?}",
        client.events
    );
}

#[tokio::test]
async fn notifications_reach_the_subscribed_resources_that_want_them_and_nobody_else() {
    let server = server_with(TestConfig::default(), &["alice", "bob", "carol", "dave"]);
    let mut alice = online(&server, "alice@localhost/phone").await;
    let mut bob = online(&server, "bob@localhost/pc").await;
    // Subscribed, but its client wants no notifications (no +notify in its caps).
    let mut carol = online_wanting(&server, "carol@localhost/pc", &[]).await;
    // Wants them, but is not subscribed to alice's presence.
    let mut dave = online(&server, "dave@localhost/pc").await;
    befriend(
        &mut bob,
        "bob@localhost/pc",
        &mut alice,
        "alice@localhost/phone",
    )
    .await;
    befriend(
        &mut carol,
        "carol@localhost/pc",
        &mut alice,
        "alice@localhost/phone",
    )
    .await;

    alice
        .command(r#"{"cmd": "nick", "nick": "Alice Liddell"}"#)
        .await;
    no_error(&alice);
    let got = event(&mut bob, "publish", "alice@localhost", NICK).await;
    assert!(got.contains("\"text\": \"Alice Liddell\""), "{got}");
    assert!(got.contains("\"type\": \"headline\""), "{got}");
    assert!(got.contains("\"delayed\": false"), "{got}");
    // XEP-0163 §4: the owner's own resources hear of it too.
    event(&mut alice, "publish", "alice@localhost", NICK).await;
    settle(
        &mut alice,
        &mut carol,
        "carol@localhost/pc",
        "after the nick",
    )
    .await;
    settle(&mut alice, &mut dave, "dave@localhost/pc", "after the nick").await;
    assert!(!carol.seen(&["\"event\": \"pep\""]), "{:?}", carol.events);
    assert!(!dave.seen(&["\"event\": \"pep\""]), "{:?}", dave.events);

    // XEP-0084: the data, then the metadata, which is what contacts are told of.
    alice
        .command(&format!(r#"{{"cmd": "avatar", "png_b64": "{PNG_B64}"}}"#))
        .await;
    no_error(&alice);
    let hash = avatar_hash();
    let got = event(&mut bob, "publish", "alice@localhost", METADATA).await;
    assert!(got.contains(&format!("\"ids\": [\"{hash}\"]")), "{got}");
    bob.command(&format!(
        r#"{{"cmd": "avatar_data", "to": "alice@localhost", "id": "{hash}"}}"#
    ))
    .await;
    let data = bob.latest("avatar_data");
    assert!(data.contains(&format!("\"sha1\": \"{hash}\"")), "{data}");

    // Presence access (the default): dave, not subscribed, reads nothing.
    dave.command(&format!(
        r#"{{"cmd": "items", "to": "alice@localhost", "node": "{NICK}"}}"#
    ))
    .await;
    let err = iq_error(&dave, "items");
    assert!(err.contains("\"condition\": \"not-authorized\""), "{err}");
    assert!(
        err.contains("\"pubsub\": \"presence-subscription-required\""),
        "{err}"
    );
    assert!(!dave.seen(&["\"event\": \"items\""]), "{:?}", dave.events);
    let items = read_items(&mut bob, "alice@localhost", NICK).await;
    assert!(items.contains("\"texts\": [\"Alice Liddell\"]"), "{items}");

    // XEP-0163 §6: the account is a PEP service, and lists its nodes to a contact.
    alice
        .command(r#"{"cmd": "disco_info", "to": "alice@localhost"}"#)
        .await;
    let info = alice.latest("disco_info");
    assert!(info.contains("[\"pubsub\", \"pep\", null, null]"), "{info}");
    assert!(
        info.contains("\"http://jabber.org/protocol/pubsub#publish-options\""),
        "{info}"
    );
    bob.command(r#"{"cmd": "disco_items", "to": "alice@localhost"}"#)
        .await;
    let nodes = bob.latest("disco_items");
    assert!(
        nodes.contains(&format!(
            "\"nodes\": [\"{NICK}\", \"urn:xmpp:avatar:data\", \"{METADATA}\"]"
        )),
        "{nodes}"
    );

    // Interests follow the caps: bob stops wanting nicknames, and hears of them no more.
    bob.command(&format!(
        r#"{{"cmd": "interests", "nodes": ["{METADATA}"]}}"#
    ))
    .await;
    bob.command(r#"{"cmd": "available"}"#).await;
    // A new `ver`: the server asks bob's client what it means (possibly before the
    // presence it reflects back, so before the command's `ok`); an IQ of bob's after the
    // answer finds it known.
    bob.expect_ever(&["\"event\": \"caps_query\""]).await;
    bob.command(r#"{"cmd": "disco_info", "to": "alice@localhost"}"#)
        .await;
    alice.command(r#"{"cmd": "nick", "nick": "Alice"}"#).await;
    event(&mut alice, "publish", "alice@localhost", NICK).await;
    settle(
        &mut alice,
        &mut bob,
        "bob@localhost/pc",
        "after the second nick",
    )
    .await;
    assert!(
        !bob.seen(&["\"event\": \"pep\"", "\"text\": \"Alice\","]),
        "{:?}",
        bob.events
    );

    // XEP-0163 §4.3.3: a subscriber the owner blocked (XEP-0191) hears nothing more.
    alice
        .command(r#"{"cmd": "block", "jid": "bob@localhost"}"#)
        .await;
    alice
        .command(&format!(
            r#"{{"cmd": "publish", "node": "{METADATA}", "id": "after-the-block", "payload": "<metadata xmlns='{METADATA}'/>"}}"#
        ))
        .await;
    no_error(&alice);
    alice
        .expect_ever(&["\"event\": \"pep\"", "\"ids\": [\"after-the-block\"]"])
        .await;
    settle(&mut carol, &mut bob, "bob@localhost/pc", "after the block").await;
    assert!(!bob.seen(&["after-the-block"]), "{:?}", bob.events);
    quit_all([alice, bob, carol, dave]).await;
}

#[tokio::test]
async fn bookmarks_stay_private_and_publish_options_are_preconditions() {
    let server = server_with(TestConfig::default(), &["alice", "bob"]);
    let mut phone = online_wanting(&server, "alice@localhost/phone", &[BOOKMARKS]).await;
    let mut laptop = online_wanting(&server, "alice@localhost/laptop", &[BOOKMARKS]).await;
    let mut bob = online_wanting(&server, "bob@localhost/pc", &[BOOKMARKS]).await;
    befriend(
        &mut bob,
        "bob@localhost/pc",
        &mut phone,
        "alice@localhost/phone",
    )
    .await;

    // XEP-0402 §3: the first publish creates the node with its options...
    phone
        .command(r#"{"cmd": "bookmark", "room": "tea@conference.localhost", "name": "Tea"}"#)
        .await;
    no_error(&phone);
    let got = event(&mut laptop, "publish", "alice@localhost", BOOKMARKS).await;
    assert!(
        got.contains("\"ids\": [\"tea@conference.localhost\"]"),
        "{got}"
    );
    assert!(got.contains("\"text\": \"Tea\""), "{got}");
    // ...which every later one finds met (XEP-0060 §7.1.5).
    phone
        .command(r#"{"cmd": "bookmark", "room": "den@conference.localhost", "name": "Den"}"#)
        .await;
    no_error(&phone);
    assert_bookmarks_node_is_private(&mut phone).await;
    // Options the node does not meet are a precondition not met, and publish nothing.
    phone
        .command(&format!(
            r#"{{"cmd": "publish", "node": "{BOOKMARKS}", "id": "evil@conference.localhost", "payload": "<conference xmlns='{BOOKMARKS}' name='Evil'/>", "options": {{"pubsub#access_model": "open"}}}}"#
        ))
        .await;
    let err = iq_error(&phone, "publish");
    assert!(err.contains("\"condition\": \"conflict\""), "{err}");
    assert!(
        err.contains("\"pubsub\": \"precondition-not-met\""),
        "{err}"
    );
    let items = read_items(&mut phone, "alice@localhost", BOOKMARKS).await;
    assert!(
        items.contains("\"ids\": [\"tea@conference.localhost\", \"den@conference.localhost\"]"),
        "{items}"
    );

    // Whitelist: bob, though subscribed to alice's presence, neither reads nor hears.
    bob.command(&format!(
        r#"{{"cmd": "items", "to": "alice@localhost", "node": "{BOOKMARKS}"}}"#
    ))
    .await;
    let err = iq_error(&bob, "items");
    assert!(err.contains("\"condition\": \"not-allowed\""), "{err}");
    assert!(err.contains("\"pubsub\": \"closed-node\""), "{err}");
    settle(
        &mut phone,
        &mut bob,
        "bob@localhost/pc",
        "after the bookmarks",
    )
    .await;
    assert!(!bob.seen(&["\"event\": \"pep\""]), "{:?}", bob.events);
    bob.command(r#"{"cmd": "disco_items", "to": "alice@localhost"}"#)
        .await;
    let nodes = bob.latest("disco_items");
    assert!(!nodes.contains(BOOKMARKS), "{nodes}");

    // XEP-0402 §3.5: a bookmark removed with notify reaches the other resources.
    phone
        .command(&format!(
            r#"{{"cmd": "retract", "node": "{BOOKMARKS}", "id": "tea@conference.localhost", "notify": true}}"#
        ))
        .await;
    no_error(&phone);
    let got = event(&mut laptop, "retract", "alice@localhost", BOOKMARKS).await;
    assert!(
        got.contains("\"ids\": [\"tea@conference.localhost\"]"),
        "{got}"
    );
    // send_last_published_item never: a new resource is not sent them, but reads them.
    let mut tablet = online_wanting(&server, "alice@localhost/tablet", &[BOOKMARKS]).await;
    let items = read_items(&mut tablet, "alice@localhost", BOOKMARKS).await;
    assert!(
        items.contains("\"ids\": [\"den@conference.localhost\"]"),
        "{items}"
    );
    assert!(!tablet.seen(&["\"event\": \"pep\""]), "{:?}", tablet.events);
    quit_all([phone, laptop, bob, tablet]).await;
}

#[tokio::test]
async fn last_items_reach_new_resources_and_new_subscribers() {
    let server = server_with(TestConfig::default(), &["alice", "bob", "carol"]);
    let mut alice = online(&server, "alice@localhost/phone").await;
    // The first client of this software: the server asked it what its caps mean.
    alice.expect_ever(&["\"event\": \"caps_query\""]).await;
    let mut bob = online(&server, "bob@localhost/pc").await;
    befriend(
        &mut bob,
        "bob@localhost/pc",
        &mut alice,
        "alice@localhost/phone",
    )
    .await;
    alice.command(r#"{"cmd": "nick", "nick": "Alice"}"#).await;
    let live = event(&mut bob, "publish", "alice@localhost", NICK).await;
    assert!(live.contains("\"delayed\": false"), "{live}");
    assert!(bob.quit().await);

    // XEP-0163 §4.3.4: bob's next resource is sent the last item, stamped, as soon as it
    // is available; its caps are those of a client already known, so nobody asks it.
    let mut bob = online(&server, "bob@localhost/laptop").await;
    let last = event(&mut bob, "publish", "alice@localhost", NICK).await;
    assert!(last.contains("\"text\": \"Alice\""), "{last}");
    assert!(last.contains("\"delayed\": true"), "{last}");
    assert!(!bob.seen(&["caps_query"]), "{:?}", bob.events);
    // The owner's own new resource too.
    let mut tablet = online(&server, "alice@localhost/tablet").await;
    let own = event(&mut tablet, "publish", "alice@localhost", NICK).await;
    assert!(own.contains("\"delayed\": true"), "{own}");
    // A resource that wants no nicknames gets none.
    let mut quiet = online_wanting(&server, "bob@localhost/quiet", &[METADATA]).await;
    settle(&mut alice, &mut quiet, "bob@localhost/quiet", "hello quiet").await;
    assert!(!quiet.seen(&["\"event\": \"pep\""]), "{:?}", quiet.events);

    // A new subscriber, already online, is sent it when its subscription starts, once.
    let mut carol = online(&server, "carol@localhost/pc").await;
    befriend(
        &mut carol,
        "carol@localhost/pc",
        &mut alice,
        "alice@localhost/phone",
    )
    .await;
    let got = event(&mut carol, "publish", "alice@localhost", NICK).await;
    assert!(got.contains("\"text\": \"Alice\""), "{got}");
    settle(&mut alice, &mut carol, "carol@localhost/pc", "welcome").await;
    let copies = carol
        .events
        .iter()
        .filter(|l| l.contains("\"event\": \"pep\"") && l.contains(NICK))
        .count();
    assert_eq!(copies, 1, "{:?}", carol.events);
    quit_all([alice, bob, tablet, quiet, carol]).await;
}

#[tokio::test]
async fn limits_hold_under_a_stream_of_publishes_and_items_survive_a_restart() {
    let config = TestConfig::default()
        .section("modules.pep", "max_nodes_per_account = 3")
        .section("modules.pep", "max_items_per_node = 5")
        .section("modules.pep", "max_item_bytes = 300");
    let mut server = server_with(config, &["alice"]);
    let mut alice = online(&server, "alice@localhost/phone").await;
    let publish = |node: &str, id: &str, text: &str, options: &str| {
        format!(
            r#"{{"cmd": "publish", "node": "{node}", "id": "{id}", "payload": "<entry xmlns='urn:example:log'>{text}</entry>", "options": {{{options}}}}}"#
        )
    };
    // Twenty publishes (bounded) into a node that keeps three: the newest three are kept,
    // oldest first.
    for i in 0..20 {
        alice
            .command(&publish(
                "urn:example:log",
                &format!("e{i}"),
                &format!("entry {i}"),
                r#""pubsub#max_items": "3""#,
            ))
            .await;
    }
    no_error(&alice);
    let items = read_items(&mut alice, "alice@localhost", "urn:example:log").await;
    assert!(
        items.contains("\"ids\": [\"e17\", \"e18\", \"e19\"]"),
        "{items}"
    );
    alice
        .command(r#"{"cmd": "items", "to": "alice@localhost", "node": "urn:example:log", "max_items": 1}"#)
        .await;
    let newest = alice.latest("items");
    assert!(newest.contains("\"ids\": [\"e19\"]"), "{newest}");

    // More than max_items_per_node is refused; "max" means it.
    alice
        .command(&publish(
            "urn:example:big",
            "x",
            "x",
            r#""pubsub#max_items": "6""#,
        ))
        .await;
    let err = iq_error(&alice, "publish");
    assert!(err.contains("\"condition\": \"bad-request\""), "{err}");
    alice
        .command(&publish(
            "urn:example:big",
            "x",
            "x",
            r#""pubsub#max_items": "max""#,
        ))
        .await;
    alice
        .command(r#"{"cmd": "node_config", "node": "urn:example:big"}"#)
        .await;
    let config = alice.latest("node_config");
    assert!(config.contains("\"pubsub#max_items\": \"max\""), "{config}");
    // An item over max_item_bytes.
    let long = "y".repeat(400);
    alice
        .command(&publish("urn:example:big", "long", &long, ""))
        .await;
    let err = iq_error(&alice, "publish");
    assert!(err.contains("\"condition\": \"not-acceptable\""), "{err}");
    assert!(err.contains("\"pubsub\": \"payload-too-big\""), "{err}");
    // A third node is the last one.
    alice
        .command(&publish("urn:example:third", "x", "x", ""))
        .await;
    alice
        .command(&publish("urn:example:fourth", "x", "x", ""))
        .await;
    let err = iq_error(&alice, "publish");
    assert!(err.contains("\"condition\": \"not-allowed\""), "{err}");
    assert!(err.contains("\"pubsub\": \"max-nodes-exceeded\""), "{err}");
    alice
        .command(r#"{"cmd": "disco_items", "to": "alice@localhost"}"#)
        .await;
    let nodes = alice.latest("disco_items");
    assert!(
        nodes.contains(
            "\"nodes\": [\"urn:example:big\", \"urn:example:log\", \"urn:example:third\"]"
        ),
        "{nodes}"
    );
    assert!(alice.quit().await);

    server.terminate();
    server.restart();
    let mut alice = online(&server, "alice@localhost/phone").await;
    let items = read_items(&mut alice, "alice@localhost", "urn:example:log").await;
    assert!(
        items.contains("\"ids\": [\"e17\", \"e18\", \"e19\"]"),
        "{items}"
    );
    assert!(
        items.contains("\"texts\": [\"entry 17\", \"entry 18\", \"entry 19\"]"),
        "{items}"
    );
    // Purged and deleted nodes stay so.
    alice
        .command(r#"{"cmd": "purge", "node": "urn:example:log"}"#)
        .await;
    alice
        .command(r#"{"cmd": "delete", "node": "urn:example:third"}"#)
        .await;
    no_error(&alice);
    assert!(alice.quit().await);
    server.terminate();
    server.restart();
    let mut alice = online(&server, "alice@localhost/phone").await;
    alice
        .command(r#"{"cmd": "items", "to": "alice@localhost", "node": "urn:example:log"}"#)
        .await;
    assert!(
        alice.latest("items").contains("\"ids\": []"),
        "{:?}",
        alice.events
    );
    alice
        .command(r#"{"cmd": "items", "to": "alice@localhost", "node": "urn:example:third"}"#)
        .await;
    let err = iq_error(&alice, "items");
    assert!(err.contains("\"condition\": \"item-not-found\""), "{err}");
    assert!(alice.quit().await);
}

/// XEP-0384 OMEMO with slixmpp-omemo 2.x: each client publishes its device list and key
/// bundles in its account's PEP nodes (publish options: open access), learns the other's
/// devices from PEP notifications once they are subscribed to each other, fetches a
/// bundle, and the two exchange messages only they can read.
#[tokio::test]
async fn omemo_clients_find_each_other_through_pep_and_exchange_encrypted_messages() {
    let server = server_with(TestConfig::default(), &["alice", "bob"]);
    let spawn = |jid: &str| {
        SlixIm::spawn_script(
            "slix_omemo.py",
            jid,
            &password(jid),
            server.c2s.port(),
            &server.cert_path(),
        )
    };
    let mut alice = spawn("alice@localhost/phone");
    let mut bob = spawn("bob@localhost/pc");
    // session_start comes once the plugin has published its devices and bundles.
    alice.expect_all(&["session_start"]).await;
    bob.expect_all(&["session_start"]).await;
    alice.command(r#"{"cmd": "available"}"#).await;
    bob.command(r#"{"cmd": "available"}"#).await;
    befriend(
        &mut alice,
        "alice@localhost/phone",
        &mut bob,
        "bob@localhost/pc",
    )
    .await;
    // Each is sent the other's device list when the subscription starts.
    for (client, other) in [(&mut alice, "bob@localhost"), (&mut bob, "alice@localhost")] {
        client
            .expect_ever(&[
                "\"event\": \"device_list\"",
                "\"node\": \"eu.siacs.conversations.axolotl.devicelist\"",
                &format!("\"from\": \"{other}\""),
            ])
            .await;
    }

    alice
        .command(
            r#"{"cmd": "send_encrypted", "to": "bob@localhost", "body": "Meet me in the garden"}"#,
        )
        .await;
    let sent = alice.latest("sent_encrypted");
    assert!(sent.contains("\"plaintext_sent\": false"), "{sent}");
    let got = bob
        .expect_all(&[
            "\"event\": \"decrypted\"",
            "\"from\": \"alice@localhost/phone\"",
        ])
        .await;
    assert!(got.contains("\"body\": \"Meet me in the garden\""), "{got}");
    assert!(got.contains("\"plaintext_seen\": false"), "{got}");

    bob.command(r#"{"cmd": "send_encrypted", "to": "alice@localhost", "body": "At noon"}"#)
        .await;
    let got = alice
        .expect_all(&["\"event\": \"decrypted\"", "\"from\": \"bob@localhost/pc\""])
        .await;
    assert!(got.contains("\"body\": \"At noon\""), "{got}");
    assert!(alice.quit().await);
    assert!(bob.quit().await);
}
