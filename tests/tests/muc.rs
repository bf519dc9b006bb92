//! XEP-0045 Multi-User Chat end to end: slixmpp's own xep_0045 plugin runs a room's life
//! (create, configure, chat, subject, private message, kick, ban, destroy); raw clients show
//! the wire details slixmpp hides (groupchat 1.0 entry, stanza order and status codes,
//! nickname conflicts, history limits, leaving on disconnect, members-only, passwords, a
//! Flash client in a room, mediated invitations and declines, XEP-0421 occupant ids) and the
//! service as the host shows it (disco, switched off); XEP-0249 direct invitations pass
//! through the server untouched.

use jabberwock_tests::muc::{
    admin_item, configure, enter, groupchat, instant_room, invitation, iq, log_in, occupant,
    occupant_id, send_join, slix, slix_join, status, until_subject, DISCO_INFO, DISCO_ITEMS, MUC_X,
    SERVICE,
};
use jabberwock_tests::{RawClient, TestConfig, TestServer};

#[tokio::test]
async fn groupchat_1_0_entry_makes_an_instant_room_and_entering_comes_in_order() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let (alice, bob) = users.split_at_mut(1);
    let (alice, bob) = (&mut alice[0], &mut bob[0]);

    // §7.1.1: an old client's presence, without <x/>: the room is created, unlocked.
    send_join(alice, "tea", "Alice", None, "").await;
    let got = until_subject(alice).await;
    assert_eq!(got.len(), 2, "{got:?}");
    let own = &got[0];
    assert!(
        own.contains(&format!("from=\"{}\"", occupant("tea", "Alice"))),
        "{own}"
    );
    assert!(
        own.contains("affiliation=\"owner\"") && own.contains("role=\"moderator\""),
        "{own}"
    );
    assert!(
        own.contains(&status(110)) && own.contains(&status(201)),
        "{own}"
    );
    // §7.2.15: the subject, empty, from the room itself.
    assert!(
        got[1].contains(&format!("from=\"tea@{SERVICE}\"")),
        "{}",
        got[1]
    );
    assert!(got[1].contains("<subject/>"), "{}", got[1]);

    // Bob enters at once (no configuration was needed): alice's presence first, then his
    // own with 110, then the subject.
    let got = enter(bob, "tea", "Bob").await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got[0].contains(&format!("from=\"{}\"", occupant("tea", "Alice"))),
        "{}",
        got[0]
    );
    assert!(!got[0].contains(&status(110)), "{}", got[0]);
    // Semi-anonymous (the default): bob, a participant, does not see alice's real JID.
    assert!(
        !got[0].contains("jid=\"alice@localhost/desk\""),
        "{}",
        got[0]
    );
    assert!(
        got[1].contains(&format!("from=\"{}\"", occupant("tea", "Bob"))),
        "{}",
        got[1]
    );
    assert!(
        got[1].contains(&status(110)) && !got[1].contains(&status(201)),
        "{}",
        got[1]
    );
    assert!(got[1].contains("role=\"participant\""), "{}", got[1]);
    assert!(got[2].contains("<subject"), "{}", got[2]);
    // Alice, a moderator, sees bob's real JID.
    let seen = alice.read_stanza_containing(&occupant("tea", "Bob")).await;
    assert!(seen.contains("jid=\"bob@localhost/desk\""), "{seen}");

    // Groupchat messages reach everyone from the sender's room JID.
    bob.send(groupchat("tea", "hello all")).await;
    for client in [&mut *alice, &mut *bob] {
        let message = client.read_stanza_containing("hello all").await;
        assert!(
            message.contains(&format!("from=\"{}\"", occupant("tea", "Bob"))),
            "{message}"
        );
        assert!(message.contains("type=\"groupchat\""), "{message}");
    }

    // §7.6: a nickname change, 303 with the new nick, then the new presence.
    bob.send(format!("<presence to='{}'/>", occupant("tea", "Robert")))
        .await;
    let gone = alice.read_stanza_containing("unavailable").await;
    assert!(
        gone.contains(&occupant("tea", "Bob")) && gone.contains(&status(303)),
        "{gone}"
    );
    assert!(gone.contains("nick=\"Robert\""), "{gone}");
    let back = alice
        .read_stanza_containing(&occupant("tea", "Robert"))
        .await;
    assert!(!back.contains("unavailable"), "{back}");
    let own = bob.read_stanza_containing(&status(303)).await;
    assert!(own.contains(&status(110)), "{own}");

    // §7.14: leaving; the leaver gets its own unavailable with 110.
    bob.send(format!(
        "<presence type='unavailable' to='{}'/>",
        occupant("tea", "Robert")
    ))
    .await;
    let own = bob.read_stanza_containing("unavailable").await;
    assert!(own.contains(&status(110)), "{own}");
    let left = alice.read_stanza_containing("unavailable").await;
    assert!(
        left.contains(&occupant("tea", "Robert")) && !left.contains(&status(110)),
        "{left}"
    );
}

