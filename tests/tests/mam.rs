//! XEP-0313 message archives with XEP-0359 stanza ids, end to end: slixmpp's own
//! xep_0313/xep_0059/xep_0359 plugins (tests/clients/slix_mam.py) read a conversation back
//! from a resource that was not there, page it both ways, filter it by JID and time, and
//! set preferences; an offline message comes at login and from the archive under one id; a
//! client-made stanza-id claiming the recipient's archive is removed; and what the server
//! acknowledged (XEP-0198 `<a/>`) is in the archives after a SIGKILL, on SQLite and on
//! PostgreSQL.

use std::time::Duration;

use jabberwock_tests::mam::{client, json, page, say, stanza_id_by, strings};
use jabberwock_tests::postgres::Scratch;
use jabberwock_tests::slix::SlixIm;
use jabberwock_tests::tmpfs::{fill, Tmpfs};
use jabberwock_tests::{RawClient, TestConfig, TestServer};
use serde_json::Value;

fn server_with(config: TestConfig) -> TestServer {
    let server = TestServer::start_with(config);
    for user in ["alice", "bob", "carol"] {
        server.add_user(&format!("{user}@localhost"), &format!("{user}pw"));
    }
    server
}

/// The latest event `name` the client reported (a command's answer, after its `ok`).
fn last_event(client: &SlixIm, name: &str) -> Value {
    let needle = format!("\"event\": \"{name}\"");
    let line = client
        .events
        .iter()
        .rev()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no {name} event"));
    json(line)
}

