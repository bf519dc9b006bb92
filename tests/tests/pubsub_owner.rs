//! XEP-0060 on pubsub.HOST, the owner's side, through slixmpp's xep_0060 plugin
//! (tests/clients/slix_pubsub.py): a node of the `authorize` access model (subscriptions
//! pending until an owner answers the §8.6 form or changes them through §8.8, pending ones
//! kept across a restart and asked about again with §8.7's `get-pending` command, items
//! refused meanwhile), affiliation change notices (§8.9.4),
//! subscription options (§6.3; `pubsub#include_body`'s summaries to the subscribers who
//! asked), the owner's subscription management (§8.8), service and node discovery (§5),
//! configuration and subscription notifications, and a deletion with a redirect (§8.4.1),
//! on SQLite and PostgreSQL.

use jabberwock_tests::postgres::Scratch;
use jabberwock_tests::slix::{
    assert_refused, iq_error, pep_online, pubsub_on, pubsub_submit, SlixIm,
};
use jabberwock_tests::{TestConfig, TestServer};

const SCRIPT: &str = "slix_pubsub.py";
const SERVICE: &str = "pubsub.localhost";

async fn online(server: &TestServer, user: &str) -> SlixIm {
    pep_online(server, SCRIPT, &format!("{user}@localhost/pc"), &[]).await
}

/// `cmd` about `node` from `client`, with more fields (`extra`, from a comma).
async fn on(client: &mut SlixIm, cmd: &str, node: &str, extra: &str) -> String {
    pubsub_on(client, SERVICE, cmd, node, extra).await
}

async fn publish(owner: &mut SlixIm, node: &str, id: &str) {
    let payload = format!("<entry xmlns='urn:example:news'>{id}</entry>");
    publish_payload(owner, node, id, &payload).await;
}

