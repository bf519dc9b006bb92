//! XEP-0045 persistent rooms end to end: a room configured through the owner form (name,
//! members-only, a password), with a member, an admin and an outcast and a subject, is the
//! same room after a clean restart and after a SIGKILL right after the last change was
//! acknowledged, on SQLite and on PostgreSQL; temporary rooms never outlive their last
//! occupant or the process; destroying a room or making it temporary removes it from
//! storage; occupant ids (XEP-0421) stay the same across restarts; a change that storage
//! refuses is answered with an error and does not happen.

use jabberwock_tests::muc::{
    admin_item, configure, enter, instant_room, iq, log_in, log_in_again, occupant_id, room_jid,
    send_join, until_subject, DISCO_INFO, DISCO_ITEMS, MUC_X, SERVICE,
};
use jabberwock_tests::postgres::Scratch;
use jabberwock_tests::{RawClient, TestConfig, TestServer};
use sqlx::Connection as _;

const SECRET: &str = "cauldron";

/// A join's MUC payload with a password (§7.2.6).
fn with_password(password: &str) -> String {
    format!("<x xmlns='http://jabber.org/protocol/muc'><password>{password}</password></x>")
}

/// The user's own presence among what entering brought (status 110).
fn own_presence(entered: &[String]) -> &String {
    entered
        .iter()
        .find(|s| s.starts_with("<presence") && s.contains("<status code=\"110\"/>"))
        .unwrap_or_else(|| panic!("no self-presence in {entered:?}"))
}

/// Alice makes `den` persistent, named, public, members-only and password-protected; bob
/// becomes a member, carol an admin, mallory an outcast; bob enters; alice sets the
/// subject last. Returns bob's occupant id, once the subject change came back (the last
/// acknowledgement before the caller stops the server).
async fn set_up_den(users: &mut [RawClient]) -> String {
    let [alice, bob, ..] = users else {
        panic!("alice and bob first");
    };
    enter(alice, "den", "Alice").await;
    configure(
        alice,
        "den",
        "c1",
        &[
            ("roomname", "The Den"),
            ("persistentroom", "1"),
            ("publicroom", "1"),
            ("membersonly", "1"),
            ("passwordprotectedroom", "1"),
            ("roomsecret", SECRET),
        ],
    )
    .await;
    let items = admin_item(
        "<item affiliation='member' jid='bob@localhost'/>\
         <item affiliation='admin' jid='carol@localhost'/>\
         <item affiliation='outcast' jid='mallory@localhost'><reason>gyred</reason></item>",
    );
    let answer = iq(alice, "a1", "set", &room_jid("den"), &items).await;
    assert!(answer.contains("type=\"result\""), "{answer}");
    send_join(bob, "den", "Bob", Some(&with_password(SECRET)), "").await;
    let entered = until_subject(bob).await;
    let bob_id = occupant_id(own_presence(&entered));
    alice
        .send(format!(
            "<message type='groupchat' to='{}'><subject>Brillig</subject></message>",
            room_jid("den")
        ))
        .await;
    let reflected = alice.read_stanza_containing("Brillig").await;
    assert!(
        reflected.contains("<subject>Brillig</subject>"),
        "{reflected}"
    );
    bob_id
}

