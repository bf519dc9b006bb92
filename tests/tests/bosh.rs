//! BOSH (XEP-0124 + XEP-0206) end to end, with hyper's HTTP client speaking the wire format
//! by hand: session creation, SASL + restart + bind over BOSH, the same router as TCP and
//! Flash clients, held requests, retransmission, rid and sid checks, size limits, terminate
//! and inactivity cleanup. (Strophe.js over BOSH is in the browser test.)

use std::time::{Duration, Instant};

use jabberwock_tests::bosh::{self, attr, post, BoshClient, NS};
use jabberwock_tests::{RawClient, TestConfig, TestServer};

const PATH: &str = "/http-bind";

fn start(http_lines: &[&str]) -> TestServer {
    let mut config = TestConfig::default();
    for line in http_lines {
        config = config.section("http", line);
    }
    TestServer::start_with(config)
}

fn http(server: &TestServer) -> std::net::SocketAddr {
    server.http.expect("the HTTP listener is on")
}

/// bob (TCP) subscribes to `bosh_jid`'s presence, which the BOSH client approves; returns
/// once bob has seen it available.
async fn subscribe(bob: &mut RawClient, c: &mut BoshClient, bosh_bare: &str) {
    bob.send(format!("<presence to='{bosh_bare}' type='subscribe'/>"))
        .await;
    c.read_until("type=\"subscribe\"").await;
    c.send("<presence xmlns='jabber:client' to='bob@localhost' type='subscribed'/>")
        .await;
    let available = bob
        .read_stanza_containing(&format!("from=\"{bosh_bare}/web\""))
        .await;
    assert!(available.starts_with("<presence"), "{available}");
    assert!(!available.contains("unavailable"), "{available}");
}

#[tokio::test]
async fn session_creation_response_carries_the_session_attributes_and_features() {
    let server = start(&["bosh_max_wait = 20", "bosh_inactivity = 45"]);
    let (_, answer) = BoshClient::create(http(&server), PATH, "localhost", 10).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.content_type.starts_with("text/xml"), "{answer:?}");
    let b = &answer.body;
    assert!(b.starts_with("<body"), "{b}");
    assert!(b.contains(&format!("xmlns=\"{NS}\"")), "{b}");
    assert!(attr(b, "sid").is_some_and(|s| s.len() >= 16), "{b}");
    assert_eq!(attr(b, "wait").as_deref(), Some("10"), "{b}");
    assert_eq!(attr(b, "hold").as_deref(), Some("1"), "{b}");
    assert_eq!(attr(b, "requests").as_deref(), Some("2"), "{b}");
    assert_eq!(attr(b, "inactivity").as_deref(), Some("45"), "{b}");
    assert!(attr(b, "polling").is_some(), "{b}");
    assert_eq!(attr(b, "ver").as_deref(), Some("1.6"), "{b}");
    assert_eq!(attr(b, "from").as_deref(), Some("localhost"), "{b}");
    assert!(attr(b, "authid").is_some_and(|s| !s.is_empty()), "{b}");
    assert_eq!(attr(b, "xmpp:version").as_deref(), Some("1.0"), "{b}");
    assert!(b.contains("xmlns:xmpp=\"urn:xmpp:xbosh\""), "{b}");
    assert!(
        b.contains("xmlns:stream=\"http://etherx.jabber.org/streams\""),
        "{b}"
    );
    // XEP-0206: the features come in the body, no STARTTLS (TLS is the HTTP layer's).
    assert!(b.contains("<stream:features>"), "{b}");
    assert!(b.contains("<mechanism>SCRAM-SHA-256</mechanism>"), "{b}");
    assert!(!b.contains("starttls"), "{b}");
    // No stream header bytes leak into the body.
    assert!(!b.contains("<stream:stream"), "{b}");

    // A longer wait than we allow is cut to http.bosh_max_wait.
    let (_, answer) = BoshClient::create(http(&server), PATH, "localhost", 600).await;
    assert_eq!(
        attr(&answer.body, "wait").as_deref(),
        Some("20"),
        "{answer:?}"
    );

    // A host we do not serve.
    let answer = post(
        http(&server),
        PATH,
        format!("<body rid='5' to='elsewhere.example' wait='10' hold='1' xmlns='{NS}'/>"),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(attr(&answer.body, "type").as_deref(), Some("terminate"));
    assert_eq!(
        attr(&answer.body, "condition").as_deref(),
        Some("host-unknown")
    );
}

