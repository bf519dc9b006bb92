//! XEP-0060 publish-subscribe service on pubsub.HOST, driven through slixmpp's xep_0060
//! plugin (tests/clients/slix_pubsub.py): a node created and configured, two subscribers
//! notified of a publish and a purge, the owner's affiliations, a publisher-only node
//! refusing others, XEP-0059 pages both ways, an outcast refused, errors for bad input,
//! the four event types of transient or persistent and notification-only or payload nodes
//! (§4.3, §7.1.3.6) with `notify_retract`, the notifications' message type, a node's
//! payload limit and subscriptions turned off, notifications to available subscribers
//! only (`pubsub#presence_based_delivery`), an offline publisher's items purged
//! (`pubsub#purge_offline`), items expiring (`pubsub#item_expire`), and what survives a
//! restart, on SQLite and PostgreSQL.

use std::time::Duration;

use jabberwock_tests::postgres::Scratch;
use jabberwock_tests::slix::{
    assert_refused, iq_error, pep_online, pubsub_on, pubsub_submit, SlixIm,
};
use jabberwock_tests::{TestConfig, TestServer};
use sqlx::Connection as _;

const SCRIPT: &str = "slix_pubsub.py";
const SERVICE: &str = "pubsub.localhost";

async fn online(server: &TestServer, user: &str) -> SlixIm {
    pep_online(server, SCRIPT, &format!("{user}@localhost/pc"), &[]).await
}

fn entry(id: &str, text: &str) -> String {
    format!(
        r#"{{"cmd": "publish_to", "to": "{SERVICE}", "node": "news", "id": "{id}", "payload": "<entry xmlns='urn:example:news'>{text}</entry>"}}"#
    )
}

/// `cmd` about the node `news` from `client`, with more fields (`extra`, from a comma).
async fn on_news(client: &mut SlixIm, cmd: &str, extra: &str) -> String {
    pubsub_on(client, SERVICE, cmd, "news", extra).await
}