/// After a restart: `den` is listed while empty, and is the room `set_up_den` left.
async fn assert_den_kept(server: &TestServer, bob_id: &str) {
    let mut users = log_in_again(server, &["bob", "carol", "dave", "mallory"]).await;
    let [bob, carol, dave, mallory] = &mut users[..] else {
        unreachable!()
    };
    let room = room_jid("den");

    // §6.2: listed with no one in it, by its name.
    let items = iq(dave, "i1", "get", SERVICE, DISCO_ITEMS).await;
    assert!(
        items.contains(&format!("jid=\"{room}\"")) && items.contains("name=\"The Den\""),
        "{items}"
    );

    // The member enters (with the password), finds the subject, and is who he was.
    send_join(bob, "den", "Bob", Some(&with_password(SECRET)), "").await;
    let entered = until_subject(bob).await;
    let own = own_presence(&entered);
    assert!(own.contains("affiliation=\"member\""), "{own}");
    assert!(
        !own.contains("<status code=\"201\"/>"),
        "not a new room: {own}"
    );
    assert_eq!(
        occupant_id(own),
        bob_id,
        "XEP-0421: the same id after the restart"
    );
    let subject = entered.last().unwrap();
    assert!(
        subject.contains("<subject>Brillig</subject>")
            && subject.contains(&format!("from=\"{room}/Alice\"")),
        "{subject}"
    );

    // §7.2.7: not a member; §7.2.8: banned; §7.2.6: the wrong password.
    send_join(dave, "den", "Dave", Some(&with_password(SECRET)), "").await;
    let refused = dave.read_stanza().await;
    assert!(refused.contains("<registration-required"), "{refused}");
    send_join(mallory, "den", "Mallory", Some(&with_password(SECRET)), "").await;
    let refused = mallory.read_stanza().await;
    assert!(refused.contains("<forbidden"), "{refused}");
    send_join(carol, "den", "Carol", Some(&with_password("wrong")), "").await;
    let refused = carol.read_stanza().await;
    assert!(refused.contains("<not-authorized"), "{refused}");
    send_join(carol, "den", "Carol", Some(&with_password(SECRET)), "").await;
    let entered = until_subject(carol).await;
    let own = own_presence(&entered);
    assert!(
        own.contains("affiliation=\"admin\"") && own.contains("role=\"moderator\""),
        "{own}"
    );

    // §6.4: the configuration shows.
    let info = iq(bob, "d1", "get", &room, DISCO_INFO).await;
    for feature in [
        "muc_persistent",
        "muc_public",
        "muc_membersonly",
        "muc_passwordprotected",
    ] {
        assert!(
            info.contains(&format!("var=\"{feature}\"")),
            "{feature}: {info}"
        );
    }
    assert!(
        info.contains("name=\"The Den\"") && info.contains("<value>Brillig</value>"),
        "{info}"
    );
}

#[tokio::test]
async fn a_persistent_room_survives_a_clean_restart() {
    let mut server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob", "carol", "dave", "mallory"]).await;
    let bob_id = set_up_den(&mut users).await;
    assert!(server.terminate().success());
    server.restart();
    assert_den_kept(&server, &bob_id).await;
}

#[tokio::test]
async fn a_persistent_room_survives_sigkill_right_after_the_last_acknowledgement() {
    let mut server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob", "carol", "dave", "mallory"]).await;
    let bob_id = set_up_den(&mut users).await;
    server.kill();
    server.restart();
    assert_den_kept(&server, &bob_id).await;
}

#[tokio::test]
async fn a_persistent_room_survives_sigkill_on_postgresql() {
    let db = Scratch::create().await;
    let mut server = TestServer::start_with(TestConfig::default().storage(&db.url()));
    server.wait_started();
    let mut users = log_in(&server, &["alice", "bob", "carol", "dave", "mallory"]).await;
    let bob_id = set_up_den(&mut users).await;
    server.kill();
    // The room is in PostgreSQL, not in a SQLite file.
    assert!(!server.db_path().exists());
    let mut pg = sqlx::PgConnection::connect(&db.url()).await.unwrap();
    let stored: Vec<String> = sqlx::query_scalar("SELECT jid FROM muc_rooms")
        .fetch_all(&mut pg)
        .await
        .unwrap();
    assert_eq!(stored, [room_jid("den")]);
    pg.close().await.ok();
    server.restart();
    assert_den_kept(&server, &bob_id).await;
    drop(server);
    db.drop_now().await;
}

