//! A room's groupchat message is serialised once per wire form, not once per occupant, and
//! an occupant's presence once per form for those who see its real JID and once for the
//! others; every occupant still gets exactly what its own copy would have been: a standard TCP
//! client (whose resource needs escaping), a raw Flash client (a NUL after the stanza), an
//! RFC 7395 WebSocket client (`xmlns="jabber:client"` on the stanza) and a BOSH client, each
//! with its own `to`. What the session modules do on the way out still happens (XEP-0352:
//! presence held for an inactive occupant goes out before the next groupchat message), and
//! a stalled occupant is still cut off by the slow-client policy while the others get
//! everything. The server logs (at debug) each time it serialises a shared stanza; the
//! tests count those lines.

use std::time::Duration;

use jabberwock_tests::bosh::{self, BoshClient};
use jabberwock_tests::mam::stanza_id_by;
use jabberwock_tests::muc::{enter, instant_room, occupant, occupant_id, send_join, status, MUC_X};
use jabberwock_tests::xmpp_ws::XmppWs;
use jabberwock_tests::{RawClient, TestConfig, TestServer, WAIT};

const SERIALISED: &str = "shared stanza serialised";
const MESSAGE: &str = "kind=message";
const PRESENCE: &str = "kind=presence";
/// How long a presence that is not held would take, at most, to reach a client on loopback.
const QUIET: Duration = Duration::from_secs(1);

/// The server, logging when it serialises a shared stanza, without the per-occupant
/// message rate and size limits (the stalled-occupant test sends fast and large).
fn server() -> TestServer {
    let server = TestServer::start_with(
        TestConfig::default()
            .log_level("info,jabberwock_server::stream::connection=debug")
            .section("modules.muc", "messages_per_second = 0.0")
            .section("modules.muc", "max_message_bytes = 0"),
    );
    server.wait_started();
    server
}

/// How many shared stanzas of `kind` (`MESSAGE`, `PRESENCE`) the log says were serialised.
fn serialised(server: &TestServer, kind: &str) -> usize {
    server
        .log_text()
        .lines()
        .filter(|line| line.contains(SERIALISED) && line.contains(kind))
        .count()
}

/// [`serialised`] once it stopped changing: what earlier steps sent (the room's entries
/// reaching the occupants already in it) may still be on its way when a step begins.
fn settled(server: &TestServer, kind: &str) -> usize {
    let deadline = std::time::Instant::now() + WAIT;
    let mut count = serialised(server, kind);
    loop {
        std::thread::sleep(QUIET / 2);
        let now = serialised(server, kind);
        if now == count || std::time::Instant::now() > deadline {
            return now;
        }
        count = now;
    }
}

/// Waits until the log says `count` shared stanzas of `kind` were serialised, then checks
/// that it says no more than that.
fn assert_serialised(server: &TestServer, kind: &str, count: usize) {
    let deadline = std::time::Instant::now() + WAIT;
    while serialised(server, kind) < count && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(serialised(server, kind), count, "{}", server.log_text());
}

/// The groupchat message `id` from `room/nick` with `body` (already escaped), as the room
/// reflects it to `to` (escaped): the sender's attributes, `from` in place, `to` last, then
/// the XEP-0421 occupant id and the XEP-0359 stanza id of the room's archive (`ids`).
fn reflected(
    room: &str,
    nick: &str,
    id: &str,
    body: &str,
    (oid, sid): (&str, &str),
    to: &str,
    xmlns: bool,
) -> String {
    let xmlns = if xmlns {
        " xmlns=\"jabber:client\""
    } else {
        ""
    };
    format!(
        "<message{xmlns} type=\"groupchat\" id=\"{id}\" from=\"{}\" to=\"{to}\"><body>{body}</body>\
         <occupant-id xmlns=\"urn:xmpp:occupant-id:0\" id=\"{oid}\"/>\
         <stanza-id xmlns=\"urn:xmpp:sid:0\" by=\"{room}@conference.localhost\" id=\"{sid}\"/>\
         </message>",
        occupant(room, nick)
    )
}

/// A raw client's login (STARTTLS) as `user` at `resource`, the account made first.
async fn raw(server: &TestServer, user: &str, resource: &str) -> (RawClient, String) {
    server.add_user(&format!("{user}@localhost"), &format!("pw-{user}"));
    let password = format!("pw-{user}");
    RawClient::login_standard(server.c2s, &server.cert_path(), user, &password, resource).await
}

