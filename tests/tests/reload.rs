//! `jabberwock reload` applying limits, modules' options and virtual hosts to a running
//! server: what starts after the reload gets the new values, sessions already open keep
//! working, and what the reload cannot apply is named as needing a restart. Modules'
//! options: the upload service's size limit (the next slot request, on the same stream),
//! the archive's default preference (the next message), MUC's limits (rooms there already
//! and rooms made after), with the services' domains left for a restart; XEP-0157
//! addresses in the next disco#info and in the XEP-0115 `ver` of the next stream;
//! XEP-0092's `os`; the largest item of the pubsub service and of PEP (the next publish);
//! the STUN/TURN services told and XEP-0198's resumption wait (the next request, the next
//! `<enable/>`). Hosts: one added is served at once with its services, one removed ends its
//! sessions with `host-gone` and its services (the pubsub expiry sweep ends, the rooms
//! of its chatrooms tell their occupants they are out and leave memory, persistent ones
//! coming back with the host, temporary ones' archives gone), one changed applies to the
//! next stream.

use std::time::Duration;

use jabberwock_tests::bosh::attr;
use jabberwock_tests::mam::{self, page, say, strings};
use jabberwock_tests::muc::{
    enter, groupchat, instant_room, instant_room_at, iq, log_in, send_join, status, until_subject,
    DISCO_INFO, MUC_X,
};
use jabberwock_tests::s2s::TestCa;
use jabberwock_tests::slix::SlixIm;
use jabberwock_tests::upload::{self, file_bytes, put, put_path, request_slot};
use jabberwock_tests::{RawClient, TestConfig, TestServer, WAIT};

/// Rewrites the config file with `from` replaced by `to`, reloads, and returns what
/// `jabberwock reload` printed (it must exit 0, and print each of `says`).
fn reload_with(server: &TestServer, edits: &[(&str, &str)], says: &[&str]) -> String {
    let mut config = std::fs::read_to_string(&server.config_path).expect("read config");
    for (from, to) in edits {
        assert!(
            config.contains(from),
            "{from:?} not in the config:\n{config}"
        );
        config = config.replace(from, to);
    }
    std::fs::write(&server.config_path, config).expect("write config");
    let text = server.reload();
    assert_said(&text, says);
    text
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
        &[
            "applied: c2s.max_stanza_bytes = 4096",
            "applied: c2s.max_sessions_per_account = 1",
            "applied: roster.max_items = 1",
            // The listeners are bound at start.
            "needs a restart: c2s.listen",
        ],
    );
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
        &["applied: modules.admin_adhoc: options applied"],
    );
    assert!(!out.contains("needs a restart"), "{out}");

    // The same session, now an administrator (XEP-0133 §4.15).
    let answered = dave.ad_hoc("c2", node).await;
    assert!(
        answered.contains("type=\"result\"") && answered.contains("onlineusersnum"),
        "{answered}"
    );
}