/// The owner publishes `payload` (XML quoted with ') as the item `id` of `node`.
async fn publish_payload(owner: &mut SlixIm, node: &str, id: &str, payload: &str) {
    on(
        owner,
        "publish_to",
        node,
        &format!(r#", "id": "{id}", "payload": "{payload}""#),
    )
    .await;
    assert!(owner
        .latest("published")
        .contains(&format!("\"id\": \"{id}\"")));
}

/// `client` submits its subscription options for `node` (§6.3.5): `options` a JSON object
/// of fields.
async fn set_options(client: &mut SlixIm, node: &str, options: &str) {
    pubsub_submit(client, SERVICE, "set_options", node, options).await;
}

/// The subscription event (`<event><subscription/></event>`) `client` got for `jid`.
async fn subscription_event(client: &mut SlixIm, node: &str, jid: &str, state: &str) -> String {
    client
        .expect_ever(&[
            "\"event\": \"subscription_event\"",
            &format!("\"node\": \"{node}\""),
            &format!("\"jid\": \"{jid}\""),
            &format!("\"subscription\": \"{state}\""),
            &format!("\"from\": \"{SERVICE}\""),
        ])
        .await
}

/// An item notification of `id` on `node` that `client` got.
async fn item_notice(client: &mut SlixIm, node: &str, id: &str) -> String {
    client
        .expect_ever(&[
            "\"event\": \"pep\"",
            "\"kind\": \"publish\"",
            &format!("\"node\": \"{node}\""),
            &format!("\"ids\": [\"{id}\"]"),
        ])
        .await
}

/// The owner's list of `node`'s subscriptions.
async fn node_subscriptions(owner: &mut SlixIm, node: &str) -> String {
    on(owner, "node_subscriptions", node, "").await;
    owner.latest("node_subscriptions")
}

/// Before the restart: an `authorize` node, two requests left pending.
async fn requests_wait(server: &TestServer) {
    let mut alice = online(server, "alice").await;
    let mut bob = online(server, "bob").await;
    let mut carol = online(server, "carol").await;
    on(
        &mut alice,
        "create",
        "club",
        r#", "options": {"pubsub#access_model": "authorize", "pubsub#title": "Club"}"#,
    )
    .await;
    publish(&mut alice, "club", "c1").await;
    // A subscription to an authorize node is pending (§6.1.2); the owner is asked (§8.6).
    on(&mut bob, "subscribe", "club", "").await;
    let answer = bob.latest("subscribed");
    assert!(answer.contains("\"subscription\": \"pending\""), "{answer}");
    let asked = alice
        .expect_ever(&[
            "\"event\": \"auth_request\"",
            "\"node\": \"club\"",
            "\"jid\": \"bob@localhost\"",
        ])
        .await;
    assert!(
        asked.contains("\"form_type\": \"form\"")
            && asked.contains("\"allow\": \"false\"")
            && asked.contains(&format!("\"from\": \"{SERVICE}\"")),
        "{asked}"
    );
    // Asking again while pending is an error (§6.1.3.7).
    on(&mut bob, "subscribe", "club", "").await;
    let err = iq_error(&bob, "subscribe");
    assert!(
        err.contains("\"condition\": \"not-authorized\"")
            && err.contains("\"pubsub\": \"pending-subscription\""),
        "{err}"
    );
    // Items are for subscribers: pending is not yet, and a stranger is not at all.
    on(&mut bob, "items", "club", "").await;
    let err = iq_error(&bob, "items");
    assert!(
        err.contains("not-authorized") && err.contains("pending-subscription"),
        "{err}"
    );
    on(&mut carol, "items", "club", "").await;
    let err = iq_error(&carol, "items");
    assert!(
        err.contains("not-authorized") && err.contains("\"pubsub\": \"not-subscribed\""),
        "{err}"
    );
    // The node is still listed for those who may ask (§5.2).
    carol
        .command(&format!(r#"{{"cmd": "disco_items", "to": "{SERVICE}"}}"#))
        .await;
    assert!(carol.latest("disco_items").contains("\"club\""));
    on(&mut carol, "subscribe", "club", "").await;
    assert!(carol
        .latest("subscribed")
        .contains("\"subscription\": \"pending\""));
    // The requester's own list (§5.6) and the owner's (§8.8.1) say pending.
    bob.command(&format!(
        r#"{{"cmd": "my_subscriptions", "to": "{SERVICE}"}}"#
    ))
    .await;
    assert!(bob
        .latest("my_subscriptions")
        .contains("[\"club\", \"pending\"]"));
    let list = node_subscriptions(&mut alice, "club").await;
    assert!(
        list.contains("[\"bob@localhost\", \"pending\"]")
            && list.contains("[\"carol@localhost\", \"pending\"]"),
        "{list}"
    );
    for client in [alice, bob, carol] {
        assert!(client.quit().await);
    }
}

/// After the restart: the requests are still pending and the owner decides.
async fn owners_decide(server: &TestServer) {
    let mut alice = online(server, "alice").await;
    let mut bob = online(server, "bob").await;
    let mut carol = online(server, "carol").await;
    let mut dave = online(server, "dave").await;
    let list = node_subscriptions(&mut alice, "club").await;
    assert!(
        list.contains("[\"bob@localhost\", \"pending\"]")
            && list.contains("[\"carol@localhost\", \"pending\"]"),
        "{list}"
    );
    // The owner has the requests sent again (§8.7's get-pending, an ad-hoc command of the
    // service): the node is offered, and each request's §8.6 form comes back.
    alice
        .command(&format!(r#"{{"cmd": "commands_at", "to": "{SERVICE}"}}"#))
        .await;
    let commands = alice.latest("commands");
    assert!(
        commands.contains("http://jabber.org/protocol/pubsub#get-pending"),
        "{commands}"
    );
    on(&mut alice, "get_pending", "club", "").await;
    let offered = alice.latest("pending_nodes");
    assert!(offered.contains("\"nodes\": [\"club\"]"), "{offered}");
    let done = alice.latest("command");
    assert!(done.contains("\"status\": \"completed\""), "{done}");
    for jid in ["bob@localhost", "carol@localhost"] {
        alice
            .expect_ever(&[
                "\"event\": \"auth_request\"",
                "\"node\": \"club\"",
                &format!("\"jid\": \"{jid}\""),
                &format!("\"from\": \"{SERVICE}\""),
            ])
            .await;
    }
    // Someone who owns no node gets `forbidden`.
    on(&mut dave, "get_pending", "club", "").await;
    let err = iq_error(&dave, "get_pending");
    assert!(err.contains("\"condition\": \"forbidden\""), "{err}");
    // Someone who owns nothing can't approve anyone: carol stays pending.
    on(
        &mut dave,
        "answer",
        "club",
        r#", "jid": "carol@localhost", "allow": true"#,
    )
    .await;
    dave.expect_all(&[
        "\"event\": \"message_error\"",
        "\"condition\": \"forbidden\"",
        &format!("\"from\": \"{SERVICE}\""),
    ])
    .await;
    // The owner approves bob through the form (§8.6); bob hears of it and now reads.
    on(
        &mut alice,
        "answer",
        "club",
        r#", "jid": "bob@localhost", "allow": true"#,
    )
    .await;
    subscription_event(&mut bob, "club", "bob@localhost", "subscribed").await;
    on(&mut bob, "items", "club", "").await;
    assert!(bob.latest("items").contains("\"ids\": [\"c1\"]"));
    let list = node_subscriptions(&mut alice, "club").await;
    assert!(
        list.contains("[\"bob@localhost\", \"subscribed\"]")
            && list.contains("[\"carol@localhost\", \"pending\"]"),
        "{list}"
    );
    // A publish reaches bob, not carol, who is pending; the owner then denies carol
    // through the subscriptions (§8.8.2), and carol hears `none` after anything sent
    // before it.
    publish(&mut alice, "club", "c2").await;
    item_notice(&mut bob, "club", "c2").await;
    on(
        &mut alice,
        "set_subscription",
        "club",
        r#", "jid": "carol@localhost", "state": "none""#,
    )
    .await;
    subscription_event(&mut carol, "club", "carol@localhost", "none").await;
    assert!(
        !carol.seen(&["\"kind\": \"publish\""]),
        "{:?}",
        carol.events
    );
    // The owner approves dave's request through the subscriptions too.
    on(&mut dave, "subscribe", "club", "").await;
    alice
        .expect_ever(&["\"event\": \"auth_request\"", "\"jid\": \"dave@localhost\""])
        .await;
    on(
        &mut alice,
        "set_subscription",
        "club",
        r#", "jid": "dave@localhost", "state": "subscribed""#,
    )
    .await;
    subscription_event(&mut dave, "club", "dave@localhost", "subscribed").await;
    let list = node_subscriptions(&mut alice, "club").await;
    assert!(
        list.contains("[\"dave@localhost\", \"subscribed\"]") && !list.contains("carol"),
        "{list}"
    );
    // §8.9.4: carol hears she is a publisher now, and as one reads the node.
    on(
        &mut alice,
        "affiliate",
        "club",
        r#", "jid": "carol@localhost", "affiliation": "publisher""#,
    )
    .await;
    let notice = carol
        .expect_ever(&[
            "\"event\": \"affiliation_notice\"",
            "\"node\": \"club\"",
            "\"jid\": \"carol@localhost\"",
            "\"affiliation\": \"publisher\"",
        ])
        .await;
    assert!(
        notice.contains(&format!("\"from\": \"{SERVICE}\"")),
        "{notice}"
    );
    on(&mut carol, "items", "club", "").await;
    assert!(carol.latest("items").contains("\"ids\": [\"c1\", \"c2\"]"));
    on(
        &mut alice,
        "affiliate",
        "club",
        r#", "jid": "carol@localhost", "affiliation": "none""#,
    )
    .await;
    carol
        .expect_ever(&[
            "\"event\": \"affiliation_notice\"",
            "\"jid\": \"carol@localhost\"",
            "\"affiliation\": \"none\"",
        ])
        .await;
    for client in [alice, bob, carol, dave] {
        assert!(client.quit().await);
    }
}

/// An open node: options, the owner's subscription management, discovery, configuration
/// and subscription notifications, deletion with a redirect.
async fn an_owner_manages_a_node(server: &TestServer) {
    let mut alice = online(server, "alice").await;
    let mut bob = online(server, "bob").await;
    let mut carol = online(server, "carol").await;
    let mut dave = online(server, "dave").await;
    on(
        &mut alice,
        "create",
        "news",
        r#", "options": {"pubsub#title": "Site news", "pubsub#notify_config": "1", "pubsub#notify_sub": "1"}"#,
    )
    .await;
    // notify_sub: the owner hears of a new subscription.
    on(&mut bob, "subscribe", "news", "").await;
    assert!(bob
        .latest("subscribed")
        .contains("\"subscription\": \"subscribed\""));
    subscription_event(&mut alice, "news", "bob@localhost", "subscribed").await;
    // §6.3: bob's options, delivery turned off and on again: what was published while
    // off never reaches him.
    on(&mut bob, "get_options", "news", "").await;
    let options = bob.latest("options");
    assert!(
        options.contains("\"pubsub#deliver\": \"1\"")
            && options.contains("\"pubsub#subscription_type\": \"items\""),
        "{options}"
    );
    set_options(&mut bob, "news", r#"{"pubsub#deliver": "0"}"#).await;
    assert!(!bob.seen(&["iq_error"]), "{:?}", bob.events);
    publish(&mut alice, "news", "n1").await;
    set_options(&mut bob, "news", r#"{"pubsub#deliver": "1"}"#).await;
    publish(&mut alice, "news", "n2").await;
    item_notice(&mut bob, "news", "n2").await;
    assert!(!bob.seen(&["\"ids\": [\"n1\"]"]), "{:?}", bob.events);
    // Digests are not offered (§6.3.6).
    set_options(&mut bob, "news", r#"{"pubsub#digest": "1"}"#).await;
    assert_refused(&bob, "set_options", "not-acceptable", "invalid-options");
    // §8.8: the owner subscribes dave and takes carol's subscription away; bob stays.
    on(&mut carol, "subscribe", "news", "").await;
    on(
        &mut alice,
        "set_subscription",
        "news",
        r#", "jid": "dave@localhost", "state": "subscribed""#,
    )
    .await;
    subscription_event(&mut dave, "news", "dave@localhost", "subscribed").await;
    on(
        &mut alice,
        "set_subscription",
        "news",
        r#", "jid": "carol@localhost", "state": "none""#,
    )
    .await;
    subscription_event(&mut carol, "news", "carol@localhost", "none").await;
    let list = node_subscriptions(&mut alice, "news").await;
    assert!(
        list.contains(
            "[[\"bob@localhost\", \"subscribed\"], [\"dave@localhost\", \"subscribed\"]]"
        ),
        "{list}"
    );
    // Only an owner manages subscriptions; a pending state can't be set.
    on(&mut bob, "node_subscriptions", "news", "").await;
    assert!(iq_error(&bob, "node_subscriptions").contains("\"condition\": \"forbidden\""));
    on(
        &mut alice,
        "set_subscription",
        "news",
        r#", "jid": "carol@localhost", "state": "pending""#,
    )
    .await;
    assert!(iq_error(&alice, "set_subscription").contains("not-acceptable"));
    // §5: the service and the node.
    carol
        .command(&format!(r#"{{"cmd": "disco_info", "to": "{SERVICE}"}}"#))
        .await;
    let info = carol.latest("disco_info");
    assert!(
        info.contains("[\"pubsub\", \"service\"")
            && info.contains("http://jabber.org/protocol/pubsub#access-authorize")
            && info.contains("http://jabber.org/protocol/pubsub#manage-subscriptions"),
        "{info}"
    );
    carol
        .command(&format!(r#"{{"cmd": "disco_items", "to": "{SERVICE}"}}"#))
        .await;
    assert!(carol.latest("disco_items").contains("\"news\""));
    on(&mut carol, "node_info", "news", "").await;
    let info = carol.latest("node_info");
    assert!(
        info.contains("[\"pubsub\", \"leaf\"")
            && info.contains("\"pubsub#title\": \"Site news\"")
            && info.contains("\"pubsub#access_model\": \"open\""),
        "{info}"
    );
    on(&mut carol, "node_items", "news", "").await;
    assert!(carol
        .latest("node_items")
        .contains("\"names\": [\"n1\", \"n2\"]"));
    // notify_config: subscribers get the new configuration (§8.2.5.1).
    on(
        &mut alice,
        "configure_at",
        "news",
        r#", "options": {"pubsub#title": "Fresh news"}"#,
    )
    .await;
    for client in [&mut bob, &mut dave] {
        let got = client
            .expect_ever(&["\"event\": \"config_event\"", "\"node\": \"news\""])
            .await;
        assert!(got.contains("\"pubsub#title\": \"Fresh news\""), "{got}");
    }
    // notify_sub: the owner hears bob leave.
    on(&mut bob, "unsubscribe", "news", "").await;
    subscription_event(&mut alice, "news", "bob@localhost", "none").await;
    // §8.4.1: the remaining subscriber is sent elsewhere.
    on(
        &mut alice,
        "delete_at",
        "news",
        r#", "redirect": "xmpp:pubsub.localhost?;node=club""#,
    )
    .await;
    assert!(
        !alice.seen(&["iq_error", "\"cmd\": \"delete_at\""]),
        "{:?}",
        alice.events
    );
    let gone = dave
        .expect_ever(&["\"kind\": \"delete\"", "\"node\": \"news\""])
        .await;
    assert!(
        gone.contains("\"redirect\": \"xmpp:pubsub.localhost?;node=club\""),
        "{gone}"
    );
    for client in [alice, bob, carol, dave] {
        assert!(client.quit().await);
    }
}

/// `pubsub#include_body` (§16.4.2, as Prosody offers it): a subscriber who asks for it,
/// with the subscription (§6.3.7) or later through its options (§6.3.5), gets a `<body/>`
/// saying what each item is; one who did not gets none.
async fn bodies_for_those_who_ask(server: &TestServer) {
    let mut alice = online(server, "alice").await;
    let mut bob = online(server, "bob").await;
    let mut carol = online(server, "carol").await;
    on(&mut alice, "create", "blog", "").await;
    on(
        &mut bob,
        "subscribe",
        "blog",
        r#", "options": {"pubsub#include_body": "1"}"#,
    )
    .await;
    let answer = bob.latest("subscribed");
    assert!(
        answer.contains("\"subscription\": \"subscribed\""),
        "{answer}"
    );
    on(&mut carol, "subscribe", "blog", "").await;
    // The options form shows it: on for bob, off (the default) for carol.
    for (client, value) in [(&mut bob, "1"), (&mut carol, "0")] {
        on(client, "get_options", "blog", "").await;
        let options = client.latest("options");
        assert!(
            options.contains(&format!("\"pubsub#include_body\": \"{value}\"")),
            "{options}"
        );
    }
    // An Atom entry is summed up by its summary, for bob only.
    let atom = "<entry xmlns='http://www.w3.org/2005/Atom'><title>Release</title>\
                <summary>Version 2 is out</summary><author><name>Alice</name></author></entry>";
    publish_payload(&mut alice, "blog", "r1", atom).await;
    let got = item_notice(&mut bob, "blog", "r1").await;
    assert!(got.contains("\"body\": \"Version 2 is out\""), "{got}");
    let got = item_notice(&mut carol, "blog", "r1").await;
    assert!(got.contains("\"body\": null"), "{got}");
    // Carol asks for it too; an entry without a summary is told by its author and title.
    set_options(&mut carol, "blog", r#"{"pubsub#include_body": "1"}"#).await;
    assert!(!carol.seen(&["iq_error"]), "{:?}", carol.events);
    let titled = "<entry xmlns='http://www.w3.org/2005/Atom'><title>Hello</title>\
                  <author><name>Alice</name></author></entry>";
    publish_payload(&mut alice, "blog", "r2", titled).await;
    let got = item_notice(&mut carol, "blog", "r2").await;
    assert!(got.contains("\"body\": \"Alice posted Hello\""), "{got}");
    // Any other payload by its own text; without any, no body.
    publish_payload(
        &mut alice,
        "blog",
        "r3",
        "<status xmlns='urn:example:s'> Away </status>",
    )
    .await;
    let got = item_notice(&mut carol, "blog", "r3").await;
    assert!(got.contains("\"body\": \"Away\""), "{got}");
    publish_payload(&mut alice, "blog", "r4", "<status xmlns='urn:example:s'/>").await;
    let got = item_notice(&mut carol, "blog", "r4").await;
    assert!(got.contains("\"body\": null"), "{got}");
    // Not a boolean: refused (§6.3.6), carol keeps her bodies.
    set_options(&mut carol, "blog", r#"{"pubsub#include_body": "maybe"}"#).await;
    assert_refused(&carol, "set_options", "not-acceptable", "invalid-options");
    on(&mut carol, "get_options", "blog", "").await;
    let options = carol.latest("options");
    assert!(
        options.contains("\"pubsub#include_body\": \"1\""),
        "{options}"
    );
    for client in [alice, bob, carol] {
        assert!(client.quit().await);
    }
}

fn add_users(server: &TestServer) {
    for user in ["alice", "bob", "carol", "dave"] {
        server.add_user(&format!("{user}@localhost"), &format!("pw-{user}"));
    }
}

async fn run(server: &mut TestServer) {
    add_users(server);
    requests_wait(server).await;
    server.terminate();
    server.restart();
    owners_decide(server).await;
    an_owner_manages_a_node(server).await;
    bodies_for_those_who_ask(server).await;
}

#[tokio::test]
async fn owners_approve_subscriptions_and_manage_nodes_on_sqlite() {
    let mut server = TestServer::start_with(TestConfig::default());
    run(&mut server).await;
}

#[tokio::test]
async fn owners_approve_subscriptions_and_manage_nodes_on_postgresql() {
    let db = Scratch::create().await;
    let mut server = TestServer::start_with(TestConfig::default().storage(&db.url()));
    run(&mut server).await;
    server.kill();
    db.drop_now().await;
}