#[tokio::test]
async fn a_new_room_is_locked_until_its_owner_configures_it() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let (alice, bob) = users.split_at_mut(1);
    let (alice, bob) = (&mut alice[0], &mut bob[0]);

    let got = enter(alice, "den", "Alice").await;
    assert!(got[0].contains(&status(201)), "{got:?}");
    // §10.1.1: others get item-not-found while it is locked, with the MUC <x/>.
    send_join(bob, "den", "Bob", Some(MUC_X), "").await;
    let refused = bob.read_stanza().await;
    assert!(
        refused.contains("type=\"error\"") && refused.contains("<item-not-found"),
        "{refused}"
    );
    assert!(
        refused.contains("http://jabber.org/protocol/muc\""),
        "{refused}"
    );

    // §10.1.3: the owner reads the form and submits it.
    let form = iq(
        alice,
        "f1",
        "get",
        "den@conference.localhost",
        "<query xmlns='http://jabber.org/protocol/muc#owner'/>",
    )
    .await;
    for var in [
        "roomname",
        "roomdesc",
        "publicroom",
        "membersonly",
        "moderatedroom",
        "passwordprotectedroom",
        "roomsecret",
        "whois",
        "changesubject",
        "maxusers",
        "persistentroom",
        "allowinvites",
    ] {
        assert!(
            form.contains(&format!("var=\"muc#roomconfig_{var}\"")),
            "{var}: {form}"
        );
    }
    // Bob may not read it.
    let refused = iq(
        bob,
        "f2",
        "get",
        "den@conference.localhost",
        "<query xmlns='http://jabber.org/protocol/muc#owner'/>",
    )
    .await;
    assert!(refused.contains("<forbidden"), "{refused}");
    configure(
        alice,
        "den",
        "f3",
        &[("roomname", "The Den"), ("whois", "anyone")],
    )
    .await;
    let got = enter(bob, "den", "Bob").await;
    let own = &got[got.len() - 2];
    // §7.2.4: non-anonymous, said with 100; everyone sees real JIDs.
    assert!(
        own.contains(&status(100)) && own.contains(&status(110)),
        "{own}"
    );
    assert!(
        got[0].contains("jid=\"alice@localhost/desk\""),
        "{}",
        got[0]
    );

    // The room's disco#info shows the configuration.
    let info = iq(bob, "i1", "get", "den@conference.localhost", DISCO_INFO).await;
    for feature in [
        "http://jabber.org/protocol/muc",
        "muc_public",
        "muc_open",
        "muc_temporary",
        "muc_unmoderated",
        "muc_nonanonymous",
        "muc_unsecured",
        "urn:xmpp:occupant-id:0",
    ] {
        assert!(
            info.contains(&format!("<feature var=\"{feature}\"/>")),
            "{feature}: {info}"
        );
    }
    assert!(
        info.contains("category=\"conference\"") && info.contains("name=\"The Den\""),
        "{info}"
    );
    assert!(
        info.contains("muc#roominfo_occupants\"><value>2</value>"),
        "{info}"
    );
}

#[tokio::test]
async fn nickname_conflict_and_messages_from_non_occupants_are_refused() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let (alice, bob) = users.split_at_mut(1);
    let (alice, bob) = (&mut alice[0], &mut bob[0]);
    instant_room(alice, "hall", "Alice").await;

    // §7.2.9: the nickname is taken.
    send_join(bob, "hall", "Alice", Some(MUC_X), "").await;
    let refused = bob.read_stanza().await;
    assert!(
        refused.contains("type=\"error\"") && refused.contains("<conflict"),
        "{refused}"
    );
    assert!(
        refused.contains(&format!("from=\"{}\"", occupant("hall", "Alice"))),
        "{refused}"
    );

    // §7.4: only occupants send to the room.
    bob.send(groupchat("hall", "let me in")).await;
    let refused = bob.read_stanza_containing("type=\"error\"").await;
    assert!(refused.contains("<not-acceptable"), "{refused}");
    // XEP-0410 self-ping: a non-occupant is told it is not in the room; an occupant's
    // ping to itself is answered by the room (joined), not relayed.
    let ping = "<ping xmlns='urn:xmpp:ping'/>";
    let answer = iq(bob, "p1", "get", &occupant("hall", "Alice"), ping).await;
    assert!(answer.contains("<not-acceptable"), "{answer}");
    let answer = iq(alice, "p2", "get", &occupant("hall", "Alice"), ping).await;
    assert!(answer.contains("<feature-not-implemented"), "{answer}");
    // A room that does not exist.
    bob.send(groupchat("nowhere", "anyone?")).await;
    let refused = bob.read_stanza_containing("type=\"error\"").await;
    assert!(refused.contains("<item-not-found"), "{refused}");
}

#[tokio::test]
async fn history_comes_after_the_presence_within_the_limits_asked_and_before_the_subject() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let alice = &mut users[0];
    instant_room(alice, "book", "Alice").await;
    alice
        .send(format!(
            "<message type='groupchat' to='book@{SERVICE}'><subject>Chapter one</subject></message>"
        ))
        .await;
    alice.read_stanza_containing("Chapter one").await;
    for body in ["first", "second", "third"] {
        alice.send(groupchat("book", body)).await;
        alice.read_stanza_containing(body).await;
    }
    let bob = &mut users[1];

    // No limits: all three, stamped by the room, then the subject set by alice.
    let got = enter(bob, "book", "Bob").await;
    let bodies: Vec<&String> = got.iter().filter(|s| s.contains("<body>")).collect();
    assert_eq!(bodies.len(), 3, "{got:?}");
    assert!(
        bodies[0].contains("first") && bodies[2].contains("third"),
        "{got:?}"
    );
    assert!(
        bodies[0].contains(&format!(
            "<delay xmlns=\"urn:xmpp:delay\" from=\"book@{SERVICE}\""
        )),
        "{}",
        bodies[0]
    );
    let subject = got.last().unwrap();
    assert!(
        subject.contains("<subject>Chapter one</subject>"),
        "{subject}"
    );
    assert!(
        subject.contains(&format!("from=\"{}\"", occupant("book", "Alice"))),
        "{subject}"
    );
    // The order: presence (own with 110 last), history, subject.
    let own = got.iter().position(|s| s.contains(&status(110))).unwrap();
    let first = got.iter().position(|s| s.contains("first")).unwrap();
    assert!(own < first, "{got:?}");
    assert!(
        got[..own].iter().all(|s| s.starts_with("<presence")),
        "{got:?}"
    );
    bob.send(format!(
        "<presence type='unavailable' to='{}'/>",
        occupant("book", "Bob")
    ))
    .await;
    bob.read_stanza_containing("unavailable").await;

    // §7.2.14: maxstanzas.
    send_join(
        bob,
        "book",
        "Bob",
        Some("<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='2'/></x>"),
        "",
    )
    .await;
    let got = until_subject(bob).await;
    let bodies: Vec<&String> = got.iter().filter(|s| s.contains("<body>")).collect();
    assert_eq!(bodies.len(), 2, "{got:?}");
    assert!(
        bodies[0].contains("second") && bodies[1].contains("third"),
        "{got:?}"
    );
    bob.send(format!(
        "<presence type='unavailable' to='{}'/>",
        occupant("book", "Bob")
    ))
    .await;
    bob.read_stanza_containing("unavailable").await;

    // maxchars='0': none; a since in the future: none.
    for limit in ["maxchars='0'", "since='2999-01-01T00:00:00Z'"] {
        let x = format!("<x xmlns='http://jabber.org/protocol/muc'><history {limit}/></x>");
        send_join(bob, "book", "Bob", Some(&x), "").await;
        let got = until_subject(bob).await;
        assert!(
            !got.iter().any(|s| s.contains("<body>")),
            "{limit}: {got:?}"
        );
        bob.send(format!(
            "<presence type='unavailable' to='{}'/>",
            occupant("book", "Bob")
        ))
        .await;
        bob.read_stanza_containing("unavailable").await;
    }
}

