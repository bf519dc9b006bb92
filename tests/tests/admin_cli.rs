//! The admin control socket, driven by the `jabberwock` command against a running server:
//! status, sessions, kick, reload (log level and certificate), check, and the user
//! commands that reach live sessions.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Output;
use std::time::Duration;

use jabberwock_tests::server::cli_at;
use jabberwock_tests::{RawClient, TestConfig, TestServer};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the command and checks its exit code; its standard output.
fn run(server: &TestServer, args: &[&str], code: i32) -> String {
    let out = server.cli(args, "");
    assert_eq!(
        out.status.code(),
        Some(code),
        "jabberwock {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out) + &stderr(&out)
}

/// Everything the client reads until the server closes, which must be within two seconds.
async fn closed_soon(client: &mut RawClient) -> String {
    tokio::time::timeout(Duration::from_secs(2), client.read_to_close())
        .await
        .expect("the server did not end the session within two seconds")
}

#[tokio::test]
async fn status_sessions_and_kick() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let socket = server.dir.path().join("data").join("admin.sock");
    let mode = std::fs::metadata(&socket)
        .expect("admin socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "admin socket mode {mode:o}");

    let (mut alice, alice_jid) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "wonderland", "pc")
            .await;
    let (mut bob, bob_jid) = RawClient::login_flash(server.c2s, "bob", "builder", "widget").await;
    assert_eq!(alice_jid, "alice@localhost/pc");

    let status = run(&server, &["status"], 0);
    assert!(status.contains("version: "), "{status}");
    assert!(status.contains("hosts: localhost"), "{status}");
    assert!(
        status.contains(&format!("listening: c2s {}", server.c2s)),
        "{status}"
    );
    assert!(status.contains("sessions: 2 (flash 1, tls 1)"), "{status}");

    let all = run(&server, &["sessions"], 0);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 2, "{all}");
    assert!(
        lines[0].starts_with("alice@localhost/pc\ttls\t127.0.0.1:"),
        "{all}"
    );
    assert!(
        lines[1].starts_with(&format!("{bob_jid}\tflash\t127.0.0.1:")),
        "{all}"
    );
    let one = run(&server, &["sessions", "bob@localhost"], 0);
    assert_eq!(one.lines().count(), 1, "{one}");
    assert!(one.starts_with(&bob_jid), "{one}");

    // Mistakes: malformed and foreign JIDs are usage errors, nobody online a refusal.
    let out = run(&server, &["kick", "a@b@c"], 2);
    assert!(out.contains("argument JID"), "{out}");
    let out = run(&server, &["kick", "alice@elsewhere"], 2);
    assert!(out.contains("host elsewhere is not served here"), "{out}");
    let out = run(&server, &["kick", "nobody@localhost"], 1);
    assert!(out.contains("nobody@localhost has no session"), "{out}");

    let out = run(
        &server,
        &["kick", "alice@localhost/pc", "--reason", "Spam"],
        0,
    );
    assert!(out.contains("kicked alice@localhost/pc"), "{out}");
    let end = closed_soon(&mut alice).await;
    assert!(
        end.contains("<policy-violation xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"),
        "{end}"
    );
    assert!(end.contains(">Spam</text>"), "{end}");
    // The other client goes on.
    bob.ping("after-kick", "\0").await;
    let left = run(&server, &["status"], 0);
    assert!(left.contains("sessions: 1 (flash 1)"), "{left}");
}

#[tokio::test]
async fn not_running_and_socket_removed_at_shutdown() {
    let mut server = TestServer::start();
    let socket = server.dir.path().join("data").join("admin.sock");
    assert!(socket.exists());
    assert!(server.terminate().success());
    assert!(
        !socket.exists(),
        "the admin socket outlived a clean shutdown"
    );
    let out = run(&server, &["status"], 1);
    assert!(
        out.contains(&format!(
            "not running: no admin socket at {}",
            socket.display()
        )),
        "{out}"
    );
}

#[tokio::test]
async fn stale_socket_is_replaced() {
    let mut server = TestServer::start();
    let socket = server.dir.path().join("data").join("admin.sock");
    server.kill();
    assert!(socket.exists(), "a killed server leaves its socket behind");
    server.restart();
    let status = run(&server, &["status"], 0);
    assert!(status.contains("sessions: 0"), "{status}");

    // A second server on the same data_dir finds the socket answered: it refuses to start.
    let mut second = std::process::Command::new(jabberwock_tests::server::binary())
        .arg("--config")
        .arg(&server.config_path)
        .current_dir(server.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn a second server");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            second.kill().expect("kill the second server");
            panic!("a second server started on a data_dir in use");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = second.wait_with_output().expect("output");
    assert_eq!(status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "admin socket {}: another server is running",
            socket.display()
        )),
        "{}",
        stderr(&out)
    );
    let status = run(&server, &["status"], 0);
    assert!(status.contains("sessions: 0"), "{status}");
}

