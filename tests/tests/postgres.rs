//! The same server core on PostgreSQL: accounts created by the CLI live in PostgreSQL, and a
//! standard client and a Flash client log in and talk. Uses the machine's PostgreSQL
//! (`JABBERWOCK_TEST_POSTGRES`, default postgres://postgres@127.0.0.1/test) and a fresh
//! database per run, dropped afterwards.

use std::time::{SystemTime, UNIX_EPOCH};

use jabberwock_tests::slix::Slix;
use jabberwock_tests::{RawClient, TestConfig, TestServer};
use sqlx::Connection;

fn admin_url() -> String {
    std::env::var("JABBERWOCK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1/test".into())
}

/// A database of our own, so parallel runs and other tests can't collide.
struct Scratch {
    name: String,
}

impl Scratch {
    async fn create() -> Scratch {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("jw_e2e_{}_{nanos}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&admin_url())
            .await
            .expect("PostgreSQL must be running for this test (see README, Tests)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create database");
        Scratch { name }
    }

    fn url(&self) -> String {
        let admin = admin_url();
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin)
            .to_owned();
        format!("{base}/{}", self.name)
    }

    async fn drop_now(self) {
        let mut admin = sqlx::PgConnection::connect(&admin_url())
            .await
            .expect("connect");
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await
        .expect("drop database");
    }
}

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
    let port = server.c2s.port().to_string();
    let cert = server.cert_path();
    let mut slix = Slix::spawn(&[
        "--jid",
        "bob@localhost/pg",
        "--password",
        "builder",
        "--port",
        &port,
        "--cafile",
        cert.to_str().unwrap(),
        "--mechanism",
        "SCRAM-SHA-1",
        "--send-to",
        "alice@localhost/xiff",
        "--body",
        "stored in postgres",
    ]);
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