#[tokio::test]
async fn an_occupant_whose_connection_drops_leaves_the_room() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let mut bob = users.pop().unwrap();
    let alice = &mut users[0];
    instant_room(alice, "pub", "Alice").await;
    enter(&mut bob, "pub", "Bob").await;
    alice.read_stanza_containing(&occupant("pub", "Bob")).await;
    // The TCP connection is gone without a goodbye: the server sends one for bob.
    drop(bob);
    let left = alice.read_stanza_containing("unavailable").await;
    assert!(
        left.contains(&format!("from=\"{}\"", occupant("pub", "Bob"))),
        "{left}"
    );
    assert!(left.contains("role=\"none\""), "{left}");
}

#[tokio::test]
async fn an_error_from_an_occupants_address_removes_it_with_status_333() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let (alice, bob) = users.split_at_mut(1);
    let (alice, bob) = (&mut alice[0], &mut bob[0]);
    instant_room(alice, "inn", "Alice").await;
    enter(bob, "inn", "Bob").await;
    alice.read_stanza_containing(&occupant("inn", "Bob")).await;
    // Bob's client answers the room with an error, as a broken client or a server that
    // lost him would.
    bob.send(format!(
        "<message type='error' to='inn@{SERVICE}'><error type='cancel'>\
         <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
    ))
    .await;
    let removed = alice.read_stanza_containing("unavailable").await;
    assert!(
        removed.contains(&occupant("inn", "Bob")) && removed.contains(&status(333)),
        "{removed}"
    );
    // He is no longer an occupant.
    bob.send(groupchat("inn", "still here?")).await;
    let refused = bob.read_stanza_containing("type=\"error\"").await;
    assert!(refused.contains("<not-acceptable"), "{refused}");
}

#[tokio::test]
async fn a_flash_client_and_a_tcp_client_share_a_room() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice"]).await;
    let alice = &mut users[0];
    server.add_user("flash@localhost", "pw-flash");
    let (mut flash, _) = RawClient::login_flash(server.c2s, "flash", "pw-flash", "xiff").await;
    instant_room(alice, "mix", "Alice").await;

    // The Flash widget joins the old way (no <x/>), NUL-framed.
    send_join(&mut flash, "mix", "Widget", None, "\0").await;
    let mut units = Vec::new();
    loop {
        let unit = flash.read_unit().await;
        let done = unit.contains("<subject");
        units.push(unit);
        if done {
            break;
        }
    }
    assert!(units[0].contains(&occupant("mix", "Alice")), "{units:?}");
    assert!(units.iter().any(|u| u.contains(&status(110))), "{units:?}");
    alice
        .read_stanza_containing(&occupant("mix", "Widget"))
        .await;

    flash
        .send(format!("<message type=\"groupchat\" to=\"mix@{SERVICE}\"><body>hi from flash</body></message>\0"))
        .await;
    let got = alice.read_stanza_containing("hi from flash").await;
    assert!(got.contains(&occupant("mix", "Widget")), "{got}");
    alice.send(groupchat("mix", "hi from tcp")).await;
    let unit = loop {
        let unit = flash.read_unit().await;
        if unit.contains("hi from tcp") {
            break unit;
        }
    };
    assert!(unit.contains(&occupant("mix", "Alice")), "{unit}");
    // §7.5: a private message, to the widget's real JID.
    alice
        .send(format!(
            "<message type='chat' to='{}'><body>just you</body></message>",
            occupant("mix", "Widget")
        ))
        .await;
    let unit = loop {
        let unit = flash.read_unit().await;
        if unit.contains("just you") {
            break unit;
        }
    };
    assert!(
        unit.contains(&format!("from=\"{}\"", occupant("mix", "Alice"))),
        "{unit}"
    );
    assert!(unit.contains("to=\"flash@localhost/xiff\""), "{unit}");
}

