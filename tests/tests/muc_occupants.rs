//! XEP-0045 between occupants, with raw clients: one user's sessions sharing one nickname,
//! and §7.9's
//! one-to-one chat carried on in a room (`<continue/>` kept, the owner's history stamps
//! kept).

use jabberwock_tests::muc::{
    admin_item, enter, groupchat, instant_room, invitation, iq, log_in, occupant, status, MUC_X,
    SERVICE,
};
use jabberwock_tests::{RawClient, TestServer};

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
