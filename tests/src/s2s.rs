//! Federation helpers: Jabberwock servers each serving one domain on a loopback address of
//! its own (so every server listens on the standard s2s port 5269 and the static peer maps
//! are known before any starts), and a raw peer that speaks `jabber:server` by hand.

use crate::raw::RawClient;
use crate::server::{TestConfig, TestServer};
use crate::slix::SlixIm;

/// The s2s port every test server listens on, each on its own address.
pub const S2S_PORT: u16 = 5269;

/// A server for `domain` whose s2s listener is `ip:5269`, with `peers` (domain, address)
/// in its static map and `lines` added to `[modules.s2s]`.
pub fn federated(domain: &str, ip: &str, peers: &[(&str, String)], lines: &[&str]) -> TestServer {
    federated_at(domain, &format!("{ip}:{S2S_PORT}"), peers, lines)
}

/// Like [`federated`], listening on `listen` (`IP:port`). Unless `lines` name
/// `resolvers`, DNS questions go to [`crate::dns::nowhere`], never to the machine's
/// nameserver.
pub fn federated_at(
    domain: &str,
    listen: &str,
    peers: &[(&str, String)],
    lines: &[&str],
) -> TestServer {
    let map: Vec<String> = peers
        .iter()
        .map(|(d, a)| format!("{d:?} = {a:?}"))
        .collect();
    let mut config = TestConfig {
        hosts: vec![(domain.to_owned(), Vec::new())],
        ..TestConfig::default()
    }
    .section("modules.s2s", "enabled = true")
    .section("modules.s2s", &format!("listen = [\"{listen}\"]"))
    .section("modules.s2s", &format!("peers = {{ {} }}", map.join(", ")));
    if !lines
        .iter()
        .any(|l| l.trim_start().starts_with("resolvers"))
    {
        let nowhere = crate::dns::nowhere();
        config = config.section("modules.s2s", &format!("resolvers = [\"{nowhere}\"]"));
    }
    for line in lines {
        config = config.section("modules.s2s", line);
    }
    let server = TestServer::start_with(config);
    server.wait_started();
    server
}

/// `a.test` on 127.0.NET.1 and `b.test` on 127.0.NET.2, each in the other's map.
pub fn federated_pair(net: u8) -> (TestServer, TestServer) {
    let a_addr = format!("127.0.{net}.1:{S2S_PORT}");
    let b_addr = format!("127.0.{net}.2:{S2S_PORT}");
    let a = federated(
        "a.test",
        &format!("127.0.{net}.1"),
        &[("b.test", b_addr)],
        &[],
    );
    let b = federated(
        "b.test",
        &format!("127.0.{net}.2"),
        &[("a.test", a_addr)],
        &[],
    );
    (a, b)
}

/// The header a server claiming `from` opens a stream to `to` with (RFC 6120 §4.7).
pub fn s2s_header(from: &str, to: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
         xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
         from='{from}' to='{to}' version='1.0'>"
    )
}

/// Opens a stream to `addr` as `from` for `to` and reads its features; with `cert`,
/// STARTTLS first (the peer's certificate pinned) and the stream opened again.
pub async fn open_s2s(
    addr: std::net::SocketAddr,
    from: &str,
    to: &str,
    cert: Option<&std::path::Path>,
) -> (RawClient, String) {
    let mut peer = RawClient::connect(addr).await;
    peer.send(s2s_header(from, to)).await;
    let mut features = peer.read_until("</stream:features>").await;
    if let Some(cert) = cert {
        peer.starttls(cert).await;
        peer.send(s2s_header(from, to)).await;
        features = peer.read_until("</stream:features>").await;
    }
    (peer, features)
}

/// Sends a message from `client` to `to` and checks it bounces with `condition` from that
/// address.
pub async fn bounces(client: &mut RawClient, to: &str, id: &str, condition: &str) {
    client
        .send(format!(
            "<message to='{to}' type='chat' id='{id}'><body>hi</body></message>"
        ))
        .await;
    let error = client.read_stanza_containing(&format!("id=\"{id}\"")).await;
    assert!(error.contains("type=\"error\""), "{error}");
    assert!(error.contains(&format!("from=\"{to}\"")), "{error}");
    assert!(
        error.contains(&format!(
            "<{condition} xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"
        )),
        "{error}"
    );
}

/// `local` (nick alice) creates `room` as an instant room; `remote` (nick bob, a user of
/// another server) enters it and sees alice there, alice sees bob come, and a groupchat
/// message crosses each way (the room reflecting bob's own back to him).
pub async fn remote_occupant_chats(local: &mut SlixIm, remote: &mut SlixIm, room: &str) {
    let created = local
        .command(&format!(
            r#"{{"cmd": "join", "room": "{room}", "nick": "alice"}}"#
        ))
        .await;
    assert!(created.contains("201"), "{created}");
    local
        .command(&format!(r#"{{"cmd": "instant", "room": "{room}"}}"#))
        .await;
    let entered = remote
        .command(&format!(
            r#"{{"cmd": "join", "room": "{room}", "nick": "bob"}}"#
        ))
        .await;
    assert!(entered.contains(r#""occupants": ["alice"]"#), "{entered}");
    local
        .expect_all(&["muc_presence", r#""nick": "bob""#, r#""type": "available""#])
        .await;
    local
        .command(&format!(
            r#"{{"cmd": "say", "room": "{room}", "body": "welcome, bob"}}"#
        ))
        .await;
    remote
        .expect_all(&["groupchat", r#""nick": "alice""#, "welcome, bob"])
        .await;
    remote
        .command(&format!(
            r#"{{"cmd": "say", "room": "{room}", "body": "thanks, alice"}}"#
        ))
        .await;
    local
        .expect_all(&["groupchat", r#""nick": "bob""#, "thanks, alice"])
        .await;
    remote
        .expect_all(&["groupchat", r#""nick": "bob""#, "thanks, alice"])
        .await;
}