#[tokio::test]
async fn members_only_rooms_want_members_and_protected_rooms_the_password() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let (alice, bob) = users.split_at_mut(1);
    let (alice, bob) = (&mut alice[0], &mut bob[0]);
    enter(alice, "club", "Alice").await;
    configure(alice, "club", "c1", &[("membersonly", "1")]).await;
    // §7.2.7: not a member.
    send_join(bob, "club", "Bob", Some(MUC_X), "").await;
    let refused = bob.read_stanza().await;
    assert!(refused.contains("<registration-required"), "{refused}");
    // §9.3: alice makes him a member; he may enter.
    let answer = iq(alice, "m1", "set", &format!("club@{SERVICE}"), "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='bob@localhost'/></query>").await;
    assert!(answer.contains("type=\"result\""), "{answer}");
    let list = iq(
        alice,
        "m2",
        "get",
        &format!("club@{SERVICE}"),
        "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query>",
    )
    .await;
    assert!(list.contains("jid=\"bob@localhost\""), "{list}");
    let got = enter(bob, "club", "Bob").await;
    assert!(
        got.iter()
            .any(|s| s.contains(&status(110)) && s.contains("affiliation=\"member\"")),
        "{got:?}"
    );
    // §9.4: no longer a member, he is removed with 321.
    iq(alice, "m3", "set", &format!("club@{SERVICE}"), "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='none' jid='bob@localhost'/></query>").await;
    let removed = bob.read_stanza_containing("unavailable").await;
    assert!(
        removed.contains(&status(321)) && removed.contains(&status(110)),
        "{removed}"
    );

    enter(alice, "vault", "Alice").await;
    configure(
        alice,
        "vault",
        "c2",
        &[("passwordprotectedroom", "1"), ("roomsecret", "sesame")],
    )
    .await;
    // §7.2.6: no password, or a wrong one.
    for x in [
        MUC_X,
        "<x xmlns='http://jabber.org/protocol/muc'><password>wrong</password></x>",
    ] {
        send_join(bob, "vault", "Bob", Some(x), "").await;
        let refused = bob.read_stanza().await;
        assert!(refused.contains("<not-authorized"), "{refused}");
    }
    send_join(
        bob,
        "vault",
        "Bob",
        Some("<x xmlns='http://jabber.org/protocol/muc'><password>sesame</password></x>"),
        "",
    )
    .await;
    let got = until_subject(bob).await;
    assert!(got.iter().any(|s| s.contains(&status(110))), "{got:?}");
    let info = iq(bob, "i1", "get", &format!("vault@{SERVICE}"), DISCO_INFO).await;
    assert!(info.contains("muc_passwordprotected"), "{info}");

    // §7.2.10: a full room.
    configure(alice, "vault", "c3", &[("maxusers", "2")]).await;
    server.add_user("carol@localhost", "pw-carol");
    let (mut carol, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "carol", "pw-carol", "desk")
            .await;
    send_join(
        &mut carol,
        "vault",
        "Carol",
        Some("<x xmlns='http://jabber.org/protocol/muc'><password>sesame</password></x>"),
        "",
    )
    .await;
    let refused = carol.read_stanza().await;
    assert!(refused.contains("<service-unavailable"), "{refused}");
}

#[tokio::test]
async fn an_admin_request_with_a_refused_item_changes_nothing() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice"]).await;
    let alice = &mut users[0];
    enter(alice, "club", "Alice").await;
    configure(alice, "club", "c1", &[("persistentroom", "1")]).await;
    // The first item alone would pass; the second is refused (§9: the whole request is).
    let answer = iq(
        alice,
        "a1",
        "set",
        &format!("club@{SERVICE}"),
        "<query xmlns='http://jabber.org/protocol/muc#admin'>\
         <item affiliation='member' jid='bob@localhost'/>\
         <item affiliation='member' jid='@bad'/></query>",
    )
    .await;
    assert!(answer.contains("type=\"error\""), "{answer}");
    let list = iq(
        alice,
        "a2",
        "get",
        &format!("club@{SERVICE}"),
        "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query>",
    )
    .await;
    assert!(list.contains("type=\"result\""), "{list}");
    assert!(!list.contains("bob@localhost"), "{list}");
}

#[tokio::test]
async fn a_disco_node_the_room_does_not_have_is_item_not_found() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice"]).await;
    let alice = &mut users[0];
    enter(alice, "club", "Alice").await;
    let answer = iq(
        alice,
        "n1",
        "get",
        &format!("club@{SERVICE}"),
        "<query xmlns='http://jabber.org/protocol/disco#info' node='no-such-node'/>",
    )
    .await;
    assert!(answer.contains("type=\"error\""), "{answer}");
    assert!(answer.contains("<item-not-found"), "{answer}");
}

#[tokio::test]
async fn the_host_lists_the_service_and_the_service_its_public_rooms() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice"]).await;
    let alice = &mut users[0];
    let items = iq(alice, "h1", "get", "localhost", DISCO_ITEMS).await;
    assert!(items.contains(&format!("jid=\"{SERVICE}\"")), "{items}");
    let info = iq(alice, "s1", "get", SERVICE, DISCO_INFO).await;
    assert!(
        info.contains("category=\"conference\"") && info.contains("type=\"text\""),
        "{info}"
    );
    assert!(
        info.contains("<feature var=\"http://jabber.org/protocol/muc\"/>"),
        "{info}"
    );

    instant_room(alice, "open", "Alice").await;
    enter(alice, "hidden", "Alice").await;
    configure(alice, "hidden", "c1", &[("publicroom", "0")]).await;
    enter(alice, "locked", "Alice").await;
    let items = iq(alice, "s2", "get", SERVICE, DISCO_ITEMS).await;
    assert!(
        items.contains(&format!("jid=\"open@{SERVICE}\"")),
        "{items}"
    );
    assert!(
        !items.contains("hidden@") && !items.contains("locked@"),
        "{items}"
    );
    // §10.1.3: cancelling the first configuration destroys the new room.
    let answer = iq(alice, "x1", "set", &format!("locked@{SERVICE}"), "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='cancel'/></query>").await;
    assert!(answer.contains("type=\"result\""), "{answer}");
    let gone = iq(alice, "x2", "get", &format!("locked@{SERVICE}"), DISCO_INFO).await;
    assert!(gone.contains("<item-not-found"), "{gone}");
}

#[tokio::test]
async fn switched_off_the_service_is_gone_from_disco_and_routing() {
    let config = TestConfig::default().section("modules.muc", "enabled = false");
    let server = TestServer::start_with(config);
    let mut users = log_in(&server, &["alice"]).await;
    let alice = &mut users[0];
    let items = iq(alice, "h1", "get", "localhost", DISCO_ITEMS).await;
    assert!(
        items.contains("type=\"result\"") && !items.contains(SERVICE),
        "{items}"
    );
    let err = iq(alice, "s1", "get", SERVICE, DISCO_INFO).await;
    assert!(err.contains("<remote-server-not-found"), "{err}");
    send_join(alice, "tea", "Alice", Some(MUC_X), "").await;
    let err = alice.read_stanza_containing("type=\"error\"").await;
    assert!(err.contains("<remote-server-not-found"), "{err}");
}

