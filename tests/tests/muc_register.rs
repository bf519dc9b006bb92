//! XEP-0045 §7.10 registering with a room and §7.12 reserved nicknames, end to end: a raw
//! client gets the `muc#register` form, registers, becomes a member with the nick reserved
//! (the owner's member list shows it; occupants see the new affiliation), another user may
//! not enter or change to that nick, `x-roomuser-item` names it, `<remove/>` cancels;
//! outcasts are refused, members-only rooms register only members; the nick and reason an
//! affiliation is given with are listed and survive a restart (SQLite, PostgreSQL);
//! slixmpp's own xep_0077 and xep_0030 plugins register, discover and cancel.

use jabberwock_tests::muc::{
    admin_item, configure, enter, instant_room, iq, log_in, log_in_again, occupant, room_jid,
    send_join, slix, slix_affiliations, slix_join, slix_reserved_nick, DISCO_INFO, MUC_X,
};
use jabberwock_tests::postgres::Scratch;
use jabberwock_tests::{RawClient, TestConfig, TestServer};

const REGISTER_GET: &str = "<query xmlns='jabber:iq:register'/>";
const REMOVE: &str = "<query xmlns='jabber:iq:register'><remove/></query>";
const RESERVED_NICK: &str =
    "<query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/>";

/// A submitted `muc#register` form with these fields (§7.10 Example 74).
fn register_form(fields: &[(&str, &str)]) -> String {
    let fields: String = fields
        .iter()
        .map(|(var, value)| format!("<field var='{var}'><value>{value}</value></field>"))
        .collect();
    format!(
        "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>\
         {fields}</x></query>"
    )
}

/// Registers `client` with `room` as `nick`; returns the answer.
async fn register(client: &mut RawClient, room: &str, id: &str, nick: &str) -> String {
    let form = register_form(&[("muc#register_roomnick", nick)]);
    iq(client, id, "set", &room_jid(room), &form).await
}

/// Asserts an IQ answer is an error with `condition`.
fn assert_error(answer: &str, condition: &str) {
    assert!(
        answer.contains("type=\"error\"") && answer.contains(&format!("<{condition} ")),
        "{condition}: {answer}"
    );
}

/// Asserts an IQ answer is a result.
fn assert_result(answer: &str) {
    assert!(answer.contains("type=\"result\""), "{answer}");
}

/// The `muc#admin` list of `affiliation` in `room`, as `owner` gets it.
async fn list(owner: &mut RawClient, room: &str, id: &str, affiliation: &str) -> String {
    let query = admin_item(&format!("<item affiliation='{affiliation}'/>"));
    let answer = iq(owner, id, "get", &room_jid(room), &query).await;
    assert_result(&answer);
    answer
}

