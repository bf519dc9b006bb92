//! Limits against one client (an account, an address) taking more than its share: resources
//! per account, connections per IP address, in-band registrations per address and time, and
//! the rules a new password must meet. On loopback every address of 127.0.0.0/8 is ours, so
//! 127.0.0.2 and 127.0.0.3 are two different clients (with the loopback exemption off).

use std::net::IpAddr;

use jabberwock_tests::raw::FLASH_HEADER;
use jabberwock_tests::{RawClient, TestConfig, TestServer};

const NO_EXEMPT: &str = "per_ip_exempt = []";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The answer to a bind request for `resource` on an authenticated Flash stream.
async fn bind(c: &mut RawClient, id: &str, resource: &str) -> String {
    c.send(format!(
        "<iq type=\"set\" id=\"{id}\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><resource>{resource}</resource></bind></iq>\0"
    ))
    .await;
    let head = c.read_until(&format!("id=\"{id}\"")).await;
    head + &c.read_until("</iq>").await
}

#[tokio::test]
async fn an_account_may_bind_only_so_many_resources() {
    let server = TestServer::start_with(TestConfig::default().c2s("max_sessions_per_account = 2"));
    server.add_user("alice@localhost", "wonderland");
    let (mut one, _) = RawClient::login_flash(server.c2s, "alice", "wonderland", "one").await;
    let (_two, _) = RawClient::login_flash(server.c2s, "alice", "wonderland", "two").await;

    // RFC 6120 §7.6.2.1: too many resources is resource-constraint (type wait).
    let mut third = RawClient::login_flash_unbound(server.c2s, "alice", "wonderland").await;
    let refused = bind(&mut third, "b3", "three").await;
    assert!(
        refused.contains("type=\"error\"") && refused.contains("<error type=\"wait\">"),
        "{refused}"
    );
    assert!(
        refused.contains("<resource-constraint xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"),
        "{refused}"
    );

    // Taking over a resource the account already has is not one more: the old session of
    // "one" is replaced (RFC 6120 §7.7.2.2), on the same stream that was refused above.
    let taken = bind(&mut third, "b4", "one").await;
    assert!(
        taken.contains("type=\"result\"") && taken.contains("<jid>alice@localhost/one</jid>"),
        "{taken}"
    );
    let closed = one.read_to_close().await;
    assert!(closed.contains("<conflict "), "{closed}");
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let server = TestServer::start_with(
        TestConfig::default()
            .c2s("max_connections = 6")
            .c2s("max_connections_per_ip = 3")
            .c2s(NO_EXEMPT),
    );
    server.add_user("alice@localhost", "wonderland");

    // Three streams from 127.0.0.2 are served (each gets its header answered)...
    let mut held = served_from(&server, "127.0.0.2", 3).await;
    // ...more from there are closed at once, without a byte...
    let mut refused = Vec::new();
    for _ in 0..5 {
        let mut c = RawClient::connect_from(server.c2s, ip("127.0.0.2")).await;
        assert_eq!(c.read_to_close().await, "");
        refused.push(c);
    }
    // ...so the global permits (max_connections = 6) are not used up by that address, and
    // a real login from another one still gets through.
    let (_alice, jid) = RawClient::login_flash(server.c2s, "alice", "wonderland", "desk").await;
    assert_eq!(jid, "alice@localhost/desk");
    let _other = served_from(&server, "127.0.0.3", 1).await;

    // A closed connection gives its address's slot back.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + jabberwock_tests::WAIT;
    loop {
        let mut again = RawClient::connect_from(server.c2s, ip("127.0.0.2")).await;
        again.send(FLASH_HEADER).await;
        let answer = again.read_for(std::time::Duration::from_millis(500)).await;
        if answer.contains("<flash:stream ") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot of a closed connection never came back"
        );
    }
}

