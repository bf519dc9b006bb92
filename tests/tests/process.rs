//! The process as an admin runs it: config mistakes exit 2 naming file,
//! key and line; a taken port exits 2 naming the address; SIGTERM closes every stream (standard
//! and Flash framing) and exits 0; with no arguments at all the server starts on the loopback
//! defaults and keeps its generated certificate across restarts.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use jabberwock_tests::raw::FLASH_HEADER;
use jabberwock_tests::server::{binary, listening_addrs, spawn_logged, wait_for_listeners};
use jabberwock_tests::{RawClient, TestServer, WAIT};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Runs `jabberwock --config <config>` in `cwd` and waits (bounded) for it to exit.
fn run_with_config(config: &Path, cwd: &Path) -> (ExitStatus, String) {
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(config)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn jabberwock");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let status = wait_exit(&mut child, "exit on its own");
    (status, reader.join().expect("stderr reader"))
}

/// Waits for `child` to exit within [`WAIT`]; kills it and panics otherwise.
fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("jabberwock did not {what} within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM failed");
}

/// Writes `text` as the config file of a fresh directory; returns (dir, config path).
fn config_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jabberwock.toml");
    std::fs::write(&path, text).expect("write config");
    (dir, path)
}

/// Runs the server on `text` and asserts: exit code 2, and one stderr line naming
/// `file:line` and the key, and containing every `needle`.
fn assert_config_error(text: &str, line: usize, key: &str, needles: &[&str]) -> String {
    let (dir, path) = config_file(text);
    let (status, stderr) = run_with_config(&path, dir.path());
    assert_eq!(status.code(), Some(2), "{text:?} gave {status}: {stderr}");
    let located = format!("{}:{line}: key {key}:", path.display());
    let message = stderr
        .lines()
        .find(|l| l.contains(&located))
        .unwrap_or_else(|| panic!("no line naming {located:?} in: {stderr}"));
    for needle in needles {
        assert!(
            message.contains(needle),
            "{needle:?} missing from: {message}"
        );
    }
    // Nothing was started: no listener log, no database.
    assert!(!stderr.contains("listening"), "{stderr}");
    assert!(
        !dir.path().join("data").exists(),
        "a failed config created data/"
    );
    message.to_owned()
}

#[test]
fn unknown_key_exits_2_naming_file_key_and_line() {
    let message = assert_config_error(
        "# Jabberwock\ndata_dir = \"data\"\n\n[c2s]\nlisen = []\n",
        5,
        "c2s.lisen",
        &["unknown key"],
    );
    // The admin is told what the key could have been.
    assert!(message.contains("listen"), "{message}");
}

#[test]
fn wrong_type_exits_2_naming_file_key_and_line() {
    assert_config_error(
        "[c2s]\nhandshake_timeout = 2\nmax_stanza_bytes = \"big\"\n",
        3,
        "c2s.max_stanza_bytes",
        &["invalid type", "\"big\""],
    );
}

#[test]
fn a_typo_in_a_module_table_exits_2_naming_file_key_and_line() {
    assert_config_error(
        "[modules.ping]\nenabled = true\nenabeld = false\n",
        3,
        "modules.ping.enabeld",
        &["unknown key"],
    );
    assert_config_error(
        "[modules.pnig]\nenabled = false\n",
        1,
        "modules.pnig",
        &["unknown module", "ping"],
    );
    assert_config_error(
        "[modules.roster]\nenabled = \"no\"\n",
        2,
        "modules.roster.enabled",
        &["boolean"],
    );
    assert_config_error(
        "[hosts.localhost]\nmodules_disabled = [\"roster\", \"pinng\"]\n",
        2,
        "hosts.localhost.modules_disabled",
        &["unknown module `pinng`"],
    );
}

