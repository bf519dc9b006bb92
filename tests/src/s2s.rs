//! Federation helpers: Jabberwock servers each serving one domain on a loopback address of
//! its own (so every server listens on the standard s2s port 5269 and the static peer maps
//! are known before any starts), a throwaway CA for their certificates, a raw peer that
//! speaks `jabber:server` by hand and a scripted authoritative server for it, and the log
//! line of an authenticated stream.

use std::net::SocketAddr;
use std::path::PathBuf;

use tempfile::TempDir;

use crate::raw::RawClient;
use crate::server::{TestConfig, TestServer};
use crate::slix::SlixIm;

/// The s2s port every test server listens on, each on its own address.
pub const S2S_PORT: u16 = 5269;

/// A server for `domain` whose s2s listener is `ip:5269`, with `peers` (domain, address)
/// in its static map and `lines` added to `[modules.s2s]`.
pub fn federated(domain: &str, ip: &str, peers: &[(&str, String)], lines: &[&str]) -> TestServer {
    start_federated(federated_config(domain, ip, peers, lines))
}

/// Like [`federated`], listening on `listen` (`IP:port`).
pub fn federated_at(
    domain: &str,
    listen: &str,
    peers: &[(&str, String)],
    lines: &[&str],
) -> TestServer {
    start_federated(federated_config_at(domain, listen, peers, lines))
}

/// The config [`federated`] starts a server with, for a test to add to.
pub fn federated_config(
    domain: &str,
    ip: &str,
    peers: &[(&str, String)],
    lines: &[&str],
) -> TestConfig {
    federated_config_at(domain, &format!("{ip}:{S2S_PORT}"), peers, lines)
}

/// The config [`federated_at`] starts a server with. Unless `lines` name `resolvers`, DNS
/// questions go to [`crate::dns::nowhere`], never to the machine's nameserver.
pub fn federated_config_at(
    domain: &str,
    listen: &str,
    peers: &[(&str, String)],
    lines: &[&str],
) -> TestConfig {
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
    config
}

/// Starts a server from [`federated_config`] and waits until it serves.
pub fn start_federated(config: TestConfig) -> TestServer {
    let server = TestServer::start_with(config);
    server.wait_started();
    server
}

/// A throwaway certificate authority (RFC 5280) made by the test: the certificates it
/// issues pass a server's check once the server trusts its file (`ca_file`).
pub struct TestCa {
    dir: TempDir,
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        valid_for_a_month(&mut params);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Jabberwock test CA");
        let cert = params.self_signed(&key).expect("CA certificate");
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).expect("write the CA");
        TestCa { dir, cert, key }
    }

    /// The CA's certificate (PEM), what a server's `ca_file` names.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Issues a certificate for the DNS names `names`, written as `LABEL.pem` and
    /// `LABEL.key`; returns their paths.
    pub fn issue(&self, label: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("params");
        valid_for_a_month(&mut params);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("certificate");
        let cert_path = self.dir.path().join(format!("{label}.pem"));
        let key_path = self.dir.path().join(format!("{label}.key"));
        std::fs::write(&cert_path, cert.pem()).expect("write the certificate");
        std::fs::write(&key_path, key.serialize_pem()).expect("write the key");
        (cert_path, key_path)
    }

    /// `config` serving a certificate for `names` issued by this CA, and trusting it for
    /// peers; returns the config and the certificate's path (what clients pin).
    pub fn configure(
        &self,
        config: TestConfig,
        label: &str,
        names: &[&str],
    ) -> (TestConfig, PathBuf) {
        let (cert, key) = self.issue(label, names);
        let config = config
            .section("tls", &format!("cert = {:?}", cert.display().to_string()))
            .section("tls", &format!("key = {:?}", key.display().to_string()))
            .section(
                "modules.s2s",
                &format!("ca_file = {:?}", self.ca_file().display().to_string()),
            );
        (config, cert)
    }
}

/// From a day ago to a month from now: ejabberd arms a timer for a certificate's expiry,
/// which fails for rcgen's default end (the year 4096), and stops its TLS.
fn valid_for_a_month(params: &mut rcgen::CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(30);
}

