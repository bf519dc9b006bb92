//! XEP-0045 between occupants, with raw clients: §7.9's one-to-one chat carried on in a
//! room (`<continue/>` kept, the owner's history stamps kept).

use jabberwock_tests::muc::{enter, groupchat, instant_room, invitation, log_in, SERVICE};
use jabberwock_tests::TestServer;

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
