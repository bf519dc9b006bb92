//! XEP-0313 archives of MUC rooms (§6) with XEP-0359 stanza ids, end to end: three
//! occupants talk (raw clients, to read the exact stanzas), each gets every message with
//! the same `<stanza-id/>` by the room; slixmpp's xep_0313 client, not in the room, pages
//! the room's archive both ways and by nick, and finds those ids and no real JID; a
//! members-only room refuses it; a room whose owner switched archiving off archives
//! nothing more; a temporary room's archive goes with it; and a persistent room's archive
//! survives a SIGKILL, on SQLite and on PostgreSQL.

use jabberwock_tests::mam::{client, page, stanza_id_by, strings};
use jabberwock_tests::muc::{
    configure, enter, instant_room, iq, log_in, log_in_again, occupant, room_jid, DISCO_INFO,
};
use jabberwock_tests::postgres::Scratch;
use jabberwock_tests::slix::SlixIm;
use jabberwock_tests::{RawClient, TestConfig, TestServer};

const NICKS: [&str; 3] = ["Alice", "Bob", "Carol"];

/// `sender` says `body` in `room` (with `extra` inside the message); every client in
/// `occupants` gets it: their copies, in order.
async fn say(
    clients: &mut [RawClient],
    sender: usize,
    room: &str,
    body: &str,
    extra: &str,
) -> Vec<String> {
    clients[sender]
        .send(format!(
            "<message type='groupchat' to='{}'><body>{body}</body>{extra}</message>",
            room_jid(room)
        ))
        .await;
    let mut copies = Vec::new();
    for client in clients.iter_mut() {
        copies.push(
            client
                .read_stanza_containing(&format!("<body>{body}</body>"))
                .await,
        );
    }
    copies
}

/// The dave of these tests: slix_mam.py, in no room.
async fn dave(server: &TestServer) -> SlixIm {
    server.add_user("dave@localhost", "davepw");
    client(server, "dave@localhost/slix").await
}

