//! Prometheus `/metrics`: scraped over HTTP from the real server and parsed by the Prometheus
//! project's Python client (both text formats); its counters follow what clients we did not
//! write (slixmpp, tokio-tungstenite over RFC 7395) and our raw client do.

use std::time::Duration;

use jabberwock_tests::http;
use jabberwock_tests::metrics::{scrape, Format, Scrape};
use jabberwock_tests::slix::Slix;
use jabberwock_tests::xmpp_ws::XmppWs;
use jabberwock_tests::{RawClient, TestConfig, TestServer, WAIT};

const PATH: &str = "/metrics";

/// How much sample `name` with `labels` grew between two scrapes.
fn grew(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.value(name, labels) - before.find(name, labels).unwrap_or(0.0)
}

/// Scrapes until `ready` holds (the server counts a session's end once its task is done),
/// within [`WAIT`].
async fn scrape_until(addr: std::net::SocketAddr, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = scrape(addr, PATH, Format::Prometheus).await;
        if ready(&page) || tokio::time::Instant::now() > deadline {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let server = TestServer::start();
    server.wait_started();
    let http = server.http.expect("HTTP listener");
    let reply = http::request(http, "GET", PATH, &[], Vec::new()).await;
    assert_eq!(reply.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_follow_logins_chats_and_sessions() {
    let server = TestServer::start_with(TestConfig::default().section("metrics", "enabled = true"));
    server.wait_started();
    for user in ["alice", "bob", "carol", "dave"] {
        server.add_user(&format!("{user}@localhost"), "pw-secret");
    }
    let http = server.http.expect("HTTP listener");
    let cert = server.cert_path();
    let before = scrape(http, PATH, Format::Prometheus).await;
    assert_eq!(
        before.value("jabberwock_sessions", &[("kind", "websocket")]),
        0.0
    );

    // bob over XMPP-over-WebSocket, carol over TCP (STARTTLS): two kinds of session.
    let mut bob = XmppWs::connect(http, None).await;
    bob.login("bob", "pw-secret", "web").await;
    let (mut carol, _) =
        RawClient::login_standard(server.c2s, &cert, "carol", "pw-secret", "tcp").await;

    // slixmpp: a wrong password, then alice logs in and writes to bob.
    let mut wrong = Slix::login(
        &server,
        "alice@localhost/wrong",
        "not-it",
        "SCRAM-SHA-256",
        &[],
    );
    wrong.expect("auth_failed").await;
    assert!(!wrong.finish().await, "a wrong password logged in");
    let mut alice = Slix::login(
        &server,
        "alice@localhost/slix",
        "pw-secret",
        "SCRAM-SHA-256",
        &["--send-to", "bob@localhost", "--body", "counted hello"],
    );
    alice.expect("sent").await;
    let got = bob.recv_containing("counted hello").await;
    assert!(got.contains("from=\"alice@localhost/slix\""), "{got}");
    assert!(alice.finish().await, "slixmpp reported failure");

    // carol writes to dave, who is offline: the message is kept (carol's ping is answered
    // after her message was handled, storage included).
    carol
        .send("<message to='dave@localhost' type='chat' id='m1'><body>for later</body></message>")
        .await;
    carol.until_pong("p1").await;

    // Alice's session is gone once its task ended: only carol's TCP session is left.
    let during = scrape_until(http, |s| {
        s.find("jabberwock_sessions", &[("kind", "tls")]) == Some(1.0)
    })
    .await;
    assert_eq!(during.value("jabberwock_sessions", &[("kind", "tls")]), 1.0);
    assert_eq!(
        during.value("jabberwock_sessions", &[("kind", "websocket")]),
        1.0
    );
    assert_eq!(
        during.value("jabberwock_sessions", &[("kind", "bosh")]),
        0.0
    );
    let opened = |kind| {
        grew(
            &before,
            &during,
            "jabberwock_sessions_opened_total",
            &[("kind", kind)],
        )
    };
    assert_eq!(opened("tls"), 2.0, "carol and alice");
    assert_eq!(opened("websocket"), 1.0, "bob");

    let logins = |m| {
        grew(
            &before,
            &during,
            "jabberwock_logins_total",
            &[("mechanism", m)],
        )
    };
    assert_eq!(logins("PLAIN"), 2.0, "bob and carol");
    assert_eq!(logins("SCRAM-SHA-256"), 1.0, "alice");
    let failures = |m| {
        grew(
            &before,
            &during,
            "jabberwock_login_failures_total",
            &[("mechanism", m)],
        )
    };
    assert_eq!(failures("SCRAM-SHA-256"), 1.0, "the wrong password");
    assert_eq!(failures("PLAIN"), 0.0);

    let stanzas = |name, kind| grew(&before, &during, name, &[("type", kind)]);
    assert_eq!(
        stanzas("jabberwock_stanzas_in_total", "message"),
        2.0,
        "alice's and carol's"
    );
    assert_eq!(
        stanzas("jabberwock_stanzas_out_total", "message"),
        1.0,
        "bob's"
    );
    assert!(
        stanzas("jabberwock_stanzas_in_total", "presence") >= 3.0,
        "initial presences"
    );
    assert!(
        stanzas("jabberwock_stanzas_in_total", "iq") >= 1.0,
        "carol's ping"
    );
    assert!(
        stanzas("jabberwock_stanzas_out_total", "iq") >= 1.0,
        "the pong"
    );
    assert!(grew(&before, &during, "jabberwock_routing_seconds_count", &[]) >= 3.0);
    assert!(during.value("jabberwock_routing_seconds_sum", &[]) > 0.0);
    assert_eq!(
        grew(&before, &during, "jabberwock_offline_stored_total", &[]),
        1.0
    );
    let credentials = [("operation", "credentials")];
    assert!(
        grew(
            &before,
            &during,
            "jabberwock_storage_seconds_count",
            &credentials
        ) >= 4.0
    );
    assert_eq!(
        grew(
            &before,
            &during,
            "jabberwock_storage_errors_total",
            &credentials
        ),
        0.0
    );
    assert_eq!(during.value("jabberwock_muc_rooms", &[]), 0.0);
    assert!(during.value("process_resident_memory_bytes", &[]) > 1_000_000.0);
    assert!(during.value("process_open_fds", &[]) >= 5.0);

    // dave comes online: the kept message is written to him, and counted as delivered.
    let (mut dave, _) =
        RawClient::login_standard(server.c2s, &cert, "dave", "pw-secret", "later").await;
    dave.read_stanza_containing("for later").await;
    // Counted once the write returned, which may be after dave has read it.
    scrape_until(http, |page| {
        grew(&during, page, "jabberwock_offline_delivered_total", &[]) >= 1.0
    })
    .await;
    let after = scrape(http, PATH, Format::OpenMetrics).await;
    assert_eq!(
        grew(&during, &after, "jabberwock_offline_delivered_total", &[]),
        1.0
    );
    assert_eq!(
        grew(
            &during,
            &after,
            "jabberwock_stanzas_out_total",
            &[("type", "message")]
        ),
        1.0
    );
    assert_eq!(after.value("jabberwock_sessions", &[("kind", "tls")]), 2.0);
    assert_eq!(
        after.value("jabberwock_logins_total", &[("mechanism", "PLAIN")]),
        during.value("jabberwock_logins_total", &[("mechanism", "PLAIN")]) + 1.0
    );
}

#[tokio::test]
async fn an_address_of_its_own_and_only_for_allowed_clients() {
    let server = TestServer::start_with(
        TestConfig::default()
            .section("metrics", "enabled = true")
            .section("metrics", "listen = [\"127.0.0.1:0\"]"),
    );
    server.wait_started();
    let own = server.listening("metrics").expect("a metrics listener");
    let page = scrape(own, PATH, Format::Prometheus).await;
    assert_eq!(page.value("jabberwock_sessions", &[("kind", "tcp")]), 0.0);
    // Not on the HTTP listeners then.
    let http = server.http.expect("HTTP listener");
    let reply = http::request(http, "GET", PATH, &[], Vec::new()).await;
    assert_eq!(reply.status, 404);

    // Loopback is not among the allowed: refused.
    let server = TestServer::start_with(
        TestConfig::default()
            .section("metrics", "enabled = true")
            .section("metrics", "allow = [\"192.0.2.0/24\"]"),
    );
    server.wait_started();
    let http = server.http.expect("HTTP listener");
    let reply = http::request(http, "GET", PATH, &[], Vec::new()).await;
    assert_eq!(reply.status, 403);
}
