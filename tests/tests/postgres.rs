//! The same server core on PostgreSQL: accounts created by the CLI live in PostgreSQL, and a
//! standard client and a Flash client log in and talk; two servers sharing one database
//! each clean up only the guests they left behind. Uses the machine's PostgreSQL
//! (`JABBERWOCK_TEST_POSTGRES`, default postgres://postgres@127.0.0.1/test) and a fresh
//! database per run, dropped afterwards.

use jabberwock_tests::postgres::Scratch;
use jabberwock_tests::raw::FLASH_HEADER;
use jabberwock_tests::slix::Slix;
use jabberwock_tests::{RawClient, TestConfig, TestServer};
use sqlx::Connection;

#[tokio::test]
async fn accounts_in_postgres_serve_standard_and_flash_clients() {
    let db = Scratch::create().await;
    let server = TestServer::start_with(TestConfig::default().storage(&db.url()));
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");

    // The credentials are in PostgreSQL, not in a SQLite file.
    let mut pg = sqlx::PgConnection::connect(&db.url())
        .await
        .expect("connect");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM scram_credentials")
        .fetch_one(&mut pg)
        .await
        .expect("count credentials");
    assert_eq!(count, 4, "two accounts × (SHA-1, SHA-256)");
    assert!(
        !server.db_path().exists(),
        "no SQLite file when PostgreSQL is configured"
    );

    let (mut flash, _) = RawClient::login_flash(server.c2s, "alice", "wonderland", "xiff").await;
    let mut slix = Slix::login(
        &server,
        "bob@localhost/pg",
        "builder",
        "SCRAM-SHA-1",
        &[
            "--send-to",
            "alice@localhost/xiff",
            "--body",
            "stored in postgres",
        ],
    );
    slix.expect("session_start").await;
    let message = flash.read_until("</message>").await;
    assert!(
        message.contains("stored in postgres") && message.contains("from=\"bob@localhost/pg\""),
        "{message}"
    );
    assert!(slix.finish().await);

    drop(server);
    pg.close().await.ok();
    db.drop_now().await;
}

const SASL_NS: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

/// An ANONYMOUS guest on a Flash stream, bound and available; returns its bare JID's node.
async fn guest_login(server: &TestServer) -> (RawClient, String) {
    let mut c = RawClient::connect(server.c2s).await;
    c.send(FLASH_HEADER).await;
    c.read_unit().await;
    let features = c.read_unit().await;
    assert!(features.contains(">ANONYMOUS<"), "{features}");
    c.send(format!(
        "<auth mechanism=\"ANONYMOUS\" xmlns=\"{SASL_NS}\"/>\0"
    ))
    .await;
    assert_eq!(
        c.read_unit().await,
        format!("<success xmlns=\"{SASL_NS}\"/>")
    );
    c.send(FLASH_HEADER).await;
    c.read_unit().await;
    c.send("<iq type=\"set\" id=\"bind_1\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><resource>xiff</resource></bind></iq>\0")
        .await;
    let bound = c.read_stanza_containing("id=\"bind_1\"").await;
    let node = bound
        .split("<jid>")
        .nth(1)
        .and_then(|r| r.split('@').next())
        .unwrap_or_else(|| panic!("no jid in {bound}"))
        .to_owned();
    c.send("<presence/>\0").await;
    c.ping("after_presence", "\0").await;
    (c, node)
}

async fn account_exists(pg: &mut sqlx::PgConnection, node: &str) -> bool {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM accounts WHERE username = $1")
        .bind(node)
        .fetch_optional(pg)
        .await
        .expect("query accounts");
    found.is_some()
}

/// Two server nodes on one database: a node's start-up sweep of leftover guests must not
/// take the live guests of another node, and a node restarted after a crash must still
/// sweep its own (its id is kept in its data directory).
#[tokio::test]
async fn each_node_sweeps_only_its_own_leftover_guests() {
    let db = Scratch::create().await;
    let config = || {
        TestConfig::default()
            .storage(&db.url())
            .host("localhost", "anonymous = true")
    };
    let mut a = TestServer::start_with(config());
    a.wait_started();
    let (mut guest_a, node_a) = guest_login(&a).await;
    let mut pg = sqlx::PgConnection::connect(&db.url())
        .await
        .expect("connect");
    assert!(account_exists(&mut pg, &node_a).await);

    // B starts on the same database: A's guest is live, not a leftover of B's.
    let b = TestServer::start_with(config());
    b.wait_started();
    assert!(account_exists(&mut pg, &node_a).await, "{}", b.log_text());
    assert!(!b
        .log_text()
        .contains("removed guests left by an unclean stop"));
    guest_a.ping("after_b_started", "\0").await;
    let (mut guest_b, node_b) = guest_login(&b).await;

    // A crashes with its guest logged in; restarted, it removes that guest, and only it.
    a.kill();
    drop(guest_a);
    assert!(account_exists(&mut pg, &node_a).await);
    a.restart();
    assert!(
        a.wait_log("removed guests left by an unclean stop"),
        "{}",
        a.log_text()
    );
    assert!(!account_exists(&mut pg, &node_a).await);
    assert!(account_exists(&mut pg, &node_b).await);
    guest_b.ping("after_a_restarted", "\0").await;

    // B's guest leaves normally: its row goes with it.
    drop(guest_b);
    let mut gone = false;
    for _ in 0..100 {
        if !account_exists(&mut pg, &node_b).await {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(gone, "{}", b.log_text());

    drop((a, b));
    pg.close().await.ok();
    db.drop_now().await;
}
