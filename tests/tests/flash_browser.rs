//! A real SWF chat widget (tests/flash/FlashXmpp.hx, built here with
//! Haxe) runs in headless Debian Chromium under Ruffle (npm, self-hosted from
//! tests/browser/node_modules), driven by playwright-core through tests/browser/flash_widget.mjs.
//! Its XMLSocket reaches Jabberwock through Ruffle's socket proxy, i.e. our own WebSocket
//! endpoint `ws://<http listener>/flash`, and it chats with a standard client on plain TCP
//! (STARTTLS). The same widget then opens each way Flash-era clients did (flash, standard
//! and self-closed standard header; XMLSocket with NULs or the binary socket without),
//! through `/flash` (ws:// and wss://) and on the raw c2s port behind websockify. Needs
//! `haxe`, `chromium`, `websockify` (Debian) and `npm ci` in tests/browser: .ci/run
//! installs them; a missing tool fails the test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use jabberwock_tests::flash_widget::{build_widget, proxy_url, spawn_widget};
use jabberwock_tests::{RawClient, TestConfig, TestServer};
use tokio::process::Command;

const ALICE_PASSWORD: &str = "wonderland";
const FLASH_BODY: &str = "héllo ☃ from the Flash widget";
const TCP_BODY: &str = "hello widget, from TCP <&> ü";
/// The whole browser run: Chromium start, Ruffle's WASM, the XMPP session.
const BROWSER_DEADLINE: Duration = Duration::from_secs(90);

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