#[tokio::test]
async fn bosh_client_logs_in_and_chats_with_tcp_and_flash_clients() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    server.add_user("carol@localhost", "flashy");
    let (mut bob, bob_jid) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "builder", "tcp").await;
    let (mut carol, carol_jid) =
        RawClient::login_flash(server.c2s, "carol", "flashy", "xiff").await;

    // SASL PLAIN, restart (xmpp:restart), bind, initial presence: all over BOSH.
    let (mut c, jid) = BoshClient::login(
        http(&server),
        PATH,
        "localhost",
        "alice",
        "wonderland",
        "web",
        5,
    )
    .await;
    assert_eq!(jid, "alice@localhost/web");

    // Roster: empty, then bob's subscription shows up as a push and in a get.
    c.send("<iq xmlns='jabber:client' type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
        .await;
    let roster = c.read_until("id=\"r1\"").await;
    assert!(roster.contains("jabber:iq:roster"), "{roster}");
    subscribe(&mut bob, &mut c, "alice@localhost").await;
    c.send("<iq xmlns='jabber:client' type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>")
        .await;
    let roster = c.read_until("id=\"r2\"").await;
    assert!(roster.contains("jid=\"bob@localhost\""), "{roster}");

    // BOSH -> TCP and BOSH -> Flash, in one request.
    c.send(&format!(
        "<message xmlns='jabber:client' type='chat' to='{bob_jid}'><body>hi bob, from bosh</body></message>\
         <message xmlns='jabber:client' type='chat' to='{carol_jid}'><body>hi carol, from bosh</body></message>"
    ))
    .await;
    let m = bob.read_stanza_containing("hi bob, from bosh").await;
    assert!(m.contains("from=\"alice@localhost/web\""), "{m}");
    let m = carol.read_stanza_containing("hi carol, from bosh").await;
    assert!(m.contains("from=\"alice@localhost/web\""), "{m}");

    // TCP -> BOSH and Flash -> BOSH.
    bob.send(
        "<message type='chat' to='alice@localhost/web'><body>hi alice, from tcp</body></message>",
    )
    .await;
    carol
        .send("<message type=\"chat\" to=\"alice@localhost/web\"><body>hi alice, from flash</body></message>\0")
        .await;
    let got = c.read_until("hi alice, from tcp").await;
    let rest = if got.contains("hi alice, from flash") {
        got.clone()
    } else {
        c.read_until("hi alice, from flash").await
    };
    assert!(got.contains(&format!("from=\"{bob_jid}\"")), "{got}");
    assert!(rest.contains(&format!("from=\"{carol_jid}\"")), "{rest}");
    // Stanzas in a body carry their namespace (the body's default is httpbind).
    assert!(got.contains("<message xmlns=\"jabber:client\""), "{got}");
}

#[tokio::test]
async fn held_request_is_answered_by_a_message_and_empty_after_wait() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let (mut bob, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "builder", "tcp").await;
    let (mut c, _) = BoshClient::login(
        http(&server),
        PATH,
        "localhost",
        "alice",
        "wonderland",
        "web",
        3,
    )
    .await;

    // Nothing pending: the empty request is held for up to `wait` (3 s).
    let body = c.next_body("", "");
    let held = tokio::spawn(post(http(&server), PATH, body));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !held.is_finished(),
        "an empty request must be held, not answered at once"
    );
    let sent = Instant::now();
    bob.send("<message type='chat' to='alice@localhost/web'><body>wake up</body></message>")
        .await;
    let answer = held.await.expect("held request");
    assert!(answer.body.contains("<body>wake up</body>"), "{answer:?}");
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "answered late: {:?}",
        sent.elapsed()
    );

    // Nothing arrives: answered empty once `wait` has passed, the session still alive.
    let started = Instant::now();
    let answer = c.send("").await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2500),
        "answered after {took:?}: {answer:?}"
    );
    assert!(took < Duration::from_secs(6), "answered after {took:?}");
    assert!(
        answer.body.starts_with("<body") && answer.body.ends_with("/>"),
        "{answer:?}"
    );
    assert!(!answer.body.contains("terminate"), "{answer:?}");
    c.send("<iq xmlns='jabber:client' type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    c.read_until("id=\"p1\"").await;
}

