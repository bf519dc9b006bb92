//! Server-side XEPs a modern client asks for at login, each a module, driven through
//! slixmpp's own plugins (tests/clients/slix_features.py): software version (XEP-0092),
//! entity time (XEP-0202), last activity (XEP-0012), private XML storage (XEP-0049, with
//! XEP-0048 bookmarks in it), vCards (XEP-0054) with avatar hashes in presence (XEP-0153),
//! and contact addresses in disco (XEP-0157).

use jabberwock_tests::slix::{avatar_reaches, SlixIm};
use jabberwock_tests::{RawClient, TestConfig, TestServer};

fn spawn(server: &TestServer, jid: &str, password: &str) -> SlixIm {
    SlixIm::spawn_script(
        "slix_features.py",
        jid,
        password,
        server.c2s.port(),
        &server.cert_path(),
    )
}

/// alice and bob, each one slixmpp resource, available, and subscribed to each other (bob
/// asks; both clients approve and return subscriptions by themselves): bob sees alice.
async fn alice_and_bob_subscribed(server: &TestServer) -> (SlixIm, SlixIm) {
    let mut alice = spawn(server, "alice@localhost/slix", "pw-alice");
    let mut bob = spawn(server, "bob@localhost/slix", "pw-bob");
    alice.expect_all(&["session_start"]).await;
    bob.expect_all(&["session_start"]).await;
    alice.command(r#"{"cmd": "available"}"#).await;
    bob.command(r#"{"cmd": "available"}"#).await;
    bob.command(r#"{"cmd": "subscribe", "to": "alice@localhost"}"#)
        .await;
    bob.expect_ever(&[
        "\"event\": \"presence\"",
        "\"from\": \"alice@localhost/slix\"",
    ])
    .await;
    (alice, bob)
}

#[tokio::test]
async fn version_time_and_contact_addresses_of_the_server() {
    let config = TestConfig::default()
        .section("modules.version", "show_os = true")
        .section(
            "modules.contact_addresses",
            "abuse = [\"mailto:abuse@example.org\"]",
        )
        .section(
            "modules.contact_addresses",
            "admin = [\"xmpp:admin@localhost\", \"mailto:admin@example.org\"]",
        );
    let server = TestServer::start_with(config);
    server.add_user("alice@localhost", "pw-alice");
    let mut alice = spawn(&server, "alice@localhost/slix", "pw-alice");
    alice.expect_all(&["session_start"]).await;

    alice
        .command(r#"{"cmd": "version", "to": "localhost"}"#)
        .await;
    let version = alice.expect_ever(&["\"event\": \"version\""]).await;
    assert!(version.contains("\"name\": \"Jabberwock\""), "{version}");
    assert!(
        version.contains(&format!("\"version\": \"{}\"", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(
        version.contains(&format!("\"os\": \"{}\"", std::env::consts::OS)),
        "{version}"
    );

    alice.command(r#"{"cmd": "time", "to": "localhost"}"#).await;
    let time = alice.expect_ever(&["\"event\": \"time\""]).await;
    assert!(time.contains("\"tzo\": \"+00:00\""), "{time}");
    // XEP-0082 DateTime in UTC, e.g. 2026-12-03T13:03:57Z, of a plausible year.
    let utc = time.split("\"utc\": \"").nth(1).expect("utc");
    let utc = utc.split('"').next().unwrap();
    assert_eq!(utc.len(), 20, "{time}");
    assert!(utc.ends_with('Z') && &utc[10..11] == "T", "{time}");
    let year: i32 = utc[..4].parse().expect("a year");
    assert!((2024..2200).contains(&year), "{time}");

    alice
        .command(r#"{"cmd": "disco_info", "to": "localhost"}"#)
        .await;
    let info = alice.expect_ever(&["\"event\": \"disco_info\""]).await;
    for feature in ["jabber:iq:version", "urn:xmpp:time", "jabber:iq:last"] {
        assert!(
            info.contains(&format!("\"{feature}\"")),
            "{feature}: {info}"
        );
    }
    assert!(
        info.contains("\"FORM_TYPE\": [\"http://jabber.org/network/serverinfo\"]"),
        "{info}"
    );
    assert!(
        info.contains("\"abuse-addresses\": [\"mailto:abuse@example.org\"]"),
        "{info}"
    );
    assert!(
        info.contains(
            "\"admin-addresses\": [\"xmpp:admin@localhost\", \"mailto:admin@example.org\"]"
        ),
        "{info}"
    );
    assert!(alice.quit().await);
}

#[tokio::test]
async fn bookmarks_in_private_storage_outlive_the_session_and_stay_private() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "pw-alice");
    let mut alice = spawn(&server, "alice@localhost/one", "pw-alice");
    alice.expect_all(&["session_start"]).await;
    alice
        .command(r#"{"cmd": "bookmark", "room": "tea@conference.localhost", "name": "Tea"}"#)
        .await;
    assert!(!alice.seen(&["iq_error"]), "{:?}", alice.events);
    assert!(alice.quit().await);

    let mut again = spawn(&server, "alice@localhost/two", "pw-alice");
    again.expect_all(&["session_start"]).await;
    again.command(r#"{"cmd": "bookmarks"}"#).await;
    let bookmarks = again.expect_ever(&["\"event\": \"bookmarks\""]).await;
    assert!(
        bookmarks.contains("\"rooms\": [\"tea@conference.localhost\"]"),
        "{bookmarks}"
    );
    assert!(again.quit().await);

    // XEP-0049 §3: another account can't read it.
    server.add_user("mallory@localhost", "pw-m");
    let (mut mallory, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "mallory", "pw-m", "m").await;
    mallory
        .send("<iq type='get' id='p1' to='alice@localhost'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>")
        .await;
    let err = mallory.read_stanza_containing("id=\"p1\"").await;
    assert!(err.contains("type=\"error\""), "{err}");
    assert!(err.contains("<forbidden "), "{err}");
    assert!(!err.contains("tea@"), "{err}");
}

#[tokio::test]
async fn a_vcard_set_by_one_client_is_read_by_another_and_its_avatar_hash_shows_in_presence() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "pw-alice");
    server.add_user("bob@localhost", "pw-bob");
    let (mut alice, mut bob) = alice_and_bob_subscribed(&server).await;

    alice
        .command(r#"{"cmd": "set_fn", "fn": "Alice Liddell"}"#)
        .await;
    assert!(!alice.seen(&["iq_error"]), "{:?}", alice.events);
    bob.command(r#"{"cmd": "vcard", "to": "alice@localhost"}"#)
        .await;
    let vcard = bob.expect_ever(&["\"event\": \"vcard\""]).await;
    assert!(vcard.contains("\"fn\": \"Alice Liddell\""), "{vcard}");

    // XEP-0153: the avatar goes into the vCard, and its SHA-1 into alice's presence,
    // which slixmpp re-sends after setting it.
    let hash = avatar_reaches(&mut alice, "alice@localhost/slix", &mut bob).await;
    // slixmpp puts the hash into its own presence; a client that does not (a raw one
    // here) gets it put there by the server.
    let (_raw, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "pw-alice", "raw")
            .await;
    bob.expect_all(&[
        "\"event\": \"presence\"",
        "\"from\": \"alice@localhost/raw\"",
        &format!("\"photo\": \"{hash}\""),
    ])
    .await;
    assert!(alice.quit().await);
    assert!(bob.quit().await);
}

#[tokio::test]
async fn last_activity_of_a_contact_who_left_and_refused_to_strangers() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "pw-alice");
    server.add_user("bob@localhost", "pw-bob");
    server.add_user("eve@localhost", "pw-eve");
    let (mut alice, mut bob) = alice_and_bob_subscribed(&server).await;
    // Online: nothing to tell but "now".
    bob.command(r#"{"cmd": "last", "to": "alice@localhost"}"#)
        .await;
    let last = bob.expect_ever(&["\"event\": \"last\""]).await;
    assert!(last.contains("\"seconds\": 0"), "{last}");

    alice
        .command(r#"{"cmd": "unavailable_status", "status": "Down the rabbit hole"}"#)
        .await;
    bob.expect_all(&[
        "\"event\": \"presence\"",
        "\"from\": \"alice@localhost/slix\"",
        "\"type\": \"unavailable\"",
    ])
    .await;
    assert!(alice.quit().await);
    // The session's end is recorded when the server has closed it; ask until it has.
    let deadline = std::time::Instant::now() + jabberwock_tests::WAIT;
    let last = loop {
        bob.command(r#"{"cmd": "last", "to": "alice@localhost"}"#)
            .await;
        let line = bob.latest("last");
        if line.contains("\"status\": \"Down the rabbit hole\"") {
            break line;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", bob.events);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(last.contains("\"event\": \"last\""), "{last}");

    // XEP-0012 §4: someone not subscribed to alice's presence is told nothing.
    let mut eve = spawn(&server, "eve@localhost/slix", "pw-eve");
    eve.expect_all(&["session_start"]).await;
    eve.command(r#"{"cmd": "last", "to": "alice@localhost"}"#)
        .await;
    eve.expect_ever(&["\"event\": \"iq_error\"", "\"condition\": \"forbidden\""])
        .await;
    assert!(bob.quit().await);
    assert!(eve.quit().await);
}