#[tokio::test]
async fn slixmpp_runs_a_room_from_creation_to_destruction() {
    let server = TestServer::start();
    let mut alice = slix(&server, "alice").await;
    let mut bob = slix(&server, "bob").await;
    let room = format!("lounge@{SERVICE}");

    // Created (201) and made an instant room through slixmpp's own calls.
    let joined = slix_join(&mut alice, &room, "Alice").await;
    assert!(joined.contains("201") && joined.contains("110"), "{joined}");
    alice
        .command(&format!(r#"{{"cmd": "instant", "room": "{room}"}}"#))
        .await;
    assert!(!alice.seen(&["iq_error"]), "{:?}", alice.events);
    alice
        .command(&format!(r#"{{"cmd": "configure", "room": "{room}", "fields": {{"muc#roomconfig_roomname": "The Lounge", "muc#roomconfig_changesubject": "1"}}}}"#))
        .await;
    let form = alice.expect_ever(&["\"event\": \"config\""]).await;
    assert!(form.contains("muc#roomconfig_roomname"), "{form}");

    let joined = slix_join(&mut bob, &room, "Bob").await;
    assert!(joined.contains("\"occupants\": [\"Alice\"]"), "{joined}");
    alice
        .expect_ever(&["\"event\": \"muc_presence\"", "\"nick\": \"Bob\""])
        .await;

    // Groupchat both ways.
    bob.command(&format!(
        r#"{{"cmd": "say", "room": "{room}", "body": "hello room"}}"#
    ))
    .await;
    for client in [&mut alice, &mut bob] {
        client
            .expect_ever(&[
                "\"event\": \"groupchat\"",
                "\"nick\": \"Bob\"",
                "hello room",
            ])
            .await;
    }
    // The subject: changesubject lets bob, a participant, set it.
    bob.command(&format!(
        r#"{{"cmd": "subject", "room": "{room}", "subject": "Tea time"}}"#
    ))
    .await;
    alice
        .expect_all(&["\"event\": \"subject\"", "Tea time", "\"nick\": \"Bob\""])
        .await;
    // A private message.
    alice
        .command(&format!(
            r#"{{"cmd": "message", "to": "{room}/Bob", "body": "psst"}}"#
        ))
        .await;
    let private = bob.expect_all(&["\"event\": \"received\"", "psst"]).await;
    assert!(
        private.contains(&format!("\"from\": \"{room}/Alice\"")),
        "{private}"
    );

    // Kicked: bob sees 307 and leaves; he can come back.
    alice
        .command(&format!(
            r#"{{"cmd": "kick", "room": "{room}", "nick": "Bob"}}"#
        ))
        .await;
    let kicked = bob
        .expect_all(&["\"event\": \"muc_presence\"", "unavailable", "307"])
        .await;
    assert!(kicked.contains("110"), "{kicked}");
    slix_join(&mut bob, &room, "Bob").await;
    // Banned: 301, and no way back (forbidden).
    alice
        .command(&format!(
            r#"{{"cmd": "ban", "room": "{room}", "jid": "bob@localhost"}}"#
        ))
        .await;
    bob.expect_all(&["\"event\": \"muc_presence\"", "unavailable", "301"])
        .await;
    let refused = slix_join(&mut bob, &room, "Bob").await;
    assert!(
        refused.contains("\"condition\": \"forbidden\""),
        "{refused}"
    );

    // Destroyed, with an alternate venue and a reason.
    alice
        .command(&format!(r#"{{"cmd": "destroy", "room": "{room}", "reason": "closing", "alt": "other@{SERVICE}"}}"#))
        .await;
    // Its own presence may come before the owner's IQ result.
    let destroyed = alice
        .expect_ever(&["\"event\": \"muc_presence\"", "unavailable", "closing"])
        .await;
    assert!(
        destroyed.contains(&format!("other@{SERVICE}")),
        "{destroyed}"
    );
    let info = alice
        .command(&format!(r#"{{"cmd": "disco_info", "to": "{room}"}}"#))
        .await;
    assert!(alice.seen(&["\"iq_error\"", "item-not-found"]), "{info}");
    assert!(alice.quit().await);
    assert!(bob.quit().await);
}

#[tokio::test]
async fn voice_in_a_moderated_room_and_admins_under_owners() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let (alice, bob) = users.split_at_mut(1);
    let (alice, bob) = (&mut alice[0], &mut bob[0]);
    let room = format!("stage@{SERVICE}");
    enter(alice, "stage", "Alice").await;
    configure(alice, "stage", "c1", &[("moderatedroom", "1")]).await;
    // §7.2 (§5.1.2): no affiliation in a moderated room: a visitor, who may not speak.
    let got = enter(bob, "stage", "Bob").await;
    assert!(
        got.iter()
            .any(|s| s.contains(&status(110)) && s.contains("role=\"visitor\"")),
        "{got:?}"
    );
    bob.send(groupchat("stage", "may I?")).await;
    let refused = bob.read_stanza_containing("type=\"error\"").await;
    assert!(refused.contains("<forbidden"), "{refused}");

    // §8.3: voice granted; everyone sees the new role.
    let answer = iq(
        alice,
        "v1",
        "set",
        &room,
        &admin_item("<item nick='Bob' role='participant'/>"),
    )
    .await;
    assert!(answer.contains("type=\"result\""), "{answer}");
    let seen = bob.read_stanza_containing("role=\"participant\"").await;
    assert!(seen.contains(&status(110)), "{seen}");
    bob.send(groupchat("stage", "thank you")).await;
    alice.read_stanza_containing("thank you").await;
    // §8.1: a participant may not change the subject unless the room allows it.
    bob.send(format!(
        "<message type='groupchat' to='{room}'><subject>mine</subject></message>"
    ))
    .await;
    let refused = bob.read_stanza_containing("type=\"error\"").await;
    assert!(refused.contains("<forbidden"), "{refused}");
    // §8.5: the voice list, for moderators only.
    let list = iq(
        alice,
        "v2",
        "get",
        &room,
        &admin_item("<item role='participant'/>"),
    )
    .await;
    assert!(list.contains("nick=\"Bob\""), "{list}");
    let refused = iq(
        bob,
        "v3",
        "get",
        &room,
        &admin_item("<item role='participant'/>"),
    )
    .await;
    assert!(refused.contains("<forbidden"), "{refused}");
    // §8.4: voice revoked.
    iq(
        alice,
        "v4",
        "set",
        &room,
        &admin_item("<item nick='Bob' role='visitor'/>"),
    )
    .await;
    bob.read_stanza_containing("role=\"visitor\"").await;

    // §10.6: an owner makes bob an admin, a moderator; §10.8 lists him.
    iq(
        alice,
        "a1",
        "set",
        &room,
        &admin_item("<item jid='bob@localhost' affiliation='admin'/>"),
    )
    .await;
    let seen = bob.read_stanza_containing("affiliation=\"admin\"").await;
    assert!(seen.contains("role=\"moderator\""), "{seen}");
    let list = iq(
        alice,
        "a2",
        "get",
        &room,
        &admin_item("<item affiliation='admin'/>"),
    )
    .await;
    assert!(list.contains("jid=\"bob@localhost\""), "{list}");
    // §9.1: an admin may not ban an owner, nor kick one (§8.2).
    let refused = iq(
        bob,
        "a3",
        "set",
        &room,
        &admin_item("<item jid='alice@localhost' affiliation='outcast'/>"),
    )
    .await;
    assert!(refused.contains("<not-allowed"), "{refused}");
    let refused = iq(
        bob,
        "a4",
        "set",
        &room,
        &admin_item("<item nick='Alice' role='none'/>"),
    )
    .await;
    assert!(refused.contains("<not-allowed"), "{refused}");
    // §10.8: the only owner can't give up ownership.
    let refused = iq(
        alice,
        "a5",
        "set",
        &room,
        &admin_item("<item jid='alice@localhost' affiliation='member'/>"),
    )
    .await;
    assert!(refused.contains("<conflict"), "{refused}");
    // A JID that is none.
    let refused = iq(
        alice,
        "a6",
        "set",
        &room,
        &admin_item("<item jid='@@' affiliation='member'/>"),
    )
    .await;
    assert!(refused.contains("<jid-malformed"), "{refused}");
}

#[tokio::test]
async fn mediated_invitations_reach_the_invitee_and_declines_the_inviter() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob", "carol"]).await;
    let [alice, bob, carol] = &mut users[..] else {
        unreachable!()
    };
    let room = format!("party@{SERVICE}");
    enter(alice, "party", "Alice").await;
    configure(
        alice,
        "party",
        "c1",
        &[("passwordprotectedroom", "1"), ("roomsecret", "sesame")],
    )
    .await;

    // §7.8.2: alice, an occupant, invites bob; the room sends the invitation from itself,
    // with her real JID, her reason and the room's password, keeping her id.
    alice
        .send(invitation(
            "party",
            "inv1",
            "bob@localhost",
            "Come to the party",
        ))
        .await;
    let invited = bob.read_stanza_containing("<invite").await;
    assert!(
        invited.contains(&format!("from=\"{room}\"")) && invited.contains("id=\"inv1\""),
        "{invited}"
    );
    assert!(
        invited.contains(concat!(
            "<x xmlns=\"http://jabber.org/protocol/muc#user\"><invite from=\"alice@localhost/desk\">",
            "<reason>Come to the party</reason></invite><password>sesame</password></x>"
        )),
        "{invited}"
    );
    // A line for clients that know no invitations.
    assert!(
        invited.contains(&format!(
            "<body>alice@localhost/desk invited you to the room {room} (Come to the party)</body>"
        )),
        "{invited}"
    );

    // Bob declines, naming alice's bare JID; she gets it at the JID she invited from,
    // naming his bare JID.
    bob.send(format!(
        "<message to='{room}' id='no1'><x xmlns='http://jabber.org/protocol/muc#user'>\
         <decline to='alice@localhost'><reason>Too busy</reason></decline></x></message>"
    ))
    .await;
    let declined = alice.read_stanza_containing("<decline").await;
    assert!(
        declined.contains(&format!("from=\"{room}\""))
            && declined.contains("to=\"alice@localhost/desk\""),
        "{declined}"
    );
    assert!(
        declined.contains("<decline from=\"bob@localhost\"><reason>Too busy</reason></decline>"),
        "{declined}"
    );
    // That invitation is answered; nobody invited carol: the room passes no decline on
    // that does not answer one of its invitations.
    let decline = format!(
        "<message to='{room}'><x xmlns='http://jabber.org/protocol/muc#user'>\
         <decline to='alice@localhost'/></x></message>"
    );
    for client in [&mut *bob, &mut *carol] {
        client.send(decline.as_str()).await;
        let refused = client.read_stanza_containing("type=\"error\"").await;
        assert!(refused.contains("<item-not-found"), "{refused}");
    }

    // Only occupants invite.
    carol
        .send(invitation("party", "inv2", "bob@localhost", "me too"))
        .await;
    let refused = carol.read_stanza_containing("type=\"error\"").await;
    assert!(refused.contains("<not-acceptable"), "{refused}");
    // An invitee that is no JID: nothing is sent.
    alice
        .send(invitation("party", "inv3", "@@", "anyone"))
        .await;
    let refused = alice.read_stanza_containing("type=\"error\"").await;
    assert!(
        refused.contains("id=\"inv3\"") && refused.contains("<jid-malformed"),
        "{refused}"
    );
    // A muc#user payload that is neither an invitation nor a decline.
    alice
        .send(format!(
            "<message to='{room}' id='x1'><x xmlns='http://jabber.org/protocol/muc#user'/></message>"
        ))
        .await;
    let refused = alice.read_stanza_containing("id=\"x1\"").await;
    assert!(refused.contains("<bad-request"), "{refused}");
    // Bob got nothing more.
    let rest = bob.read_for(std::time::Duration::from_millis(300)).await;
    assert!(!rest.contains("<message"), "{rest}");
}

#[tokio::test]
async fn in_members_only_rooms_admins_invite_members_and_members_only_when_allowed() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob", "carol", "dave"]).await;
    let [alice, bob, carol, dave] = &mut users[..] else {
        unreachable!()
    };
    let room = format!("club@{SERVICE}");
    enter(alice, "club", "Alice").await;
    configure(alice, "club", "c1", &[("membersonly", "1")]).await;
    let answer = iq(
        alice,
        "m1",
        "set",
        &room,
        &admin_item("<item affiliation='member' jid='bob@localhost'/>"),
    )
    .await;
    assert!(answer.contains("type=\"result\""), "{answer}");
    enter(bob, "club", "Bob").await;

    // §7.8.2: a member may not invite while allowinvites is off.
    bob.send(invitation("club", "b1", "carol@localhost", "join"))
        .await;
    let refused = bob.read_stanza_containing("type=\"error\"").await;
    assert!(refused.contains("<forbidden"), "{refused}");

    // The owner may, and the invitee becomes a member, so she can enter.
    alice
        .send(invitation("club", "a1", "carol@localhost", "join"))
        .await;
    let invited = carol.read_stanza_containing("<invite").await;
    assert!(
        invited.contains("<invite from=\"alice@localhost/desk\">"),
        "{invited}"
    );
    let members = admin_item("<item affiliation='member'/>");
    let list = iq(alice, "m2", "get", &room, &members).await;
    assert!(list.contains("jid=\"carol@localhost\""), "{list}");
    let got = enter(carol, "club", "Carol").await;
    assert!(
        got.iter()
            .any(|s| s.contains(&status(110)) && s.contains("affiliation=\"member\"")),
        "{got:?}"
    );

    // With allowinvites on, a member invites; as in Prosody, a member's invitation does not
    // change the member list (members may not), so dave still may not enter.
    configure(alice, "club", "c2", &[("allowinvites", "1")]).await;
    bob.send(invitation("club", "b2", "dave@localhost", "join"))
        .await;
    let invited = dave.read_stanza_containing("<invite").await;
    assert!(
        invited.contains("<invite from=\"bob@localhost/desk\">"),
        "{invited}"
    );
    let list = iq(alice, "m3", "get", &room, &members).await;
    assert!(!list.contains("dave@localhost"), "{list}");
    send_join(dave, "club", "Dave", Some(MUC_X), "").await;
    let refused = dave.read_stanza().await;
    assert!(refused.contains("<registration-required"), "{refused}");

    // An invitation does not lift a ban.
    iq(
        alice,
        "m4",
        "set",
        &room,
        &admin_item("<item affiliation='outcast' jid='dave@localhost'/>"),
    )
    .await;
    alice
        .send(invitation("club", "a2", "dave@localhost", "sorry"))
        .await;
    dave.read_stanza_containing("<invite").await;
    let outcasts = iq(
        alice,
        "m5",
        "get",
        &room,
        &admin_item("<item affiliation='outcast'/>"),
    )
    .await;
    assert!(outcasts.contains("jid=\"dave@localhost\""), "{outcasts}");
}

#[tokio::test]
async fn occupant_ids_are_stable_per_user_and_room_and_never_the_clients_own() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob", "carol"]).await;
    let [alice, bob, carol] = &mut users[..] else {
        unreachable!()
    };
    let forged = "<occupant-id xmlns='urn:xmpp:occupant-id:0' id='forged'/>";
    let got = instant_room(alice, "masks", "Alice").await;
    let alice_id = occupant_id(&got[0]);
    // XEP-0421 §4: what a client claims is replaced, in presence...
    send_join(bob, "masks", "Bob", Some(&format!("{MUC_X}{forged}")), "").await;
    let got = until_subject(bob).await;
    assert_eq!(occupant_id(&got[0]), alice_id, "{got:?}");
    let bob_id = occupant_id(&got[1]);
    assert_ne!(bob_id, alice_id);
    assert!(
        !bob_id.contains("bob") && !got[1].contains("forged"),
        "{got:?}"
    );
    let seen = alice
        .read_stanza_containing(&occupant("masks", "Bob"))
        .await;
    assert_eq!(occupant_id(&seen), bob_id);

    // ...in groupchat messages...
    bob.send(format!(
        "<message type='groupchat' to='masks@{SERVICE}'><body>it is me</body>{forged}</message>"
    ))
    .await;
    for client in [&mut *alice, &mut *bob] {
        let message = client.read_stanza_containing("it is me").await;
        assert_eq!(occupant_id(&message), bob_id, "{message}");
    }
    // ...and in private messages.
    bob.send(format!(
        "<message type='chat' to='{}'><body>psst</body>{forged}</message>",
        occupant("masks", "Alice")
    ))
    .await;
    let private = alice.read_stanza_containing("psst").await;
    assert_eq!(occupant_id(&private), bob_id, "{private}");

    // A new nickname, leaving and another session of the same user: the same id.
    bob.send(format!("<presence to='{}'/>", occupant("masks", "Robert")))
        .await;
    let renamed = alice.read_stanza_containing("nick=\"Robert\"").await;
    assert_eq!(occupant_id(&renamed), bob_id, "{renamed}");
    bob.send(format!(
        "<presence type='unavailable' to='{}'/>",
        occupant("masks", "Robert")
    ))
    .await;
    let left = alice.read_stanza_containing("unavailable").await;
    assert_eq!(occupant_id(&left), bob_id, "{left}");
    let (mut phone, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "pw-bob", "phone").await;
    let got = enter(&mut phone, "masks", "Bobby").await;
    let own = got.iter().find(|s| s.contains(&status(110))).unwrap();
    assert_eq!(occupant_id(own), bob_id, "{own}");

    // The subject and the history carry their senders' ids.
    alice
        .send(format!(
            "<message type='groupchat' to='masks@{SERVICE}'><subject>Masks on</subject></message>"
        ))
        .await;
    alice.read_stanza_containing("Masks on").await;
    let got = enter(carol, "masks", "Carol").await;
    let history = got.iter().find(|s| s.contains("it is me")).unwrap();
    assert_eq!(occupant_id(history), bob_id, "{history}");
    assert_eq!(occupant_id(got.last().unwrap()), alice_id, "{got:?}");

    // Another room, another id.
    let got = instant_room(bob, "other", "Bob").await;
    let own = got
        .iter()
        .find(|s| s.contains(&occupant("other", "Bob")))
        .unwrap();
    assert_ne!(occupant_id(own), bob_id, "{own}");
}

#[tokio::test]
async fn a_direct_invitation_is_delivered_intact() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let [alice, bob] = &mut users[..] else {
        unreachable!()
    };
    // XEP-0249 §2: from one user to another; the server only routes it.
    let x = format!(
        "<x xmlns=\"jabber:x:conference\" jid=\"party@{SERVICE}\" password=\"sesame\" \
         reason=\"Come to the party\" continue=\"true\" thread=\"e0ffe42b\"/>"
    );
    alice
        .send(format!(
            "<message to='bob@localhost' id='d1'><body>join us</body>{x}</message>"
        ))
        .await;
    let got = bob.read_stanza_containing("jabber:x:conference").await;
    assert!(
        got.contains("from=\"alice@localhost/desk\"") && got.contains("id=\"d1\""),
        "{got}"
    );
    assert!(got.contains(&format!("<body>join us</body>{x}")), "{got}");
}

#[tokio::test]
async fn slixmpp_invites_through_the_room_declines_and_invites_directly() {
    let server = TestServer::start();
    let mut alice = slix(&server, "alice").await;
    let mut bob = slix(&server, "bob").await;
    let room = format!("soiree@{SERVICE}");
    slix_join(&mut alice, &room, "Alice").await;
    alice
        .command(&format!(r#"{{"cmd": "instant", "room": "{room}"}}"#))
        .await;

    // XEP-0045 §7.8.2 through slixmpp's xep_0045: invited, bob declines.
    alice
        .command(&format!(
            r#"{{"cmd": "invite", "room": "{room}", "jid": "bob@localhost", "reason": "do come"}}"#
        ))
        .await;
    let invited = bob.expect_ever(&["\"event\": \"invite\""]).await;
    for part in [
        format!("\"room\": \"{room}\""),
        "\"inviter\": \"alice@localhost/slix\"".to_owned(),
        "\"reason\": \"do come\"".to_owned(),
    ] {
        assert!(invited.contains(&part), "{part}: {invited}");
    }
    bob.command(&format!(
        r#"{{"cmd": "decline", "room": "{room}", "jid": "alice@localhost/slix", "reason": "another time"}}"#
    ))
    .await;
    let declined = alice.expect_ever(&["\"event\": \"decline\""]).await;
    assert!(
        declined.contains("\"decliner\": \"bob@localhost\"") && declined.contains("another time"),
        "{declined}"
    );

    // XEP-0249 through slixmpp's xep_0249: straight from alice to bob.
    alice
        .command(&format!(
            r#"{{"cmd": "direct_invite", "jid": "bob@localhost", "room": "{room}", "password": "sesame", "reason": "still"}}"#
        ))
        .await;
    let direct = bob.expect_ever(&["\"event\": \"direct_invite\""]).await;
    for part in [
        "\"from\": \"alice@localhost/slix\"".to_owned(),
        format!("\"room\": \"{room}\""),
        "\"password\": \"sesame\"".to_owned(),
        "\"reason\": \"still\"".to_owned(),
    ] {
        assert!(direct.contains(&part), "{part}: {direct}");
    }
    assert!(alice.quit().await);
    assert!(bob.quit().await);
}

/// A visitor's `muc#request` form (§8.6 Example 111).
fn voice_request(room: &str) -> String {
    format!(
        "<message to='{room}@{SERVICE}'><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field>\
         <field var='muc#role' type='list-single'><value>participant</value></field>\
         </x></message>"
    )
}

/// A moderator's answer to a voice request for `nick` (§8.6 Example 113).
fn voice_answer(room: &str, nick: &str, allow: &str) -> String {
    format!(
        "<message to='{room}@{SERVICE}'><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field>\
         <field var='muc#role'><value>participant</value></field>\
         <field var='muc#roomnick'><value>{nick}</value></field>\
         <field var='muc#request_allow'><value>{allow}</value></field>\
         </x></message>"
    )
}

#[tokio::test]
async fn a_visitor_asks_for_voice_and_a_moderator_grants_it() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob", "carol"]).await;
    let [alice, bob, carol] = &mut users[..] else {
        panic!("three clients");
    };
    enter(alice, "forum", "Alice").await;
    configure(alice, "forum", "c1", &[("moderatedroom", "1")]).await;
    enter(bob, "forum", "Bob").await;
    enter(carol, "forum", "Carol").await;
    alice.read_stanza_containing("Carol").await;

    // §8.6: the request reaches the moderator as a form naming the visitor.
    bob.send(voice_request("forum")).await;
    let form = alice
        .read_stanza_containing("http://jabber.org/protocol/muc#request")
        .await;
    for needle in [
        &format!("from=\"forum@{SERVICE}\""),
        "type=\"form\"",
        "<field var=\"muc#roomnick\" type=\"text-single\"",
        "<value>Bob</value>",
        "<value>bob@localhost/",
        "<field var=\"muc#request_allow\" type=\"boolean\"",
    ] {
        assert!(form.contains(needle), "{needle} in {form}");
    }
    // Only a moderator answers: a visitor's approval is refused, and grants nothing.
    carol.send(voice_answer("forum", "Bob", "true")).await;
    let refused = carol.read_stanza_containing("type=\"error\"").await;
    assert!(refused.contains("<forbidden"), "{refused}");
    // A declined request changes nothing; an approval makes Bob a participant, seen by all.
    alice.send(voice_answer("forum", "Bob", "false")).await;
    alice.send(voice_answer("forum", "Bob", "true")).await;
    for client in [&mut *alice, &mut *carol] {
        let seen = client.read_stanza_containing("role=\"participant\"").await;
        assert!(
            seen.contains(&format!("from=\"forum@{SERVICE}/Bob\"")),
            "{seen}"
        );
    }
    let own = bob.read_stanza_containing("role=\"participant\"").await;
    assert!(own.contains(&status(110)), "{own}");
    bob.send(groupchat("forum", "thanks for the voice")).await;
    carol.read_stanza_containing("thanks for the voice").await;
    // Carol is still a visitor: her role did not change on the way.
    carol.send(groupchat("forum", "me too?")).await;
    let refused = carol.read_stanza_containing("type=\"error\"").await;
    assert!(refused.contains("<forbidden"), "{refused}");
}