#[tokio::test]
async fn a_second_request_releases_the_held_one() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    let (mut c, _) = BoshClient::login(
        http(&server),
        PATH,
        "localhost",
        "alice",
        "wonderland",
        "web",
        10,
    )
    .await;
    let body = c.next_body("", "");
    let held = tokio::spawn(post(http(&server), PATH, body));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished());
    // hold='1': the new request takes the slot, the old one is answered (empty) now.
    let body = c.next_body("", "");
    let second = tokio::spawn(post(http(&server), PATH, body));
    let first = tokio::time::timeout(Duration::from_secs(3), held)
        .await
        .expect("the held request was not released")
        .expect("task");
    assert!(
        first.body.ends_with("/>") && !first.body.contains("terminate"),
        "{first:?}"
    );
    assert!(!second.is_finished());
    second.abort();
}

#[tokio::test]
async fn repeated_rid_gets_the_same_answer() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    let (mut c, _) = BoshClient::login(
        http(&server),
        PATH,
        "localhost",
        "alice",
        "wonderland",
        "web",
        5,
    )
    .await;
    let body = c.next_body(
        "",
        "<iq xmlns='jabber:client' type='get' id='v1' to='localhost'><query xmlns='jabber:iq:version'/></iq>",
    );
    let first = post(http(&server), PATH, body.clone()).await;
    assert!(first.body.contains("id=\"v1\""), "{first:?}");
    // XEP-0124 §14.3: the same rid again (a lost response) gets the same response again,
    // and the iq is not processed twice.
    let again = post(http(&server), PATH, body).await;
    assert_eq!(again.body, first.body);
    assert_eq!(again.status, 200);
    // The session goes on with the next rid.
    c.send("<iq xmlns='jabber:client' type='get' id='p2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let pong = c.read_until("id=\"p2\"").await;
    assert!(!pong.contains("id=\"v1\""), "answered twice: {pong}");
}

#[tokio::test]
async fn requests_are_processed_in_rid_order() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let (mut bob, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "builder", "tcp").await;
    let (mut c, _) = BoshClient::login(
        http(&server),
        PATH,
        "localhost",
        "alice",
        "wonderland",
        "web",
        2,
    )
    .await;
    let msg = |text: &str| {
        format!("<message xmlns='jabber:client' type='chat' to='bob@localhost/tcp'><body>{text}</body></message>")
    };
    let first = c.next_body("", &msg("first"));
    let second = c.next_body("", &msg("second"));
    // The later rid arrives first: it waits for the gap (§14.2).
    let later = tokio::spawn(post(http(&server), PATH, second));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let earlier = tokio::spawn(post(http(&server), PATH, first));
    let m1 = bob.read_stanza_containing("<body>").await;
    let m2 = bob.read_stanza_containing("<body>").await;
    assert!(m1.contains("first") && m2.contains("second"), "{m1} / {m2}");
    let _ = earlier.await;
    let _ = later.await;
}

