//! `jabberwock reload` applying limits and modules' options to a running server: what
//! starts after the reload gets the new values, sessions already open keep working, and
//! what the reload cannot apply is named as needing a restart.

use jabberwock_tests::s2s::TestCa;
use jabberwock_tests::slix::SlixIm;
use jabberwock_tests::{RawClient, TestConfig, TestServer};

/// Rewrites the config file with `from` replaced by `to`, reloads, and returns what
/// `jabberwock reload` printed (it must exit 0).
fn reload_with(server: &TestServer, edits: &[(&str, &str)]) -> String {
    let mut config = std::fs::read_to_string(&server.config_path).expect("read config");
    for (from, to) in edits {
        assert!(
            config.contains(from),
            "{from:?} not in the config:\n{config}"
        );
        config = config.replace(from, to);
    }
    std::fs::write(&server.config_path, config).expect("write config");
    server.reload()
}

/// The reply to `<iq id=ID ATTRS>PAYLOAD</iq>`.
async fn ask(client: &mut RawClient, id: &str, attrs: &str, payload: &str) -> String {
    client
        .send(format!("<iq id='{id}' {attrs}>{payload}</iq>"))
        .await;
    client.read_stanza_containing(&format!("id=\"{id}\"")).await
}

/// The reply to a roster set adding `jid`.
async fn roster_add(client: &mut RawClient, id: &str, jid: &str) -> String {
    let item = format!("<query xmlns='jabber:iq:roster'><item jid='{jid}'/></query>");
    ask(client, id, "type='set'", &item).await
}

/// The reply to a disco#info query to `domain`.
async fn disco_info(client: &mut RawClient, id: &str, domain: &str) -> String {
    let query = "<query xmlns='http://jabber.org/protocol/disco#info'/>";
    ask(client, id, &format!("type='get' to='{domain}'"), query).await
}

/// Every one of `lines` is in what `jabberwock reload` printed.
fn assert_said(out: &str, lines: &[&str]) {
    for line in lines {
        assert!(out.contains(line), "{line:?} not in:\n{out}");
    }
}

#[tokio::test]
async fn lowered_limits_hold_for_what_starts_after_the_reload() {
    let server = TestServer::start_with(
        TestConfig::default()
            .c2s("max_stanza_bytes = 65536")
            .c2s("max_sessions_per_account = 3")
            .section("roster", "max_items = 5"),
    );
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let (mut alice, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "wonderland", "pc")
            .await;
    let added = roster_add(&mut alice, "r1", "bob@localhost").await;
    assert!(added.contains("type=\"result\""), "{added}");

    let out = reload_with(
        &server,
        &[
            ("max_stanza_bytes = 65536", "max_stanza_bytes = 4096"),
            (
                "max_sessions_per_account = 3",
                "max_sessions_per_account = 1",
            ),
            ("max_items = 5", "max_items = 1"),
            (
                "listen = [\"127.0.0.1:0\"]\ndirect_tls_listen",
                "listen = [\"127.0.0.1:0\", \"127.0.0.2:0\"]\ndirect_tls_listen",
            ),
        ],
    );
    assert_said(
        &out,
        &[
            "applied: c2s.max_stanza_bytes = 4096",
            "applied: c2s.max_sessions_per_account = 1",
            "applied: roster.max_items = 1",
        ],
    );
    // The listeners are bound at start.
    assert!(out.contains("needs a restart: c2s.listen"), "{out}");
    assert!(!out.contains("needs a restart: c2s\n"), "{out}");

    // The session open before the reload keeps its stanza limit: 10 KiB still passes.
    let body = "x".repeat(10 * 1024);
    alice
        .send(format!(
            "<message to='alice@localhost/pc' type='chat' id='big'><body>{body}</body></message>"
        ))
        .await;
    let echoed = alice.read_stanza_containing("id=\"big\"").await;
    assert!(echoed.contains(&body), "{echoed}");

    // The roster limit is read at each roster set: the open session's second item is over.
    let refused = roster_add(&mut alice, "r2", "carol@localhost").await;
    assert!(
        refused.contains("type=\"error\"")
            && refused.contains("<not-allowed xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"),
        "{refused}"
    );

    // A second resource is over the new per-account limit (RFC 6120 §7.6.2.1).
    let mut second = RawClient::login_flash_unbound(server.c2s, "alice", "wonderland").await;
    second
        .send("<iq type=\"set\" id=\"b2\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><resource>two</resource></bind></iq>\0")
        .await;
    let bound = second.read_until("</iq>").await;
    assert!(
        bound.contains("<resource-constraint xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"),
        "{bound}"
    );

    // A new connection gets the new stanza limit.
    let (mut bob, _) = RawClient::login_flash(server.c2s, "bob", "builder", "big").await;
    bob.try_send(format!(
        "<message type=\"chat\" to=\"alice@localhost/pc\" id=\"big2\"><body>{body}</body></message>\0"
    ))
    .await
    .expect("send the big stanza");
    let closed = bob.read_to_close().await;
    assert!(closed.contains("policy-violation"), "{closed}");

    // And the old session still works.
    alice.ping("after-reload", "").await;
}