#[tokio::test]
async fn registering_reserves_the_nickname_for_a_new_member_until_removed() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob", "carol", "mallory"]).await;
    let [alice, bob, carol, mallory] = &mut users[..] else {
        unreachable!()
    };
    let room = room_jid("den");
    instant_room(alice, "den", "Alice").await;

    // §6.4: the room says registration is possible.
    let info = iq(bob, "d1", "get", &room, DISCO_INFO).await;
    assert!(info.contains("var=\"jabber:iq:register\""), "{info}");
    // §7.12: nothing reserved yet: an empty query for the node.
    let nick = iq(bob, "n1", "get", &room, RESERVED_NICK).await;
    assert!(
        nick.contains("node=\"x-roomuser-item\"") && !nick.contains("<identity"),
        "{nick}"
    );

    // §7.10 Example 73: the form, the nickname required.
    let form = iq(bob, "r1", "get", &room, REGISTER_GET).await;
    assert_result(&form);
    assert!(
        form.contains("<value>http://jabber.org/protocol/muc#register</value>"),
        "{form}"
    );
    let nick_field = form
        .split("<field ")
        .find(|f| f.contains("var=\"muc#register_roomnick\""))
        .unwrap_or_else(|| panic!("{form}"));
    assert!(nick_field.contains("<required/>"), "{form}");
    for var in [
        "muc#register_first",
        "muc#register_last",
        "muc#register_url",
        "muc#register_email",
        "muc#register_faqentry",
    ] {
        assert!(form.contains(&format!("var=\"{var}\"")), "{var}: {form}");
    }

    // No form: bad-request; a form without the nickname: not-acceptable (XEP-0077 §3.1).
    let no_form = iq(bob, "r2", "set", &room, REGISTER_GET).await;
    assert_error(&no_form, "bad-request");
    let no_nick = register_form(&[("muc#register_first", "Robert")]);
    let answer = iq(bob, "r3", "set", &room, &no_nick).await;
    assert_error(&answer, "not-acceptable");

    // Bob is in the room as Bobby when he registers as Bob: everyone sees him a member.
    enter(bob, "den", "Bobby").await;
    alice
        .read_stanza_containing(&occupant("den", "Bobby"))
        .await;
    assert_result(&register(bob, "den", "r4", "Bob").await);
    let notice = alice
        .read_stanza_containing(&occupant("den", "Bobby"))
        .await;
    assert!(
        notice.contains("affiliation=\"member\"") && notice.contains("role=\"participant\""),
        "{notice}"
    );

    // Registered: <registered/> and the nick (XEP-0077 §3.1, as Prosody answers).
    let again = iq(bob, "r5", "get", &room, REGISTER_GET).await;
    assert!(
        again.contains("<registered/>") && again.contains("<username>Bob</username>"),
        "{again}"
    );
    // §7.12: the nick, as a conference/text identity.
    let nick = iq(bob, "n2", "get", &room, RESERVED_NICK).await;
    assert!(
        nick.contains("<identity category=\"conference\" type=\"text\" name=\"Bob\"/>"),
        "{nick}"
    );
    // §9.5: the owner sees him in the member list with it.
    let members = list(alice, "den", "l1", "member").await;
    assert!(
        members.contains("jid=\"bob@localhost\"") && members.contains("nick=\"Bob\""),
        "{members}"
    );

    // The nick is Bob's: carol may neither register it, enter with it, nor change to it.
    assert_error(&register(carol, "den", "r6", "Bob").await, "conflict");
    send_join(carol, "den", "Bob", Some(MUC_X), "").await;
    let refused = carol.read_stanza().await;
    assert!(
        refused.contains("type=\"error\"") && refused.contains("<conflict "),
        "{refused}"
    );
    enter(carol, "den", "Carol").await;
    carol
        .send(format!("<presence to='{}'/>", occupant("den", "Bob")))
        .await;
    let refused = carol.read_stanza_containing("type=\"error\"").await;
    assert!(refused.contains("<conflict "), "{refused}");
    // Nor the nick another user is in the room with.
    assert_error(&register(carol, "den", "r7", "Alice").await, "conflict");
    // Bob himself may (§7.6).
    bob.send(format!("<presence to='{}'/>", occupant("den", "Bob")))
        .await;
    let changed = bob.read_stanza_containing("<status code=\"303\"/>").await;
    assert!(changed.contains("nick=\"Bob\""), "{changed}");
    alice
        .read_stanza_containing(&format!("from=\"{}\"", occupant("den", "Bob")))
        .await;

    // An outcast may not register (§7.2.8's forbidden).
    let ban = admin_item("<item affiliation='outcast' jid='mallory@localhost'/>");
    assert_result(&iq(alice, "b1", "set", &room, &ban).await);
    assert_error(
        &iq(mallory, "r8", "get", &room, REGISTER_GET).await,
        "forbidden",
    );
    assert_error(&register(mallory, "den", "r9", "Mal").await, "forbidden");

    // <remove/> cancels: no longer a member, nothing reserved, the nick free for others.
    assert_result(&iq(bob, "r10", "set", &room, REMOVE).await);
    let notice = alice
        .read_stanza_containing(&format!("from=\"{}\"", occupant("den", "Bob")))
        .await;
    assert!(notice.contains("affiliation=\"none\""), "{notice}");
    let members = list(alice, "den", "l2", "member").await;
    assert!(!members.contains("bob@localhost"), "{members}");
    let nick = iq(bob, "n3", "get", &room, RESERVED_NICK).await;
    assert!(!nick.contains("<identity"), "{nick}");
    bob.send(format!(
        "<presence type='unavailable' to='{}'/>",
        occupant("den", "Bob")
    ))
    .await;
    bob.read_stanza_containing("type=\"unavailable\"").await;
    assert_result(&register(carol, "den", "r11", "Bob").await);
}