#[tokio::test]
async fn a_later_resource_reads_the_conversation_back_page_by_page() {
    let server = server_with(TestConfig::default());
    let mut alice = client(&server, "alice@localhost/laptop").await;
    let mut bob = client(&server, "bob@localhost/phone").await;
    let mut conversation = Vec::new();
    let mut bob_ids = Vec::new();
    for n in 0..5 {
        let got = say(&mut alice, &mut bob, "bob@localhost", &format!("a{n}")).await;
        // XEP-0359: delivered with the id bob's archive keeps it under.
        assert_eq!(got["stanza_id_by"], "bob@localhost", "{got}");
        bob_ids.push(got["stanza_id"].as_str().unwrap().to_owned());
        conversation.push(format!("a{n}"));
        let got = say(&mut bob, &mut alice, "alice@localhost", &format!("b{n}")).await;
        assert_eq!(got["stanza_id_by"], "alice@localhost", "{got}");
        conversation.push(format!("b{n}"));
    }
    assert!(bob_ids.iter().all(|id| !id.is_empty()));

    // A second resource of alice's, not there during the conversation.
    let mut tablet = client(&server, "alice@localhost/tablet").await;
    tablet.command(r#"{"cmd": "fields"}"#).await;
    let fields = json(&tablet.expect_ever(&["\"event\": \"fields\""]).await);
    for field in ["with", "start", "end", "before-id", "after-id", "ids"] {
        assert!(
            strings(&fields["fields"]).contains(&field.to_owned()),
            "{fields}"
        );
    }

    // Forwards, four at a time, each page starting after the last one's last id.
    let mut forward = Vec::new();
    let mut after = String::new();
    let mut complete = Vec::new();
    for _ in 0..3 {
        let query = if after.is_empty() {
            r#""max": 4"#.to_owned()
        } else {
            format!(r#""max": 4, "after": "{after}""#)
        };
        let p = page(&mut tablet, &query).await;
        forward.extend(strings(&p["bodies"]));
        after = p["last"].as_str().unwrap().to_owned();
        complete.push(p["complete"].as_bool().unwrap());
        assert_eq!(strings(&p["ids"]).last(), Some(&after), "{p}");
    }
    assert_eq!(forward, conversation, "forward pages in order, each once");
    assert_eq!(complete, [false, false, true]);

    // Backwards from the end (<before/> empty), then before each page's first id.
    let mut backward = Vec::new();
    let mut before = String::new();
    complete.clear();
    for _ in 0..3 {
        let query = if before.is_empty() {
            r#""max": 4, "before": true"#.to_owned()
        } else {
            format!(r#""max": 4, "before": "{before}""#)
        };
        let p = page(&mut tablet, &query).await;
        let mut bodies = strings(&p["bodies"]);
        bodies.extend(backward);
        backward = bodies;
        before = p["first"].as_str().unwrap().to_owned();
        complete.push(p["complete"].as_bool().unwrap());
    }
    assert_eq!(backward, conversation, "backward pages in order, each once");
    assert_eq!(complete, [false, false, true]);

    // slixmpp's own iterator over the whole archive, both ways.
    tablet
        .command(r#"{"cmd": "iterate", "max": 3, "reverse": false}"#)
        .await;
    let history = json(&tablet.expect_ever(&["\"event\": \"history\""]).await);
    assert_eq!(strings(&history["bodies"]), conversation);
    tablet
        .command(r#"{"cmd": "iterate", "max": 3, "reverse": true}"#)
        .await;
    let mut reversed = conversation.clone();
    reversed.reverse();
    assert_eq!(strings(&last_event(&tablet, "history")["bodies"]), reversed);

    // Bob's archive holds his copies under the ids he was told.
    let p = page(&mut bob, r#""max": 20"#).await;
    let ids = strings(&p["ids"]);
    for id in &bob_ids {
        assert!(ids.contains(id), "{id} not in bob's archive: {p}");
    }
    assert_eq!(strings(&p["bodies"]), conversation);

    // `with`: only the messages with carol (offline: kept for her, archived for both).
    for n in 0..2 {
        alice
            .command(&format!(
                r#"{{"cmd": "message", "to": "carol@localhost", "body": "c{n}"}}"#
            ))
            .await;
    }
    // Asked on the sending session: it handles its stanzas in order, so they are stored.
    let p = page(&mut alice, r#""max": 20, "with": "carol@localhost""#).await;
    assert_eq!(strings(&p["bodies"]), ["c0", "c1"], "{p}");
    assert_eq!(p["complete"], true);
    let p = page(&mut tablet, r#""max": 20, "with": "bob@localhost/phone""#).await;
    assert_eq!(strings(&p["bodies"]), ["b0", "b1", "b2", "b3", "b4"], "{p}");

    // Time: a message two seconds later, found by starting at its own stamp.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    say(&mut alice, &mut bob, "bob@localhost", "late").await;
    let everything = page(&mut tablet, r#""max": 20"#).await;
    let stamps = strings(&everything["stamps"]);
    let late = stamps.last().unwrap().clone();
    assert!(
        stamps[..stamps.len() - 1].iter().all(|s| s < &late),
        "{everything}"
    );
    let p = page(&mut tablet, &format!(r#""max": 20, "start": "{late}""#)).await;
    assert_eq!(strings(&p["bodies"]), ["late"], "{p}");
    let p = page(
        &mut tablet,
        &format!(r#""max": 20, "end": "{}""#, stamps[0]),
    )
    .await;
    assert!(!strings(&p["bodies"]).contains(&"late".to_owned()), "{p}");
    assert_eq!(strings(&p["bodies"])[0], "a0");

    // An after id the archive does not hold.
    let p = page(&mut tablet, r#""max": 4, "after": "no-such-id""#).await;
    assert!(
        p["error"]
            .as_str()
            .unwrap_or_default()
            .contains("item-not-found"),
        "{p}"
    );

    for c in [alice, bob, tablet] {
        assert!(c.quit().await);
    }
}

#[tokio::test]
async fn a_jid_set_to_never_is_not_archived_from_then_on() {
    let server = server_with(TestConfig::default());
    let mut alice = client(&server, "alice@localhost/laptop").await;
    let mut bob = client(&server, "bob@localhost/phone").await;
    alice.command(r#"{"cmd": "prefs_get"}"#).await;
    let prefs = json(&alice.expect_ever(&["\"event\": \"prefs\""]).await);
    // The configured default (Prosody's): always.
    assert_eq!(prefs["default"], "always", "{prefs}");
    say(&mut alice, &mut bob, "bob@localhost", "before").await;
    alice
        .command(r#"{"cmd": "prefs_set", "default": "always", "never": ["bob@localhost/phone"]}"#)
        .await;
    let prefs = last_event(&alice, "prefs");
    // Kept as the bare JID (§6).
    assert_eq!(strings(&prefs["never"]), ["bob@localhost"], "{prefs}");
    let got = say(&mut alice, &mut bob, "bob@localhost", "secret").await;
    // Bob's own archive follows bob's preferences, not alice's.
    assert_eq!(got["stanza_id_by"], "bob@localhost", "{got}");
    say(&mut bob, &mut alice, "alice@localhost", "reply").await;
    alice
        .command(r#"{"cmd": "message", "to": "carol@localhost", "body": "kept"}"#)
        .await;
    let p = page(&mut alice, r#""max": 20"#).await;
    assert_eq!(strings(&p["bodies"]), ["before", "kept"], "{p}");
    let p = page(&mut bob, r#""max": 20"#).await;
    assert_eq!(strings(&p["bodies"]), ["before", "secret", "reply"], "{p}");
    alice.command(r#"{"cmd": "prefs_get"}"#).await;
    let prefs = last_event(&alice, "prefs");
    assert_eq!(strings(&prefs["never"]), ["bob@localhost"]);
    for c in [alice, bob] {
        assert!(c.quit().await);
    }
}

#[tokio::test]
async fn an_offline_message_comes_at_login_and_from_the_archive_under_one_id() {
    let mut server = server_with(TestConfig::default());
    let mut alice = client(&server, "alice@localhost/laptop").await;
    alice
        .command(r#"{"cmd": "message", "to": "bob@localhost", "body": "while you were out"}"#)
        .await;
    // Bob was never online: the message waits offline and is in his archive.
    let mut bob = client(&server, "bob@localhost/phone").await;
    let got = json(&bob.expect_ever(&["received", "while you were out"]).await);
    assert_eq!(got["stanza_id_by"], "bob@localhost", "{got}");
    let p = page(&mut bob, r#""max": 20"#).await;
    assert_eq!(strings(&p["bodies"]), ["while you were out"], "{p}");
    assert_eq!(strings(&p["ids"]), [got["stanza_id"].as_str().unwrap()]);
    assert_eq!(strings(&p["senders"]), ["alice@localhost/laptop"]);
    assert!(bob.quit().await);
    assert!(alice.quit().await);

    // A removed account's archive goes with it.
    server.remove_user("bob@localhost");
    server.add_user("bob@localhost", "bobpw");
    let mut bob = client(&server, "bob@localhost/phone").await;
    let p = page(&mut bob, r#""max": 20"#).await;
    assert!(strings(&p["bodies"]).is_empty(), "{p}");
    assert!(bob.quit().await);
    server.terminate();
}

#[tokio::test]
async fn a_stanza_id_claiming_the_recipients_archive_is_removed() {
    let server = server_with(TestConfig::default());
    let cert = server.cert_path();
    let (mut alice, _) =
        RawClient::login_standard(server.c2s, &cert, "alice", "alicepw", "raw").await;
    let (mut bob, _) = RawClient::login_standard(server.c2s, &cert, "bob", "bobpw", "raw").await;
    alice
        .send(concat!(
            "<message to='bob@localhost' type='chat' id='m1'><body>hi</body>",
            "<stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='forged'/>",
            "<stanza-id xmlns='urn:xmpp:sid:0' by='localhost' id='forged-too'/>",
            "<origin-id xmlns='urn:xmpp:sid:0' id='origin-1'/></message>"
        ))
        .await;
    let got = bob.read_stanza_containing("<body>hi</body>").await;
    assert!(!got.contains("forged"), "{got}");
    assert!(
        got.contains("origin-1"),
        "origin-id is the sender's, kept: {got}"
    );
    assert_eq!(got.matches("<stanza-id").count(), 1, "{got}");
    assert!(got.contains("by=\"bob@localhost\""), "{got}");
    // The sender's own archive id never reaches the recipient.
    assert!(!got.contains("by=\"alice@localhost\""), "{got}");
}

#[tokio::test]
async fn carbons_carry_each_side_its_own_archive_id() {
    let server = server_with(TestConfig::default());
    let cert = server.cert_path();
    let login = |user: &'static str, resource: &'static str| {
        let cert = cert.clone();
        let addr = server.c2s;
        async move {
            RawClient::login_standard(addr, &cert, user, &format!("{user}pw"), resource)
                .await
                .0
        }
    };
    let mut alice_one = login("alice", "one").await;
    let mut alice_two = login("alice", "two").await;
    let mut bob_one = login("bob", "one").await;
    let mut bob_two = login("bob", "two").await;
    for c in [&mut alice_two, &mut bob_two] {
        c.send("<iq type='set' id='carbons'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
            .await;
        c.read_until("id=\"carbons\"").await;
    }
    alice_one
        .send("<message to='bob@localhost/one' type='chat' id='c1'><body>copied</body></message>")
        .await;
    let delivered = bob_one.read_stanza_containing("copied").await;
    let received = bob_two.read_stanza_containing("<received").await;
    let sent = alice_two.read_stanza_containing("<sent").await;
    let bobs = stanza_id_by(&delivered, "bob@localhost").expect("bob's id on his copy");
    // The received carbon is bob's copy, with the same id.
    assert_eq!(stanza_id_by(&received, "bob@localhost"), Some(bobs.clone()));
    // The sent carbon has alice's own id, which never reaches bob.
    let alices = stanza_id_by(&sent, "alice@localhost").expect("alice's id on her carbon");
    assert_ne!(alices, bobs);
    assert!(!delivered.contains(&alices), "{delivered}");
    assert!(!received.contains("alice@localhost\" id"), "{received}");
    // And it is the id of the message in alice's archive.
    let results = raw_archive(&mut alice_one).await;
    assert!(results.contains(&format!("id=\"{alices}\"")), "{results}");
}

/// What a raw session reads up to the `<fin/>` of one query of its own archive (up to 100
/// results).
async fn raw_archive(client: &mut RawClient) -> String {
    client
        .send(concat!(
            "<iq type='set' id='mam1'><query xmlns='urn:xmpp:mam:2' queryid='k'>",
            "<set xmlns='http://jabber.org/protocol/rsm'><max>100</max></set></query></iq>"
        ))
        .await;
    client.read_until("<fin").await
}

/// What a raw session reads back from its own archive: the bodies, in order.
async fn archived_bodies(client: &mut RawClient) -> Vec<String> {
    let text = raw_archive(client).await;
    // Only the results' bodies (offline messages may come in the same read).
    text.split("<result ")
        .skip(1)
        .filter_map(|result| result.split("<body>").nth(1)?.split("</body>").next())
        .map(str::to_owned)
        .collect()
}

/// Waits (up to 30 s) until the client's archive holds exactly `bodies`, in order.
async fn archive_becomes(client: &mut RawClient, bodies: &[&str]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = archived_bodies(client).await;
        if now == bodies {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the archive still holds {now:?}, not {bodies:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Alice logs in and sends bob `PREFIX1` to `PREFIXcount`: her session and the bodies, once
/// her archive holds them all (a query waits for what was queued before it).
async fn alice_archives(server: &TestServer, prefix: &str, count: u32) -> (RawClient, Vec<String>) {
    let (mut alice, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "alicepw", "raw").await;
    let sent: Vec<String> = (1..=count).map(|n| format!("{prefix}{n}")).collect();
    for body in &sent {
        alice
            .send(format!(
                "<message to='bob@localhost' type='chat' id='{body}'><body>{body}</body></message>"
            ))
            .await;
    }
    assert_eq!(archived_bodies(&mut alice).await, sent);
    (alice, sent)
}

/// A per-account limit set by a reload reaches archives that get no new message, at once
/// rather than at the next minute's run; a lower one in the config at a restart reaches
/// them too, each account keeping its newest messages.
#[tokio::test]
async fn a_limit_set_by_reload_or_at_start_trims_every_archive() {
    let mut server = server_with(TestConfig::default());
    let cert = server.cert_path();
    let (mut alice, _) = alice_archives(&server, "t", 6).await;
    let limited = |n: u32| {
        TestConfig::default().section("modules.mam", &format!("max_messages_per_user = {n}"))
    };
    server.reload_as(&limited(4));
    archive_becomes(&mut alice, &["t3", "t4", "t5", "t6"]).await;
    drop(alice);
    server.terminate();
    server.write_config(&limited(2));
    server.restart();
    for user in ["alice", "bob"] {
        let (mut c, _) =
            RawClient::login_standard(server.c2s, &cert, user, &format!("{user}pw"), "back").await;
        archive_becomes(&mut c, &["t5", "t6"]).await;
    }
}

/// Retention runs from the server's start, not from the first message or query after it:
/// a server restarted with a per-account limit, which nobody logs in to, trims every
/// archive to it by itself.
#[tokio::test]
async fn retention_runs_on_a_server_nobody_uses() {
    let mut server = server_with(TestConfig::default());
    let (alice, _) = alice_archives(&server, "i", 6).await;
    drop(alice);
    assert!(server.terminate().success(), "{}", server.log_text());
    let limited = TestConfig::default().section("modules.mam", "max_messages_per_user = 2");
    server.write_config(&limited);
    server.restart();
    server.wait_started();
    // alice's archive and bob's, six messages each; two each once retention has run.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM archive")
            .fetch_one(&mut server.read_db().await)
            .await
            .expect("count archived messages");
        if rows == 4 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{rows} archived messages left after 30 s: {}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// After a clean stop the database file alone holds what was archived (no WAL left
/// beside it), so a backup that copies just that file misses nothing: a server started on
/// a copy of it serves alice's archive whole.
#[tokio::test]
async fn after_a_clean_stop_the_database_file_alone_holds_the_archive() {
    let mut server = server_with(TestConfig::default());
    let (alice, sent) = alice_archives(&server, "w", 20).await;
    drop(alice);
    assert!(server.terminate().success(), "{}", server.log_text());
    let db = server.db_path();
    let wal = std::fs::metadata(format!("{}-wal", db.display())).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "the WAL still holds {wal} bytes after a clean stop");
    let copy = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(copy.path().join("data")).expect("data dir");
    std::fs::copy(&db, copy.path().join("data").join(db.file_name().unwrap()))
        .expect("copy the database file");
    let restored = TestServer::start_in(copy, TestConfig::default());
    restored.wait_started();
    let (mut alice, _) =
        RawClient::login_standard(restored.c2s, &restored.cert_path(), "alice", "alicepw", "r")
            .await;
    assert_eq!(archived_bodies(&mut alice).await, sent);
}

/// Alice enables XEP-0198 and sends `count` messages to bob (online or not); the server's
/// `<a/>` counts them all; then SIGKILL, restart, and both archives hold every one.
async fn acknowledged_then_killed(mut server: TestServer, bob_online: bool) {
    const COUNT: usize = 60;
    let cert = server.cert_path();
    let bob = if bob_online {
        Some(RawClient::login_standard(server.c2s, &cert, "bob", "bobpw", "raw").await)
    } else {
        None
    };
    let (mut alice, _) =
        RawClient::login_standard(server.c2s, &cert, "alice", "alicepw", "raw").await;
    alice.send("<enable xmlns='urn:xmpp:sm:3'/>").await;
    alice.read_until("<enabled").await;
    let mut burst = String::new();
    for n in 0..COUNT {
        burst.push_str(&format!(
            "<message to='bob@localhost' type='chat' id='k{n}'><body>k{n}</body></message>"
        ));
    }
    burst.push_str("<r xmlns='urn:xmpp:sm:3'/>");
    alice.send(burst).await;
    let answer = alice.read_until(&format!("h=\"{COUNT}\"")).await;
    assert!(answer.contains("<a xmlns=\"urn:xmpp:sm:3\""), "{answer}");
    server.kill();
    drop((alice, bob));
    server.restart();
    let expected: Vec<String> = (0..COUNT).map(|n| format!("k{n}")).collect();
    for user in ["alice", "bob"] {
        let (mut c, _) =
            RawClient::login_standard(server.c2s, &cert, user, &format!("{user}pw"), "after").await;
        assert_eq!(archived_bodies(&mut c).await, expected, "{user}'s archive");
    }
}

#[tokio::test]
async fn acknowledged_messages_survive_sigkill_recipient_offline() {
    acknowledged_then_killed(server_with(TestConfig::default()), false).await;
}

#[tokio::test]
async fn acknowledged_messages_survive_sigkill_recipient_online() {
    acknowledged_then_killed(server_with(TestConfig::default()), true).await;
}

#[tokio::test]
async fn acknowledged_messages_survive_sigkill_on_postgres() {
    let db = Scratch::create().await;
    acknowledged_then_killed(server_with(TestConfig::default().storage(&db.url())), true).await;
    db.drop_now().await;
}

/// Sends alice's message `n` (after incrementing it) to bob, then a ping: its id, whether
/// the server refused it, and what came back before the pong.
async fn send(alice: &mut RawClient, n: &mut u32) -> (String, bool, String) {
    *n += 1;
    // A long body, so each archived message needs fresh pages.
    let body = format!("m{n}-{}", "x".repeat(900));
    alice
        .send(format!(
            "<message to='bob@localhost' type='chat' id='m{n}'><body>{body}</body></message>"
        ))
        .await;
    let before = alice.until_pong(&format!("p{n}")).await;
    (format!("m{n}"), before.contains("type=\"error\""), before)
}

/// A server whose data directory is a 2 MiB tmpfs (to be filled), with alice and bob
/// logged in over raw streams.
async fn on_small_disk() -> (Tmpfs, TestServer, RawClient, RawClient) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mount = Tmpfs::mount(&dir.path().join("data"), "2m");
    let server = TestServer::start_in(dir, TestConfig::default());
    server.wait_started();
    server.add_user("alice@localhost", "alicepw");
    server.add_user("bob@localhost", "bobpw");
    let cert = server.cert_path();
    let (alice, _) = RawClient::login_standard(server.c2s, &cert, "alice", "alicepw", "raw").await;
    let (bob, _) = RawClient::login_standard(server.c2s, &cert, "bob", "bobpw", "raw").await;
    (mount, server, alice, bob)
}

/// A full disk: once the writer found it full, a message that cannot be archived is
/// refused (`resource-constraint` to the sender) and goes nowhere, rather than being
/// delivered unarchived; those already on their way when it filled are delivered and
/// archived once there is room; once space is back, messages go through again, and
/// everything bob got is in his archive after a restart.
#[tokio::test]
async fn a_message_that_cannot_be_archived_is_refused_not_delivered() {
    let (mount, mut server, mut alice, mut bob) = on_small_disk().await;
    let cert = server.cert_path();
    let mut n = 0;
    let mut delivered_ok = Vec::new();
    for _ in 0..3 {
        let (id, refused, _) = send(&mut alice, &mut n).await;
        assert!(!refused);
        delivered_ok.push(id);
    }
    let filler = mount.path.join("filler");
    assert!(fill(&filler) > 0, "the filler took no space");
    let mut refused_ids = Vec::new();
    for _ in 0..200 {
        let (id, refused, answer) = send(&mut alice, &mut n).await;
        if refused {
            assert!(answer.contains("<resource-constraint"), "{answer}");
            refused_ids.push(id);
            if refused_ids.len() == 5 {
                break;
            }
        } else {
            delivered_ok.push(id);
        }
    }
    assert_eq!(
        refused_ids.len(),
        5,
        "the full disk never refused a message"
    );
    std::fs::remove_file(&filler).expect("remove filler");
    for _ in 0..3 {
        let (id, refused, answer) = send(&mut alice, &mut n).await;
        assert!(!refused, "after space was freed: {answer}");
        delivered_ok.push(id);
    }
    // Bob got exactly the messages that were not refused.
    let got = bob.until_pong("bob-sync").await;
    for id in &delivered_ok {
        assert!(got.contains(&format!("id=\"{id}\"")), "{id} not delivered");
    }
    for id in &refused_ids {
        assert!(
            !got.contains(&format!("id=\"{id}\"")),
            "{id} delivered unarchived"
        );
    }
    drop((alice, bob));
    server.terminate();
    server.restart();
    let (mut bob, _) = RawClient::login_standard(server.c2s, &cert, "bob", "bobpw", "again").await;
    let archived = raw_archive(&mut bob).await;
    for id in &delivered_ok {
        assert!(
            archived.contains(&format!("<body>{id}-")),
            "{id} not archived"
        );
    }
    drop(bob);
    drop(server);
    drop(mount);
}

/// The server counts a message in its XEP-0198 `<a/>` only once the archive holds it: with
/// the disk full, the message goes on to its recipient (it was sent before the writer knew
/// the disk was full) but the sender's `<a/>` waits; once space is back the writer stores
/// it by itself, and only then comes the `<a/>` that counts it.
#[tokio::test]
async fn the_acknowledgement_waits_until_the_archive_holds_the_message() {
    let (mount, mut server, mut alice, mut bob) = on_small_disk().await;
    let cert = server.cert_path();
    alice.send("<enable xmlns='urn:xmpp:sm:3'/>").await;
    alice.read_until("<enabled").await;
    let message = |id: &str| {
        format!(
            "<message to='bob@localhost' type='chat' id='{id}'><body>{id}-{}</body></message>\
             <r xmlns='urn:xmpp:sm:3'/>",
            "x".repeat(900)
        )
    };
    alice.send(message("before")).await;
    alice.read_until("h=\"1\"").await;
    bob.read_until("id=\"before\"").await;

    let filler = mount.path.join("filler");
    assert!(fill(&filler) > 0, "the filler took no space");
    alice.send(message("during")).await;
    bob.read_until("id=\"during\"").await;
    let meanwhile = alice.read_for(Duration::from_millis(2500)).await;
    assert!(
        !meanwhile.contains("h=\"2\""),
        "counted before it was archived: {meanwhile}"
    );
    assert!(!meanwhile.contains("type=\"error\""), "{meanwhile}");
    // A query meanwhile is answered (the writer does not wait for the disk to answer it),
    // with what is stored so far.
    let page = raw_archive(&mut bob).await;
    let results = page.split_once("<result").map_or("", |(_, r)| r);
    assert!(
        results.contains("<body>before-") && !results.contains("<body>during-"),
        "{page}"
    );

    std::fs::remove_file(&filler).expect("remove filler");
    let answer = alice.read_until("h=\"2\"").await;
    assert!(answer.contains("<a xmlns=\"urn:xmpp:sm:3\""), "{answer}");
    server.kill();
    drop((alice, bob));
    server.restart();
    let (mut bob, _) = RawClient::login_standard(server.c2s, &cert, "bob", "bobpw", "again").await;
    assert_eq!(
        archived_bodies(&mut bob)
            .await
            .iter()
            .map(|b| b.split('-').next().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["before", "during"]
    );
    drop(bob);
    drop(server);
    drop(mount);
}