/// One query of `room`'s archive (`query`: more keys of slix_mam.py's `page`).
async fn room_page(dave: &mut SlixIm, room: &str, query: &str) -> serde_json::Value {
    page(dave, &format!(r#""to": "{}", {query}"#, room_jid(room))).await
}

#[tokio::test]
async fn a_conversation_is_archived_under_one_id_for_all_and_paged_by_anyone() {
    let server = TestServer::start();
    let mut clients = log_in(&server, &["alice", "bob", "carol"]).await;
    instant_room(&mut clients[0], "tea", NICKS[0]).await;
    for n in 1..3 {
        enter(&mut clients[n], "tea", NICKS[n]).await;
    }
    let by = room_jid("tea");
    let info = iq(&mut clients[0], "info", "get", &by, DISCO_INFO).await;
    assert!(info.contains("var=\"urn:xmpp:mam:2\""), "{info}");

    // Six messages, each occupant twice; the first carries a stanza-id claiming to be the
    // room's (XEP-0359 §3), which must not survive.
    let spoof = format!("<stanza-id xmlns='urn:xmpp:sid:0' by='{by}' id='forged'/>");
    let mut ids = Vec::new();
    for m in 0..6 {
        let extra = if m == 0 { spoof.as_str() } else { "" };
        let copies = say(&mut clients, m % 3, "tea", &format!("m{m}"), extra).await;
        let id = stanza_id_by(&copies[0], &by).unwrap_or_else(|| panic!("{}", copies[0]));
        for copy in &copies {
            assert_eq!(copy.matches("<stanza-id").count(), 1, "{copy}");
            assert_eq!(stanza_id_by(copy, &by).as_ref(), Some(&id), "{copy}");
        }
        assert!(!ids.contains(&id));
        ids.push(id);
    }

    // Dave is in no room: the room is open, so its archive is open to him.
    let mut dave = dave(&server).await;
    let first = room_page(&mut dave, "tea", r#""max": 4"#).await;
    assert_eq!(strings(&first["bodies"]), ["m0", "m1", "m2", "m3"]);
    assert_eq!(strings(&first["ids"]), ids[..4]);
    let senders: Vec<String> = (0..4).map(|m| occupant("tea", NICKS[m % 3])).collect();
    assert_eq!(strings(&first["senders"]), senders);
    assert_eq!(first["complete"], false);
    let after = format!(r#""max": 4, "after": "{}""#, ids[3]);
    let rest = room_page(&mut dave, "tea", &after).await;
    assert_eq!(strings(&rest["bodies"]), ["m4", "m5"]);
    assert_eq!(rest["complete"], true);

    // From the end, back to the start.
    let last = room_page(&mut dave, "tea", r#""max": 4, "before": true"#).await;
    assert_eq!(strings(&last["bodies"]), ["m2", "m3", "m4", "m5"]);
    assert_eq!(last["complete"], false);
    let before = format!(r#""max": 4, "before": "{}""#, ids[2]);
    let start = room_page(&mut dave, "tea", &before).await;
    assert_eq!(strings(&start["bodies"]), ["m0", "m1"]);
    assert_eq!(start["complete"], true);

    // `with` a nick: what that occupant said.
    let with_bob = format!(r#""max": 10, "with": "{}""#, occupant("tea", "Bob"));
    let bob_said = room_page(&mut dave, "tea", &with_bob).await;
    assert_eq!(strings(&bob_said["bodies"]), ["m1", "m4"]);
    assert_eq!(strings(&bob_said["ids"]), [ids[1].clone(), ids[4].clone()]);

    // A semi-anonymous room: no result names anyone's real JID, nor the forged id.
    let everything = room_page(&mut dave, "tea", r#""max": 10"#).await;
    assert_eq!(strings(&everything["ids"]), ids);
    for raw in strings(&everything["raw"]) {
        for user in ["alice", "bob", "carol"] {
            assert!(!raw.contains(&format!("{user}@localhost")), "{raw}");
        }
        assert!(!raw.contains("forged"), "{raw}");
    }
    let unknown = room_page(&mut dave, "tea", r#""max": 4, "after": "nope""#).await;
    assert_eq!(unknown["error"], "item-not-found", "{unknown}");
    let nowhere = room_page(&mut dave, "nowhere", r#""max": 4"#).await;
    assert_eq!(nowhere["error"], "item-not-found", "{nowhere}");
    assert!(dave.quit().await);
}

#[tokio::test]
async fn archiving_switched_off_keeps_nothing_more_and_members_only_rooms_refuse_others() {
    let server = TestServer::start();
    let mut clients = log_in(&server, &["alice"]).await;
    let by = room_jid("den");
    instant_room(&mut clients[0], "den", "Alice").await;
    let form = iq(
        &mut clients[0],
        "form",
        "get",
        &by,
        "<query xmlns='http://jabber.org/protocol/muc#owner'/>",
    )
    .await;
    assert!(
        form.contains("var=\"muc#roomconfig_enablearchiving\""),
        "{form}"
    );
    let kept = say(&mut clients, 0, "den", "kept", "").await;
    assert!(stanza_id_by(&kept[0], &by).is_some(), "{}", kept[0]);

    configure(&mut clients[0], "den", "off", &[("enablearchiving", "0")]).await;
    let unkept = say(&mut clients, 0, "den", "unkept", "").await;
    assert!(!unkept[0].contains("<stanza-id"), "{}", unkept[0]);
    let info = iq(&mut clients[0], "info", "get", &by, DISCO_INFO).await;
    assert!(!info.contains("urn:xmpp:mam:2"), "{info}");

    let mut dave = dave(&server).await;
    let page = room_page(&mut dave, "den", r#""max": 10"#).await;
    assert_eq!(strings(&page["bodies"]), ["kept"]);

    // Members only: dave is no member, so the archive is not his to read.
    configure(&mut clients[0], "den", "closed", &[("membersonly", "1")]).await;
    let refused = room_page(&mut dave, "den", r#""max": 10"#).await;
    assert_eq!(refused["error"], "forbidden", "{refused}");
    assert!(dave.quit().await);
}

/// A persistent room's archive outlives a SIGKILL; a temporary room's goes with the room
/// (when its last occupant leaves, or, when the server stopped while it was there, at the
/// next start), so a new room of its name starts with an empty archive.
async fn archives_after_sigkill(config: TestConfig) {
    let mut server = TestServer::start_with(config);
    let mut clients = log_in(&server, &["alice"]).await;
    instant_room(&mut clients[0], "keep", "Alice").await;
    configure(
        &mut clients[0],
        "keep",
        "persist",
        &[("persistentroom", "1")],
    )
    .await;
    for k in 0..3 {
        say(&mut clients, 0, "keep", &format!("k{k}"), "").await;
    }
    instant_room(&mut clients[0], "brief", "Alice").await;
    say(&mut clients, 0, "brief", "said-then-left", "").await;
    let mut dave = dave(&server).await;
    let page = room_page(&mut dave, "brief", r#""max": 10"#).await;
    assert_eq!(strings(&page["bodies"]), ["said-then-left"]);
    clients[0]
        .send(format!(
            "<presence type='unavailable' to='{}'/>",
            occupant("brief", "Alice")
        ))
        .await;
    clients[0]
        .read_stanza_containing("type=\"unavailable\"")
        .await;
    instant_room(&mut clients[0], "brief", "Alice").await;
    // The old room's archive is removed after its last writes, by the room's own task: the
    // new room's archive is empty once that ran (bounded wait).
    let deadline = std::time::Instant::now() + jabberwock_tests::WAIT;
    loop {
        let page = room_page(&mut dave, "brief", r#""max": 10"#).await;
        if strings(&page["bodies"]).is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the temporary room's archive stayed: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    say(&mut clients, 0, "brief", "said-then-killed", "").await;
    assert!(dave.quit().await);

    server.kill();
    drop(clients);
    server.restart();
    let mut clients = log_in_again(&server, &["alice"]).await;
    let mut dave = client(&server, "dave@localhost/after").await;
    let page = room_page(&mut dave, "keep", r#""max": 10"#).await;
    assert_eq!(strings(&page["bodies"]), ["k0", "k1", "k2"]);
    instant_room(&mut clients[0], "brief", "Alice").await;
    let page = room_page(&mut dave, "brief", r#""max": 10"#).await;
    assert_eq!(strings(&page["bodies"]), Vec::<String>::new());
    assert!(dave.quit().await);
}

#[tokio::test]
async fn a_persistent_rooms_archive_survives_sigkill() {
    archives_after_sigkill(TestConfig::default()).await;
}

#[tokio::test]
async fn a_persistent_rooms_archive_survives_sigkill_on_postgres() {
    let db = Scratch::create().await;
    archives_after_sigkill(TestConfig::default().storage(&db.url())).await;
    db.drop_now().await;
}
