//! Website rooms: rooms declared in `[[modules.muc.rooms]]` exist from the start (listed,
//! with their subject, open, the configured staff as moderators); SASL ANONYMOUS guests,
//! Flash widgets and slixmpp use them like any room; the per-room limits (occupants,
//! message rate, message size) refuse with XEP-0045's and RFC 6120's conditions and deliver
//! nothing of what they refuse.

use jabberwock_tests::muc::{
    admin_item, configure, enter, groupchat, instant_room, iq, log_in, log_in_again, occupant,
    send_join, slix, slix_join, status, until_subject, DISCO_INFO, DISCO_ITEMS, MUC_X, SERVICE,
};
use jabberwock_tests::{RawClient, TestConfig, TestServer};

/// The site's lobby as an admin declares it, with `extra` lines in its table.
fn lobby(config: TestConfig, extra: &[&str]) -> TestConfig {
    let mut config = config
        .section("modules.muc", "[[modules.muc.rooms]]")
        .section("modules.muc", "jid = \"lobby\"")
        .section("modules.muc", "name = \"Website Lobby\"")
        .section("modules.muc", "description = \"Ask us anything\"")
        .section(
            "modules.muc",
            "subject = \"Welcome! Staff answer on weekdays.\"",
        )
        .section("modules.muc", "owners = [\"staff@localhost\"]")
        .section("modules.muc", "admins = [\"mod@localhost\"]");
    for line in extra {
        config = config.section("modules.muc", line);
    }
    config
}

/// A server whose `localhost` lets guests in, with the lobby declared.
fn site(extra: &[&str]) -> TestServer {
    TestServer::start_with(lobby(
        TestConfig::default().host("localhost", "anonymous = true"),
        extra,
    ))
}

/// Reads stanzas until one contains `needle`, asserting none before it contains `absent`.
async fn none_before(client: &mut RawClient, absent: &str, needle: &str) {
    loop {
        let stanza = client.read_stanza().await;
        assert!(
            !stanza.contains(absent),
            "{absent:?} was delivered: {stanza}"
        );
        if stanza.contains(needle) {
            return;
        }
    }
}

/// The error a refused stanza came back with.
async fn refusal(client: &mut RawClient) -> String {
    client.read_stanza_containing("type=\"error\"").await
}

/// `alice`, in room `tea` with `bob`, sends Bob a private message with `body`: it bounces
/// with policy-violation, and neither it nor anything before containing `absent` reaches
/// Bob (his own later message comes first).
async fn private_refused_and_none_delivered(
    alice: &mut RawClient,
    bob: &mut RawClient,
    body: &str,
    absent: &str,
) {
    alice
        .send(format!(
            "<message type='chat' to='{}'><body>{body}</body></message>",
            occupant("tea", "Bob")
        ))
        .await;
    let err = refusal(alice).await;
    assert!(err.contains("<policy-violation"), "{err}");
    bob.send(groupchat("tea", "bob-marker")).await;
    none_before(bob, absent, "bob-marker").await;
}

