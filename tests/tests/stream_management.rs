//! XEP-0198 stream management: a client whose connection is cut (not closed) resumes its
//! session and gets everything sent to it meanwhile, exactly once and in order; one that
//! comes back too late finds it in offline storage, still exactly once. The client is
//! slixmpp with its own xep_0198 plugin; the cut is a relay that stops passing bytes.

use jabberwock_tests::raw::RawClient;
use jabberwock_tests::relay::Relay;
use jabberwock_tests::slix::SlixIm;
use jabberwock_tests::xmpp_ws::XmppWs;
use jabberwock_tests::{TestConfig, TestServer};

const MESSAGES: usize = 100;

fn server(resume_timeout: u32) -> TestServer {
    // An <r/> unanswered for 2 s means the stream is gone.
    server_noticing_after(resume_timeout, 2)
}

fn server_noticing_after(resume_timeout: u32, ack_timeout: u32) -> TestServer {
    server_with(TestConfig::default(), resume_timeout, ack_timeout)
}

/// A server started with `config` and the stream management settings.
fn server_with(config: TestConfig, resume_timeout: u32, ack_timeout: u32) -> TestServer {
    let server = TestServer::start_with(
        config
            .section(
                "modules.stream_management",
                &format!("ack_timeout = {ack_timeout}"),
            )
            .section(
                "modules.stream_management",
                &format!("resume_timeout = {resume_timeout}"),
            ),
    );
    server.add_user("alice@localhost", "alicepw");
    server.add_user("bob@localhost", "bobpw");
    server
}

/// The bodies of `prefix`-numbered messages alice's client reported, in order.
fn received(alice: &SlixIm, prefix: &str) -> Vec<String> {
    alice
        .events
        .iter()
        .filter(|line| line.contains("\"received\""))
        .filter_map(|line| {
            let body = line.split("\"body\": \"").nth(1)?.split('"').next()?;
            body.starts_with(prefix).then(|| body.to_owned())
        })
        .collect()
}

fn numbered(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}{n}")).collect()
}