#[tokio::test]
async fn rid_out_of_window_terminates_the_session() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    let (mut c, _) = BoshClient::login(
        http(&server),
        PATH,
        "localhost",
        "alice",
        "wonderland",
        "web",
        2,
    )
    .await;
    c.rid += 10;
    let answer = c.send("").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        attr(&answer.body, "type").as_deref(),
        Some("terminate"),
        "{answer:?}"
    );
    assert_eq!(
        attr(&answer.body, "condition").as_deref(),
        Some("item-not-found"),
        "{answer:?}"
    );
    // The session is over: the right rid does not revive it.
    c.rid -= 11;
    let answer = c.send("").await;
    assert_eq!(
        attr(&answer.body, "type").as_deref(),
        Some("terminate"),
        "{answer:?}"
    );

    // Far behind the window (an old rid whose answer is no longer kept) ends a session too.
    let (mut c, _) = BoshClient::create(http(&server), PATH, "localhost", 1).await;
    for _ in 0..4 {
        c.send("").await;
    }
    c.rid -= 4;
    let answer = c.send("").await;
    assert_eq!(
        attr(&answer.body, "condition").as_deref(),
        Some("item-not-found"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn unknown_sid_and_malformed_bodies_are_refused() {
    let server = TestServer::start();
    let addr = http(&server);
    let answer = post(
        addr,
        PATH,
        format!("<body rid='10' sid='no-such-session' xmlns='{NS}'/>"),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        attr(&answer.body, "type").as_deref(),
        Some("terminate"),
        "{answer:?}"
    );
    assert_eq!(
        attr(&answer.body, "condition").as_deref(),
        Some("item-not-found"),
        "{answer:?}"
    );

    for bad in [
        "not xml at all".to_owned(),
        format!("<body rid='1' to='localhost' xmlns='{NS}'>"),
        "<body rid='1' to='localhost'/>".to_owned(),
        format!("<other rid='1' to='localhost' xmlns='{NS}'/>"),
        // A mismatched end tag in the payload (RFC 6120 §4.9.3.13).
        format!("<body rid='1' to='localhost' xmlns='{NS}'><message><body>x</message></body>"),
    ] {
        let answer = post(addr, PATH, bad.clone()).await;
        assert_eq!(answer.status, 200, "{bad}");
        assert_eq!(
            attr(&answer.body, "condition").as_deref(),
            Some("bad-request"),
            "{bad}: {answer:?}"
        );
    }
    // Only POST carries BOSH.
    let answer = bosh::request(addr, "GET", PATH, Vec::new()).await;
    assert_eq!(answer.status, 405, "{answer:?}");
}

#[tokio::test]
async fn a_body_over_the_size_limit_gets_413() {
    let server = TestServer::start_with(TestConfig::default().c2s("max_stanza_bytes = 4096"));
    let (c, _) = BoshClient::create(http(&server), PATH, "localhost", 1).await;
    // max_stanza_bytes + 16 KiB of wrapping is the most a request may carry.
    let big = "x".repeat(64 * 1024);
    let body = format!(
        "<body rid='{}' sid='{}' xmlns='{NS}'><message xmlns='jabber:client' to='a@localhost'><body>{big}</body></message></body>",
        c.rid, c.sid
    );
    let answer = post(http(&server), PATH, body).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    // Under the HTTP limit but over the stanza limit: the stream layer's policy-violation,
    // as a remote-stream-error terminate.
    let mid = "x".repeat(8 * 1024);
    let body = format!(
        "<body rid='{}' sid='{}' xmlns='{NS}'><message xmlns='jabber:client' to='a@localhost'><body>{mid}</body></message></body>",
        c.rid, c.sid
    );
    let answer = post(http(&server), PATH, body).await;
    assert_eq!(
        attr(&answer.body, "type").as_deref(),
        Some("terminate"),
        "{answer:?}"
    );
    assert_eq!(
        attr(&answer.body, "condition").as_deref(),
        Some("remote-stream-error"),
        "{answer:?}"
    );
    // XEP-0206: the stream error's content, not the <stream:error/> element itself.
    assert!(
        answer
            .body
            .contains("<policy-violation xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\""),
        "{answer:?}"
    );
    assert!(!answer.body.contains("stream:error"), "{answer:?}");
}

#[tokio::test]
async fn terminate_processes_its_stanzas_then_ends_the_session() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let (mut bob, bob_jid) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "builder", "tcp").await;
    let (mut c, _) = BoshClient::login(
        http(&server),
        PATH,
        "localhost",
        "alice",
        "wonderland",
        "web",
        5,
    )
    .await;
    subscribe(&mut bob, &mut c, "alice@localhost").await;

    let body = c.next_body(
        " type='terminate'",
        &format!(
            "<message xmlns='jabber:client' type='chat' to='{bob_jid}'><body>bye from bosh</body></message>\
             <presence xmlns='jabber:client' type='unavailable'/>"
        ),
    );
    let answer = post(http(&server), PATH, body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        attr(&answer.body, "type").as_deref(),
        Some("terminate"),
        "{answer:?}"
    );
    assert!(attr(&answer.body, "condition").is_none(), "{answer:?}");
    let m = bob.read_stanza_containing("bye from bosh").await;
    assert!(m.contains("from=\"alice@localhost/web\""), "{m}");
    let p = bob.read_stanza_containing("type=\"unavailable\"").await;
    assert!(p.contains("from=\"alice@localhost/web\""), "{p}");
    // The sid is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = c.send("").await;
        assert_eq!(
            attr(&answer.body, "type").as_deref(),
            Some("terminate"),
            "{answer:?}"
        );
        if attr(&answer.body, "condition").as_deref() == Some("item-not-found") {
            break;
        }
        assert!(Instant::now() < deadline, "session still known: {answer:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_inactive_session_is_cleaned_up_and_its_contacts_see_it_leave() {
    let server = start(&["bosh_inactivity = 2"]);
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let (mut bob, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "builder", "tcp").await;
    let (mut c, _) = BoshClient::login(
        http(&server),
        PATH,
        "localhost",
        "alice",
        "wonderland",
        "web",
        1,
    )
    .await;
    assert!(server.log_text().contains("BOSH session created"));
    subscribe(&mut bob, &mut c, "alice@localhost").await;
    // The client stops making requests: after 2 s without one the session is over, and
    // the core ends it as a lost connection.
    let stopped = Instant::now();
    let p = bob.read_stanza_containing("type=\"unavailable\"").await;
    assert!(p.contains("from=\"alice@localhost/web\""), "{p}");
    assert!(
        stopped.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        stopped.elapsed()
    );
    assert!(server.wait_log("BOSH session inactive"));
    let answer = c.send("").await;
    assert_eq!(
        attr(&answer.body, "type").as_deref(),
        Some("terminate"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn output_beyond_the_pending_budget_ends_the_session() {
    let server = start(&["bosh_max_pending_bytes = 16384", "bosh_inactivity = 60"]);
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let (mut bob, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "builder", "tcp").await;
    let (mut c, _) = BoshClient::login(
        http(&server),
        PATH,
        "localhost",
        "alice",
        "wonderland",
        "web",
        1,
    )
    .await;
    subscribe(&mut bob, &mut c, "alice@localhost").await;
    // alice stops collecting; bob sends more than 16 KiB.
    let text = "y".repeat(1024);
    for i in 0..24 {
        bob.send(format!(
            "<message type='chat' to='alice@localhost/web' id='big{i}'><body>{text}</body></message>"
        ))
        .await;
    }
    let p = bob.read_stanza_containing("type=\"unavailable\"").await;
    assert!(p.contains("from=\"alice@localhost/web\""), "{p}");
    assert!(server.wait_log("bosh_max_pending_bytes"));
    let answer = c.send("").await;
    assert_eq!(
        attr(&answer.body, "type").as_deref(),
        Some("terminate"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn plain_http_not_trusted_follows_require_encryption() {
    // http.loopback_is_encrypted = false: this plain-HTTP session counts as unencrypted, so
    // c2s.require_encryption (on by default) leaves nothing to authenticate with.
    // (With an allowed plain login, the same features would carry mechanisms.)
    let server = start(&["loopback_is_encrypted = false"]);
    let (_, answer) = BoshClient::create(http(&server), PATH, "localhost", 1).await;
    let b = &answer.body;
    assert!(b.contains("<stream:features"), "{b}");
    // No STARTTLS over BOSH (XEP-0206 §4), and no mechanism without encryption.
    assert!(!b.contains("starttls"), "{b}");
    assert!(!b.contains("<mechanism>"), "{b}");
}

#[tokio::test]
async fn both_slash_forms_of_the_path_are_the_endpoint() {
    // Flash-era BOSH clients post to `/http-bind/`.
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    let (_, jid) = BoshClient::login(
        http(&server),
        "/http-bind/",
        "localhost",
        "alice",
        "wonderland",
        "slash",
        5,
    )
    .await;
    assert_eq!(jid, "alice@localhost/slash");
    let answer = post(http(&server), "/http-bind//", "<body/>").await;
    assert_eq!(answer.status, 404, "{answer:?}");

    // Configured with the slash, the bare form is served too.
    let server = start(&["bosh_path = \"/bind/\""]);
    server.add_user("alice@localhost", "wonderland");
    let (_, jid) = BoshClient::login(
        http(&server),
        "/bind",
        "localhost",
        "alice",
        "wonderland",
        "bare",
        5,
    )
    .await;
    assert_eq!(jid, "alice@localhost/bare");
}
