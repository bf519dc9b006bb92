//! RFC 6121 §2.3 and §2.5: roster set and remove by a client — names and groups kept and
//! pushed, the per-user item limit (`[roster] max_items`), and the removal errors.

mod im_support;

use im_support::{item_for, pushes, Peer};
use jabberwock_tests::{TestConfig, TestServer};

fn add(jid: &str, name: &str, groups: &[&str]) -> String {
    let groups: String = groups
        .iter()
        .map(|g| format!("<group>{g}</group>"))
        .collect();
    format!("<iq type='set' id='{{id}}'><query xmlns='jabber:iq:roster'><item jid='{jid}' name='{name}'>{groups}</item></query></iq>")
}

fn remove(jid: &str) -> String {
    format!("<iq type='set' id='{{id}}'><query xmlns='jabber:iq:roster'><item jid='{jid}' subscription='remove'/></query></iq>")
}

#[tokio::test]
async fn items_keep_names_and_groups_and_the_limit_holds() {
    let server = TestServer::start_with(TestConfig::default().section("roster", "max_items = 2"));
    server.add_user("alice@localhost", "pw-desk");
    let mut alice = Peer::login(server.c2s, &server.cert_path(), "alice", "pw-desk", "desk").await;
    alice.roster().await;

    let (result, before) = alice
        .iq(&add("bob@localhost", "Bob", &["Friends", "Work"]))
        .await;
    assert!(result.contains("type=\"result\""), "{result}");
    let push = pushes(&before);
    let push = push.first().expect("a roster push");
    let item = item_for(push, "bob@localhost").expect("bob in the push");
    assert!(
        item.contains("name=\"Bob\"") && item.contains("subscription=\"none\""),
        "{item}"
    );
    assert!(
        push.contains("<group>Friends</group><group>Work</group>"),
        "{push}"
    );

    let (result, _) = alice.iq(&add("carol@localhost", "", &[])).await;
    assert!(result.contains("type=\"result\""), "{result}");

    // §2.3.3: the third item is over the limit.
    let (refused, before) = alice.iq(&add("dave@localhost", "Dave", &[])).await;
    assert!(
        refused.contains("type=\"error\"")
            && refused.contains("<not-allowed xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"),
        "{refused}"
    );
    assert!(
        pushes(&before).is_empty(),
        "no push for a refused item: {before:?}"
    );

    // Updating an existing item is not adding one.
    let (result, before) = alice.iq(&add("bob@localhost", "Robert", &["Work"])).await;
    assert!(result.contains("type=\"result\""), "{result}");
    let push = pushes(&before)[0];
    let item = item_for(push, "bob@localhost").unwrap();
    assert!(item.contains("name=\"Robert\""), "{item}");
    assert!(
        push.contains("<group>Work</group>") && !push.contains("Friends"),
        "{push}"
    );

    // Removing makes room again; the push says `remove`.
    let (result, before) = alice.iq(&remove("carol@localhost")).await;
    assert!(result.contains("type=\"result\""), "{result}");
    let item = item_for(pushes(&before)[0], "carol@localhost").unwrap();
    assert!(item.contains("subscription=\"remove\""), "{item}");
    let (result, _) = alice.iq(&add("dave@localhost", "Dave", &[])).await;
    assert!(result.contains("type=\"result\""), "{result}");

    let (roster, _) = alice.roster().await;
    assert!(
        item_for(&roster, "bob@localhost").is_some_and(|i| i.contains("Robert")),
        "{roster}"
    );
    assert!(item_for(&roster, "dave@localhost").is_some(), "{roster}");
    assert!(item_for(&roster, "carol@localhost").is_none(), "{roster}");

    // §2.5.3: removing an item that isn't there.
    let (missing, _) = alice.iq(&remove("nobody@localhost")).await;
    assert!(
        missing.contains("type=\"error\"")
            && missing.contains("<item-not-found xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"),
        "{missing}"
    );
}

/// RFC 6121 §2.3.3: an item over the size bounds (name, group name, number of groups) is
/// refused with not-acceptable, and nothing of it is stored or pushed.
#[tokio::test]
async fn oversized_items_are_not_acceptable() {
    let server = TestServer::start();
    server.wait_started();
    server.add_user("alice@localhost", "pw-alice");
    let mut alice = Peer::login(server.c2s, &server.cert_path(), "alice", "pw-alice", "desk").await;
    alice.roster().await;
    let long = "n".repeat(1025);
    let many: Vec<String> = (0..65).map(|i| format!("g{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    for (what, iq) in [
        ("name", add("bob@localhost", &long, &[])),
        ("group name", add("bob@localhost", "Bob", &[&long])),
        ("65 groups", add("bob@localhost", "Bob", &many)),
    ] {
        let (refused, before) = alice.iq(&iq).await;
        assert!(
            refused.contains("type=\"error\"")
                && refused
                    .contains("<not-acceptable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"),
            "{what}: {refused}"
        );
        assert!(pushes(&before).is_empty(), "{what}: {before:?}");
    }
    // At the bounds, it is kept.
    let (result, _) = alice
        .iq(&add("bob@localhost", &"n".repeat(1024), &many[..64]))
        .await;
    assert!(result.contains("type=\"result\""), "{result}");
    let (roster, _) = alice.roster().await;
    let item = item_for(&roster, "bob@localhost").expect("bob kept");
    assert!(item.contains("name=\"n"), "{item}");
    assert_eq!(roster.matches("<group>").count(), 64, "{roster}");
}