#[tokio::test]
async fn reload_applies_log_level_and_certificate() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let (mut alice, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "wonderland", "pc")
            .await;
    let config = std::fs::read_to_string(&server.config_path).expect("read config");

    // A new log level takes effect at once.
    std::fs::write(
        &server.config_path,
        config.replace("level = \"info\"", "level = \"debug\""),
    )
    .expect("write config");
    let out = run(&server, &["reload"], 0);
    assert!(out.contains("applied: log.level = \"debug\""), "{out}");
    let mut policy = RawClient::connect(server.c2s).await;
    policy.send("<policy-file-request/>\0").await;
    policy.read_to_close().await;
    assert!(
        server.wait_log("answered a Flash socket policy request"),
        "no debug line after the reload:\n{}",
        server.log_text()
    );

    // A replaced certificate is served to new connections; the old session stays.
    let data = server.dir.path().join("data");
    let fresh = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let pinned = server.dir.path().join("new-cert.pem");
    std::fs::write(&pinned, fresh.cert.pem()).expect("write");
    std::fs::write(data.join("key.pem"), fresh.key_pair.serialize_pem()).expect("write");
    std::fs::write(data.join("cert.pem"), fresh.cert.pem()).expect("write");
    let out = run(&server, &["reload"], 0);
    assert!(out.contains("applied: tls: certificate"), "{out}");
    let (mut bob, _) =
        RawClient::login_standard(server.c2s, &pinned, "bob", "builder", "laptop").await;
    bob.send(
        "<message to='alice@localhost/pc' type='chat' id='m1'><body>still here?</body></message>",
    )
    .await;
    let got = alice.read_stanza_containing("still here?").await;
    assert!(got.contains("from=\"bob@localhost/laptop\""), "{got}");

    // A certificate that does not load is refused; the one in use stays.
    std::fs::write(data.join("cert.pem"), "not a certificate").expect("write");
    let out = run(&server, &["reload"], 1);
    assert!(
        out.contains("refused: tls: certificate not replaced, the one in use stays"),
        "{out}"
    );
    let (_carol, _) =
        RawClient::login_standard(server.c2s, &pinned, "bob", "builder", "tablet").await;
    alice.ping("after-reload", "").await;
}

#[tokio::test]
async fn check_good_and_bad_configs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let good = dir.path().join("good.toml");
    std::fs::write(&good, TestConfig::default().render(&data)).expect("write");
    let out = cli_at(&good, dir.path(), &["check"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("ok: {}", good.display())),
        "{}",
        stdout(&out)
    );
    assert!(!data.exists(), "check created the data directory");

    // A bad value: exit 2, the key named.
    let bad = dir.path().join("bad.toml");
    let text = TestConfig::default().render(&data);
    std::fs::write(&bad, text.replace("level = \"info\"", "level = \"inof\"")).expect("write");
    let out = cli_at(&bad, dir.path(), &["check"], "");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("log.level"), "{}", stderr(&out));

    // A certificate whose key is another's: exit 2, naming tls.cert.
    let one = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let two = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, one.cert.pem()).expect("write");
    std::fs::write(&key, two.key_pair.serialize_pem()).expect("write");
    let mismatched = dir.path().join("mismatched.toml");
    std::fs::write(
        &mismatched,
        format!(
            "{text}\n[tls]\ncert = {:?}\nkey = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    )
    .expect("write");
    let out = cli_at(&mismatched, dir.path(), &["check"], "");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("tls.cert"), "{}", stderr(&out));
    assert!(!data.exists(), "check created the data directory");
}

#[tokio::test]
async fn user_commands_reach_live_sessions() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let (mut alice, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "wonderland", "pc")
            .await;
    let (mut bob, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "builder", "pc").await;

    let list = run(&server, &["user", "list"], 0);
    assert_eq!(
        list.lines().collect::<Vec<_>>(),
        ["alice@localhost\tonline", "bob@localhost\tonline"],
        "{list}"
    );

    // Removing an online account ends its session at once.
    let out = run(&server, &["user", "remove", "alice@localhost"], 0);
    assert!(
        out.contains("removed alice@localhost; 1 session ended"),
        "{out}"
    );
    let end = closed_soon(&mut alice).await;
    assert!(end.contains("<not-authorized"), "{end}");

    // A password change ends the account's sessions (`reset`): they log in again.
    let out = server.cli(&["user", "passwd", "bob@localhost"], "newpassword\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let end = closed_soon(&mut bob).await;
    assert!(end.contains("<reset"), "{end}");
    let (_bob, jid) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "newpassword", "pc")
            .await;
    assert_eq!(jid, "bob@localhost/pc");
    let list = run(&server, &["user", "list"], 0);
    assert_eq!(
        list.lines().collect::<Vec<_>>(),
        ["bob@localhost\tonline"],
        "{list}"
    );
}