/// `room`, made by the first of `users` and entered by the others in turn (each logged in at
/// `desk`, its nickname its name); returns once every client saw the last one enter.
async fn room_of(server: &TestServer, room: &str, users: &[&str]) -> Vec<(RawClient, String)> {
    let mut clients = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let (mut client, jid) = raw(server, user, "desk").await;
        if i == 0 {
            instant_room(&mut client, room, user).await;
        } else {
            enter(&mut client, room, user).await;
        }
        clients.push((client, jid));
    }
    let last = occupant(room, users[users.len() - 1]);
    for (client, _) in &mut clients[..users.len() - 1] {
        client
            .read_stanza_containing(&format!("from=\"{last}\""))
            .await;
    }
    clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_kind_gets_the_shared_message_exactly_as_its_own_copy() {
    let server = server();
    let http = server.http.expect("the HTTP listener");
    let room = "fan";
    // A resource with characters the `to` attribute must escape.
    let (mut tcp, tcp_jid) = raw(&server, "tcp", "o'neil &amp; co").await;
    assert_eq!(tcp_jid, "tcp@localhost/o'neil &amp; co");
    instant_room(&mut tcp, room, "Tcp").await;

    server.add_user("xiff@localhost", "pw-xiff");
    let (mut flash, flash_jid) =
        RawClient::login_flash(server.c2s, "xiff", "pw-xiff", "xiff").await;
    send_join(&mut flash, room, "Xiff", None, "\0").await;
    while !flash.read_unit().await.contains("<subject") {}

    server.add_user("web@localhost", "pw-web");
    let mut ws = XmppWs::connect(http, None).await;
    let ws_jid = ws.login("web", "pw-web", "it's &amp; mine").await;
    ws.send(&format!(
        "<presence xmlns='jabber:client' to='{}'>{MUC_X}</presence>",
        occupant(room, "Web")
    ))
    .await;
    ws.recv_containing("<subject").await;

    server.add_user("bosh@localhost", "pw-bosh");
    let (mut bosh, bosh_jid) =
        BoshClient::login(http, "/http-bind", "localhost", "bosh", "pw-bosh", "web", 1).await;
    bosh.send(&format!(
        "<presence xmlns='jabber:client' to='{}'>{MUC_X}</presence>",
        occupant(room, "Bosh")
    ))
    .await;
    bosh.read_until("<subject").await;

    let before = serialised(&server, MESSAGE);
    let body = "fish &amp; \"chips\" &lt;3 ✓";
    tcp.send(format!(
        "<message type='groupchat' to='{room}@conference.localhost' id='m1'><body>{body}</body></message>"
    ))
    .await;
    let own = tcp.read_stanza_containing("id=\"m1\"").await;
    let oid = occupant_id(&own);
    let sid = stanza_id_by(&own, &format!("{room}@conference.localhost")).expect("a stanza-id");
    let expect =
        |to: &str, xmlns: bool| reflected(room, "Tcp", "m1", body, (&oid, &sid), to, xmlns);
    assert_eq!(own, expect(&tcp_jid, false));
    // Flash: the stanza, then NUL, as one unit.
    let unit = loop {
        let unit = flash.read_until("\0").await;
        if unit.contains("id=\"m1\"") {
            break unit;
        }
    };
    assert_eq!(unit, format!("{}\0", expect(&flash_jid, false)));
    // RFC 7395: one message, declaring its namespace.
    let message = ws.recv_containing("id=\"m1\"").await;
    assert_eq!(message, expect(&ws_jid, true));
    ws.assert_framing();
    // BOSH: the core's bytes re-parsed and written inside the `<body/>`.
    // Read past the occupant id, which follows the message's own `</body>`: the answer is
    // cut at the next one, the wrapper's.
    let answers = bosh.read_until("urn:xmpp:occupant-id:0").await;
    let payload = bosh::payloads(&answers)
        .into_iter()
        .find(|p| p.contains("id=\"m1\""))
        .unwrap_or_else(|| panic!("no message in the BOSH answers {answers}"));
    assert_eq!(payload, expect(&bosh_jid, true));

    // Made twice for four occupants: once inside a `jabber:client` stream (TCP, Flash and
    // BOSH's pipe), once as an RFC 7395 document of its own.
    assert_serialised(&server, MESSAGE, before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_held_for_an_inactive_occupant_goes_out_before_the_next_message() {
    let server = server();
    let room = "csi";
    let mut clients = room_of(&server, room, &["alice", "bob"]).await;
    let (mut bob, _) = clients.pop().expect("bob");
    let (mut alice, alice_jid) = clients.pop().expect("alice");

    // XEP-0352: alice's client goes inactive; carol's entry is presence that can wait.
    alice.send("<inactive xmlns='urn:xmpp:csi:0'/>").await;
    alice.ping("after-inactive", "").await;
    let (mut carol, _) = raw(&server, "carol", "desk").await;
    enter(&mut carol, room, "carol").await;
    bob.read_stanza_containing(&format!("from=\"{}\"", occupant(room, "carol")))
        .await;
    let held = alice.read_for(QUIET).await;
    assert!(!held.contains("<presence"), "not held: {held}");

    let before = serialised(&server, MESSAGE);
    bob.send(format!(
        "<message type='groupchat' to='{room}@conference.localhost' id='after'><body>back?</body></message>"
    ))
    .await;
    // The held presence first, then the message, which is the shared one with alice's `to`.
    let first = alice.read_stanza().await;
    assert!(
        first.starts_with("<presence") && first.contains(&occupant(room, "carol")),
        "{first}"
    );
    let message = alice.read_stanza().await;
    let oid = occupant_id(&message);
    let sid = stanza_id_by(&message, &format!("{room}@conference.localhost")).expect("a stanza-id");
    assert_eq!(
        message,
        reflected(
            room,
            "bob",
            "after",
            "back?",
            (&oid, &sid),
            &alice_jid,
            false
        )
    );
    for client in [&mut bob, &mut carol] {
        client.read_stanza_containing("id=\"after\"").await;
    }
    assert_serialised(&server, MESSAGE, before + 1);
}

/// Enough 32 KiB messages to fill a stalled client's socket buffers, then its inbox.
const MESSAGES: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_occupant_is_cut_off_while_the_others_get_everything() {
    let server = server();
    let room = "busy";
    let mut clients = room_of(&server, room, &["alice", "bob", "stuck"]).await;
    let (mut stuck, _) = clients.pop().expect("stuck");
    let (mut bob, _) = clients.pop().expect("bob");
    let (mut alice, _) = clients.pop().expect("alice");

    // Bob reads everything as it comes; the stuck client reads nothing from here on.
    let reader = tokio::spawn(async move {
        let mut ids = Vec::new();
        let mut gone = None;
        while ids.len() < MESSAGES || gone.is_none() {
            let stanza = bob.read_stanza().await;
            if stanza.starts_with("<message") {
                ids.push(jabberwock_tests::bosh::attr(&stanza, "id").unwrap_or_default());
            } else if stanza.contains(&occupant(room, "stuck")) && stanza.contains("unavailable") {
                gone = Some(stanza);
            }
        }
        (ids, gone.unwrap_or_default())
    });
    let before = serialised(&server, MESSAGE);
    let body = "x".repeat(32 * 1024);
    for n in 0..MESSAGES {
        alice
            .send(format!(
                "<message type='groupchat' to='{room}@conference.localhost' id='m{n}'><body>{body}</body></message>"
            ))
            .await;
        // The sender reads its own copy, so only the stuck client falls behind.
        alice.read_stanza_containing(&format!("id=\"m{n}\"")).await;
    }
    assert!(
        server.wait_log("client reads too slowly"),
        "no warning: {}",
        server.log_text()
    );
    let read = stuck.read_to_close().await;
    assert!(
        read.matches("<message").count() < MESSAGES,
        "the client was not cut off"
    );

    let (ids, gone) = tokio::time::timeout(WAIT * 4, reader)
        .await
        .expect("bob got everything in time")
        .expect("bob's reader");
    let expected: Vec<String> = (0..MESSAGES).map(|n| format!("m{n}")).collect();
    assert_eq!(ids, expected, "bob got every message once, in order");
    // The room hears that the stuck client's address is gone (its queued messages came back
    // as errors) and removes it with status 333.
    assert!(gone.contains(&status(333)), "{gone}");
    // Each message was serialised once for its three occupants.
    assert_serialised(&server, MESSAGE, before + MESSAGES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entrants_presence_is_shared_by_those_who_get_the_same_one() {
    let server = server();
    let room = "pres";
    // The owner is a moderator, who sees real JIDs (§7.2.3); the others do not.
    let mut others = room_of(&server, room, &["alice", "bob", "carol"]).await;
    let before = settled(&server, PRESENCE);
    let (mut dave, dave_jid) = raw(&server, "dave", "desk").await;
    enter(&mut dave, room, "dave").await;
    let from = format!("from=\"{}\"", occupant(room, "dave"));
    let mut got = Vec::new();
    for (client, jid) in &mut others {
        let presence = client.read_stanza_containing(&from).await;
        assert!(presence.contains(&format!(" to=\"{jid}\"")), "{presence}");
        got.push(presence.replace(&format!(" to=\"{jid}\""), ""));
    }
    assert!(
        got[0].contains(&format!("jid=\"{dave_jid}\"")),
        "{}",
        got[0]
    );
    assert!(!got[1].contains("jid="), "{}", got[1]);
    assert_eq!(got[1], got[2], "the same presence but for its `to`");
    // One for the moderator, one for the two others.
    assert_serialised(&server, PRESENCE, before + 2);
}