#[tokio::test]
async fn a_declared_room_is_there_from_the_start_and_a_guest_chats_until_a_moderator_kicks_it() {
    let server = site(&[]);
    let mut users = log_in(&server, &["alice"]).await;
    let alice = &mut users[0];

    // §6.2: listed with its name before anyone entered; §6.4: persistent, with its subject.
    let items = iq(alice, "i1", "get", SERVICE, DISCO_ITEMS).await;
    assert!(
        items.contains(&format!(
            "<item jid=\"lobby@{SERVICE}\" name=\"Website Lobby\"/>"
        )),
        "{items}"
    );
    let info = iq(alice, "i2", "get", &format!("lobby@{SERVICE}"), DISCO_INFO).await;
    for needle in [
        "muc_persistent",
        "muc_public",
        "muc_open",
        "<value>Ask us anything</value>",
        "<value>Welcome! Staff answer on weekdays.</value>",
    ] {
        assert!(info.contains(needle), "{needle}: {info}");
    }

    // A SASL ANONYMOUS guest enters: no lock, no new room (201), the configured subject
    // from the room itself.
    let (mut guest, guest_jid) =
        RawClient::login_anonymous(server.c2s, &server.cert_path(), "web").await;
    let got = enter(&mut guest, "lobby", "Guest").await;
    assert!(!got.iter().any(|s| s.contains(&status(201))), "{got:?}");
    let subject = got.last().unwrap();
    assert!(
        subject.contains(&format!("from=\"lobby@{SERVICE}\""))
            && subject.contains("<subject>Welcome! Staff answer on weekdays.</subject>"),
        "{subject}"
    );
    let own = &got[got.len() - 2];
    assert!(
        own.contains("affiliation=\"none\"") && own.contains("role=\"participant\""),
        "{own}"
    );

    // The configured owner, from a Flash client, is a moderator on entering (§5.1.2).
    server.add_user("staff@localhost", "pw-staff");
    let (mut staff, _) = RawClient::login_flash(server.c2s, "staff", "pw-staff", "widget").await;
    send_join(&mut staff, "lobby", "Staff", Some(MUC_X), "\0").await;
    let got = until_subject(&mut staff).await;
    let own = got
        .iter()
        .find(|s| s.contains(&status(110)))
        .unwrap_or_else(|| panic!("{got:?}"));
    assert!(
        own.contains("affiliation=\"owner\"") && own.contains("role=\"moderator\""),
        "{own}"
    );

    // The guest chats; another occupant gets it.
    enter(alice, "lobby", "Alice").await;
    guest.send(groupchat("lobby", "hello from a guest")).await;
    let got = alice.read_stanza_containing("hello from a guest").await;
    assert!(
        got.contains(&format!("from=\"{}\"", occupant("lobby", "Guest"))),
        "{got}"
    );

    // §8.2: the moderator kicks the guest, who gets 307 with 110, as do the others (307).
    staff
        .send(format!(
            "<iq type='set' id='kick1' to='lobby@{SERVICE}'>\
             <query xmlns='http://jabber.org/protocol/muc#admin'>\
             <item nick='Guest' role='none'><reason>no spam</reason></item></query></iq>\0"
        ))
        .await;
    let answer = staff.read_stanza_containing("id=\"kick1\"").await;
    assert!(answer.contains("type=\"result\""), "{answer}");
    let kicked = guest.read_stanza_containing("type=\"unavailable\"").await;
    assert!(
        kicked.contains(&status(307))
            && kicked.contains(&status(110))
            && kicked.contains(&format!("to=\"{guest_jid}\"")),
        "{kicked}"
    );
    let seen = alice
        .read_stanza_containing(&format!("from=\"{}\"", occupant("lobby", "Guest")))
        .await;
    assert!(
        seen.contains("type=\"unavailable\"") && seen.contains(&status(307)),
        "{seen}"
    );
}

#[tokio::test]
async fn a_flash_widget_and_a_tcp_client_chat_in_a_declared_room() {
    let server = site(&[]);
    let mut users = log_in(&server, &["alice"]).await;
    let alice = &mut users[0];
    server.add_user("widget@localhost", "pw-widget");
    let (mut widget, _) = RawClient::login_flash(server.c2s, "widget", "pw-widget", "xiff").await;

    // The widget enters the old way (no <x/>, §7.1.1), NUL-framed, and gets the subject.
    send_join(&mut widget, "lobby", "Widget", None, "\0").await;
    let got = until_subject(&mut widget).await;
    assert!(
        got.last()
            .unwrap()
            .contains("<subject>Welcome! Staff answer on weekdays.</subject>"),
        "{got:?}"
    );
    enter(alice, "lobby", "Alice").await;

    widget
        .send(format!(
            "<message type=\"groupchat\" to=\"lobby@{SERVICE}\"><body>hi from flash</body></message>\0"
        ))
        .await;
    let got = alice.read_stanza_containing("hi from flash").await;
    assert!(got.contains(&occupant("lobby", "Widget")), "{got}");
    alice.send(groupchat("lobby", "hi from tcp")).await;
    let got = widget.read_stanza_containing("hi from tcp").await;
    assert!(
        got.contains(&format!("from=\"{}\"", occupant("lobby", "Alice")))
            && got.contains("to=\"widget@localhost/xiff\""),
        "{got}"
    );
}