/// The first log line of `server` containing `needle` (waiting for it as `wait_log` does).
pub fn log_line(server: &TestServer, needle: &str) -> String {
    assert!(
        server.wait_log(needle),
        "no {needle:?} in {}",
        server.log_text()
    );
    server
        .log_text()
        .lines()
        .find(|l| l.contains(needle))
        .map(str::to_owned)
        .unwrap_or_default()
}

/// `a.test` on 127.0.NET.1 and `b.test` on 127.0.NET.2, each in the other's map.
pub fn federated_pair(net: u8) -> (TestServer, TestServer) {
    let (a, b) = federated_pair_configs(net);
    (start_federated(a), start_federated(b))
}

/// The configs of [`federated_pair`], for a test to add to. b.test's map also names a.test's
/// MUC service, `conference.a.test`, so its users can reach a.test's rooms.
pub fn federated_pair_configs(net: u8) -> (TestConfig, TestConfig) {
    let a_addr = format!("127.0.{net}.1:{S2S_PORT}");
    let b_addr = format!("127.0.{net}.2:{S2S_PORT}");
    let a = federated_config(
        "a.test",
        &format!("127.0.{net}.1"),
        &[("b.test", b_addr)],
        &[],
    );
    let b = federated_config(
        "b.test",
        &format!("127.0.{net}.2"),
        &[("a.test", a_addr.clone()), ("conference.a.test", a_addr)],
        &[],
    );
    (a, b)
}

/// A server and the certificate its clients pin: the one it generated, or one the test CA
/// issued for it.
pub type Pinned = (TestServer, PathBuf);

/// `server` with the certificate it generated.
pub fn pinned(server: TestServer) -> Pinned {
    let cert = server.cert_path();
    (server, cert)
}

/// Alice on a.test and Bob on b.test (the users made here), logged in as `alice@a.test/home`
/// and `bob@b.test/desk` with initial presence, each pinning its server's certificate.
pub async fn alice_and_bob((a, a_cert): &Pinned, (b, b_cert): &Pinned) -> (RawClient, RawClient) {
    a.add_user("alice@a.test", "alicepw");
    b.add_user("bob@b.test", "bobpw");
    let (alice, _) =
        RawClient::login_standard_at(a.c2s, a_cert, "a.test", "alice", "alicepw", "home").await;
    let (bob, _) =
        RawClient::login_standard_at(b.c2s, b_cert, "b.test", "bob", "bobpw", "desk").await;
    (alice, bob)
}

/// A chat message from `from` to `to`, received by `receiver`; returns it as received.
pub async fn message_crosses(
    from: &mut RawClient,
    receiver: &mut RawClient,
    to: &str,
    body: &str,
) -> String {
    from.send(format!(
        "<message to='{to}' type='chat'><body>{body}</body></message>"
    ))
    .await;
    let got = receiver.read_stanza_containing(body).await;
    assert!(got.starts_with("<message"), "{got}");
    got
}

/// [`alice_and_bob`]'s users subscribe to each other (RFC 6121 §3.1), each request crossing
/// to the other server, and see each other available (§3.1.5: approving shares presence at
/// once).
pub async fn subscribe_both_ways(alice: &mut RawClient, bob: &mut RawClient) {
    alice
        .send("<presence to='bob@b.test' type='subscribe' id='s1'/>")
        .await;
    let request = bob.read_stanza_containing("type=\"subscribe\"").await;
    assert!(request.contains("from=\"alice@a.test\""), "{request}");
    bob.send("<presence to='alice@a.test' type='subscribed' id='s2'/>")
        .await;
    let approved = alice.read_stanza_containing("type=\"subscribed\"").await;
    assert!(approved.contains("from=\"bob@b.test\""), "{approved}");
    let seen = alice
        .read_stanza_containing("from=\"bob@b.test/desk\"")
        .await;
    assert!(
        seen.starts_with("<presence") && !seen.contains("type="),
        "{seen}"
    );

    bob.send("<presence to='alice@a.test' type='subscribe' id='s3'/>")
        .await;
    let request = alice.read_stanza_containing("type=\"subscribe\"").await;
    assert!(request.contains("from=\"bob@b.test\""), "{request}");
    alice
        .send("<presence to='bob@b.test' type='subscribed' id='s4'/>")
        .await;
    let seen = bob
        .read_stanza_containing("from=\"alice@a.test/home\"")
        .await;
    assert!(
        seen.starts_with("<presence") && !seen.contains("type="),
        "{seen}"
    );
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
    error_for(client, id, to, condition).await;
}