/// The rooms stored in the server's SQLite database.
async fn stored_rooms(server: &TestServer) -> Vec<String> {
    let url = format!("sqlite:{}", server.db_path().display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query_scalar("SELECT jid FROM muc_rooms ORDER BY jid")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

/// §6.4 asked of a room that does not exist: item-not-found.
async fn assert_no_room(client: &mut RawClient, room: &str, id: &str) {
    let info = iq(client, id, "get", &room_jid(room), DISCO_INFO).await;
    assert!(
        info.contains("type=\"error\"") && info.contains("<item-not-found"),
        "{info}"
    );
}

#[tokio::test]
async fn a_temporary_room_is_gone_with_its_last_occupant_and_after_a_restart() {
    let mut server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let [alice, bob] = &mut users[..] else {
        unreachable!()
    };
    instant_room(alice, "tmp", "Alice").await;
    configure(alice, "tmp", "c1", &[("roomname", "Passing")]).await;
    let items = iq(bob, "i1", "get", SERVICE, DISCO_ITEMS).await;
    assert!(items.contains(&room_jid("tmp")), "{items}");
    alice
        .send(format!(
            "<presence type='unavailable' to='{}/Alice'/>",
            room_jid("tmp")
        ))
        .await;
    alice.read_stanza_containing("type=\"unavailable\"").await;
    assert_no_room(bob, "tmp", "d1").await;
    let items = iq(bob, "i2", "get", SERVICE, DISCO_ITEMS).await;
    assert!(!items.contains(&room_jid("tmp")), "{items}");

    // One with an occupant in it at the restart: never stored, so gone.
    instant_room(alice, "stay", "Alice").await;
    assert!(stored_rooms(&server).await.is_empty());
    assert!(server.terminate().success());
    server.restart();
    let mut users = log_in_again(&server, &["bob"]).await;
    let bob = &mut users[0];
    assert_no_room(bob, "stay", "d2").await;
    assert_no_room(bob, "tmp", "d3").await;
    let items = iq(bob, "i3", "get", SERVICE, DISCO_ITEMS).await;
    assert!(!items.contains("<item"), "{items}");
}

#[tokio::test]
async fn destroying_a_room_or_making_it_temporary_removes_it_from_storage() {
    let mut server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let alice = &mut users[0];
    for room in ["den", "nook"] {
        enter(alice, room, "Alice").await;
        configure(alice, room, "c1", &[("persistentroom", "1")]).await;
    }
    assert_eq!(
        stored_rooms(&server).await,
        [room_jid("den"), room_jid("nook")]
    );

    // §10.9: destroyed.
    let destroy = "<query xmlns='http://jabber.org/protocol/muc#owner'>\
                   <destroy><reason>moved</reason></destroy></query>";
    let answer = iq(alice, "x1", "set", &room_jid("den"), destroy).await;
    assert!(answer.contains("type=\"result\""), "{answer}");
    // §10.2: no longer persistent (alice still in it: a temporary room now).
    configure(alice, "nook", "c2", &[("persistentroom", "0")]).await;
    assert!(stored_rooms(&server).await.is_empty());

    server.kill();
    server.restart();
    let mut users = log_in_again(&server, &["bob"]).await;
    let bob = &mut users[0];
    assert_no_room(bob, "den", "d1").await;
    assert_no_room(bob, "nook", "d2").await;
}

#[tokio::test]
async fn occupant_ids_stay_the_same_across_a_restart() {
    let mut server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let [alice, bob] = &mut users[..] else {
        unreachable!()
    };
    instant_room(alice, "tea", "Alice").await;
    let before = occupant_id(own_presence(&enter(bob, "tea", "Bob").await));

    // The key is a secret like the others: the server's user only.
    let key = server.dir.path().join("data").join("muc-occupant-id.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let bytes = std::fs::read(&key).unwrap();

    assert!(server.terminate().success());
    server.restart();
    let mut users = log_in_again(&server, &["alice", "bob"]).await;
    let [alice, bob] = &mut users[..] else {
        unreachable!()
    };
    // A temporary room, made anew: the id is the room's and the user's, not the process's.
    instant_room(alice, "tea", "Alice").await;
    let after = occupant_id(own_presence(&enter(bob, "tea", "Bob").await));
    assert_eq!(after, before);
    assert_eq!(std::fs::read(&key).unwrap(), bytes, "kept, not made again");
}

#[tokio::test]
async fn a_change_storage_refuses_is_answered_with_an_error_and_does_not_happen() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let [alice, bob] = &mut users[..] else {
        unreachable!()
    };
    let room = room_jid("club");
    enter(alice, "club", "Alice").await;
    configure(
        alice,
        "club",
        "c1",
        &[("persistentroom", "1"), ("membersonly", "1")],
    )
    .await;
    // Storage refuses any new affiliation from now on (as a full or broken disk would).
    let url = format!("sqlite:{}", server.db_path().display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse BEFORE INSERT ON muc_affiliations \
         BEGIN SELECT RAISE(ABORT, 'refused'); END",
    )
    .execute(&mut db)
    .await
    .unwrap();

    let member = admin_item("<item affiliation='member' jid='bob@localhost'/>");
    let answer = iq(alice, "a1", "set", &room, &member).await;
    assert!(
        answer.contains("type=\"error\"") && answer.contains("<internal-server-error"),
        "{answer}"
    );
    // Not in the room's memory either: the list has no bob, and bob may not enter.
    let list = admin_item("<item affiliation='member'/>");
    let members = iq(alice, "a2", "get", &room, &list).await;
    assert!(!members.contains("bob@localhost"), "{members}");
    send_join(bob, "club", "Bob", Some(MUC_X), "").await;
    let refused = bob.read_stanza().await;
    assert!(refused.contains("<registration-required"), "{refused}");

    // Storage is back: the same change goes through.
    sqlx::query("DROP TRIGGER refuse")
        .execute(&mut db)
        .await
        .unwrap();
    let answer = iq(alice, "a3", "set", &room, &member).await;
    assert!(answer.contains("type=\"result\""), "{answer}");
    enter(bob, "club", "Bob").await;
    db.close().await.ok();
}