/// The owner gives `jid` an affiliation with `news`.
async fn affiliate(owner: &mut SlixIm, jid: &str, affiliation: &str) {
    on_news(
        owner,
        "affiliate",
        &format!(r#", "jid": "{jid}", "affiliation": "{affiliation}""#),
    )
    .await;
}

/// A notification of `kind` about `node` from the service that `client` got, with `what`
/// in it (an item's id).
async fn notified(client: &mut SlixIm, kind: &str, node: &str, what: &str) -> String {
    client
        .expect_ever(&[
            "\"event\": \"pep\"",
            &format!("\"kind\": \"{kind}\""),
            &format!("\"from\": \"{SERVICE}\""),
            &format!("\"node\": \"{node}\""),
            what,
        ])
        .await
}

/// Everything but the restart, on a running server with alice, bob, carol and mallory.
async fn the_service_works(server: &TestServer) {
    let mut alice = online(server, "alice").await;
    let mut bob = online(server, "bob").await;
    let mut carol = online(server, "carol").await;
    let mut mallory = online(server, "mallory").await;
    // Alice makes a node with a configuration form, then configures it further.
    alice
        .command(&format!(
            r#"{{"cmd": "create", "to": "{SERVICE}", "node": "news", "options": {{"pubsub#title": "Site news", "pubsub#max_items": "20"}}}}"#
        ))
        .await;
    assert!(alice.latest("created").contains("\"node\": \"news\""));
    alice
        .command(&format!(
            r#"{{"cmd": "configure_at", "to": "{SERVICE}", "node": "news", "options": {{"pubsub#publish_model": "publishers", "pubsub#type": "urn:example:news"}}}}"#
        ))
        .await;
    assert!(!alice.seen(&["iq_error"]), "{:?}", alice.events);
    // An instant node gets a name from the service.
    alice
        .command(&format!(
            r#"{{"cmd": "create", "to": "{SERVICE}", "node": null}}"#
        ))
        .await;
    assert!(!alice.latest("created").contains("\"node\": null"));
    // Two subscribers; both are notified of a publish.
    for client in [&mut bob, &mut carol] {
        client
            .command(&format!(
                r#"{{"cmd": "subscribe", "to": "{SERVICE}", "node": "news"}}"#
            ))
            .await;
        assert!(client.latest("subscribed").contains("\"subid\""));
    }
    alice.command(&entry("e1", "Launch")).await;
    for client in [&mut bob, &mut carol] {
        let got = notified(client, "publish", "news", "\"ids\": [\"e1\"]").await;
        assert!(got.contains("\"text\": \"Launch\""), "{got}");
    }
    // A payload of another namespace than pubsub#type is refused.
    alice
        .command(&format!(
            r#"{{"cmd": "publish_to", "to": "{SERVICE}", "node": "news", "id": "x", "payload": "<other xmlns='urn:example:other'/>"}}"#
        ))
        .await;
    let err = iq_error(&alice, "publish_to");
    assert!(
        err.contains("bad-request") && err.contains("invalid-payload"),
        "{err}"
    );
    // Publishers only: Bob, a subscriber without an affiliation, is forbidden...
    bob.command(&entry("b1", "Bob's")).await;
    assert!(iq_error(&bob, "publish_to").contains("\"condition\": \"forbidden\""));
    // ...until the owner makes him a publisher.
    affiliate(&mut alice, "bob@localhost", "publisher").await;
    on_news(&mut alice, "affiliations", "").await;
    let list = alice.latest("affiliations");
    assert!(
        list.contains("[\"alice@localhost\", \"owner\"]")
            && list.contains("[\"bob@localhost\", \"publisher\"]"),
        "{list}"
    );
    bob.command(&entry("b1", "Bob's")).await;
    assert!(bob.latest("published").contains("\"id\": \"b1\""));
    notified(&mut carol, "publish", "news", "\"ids\": [\"b1\"]").await;
    // Mallory, an outcast, can neither subscribe nor read; nor may she manage the node.
    affiliate(&mut alice, "mallory@localhost", "outcast").await;
    for cmd in ["subscribe", "page", "purge_at"] {
        on_news(&mut mallory, cmd, r#", "max": 2"#).await;
        assert!(iq_error(&mallory, cmd).contains("\"condition\": \"forbidden\""));
    }
    // Unknown node: item-not-found.
    carol
        .command(&format!(
            r#"{{"cmd": "subscribe", "to": "{SERVICE}", "node": "nope"}}"#
        ))
        .await;
    assert!(iq_error(&carol, "subscribe").contains("item-not-found"));
    // Five items, paged two at a time forward and back.
    for (id, text) in [("e2", "Two"), ("e3", "Three"), ("e4", "Four")] {
        alice.command(&entry(id, text)).await;
    }
    let page = |after: &str, before: &str| {
        format!(r#"{{"cmd": "page", "to": "{SERVICE}", "node": "news", "max": 2{after}{before}}}"#)
    };
    carol.command(&page("", "")).await;
    let first = carol.latest("page");
    assert!(
        first.contains("\"ids\": [\"e1\", \"b1\"]") && first.contains("\"count\": \"5\""),
        "{first}"
    );
    carol.command(&page(", \"after\": \"b1\"", "")).await;
    assert!(
        carol.latest("page").contains("\"ids\": [\"e2\", \"e3\"]"),
        "{}",
        carol.latest("page")
    );
    carol.command(&page("", ", \"before\": \"\"")).await;
    assert!(
        carol.latest("page").contains("\"ids\": [\"e3\", \"e4\"]"),
        "{}",
        carol.latest("page")
    );
    carol.command(&page("", ", \"before\": \"e3\"")).await;
    assert!(
        carol.latest("page").contains("\"ids\": [\"b1\", \"e2\"]"),
        "{}",
        carol.latest("page")
    );
    // A purge reaches both subscribers.
    alice
        .command(&format!(
            r#"{{"cmd": "purge_at", "to": "{SERVICE}", "node": "news"}}"#
        ))
        .await;
    for client in [&mut bob, &mut carol] {
        notified(client, "purge", "news", "\"ids\": []").await;
    }
    alice.command(&entry("e5", "After the purge")).await;
    for client in [alice, bob, carol, mallory] {
        assert!(client.quit().await);
    }
}

/// `cmd` about `node` from `client`, with more fields (`extra`, from a comma).
async fn on(client: &mut SlixIm, cmd: &str, node: &str, extra: &str) -> String {
    pubsub_on(client, SERVICE, cmd, node, extra).await
}

/// The owner submits `node`'s configuration form (§8.2.4): `options` a JSON object of
/// fields.
async fn configure(owner: &mut SlixIm, node: &str, options: &str) {
    pubsub_submit(owner, SERVICE, "configure_at", node, options).await;
}

/// The owner publishes to `node`: `id` and `payload` as JSON (`null` for none).
async fn publish_raw(owner: &mut SlixIm, node: &str, id: &str, payload: &str) {
    on(
        owner,
        "publish_to",
        node,
        &format!(r#", "id": {id}, "payload": {payload}"#),
    )
    .await;
}

/// The publish was refused with `bad-request` and the pubsub#errors `condition`.
fn refused(client: &SlixIm, condition: &str) {
    assert_refused(client, "publish_to", "bad-request", condition);
}

/// §4.3's event types and §7.1.3.6's rules for each: a transient notification-only node
/// takes no item and announces an empty <items/>; a transient payload node needs a payload
/// and keeps nothing; a persistent notification-only node takes an empty item and sends ids
/// only; `notify_retract` off keeps a retraction quiet unless the publisher asks.
async fn event_types(server: &TestServer) {
    let mut alice = online(server, "alice").await;
    let mut bob = online(server, "bob").await;
    let transient = r#"{"pubsub#persist_items": "0", "pubsub#deliver_payloads": "0"}"#;
    on(
        &mut alice,
        "create",
        "flash",
        &format!(r#", "options": {transient}"#),
    )
    .await;
    on(&mut bob, "subscribe", "flash", "").await;
    publish_raw(&mut alice, "flash", "null", "null").await;
    // No item, no id in the answer; the subscriber hears an <items/> without items.
    assert!(alice.latest("published").contains("\"id\": \"\""));
    bob.expect_all(&[
        "\"event\": \"empty_items\"",
        "\"node\": \"flash\"",
        &format!("\"from\": \"{SERVICE}\""),
    ])
    .await;
    let news = "\"<entry xmlns='urn:example:news'>Flash</entry>\"";
    publish_raw(&mut alice, "flash", "\"f1\"", news).await;
    refused(&alice, "item-forbidden");
    publish_raw(&mut alice, "flash", "\"f1\"", "null").await;
    refused(&alice, "item-forbidden");
    // A transient node keeps no items to retrieve.
    on(&mut bob, "items", "flash", "").await;
    assert_refused(&bob, "items", "feature-not-implemented", "unsupported");
    // Transient with payloads: a payload is required, delivered, and not kept.
    configure(&mut alice, "flash", r#"{"pubsub#deliver_payloads": "1"}"#).await;
    publish_raw(&mut alice, "flash", "null", "null").await;
    refused(&alice, "payload-required");
    publish_raw(&mut alice, "flash", "\"f2\"", "null").await;
    refused(&alice, "payload-required");
    publish_raw(&mut alice, "flash", "\"f3\"", news).await;
    assert!(alice.latest("published").contains("\"id\": \"f3\""));
    let got = notified(&mut bob, "publish", "flash", "\"ids\": [\"f3\"]").await;
    assert!(got.contains("\"text\": \"Flash\""), "{got}");
    // Persistent and notification-only: an item is required, it may be empty, and
    // notifications carry ids only.
    on(
        &mut alice,
        "create",
        "pings",
        r#", "options": {"pubsub#deliver_payloads": "0", "pubsub#notify_retract": "0"}"#,
    )
    .await;
    on(&mut bob, "subscribe", "pings", "").await;
    publish_raw(&mut alice, "pings", "null", "null").await;
    refused(&alice, "item-required");
    publish_raw(&mut alice, "pings", "\"p1\"", "null").await;
    let got = notified(&mut bob, "publish", "pings", "\"ids\": [\"p1\"]").await;
    assert!(got.contains("\"text\": null"), "{got}");
    publish_raw(&mut alice, "pings", "\"p2\"", news).await;
    let got = notified(&mut bob, "publish", "pings", "\"ids\": [\"p2\"]").await;
    assert!(got.contains("\"text\": null"), "{got}");
    // Both kept: the empty one and the one with its payload.
    on(&mut bob, "items", "pings", "").await;
    let items = bob.latest("items");
    assert!(
        items.contains("\"ids\": [\"p1\", \"p2\"]") && items.contains("\"Flash\""),
        "{items}"
    );
    // `notify_retract` off: p1 goes quietly; p2's retraction, asked for, is announced, and
    // arrives after p1's would have.
    on(&mut alice, "retract_at", "pings", r#", "id": "p1""#).await;
    on(
        &mut alice,
        "retract_at",
        "pings",
        r#", "id": "p2", "notify": true"#,
    )
    .await;
    notified(&mut bob, "retract", "pings", "\"ids\": [\"p2\"]").await;
    assert!(!bob.seen(&["\"kind\": \"retract\"", "\"ids\": [\"p1\"]"]));
    for client in [alice, bob] {
        assert!(client.quit().await);
    }
}

/// The node fields Prosody or ejabberd offer beyond the rest: `notification_type` (the
/// messages' type), `max_payload_size` under the service's limit, and `subscribe` off.
async fn more_node_fields(server: &TestServer) {
    let mut alice = online(server, "alice").await;
    let mut bob = online(server, "bob").await;
    on(
        &mut alice,
        "create",
        "alerts",
        r#", "options": {"pubsub#notification_type": "normal", "pubsub#max_payload_size": "100"}"#,
    )
    .await;
    on(&mut bob, "subscribe", "alerts", "").await;
    let short = "\"<entry xmlns='urn:example:news'>Short</entry>\"";
    publish_raw(&mut alice, "alerts", "\"a1\"", short).await;
    let got = notified(&mut bob, "publish", "alerts", "\"ids\": [\"a1\"]").await;
    assert!(got.contains("\"type\": \"normal\""), "{got}");
    let long = format!(
        "\"<entry xmlns='urn:example:news'>{}</entry>\"",
        "x".repeat(100)
    );
    publish_raw(&mut alice, "alerts", "\"a2\"", &long).await;
    assert_refused(&alice, "publish_to", "not-acceptable", "payload-too-big");
    configure(&mut alice, "alerts", r#"{"pubsub#subscribe": "0"}"#).await;
    let mut carol = online(server, "carol").await;
    on(&mut carol, "subscribe", "alerts", "").await;
    assert_refused(
        &carol,
        "subscribe",
        "feature-not-implemented",
        "unsupported",
    );
    for client in [alice, bob, carol] {
        assert!(client.quit().await);
    }
}

/// A round trip on `client`'s stream: the server has handled everything it sent before
/// (a session's stanzas are handled in order) and it has read what came before the answer.
async fn round_trip(client: &mut SlixIm) {
    client
        .command(&format!(
            r#"{{"cmd": "my_subscriptions", "to": "{SERVICE}"}}"#
        ))
        .await;
}

/// ejabberd's `pubsub#presence_based_delivery`: notifications reach only available local
/// subscribers (not stored for an offline one either), while a node without it keeps
/// storing `normal` notifications for an offline subscriber as before.
async fn presence_based_delivery(server: &TestServer) {
    let mut alice = online(server, "alice").await;
    let mut bob = online(server, "bob").await;
    let mut carol = online(server, "carol").await;
    let normal = r#""pubsub#notification_type": "normal""#;
    on(
        &mut alice,
        "create",
        "present",
        &format!(r#", "options": {{"pubsub#presence_based_delivery": "1", {normal}}}"#),
    )
    .await;
    on(
        &mut alice,
        "create",
        "stored",
        &format!(r#", "options": {{{normal}}}"#),
    )
    .await;
    on(&mut alice, "node_config", "present", "").await;
    let config = alice.latest("node_config");
    assert!(
        config.contains("\"pubsub#presence_based_delivery\": \"1\""),
        "{config}"
    );
    // Bob's notifications carry a `<body/>`: what offline storage keeps (XEP-0160).
    for node in ["present", "stored"] {
        on(
            &mut bob,
            "subscribe",
            node,
            r#", "options": {"pubsub#include_body": "1"}"#,
        )
        .await;
        on(&mut carol, "subscribe", node, "").await;
    }
    let news = "\"<entry xmlns='urn:example:news'>Now</entry>\"";
    // Online: delivered.
    publish_raw(&mut alice, "present", "\"q1\"", news).await;
    notified(&mut bob, "publish", "present", "\"ids\": [\"q1\"]").await;
    // Connected but unavailable: Bob gets nothing; Carol, available, does.
    bob.command(r#"{"cmd": "unavailable"}"#).await;
    round_trip(&mut bob).await;
    publish_raw(&mut alice, "present", "\"q2\"", news).await;
    notified(&mut carol, "publish", "present", "\"ids\": [\"q2\"]").await;
    round_trip(&mut bob).await;
    assert!(!bob.seen(&["\"ids\": [\"q2\"]"]), "{:?}", bob.events);
    // Available again: the next publish reaches him.
    bob.command(r#"{"cmd": "available"}"#).await;
    publish_raw(&mut alice, "present", "\"q3\"", news).await;
    notified(&mut bob, "publish", "present", "\"ids\": [\"q3\"]").await;
    assert!(!bob.seen(&["\"ids\": [\"q2\"]"]), "{:?}", bob.events);
    // Disconnected: the node with the field sends him nothing to store; the one without
    // has his `normal` notification (with its body) kept offline as before, delivered
    // when he is back.
    assert!(bob.quit().await);
    publish_raw(&mut alice, "present", "\"q4\"", news).await;
    publish_raw(&mut alice, "stored", "\"s1\"", news).await;
    notified(&mut carol, "publish", "stored", "\"ids\": [\"s1\"]").await;
    let mut bob = online(server, "bob").await;
    notified(&mut bob, "publish", "stored", "\"ids\": [\"s1\"]").await;
    assert!(!bob.seen(&["\"ids\": [\"q4\"]"]), "{:?}", bob.events);
    for client in [alice, bob, carol] {
        assert!(client.quit().await);
    }
}

/// ejabberd's `pubsub#purge_offline`: when Alice goes offline (an unavailable broadcast,
/// or the end of her session) her items on such a node go, and subscribers hear of it as
/// of a retraction; Bob's items there stay, and so do hers on a node without the field.
async fn purge_offline(server: &TestServer) {
    let mut alice = online(server, "alice").await;
    let mut bob = online(server, "bob").await;
    let mut carol = online(server, "carol").await;
    on(
        &mut alice,
        "create",
        "board",
        r#", "options": {"pubsub#purge_offline": "1", "pubsub#max_items": "20"}"#,
    )
    .await;
    on(&mut alice, "create", "kept", "").await;
    on(&mut alice, "node_config", "board", "").await;
    let config = alice.latest("node_config");
    assert!(
        config.contains("\"pubsub#purge_offline\": \"1\""),
        "{config}"
    );
    // As a publish option it is a precondition like the others.
    on(
        &mut alice,
        "publish_to",
        "kept",
        r#", "id": "k0", "payload": "<entry xmlns='urn:example:news'>No</entry>", "options": {"pubsub#purge_offline": "1"}"#,
    )
    .await;
    assert_refused(&alice, "publish_to", "conflict", "precondition-not-met");
    on(
        &mut alice,
        "affiliate",
        "board",
        r#", "jid": "bob@localhost", "affiliation": "publisher""#,
    )
    .await;
    on(&mut carol, "subscribe", "board", "").await;
    let news = "\"<entry xmlns='urn:example:news'>Here</entry>\"";
    publish_raw(&mut alice, "board", "\"a1\"", news).await;
    publish_raw(&mut alice, "board", "\"a2\"", news).await;
    publish_raw(&mut bob, "board", "\"b1\"", news).await;
    publish_raw(&mut alice, "kept", "\"k1\"", news).await;
    notified(&mut carol, "publish", "board", "\"ids\": [\"b1\"]").await;
    // Alice says unavailable, still connected.
    alice.command(r#"{"cmd": "unavailable"}"#).await;
    let got = notified(&mut carol, "retract", "board", "\"a1\"").await;
    assert!(got.contains("\"a2\"") && !got.contains("\"b1\""), "{got}");
    on(&mut carol, "page", "board", r#", "max": 10"#).await;
    let page = carol.latest("page");
    assert!(page.contains("\"ids\": [\"b1\"]"), "{page}");
    on(&mut carol, "page", "kept", r#", "max": 10"#).await;
    let page = carol.latest("page");
    assert!(page.contains("\"ids\": [\"k1\"]"), "{page}");
    // Back online, she publishes again, then her session ends.
    alice.command(r#"{"cmd": "available"}"#).await;
    publish_raw(&mut alice, "board", "\"a3\"", news).await;
    notified(&mut carol, "publish", "board", "\"ids\": [\"a3\"]").await;
    assert!(alice.quit().await);
    notified(&mut carol, "retract", "board", "\"ids\": [\"a3\"]").await;
    on(&mut carol, "page", "board", r#", "max": 10"#).await;
    let page = carol.latest("page");
    assert!(page.contains("\"ids\": [\"b1\"]"), "{page}");
    // Turned off, the node keeps what she publishes when she goes.
    let mut alice = online(server, "alice").await;
    configure(&mut alice, "board", r#"{"pubsub#purge_offline": "0"}"#).await;
    publish_raw(&mut alice, "board", "\"a4\"", news).await;
    notified(&mut carol, "publish", "board", "\"ids\": [\"a4\"]").await;
    assert!(alice.quit().await);
    // Bob going offline: the node has no purge_offline now either, so a4 and b1 stay.
    assert!(bob.quit().await);
    round_trip(&mut carol).await;
    on(&mut carol, "page", "board", r#", "max": 10"#).await;
    let page = carol.latest("page");
    assert!(page.contains("\"ids\": [\"b1\", \"a4\"]"), "{page}");
    assert!(carol.quit().await);
}

/// The ids of `node`'s items as the database holds them (`db`: its URL), read beside the
/// server.
async fn stored_ids(db: &str, node: &str) -> Vec<String> {
    let sql = format!(
        "SELECT i.item_id FROM pubsub_items i JOIN pubsub_nodes n ON n.id = i.node_id \
         WHERE n.service = '{SERVICE}' AND n.node = '{node}' ORDER BY i.item_id"
    );
    if db.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(db).await.unwrap();
        sqlx::query_scalar(&sql).fetch_all(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
        sqlx::query_scalar(&sql).fetch_all(&mut conn).await.unwrap()
    }
}

/// `pubsub#item_expire` (§16.4.3): once older than its node's expiry an item is gone from
/// retrieval and its pages, from the last item a new subscriber gets, and from the database
/// (a read that meets it removes it); a fresher item stays. A node nobody touches keeps
/// its expired item until the sweep at the next start (`it_survives`).
async fn items_expire(server: &TestServer, db: &str) {
    let mut alice = online(server, "alice").await;
    let mut bob = online(server, "bob").await;
    let mut carol = online(server, "carol").await;
    let expiring = r#"{"pubsub#item_expire": "2", "pubsub#send_last_published_item": "on_sub"}"#;
    for node in ["brief", "untouched"] {
        on(
            &mut alice,
            "create",
            node,
            &format!(r#", "options": {expiring}"#),
        )
        .await;
    }
    on(&mut alice, "node_config", "brief", "").await;
    let config = alice.latest("node_config");
    assert!(config.contains("\"pubsub#item_expire\": \"2\""), "{config}");
    // Anything but seconds, `max` or nothing is refused.
    configure(&mut alice, "brief", r#"{"pubsub#item_expire": "soon"}"#).await;
    let err = iq_error(&alice, "configure_at");
    assert!(err.contains("\"condition\": \"not-acceptable\""), "{err}");
    let news = "\"<entry xmlns='urn:example:news'>Soon gone</entry>\"";
    publish_raw(&mut alice, "brief", "\"old\"", news).await;
    publish_raw(&mut alice, "untouched", "\"u1\"", news).await;
    // Before its time: retrieved, and sent to a new subscriber as the last item.
    on(&mut bob, "items", "brief", "").await;
    let items = bob.latest("items");
    assert!(items.contains("\"ids\": [\"old\"]"), "{items}");
    on(&mut bob, "subscribe", "brief", "").await;
    let last = notified(&mut bob, "publish", "brief", "\"ids\": [\"old\"]").await;
    assert!(last.contains("\"delayed\": true"), "{last}");
    // Expiry is time: 2 seconds, and one more that whole-second stamps may round off.
    tokio::time::sleep(Duration::from_secs(3)).await;
    on(&mut bob, "items", "brief", "").await;
    let items = bob.latest("items");
    assert!(items.contains("\"ids\": []"), "{items}");
    assert!(stored_ids(db, "brief").await.is_empty());
    // A new subscriber gets no last item: the first it hears of is the next one.
    on(&mut carol, "subscribe", "brief", "").await;
    publish_raw(&mut alice, "brief", "\"fresh\"", news).await;
    notified(&mut carol, "publish", "brief", "\"ids\": [\"fresh\"]").await;
    assert!(!carol.seen(&["\"ids\": [\"old\"]"]), "{:?}", carol.events);
    on(&mut carol, "page", "brief", r#", "max": 10"#).await;
    let page = carol.latest("page");
    assert!(
        page.contains("\"ids\": [\"fresh\"]") && page.contains("\"count\": \"1\""),
        "{page}"
    );
    // Nobody read the other node: its expired item is still in the database.
    assert_eq!(stored_ids(db, "untouched").await, ["u1"]);
    for client in [alice, bob, carol] {
        assert!(client.quit().await);
    }
}

/// After a restart the node, its item, affiliations and subscriptions are still there;
/// the expired item nobody read went at start.
async fn it_survives(server: &TestServer, db: &str) {
    assert!(stored_ids(db, "untouched").await.is_empty());
    let mut carol = online(server, "carol").await;
    carol
        .command(&format!(
            r#"{{"cmd": "my_subscriptions", "to": "{SERVICE}"}}"#
        ))
        .await;
    assert!(carol.latest("my_subscriptions").contains("\"news\""));
    carol
        .command(&format!(
            r#"{{"cmd": "page", "to": "{SERVICE}", "node": "news", "max": 10}}"#
        ))
        .await;
    assert!(
        carol.latest("page").contains("\"ids\": [\"e5\"]"),
        "{}",
        carol.latest("page")
    );
    let mut alice = online(server, "alice").await;
    on_news(&mut alice, "affiliations", "").await;
    let list = alice.latest("affiliations");
    assert!(
        list.contains("[\"mallory@localhost\", \"outcast\"]"),
        "{list}"
    );
    alice.command(&entry("e6", "Still here")).await;
    notified(&mut carol, "publish", "news", "\"ids\": [\"e6\"]").await;
    assert!(carol.quit().await);
    assert!(alice.quit().await);
}

fn add_users(server: &TestServer) {
    for user in ["alice", "bob", "carol", "mallory"] {
        server.add_user(&format!("{user}@localhost"), &format!("pw-{user}"));
    }
}

#[tokio::test]
async fn a_node_on_the_service_works_and_survives_a_restart_on_sqlite() {
    let mut server = TestServer::start_with(TestConfig::default());
    let db = format!("sqlite:{}", server.db_path().display());
    add_users(&server);
    the_service_works(&server).await;
    event_types(&server).await;
    more_node_fields(&server).await;
    presence_based_delivery(&server).await;
    purge_offline(&server).await;
    items_expire(&server, &db).await;
    server.terminate();
    server.restart();
    it_survives(&server, &db).await;
}

#[tokio::test]
async fn a_node_on_the_service_works_and_survives_a_restart_on_postgresql() {
    let db = Scratch::create().await;
    let mut server = TestServer::start_with(TestConfig::default().storage(&db.url()));
    add_users(&server);
    the_service_works(&server).await;
    event_types(&server).await;
    more_node_fields(&server).await;
    presence_based_delivery(&server).await;
    purge_offline(&server).await;
    items_expire(&server, &db.url()).await;
    server.terminate();
    server.restart();
    it_survives(&server, &db.url()).await;
    server.kill();
    db.drop_now().await;
}
