//! XEP-0045 between occupants, with raw clients: IQs to an occupant's room JID relayed to
//! its real JID and answered back without either side learning the other's JID (vCards
//! answered for the account), one user's sessions sharing one nickname, and §7.9's
//! one-to-one chat carried on in a room (`<continue/>` kept, the owner's history stamps
//! kept).

use jabberwock_tests::muc::{
    admin_item, enter, groupchat, instant_room, invitation, iq, log_in, occupant, status, MUC_X,
    SERVICE,
};
use jabberwock_tests::{RawClient, TestServer};

/// The value of attribute `name` in `stanza`'s first tag, which must have it.
fn attr(stanza: &str, name: &str) -> String {
    jabberwock_tests::bosh::attr(stanza, name).unwrap_or_else(|| panic!("no {name}: {stanza}"))
}

/// A private message from `client` to the occupant `nick` of `room`: what a test sends
/// after something that must go nowhere, so the next stanza its recipient reads shows it.
async fn private_message(client: &mut RawClient, room: &str, nick: &str, body: &str) {
    client
        .send(format!(
            "<message type='chat' to='{}'><body>{body}</body></message>",
            occupant(room, nick)
        ))
        .await;
}

#[tokio::test]
async fn iqs_to_an_occupant_reach_its_real_jid_and_come_back_from_its_room_jid() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob", "carol"]).await;
    let [alice, bob, carol] = &mut users[..] else {
        unreachable!()
    };
    instant_room(alice, "den", "Alice").await;
    enter(bob, "den", "Bob").await;
    alice.read_stanza_containing(&occupant("den", "Bob")).await;

    // Software version: Bob's client gets the request from Alice's room JID, under an id
    // of the room's; his answer reaches Alice from his room JID, under hers.
    alice
        .send(format!(
            "<iq type='get' id='v1' to='{}'><query xmlns='jabber:iq:version'/></iq>",
            occupant("den", "Bob")
        ))
        .await;
    let asked = bob.read_stanza_containing("jabber:iq:version").await;
    assert_eq!(attr(&asked, "from"), occupant("den", "Alice"), "{asked}");
    assert_eq!(attr(&asked, "to"), "bob@localhost/desk", "{asked}");
    assert_ne!(attr(&asked, "id"), "v1", "{asked}");
    assert!(!asked.contains("alice@localhost"), "{asked}");
    let relayed_id = attr(&asked, "id").to_owned();
    bob.send(format!(
        "<iq type='result' id='{relayed_id}' to='{}'><query xmlns='jabber:iq:version'>\
         <name>Raw</name><version>1.0</version></query></iq>",
        occupant("den", "Alice")
    ))
    .await;
    let answer = alice.read_stanza_containing("id=\"v1\"").await;
    assert_eq!(attr(&answer, "type"), "result", "{answer}");
    assert_eq!(attr(&answer, "from"), occupant("den", "Bob"), "{answer}");
    assert!(answer.contains("<name>Raw</name>"), "{answer}");
    assert!(!answer.contains("bob@localhost"), "{answer}");
    // Answered once: the same answer again goes nowhere.
    bob.send(format!(
        "<iq type='result' id='{relayed_id}' to='{}'/>",
        occupant("den", "Alice")
    ))
    .await;
    private_message(bob, "den", "Alice", "after the repeat").await;
    let next = alice.read_stanza().await;
    assert!(next.contains("after the repeat"), "{next}");

    // Ping, answered with an error: the error comes back the same way.
    alice
        .send(format!(
            "<iq type='get' id='p1' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
            occupant("den", "Bob")
        ))
        .await;
    let asked = bob.read_stanza_containing("urn:xmpp:ping").await;
    assert_eq!(attr(&asked, "from"), occupant("den", "Alice"), "{asked}");
    bob.send(format!(
        "<iq type='error' id='{}' to='{}'><error type='cancel'>\
         <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        attr(&asked, "id"),
        occupant("den", "Alice")
    ))
    .await;
    let answer = alice.read_stanza_containing("id=\"p1\"").await;
    assert_eq!(attr(&answer, "type"), "error", "{answer}");
    assert_eq!(attr(&answer, "from"), occupant("den", "Bob"), "{answer}");
    assert!(answer.contains("<service-unavailable"), "{answer}");
    // An error answering a relayed request does not take Bob out of the room.
    bob.send(groupchat("den", "still in")).await;
    let echoed = bob.read_stanza_containing("still in").await;
    assert!(echoed.contains("type=\"groupchat\""), "{echoed}");
    alice.read_stanza_containing("still in").await;

    // vCard: answered for Bob's account (his stored vCard), from his room JID; his client
    // is not asked.
    let stored = iq(
        bob,
        "vc1",
        "set",
        "bob@localhost",
        "<vCard xmlns='vcard-temp'><FN>Bob Builder</FN></vCard>",
    )
    .await;
    assert!(stored.contains("type=\"result\""), "{stored}");
    let card = iq(
        alice,
        "vc2",
        "get",
        &occupant("den", "Bob"),
        "<vCard xmlns='vcard-temp'/>",
    )
    .await;
    assert_eq!(attr(&card, "type"), "result", "{card}");
    assert_eq!(attr(&card, "from"), occupant("den", "Bob"), "{card}");
    assert!(card.contains("<FN>Bob Builder</FN>"), "{card}");

    // Errors: no such nickname; a sender who is no occupant; a room that does not exist.
    let refused = iq(
        alice,
        "e1",
        "get",
        &occupant("den", "Nobody"),
        "<query xmlns='jabber:iq:version'/>",
    )
    .await;
    assert!(refused.contains("<item-not-found"), "{refused}");
    for (id, to) in [
        ("e2", occupant("den", "Bob")),
        ("e3", occupant("nowhere", "Bob")),
    ] {
        let refused = iq(carol, id, "get", &to, "<query xmlns='jabber:iq:version'/>").await;
        assert!(refused.contains("<not-acceptable"), "{refused}");
    }
    // XEP-0410: a self-ping is answered by the room, not relayed.
    let answer = iq(
        alice,
        "self",
        "get",
        &occupant("den", "Alice"),
        "<ping xmlns='urn:xmpp:ping'/>",
    )
    .await;
    assert!(answer.contains("<feature-not-implemented"), "{answer}");

    // Two occupants ask Bob with the same id: each answer reaches its own asker.
    enter(carol, "den", "Carol").await;
    alice
        .read_stanza_containing(&occupant("den", "Carol"))
        .await;
    bob.read_stanza_containing(&occupant("den", "Carol")).await;
    let time = "<time xmlns='urn:xmpp:time'/>";
    for asker in [&mut *alice, &mut *carol] {
        asker
            .send(format!(
                "<iq type='get' id='same' to='{}'>{time}</iq>",
                occupant("den", "Bob")
            ))
            .await;
    }
    let first = bob.read_stanza_containing("urn:xmpp:time").await;
    let second = bob.read_stanza_containing("urn:xmpp:time").await;
    assert_ne!(attr(&first, "id"), attr(&second, "id"));
    for asked in [&second, &first] {
        bob.send(format!(
            "<iq type='result' id='{}' to='{}'><time xmlns='urn:xmpp:time'><tzo>{}</tzo></time></iq>",
            attr(asked, "id"),
            attr(asked, "from"),
            attr(asked, "from").rsplit('/').next().unwrap_or_default()
        ))
        .await;
    }
    for (asker, nick) in [(&mut *alice, "Alice"), (&mut *carol, "Carol")] {
        let answer = asker.read_stanza_containing("id=\"same\"").await;
        assert!(answer.contains(&format!("<tzo>{nick}</tzo>")), "{answer}");
    }

    // Forged answers go nowhere: an id the room never made, and the right id from someone
    // the request did not go to. Bob's real answer still arrives after both.
    alice
        .send(format!(
            "<iq type='get' id='v2' to='{}'><query xmlns='jabber:iq:version'/></iq>",
            occupant("den", "Bob")
        ))
        .await;
    let asked = bob.read_stanza_containing("jabber:iq:version").await;
    let result = |id: &str| {
        format!(
            "<iq type='result' id='{id}' to='{}'><query xmlns='jabber:iq:version'>\
             <name>Forged</name></query></iq>",
            occupant("den", "Alice")
        )
    };
    // Each forger's private message, sent after its forgery, comes after it.
    bob.send(result("v2")).await;
    private_message(bob, "den", "Alice", "after a forgery").await;
    carol.send(result(&attr(&asked, "id"))).await;
    private_message(carol, "den", "Alice", "after a forgery").await;
    for _ in 0..2 {
        let next = alice.read_stanza().await;
        assert!(next.contains("after a forgery"), "{next}");
    }
    bob.send(format!(
        "<iq type='result' id='{}' to='{}'><query xmlns='jabber:iq:version'>\
         <name>Real</name></query></iq>",
        attr(&asked, "id"),
        occupant("den", "Alice")
    ))
    .await;
    let answer = alice.read_stanza().await;
    assert!(
        answer.contains("id=\"v2\"") && answer.contains("<name>Real</name>"),
        "{answer}"
    );
}