#[tokio::test]
async fn the_next_slot_request_gets_the_new_upload_limit_and_the_domain_waits() {
    let server = TestServer::start_with(upload::config(&[
        "max_file_size = 100000",
        r#"domain = "upload.{host}""#,
    ]));
    server.wait_started();
    let mut alice = log_in(&server, &["alice"]).await.remove(0);
    let kind = "application/octet-stream";
    let given = request_slot(&mut alice, "s1", "before.bin", 50_000, kind).await;
    assert!(
        given.contains("<slot xmlns=\"urn:xmpp:http:upload:0\">"),
        "{given}"
    );

    let out = reload_with(
        &server,
        &[
            ("max_file_size = 100000", "max_file_size = 20000"),
            (r#"domain = "upload.{host}""#, r#"domain = "files.{host}""#),
        ],
        &[
            "applied: modules.upload: options applied",
            // The service's domain is placed once, at start.
            "needs a restart: modules.upload.domain",
        ],
    );
    assert!(
        !out.contains("needs a restart: modules.upload.max"),
        "{out}"
    );

    // The same stream, no reconnect: refused with the new maximum (XEP-0363 §6.1), at the
    // domain the service started with.
    let refused = request_slot(&mut alice, "s2", "after.bin", 50_000, kind).await;
    for needle in [
        "type=\"error\"",
        "<not-acceptable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>",
        "<file-too-large xmlns=\"urn:xmpp:http:upload:0\"><max-file-size>20000</max-file-size></file-too-large>",
    ] {
        assert!(refused.contains(needle), "{needle} in {refused}");
    }
    // §3: the service's disco#info says the new limit.
    let info = iq(&mut alice, "d1", "get", upload::SERVICE, DISCO_INFO).await;
    assert!(
        info.contains("<value>20000</value>") && !info.contains("<value>100000</value>"),
        "{info}"
    );
    // The slot given before keeps the size it was given with.
    let http = server.http.expect("the HTTP listener");
    let stored = put(http, &put_path(&given), kind, file_bytes(50_000, 3)).await;
    assert_eq!(
        stored.status,
        201,
        "{:?}",
        String::from_utf8_lossy(&stored.body)
    );
}

#[tokio::test]
async fn an_account_without_preferences_follows_the_new_archive_default() {
    let server = TestServer::start_with(
        TestConfig::default().section("modules.mam", r#"default = "always""#),
    );
    for user in ["alice", "bob"] {
        server.add_user(&format!("{user}@localhost"), &format!("{user}pw"));
    }
    let mut alice = mam::client(&server, "alice@localhost/laptop").await;
    let mut bob = mam::client(&server, "bob@localhost/phone").await;
    let got = say(&mut alice, &mut bob, "bob@localhost", "before").await;
    assert_eq!(got["stanza_id_by"], "bob@localhost", "{got}");

    let out = reload_with(
        &server,
        &[(r#"default = "always""#, r#"default = "never""#)],
        &["applied: modules.mam: options applied"],
    );
    assert!(!out.contains("needs a restart"), "{out}");

    // XEP-0313 §6: bob never set his preferences; the default in force is his now.
    bob.command(r#"{"cmd": "prefs_get"}"#).await;
    let prefs = bob.expect_ever(&["\"event\": \"prefs\""]).await;
    assert_eq!(mam::json(&prefs)["default"], "never", "{prefs}");
    // The next message is not archived (no stanza-id of bob's archive), the earlier one
    // stays.
    let got = say(&mut alice, &mut bob, "bob@localhost", "after").await;
    assert_ne!(got["stanza_id_by"], "bob@localhost", "{got}");
    let p = page(&mut bob, r#""max": 20"#).await;
    assert_eq!(strings(&p["bodies"]), ["before"], "{p}");
    for client in [alice, bob] {
        assert!(client.quit().await);
    }
}

#[tokio::test]
async fn rooms_take_the_new_muc_limits_and_the_domain_waits() {
    let server = TestServer::start_with(
        TestConfig::default()
            .section("modules.muc", r#"domain = "conference.{host}""#)
            .section("modules.muc", "max_occupants = 2")
            .section("modules.muc", "max_message_bytes = 10000"),
    );
    let mut clients = log_in(&server, &["alice", "bob", "carol", "dave"]).await;
    let [alice, bob, carol, dave] = &mut clients[..] else {
        unreachable!()
    };
    instant_room(alice, "lobby", "alice").await;
    enter(bob, "lobby", "bob").await;
    // §7.2.10: two is full.
    send_join(carol, "lobby", "carol", Some(MUC_X), "").await;
    let full = carol.read_stanza_containing("type=\"error\"").await;
    assert!(full.contains("<service-unavailable"), "{full}");

    reload_with(
        &server,
        &[
            ("max_occupants = 2", "max_occupants = 3"),
            ("max_message_bytes = 10000", "max_message_bytes = 300"),
            (
                r#"domain = "conference.{host}""#,
                r#"domain = "chat.{host}""#,
            ),
        ],
        &[
            "applied: modules.muc: options applied",
            "needs a restart: modules.muc.domain",
        ],
    );

    // The room there already holds three now, at the domain it had.
    enter(carol, "lobby", "carol").await;
    // And a message over the new size is bounced (policy-violation).
    bob.send(groupchat("lobby", &"x".repeat(400))).await;
    let bounced = bob.read_stanza_containing("type=\"error\"").await;
    assert!(bounced.contains("<policy-violation"), "{bounced}");

    // A room made after the reload: three, and no more.
    instant_room(dave, "later", "dave").await;
    enter(alice, "later", "alice").await;
    enter(bob, "later", "bob").await;
    send_join(carol, "later", "carol", Some(MUC_X), "").await;
    let full = carol.read_stanza_containing("type=\"error\"").await;
    assert!(full.contains("<service-unavailable"), "{full}");
}

/// A session of alice's bound as `resource`, and the `ver` of the caps in the stream
/// features it was offered after authenticating.
async fn alice_with_caps_ver(server: &TestServer, resource: &str) -> (RawClient, String) {
    let (mut alice, features) =
        RawClient::login_standard_features(server.c2s, &server.cert_path(), "alice", "alicepw")
            .await;
    let caps = &features[features.find("<c ").expect("caps in the features")..];
    let ver = attr(caps, "ver").expect("a ver");
    alice.bind_only(resource, "").await;
    (alice, ver)
}

#[tokio::test]
async fn new_contact_addresses_show_in_disco_and_in_the_next_caps_ver() {
    let server = TestServer::start_with(
        TestConfig::default()
            .section(
                "modules.contact_addresses",
                r#"abuse = ["mailto:abuse@localhost"]"#,
            )
            .section("modules.version", "show_os = false"),
    );
    server.add_user("alice@localhost", "alicepw");
    let (mut before, old_ver) = alice_with_caps_ver(&server, "before").await;
    let info = iq(&mut before, "i1", "get", "localhost", DISCO_INFO).await;
    assert!(info.contains("mailto:abuse@localhost"), "{info}");

    reload_with(
        &server,
        &[
            ("mailto:abuse@localhost", "xmpp:abuse@localhost"),
            ("show_os = false", "show_os = true"),
        ],
        &[
            "applied: modules.contact_addresses: options applied",
            "applied: modules.version: options applied",
        ],
    );

    // XEP-0157 in the host's disco#info, asked on the stream open before the reload.
    let info = iq(&mut before, "i2", "get", "localhost", DISCO_INFO).await;
    assert!(
        info.contains("xmpp:abuse@localhost") && !info.contains("mailto:abuse@localhost"),
        "{info}"
    );
    // XEP-0115 §6.3: a stream after the reload is offered the `ver` of that info.
    let (_after, new_ver) = alice_with_caps_ver(&server, "after").await;
    assert_ne!(new_ver, old_ver);
    // XEP-0092: the operating system, now that the admin allows it.
    let version = iq(
        &mut before,
        "v1",
        "get",
        "localhost",
        "<query xmlns='jabber:iq:version'/>",
    )
    .await;
    assert!(version.contains("<os>"), "{version}");
}

/// A publish of one item whose payload is `size` bytes of text to `node` at `to` (the
/// service, or the account's own bare JID for PEP); the answer.
async fn publish(client: &mut RawClient, id: &str, to: &str, node: &str, size: usize) -> String {
    let text = "x".repeat(size);
    let payload = format!(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{node}'><item>\
         <entry xmlns='urn:example:reload'>{text}</entry></item></publish></pubsub>"
    );
    iq(client, id, "set", to, &payload).await
}

#[tokio::test]
async fn the_next_publish_gets_the_new_pubsub_and_pep_item_limits() {
    let server = TestServer::start_with(
        TestConfig::default()
            .section("modules.pubsub", r#"domain = "pubsub.{host}""#)
            .section("modules.pubsub", "max_item_bytes = 65536")
            .section("modules.pep", "max_item_bytes = 131072"),
    );
    let mut alice = log_in(&server, &["alice"]).await.remove(0);
    let service = "pubsub.localhost";
    let created = iq(
        &mut alice,
        "c1",
        "set",
        "pubsub.localhost",
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='news'/></pubsub>",
    )
    .await;
    assert!(created.contains("type=\"result\""), "{created}");
    for (id, to, node) in [
        ("p1", service, "news"),
        ("e1", "alice@localhost", "urn:example:reload"),
    ] {
        let published = publish(&mut alice, id, to, node, 1000).await;
        assert!(published.contains("type=\"result\""), "{published}");
    }

    reload_with(
        &server,
        &[
            ("max_item_bytes = 65536", "max_item_bytes = 500"),
            ("max_item_bytes = 131072", "max_item_bytes = 600"),
            (r#"domain = "pubsub.{host}""#, r#"domain = "news.{host}""#),
        ],
        &[
            "applied: modules.pubsub: options applied",
            "applied: modules.pep: options applied",
            "needs a restart: modules.pubsub.domain",
        ],
    );

    // XEP-0060 §7.1.3.6: the same item is too big now, on the service (at the domain it
    // started with) and on the account's own.
    for (id, to, node) in [
        ("p2", service, "news"),
        ("e2", "alice@localhost", "urn:example:reload"),
    ] {
        let refused = publish(&mut alice, id, to, node, 1000).await;
        assert!(
            refused.contains("<not-acceptable") && refused.contains("<payload-too-big"),
            "{refused}"
        );
    }
}

/// XEP-0198 enabled with resumption on `client`'s stream: the `<enabled/>` answer.
async fn enable_resumption(client: &mut RawClient) -> String {
    client
        .send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
        .await;
    client.read_stanza_containing("<enabled").await
}

#[tokio::test]
async fn the_next_request_gets_the_new_services_and_resumption_wait() {
    let server = TestServer::start_with(
        TestConfig::default()
            .section(
                "modules.external_services",
                r#"services = [{ type = "stun", host = "stun.localhost" }]"#,
            )
            .section("modules.stream_management", "resume_timeout = 300"),
    );
    let mut alice = log_in(&server, &["alice"]).await.remove(0);
    let services = "<services xmlns='urn:xmpp:extdisco:2'/>";
    let told = iq(&mut alice, "s1", "get", "localhost", services).await;
    assert!(told.contains("host=\"stun.localhost\""), "{told}");
    let enabled = enable_resumption(&mut alice).await;
    assert!(enabled.contains("max=\"300\""), "{enabled}");

    let out = reload_with(
        &server,
        &[
            ("stun.localhost", "stun2.localhost"),
            ("resume_timeout = 300", "resume_timeout = 60"),
        ],
        &[
            "applied: modules.external_services: options applied",
            "applied: modules.stream_management: options applied",
        ],
    );
    assert!(!out.contains("needs a restart"), "{out}");

    // XEP-0215 §3.1: the same session is told the new list.
    let told = iq(&mut alice, "s2", "get", "localhost", services).await;
    assert!(
        told.contains("host=\"stun2.localhost\"") && !told.contains("\"stun.localhost\""),
        "{told}"
    );
    // XEP-0198 §3: a session enabling resumption now is offered the new wait.
    let mut bob = log_in(&server, &["bob"]).await.remove(0);
    let enabled = enable_resumption(&mut bob).await;
    assert!(enabled.contains("max=\"60\""), "{enabled}");
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

/// The log filter that shows the pubsub expiry sweeps starting and ending.
const SWEEPS_LOGGED: &str = "info,jabberwock_server::modules::pubsub::expire=debug";

/// Whether the log comes to show exactly `count` sweeps of `pubsub.new.example` that
/// `did` ("started" or "ended"). The reload that starts or ends one has returned, so
/// the task's line follows within moments; one more would come at the same time.
async fn sweeps(server: &TestServer, did: &str, count: usize) -> bool {
    let line = format!("pubsub expiry sweep {did}");
    let seen = || {
        let log = server.log_text();
        log.lines()
            .filter(|l| l.contains(&line) && l.contains("pubsub.new.example"))
            .count()
    };
    for _ in 0..250 {
        if seen() >= count {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    seen() == count
}

#[tokio::test]
async fn a_host_added_by_reload_is_served_at_once_and_one_removed_is_gone() {
    // A certificate naming both hosts, as an admin would get before adding one.
    let ca = TestCa::new();
    let (cert, key) = ca.issue("server", &["localhost", "new.example"]);
    let one_host = TestConfig::default()
        .log_level(SWEEPS_LOGGED)
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
    // The pubsub service's hourly expiry sweep runs for the new domain.
    assert!(sweeps(&server, "started", 1).await);

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
    // Its sweep ended with it.
    assert!(sweeps(&server, "ended", 1).await);

    // The first host's user went on throughout.
    alice.ping("after-removal", "").await;

    // Nothing was deleted: the host back, its account logs in again.
    let out = server.reload_as(&two_hosts);
    assert!(out.contains("applied: hosts: added new.example"), "{out}");
    // One sweep runs again: a second was started, and only the first ended.
    assert!(sweeps(&server, "started", 2).await);
    assert!(sweeps(&server, "ended", 1).await);
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

/// The rooms that have an archive, read from the server's database.
async fn room_archives(server: &TestServer) -> Vec<String> {
    sqlx::query_scalar("SELECT jid FROM archive_owners WHERE account_id IS NULL ORDER BY jid")
        .fetch_all(&mut server.read_db().await)
        .await
        .expect("list room archives")
}

#[tokio::test]
async fn a_removed_hosts_rooms_go_and_its_persistent_ones_come_back_with_it() {
    let one_host = TestConfig::default();
    let two_hosts = one_host.clone().host("rooms.example", "");
    let server = TestServer::start_with(two_hosts.clone());
    // alice, of the host that stays, is in two rooms of the other host's service: a
    // temporary one and a persistent one with a name.
    let mut alice = log_in(&server, &["alice"]).await.remove(0);
    let (chat, kept) = (
        "chat@conference.rooms.example",
        "kept@conference.rooms.example",
    );
    instant_room_at(&mut alice, chat, "alice").await;
    instant_room_at(&mut alice, kept, "alice").await;
    let form = "<query xmlns='http://jabber.org/protocol/muc#owner'>\
        <x xmlns='jabber:x:data' type='submit'>\
        <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
        <field var='muc#roomconfig_persistentroom'><value>1</value></field>\
        <field var='muc#roomconfig_roomname'><value>Kept room</value></field></x></query>";
    let answer = iq(&mut alice, "keep", "set", kept, form).await;
    assert!(answer.contains("type=\"result\""), "{answer}");
    // Each room archives what is said in it.
    for room in [chat, kept] {
        alice
            .send(format!(
                "<message to='{room}' type='groupchat'><body>in {room}</body></message>"
            ))
            .await;
        alice.read_stanza_containing(&format!("in {room}")).await;
    }
    assert_eq!(room_archives(&server).await, [chat, kept]);

    let out = server.reload_as(&one_host);
    assert!(
        out.contains("applied: hosts: removed rooms.example"),
        "{out}"
    );
    // XEP-0045 status 332: each room tells her she is out, as a service shutting down
    // does (her own presence: 110).
    let mut left = Vec::new();
    for _ in 0..2 {
        let gone = alice.read_stanza_containing("type=\"unavailable\"").await;
        assert!(
            gone.contains(&status(332)) && gone.contains(&status(110)),
            "{gone}"
        );
        left.extend(
            [chat, kept]
                .into_iter()
                .filter(|room| gone.contains(&format!("from=\"{room}/alice\""))),
        );
    }
    left.sort();
    assert_eq!(left, [chat, kept]);
    // The temporary room's archive went with it; the persistent room's stays.
    let deadline = tokio::time::Instant::now() + WAIT;
    while room_archives(&server).await != [kept] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            room_archives(&server).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The host back: the temporary room is no more, the persistent one is there as it
    // was configured, empty, and alice enters it afresh.
    let out = server.reload_as(&two_hosts);
    assert!(out.contains("applied: hosts: added rooms.example"), "{out}");
    let none = iq(&mut alice, "i1", "get", chat, DISCO_INFO).await;
    assert!(none.contains("<item-not-found"), "{none}");
    let info = iq(&mut alice, "i2", "get", kept, DISCO_INFO).await;
    assert!(
        info.contains("type=\"result\"")
            && info.contains("name=\"Kept room\"")
            && info.contains("muc_persistent"),
        "{info}"
    );
    alice
        .send(format!("<presence to='{kept}/alice'>{MUC_X}</presence>"))
        .await;
    let entered = until_subject(&mut alice).await;
    let own = entered
        .iter()
        .find(|p| p.contains(&status(110)))
        .unwrap_or_else(|| panic!("{entered:?}"));
    // Not in the room still: she enters (no 201, the room exists), and no one else is.
    assert!(!own.contains(&status(201)), "{own}");
    assert_eq!(
        entered
            .iter()
            .filter(|p| p.starts_with("<presence"))
            .count(),
        1,
        "{entered:?}"
    );
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