/// Alice (slixmpp, through the relay) logs in with stream management; Bob sends her three
/// messages she acknowledges; then the relay is cut and Bob sends [`MESSAGES`] more. With
/// `noticed`, waits until the server counts Alice's stream as lost.
async fn cut_mid_conversation(
    server: &TestServer,
    relay: &Relay,
    noticed: bool,
) -> (SlixIm, SlixIm) {
    let mut alice = SlixIm::spawn_script(
        "slix_sm.py",
        "alice@localhost/phone",
        "alicepw",
        relay.addr.port(),
        &server.cert_path(),
    );
    alice.expect_all(&["session_start"]).await;
    alice
        .expect_ever(&["sm_enabled", "\"resume\": \"true\""])
        .await;
    alice.command(r#"{"cmd": "available"}"#).await;
    let mut bob = SlixIm::spawn(
        "bob@localhost/desk",
        "bobpw",
        server.c2s.port(),
        &server.cert_path(),
    );
    bob.expect_all(&["session_start"]).await;
    for n in 0..3 {
        bob.command(&format!(
            r#"{{"cmd": "message", "to": "alice@localhost/phone", "body": "before{n}"}}"#
        ))
        .await;
    }
    alice.expect_all(&["\"received\"", "before2"]).await;
    // Alice answered the server's <r/> after those three on the same path, before this
    // message, which Bob receiving shows the server handled.
    alice
        .command(r#"{"cmd": "message", "to": "bob@localhost/desk", "body": "got them"}"#)
        .await;
    bob.expect_all(&["\"received\"", "got them"]).await;

    relay.cut();
    for n in 0..MESSAGES {
        bob.command(&format!(
            r#"{{"cmd": "message", "to": "alice@localhost/phone", "body": "during{n}"}}"#
        ))
        .await;
    }
    // Alice never answers the <r/> that followed: the server counts the stream as lost.
    if noticed {
        assert!(
            server.wait_log("stream lost: session waits for resumption"),
            "{}",
            server.log_text()
        );
    }
    (alice, bob)
}

#[tokio::test]
async fn a_cut_client_resumes_and_gets_every_message_once_in_order() {
    let server = server(60);
    let relay = Relay::start(server.c2s).await;
    let (alice, bob) = cut_mid_conversation(&server, &relay, true).await;
    resumes_with_everything(&server, alice, bob).await;
}

/// The server has not noticed yet (its <r/> may wait a minute) when the client resumes: the
/// session leaves the old stream for the new one.
#[tokio::test]
async fn a_client_resumes_before_the_server_notices_the_cut() {
    let server = server_noticing_after(60, 60);
    let relay = Relay::start(server.c2s).await;
    let (alice, bob) = cut_mid_conversation(&server, &relay, false).await;
    resumes_with_everything(&server, alice, bob).await;
    assert!(!server
        .log_text()
        .contains("stream lost: session waits for resumption"));
    assert!(server.wait_log("session went on on another stream"));
}

/// Alice reconnects and resumes: every message of the cut once, in order, and the session
/// goes on.
async fn resumes_with_everything(server: &TestServer, mut alice: SlixIm, mut bob: SlixIm) {
    alice.command(r#"{"cmd": "reconnect"}"#).await;
    alice.expect_all(&["\"resumed\""]).await;
    let last = format!("during{}", MESSAGES - 1);
    alice.expect_all(&["\"received\"", &last]).await;
    assert_eq!(received(&alice, "during"), numbered("during", MESSAGES));
    assert_eq!(received(&alice, "before"), numbered("before", 3));
    // A resumption, not a second login.
    assert_eq!(
        alice
            .events
            .iter()
            .filter(|l| l.contains("session_start"))
            .count(),
        1
    );
    // The session lives on: a new message arrives at once, and nothing went offline.
    bob.command(r#"{"cmd": "message", "to": "alice@localhost/phone", "body": "after"}"#)
        .await;
    alice.expect_all(&["\"received\"", "after"]).await;
    assert!(!server.log_text().contains("re-routing stanzas"));
    assert!(alice.quit().await);
    assert!(bob.quit().await);
}

#[tokio::test]
async fn a_client_back_too_late_finds_the_messages_offline_once() {
    let server = server(2);
    let relay = Relay::start(server.c2s).await;
    let (mut alice, bob) = cut_mid_conversation(&server, &relay, true).await;
    assert!(
        server.wait_log("no resumption in time: session ends"),
        "{}",
        server.log_text()
    );
    // Once it has ended, what it kept is in offline storage.
    assert!(server.wait_log("session ended"), "{}", server.log_text());

    alice.command(r#"{"cmd": "reconnect"}"#).await;
    // The server no longer knows the session: slixmpp logs in afresh.
    alice.expect_all(&["sm_failed"]).await;
    alice.expect_all(&["session_start"]).await;
    alice.command(r#"{"cmd": "available"}"#).await;
    let last = format!("during{}", MESSAGES - 1);
    // Offline messages come with the initial presence: some may precede the `ok`.
    alice.expect_ever(&["\"received\"", &last]).await;
    assert_eq!(received(&alice, "during"), numbered("during", MESSAGES));
    assert_eq!(received(&alice, "before"), numbered("before", 3));
    assert!(alice.quit().await);
    assert!(bob.quit().await);
}

/// The resumption id is the account's alone, and an unknown one is refused the same way.
#[tokio::test]
async fn another_account_cannot_resume_a_session() {
    let server = server(60);
    server.add_user("mallory@localhost", "mallorypw");
    let (mut alice, id) = login_resumable(&server, "alice", "alicepw", "phone").await;

    let mut mallory =
        RawClient::login_standard_unbound(server.c2s, &server.cert_path(), "mallory", "mallorypw")
            .await;
    mallory
        .send(format!(
            "<resume xmlns='urn:xmpp:sm:3' previd='{id}' h='0'/>"
        ))
        .await;
    let failed = mallory.read_stanza().await;
    assert!(
        failed.contains("<failed") && failed.contains("item-not-found"),
        "{failed}"
    );
    mallory
        .send("<resume xmlns='urn:xmpp:sm:3' previd='no-such-session' h='0'/>")
        .await;
    let failed = mallory.read_stanza().await;
    assert!(failed.contains("item-not-found"), "{failed}");
    // Alice's session is untouched: it still answers.
    alice.send("<r xmlns='urn:xmpp:sm:3'/>").await;
    let answer = alice.read_stanza_containing("<a ").await;
    assert!(answer.contains("h=\"0\""), "{answer}");
}

/// A session waiting for its client holds no connection: the server closes the socket of
/// the stream it lost (no half-open connection, no descriptor kept for minutes), and the
/// session is still there to resume.
#[tokio::test]
async fn a_lost_stream_is_closed_while_its_session_waits() {
    let server = server(60);
    let (mut alice, id) = login_resumable(&server, "alice", "alicepw", "phone").await;
    alice.stop_sending().await;
    let rest = alice.read_to_close().await;
    assert!(!rest.contains("<stream:error"), "{rest}");
    assert!(server.wait_log("stream lost: session waits for resumption"));

    resume(&server, "alice", "alicepw", &id).await;
}

/// Room for two connections from one address: the loopback is not exempt here.
fn two_per_address() -> TestConfig {
    TestConfig::default()
        .c2s("max_connections_per_ip = 2")
        .c2s("per_ip_exempt = []")
}

/// Room for two connections in all (the loopback is exempt from the per-address cap).
fn two_in_all() -> TestConfig {
    TestConfig::default().c2s("max_connections = 2")
}

/// A session waiting for its client holds no connection, so no place under the connection
/// caps: a phone flapping in a tunnel does not lock its own address out. With room for two
/// connections, two new ones log in while the session waits; once one of them has closed,
/// the session is resumed in its place.
#[tokio::test]
async fn a_waiting_session_leaves_its_address_room_for_new_connections() {
    waiting_session_leaves_room(two_per_address()).await;
}

#[tokio::test]
async fn a_waiting_session_leaves_room_under_max_connections() {
    waiting_session_leaves_room(two_in_all()).await;
}

async fn waiting_session_leaves_room(cap: TestConfig) {
    let server = server_with(cap, 60, 2);
    let cert = server.cert_path();
    let (mut alice, id) = login_resumable(&server, "alice", "alicepw", "phone").await;
    // Lost, not closed: no </stream:stream>.
    alice.stop_sending().await;
    alice.read_to_close().await;
    assert!(server.wait_log("stream lost: session waits for resumption"));

    // Over the cap, these would be closed without a byte (per address) or left waiting
    // for a place (in all): the logins would not finish.
    let (mut desk, _) = RawClient::login_standard(server.c2s, &cert, "bob", "bobpw", "desk").await;
    let (mut laptop, _) =
        RawClient::login_standard(server.c2s, &cert, "bob", "bobpw", "laptop").await;
    desk.ping("d1", "").await;
    laptop.ping("l1", "").await;

    desk.send("</stream:stream>").await;
    desk.read_to_close().await;
    let mut again = resume(&server, "alice", "alicepw", &id).await;
    again.ping("a1", "").await;
    laptop.ping("l2", "").await;
}

/// The same over RFC 7395: a WebSocket session waiting for its client leaves its address
/// room for two new WebSockets, and is resumed on a third once one of them has closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_websocket_session_leaves_its_address_room() {
    let server = server_with(two_per_address(), 60, 2);
    server.wait_started();
    let http = server.http.expect("HTTP listener");
    let (alice, _, id) = login_resumable_ws(http, "alice", "alicepw", "web").await;
    // The WebSocket's TCP connection goes away without a <close/>.
    drop(alice);
    assert!(server.wait_log("stream lost: session waits for resumption"));

    // Over the cap, each upgrade would be answered 429.
    let mut desk = XmppWs::connect(http, None).await;
    desk.login("bob", "bobpw", "desk").await;
    let mut laptop = XmppWs::connect(http, None).await;
    laptop.login("bob", "bobpw", "laptop").await;

    desk.send("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
        .await;
    desk.rest_until_closed().await;
    resume_ws(http, "alice", "alicepw", &id, 0).await;
    laptop
        .send("<iq xmlns='jabber:client' type='get' id='l1'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let pong = laptop.recv_containing("id=\"l1\"").await;
    assert!(pong.contains("type=\"result\""), "{pong}");
}

/// Over RFC 7395 too: a WebSocket client that acknowledged one of two messages and lost
/// its connection resumes on a new WebSocket and gets the other, then what came meanwhile,
/// once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_resumes_on_a_new_websocket() {
    let server = server(60);
    server.wait_started();
    let http = server.http.expect("HTTP listener");
    let (mut alice, jid, id) = login_resumable_ws(http, "alice", "alicepw", "web").await;
    let (mut bob, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "bobpw", "desk").await;
    for n in 1..=2 {
        bob.send(format!(
            "<message to='{jid}' type='chat' id='m{n}'><body>ws{n}</body></message>"
        ))
        .await;
        alice.recv_containing(&format!("ws{n}")).await;
    }
    // The WebSocket's TCP connection goes away without a <close/>.
    drop(alice);
    assert!(server.wait_log("stream lost: session waits for resumption"));
    bob.send(format!(
        "<message to='{jid}' type='chat' id='m3'><body>ws3</body></message>"
    ))
    .await;

    // The client handled one of our stanzas since <enable/>: ws1.
    let (mut alice, resumed) = resume_ws(http, "alice", "alicepw", &id, 1).await;
    // Alice sent nothing since <enable/>.
    assert_eq!(attr(&resumed, "h"), "0");
    let again = alice.recv_containing("<message").await;
    assert!(again.contains("ws2"), "{again}");
    let meanwhile = alice.recv_containing("<message").await;
    assert!(meanwhile.contains("ws3"), "{meanwhile}");
    // Then the server asks for acknowledgement and nothing else comes.
    let request = alice.recv().await;
    assert!(request.starts_with("<r "), "{request}");
    alice.send("<a xmlns='urn:xmpp:sm:3' h='3'/>").await;
    alice
        .send("<iq xmlns='jabber:client' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let pong = alice.recv().await;
    assert!(pong.contains("id=\"p1\""), "{pong}");
}

/// A WebSocket client logged in as `user` with `<enable resume='true'/>` answered: it, its
/// full JID and the resumption id.
async fn login_resumable_ws(
    http: std::net::SocketAddr,
    user: &str,
    password: &str,
    resource: &str,
) -> (XmppWs, String, String) {
    let mut client = XmppWs::connect(http, None).await;
    let jid = client.login(user, password, resource).await;
    client
        .send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
        .await;
    let id = attr(&client.recv_containing("<enabled").await, "id");
    (client, jid, id)
}

/// On a new WebSocket, `user` resumes the session `id` having handled `h` of its stanzas:
/// the client and the `<resumed/>`.
async fn resume_ws(
    http: std::net::SocketAddr,
    user: &str,
    password: &str,
    id: &str,
    h: u32,
) -> (XmppWs, String) {
    let mut client = XmppWs::connect(http, None).await;
    let features = client.authenticate(user, password).await;
    assert!(features.contains("urn:xmpp:sm:3"), "{features}");
    client
        .send(&format!(
            "<resume xmlns='urn:xmpp:sm:3' previd='{id}' h='{h}'/>"
        ))
        .await;
    let resumed = client.recv().await;
    assert!(resumed.starts_with("<resumed"), "{resumed}");
    assert_eq!(attr(&resumed, "previd"), id);
    (client, resumed)
}

/// On a new connection, `user` resumes the session `id` having handled none of its stanzas.
async fn resume(server: &TestServer, user: &str, password: &str, id: &str) -> RawClient {
    let mut client =
        RawClient::login_standard_unbound(server.c2s, &server.cert_path(), user, password).await;
    client
        .send(format!(
            "<resume xmlns='urn:xmpp:sm:3' previd='{id}' h='0'/>"
        ))
        .await;
    let resumed = client.read_stanza_containing("<resumed").await;
    assert_eq!(attr(&resumed, "previd"), id);
    client
}

/// A raw client logged in as `user` with `<enable resume='true'/>` answered: it and the id.
async fn login_resumable(
    server: &TestServer,
    user: &str,
    password: &str,
    resource: &str,
) -> (RawClient, String) {
    let (mut client, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), user, password, resource).await;
    client
        .send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
        .await;
    let enabled = client.read_stanza_containing("<enabled").await;
    assert!(enabled.contains("resume=\"true\""), "{enabled}");
    let id = attr(&enabled, "id");
    (client, id)
}

fn attr(element: &str, name: &str) -> String {
    element
        .split(&format!(" {name}=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in {element}"))
        .to_owned()
}

/// A client that enabled acknowledgements and never acknowledges is not kept without end:
/// past `max_unacked` its session ends with `policy-violation`, and everything it was sent
/// and did not acknowledge waits offline, each message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_acknowledges_is_ended_and_its_messages_wait_offline_once() {
    const FLOOD: usize = 300;
    let server = TestServer::start_with(
        TestConfig::default()
            .section("modules.stream_management", "max_unacked = 100")
            .section("offline", &format!("max_messages = {FLOOD}")),
    );
    server.add_user("alice@localhost", "alicepw");
    server.add_user("bob@localhost", "bobpw");
    let cert = server.cert_path();
    let (mut alice, _) =
        RawClient::login_standard(server.c2s, &cert, "alice", "alicepw", "phone").await;
    alice.send("<enable xmlns='urn:xmpp:sm:3'/>").await;
    alice.read_stanza_containing("<enabled").await;
    let (mut bob, _) = RawClient::login_standard(server.c2s, &cert, "bob", "bobpw", "desk").await;
    for n in 0..FLOOD {
        bob.send(format!(
            "<message to='alice@localhost/phone' type='chat' id='f{n}'><body>flood {n}</body></message>"
        ))
        .await;
    }
    // Bob's session is unaffected: the server answers him after all of it.
    let before = bob.until_pong("flooded").await;
    assert!(!before.contains("type=\"error\""), "{before}");
    assert!(
        server.wait_log("too many unacknowledged stanzas"),
        "{}",
        server.log_text()
    );
    let end = alice.read_to_close().await;
    assert!(end.contains("policy-violation"), "{end}");

    let (mut alice, _) =
        RawClient::login_standard(server.c2s, &cert, "alice", "alicepw", "phone").await;
    let mut ids = Vec::new();
    while ids.len() < FLOOD {
        let stanza = alice.read_stanza_containing("flood ").await;
        assert!(
            stanza.contains("urn:xmpp:delay"),
            "not from storage: {stanza}"
        );
        ids.push(
            stanza
                .split(" id=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .expect("an id")
                .to_owned(),
        );
    }
    // Each once. Not in order: what arrived while the session was ending went to storage
    // before what the session handed back (docs/stream-management.md, "Not yet").
    ids.sort_by_key(|id| id[1..].parse::<usize>().expect("a number"));
    let expected: Vec<String> = (0..FLOOD).map(|n| format!("f{n}")).collect();
    assert_eq!(ids, expected);
    assert!(alice
        .read_stanza_within(std::time::Duration::from_millis(300))
        .await
        .is_none_or(|s| !s.contains("flood ")));
}