/// HTTP on a c2s port counts against its address too, for as long as the connection is
/// open: an idle keep-alive connection from 127.0.0.2 leaves that address no room.
#[tokio::test]
async fn an_http_connection_on_the_c2s_port_holds_its_address_place() {
    let server = TestServer::start_with(
        TestConfig::default()
            .c2s("max_connections_per_ip = 1")
            .c2s(NO_EXEMPT),
    );
    let mut http = RawClient::connect_from(server.c2s, ip("127.0.0.2")).await;
    http.send("GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    let head = http.read_until("\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let mut more = RawClient::connect_from(server.c2s, ip("127.0.0.2")).await;
    assert_eq!(more.read_to_close().await, "");
    // Another address is served.
    served_from(&server, "127.0.0.3", 1).await;
}

#[tokio::test]
async fn loopback_is_exempt_by_default() {
    let server = TestServer::start_with(TestConfig::default().c2s("max_connections_per_ip = 1"));
    served_from(&server, "127.0.0.2", 3).await;
}

/// `n` Flash streams opened from `from`, each answered with the server's header.
async fn served_from(server: &TestServer, from: &str, n: usize) -> Vec<RawClient> {
    let mut held = Vec::new();
    for _ in 0..n {
        let mut c = RawClient::connect_from(server.c2s, ip(from)).await;
        c.send(FLASH_HEADER).await;
        assert!(c.read_unit().await.contains("<flash:stream "));
        held.push(c);
    }
    held
}

/// Opens a Flash stream from `from` and sends one registration; the answer.
async fn register_from(server: &TestServer, from: IpAddr, user: &str, password: &str) -> String {
    let mut c = RawClient::connect_from(server.c2s, from).await;
    c.register_flash(user, password).await
}

fn listed(server: &TestServer) -> Vec<String> {
    let out = server.cli(&["user", "list"], "");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn registration_server(extra: &[&str]) -> TestServer {
    let mut config = TestConfig::default()
        .c2s(NO_EXEMPT)
        .host("localhost", "registration = true")
        .host("localhost", "flash_registration = true");
    for line in extra {
        config = config.section("auth", line);
    }
    TestServer::start_with(config)
}

#[tokio::test]
async fn in_band_registration_is_rate_limited_per_address() {
    let server = registration_server(&[]);
    let first = register_from(&server, ip("127.0.0.2"), "carol", "first-pass").await;
    assert!(first.contains("type=\"result\""), "{first}");
    // Within auth.registration_interval (600 s by default): refused, wait and retry.
    let second = register_from(&server, ip("127.0.0.2"), "dave", "second-pass").await;
    assert!(
        second.contains("type=\"error\"") && second.contains("<error type=\"wait\">"),
        "{second}"
    );
    assert!(second.contains("<resource-constraint "), "{second}");
    // Another address is not affected.
    let other = register_from(&server, ip("127.0.0.3"), "erin", "third-pass").await;
    assert!(other.contains("type=\"result\""), "{other}");
    assert_eq!(listed(&server), ["carol@localhost", "erin@localhost"]);
}

#[tokio::test]
async fn a_refused_registration_does_not_use_up_the_address() {
    let server = registration_server(&[]);
    server.add_user("carol@localhost", "wonderland");
    let taken = register_from(&server, ip("127.0.0.2"), "carol", "first-pass").await;
    assert!(taken.contains("<conflict "), "{taken}");
    let short = register_from(&server, ip("127.0.0.2"), "dave", "abc").await;
    assert!(short.contains("<not-acceptable "), "{short}");
    let ok = register_from(&server, ip("127.0.0.2"), "dave", "long-enough").await;
    assert!(ok.contains("type=\"result\""), "{ok}");
}

#[tokio::test]
async fn short_passwords_are_refused_everywhere() {
    let server = registration_server(&["min_password_length = 8"]);
    // XEP-0077 §3.1: not-acceptable, saying why.
    let short = register_from(&server, ip("127.0.0.2"), "carol", "x").await;
    assert!(
        short.contains("type=\"error\"")
            && short.contains("<not-acceptable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"),
        "{short}"
    );
    assert!(short.contains("shorter than 8 characters"), "{short}");
    assert!(listed(&server).is_empty());

    // The admin CLI applies the same rule (exit 2, a usage mistake).
    let out = server.cli(&["user", "add", "carol@localhost"], "seven77\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("shorter than 8 characters"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.add_user("carol@localhost", "eight888");
    let out = server.cli(&["user", "passwd", "carol@localhost"], "1234\n");
    assert_eq!(out.status.code(), Some(2));

    // XEP-0077 §3.3: so does a password change.
    let (mut carol, _) = RawClient::login_flash(server.c2s, "carol", "eight888", "r").await;
    carol
        .send(
            "<iq type=\"set\" id=\"pw\" to=\"localhost\"><query xmlns=\"jabber:iq:register\">\
             <username>carol</username><password>short</password></query></iq>\0",
        )
        .await;
    carol.read_until("id=\"pw\"").await;
    let changed = carol.read_until("</iq>").await;
    assert!(changed.contains("<not-acceptable "), "{changed}");
    let (_again, _) = RawClient::login_flash(server.c2s, "carol", "eight888", "s").await;
}

#[tokio::test]
async fn registration_over_a_clear_flash_socket_needs_the_host_to_allow_it() {
    let server =
        TestServer::start_with(TestConfig::default().host("localhost", "registration = true"));
    let mut c = RawClient::connect(server.c2s).await;
    c.send(FLASH_HEADER).await;
    c.read_unit().await;
    let features = c.read_unit().await;
    assert!(!features.contains("iq-register"), "{features}");
    c.send(
        "<iq type=\"set\" id=\"reg\" to=\"localhost\"><query xmlns=\"jabber:iq:register\">\
         <username>mallory</username><password>cleartext</password></query></iq>\0",
    )
    .await;
    let answer = c.read_unit().await;
    assert!(
        answer.contains("type=\"error\"")
            && answer.contains("<not-allowed xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"),
        "{answer}"
    );
    assert!(listed(&server).is_empty());
    // Logins are not affected.
    server.add_user("alice@localhost", "wonderland");
    RawClient::login_flash(server.c2s, "alice", "wonderland", "r").await;
}