#[tokio::test]
async fn flash_widget_in_ruffle_chats_with_a_tcp_client_through_the_websocket_endpoint() {
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
    let port = server.c2s.port().to_string();
    let mut browser = spawn_widget(
        &swf,
        &screenshot,
        &[
            "--proxy-url",
            &proxy,
            // What the SWF hands XMLSocket.connect (the port a Flash Player would use);
            // Ruffle only uses it to find the proxy entry.
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            "alice",
            "--pass",
            ALICE_PASSWORD,
            "--resource",
            "flashwidget",
            "--peer",
            "bob@localhost",
            "--body",
            FLASH_BODY,
            "--timeout",
            "60",
        ],
    );
    // The widget's steps as they happen; bob answers once it has sent its message.
    let deadline = tokio::time::Instant::now() + BROWSER_DEADLINE;
    let mut steps: Vec<(String, String)> = Vec::new();
    let mut bob_got = None;
    while let Some((_, kind, text)) = browser.next_step(deadline).await {
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
    let (status, console) = browser.finish().await;
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

/// Debian's websockify in front of a raw c2s port: Ruffle has no raw sockets, and
/// websockify passes the bytes of its binary frames unchanged both ways, NULs included, so
/// the widget reaches the port as a Flash Player's socket would.
struct Websockify {
    _child: tokio::process::Child,
    url: String,
}

async fn websockify(target: std::net::SocketAddr) -> Websockify {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    let child = Command::new("websockify")
        .arg(format!("127.0.0.1:{port}"))
        .arg(target.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("websockify is needed (apt-get install websockify)");
    // Bounded: websockify is ready once its port accepts.
    let deadline = tokio::time::Instant::now() + jabberwock_tests::WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "websockify did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Websockify {
        _child: child,
        url: format!("ws://127.0.0.1:{port}"),
    }
}

/// One way of opening: its name (also the widget's resource), the header kind
/// (flash, standard, selfclosed), XMLSocket (NUL) or binary socket, and where Ruffle's
/// socket goes.
struct Variant<'a> {
    name: &'a str,
    header: &'a str,
    nul: bool,
    proxy_url: &'a str,
}

/// Runs every variant, one after another, in one browser: each widget logs in as alice,
/// messages its own bare JID, gets the message back and closes the stream. Asserts each
/// one's transcript.
async fn run_variants(swf: &Path, port: u16, variants: &[Variant<'_>], servers: &[&TestServer]) {
    let list: Vec<serde_json::Value> = variants
        .iter()
        .map(|v| {
            serde_json::json!({
                "name": v.name,
                "resource": v.name,
                "header": v.header,
                "nul": if v.nul { "1" } else { "0" },
                "proxyUrl": v.proxy_url,
                "body": format!("hello from {}", v.name),
            })
        })
        .collect();
    let list = serde_json::Value::Array(list).to_string();
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("flash-variant.png");
    let port = port.to_string();
    let mut browser = spawn_widget(
        swf,
        &screenshot,
        &[
            "--proxy-url",
            "unused",
            "--port",
            &port,
            "--user",
            "alice",
            "--pass",
            ALICE_PASSWORD,
            "--peer",
            "alice@localhost",
            "--timeout",
            "40",
            "--variants",
            &list,
        ],
    );
    let deadline =
        tokio::time::Instant::now() + BROWSER_DEADLINE * u32::try_from(variants.len()).unwrap_or(1);
    let mut steps = Vec::new();
    while let Some(step) = browser.next_step(deadline).await {
        steps.push(step);
    }
    let (status, console) = browser.finish().await;
    let logs: Vec<String> = servers.iter().map(|s| s.log_text()).collect();
    let context = |variant: &str| {
        let transcript = steps
            .iter()
            .filter(|(v, kind, _)| v == variant && kind != "in")
            .map(|(_, kind, text)| format!("[{kind}] {text}"))
            .collect::<Vec<_>>()
            .join("\n");
        format!(
            "variant {variant}:\n{transcript}\nbrowser console:\n{console}\nserver logs:\n{}",
            logs.join("\n----\n")
        )
    };
    // Every variant is checked before failing, so one run shows them all.
    let mut failures = Vec::new();
    for v in variants {
        let name = v.name;
        let jid = format!("alice@localhost/{name}");
        let mut at = 0;
        for (kind, needle) in [
            ("header", "from localhost".to_owned()),
            ("features", "PLAIN".to_owned()),
            ("auth", "success".to_owned()),
            ("bound", jid.clone()),
            ("presence", format!("{jid} available")),
            ("sent", format!("hello from {name}")),
            ("received", format!("{jid}: hello from {name}")),
            ("closed", "the server closed the stream".to_owned()),
        ] {
            let found = steps[at..]
                .iter()
                .position(|(var, k, t)| var == name && k == kind && t.contains(&needle));
            let Some(found) = found else {
                failures.push(format!(
                    "no [{kind}] step containing {needle:?} in order\n{}",
                    context(name)
                ));
                break;
            };
            at += found + 1;
        }
        if steps
            .iter()
            .any(|(var, kind, _)| var == name && kind == "error")
        {
            failures.push(format!("the widget reported an error\n{}", context(name)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n========\n"));
    assert!(status.success(), "the widget run failed ({status})");
}

/// What the variant tests run against: `web` with the defaults (c2s.require_encryption on)
/// for its /flash endpoint, where a Flash socket gets the Flash policy whatever header it
/// opens with; `raw` set up as the README tells an admin to for standard-header (XIFF 3
/// style) Flash clients on the c2s port, behind websockify; alice on both; the SWF.
struct Setup {
    web: TestServer,
    raw: TestServer,
    bridge: Websockify,
    swf: PathBuf,
    /// `ws://…/flash` of `web`.
    endpoint: String,
}

async fn setup() -> Setup {
    let web = TestServer::start();
    let raw = TestServer::start_with(
        TestConfig::default()
            .c2s("require_encryption = false")
            .c2s("allow_plain_without_tls = true"),
    );
    for server in [&web, &raw] {
        server.wait_started();
        server.add_user("alice@localhost", ALICE_PASSWORD);
    }
    let swf = build_widget(web.dir.path());
    let bridge = websockify(raw.c2s).await;
    Setup {
        endpoint: proxy_url(&web),
        web,
        raw,
        bridge,
        swf,
    }
}

fn variant<'a>(name: &'a str, header: &'a str, nul: bool, proxy_url: &'a str) -> Variant<'a> {
    Variant {
        name,
        header,
        nul,
        proxy_url,
    }
}

#[tokio::test]
async fn flash_widget_opens_each_way_through_the_flash_endpoint_and_the_raw_port() {
    let Setup {
        web,
        raw,
        bridge,
        swf,
        endpoint,
    } = setup().await;
    // Ruffle over wss:// too: the HTTPS listener must speak ALPN http/1.1 to Chromium.
    let https = web.listening("https").expect("the HTTPS listener");
    let endpoint_tls = format!("wss://{https}/flash");
    // flash + XMLSocket through ws://…/flash is the chat test above.
    run_variants(
        &swf,
        raw.c2s.port(),
        &[
            variant("flash-binary-endpoint", "flash", false, &endpoint),
            variant("standard-xmlsocket-endpoint", "standard", true, &endpoint),
            variant("standard-binary-endpoint", "standard", false, &endpoint),
            variant("standard-binary-wss", "standard", false, &endpoint_tls),
            variant("flash-xmlsocket-raw", "flash", true, &bridge.url),
            variant("flash-binary-raw", "flash", false, &bridge.url),
            variant("standard-binary-raw", "standard", false, &bridge.url),
            variant("standard-xmlsocket-raw", "standard", true, &bridge.url),
        ],
        &[&web, &raw],
    )
    .await;
    // Each went where it was sent: the endpoint's sessions are flash-websocket ones, the
    // raw port's plain c2s ones.
    let bound = |server: &TestServer, kind: &str, name: &str| {
        server.log_text().lines().any(|l| {
            l.contains(kind) && l.contains(&format!("resource bound jid=alice@localhost/{name}"))
        })
    };
    assert!(bound(&web, "flash-websocket", "standard-binary-endpoint"));
    assert!(bound(&raw, "kind=c2s}", "standard-binary-raw"));
}

#[tokio::test]
async fn flash_widget_opens_with_the_self_closed_standard_header() {
    // XIFF 3's default stream type ("terminatedStandard"): `<stream:stream .../>`, an open
    // stream for Openfire, through /flash (both sockets) and on the raw port.
    let s = setup().await;
    let (endpoint, raw_port) = (&s.endpoint, &s.bridge.url);
    run_variants(
        &s.swf,
        s.raw.c2s.port(),
        &[
            variant("selfclosed-binary-endpoint", "selfclosed", false, endpoint),
            variant(
                "selfclosed-xmlsocket-endpoint",
                "selfclosed",
                true,
                endpoint,
            ),
            variant("selfclosed-binary-raw", "selfclosed", false, raw_port),
            variant("selfclosed-xmlsocket-raw", "selfclosed", true, raw_port),
        ],
        &[&s.web, &s.raw],
    )
    .await;
}
