//! What a login costs the database: with a big roster, the initial presence reads the
//! roster and the offline flag once and asks once which contacts share their presence with
//! the user (RFC 6121 §4.3 probes), instead of one read per contact. Counted from the
//! statements sqlx logs at debug level (target `sqlx::query`).

mod im_support;

use im_support::Peer;
use jabberwock_tests::{TestConfig, TestServer};
use sqlx::Connection as _;

const CONTACTS: usize = 200;

#[tokio::test]
async fn initial_presence_with_200_contacts_runs_a_few_statements() {
    let server = TestServer::start_with(TestConfig::default().log_level("info,sqlx::query=debug"));
    server.wait_started();
    server.add_user("alice@localhost", "pw-alice");
    // 200 local contacts in mutual subscription with alice, written straight into the
    // database (as many logins and subscription handshakes would leave them).
    let url = format!("sqlite:{}", server.db_path().display());
    let mut db = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("open db");
    let mut tx = db.begin().await.expect("begin");
    for i in 0..CONTACTS {
        sqlx::query(
            "INSERT INTO accounts (username, domain, created_at) VALUES (?, 'localhost', 0)",
        )
        .bind(format!("c{i}"))
        .execute(&mut *tx)
        .await
        .expect("contact account");
        for (owner, contact) in [
            ("alice".to_owned(), format!("c{i}@localhost")),
            (format!("c{i}"), "alice@localhost".to_owned()),
        ] {
            sqlx::query(
                "INSERT INTO roster_entries (account_id, contact, subscription, pending_out, \
                 pending_in, approved, in_roster) SELECT id, ?, 'both', 0, 0, 0, 1 \
                 FROM accounts WHERE username = ? AND domain = 'localhost'",
            )
            .bind(contact)
            .bind(owner)
            .execute(&mut *tx)
            .await
            .expect("roster entry");
        }
    }
    tx.commit().await.expect("commit");
    db.close().await.expect("close db");

    // Another account's login first: what a login reads once for the whole host (the
    // message of the day) is not alice's cost.
    server.add_user("bob@localhost", "pw-bob");
    let mut bob = Peer::login(server.c2s, &server.cert_path(), "bob", "pw-bob", "desk").await;
    bob.sync().await;

    let mut alice = Peer::login(server.c2s, &server.cert_path(), "alice", "pw-alice", "desk").await;
    // The session handles the presence to its end before the ping.
    alice.sync().await;
    alice.send("</stream:stream>").await;
    assert!(
        server.wait_log("session ended jid=alice@localhost/desk"),
        "{}",
        server.log_text()
    );

    let log = server.log_text();
    let from = log
        .find("resource bound jid=alice@localhost/desk")
        .expect("alice bound");
    let to = from + log[from..].find("session ended").expect("session end");
    let statements: Vec<&str> = log[from..to]
        .lines()
        .filter(|l| l.contains("sqlx::query"))
        .collect();
    // The presence roster with the offline flag, the probes' one read, the avatar hash put
    // into the first presence (XEP-0153, read once per session), the roster read of the
    // unavailable broadcast at the end, and the last-activity record of the account's last
    // session (XEP-0012: the account's id, then the upsert). The host's message of the day
    // (XEP-0133) was read at bob's login and is not read again for a minute.
    assert!(
        !statements.is_empty() && statements.len() <= 7,
        "{} statements for one login:\n{}",
        statements.len(),
        statements.join("\n")
    );
}