#[test]
fn a_bad_declared_room_exits_2_naming_file_key_and_line() {
    const FIRST: &str = "[modules.muc]\nmax_occupants = 50\n\n[[modules.muc.rooms]]\njid = \"lobby\"\nowners = [\"staff@localhost\"]\n\n[[modules.muc.rooms]]\n";
    assert_config_error(
        &format!("{FIRST}jid = \"the lobby\"\n"),
        9,
        "modules.muc.rooms[1].jid",
        &["\"the lobby\" is no room localpart"],
    );
    assert_config_error(
        &format!("{FIRST}jid = \"help@conference.elsewhere.example\"\n"),
        9,
        "modules.muc.rooms[1].jid",
        &["on no host's MUC service", "conference.localhost"],
    );
    assert_config_error(
        &format!("{FIRST}jid = \"LOBBY\"\n"),
        9,
        "modules.muc.rooms[1].jid",
        &["lobby@conference.localhost is declared twice"],
    );
    assert_config_error(
        &format!("{FIRST}jid = \"help\"\nowners = [\"staff@localhost/desk\"]\n"),
        10,
        "modules.muc.rooms[1].owners[0]",
        &["\"staff@localhost/desk\" is no bare JID"],
    );
    assert_config_error(
        &format!("{FIRST}jid = \"help\"\ntopic = \"hi\"\n"),
        10,
        "modules.muc.rooms[1].topic",
        &["unknown"],
    );
    assert_config_error(
        &format!("{FIRST}jid = \"help\"\nmax_occupants = -1\n"),
        10,
        "modules.muc.rooms[1].max_occupants",
        &["-1"],
    );
    assert_config_error(
        "[modules.muc]\nmessages_per_second = -2.0\n",
        2,
        "modules.muc.messages_per_second",
        &["must be 0 (no limit) or more"],
    );
}

#[test]
fn bad_federation_trust_policy_and_limits_exit_2_naming_file_key_and_line() {
    assert_config_error(
        "[modules.s2s]\nenabled = true\nca_file = \"/nope-ca.pem\"\n",
        3,
        "modules.s2s.ca_file",
        &["/nope-ca.pem"],
    );
    assert_config_error(
        "[modules.s2s]\nmax_streams_per_address = 0\n",
        2,
        "modules.s2s.max_streams_per_address",
        &["at least 1"],
    );
    assert_config_error(
        "[modules.s2s.domains.\"b.test\"]\nallow_dialback = \"no\"\n",
        2,
        "modules.s2s.domains.\"b.test\".allow_dialback",
        &["boolean"],
    );
}

#[test]
fn a_bad_external_service_exits_2_naming_file_key_and_line() {
    const TABLE: &str = "[modules.external_services]\nttl = 600\n\n[[modules.external_services.services]]\nhost = \"turn.example.org\"\n";
    assert_config_error(
        &format!("{TABLE}type = \"turn\"\nrestricted = true\n"),
        7,
        "modules.external_services.services[0].restricted",
        &["needs `secret`"],
    );
    assert_config_error(
        &format!("{TABLE}type = \"turm\"\n"),
        6,
        "modules.external_services.services[0].type",
        &["turm"],
    );
}

#[test]
fn missing_cert_file_exits_2_naming_key_and_path() {
    assert_config_error(
        "[tls]\ncert = \"/nope.pem\"\nkey = \"/nope.key\"\n",
        2,
        "tls.cert",
        &["/nope.pem", "cannot read"],
    );
}

#[test]
fn port_in_use_exits_2_naming_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let text = format!(
        "data_dir = {:?}\n[c2s]\nlisten = [\"{addr}\"]\ndirect_tls_listen = []\n",
        data.display().to_string()
    );
    let path = dir.path().join("jabberwock.toml");
    std::fs::write(&path, text).unwrap();
    let (status, stderr) = run_with_config(&path, dir.path());
    assert_eq!(status.code(), Some(2), "{status}: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains(&addr.to_string()))
        .unwrap_or_else(|| panic!("stderr does not name {addr}: {stderr}"));
    assert!(line.contains("cannot listen"), "{line}");
    assert!(!stderr.contains("Jabberwock started"), "{stderr}");
    drop(taken);
}