#[tokio::test]
async fn members_only_rooms_register_members_and_admins_reserve_nicks_with_reasons() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob", "dave"]).await;
    let [alice, bob, dave] = &mut users[..] else {
        unreachable!()
    };
    let room = room_jid("club");
    enter(alice, "club", "Alice").await;
    configure(alice, "club", "c1", &[("membersonly", "1")]).await;

    // Registration would let anyone past the member list: not for non-members (§7.10).
    assert_error(
        &iq(dave, "r1", "get", &room, REGISTER_GET).await,
        "not-allowed",
    );
    assert_error(&register(dave, "club", "r2", "Dave").await, "not-allowed");

    // §9.3: the owner adds bob with a nick and a reason; both are listed.
    let member = admin_item(
        "<item affiliation='member' jid='bob@localhost' nick='Bobcat'>\
         <reason>a friend</reason></item>",
    );
    assert_result(&iq(alice, "m1", "set", &room, &member).await);
    let members = list(alice, "club", "l1", "member").await;
    assert!(
        members.contains("nick=\"Bobcat\"") && members.contains("<reason>a friend</reason>"),
        "{members}"
    );
    // Reserved by the admin's change: bob finds it and enters with it.
    let nick = iq(bob, "n1", "get", &room, RESERVED_NICK).await;
    assert!(nick.contains("name=\"Bobcat\""), "{nick}");
    enter(bob, "club", "Bobcat").await;
    // A member registers another nick: still a member, the reason kept.
    assert_result(&register(bob, "club", "r3", "Robert").await);
    let members = list(alice, "club", "l2", "member").await;
    assert!(
        members.contains("nick=\"Robert\"") && members.contains("<reason>a friend</reason>"),
        "{members}"
    );
    // The owner registers too: still the owner, with a nick.
    assert_result(&register(alice, "club", "r4", "Al").await);
    let owners = list(alice, "club", "l3", "owner").await;
    assert!(
        owners.contains("jid=\"alice@localhost\"") && owners.contains("nick=\"Al\""),
        "{owners}"
    );
    // The owner may not give a nick someone else reserved.
    let taken = admin_item("<item affiliation='member' jid='dave@localhost' nick='Robert'/>");
    assert_error(&iq(alice, "m2", "set", &room, &taken).await, "conflict");

    // Bob cancels: he is no longer a member, so he leaves the members-only room (§9.4, 321).
    assert_result(&iq(bob, "r5", "set", &room, REMOVE).await);
    let removed = bob.read_stanza_containing("type=\"unavailable\"").await;
    assert!(removed.contains("<status code=\"321\"/>"), "{removed}");
    // The owner cancels: the nick goes, the ownership stays.
    assert_result(&iq(alice, "r6", "set", &room, REMOVE).await);
    let owners = list(alice, "club", "l4", "owner").await;
    assert!(
        owners.contains("jid=\"alice@localhost\"") && !owners.contains("nick="),
        "{owners}"
    );
}

/// Alice makes `den` persistent; bob is made a member with a nick and a reason, mallory an
/// outcast with a reason, and carol registers herself.
async fn set_up_reservations(users: &mut [RawClient]) {
    let [alice, _bob, carol, ..] = users else {
        panic!("alice, bob and carol first");
    };
    let room = room_jid("den");
    enter(alice, "den", "Alice").await;
    configure(alice, "den", "c1", &[("persistentroom", "1")]).await;
    let items = admin_item(
        "<item affiliation='member' jid='bob@localhost' nick='Bobcat'><reason>a friend</reason></item>\
         <item affiliation='outcast' jid='mallory@localhost'><reason>gyred</reason></item>",
    );
    assert_result(&iq(alice, "a1", "set", &room, &items).await);
    assert_result(&register(carol, "den", "r1", "Carol").await);
}

