//! What the log tells an admin: failed and successful logins with who and from where,
//! streams to hosts this server does not serve, IQs it does not support (at debug), and
//! `[log] format = "json"` for log collectors.

use std::time::Duration;

use jabberwock_tests::raw::STREAM_HEADER;
use jabberwock_tests::s2s::s2s_header;
use jabberwock_tests::server::cli_at;
use jabberwock_tests::slix::Slix;
use jabberwock_tests::{RawClient, TestConfig, TestServer};

/// The first log line that contains every one of `needles`, waiting for it (bounded).
fn log_line(server: &TestServer, needles: &[&str]) -> String {
    let deadline = std::time::Instant::now() + jabberwock_tests::WAIT;
    loop {
        let text = server.log_text();
        if let Some(line) = text.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return line.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log line with {needles:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_failed_login_logs_the_username_ip_and_mechanism_at_info() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    // slixmpp with a wrong password: SCRAM, so the server never sees a password at all.
    let mut slix = Slix::login(
        &server,
        "alice@localhost/slix",
        "looking-glass",
        "SCRAM-SHA-256",
        &[],
    );
    slix.expect("auth_failed").await;
    let line = log_line(&server, &["authentication failed", "SCRAM-SHA-256"]);
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("user=\"alice\""), "{line}");
    assert!(line.contains("ip=127.0.0.1"), "{line}");
    assert!(line.contains("condition=\"not-authorized\""), "{line}");
    // The password is nowhere in the log.
    assert!(!server.log_text().contains("looking-glass"));

    // A success names the JID and the address too.
    let cert = server.cert_path();
    let _client = RawClient::login_standard(server.c2s, &cert, "alice", "wonderland", "pc").await;
    let line = log_line(&server, &["authenticated", "jid=alice@localhost"]);
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("ip=127.0.0.1"), "{line}");
    assert!(line.contains("mechanism=\"PLAIN\""), "{line}");
}

#[tokio::test]
async fn a_stream_to_an_unknown_host_logs_the_host_at_info() {
    let server = TestServer::start();
    let mut client = RawClient::connect(server.c2s).await;
    client
        .send(STREAM_HEADER.replace("to='localhost'", "to='chat.example.org'"))
        .await;
    let answer = client.read_to_close().await;
    assert!(answer.contains("<host-unknown"), "{answer}");
    let line = log_line(&server, &["host not served here", "chat.example.org"]);
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("ip=127.0.0.1"), "{line}");
}

#[tokio::test]
async fn a_server_stream_to_an_unknown_host_logs_the_host_at_info() {
    let server = TestServer::start_with(
        TestConfig::default()
            .section("modules.s2s", "enabled = true")
            .section("modules.s2s", "listen = [\"127.0.0.1:0\"]"),
    );
    let s2s = server.listening("s2s").expect("the s2s listener");
    let mut peer = RawClient::connect(s2s).await;
    peer.send(s2s_header("peer.example", "chat.example.org"))
        .await;
    let answer = peer.read_to_close().await;
    assert!(answer.contains("<host-unknown"), "{answer}");
    let line = log_line(&server, &["host not served here", "chat.example.org"]);
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("remote=\"peer.example\""), "{line}");
    assert!(line.contains("ip=127.0.0.1"), "{line}");
}

#[tokio::test]
async fn an_unsupported_iq_is_logged_at_debug_with_its_namespace() {
    let server =
        TestServer::start_with(TestConfig::default().log_level("info,jabberwock_server=debug"));
    server.add_user("alice@localhost", "wonderland");
    let (mut client, jid) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "wonderland", "pc")
            .await;
    client
        .send(
            "<iq type='get' id='odd1' to='localhost'>\
             <quest xmlns='urn:example:holy-grail'/></iq>",
        )
        .await;
    let answer = client.read_stanza_containing("odd1").await;
    assert!(answer.contains("<service-unavailable"), "{answer}");
    let line = log_line(&server, &["IQ not served", "urn:example:holy-grail"]);
    assert!(line.contains(" DEBUG "), "{line}");
    assert!(line.contains("element=\"quest\""), "{line}");
    assert!(line.contains(&format!("from={jid}")), "{line}");
    assert!(line.contains("condition=\"service-unavailable\""), "{line}");
}

#[tokio::test]
async fn json_format_writes_one_object_per_line() {
    let mut server = TestServer::start_with(TestConfig::default().log_format("json"));
    server.wait_started();
    // Something worth a line with fields of its own.
    let mut client = RawClient::connect(server.c2s).await;
    client
        .send(STREAM_HEADER.replace("to='localhost'", "to='chat.example.org'"))
        .await;
    client.read_to_close().await;
    assert!(server.wait_log("host not served here"));
    assert!(server.terminate().success());

    let text = server.log_text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 4, "{text}");
    for line in &lines {
        assert!(line["timestamp"].is_string(), "{line}");
        assert!(line["level"].is_string(), "{line}");
        assert!(line["target"].is_string(), "{line}");
        assert!(line["fields"]["message"].is_string(), "{line}");
    }
    let started = lines
        .iter()
        .find(|l| l["fields"]["message"] == "Jabberwock started")
        .expect("a started line");
    assert_eq!(started["level"], "INFO");
    let unknown = lines
        .iter()
        .find(|l| l["fields"]["message"] == "stream to a host not served here")
        .expect("the unknown host line");
    assert_eq!(unknown["fields"]["host"], "chat.example.org");
    assert_eq!(unknown["fields"]["ip"], "127.0.0.1");
    assert!(lines.iter().any(|l| l["fields"]["message"] == "stopped"));
}

#[test]
fn an_unknown_log_format_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("jabberwock.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[log]\nformat = \"xml\"\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .expect("write config");
    // The server itself would listen; `check` loads the config the same way and stops.
    let out = cli_at(&config, dir.path(), &["check"], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("log.format"), "{stderr}");
    assert!(stderr.contains("jabberwock.toml"), "{stderr}");
}