#[tokio::test]
async fn slixmpp_staff_kick_and_ban_a_guest_in_a_declared_room() {
    let server = site(&[]);
    let room = format!("lobby@{SERVICE}");
    let (mut guest, guest_jid) =
        RawClient::login_anonymous(server.c2s, &server.cert_path(), "web").await;
    enter(&mut guest, "lobby", "Guest").await;

    // The configured admin, through slixmpp's own xep_0045 plugin.
    let mut admin = slix(&server, "mod").await;
    let joined = slix_join(&mut admin, &room, "Mod").await;
    assert!(joined.contains("\"Guest\""), "{joined}");
    admin
        .command(&format!(
            r#"{{"cmd": "kick", "room": "{room}", "nick": "Guest"}}"#
        ))
        .await;
    let kicked = guest.read_stanza_containing("type=\"unavailable\"").await;
    assert!(kicked.contains(&status(307)), "{kicked}");

    enter(&mut guest, "lobby", "Guest").await;
    let bare = guest_jid.split('/').next().unwrap();
    let banned = admin
        .command(&format!(
            r#"{{"cmd": "ban", "room": "{room}", "jid": "{bare}"}}"#
        ))
        .await;
    assert!(!banned.contains("iq_error"), "{banned}");
    let gone = guest.read_stanza_containing("type=\"unavailable\"").await;
    assert!(gone.contains(&status(301)), "{gone}");
    // §7.2.8: banned, the guest may not come back.
    send_join(&mut guest, "lobby", "Guest", Some(MUC_X), "").await;
    let err = refusal(&mut guest).await;
    assert!(err.contains("<forbidden"), "{err}");
    assert!(admin.quit().await);
}

#[tokio::test]
async fn a_full_room_refuses_entry_with_service_unavailable_but_lets_its_staff_in() {
    // Two per room on the service; the lobby declares room for three.
    let server = TestServer::start_with(lobby(
        TestConfig::default().section("modules.muc", "max_occupants = 2"),
        &["max_occupants = 3"],
    ));
    let mut users = log_in(&server, &["alice", "bob", "carol", "dave"]).await;
    let [alice, bob, carol, dave] = &mut users[..] else {
        unreachable!()
    };

    instant_room(alice, "tea", "Alice").await;
    enter(bob, "tea", "Bob").await;
    // §7.2.10: full: service-unavailable of type wait, and nobody hears of the entrant.
    send_join(carol, "tea", "Carol", Some(MUC_X), "").await;
    let err = refusal(carol).await;
    assert!(
        err.contains("<error type=\"wait\"><service-unavailable")
            && err.contains(&format!("from=\"{}\"", occupant("tea", "Carol"))),
        "{err}"
    );
    alice.send(groupchat("tea", "marker")).await;
    none_before(bob, "Carol", "marker").await;

    // The declared lobby holds three; the fourth waits, its owner still enters.
    for (client, nick) in [(&mut *alice, "A"), (&mut *bob, "B"), (&mut *carol, "C")] {
        enter(client, "lobby", nick).await;
    }
    send_join(dave, "lobby", "D", Some(MUC_X), "").await;
    let err = refusal(dave).await;
    assert!(
        err.contains("<error type=\"wait\"><service-unavailable"),
        "{err}"
    );
    server.add_user("staff@localhost", "pw-staff");
    let (mut staff, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "staff", "pw-staff", "desk")
            .await;
    let got = enter(&mut staff, "lobby", "Staff").await;
    assert!(got.iter().any(|s| s.contains(&status(110))), "{got:?}");
}