#[tokio::test]
async fn a_new_admin_runs_a_command_after_the_reload() {
    let server = TestServer::start_with(
        TestConfig::default().section("modules.admin_adhoc", r#"admins = ["admin@localhost"]"#),
    );
    server.add_user("admin@localhost", "admin-pw");
    server.add_user("dave@localhost", "dave-pw");
    let (mut dave, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "dave", "dave-pw", "raw").await;
    let node = "node='http://jabber.org/protocol/admin#get-online-users-num' action='execute'";

    let refused = dave.ad_hoc("c1", node).await;
    assert!(refused.contains("<forbidden"), "{refused}");

    let out = reload_with(
        &server,
        &[(
            r#"admins = ["admin@localhost"]"#,
            r#"admins = ["admin@localhost", "dave@localhost"]"#,
        )],
    );
    assert!(
        out.contains("applied: modules.admin_adhoc: options applied"),
        "{out}"
    );
    assert!(!out.contains("needs a restart"), "{out}");

    // The same session, now an administrator (XEP-0133 §4.15).
    let answered = dave.ad_hoc("c2", node).await;
    assert!(
        answered.contains("type=\"result\"") && answered.contains("onlineusersnum"),
        "{answered}"
    );
}

/// A new connection that opened a stream to `domain`.
async fn stream_to(server: &TestServer, domain: &str) -> RawClient {
    let mut c = RawClient::connect(server.c2s).await;
    c.send(format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>"
    ))
    .await;
    c
}

/// Whether a new stream to `domain` is refused as one to a host not served here.
async fn unknown_host(server: &TestServer, domain: &str) -> bool {
    let closed = stream_to(server, domain).await.read_to_close().await;
    closed.contains("<host-unknown ")
}