#[tokio::test]
async fn one_users_sessions_share_a_nickname_and_leave_with_the_last() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob", "carol", "dave"]).await;
    let [alice, desk, carol, dave] = &mut users[..] else {
        unreachable!()
    };
    let (mut phone, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "pw-bob", "phone").await;
    let phone = &mut phone;
    instant_room(alice, "hub", "Alice").await;
    enter(carol, "hub", "Carol").await;
    alice
        .read_stanza_containing(&occupant("hub", "Carol"))
        .await;
    enter(desk, "hub", "Bob").await;
    let seen = carol.read_stanza().await;
    assert!(seen.contains(&occupant("hub", "Bob")), "{seen}");
    alice.read_stanza_containing(&occupant("hub", "Bob")).await;

    // Bob's second resource enters with the same nickname: it gets what entering brings
    // (the others, itself, the subject), no conflict.
    let entered = enter(phone, "hub", "Bob").await;
    assert!(
        entered.iter().all(|s| !s.contains("type=\"error\"")),
        "{entered:?}"
    );
    let own = entered
        .iter()
        .find(|s| s.contains(&status(110)))
        .unwrap_or_else(|| panic!("{entered:?}"));
    assert!(own.contains(&occupant("hub", "Bob")), "{own}");
    for nick in ["Alice", "Carol"] {
        assert!(
            entered.iter().any(|s| s.contains(&occupant("hub", nick))),
            "{entered:?}"
        );
    }
    // Carol sees no new occupant: Bob's presence again, available.
    let seen = carol.read_stanza().await;
    assert!(
        seen.starts_with("<presence") && seen.contains(&occupant("hub", "Bob")),
        "{seen}"
    );
    assert!(!seen.contains("unavailable"), "{seen}");

    // Another account can't have the nickname.
    dave.send(format!(
        "<presence to='{}'>{MUC_X}</presence>",
        occupant("hub", "Bob")
    ))
    .await;
    let refused = dave.read_stanza().await;
    assert!(refused.contains("<conflict"), "{refused}");

    // Groupchat and private messages reach both sessions.
    carol.send(groupchat("hub", "hello both")).await;
    private_message(carol, "hub", "Bob", "psst").await;
    for session in [&mut *desk, &mut *phone] {
        let said = session.read_stanza_containing("hello both").await;
        assert!(said.contains(&occupant("hub", "Carol")), "{said}");
        let whispered = session.read_stanza_containing("psst").await;
        assert!(whispered.contains(&occupant("hub", "Carol")), "{whispered}");
    }
    // Either session speaks as Bob.
    phone.send(groupchat("hub", "from the phone")).await;
    let said = carol.read_stanza_containing("from the phone").await;
    assert!(said.contains(&occupant("hub", "Bob")), "{said}");

    // The phone leaves: it is told so; the others see Bob stay.
    phone
        .send(format!(
            "<presence type='unavailable' to='{}'/>",
            occupant("hub", "Bob")
        ))
        .await;
    let gone = phone.read_stanza_containing("unavailable").await;
    assert!(gone.contains(&status(110)), "{gone}");
    alice.send(groupchat("hub", "still there?")).await;
    let next = carol.read_stanza().await;
    assert!(
        next.contains("still there?") && !next.contains("unavailable"),
        "{next}"
    );
    let heard = desk.read_stanza_containing("still there?").await;
    assert!(heard.contains(&occupant("hub", "Alice")), "{heard}");
    // The desk leaves too: now Bob is gone.
    desk.send(format!(
        "<presence type='unavailable' to='{}'/>",
        occupant("hub", "Bob")
    ))
    .await;
    let gone = carol.read_stanza().await;
    assert!(
        gone.contains("type=\"unavailable\"") && gone.contains(&occupant("hub", "Bob")),
        "{gone}"
    );

    // Both back in: a kick takes both sessions out.
    enter(desk, "hub", "Bob").await;
    enter(phone, "hub", "Bob").await;
    let kicked = iq(
        alice,
        "kick",
        "set",
        &format!("hub@{SERVICE}"),
        &admin_item("<item nick='Bob' role='none'/>"),
    )
    .await;
    assert!(kicked.contains("type=\"result\""), "{kicked}");
    for session in [&mut *desk, &mut *phone] {
        let out = session.read_stanza_containing(&status(307)).await;
        assert!(out.contains("type=\"unavailable\""), "{out}");
    }
}