/// The error `client` gets for its stanza `id`, asserted to come from `from` with the stanza
/// error `condition`.
pub async fn error_for(client: &mut RawClient, id: &str, from: &str, condition: &str) -> String {
    let error = client.read_stanza_containing(&format!("id=\"{id}\"")).await;
    assert!(error.contains("type=\"error\""), "{error}");
    assert!(error.contains(&format!("from=\"{from}\"")), "{error}");
    assert!(
        error.contains(&format!(
            "<{condition} xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"
        )),
        "{error}"
    );
    error
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

/// The log line of a stream authenticated for (`local`, `remote`) by `method` ("EXTERNAL" or
/// "dialback"), `direction` "incoming" or "outgoing", over TLS 1.3.
pub fn authenticated(direction: &str, local: &str, remote: &str, method: &str) -> String {
    format!(
        "s2s stream authenticated direction={direction} local={local} remote={remote} \
         method={method} tls=TLSv1.3"
    )
}

/// `a.test` on 127.0.NET.1 (no STARTTLS required, `lines` added to `[modules.s2s]`) with
/// `x.test` in its map at 127.0.NET.2, where the test plays x.test's authoritative server,
/// answering every `<db:verify/>` valid: a raw peer claiming x.test passes dialback.
/// Returns the server and its s2s address.
pub async fn federated_with_x_test(net: u8, lines: &[&str]) -> (TestServer, SocketAddr) {
    let x_addr = format!("127.0.{net}.2:{S2S_PORT}");
    let authoritative = tokio::net::TcpListener::bind(&x_addr)
        .await
        .expect("bind x.test");
    let mut lines = lines.to_vec();
    lines.push("require_encryption = false");
    let a = federated(
        "a.test",
        &format!("127.0.{net}.1"),
        &[("x.test", x_addr)],
        &lines,
    );
    tokio::spawn(async move {
        while let Ok((tcp, _)) = authoritative.accept().await {
            tokio::spawn(answer_verify_valid(tcp));
        }
    });
    let a_addr = format!("127.0.{net}.1:{S2S_PORT}")
        .parse()
        .expect("an address");
    (a, a_addr)
}

/// Plays x.test's authoritative server for one stream: header and features, then a valid
/// answer to the `<db:verify/>` asked.
async fn answer_verify_valid(tcp: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tcp;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let mut answered_header = false;
    loop {
        let Ok(n) = tcp.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).into_owned();
        if !answered_header && text.contains("version=\"1.0\">") {
            answered_header = true;
            let header = "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
                 xmlns:db='jabber:server:dialback' id='x-stream' from='x.test' to='a.test' version='1.0'>\
                 <stream:features/>";
            if tcp.write_all(header.as_bytes()).await.is_err() {
                return;
            }
        }
        if let Some(verify) = text
            .split("<db:verify")
            .nth(1)
            .filter(|v| v.contains("</db:verify>"))
        {
            let id = verify
                .split("id=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default();
            let answer = format!(
                "<db:verify from='x.test' to='a.test' id='{id}' type='valid'/></stream:stream>"
            );
            let _ = tcp.write_all(answer.as_bytes()).await;
            return;
        }
    }
}

/// One side of [`users_of_two_servers_federate`]: a user's bare JID and password, their
/// server's c2s address and the certificate (or CA) their client trusts.
pub struct Side<'a> {
    pub jid: &'a str,
    pub password: &'a str,
    pub c2s: SocketAddr,
    pub trust: &'a std::path::Path,
}