#[tokio::test]
async fn a_host_added_by_reload_is_served_at_once_and_one_removed_is_gone() {
    // A certificate naming both hosts, as an admin would get before adding one.
    let ca = TestCa::new();
    let (cert, key) = ca.issue("server", &["localhost", "new.example"]);
    let one_host = TestConfig::default()
        .section("tls", &format!("cert = {:?}", cert.display().to_string()))
        .section("tls", &format!("key = {:?}", key.display().to_string()));
    let two_hosts = one_host.clone().host("new.example", "");
    let server = TestServer::start_with(one_host.clone());
    server.add_user("alice@localhost", "wonderland");
    let (mut alice, _) =
        RawClient::login_standard(server.c2s, &cert, "alice", "wonderland", "pc").await;
    assert!(
        unknown_host(&server, "new.example").await,
        "new.example is served before it is configured"
    );

    let out = server.reload_as(&two_hosts);
    assert!(out.contains("applied: hosts: added new.example"), "{out}");
    assert!(!out.contains("needs a restart"), "{out}");
    assert!(!out.contains("warning"), "{out}");

    // An account made on the new host by the CLI logs in with slixmpp and talks to the
    // first host's user, both ways.
    server.add_user("bob@new.example", "builder");
    let mut bob = SlixIm::available_at(
        &server,
        &ca.ca_file(),
        "slix_im.py",
        "bob@new.example/slix",
        "builder",
    )
    .await;
    bob.command(
        r#"{"cmd": "message", "to": "alice@localhost", "body": "hello from the new host"}"#,
    )
    .await;
    let got = alice
        .read_stanza_containing("hello from the new host")
        .await;
    assert!(got.contains("from=\"bob@new.example/slix\""), "{got}");
    alice
        .send("<message to='bob@new.example' type='chat' id='m1'><body>welcome</body></message>")
        .await;
    bob.expect_all(&["received", "alice@localhost/pc", "welcome"])
        .await;

    // Its services were placed and started: publish-subscribe and chatrooms answer.
    let pubsub = disco_info(&mut alice, "d1", "pubsub.new.example").await;
    assert!(
        pubsub.contains("type=\"result\"") && pubsub.contains("category=\"pubsub\""),
        "{pubsub}"
    );
    let rooms = disco_info(&mut alice, "d2", "conference.new.example").await;
    assert!(
        rooms.contains("type=\"result\"") && rooms.contains("category=\"conference\""),
        "{rooms}"
    );

    let out = server.reload_as(&one_host);
    assert!(out.contains("applied: hosts: removed new.example"), "{out}");
    assert!(!out.contains("needs a restart"), "{out}");

    // RFC 6120 §4.9.3.6: the open session is told its host is gone, and disconnected.
    bob.expect_all(&["stream_error", "host-gone"]).await;
    bob.expect_ever(&["\"event\": \"disconnected\""]).await;
    // A new stream to it is to an unknown host.
    assert!(unknown_host(&server, "new.example").await);
    // Its services answer no more: the domain is nobody's, and this server federates
    // with no one.
    let gone = disco_info(&mut alice, "d3", "pubsub.new.example").await;
    assert!(gone.contains("<remote-server-not-found"), "{gone}");

    // The first host's user went on throughout.
    alice.ping("after-removal", "").await;

    // Nothing was deleted: the host back, its account logs in again.
    let out = server.reload_as(&two_hosts);
    assert!(out.contains("applied: hosts: added new.example"), "{out}");
    let again = SlixIm::available_at(
        &server,
        &ca.ca_file(),
        "slix_im.py",
        "bob@new.example/again",
        "builder",
    )
    .await;
    assert!(again.quit().await);
}

#[tokio::test]
async fn a_changed_host_applies_to_the_next_stream_and_an_unnamed_one_is_warned_of() {
    let before = TestConfig::default();
    let server = TestServer::start_with(before.clone());
    assert!(unknown_host(&server, "other.example").await);
    // No in-band registration on localhost yet (XEP-0077 §8: not offered).
    let mut c = RawClient::connect(server.c2s).await;
    c.send(jabberwock_tests::raw::FLASH_HEADER).await;
    c.read_unit().await;
    let features = c.read_unit().await;
    assert!(!features.contains("iq-register"), "{features}");

    let after = before
        .host("localhost", "registration = true")
        .host("localhost", "flash_registration = true")
        .host("other.example", "");
    let out = server.reload_as(&after);
    assert_said(
        &out,
        &[
            "applied: hosts: added other.example",
            "applied: hosts: changed localhost",
            // The generated certificate was made for the hosts of the first start.
            "warning: hosts: the certificate served (the generated one",
            "does not name other.example",
        ],
    );
    assert!(!out.contains("needs a restart"), "{out}");

    // The next stream gets the new settings; the new host is served.
    let answer = RawClient::connect(server.c2s)
        .await
        .register_flash("carol", "carol-pw-123")
        .await;
    assert!(answer.contains("type=\"result\""), "{answer}");
    let opened = stream_to(&server, "other.example")
        .await
        .read_until("</stream:features>")
        .await;
    assert!(
        opened.contains("from=\"other.example\"") && opened.contains("<stream:features>"),
        "{opened}"
    );
}