/// After a restart, what `set_up_reservations` left is listed and enforced.
async fn assert_reservations_kept(server: &TestServer) {
    let mut users = log_in_again(server, &["alice", "carol", "dave"]).await;
    let [alice, carol, dave] = &mut users[..] else {
        unreachable!()
    };
    let room = room_jid("den");
    let members = list(alice, "den", "l1", "member").await;
    assert!(
        members.contains("jid=\"bob@localhost\" nick=\"Bobcat\"")
            && members.contains("<reason>a friend</reason>")
            && members.contains("jid=\"carol@localhost\" nick=\"Carol\""),
        "{members}"
    );
    let outcasts = list(alice, "den", "l2", "outcast").await;
    assert!(
        outcasts.contains("jid=\"mallory@localhost\"")
            && outcasts.contains("<reason>gyred</reason>"),
        "{outcasts}"
    );
    let nick = iq(carol, "n1", "get", &room, RESERVED_NICK).await;
    assert!(nick.contains("name=\"Carol\""), "{nick}");
    send_join(dave, "den", "Bobcat", Some(MUC_X), "").await;
    let refused = dave.read_stanza().await;
    assert!(refused.contains("<conflict "), "{refused}");
}

#[tokio::test]
async fn nicks_and_reasons_of_affiliations_survive_a_restart() {
    let mut server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob", "carol", "dave", "mallory"]).await;
    set_up_reservations(&mut users).await;
    server.kill();
    server.restart();
    assert_reservations_kept(&server).await;
}

#[tokio::test]
async fn nicks_and_reasons_of_affiliations_survive_a_restart_on_postgresql() {
    let db = Scratch::create().await;
    let mut server = TestServer::start_with(TestConfig::default().storage(&db.url()));
    server.wait_started();
    let mut users = log_in(&server, &["alice", "bob", "carol", "dave", "mallory"]).await;
    set_up_reservations(&mut users).await;
    server.kill();
    server.restart();
    assert_reservations_kept(&server).await;
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn slixmpp_registers_with_a_room_discovers_its_nick_and_cancels() {
    let server = TestServer::start();
    let mut alice = slix(&server, "alice").await;
    let mut bob = slix(&server, "bob").await;
    let room = room_jid("lounge");
    slix_join(&mut alice, &room, "Alice").await;
    alice
        .command(&format!(r#"{{"cmd": "instant", "room": "{room}"}}"#))
        .await;

    // xep_0077 reads the form; the same form goes back submitted with the nickname.
    bob.command(&format!(
        r#"{{"cmd": "register", "room": "{room}", "nick": "Bob"}}"#
    ))
    .await;
    let form = bob.expect_ever(&["\"event\": \"registration\""]).await;
    assert!(
        form.contains("\"registered\": false")
            && form.contains("\"required\": [\"muc#register_roomnick\"]"),
        "{form}"
    );
    assert!(!bob.seen(&["iq_error"]), "{:?}", bob.events);
    let names = slix_reserved_nick(&mut bob, &room).await;
    assert!(names.contains("\"names\": [\"Bob\"]"), "{names}");
    let members = slix_affiliations(&mut alice, &room, "member").await;
    assert!(
        members.contains("\"jids\": [\"bob@localhost\"]"),
        "{members}"
    );

    // Asked again, xep_0077 reads <registered/> and the nick.
    bob.command(&format!(
        r#"{{"cmd": "register", "room": "{room}", "nick": "Bob"}}"#
    ))
    .await;
    let again = bob
        .expect_ever(&["\"event\": \"registration\"", "\"registered\": true"])
        .await;
    assert!(again.contains("\"username\": \"Bob\""), "{again}");

    // Another slixmpp user is refused the nick (§7.12: conflict).
    let mut carol = slix(&server, "carol").await;
    let refused = slix_join(&mut carol, &room, "Bob").await;
    assert!(refused.contains("\"condition\": \"conflict\""), "{refused}");

    // Cancelled: no nick, no membership; carol may have it.
    bob.command(&format!(r#"{{"cmd": "unregister", "room": "{room}"}}"#))
        .await;
    assert!(!bob.seen(&["iq_error"]), "{:?}", bob.events);
    let names = slix_reserved_nick(&mut bob, &room).await;
    assert!(names.contains("\"names\": []"), "{names}");
    let members = slix_affiliations(&mut alice, &room, "member").await;
    assert!(members.contains("\"jids\": []"), "{members}");
    let joined = slix_join(&mut carol, &room, "Bob").await;
    assert!(joined.contains("\"occupants\": [\"Alice\"]"), "{joined}");
    for client in [alice, bob, carol] {
        assert!(client.quit().await);
    }
}
