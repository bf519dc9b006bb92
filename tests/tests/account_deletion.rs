//! Account deletion removes the user's roster, subscriptions (notifying
//! contacts) and offline messages, both in-band (XEP-0077 §3.2 `<remove/>`) and through the
//! admin CLI (`jabberwock user remove`) while the server runs.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jabberwock_tests::{RawClient, TestServer};

const QUIET: Duration = Duration::from_secs(1);

fn server_with_users() -> TestServer {
    let server = TestServer::start();
    // Not before the server's own migrations are done.
    server.wait_started();
    server.add_user("alice@localhost", "pw-a");
    server.add_user("bob@localhost", "pw-b");
    server
}

async fn login(server: &TestServer, user: &str, password: &str, resource: &str) -> RawClient {
    let (c, jid) =
        RawClient::login_standard(server.c2s, &server.cert_path(), user, password, resource).await;
    assert_eq!(jid, format!("{user}@localhost/{resource}"));
    c
}

/// Rows in `table` (all accounts), read straight from the server's SQLite file.
async fn count_rows(server: &TestServer, table: &str) -> i64 {
    let mut db = server.read_db().await;
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut db)
        .await
        .expect("count rows")
}

/// Rows that belong to `user`@localhost: its roster entries and offline messages.
async fn rows_of(server: &TestServer, user: &str) -> (i64, i64) {
    let mut db = server.read_db().await;
    let mut counts = Vec::new();
    for table in ["roster_entries", "offline_messages"] {
        let sql = format!(
            "SELECT COUNT(*) FROM {table} t JOIN accounts a ON a.id = t.account_id \
             WHERE a.username = ? AND a.domain = 'localhost'"
        );
        let n: i64 = sqlx::query_scalar(&sql)
            .bind(user)
            .fetch_one(&mut db)
            .await
            .expect("count rows");
        counts.push(n);
    }
    let (roster, offline) = (counts[0], counts[1]);
    (roster, offline)
}

async fn roster_get(c: &mut RawClient, id: &str) -> String {
    c.send(format!(
        "<iq type='get' id='{id}'><query xmlns='jabber:iq:roster'/></iq>"
    ))
    .await;
    let result = c.read_stanza_containing(&format!("id=\"{id}\"")).await;
    assert!(result.contains("type=\"result\""), "{result}");
    result
}

/// The `<item/>` for `jid` in a roster result or push, if any.
fn item_for<'a>(stanza: &'a str, jid: &str) -> Option<&'a str> {
    stanza
        .split("<item ")
        .skip(1)
        .find(|item| {
            item.starts_with(&format!("jid=\"{jid}\"")) || item.contains(&format!(" jid=\"{jid}\""))
        })
        .map(|item| item.split('>').next().unwrap())
}

/// Skips stanzas until a roster push whose item for `jid` has `subscription`.
async fn push_with(c: &mut RawClient, jid: &str, subscription: &str) -> String {
    loop {
        let push = c
            .read_stanza_containing("<query xmlns=\"jabber:iq:roster\"")
            .await;
        if item_for(&push, jid)
            .is_some_and(|i| i.contains(&format!("subscription=\"{subscription}\"")))
        {
            return push;
        }
    }
}

/// Alice and Bob subscribe to each other (RFC 6121 §3.1), both interested in their
/// rosters, ending with `both` on each side.
async fn subscribe_both_ways(alice: &mut RawClient, bob: &mut RawClient) {
    roster_get(alice, "ra").await;
    roster_get(bob, "rb").await;
    alice
        .send("<presence to='bob@localhost' type='subscribe'/>")
        .await;
    bob.read_stanza_containing("type=\"subscribe\"").await;
    bob.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    push_with(alice, "bob@localhost", "to").await;
    bob.send("<presence to='alice@localhost' type='subscribe'/>")
        .await;
    alice.read_stanza_containing("type=\"subscribe\"").await;
    alice
        .send("<presence to='bob@localhost' type='subscribed'/>")
        .await;
    push_with(alice, "bob@localhost", "both").await;
    push_with(bob, "alice@localhost", "both").await;
}

/// Bob sends `n` chat messages to alice's bare JID and checks none bounced (the pong after
/// them means they were handled: stanzas of one stream are processed in order).
async fn store_for_alice(bob: &mut RawClient, n: usize) {
    for i in 1..=n {
        bob.send(format!(
            "<message type='chat' to='alice@localhost' id='off{i}'><body>kept {i}</body></message>"
        ))
        .await;
    }
    bob.send("<iq type='get' id='stored' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let before = bob.read_until("id=\"stored\"").await;
    bob.read_until(">").await;
    assert!(!before.contains("type=\"error\""), "{before}");
}

/// SASL PLAIN must now fail with not-authorized (RFC 6120 §6.5.10).
async fn login_refused(server: &TestServer, user: &str, password: &str) {
    let (mut c, _) = RawClient::starttls_stream(server.c2s, &server.cert_path()).await;
    let token = B64.encode(format!("\0{user}\0{password}"));
    c.send(format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
    ))
    .await;
    let answer = c.read_stanza().await;
    assert!(
        answer.starts_with("<failure") && answer.contains("<not-authorized/>"),
        "{user} could still log in: {answer}"
    );
}