#[tokio::test]
async fn an_occupant_over_the_message_rate_is_refused_and_nothing_is_delivered() {
    // Three at once, then one every ten seconds; the declared lobby has no rate limit.
    let server = TestServer::start_with(lobby(
        TestConfig::default()
            .section("modules.muc", "messages_per_second = 0.1")
            .section("modules.muc", "message_burst = 3"),
        &["messages_per_second = 0.0"],
    ));
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let (alice, bob) = users.split_at_mut(1);
    let (alice, bob) = (&mut alice[0], &mut bob[0]);

    instant_room(alice, "tea", "Alice").await;
    enter(bob, "tea", "Bob").await;
    // Below the limit everything arrives.
    for n in 1..=3 {
        alice.send(groupchat("tea", &format!("burst-{n}"))).await;
    }
    for n in 1..=3 {
        bob.read_stanza_containing(&format!("burst-{n}")).await;
    }
    alice
        .send(format!(
            "<message type='groupchat' id='m4' to='tea@{SERVICE}'><body>one-too-many</body></message>"
        ))
        .await;
    let err = refusal(alice).await;
    assert!(
        err.contains("<error type=\"wait\"><policy-violation") && err.contains("id=\"m4\""),
        "{err}"
    );
    // A private message counts too.
    private_refused_and_none_delivered(alice, bob, "private-too-many", "too-many").await;

    // In the lobby, declared without a rate limit, twenty in a row all arrive.
    enter(alice, "lobby", "Alice").await;
    enter(bob, "lobby", "Bob").await;
    for n in 1..=20 {
        alice.send(groupchat("lobby", &format!("free-{n}"))).await;
    }
    for n in 1..=20 {
        bob.read_stanza_containing(&format!("free-{n}<")).await;
    }
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_and_nothing_is_delivered() {
    let server = TestServer::start_with(lobby(
        TestConfig::default().section("modules.muc", "max_message_bytes = 600"),
        &["max_message_bytes = 2000"],
    ));
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let (alice, bob) = users.split_at_mut(1);
    let (alice, bob) = (&mut alice[0], &mut bob[0]);
    instant_room(alice, "tea", "Alice").await;
    enter(bob, "tea", "Bob").await;

    let short = format!("short-{}", "s".repeat(400));
    let long = format!("long-{}", "l".repeat(800));
    alice.send(groupchat("tea", &short)).await;
    bob.read_stanza_containing(&short).await;
    alice.send(groupchat("tea", &long)).await;
    let err = refusal(alice).await;
    assert!(
        err.contains("<error type=\"modify\"><policy-violation") && err.contains("600 bytes"),
        "{err}"
    );
    private_refused_and_none_delivered(alice, bob, &long, "long-").await;

    // The lobby declares a larger limit.
    enter(alice, "lobby", "Alice").await;
    enter(bob, "lobby", "Bob").await;
    alice.send(groupchat("lobby", &long)).await;
    bob.read_stanza_containing(&long).await;
}

/// A declared room is also a stored one: what its owner changes survives a restart, except
/// what the config declares, where the config wins again.
#[tokio::test]
async fn a_declared_room_keeps_its_owners_changes_across_a_restart_but_not_over_the_config() {
    let mut server = site(&[]);
    let mut users = log_in(&server, &["staff"]).await;
    let staff = &mut users[0];
    enter(staff, "lobby", "Staff").await;
    // The name is declared; moderation and the member list are not.
    configure(
        staff,
        "lobby",
        "c1",
        &[("roomname", "Renamed"), ("moderatedroom", "1")],
    )
    .await;
    let member = admin_item("<item affiliation='member' jid='carol@localhost'/>");
    let answer = iq(staff, "a1", "set", &format!("lobby@{SERVICE}"), &member).await;
    assert!(answer.contains("type=\"result\""), "{answer}");
    let info = iq(staff, "i1", "get", &format!("lobby@{SERVICE}"), DISCO_INFO).await;
    assert!(
        info.contains("name=\"Renamed\"") && info.contains("muc_moderated"),
        "{info}"
    );

    assert!(server.terminate().success());
    server.restart();
    let mut users = log_in_again(&server, &["staff"]).await;
    let staff = &mut users[0];
    let info = iq(staff, "i2", "get", &format!("lobby@{SERVICE}"), DISCO_INFO).await;
    assert!(
        info.contains("name=\"Website Lobby\""),
        "the config's name: {info}"
    );
    assert!(
        info.contains("muc_moderated"),
        "the owner's moderation kept: {info}"
    );
    let members = admin_item("<item affiliation='member'/>");
    let list = iq(staff, "a2", "get", &format!("lobby@{SERVICE}"), &members).await;
    assert!(list.contains("jid=\"carol@localhost\""), "{list}");
}
