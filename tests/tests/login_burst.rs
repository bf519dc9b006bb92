//! What a login is owed arrives whole (RFC 6121 §4.2.2, §3.1.3, XEP-0160 §4): the presence
//! of every online contact the user is subscribed to, every subscription request that waited,
//! and the entire offline backlog in order, however many there are. Counts are above the
//! per-session inbox depth (256), so nothing may depend on that inbox to carry them.

mod im_support;

use std::collections::BTreeSet;
use std::str::FromStr;

use futures::future::join_all;
use im_support::attr;
use jabberwock_tests::{RawClient, TestConfig, TestServer};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

const PASSWORD: &str = "pw-burst";
const CONTACTS: usize = 300;
const OFFLINE: usize = 300;

fn contact(i: usize) -> String {
    format!("c{i}")
}

/// Creates `names`@localhost with the credentials of `template`@localhost, straight in the
/// server's SQLite file: one password hash computed once instead of hundreds of times.
async fn clone_accounts(server: &TestServer, template: &str, names: &[String]) {
    let options =
        SqliteConnectOptions::from_str(&format!("sqlite://{}", server.db_path().display()))
            .expect("sqlite url");
    let mut db = SqliteConnection::connect_with(&options)
        .await
        .expect("open the server's database");
    let mut tx = db.begin().await.expect("begin");
    for name in names {
        sqlx::query(
            "INSERT INTO accounts (username, domain, created_at) \
             VALUES (?, 'localhost', CAST(strftime('%s', 'now') AS INTEGER))",
        )
        .bind(name)
        .execute(&mut *tx)
        .await
        .expect("insert account");
        sqlx::query(
            "INSERT INTO scram_credentials \
             (account_id, hash, salt, iterations, stored_key, server_key) \
             SELECT (SELECT id FROM accounts WHERE domain = 'localhost' AND username = ?), \
                    hash, salt, iterations, stored_key, server_key \
             FROM scram_credentials WHERE account_id = \
               (SELECT id FROM accounts WHERE domain = 'localhost' AND username = ?)",
        )
        .bind(name)
        .bind(template)
        .execute(&mut *tx)
        .await
        .expect("copy credentials");
    }
    tx.commit().await.expect("commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_gets_every_presence_pending_request_and_offline_message() {
    let server = TestServer::start_with(
        TestConfig::default().section("offline", &format!("max_messages = {}", OFFLINE + 10)),
    );
    server.wait_started();
    server.add_user("alice@localhost", PASSWORD);
    server.add_user("c0@localhost", PASSWORD);
    let names: Vec<String> = (0..CONTACTS).map(contact).collect();
    clone_accounts(&server, "c0", &names[1..]).await;
    let cert = server.cert_path();

    // Every contact online.
    let mut contacts = Vec::new();
    for chunk in names.chunks(20) {
        let logins = chunk.iter().map(|name| {
            let cert = cert.clone();
            let c2s = server.c2s;
            async move {
                RawClient::login_standard(c2s, &cert, name, PASSWORD, "res")
                    .await
                    .0
            }
        });
        contacts.extend(join_all(logins).await);
    }

    // Alice, bound but not available (so nothing is pushed to her), asks each for presence.
    let (mut alice, _) =
        RawClient::login_standard_no_presence(server.c2s, &cert, "alice", PASSWORD, "setup").await;
    for name in &names {
        alice
            .send(format!(
                "<presence type='subscribe' to='{name}@localhost'/>"
            ))
            .await;
    }
    alice.until_pong("setup-done").await;
    alice.send("</stream:stream>").await;
    alice.read_to_close().await;

    // Each contact approves, and asks for alice's presence in return while she is away.
    join_all(contacts.iter_mut().enumerate().map(|(i, c)| async move {
        c.send(
            "<presence type='subscribed' to='alice@localhost'/>\
             <presence type='subscribe' to='alice@localhost'/>",
        )
        .await;
        c.until_pong(&format!("ask-{i}")).await;
    }))
    .await;
    // And one of them leaves a backlog.
    for n in 0..OFFLINE {
        contacts[0]
            .send(format!(
                "<message type='chat' to='alice@localhost' id='m{n}'><body>{n}</body></message>"
            ))
            .await;
    }
    let before = contacts[0].until_pong("backlog").await;
    assert!(!before.contains("type=\"error\""), "{before}");

    let (mut alice, jid) =
        RawClient::login_standard_no_presence(server.c2s, &cert, "alice", PASSWORD, "desk").await;
    alice.send("<presence/>").await;
    let mut available = BTreeSet::new();
    let mut requests = BTreeSet::new();
    let mut messages = Vec::new();
    let mut echo = false;
    while available.len() < CONTACTS
        || requests.len() < CONTACTS
        || messages.len() < OFFLINE
        || !echo
    {
        let stanza = alice.read_stanza().await;
        let from = attr(&stanza, "from").unwrap_or_default();
        if stanza.starts_with("<message") {
            messages.push(attr(&stanza, "id").unwrap_or_default());
        } else if stanza.starts_with("<presence") {
            match attr(&stanza, "type").as_deref() {
                None if from == jid => echo = true,
                None => assert!(available.insert(from.clone()), "twice: {stanza}"),
                Some("subscribe") => assert!(requests.insert(from.clone()), "twice: {stanza}"),
                _ => panic!("unexpected: {stanza}"),
            }
        } else {
            panic!("unexpected: {stanza}");
        }
    }
    let expected: Vec<String> = (0..OFFLINE).map(|n| format!("m{n}")).collect();
    assert_eq!(messages, expected, "offline messages out of order");
    assert_eq!(
        available,
        names.iter().map(|n| format!("{n}@localhost/res")).collect()
    );
    assert_eq!(
        requests,
        names.iter().map(|n| format!("{n}@localhost")).collect()
    );
    // Delivered means gone (XEP-0160 §4): a ping answers, nothing else was left to send.
    let rest = alice.until_pong("after").await;
    assert!(!rest.contains("<message"), "{rest}");
}