#[tokio::test]
async fn in_band_removal_notifies_contacts_and_deletes_roster_and_offline_messages() {
    let server = server_with_users();
    let mut alice = login(&server, "alice", "pw-a", "desk").await;
    let mut bob = login(&server, "bob", "pw-b", "home").await;
    subscribe_both_ways(&mut alice, &mut bob).await;

    // Offline messages while alice is still online: her only resource goes negative, so
    // bare-JID messages are kept for her (XEP-0160 §3) and bob still sees her available.
    alice
        .send("<presence id='neg'><priority>-1</priority></presence>")
        .await;
    bob.read_stanza_containing("<priority>-1</priority>").await;
    store_for_alice(&mut bob, 2).await;
    assert_eq!(rows_of(&server, "alice").await, (1, 2));

    // XEP-0077 §3.2: the result, then the stream is closed with not-authorized.
    alice
        .send("<iq type='set' id='unreg'><query xmlns='jabber:iq:register'><remove/></query></iq>")
        .await;
    let result = alice.read_stanza_containing("id=\"unreg\"").await;
    assert!(result.contains("type=\"result\""), "{result}");
    let tail = alice.read_to_close().await;
    assert!(
        tail.contains(
            "<stream:error><not-authorized xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"
        ),
        "{tail}"
    );
    assert!(tail.contains("</stream:stream>"), "{tail}");
    assert!(
        !tail.contains("<message"),
        "the kept messages were delivered: {tail}"
    );

    // Bob: alice's item is pushed with subscription none (RFC 6121 §3.2.2, §3.3.2), and he
    // sees her go unavailable.
    // (Which comes first is the server's business: RFC 6121 §3.2.2 has the unavailable
    // presence go before the unsubscribed that ends bob's subscription.)
    let mut seen = Vec::new();
    let push = loop {
        let stanza = bob.read_stanza().await;
        if item_for(&stanza, "alice@localhost").is_some_and(|i| i.contains("subscription=\"none\""))
        {
            break stanza;
        }
        seen.push(stanza);
    };
    assert!(
        push.starts_with("<iq") && push.contains("type=\"set\""),
        "{push}"
    );
    assert!(!push.contains("ask="), "{push}");
    let unavailable = |s: &String| {
        s.starts_with("<presence")
            && s.contains("type=\"unavailable\"")
            && s.contains("from=\"alice@localhost/desk\"")
    };
    if !seen.iter().any(unavailable) {
        let late = bob.read_stanza_containing("type=\"unavailable\"").await;
        assert!(unavailable(&late), "{late}; before the push: {seen:?}");
    }
    let roster = roster_get(&mut bob, "after").await;
    let item = item_for(&roster, "alice@localhost").expect("alice stays in bob's roster");
    assert!(item.contains("subscription=\"none\""), "{roster}");
    assert!(!item.contains("ask="), "{roster}");

    // The account is gone, and everything stored for it.
    login_refused(&server, "alice", "pw-a").await;
    assert_eq!(rows_of(&server, "alice").await, (0, 0));
    assert_eq!(count_rows(&server, "offline_messages").await, 0);
    // No orphans either: the one roster row left is bob's item for alice.
    assert_eq!(count_rows(&server, "roster_entries").await, 1);

    // A new account with the same name starts empty.
    server.add_user("alice@localhost", "pw-a2");
    let mut alice = login(&server, "alice", "pw-a2", "desk").await;
    let roster = roster_get(&mut alice, "fresh").await;
    assert!(!roster.contains("<item"), "{roster}");
    let got = alice.read_for(QUIET).await;
    assert!(!got.contains("<message"), "old offline messages: {got}");
    // Nor does bob's presence reach her: there is no subscription any more.
    assert!(!got.contains("from=\"bob@localhost"), "{got}");
}

#[tokio::test]
async fn cli_removal_ends_subscriptions_and_deletes_offline_messages() {
    let server = server_with_users();
    let mut alice = login(&server, "alice", "pw-a", "desk").await;
    let mut bob = login(&server, "bob", "pw-b", "home").await;
    subscribe_both_ways(&mut alice, &mut bob).await;
    alice
        .send("<presence type='unavailable'/></stream:stream>")
        .await;
    alice.read_to_close().await;
    bob.read_stanza_containing("type=\"unavailable\"").await;
    store_for_alice(&mut bob, 3).await;
    assert_eq!(rows_of(&server, "alice").await, (1, 3));
    drop(bob);

    server.remove_user("alice@localhost");

    // Bob's roster, fetched afterwards, shows no subscription either way.
    let mut bob = login(&server, "bob", "pw-b", "home").await;
    let roster = roster_get(&mut bob, "after").await;
    if let Some(item) = item_for(&roster, "alice@localhost") {
        assert!(item.contains("subscription=\"none\""), "{roster}");
        assert!(!item.contains("ask="), "{roster}");
    }
    assert_eq!(rows_of(&server, "alice").await, (0, 0));
    assert_eq!(count_rows(&server, "offline_messages").await, 0);
    // No orphans either: the one roster row left is bob's item for alice.
    assert_eq!(count_rows(&server, "roster_entries").await, 1);
    login_refused(&server, "alice", "pw-a").await;

    server.add_user("alice@localhost", "pw-a2");
    let mut alice = login(&server, "alice", "pw-a2", "desk").await;
    let roster = roster_get(&mut alice, "fresh").await;
    assert!(!roster.contains("<item"), "{roster}");
    let got = alice.read_for(QUIET).await;
    assert!(!got.contains("<message"), "old offline messages: {got}");
}