#[tokio::test]
async fn sigterm_closes_standard_and_flash_streams_and_exits_0() {
    let mut server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let (mut standard, _) = RawClient::login_standard(
        server.c2s,
        &server.cert_path(),
        "alice",
        "wonderland",
        "std",
    )
    .await;
    let (mut flash, _) = RawClient::login_flash(server.c2s, "bob", "builder", "xiff").await;
    // Both sessions are live before the signal.
    standard.ping("p1", "").await;
    flash.ping("p2", "\0").await;

    // Blocking wait for the exit: off the async runtime, so the clients' sockets keep
    // being read below.
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        (status, server)
    });

    let standard_tail = standard.read_to_close().await;
    let flash_tail = flash.read_to_close().await;
    let (status, server) = status.await.expect("terminate");
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        server.log_text()
    );

    // RFC 6120 §4.9.3.19: system-shutdown, then the stream is closed.
    assert!(
        standard_tail.contains(
            "<stream:error><system-shutdown xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"
        ),
        "{standard_tail:?}"
    );
    assert!(
        standard_tail.ends_with("</stream:error></stream:stream>"),
        "{standard_tail:?}"
    );
    // Flash framing: every unit NUL-terminated, the stream closed with </flash:stream>.
    assert!(
        flash_tail.contains("<system-shutdown xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"),
        "{flash_tail:?}"
    );
    assert!(
        flash_tail.ends_with("</stream:error>\0</flash:stream>\0"),
        "{flash_tail:?}"
    );
    assert!(!flash_tail.contains("</stream:stream>"), "{flash_tail:?}");
}

