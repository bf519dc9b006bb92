//! A standard client we did not write (slixmpp) logs in over STARTTLS
//! with SCRAM-SHA-256 and exchanges messages both ways with a Flash client speaking the exact
//! bytes of docs/flash-protocol.md, through the one router.

use jabberwock_tests::slix::Slix;
use jabberwock_tests::{RawClient, TestServer};

#[tokio::test]
async fn slixmpp_over_starttls_scram_sha256_chats_with_a_flash_client() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");

    let (mut flash, flash_jid) =
        RawClient::login_flash(server.c2s, "alice", "wonderland", "xiff").await;
    assert_eq!(flash_jid, "alice@localhost/xiff");

    let mut slix = Slix::login(
        &server,
        "bob@localhost/slix",
        "builder",
        "SCRAM-SHA-256",
        &[
            "--send-to",
            "alice@localhost",
            "--body",
            "hello flash, from slixmpp",
            "--expect-from",
            "alice@localhost",
        ],
    );
    let auth = slix.expect("auth_success").await;
    assert!(auth.contains("SCRAM-SHA-256"), "{auth}");
    slix.expect("session_start").await;

    // slixmpp -> Flash: one NUL-terminated unit, `from` stamped by the server.
    let message = loop {
        let unit = flash.read_unit().await;
        if unit.starts_with("<message") {
            break unit;
        }
    };
    assert!(message.contains("from=\"bob@localhost/slix\""), "{message}");
    assert!(
        message.contains("<body>hello flash, from slixmpp</body>"),
        "{message}"
    );

    // Flash -> slixmpp, to the full JID slixmpp bound.
    flash
        .send("<message type=\"chat\" to=\"bob@localhost/slix\" id=\"m_1\"><body>hi slixmpp, from flash</body></message>\0")
        .await;
    let received = slix.expect("\"event\": \"received\"").await;
    assert!(received.contains("alice@localhost/xiff"), "{received}");
    assert!(received.contains("hi slixmpp, from flash"), "{received}");
    assert!(slix.finish().await, "slixmpp reported failure");

    flash.send("</flash:stream>\0").await;
    let close = flash.read_to_close().await;
    assert!(close.ends_with("</flash:stream>\0"), "{close:?}");
}
