//! Issue #4 acceptance: a real SWF chat widget (tests/flash/FlashXmpp.hx, built here with
//! Haxe) runs in headless Debian Chromium under Ruffle (npm, self-hosted from
//! tests/browser/node_modules), driven by playwright-core through tests/browser/flash_widget.mjs.
//! Its XMLSocket reaches Jabberwock through Ruffle's socket proxy, i.e. our own WebSocket
//! endpoint `ws://<http listener>/flash`, and it chats with a standard client on plain TCP
//! (STARTTLS). Needs `haxe`, `chromium` (Debian) and `npm ci` in tests/browser: .ci/run
//! installs them; a missing tool fails the test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use jabberwock_tests::{RawClient, TestServer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

const ALICE_PASSWORD: &str = "wonderland";
const FLASH_BODY: &str = "héllo ☃ from the Flash widget";
const TCP_BODY: &str = "hello widget, from TCP <&> ü";
/// The whole browser run: Chromium start, Ruffle's WASM, the XMPP session.
const BROWSER_DEADLINE: Duration = Duration::from_secs(90);

fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compiles the widget with Haxe into `out_dir`; returns the SWF's path.
fn build_widget(out_dir: &Path) -> PathBuf {
    let swf = out_dir.join("FlashXmpp.swf");
    let output = std::process::Command::new("haxe")
        .arg("-cp")
        .arg(tests_dir().join("flash"))
        .args(["-main", "FlashXmpp", "-swf"])
        .arg(&swf)
        .args(["-swf-version", "11", "-swf-header", "800:600:30:FFFFFF"])
        .output()
        .expect("haxe is needed to build the Flash widget (apt-get install haxe)");
    assert!(
        output.status.success(),
        "haxe failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    swf
}

/// Waits for a stanza containing every one of `needles`, skipping others; returns it and
/// the stanzas skipped before it.
async fn read_matching(client: &mut RawClient, needles: &[&str]) -> (String, Vec<String>) {
    let mut skipped = Vec::new();
    loop {
        let stanza = client.read_stanza().await;
        if needles.iter().all(|n| stanza.contains(n)) {
            return (stanza, skipped);
        }
        skipped.push(stanza);
    }
}

/// Makes alice and bob mutual contacts (subscription both, RFC 6121 §3.1) from a TCP Flash
/// session of alice's, which then logs out; bob is logged in as `bob@localhost/tcp`.
async fn befriend(server: &TestServer, bob: &mut RawClient) {
    let (mut alice, _) = RawClient::login_flash(server.c2s, "alice", ALICE_PASSWORD, "setup").await;
    alice
        .send("<presence to=\"bob@localhost\" type=\"subscribe\"/>\0")
        .await;
    read_matching(bob, &["<presence", "type=\"subscribe\""]).await;
    bob.send("<presence to='alice@localhost' type='subscribed'/><presence to='alice@localhost' type='subscribe'/>")
        .await;
    read_matching(
        &mut alice,
        &["from=\"bob@localhost\"", "type=\"subscribe\""],
    )
    .await;
    alice
        .send("<presence to=\"bob@localhost\" type=\"subscribed\"/>\0")
        .await;
    alice.send("</flash:stream>\0").await;
    alice.read_to_close().await;
    // Delivered after everything alice's session did: her approval has been processed.
    read_matching(
        bob,
        &["from=\"alice@localhost/setup\"", "type=\"unavailable\""],
    )
    .await;
}

/// Ruffle's socketProxy target: our own WebSocket endpoint for XMLSocket clients.
fn proxy_url(server: &TestServer) -> String {
    let http = server
        .http
        .expect("the test server has an HTTP listener ([http] listen)");
    format!("ws://{http}/flash")
}

#[tokio::test]
async fn flash_widget_in_ruffle_chats_with_a_tcp_client_through_the_websocket_endpoint() {
    let browser_dir = tests_dir().join("browser");
    assert!(
        browser_dir
            .join("node_modules/@ruffle-rs/ruffle/ruffle.js")
            .exists()
            && browser_dir.join("node_modules/playwright-core").exists(),
        "Ruffle and playwright-core are missing: run `npm ci` in {}",
        browser_dir.display()
    );
    let server = TestServer::start();
    server.wait_started();
    let swf = build_widget(server.dir.path());
    let proxy = proxy_url(&server);
    server.add_user("alice@localhost", ALICE_PASSWORD);
    server.add_user("bob@localhost", "builder");

    let (mut bob, bob_jid) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "builder", "tcp").await;
    assert_eq!(bob_jid, "bob@localhost/tcp");
    befriend(&server, &mut bob).await;

    // Kept after the run (target/tmp/flash-widget.png), to look at.
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("flash-widget.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut browser = Command::new("node")
        .arg(browser_dir.join("flash_widget.mjs"))
        .arg("--swf")
        .arg(&swf)
        .args(["--proxy-url", &proxy])
        // What the SWF hands XMLSocket.connect (the port a Flash Player would use); Ruffle
        // only uses it to find the proxy entry.
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &server.c2s.port().to_string(),
        ])
        .args(["--user", "alice", "--pass", ALICE_PASSWORD])
        .args(["--resource", "flashwidget", "--peer", "bob@localhost"])
        .args(["--body", FLASH_BODY, "--timeout", "60"])
        .arg("--screenshot")
        .arg(&screenshot)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is needed to run the browser test");
    let mut stderr = browser.stderr.take().expect("stderr");
    let console = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(browser.stdout.take().expect("stdout")).lines();

    // The widget's steps as they happen; bob answers once it has sent its message.
    let deadline = tokio::time::Instant::now() + BROWSER_DEADLINE;
    let mut steps: Vec<(String, String)> = Vec::new();
    let mut bob_got = None;
    loop {
        let line = match tokio::time::timeout_at(deadline, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(_) => break,
            Err(_) => panic!("the browser run took longer than {BROWSER_DEADLINE:?}: {steps:#?}"),
        };
        let step: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON step ({e}): {line}"));
        let kind = step["kind"].as_str().unwrap_or_default().to_owned();
        let text = step["text"].as_str().unwrap_or_default().to_owned();
        if kind == "sent" {
            let (message, skipped) = read_matching(&mut bob, &["<message"]).await;
            bob.send(format!(
                "<message type='chat' to='alice@localhost/flashwidget' id='tcp1'><body>{}</body></message>",
                TCP_BODY.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
            ))
            .await;
            bob_got = Some((message, skipped));
        }
        steps.push((kind, text));
    }
    let status = tokio::time::timeout(Duration::from_secs(30), browser.wait())
        .await
        .expect("the browser run did not exit")
        .expect("wait for node");
    let console = console.await.unwrap_or_default();
    let transcript = steps
        .iter()
        .filter(|(kind, _)| kind != "in" && kind != "out")
        .map(|(kind, text)| format!("[{kind}] {text}"))
        .collect::<Vec<_>>()
        .join("\n");
    let context = format!(
        "transcript:\n{transcript}\nscreenshot: {}\nbrowser console:\n{console}\nserver log:\n{}",
        screenshot.display(),
        server.log_text()
    );
    assert!(
        status.success(),
        "the widget run failed ({status})\n{context}"
    );

    // The widget's transcript, step by step and in order. The contact's presence (the answer
    // to the widget's probe) may come before or after the widget's own echo and message.
    let step_at = |kind: &str, needle: &str, from: usize| {
        steps[from..]
            .iter()
            .position(|(k, t)| k == kind && t.contains(needle))
            .map(|i| i + from)
            .unwrap_or_else(|| panic!("no [{kind}] step containing {needle:?} in order\n{context}"))
    };
    let received = format!("bob@localhost/tcp: {TCP_BODY}");
    let mut at = 0;
    for (kind, needle) in [
        ("header", "from localhost"),
        ("features", "mechanisms PLAIN"),
        ("auth", "success"),
        ("bound", "alice@localhost/flashwidget"),
        ("roster", "1 item(s): bob@localhost (both)"),
        ("presence", "alice@localhost/flashwidget available"),
        ("sent", FLASH_BODY),
        ("received", &received),
        ("closed", "the server closed the stream"),
    ] {
        at = step_at(kind, needle, at) + 1;
    }
    let roster = step_at("roster", "bob@localhost", 0);
    step_at("presence", "bob@localhost/tcp available", roster);
    assert!(
        !steps.iter().any(|(kind, _)| kind == "error"),
        "the widget reported an error\n{context}"
    );

    // The widget's session came through the WebSocket endpoint, not a TCP port.
    assert!(
        server
            .log_text()
            .lines()
            .any(|l| l.contains("flash-websocket")
                && l.contains("resource bound jid=alice@localhost/flashwidget")),
        "the widget's session was not a flash-websocket one\n{context}"
    );

    // The TCP client saw the widget come online, then its message, from its full JID.
    let (message, skipped) = bob_got.unwrap_or_else(|| panic!("the widget never sent\n{context}"));
    assert!(
        skipped.iter().any(|s| s.starts_with("<presence")
            && s.contains("from=\"alice@localhost/flashwidget\"")
            && !s.contains("type=")),
        "bob did not get the widget's presence: {skipped:?}"
    );
    assert!(
        message.contains("from=\"alice@localhost/flashwidget\"")
            && message.contains(&format!("<body>{FLASH_BODY}</body>")),
        "{message}"
    );

    // The screenshot is a real 800x600 PNG of the stage (a blank one compresses to ~3 KB).
    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (800, 600));
    assert!(png.len() > 10_000, "screenshot of {} bytes", png.len());
}