/// The IM scenario across two servers, with slixmpp (slix_muc.py) logged in as `local`'s
/// and `remote`'s users (resource `slix`): each asks for the other's presence and is
/// approved (RFC 6121 §3), both see the other's presence go and come, a chat message
/// crosses each way, and the remote user enters `room` (a room of the local server) and
/// chats there ([`remote_occupant_chats`]).
pub async fn users_of_two_servers_federate(local: Side<'_>, remote: Side<'_>, room: &str) {
    let spawn = |side: &Side| {
        SlixIm::spawn_script_at(
            "slix_muc.py",
            &format!("{}/slix", side.jid),
            side.password,
            side.c2s,
            side.trust,
        )
    };
    let mut clients = [spawn(&local), spawn(&remote)];
    let jids = [local.jid, remote.jid];
    for client in &mut clients {
        client.expect_all(&["session_start"]).await;
        client.command(r#"{"cmd": "available"}"#).await;
    }
    // Each subscribes to the other, who approves; approval shares the contact's current
    // presence (RFC 6121 §3.1.5).
    for first in [0, 1] {
        let (asker, contact) = both(&mut clients, first);
        let (asker_jid, contact_jid) = (jids[first], jids[1 - first]);
        asker
            .command(&format!(r#"{{"cmd": "subscribe", "to": "{contact_jid}"}}"#))
            .await;
        contact
            .expect_all(&[
                "\"presence\"",
                &format!("\"from\": \"{asker_jid}\""),
                "\"subscribe\"",
            ])
            .await;
        contact
            .command(&format!(r#"{{"cmd": "authorize", "to": "{asker_jid}"}}"#))
            .await;
        // Our server delivers the approval to alice as a presence (RFC 6121 §3.1.6); the
        // peers need not (Prosody 0.12 passed none to its client), so only ours is checked.
        if first == 0 {
            asker
                .expect_ever(&[
                    "\"presence\"",
                    &format!("\"from\": \"{contact_jid}\""),
                    "\"subscribed\"",
                ])
                .await;
        }
        asker
            .expect_ever(&[
                "\"presence\"",
                &format!("\"from\": \"{contact_jid}/slix\""),
                "\"available\"",
            ])
            .await;
    }
    // Messages both ways: to the bare JID, and back to the full one.
    for first in [0, 1] {
        let (sender, receiver) = both(&mut clients, first);
        let (sender_jid, to) = match first {
            0 => (jids[0], jids[1].to_owned()),
            _ => (jids[1], format!("{}/slix", jids[0])),
        };
        let body = format!("hello from {sender_jid}");
        sender
            .command(&format!(
                r#"{{"cmd": "message", "to": "{to}", "body": "{body}"}}"#
            ))
            .await;
        receiver
            .expect_all(&["\"received\"", &format!("{sender_jid}/slix"), &body])
            .await;
    }
    // Presence goes and comes back, each way.
    for first in [1, 0] {
        let (mover, watcher) = both(&mut clients, first);
        for state in ["unavailable", "available"] {
            mover.command(&format!(r#"{{"cmd": "{state}"}}"#)).await;
            watcher
                .expect_all(&[
                    "\"presence\"",
                    &format!("\"from\": \"{}/slix\"", jids[first]),
                    &format!("\"{state}\""),
                ])
                .await;
        }
    }
    let [mut alice, mut bob] = clients;
    // The remote user enters a room of ours (their server finds its service through the
    // map or DNS) and chats with alice there.
    remote_occupant_chats(&mut alice, &mut bob, room).await;
    assert!(alice.quit().await);
    assert!(bob.quit().await);
}

/// `clients[first]` and the other one, both mutable.
fn both(clients: &mut [SlixIm; 2], first: usize) -> (&mut SlixIm, &mut SlixIm) {
    let [zero, one] = clients;
    match first {
        0 => (zero, one),
        _ => (one, zero),
    }
}