fn has_ipv6_loopback() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// A server started by hand; killed if the test fails before stopping it, so that it never
/// keeps the fixed ports.
struct Running {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGTERM, then the exit status (bounded wait).
    fn terminate(&mut self) -> ExitStatus {
        sigterm(&self.child);
        wait_exit(&mut self.child, "exit after SIGTERM")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts the binary with no arguments in `cwd`; returns it once every listener is logged.
fn start_zero_config(cwd: &Path) -> Running {
    for port in [5222, 5223, 5280, 5281] {
        if let Err(e) = TcpListener::bind(("127.0.0.1", port)) {
            panic!(
                "zero-config test needs 127.0.0.1:{port}, which is not free on this machine: {e}"
            );
        }
    }
    let (child, log) = spawn_logged(&[], cwd);
    // Guarded before waiting, so a failed start does not leave a process behind.
    let mut running = Running { child, log };
    wait_for_listeners(&mut running.child, &running.log);
    let log = running.log.clone();
    // wait_for_listeners returns at the first line of each kind; the rest follow at once.
    let expected = if has_ipv6_loopback() { 2 } else { 1 };
    let deadline = Instant::now() + WAIT;
    while {
        let lines = log.lock().unwrap();
        listening_addrs(&lines, "c2s").len() < expected
            || listening_addrs(&lines, "c2s-direct-tls").len() < expected
            || listening_addrs(&lines, "http").len() < expected
            || listening_addrs(&lines, "https").len() < expected
            || !lines.iter().any(|l| l.contains("Jabberwock started"))
    } {
        assert!(
            Instant::now() < deadline,
            "listeners missing:\n{}",
            log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    running
}

#[tokio::test]
async fn zero_config_starts_on_loopback_defaults_and_keeps_its_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Port 843 needs root (and must be free): without it the server starts anyway.
    let policy_port_usable = TcpListener::bind("127.0.0.1:843").is_ok();
    let mut first = start_zero_config(dir.path());
    {
        let lines = first.log.lock().unwrap().clone();
        let c2s = listening_addrs(&lines, "c2s");
        let direct = listening_addrs(&lines, "c2s-direct-tls");
        let http = listening_addrs(&lines, "http");
        let https = listening_addrs(&lines, "https");
        let policy = listening_addrs(&lines, "flash-policy");
        let v4_c2s: SocketAddr = "127.0.0.1:5222".parse().unwrap();
        let v4_direct: SocketAddr = "127.0.0.1:5223".parse().unwrap();
        let mut want_c2s = vec![v4_c2s];
        let mut want_direct = vec![v4_direct];
        let mut want_http = vec!["127.0.0.1:5280".parse::<SocketAddr>().unwrap()];
        let mut want_https = vec!["127.0.0.1:5281".parse::<SocketAddr>().unwrap()];
        let mut want_policy = vec!["127.0.0.1:843".parse::<SocketAddr>().unwrap()];
        if has_ipv6_loopback() {
            want_c2s.push("[::1]:5222".parse().unwrap());
            want_direct.push("[::1]:5223".parse().unwrap());
            want_http.push("[::1]:5280".parse().unwrap());
            want_https.push("[::1]:5281".parse().unwrap());
            want_policy.push("[::1]:843".parse().unwrap());
        }
        // One log line per listener, nothing on any other address.
        assert_eq!(c2s, want_c2s, "{}", lines.join("\n"));
        assert_eq!(direct, want_direct, "{}", lines.join("\n"));
        assert_eq!(http, want_http, "{}", lines.join("\n"));
        assert_eq!(https, want_https, "{}", lines.join("\n"));
        if policy_port_usable {
            assert_eq!(policy, want_policy, "{}", lines.join("\n"));
        } else {
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains("127.0.0.1:843") && l.contains("falls back")),
                "no warning about port 843:\n{}",
                lines.join("\n")
            );
        }
        assert!(
            lines
                .iter()
                .all(|l| !l.contains("0.0.0.0") && !l.contains("[::]:")),
            "zero config must stay on loopback:\n{}",
            lines.join("\n")
        );
    }
    let data = dir.path().join("data");
    for file in ["jabberwock.sqlite", "cert.pem", "key.pem"] {
        assert!(
            data.join(file).is_file(),
            "zero config did not create data/{file}"
        );
    }
    let cert = std::fs::read(data.join("cert.pem")).unwrap();
    let key = std::fs::read(data.join("key.pem")).unwrap();
    assert!(
        cert.starts_with(b"-----BEGIN CERTIFICATE-----"),
        "{}",
        String::from_utf8_lossy(&cert)
    );

    // A Flash client is served on the default port.
    let mut flash = RawClient::connect("127.0.0.1:5222".parse().unwrap()).await;
    flash.send(FLASH_HEADER).await;
    let header = flash.read_unit().await;
    assert!(
        header.starts_with("<?xml version='1.0' encoding='UTF-8'?><flash:stream ")
            && header.contains("from=\"localhost\""),
        "{header}"
    );
    let features = flash.read_unit().await;
    assert!(features.starts_with("<stream:features>"), "{features}");
    drop(flash);

    // ...and through Ruffle's socket proxy endpoint, ws://127.0.0.1:5280/flash.
    let (mut ws, _) = tokio_tungstenite::connect_async("ws://127.0.0.1:5280/flash")
        .await
        .expect("WebSocket to the zero-config Flash endpoint");
    ws.send(WsMessage::binary(FLASH_HEADER.as_bytes().to_vec()))
        .await
        .expect("send header");
    let header = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("header in time")
        .expect("a frame")
        .expect("not an error");
    let header = String::from_utf8_lossy(&header.into_data()).into_owned();
    assert!(
        header.starts_with("<?xml version='1.0' encoding='UTF-8'?><flash:stream "),
        "{header}"
    );
    drop(ws);
    if policy_port_usable {
        let mut policy = RawClient::connect("127.0.0.1:843".parse().unwrap()).await;
        policy.send("<policy-file-request/>\0").await;
        let answer = policy.read_to_close().await;
        assert!(
            answer.contains("to-ports=\"5222\"") && answer.ends_with("</cross-domain-policy>\0"),
            "{answer:?}"
        );
    }

    // The startup lines say what an admin checks first: version, config file, data
    // directory, and the certificate's subject, fingerprint and end.
    let started = line_with(&first.log_text(), "Jabberwock started");
    for field in [
        "version=",
        "config=none (defaults)",
        "data_dir=data",
        "hosts=localhost",
    ] {
        assert!(started.contains(field), "{field} missing: {started}");
    }
    let fingerprint = certificate_fingerprint(&first.log_text());
    let certificate = line_with(&first.log_text(), " certificate ");
    assert!(
        certificate.contains("CN=localhost") && certificate.contains("not_after=20"),
        "{certificate}"
    );

    // Blocking is fine here: no client is left that needs the runtime.
    let status = first.terminate();
    assert!(status.success(), "{status}:\n{}", first.log_text());
    assert!(
        first.log_text().contains("generated a self-signed"),
        "{}",
        first.log_text()
    );

    // Second start in the same directory: same certificate, not a new one.
    let mut again = start_zero_config(dir.path());
    let reused = std::fs::read(data.join("cert.pem")).unwrap();
    assert_eq!(reused, cert, "the second start replaced data/cert.pem");
    let key_again = std::fs::read(data.join("key.pem")).unwrap();
    assert_eq!(key_again, key, "the second start replaced data/key.pem");
    assert!(
        !again.log_text().contains("generated a self-signed"),
        "{}",
        again.log_text()
    );
    // The same certificate, so the same fingerprint in the log.
    assert_eq!(certificate_fingerprint(&again.log_text()), fingerprint);
    let status = again.terminate();
    assert!(status.success(), "{status}:\n{}", again.log_text());
}

/// The first log line containing `needle`.
fn line_with(log: &str, needle: &str) -> String {
    log.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}:\n{log}"))
        .to_owned()
}