#[tokio::test]
async fn a_one_to_one_chat_carried_on_in_a_room_keeps_continue_and_its_history_stamps() {
    let server = TestServer::start();
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let [alice, bob] = &mut users[..] else {
        unreachable!()
    };
    let room = format!("coven@{SERVICE}");
    instant_room(alice, "coven", "Alice").await;

    // §7.9: the owner sends the one-to-one history on, stamped as it was said.
    alice
        .send(format!(
            "<message type='groupchat' to='{room}'><body>Thrice the brinded cat hath mew'd.</body>\
             <delay xmlns='urn:xmpp:delay' from='alice@localhost/desk' stamp='2004-09-29T01:54:37Z'/>\
             </message>"
        ))
        .await;
    alice.read_stanza_containing("brinded cat").await;
    // The invitation keeps <continue/> and its thread.
    alice
        .send(
            invitation(
                "coven",
                "inv1",
                "bob@localhost/desk",
                "This coven needs you",
            )
            .replace(
                "</reason>",
                "</reason><continue thread='e0ffe42b28561960c6b12b944a092794b9683a38'/>",
            ),
        )
        .await;
    let invited = bob.read_stanza_containing("<invite").await;
    assert!(
        invited.contains(concat!(
            "<reason>This coven needs you</reason>",
            "<continue thread=\"e0ffe42b28561960c6b12b944a092794b9683a38\"/></invite>"
        )),
        "{invited}"
    );

    // Bob joins: the history carries Alice's stamp and none of the room's.
    let entered = enter(bob, "coven", "Bob").await;
    let history = entered
        .iter()
        .find(|s| s.contains("brinded cat"))
        .unwrap_or_else(|| panic!("{entered:?}"));
    assert_eq!(history.matches("<delay").count(), 1, "{history}");
    assert!(
        history.contains("stamp=\"2004-09-29T01:54:37Z\""),
        "{history}"
    );
    // A message without a stamp is stamped by the room as before.
    alice.send(groupchat("coven", "now")).await;
    bob.read_stanza_containing(">now<").await;
    let mut late = log_in(&server, &["carol"]).await;
    let entered = enter(&mut late[0], "coven", "Carol").await;
    let now = entered
        .iter()
        .find(|s| s.contains(">now<"))
        .unwrap_or_else(|| panic!("{entered:?}"));
    assert!(now.contains(&format!("from=\"{room}\"")), "{now}");
}