/// The `sha256=` of the startup log's certificate line: 32 colon-separated hex bytes.
fn certificate_fingerprint(log: &str) -> String {
    let line = line_with(log, " certificate ");
    let fingerprint = line
        .split("sha256=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no sha256= in {line}"))
        .to_owned();
    let bytes: Vec<&str> = fingerprint.split(':').collect();
    assert!(
        bytes.len() == 32
            && bytes
                .iter()
                .all(|b| b.len() == 2 && u8::from_str_radix(b, 16).is_ok()),
        "{fingerprint}"
    );
    fingerprint
}

/// Asks the c2s port for the Flash socket policy and reads the answer: a request the
/// server logs at debug level.
async fn ask_policy(server: &TestServer) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(server.c2s)
        .await
        .expect("connect");
    socket
        .write_all(b"<policy-file-request/>\0")
        .await
        .expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, socket.read_to_end(&mut answer))
        .await
        .expect("policy answer in time")
        .expect("read");
    assert!(
        String::from_utf8_lossy(&answer).contains("<cross-domain-policy>"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn sighup_reloads_the_log_level_and_never_ends_the_server() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    let (mut client, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "wonderland", "pc")
            .await;
    let config = std::fs::read_to_string(&server.config_path).expect("read config");
    assert!(config.contains("level = \"info\""), "{config}");
    assert!(
        config.contains("direct_tls_listen = [\"127.0.0.1:0\"]"),
        "{config}"
    );

    // A config that no longer loads is refused, naming file and key; the server goes on.
    std::fs::write(
        &server.config_path,
        config.replace("level = \"info\"", "level = \"inof\""),
    )
    .expect("write config");
    server.hangup();
    assert!(
        server.wait_log("config not reloaded, the running one stays"),
        "{}",
        server.log_text()
    );
    assert!(
        server.log_text().contains("key log.level"),
        "{}",
        server.log_text()
    );
    client.ping("p1", "").await;

    // A new level is applied at once, without a restart or a dropped session.
    std::fs::write(
        &server.config_path,
        config.replace("level = \"info\"", "level = \"debug\""),
    )
    .expect("write config");
    server.hangup();
    assert!(
        server.wait_log("reload: log.level applied"),
        "{}",
        server.log_text()
    );
    ask_policy(&server).await;
    assert!(
        server.wait_log("answered a Flash socket policy request"),
        "no debug line after the reload:\n{}",
        server.log_text()
    );
    client.ping("p2", "").await;

    // Other changes are named as needing a restart.
    std::fs::write(
        &server.config_path,
        config
            .replace("level = \"info\"", "level = \"debug\"")
            .replace(
                "direct_tls_listen = [\"127.0.0.1:0\"]",
                "direct_tls_listen = []",
            ),
    )
    .expect("write config");
    server.hangup();
    assert!(
        server.wait_log("other changes in the config need a restart"),
        "{}",
        server.log_text()
    );
    client.ping("p3", "").await;
}
