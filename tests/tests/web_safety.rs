//! Web safety (server/src/http/safety.rs): the layers around every HTTP route of
//! the `[http]` listener. Origin allow-list and CORS (`http.allowed_origins`), who the
//! client is behind a reverse proxy (`http.trusted_proxies` + `X-Forwarded-For`), the body
//! size limit (`http.max_request_bytes`, 413), the per-client rate limit
//! (`http.max_requests_per_second`, 429), and a bad request never taking the server down.
//! Raw HTTP/1.1 over loopback TCP, so every byte sent is the test's own.

use std::net::SocketAddr;

use jabberwock_tests::{RawClient, TestConfig, TestServer, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A parsed HTTP response.
#[derive(Debug)]
struct Response {
    status: u16,
    /// Header names lowercased, in order.
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` (the raw bytes) on a fresh connection and reads the response until the
/// server closes it (every request says `Connection: close`).
async fn send_raw(addr: SocketAddr, request: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to the HTTP listener");
    stream.write_all(request).await.expect("send the request");
    let mut bytes = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut bytes))
        .await
        .expect("the server did not answer and close in time")
        .expect("read the response");
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Response {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// `method path` with `headers` (each "Name: value") and an optional body.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> Response {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    send_raw(addr, req.as_bytes()).await
}

fn http(server: &TestServer) -> SocketAddr {
    server.http.expect("the test server has an HTTP listener")
}

/// The chat page's help text (no `chat_assets`) is a route that exists in every config.
const PAGE: &str = "/chat";

#[tokio::test]
async fn forbidden_origin_gets_403_and_allowed_or_own_origin_does_not() {
    let server = TestServer::start_with(
        TestConfig::default().section("http", "allowed_origins = [\"https://good.example\"]"),
    );
    let addr = http(&server);
    let evil = request(addr, "GET", PAGE, &["Origin: https://evil.example"], "").await;
    assert_eq!(evil.status, 403, "{evil:?}");
    assert_eq!(evil.header("access-control-allow-origin"), None);
    assert!(server.wait_log("origin not in http.allowed_origins"));

    // A WebSocket upgrade from a forbidden page is refused before any handler runs.
    let ws = request(
        addr,
        "GET",
        "/xmpp-websocket",
        &[
            "Origin: https://evil.example",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Protocol: xmpp",
        ],
        "",
    )
    .await;
    assert_eq!(ws.status, 403, "{ws:?}");

    // The listed origin, the server's own origin and a non-browser client are served.
    let good = request(addr, "GET", PAGE, &["Origin: https://good.example"], "").await;
    assert_ne!(good.status, 403, "{good:?}");
    let own = request(addr, "GET", PAGE, &[&format!("Origin: http://{addr}")], "").await;
    assert_ne!(own.status, 403, "{own:?}");
    let none = request(addr, "GET", PAGE, &[], "").await;
    assert_ne!(none.status, 403, "{none:?}");
}

#[tokio::test]
async fn allowed_origin_gets_cors_headers_on_preflight_and_actual_requests() {
    let server = TestServer::start_with(
        TestConfig::default().section("http", "allowed_origins = [\"https://good.example\"]"),
    );
    let addr = http(&server);
    let preflight = request(
        addr,
        "OPTIONS",
        "/http-bind",
        &[
            "Origin: https://good.example",
            "Access-Control-Request-Method: POST",
            "Access-Control-Request-Headers: content-type",
        ],
        "",
    )
    .await;
    assert_eq!(preflight.status, 204, "{preflight:?}");
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://good.example")
    );
    let methods = preflight
        .header("access-control-allow-methods")
        .unwrap_or_default();
    assert!(methods.contains("POST"), "{preflight:?}");
    assert!(
        preflight
            .header("access-control-allow-headers")
            .unwrap_or_default()
            .eq_ignore_ascii_case("content-type"),
        "{preflight:?}"
    );
    assert!(preflight
        .header("vary")
        .unwrap_or_default()
        .contains("Origin"));

    let actual = request(addr, "GET", PAGE, &["Origin: https://good.example"], "").await;
    assert_eq!(
        actual.header("access-control-allow-origin"),
        Some("https://good.example"),
        "{actual:?}"
    );
    // A preflight from a page not listed gets neither CORS headers nor a 2xx.
    let evil = request(
        addr,
        "OPTIONS",
        "/http-bind",
        &[
            "Origin: https://evil.example",
            "Access-Control-Request-Method: POST",
        ],
        "",
    )
    .await;
    assert_eq!(evil.status, 403, "{evil:?}");
    assert_eq!(evil.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn empty_allow_list_allows_any_origin_with_cors() {
    let server = TestServer::start();
    let addr = http(&server);
    let response = request(addr, "GET", PAGE, &["Origin: https://anyone.example"], "").await;
    assert_ne!(response.status, 403, "{response:?}");
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("https://anyone.example")
    );
}

/// How many of `n` quick requests, each from `forwarded_for(i)`, got 429.
async fn count_throttled(
    addr: SocketAddr,
    n: usize,
    forwarded_for: impl Fn(usize) -> String,
) -> usize {
    let mut throttled = 0;
    for i in 0..n {
        let xff = format!("X-Forwarded-For: {}", forwarded_for(i));
        let response = request(addr, "GET", PAGE, &[&xff], "").await;
        if response.status == 429 {
            assert_eq!(response.header("retry-after"), Some("1"), "{response:?}");
            throttled += 1;
        }
    }
    throttled
}

#[tokio::test]
async fn rate_limit_answers_429_and_a_later_request_is_served() {
    let server = TestServer::start_with(
        TestConfig::default().section("http", "max_requests_per_second = 3"),
    );
    let addr = http(&server);
    let throttled = count_throttled(addr, 12, |_| "198.51.100.7".into()).await;
    assert!(
        throttled >= 6,
        "only {throttled} of 12 requests were refused"
    );
    assert!(server.wait_log("http.max_requests_per_second exceeded"));
    // The bucket refills: after a second, the same client is served again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = request(addr, "GET", PAGE, &[], "").await;
    assert_ne!(again.status, 429, "{again:?}");
}

#[tokio::test]
async fn forwarded_for_is_ignored_from_an_untrusted_peer() {
    // The proxy that is trusted is not us (127.0.0.1): our X-Forwarded-For is a lie.
    let server = TestServer::start_with(
        TestConfig::default()
            .section("http", "max_requests_per_second = 3")
            .section("http", "trusted_proxies = [\"192.0.2.1\", \"10.0.0.0/8\"]"),
    );
    let addr = http(&server);
    // A different forged address each time does not escape the limit of 127.0.0.1.
    let throttled = count_throttled(addr, 12, |i| format!("203.0.113.{i}")).await;
    assert!(
        throttled >= 6,
        "only {throttled} of 12 requests were refused"
    );
    let log = server.log_text();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("max_requests_per_second exceeded"))
        .collect();
    assert!(!refusals.is_empty());
    for line in &refusals {
        assert!(line.contains("client=127.0.0.1"), "{line}");
        assert!(!line.contains("203.0.113."), "{line}");
    }
}

#[tokio::test]
async fn forwarded_for_is_used_from_a_trusted_proxy() {
    let server = TestServer::start_with(
        TestConfig::default()
            .section("http", "max_requests_per_second = 3")
            .section("http", "trusted_proxies = [\"127.0.0.1\"]"),
    );
    let addr = http(&server);
    // Behind the trusted proxy, each client has its own budget.
    let distinct = count_throttled(addr, 12, |i| format!("203.0.113.{i}")).await;
    assert_eq!(distinct, 0, "distinct forwarded clients were throttled");
    // One client behind it is limited, and named in the log by its own address. The
    // entry left of the client's is whatever the client wrote itself, not believed.
    let same = count_throttled(addr, 12, |_| "6.6.6.6, 198.51.100.9".into()).await;
    assert!(same >= 6, "only {same} of 12 requests were refused");
    let log = server.log_text();
    let refusal = log
        .lines()
        .find(|l| l.contains("max_requests_per_second exceeded"))
        .expect("a logged refusal");
    assert!(refusal.contains("client=198.51.100.9"), "{refusal}");
    assert!(refusal.contains("peer=127.0.0.1:"), "{refusal}");
}

#[tokio::test]
async fn too_large_body_gets_413_declared_or_chunked() {
    let server =
        TestServer::start_with(TestConfig::default().section("http", "max_request_bytes = 2048"));
    let addr = http(&server);
    let big = "x".repeat(4096);
    let declared = request(addr, "POST", PAGE, &["Content-Type: text/xml"], &big).await;
    assert_eq!(declared.status, 413, "{declared:?}");
    assert!(server.wait_log("body larger than http.max_request_bytes"));
    // Within the limit, the same request is not refused for its size.
    let small = request(addr, "POST", PAGE, &["Content-Type: text/xml"], "<body/>").await;
    assert_ne!(small.status, 413, "{small:?}");

    // A chunked body has no Content-Length to check up front: it is cut off at the limit
    // as the endpoint reads it (BOSH at /http-bind, whose own limit is larger).
    let mut chunked = format!(
        "POST /http-bind HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    for _ in 0..4 {
        chunked.push_str(&format!("400\r\n{}\r\n", "y".repeat(1024)));
    }
    chunked.push_str("0\r\n\r\n");
    let response = send_raw(addr, chunked.as_bytes()).await;
    assert_eq!(response.status, 413, "{response:?}");
}

#[tokio::test]
async fn bad_requests_never_take_the_server_down() {
    let server = TestServer::start();
    let addr = http(&server);
    let junk: [&[u8]; 7] = [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nonsense\r\n\r\n",
        b"GET /chat/dist/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /nothing HTTP/1.1\r\nHost: x\r\nOrigin: \xff\xfe\r\nConnection: close\r\n\r\n",
        b"GET /nothing HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: \xff, ,,[::\r\nConnection: close\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"\x16\x03\x01\x00\x05hello",
    ];
    for bytes in junk {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(bytes).await.expect("send junk");
        let mut answer = Vec::new();
        // Whatever the answer (an HTTP error, or just a close), it comes and it is not a
        // file outside the assets.
        let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
            .await
            .expect("the server neither answered nor closed");
        let text = String::from_utf8_lossy(&answer);
        assert!(!text.contains("root:"), "{text}");
        if text.starts_with("HTTP/1.1 ") {
            let status = parse(&answer).status;
            assert!((400..500).contains(&status), "{text}");
        }
    }
    let huge_header = format!(
        "GET /chat HTTP/1.1\r\nHost: x\r\nX-Junk: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(200_000)
    );
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.write_all(huge_header.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("the server neither answered nor closed");

    // Still serving.
    let after = request(addr, "GET", PAGE, &[], "").await;
    assert_eq!(after.status, 503, "{after:?}");
    assert!(after.body.contains("converse.js"), "{after:?}");
}

#[tokio::test]
async fn an_http_connection_without_complete_headers_is_closed_after_the_timeout() {
    let server =
        TestServer::start_with(TestConfig::default().section("http", "header_timeout = 1"));
    server.wait_started();
    let started = std::time::Instant::now();
    // Silent on the plain listener, half a request on the TLS one and on a c2s port.
    let mut silent = RawClient::connect(server.http.expect("HTTP listener")).await;
    let https = server.listening("https").expect("HTTPS listener");
    let mut tls = RawClient::connect_tls(https, &server.cert_path()).await;
    tls.send("GET /chat HTTP/1.1\r\nHost: localhost\r\n").await;
    let mut c2s = RawClient::connect(server.c2s).await;
    c2s.send("GET /chat HTTP/1.1\r\nHost: localhost\r\n").await;
    for client in [&mut silent, &mut tls, &mut c2s] {
        let got = client.read_to_close().await;
        assert!(!got.contains("HTTP/1.1 200"), "{got}");
    }
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(6),
        "closed after {took:?}"
    );
    // The listener still serves complete requests.
    let ok = request(server.http.unwrap(), "GET", "/nothing", &[], "").await;
    assert_eq!(ok.status, 404, "{ok:?}");
}

#[tokio::test]
async fn every_open_http_connection_counts_against_max_connections() {
    // Every place is for a connection: an accept loop waiting on an idle listener (c2s,
    // direct TLS) holds none.
    let server = TestServer::start_with(TestConfig::default().c2s("max_connections = 2"));
    server.wait_started();
    let http = server.http.expect("HTTP listener");
    let https = server.listening("https").expect("HTTPS listener");
    // Two keep-alive connections, one plain and one TLS, each past one request (so the
    // server has surely accepted them), then idle.
    let keep_alive = "GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut plain = RawClient::connect(http).await;
    plain.send(keep_alive).await;
    assert!(plain
        .read_until("\r\n\r\n")
        .await
        .starts_with("HTTP/1.1 404"));
    let mut tls = RawClient::connect_tls(https, &server.cert_path()).await;
    tls.send(keep_alive).await;
    assert!(tls.read_until("\r\n\r\n").await.starts_with("HTTP/1.1 404"));
    // No permit left: a third connection is turned away, even for a WebSocket.
    let refused = request(http, "GET", "/nothing", &[], "").await;
    assert_eq!(
        (refused.status, refused.body.as_str()),
        (503, "too many connections\n")
    );
    let upgrade = [
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ];
    let refused = request(http, "GET", "/flash", &upgrade, "").await;
    assert_eq!(refused.status, 503, "{refused:?}");
    let https_refused = RawClient::connect_tls(https, &server.cert_path())
        .await
        .read_to_close()
        .await;
    assert!(https_refused.starts_with("HTTP/1.1 503"), "{https_refused}");
    // Once one closes, its permit serves the next connection, and an upgraded one keeps it.
    drop(plain);
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut flash = loop {
        let mut c = RawClient::connect(http).await;
        c.send(format!(
            "GET /flash HTTP/1.1\r\nHost: localhost\r\n{}\r\n\r\n",
            upgrade.join("\r\n")
        ))
        .await;
        let head = c.read_until("\r\n\r\n").await;
        if head.starts_with("HTTP/1.1 101") {
            break c;
        }
        assert!(head.starts_with("HTTP/1.1 503"), "{head}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the permit never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let refused = request(http, "GET", "/nothing", &[], "").await;
    assert_eq!(
        refused.status, 503,
        "the upgraded stream keeps the permit: {refused:?}"
    );
    flash.send(b"\x88\x80\0\0\0\0").await; // a masked close frame
    drop(flash);
    drop(tls);
}

/// Whether a request from `origin` is refused for it.
async fn refused_from(addr: SocketAddr, origin: &str) -> bool {
    let origin = format!("Origin: {origin}");
    request(addr, "GET", PAGE, &[&origin], "").await.status == 403
}

/// The status of a POST of `bytes` bytes to the chat page.
async fn post_of(addr: SocketAddr, bytes: usize) -> u16 {
    let body = "x".repeat(bytes);
    request(addr, "POST", PAGE, &["Content-Type: text/xml"], &body)
        .await
        .status
}

#[tokio::test]
async fn a_reload_changes_the_allowed_origins_body_limit_and_rate_at_the_next_request() {
    let before = TestConfig::default()
        .section("http", "allowed_origins = [\"https://old.example\"]")
        .section("http", "max_request_bytes = 2048");
    let server = TestServer::start_with(before.clone());
    let addr = http(&server);
    assert!(!refused_from(addr, "https://old.example").await);
    assert!(refused_from(addr, "https://new.example").await);
    assert_eq!(post_of(addr, 4096).await, 413);
    assert_eq!(
        count_throttled(addr, 12, |_| "198.51.100.9".into()).await,
        0
    );

    let after = TestConfig::default()
        .section("http", "allowed_origins = [\"https://new.example\"]")
        .section("http", "max_request_bytes = 8192");
    let out = server.reload_as(&after);
    for applied in [
        "applied: http.allowed_origins = [\"https://new.example\"]",
        "applied: http.max_request_bytes = 8192",
    ] {
        assert!(out.contains(applied), "{applied:?} not in:\n{out}");
    }
    assert!(!out.contains("needs a restart"), "{out}");
    assert!(refused_from(addr, "https://old.example").await);
    assert!(!refused_from(addr, "https://new.example").await);
    assert_ne!(post_of(addr, 4096).await, 413);
    assert_eq!(post_of(addr, 9000).await, 413);

    let out = server.reload_as(&after.section("http", "max_requests_per_second = 3"));
    assert!(
        out.contains("applied: http.max_requests_per_second = 3"),
        "{out}"
    );
    let throttled = count_throttled(addr, 12, |_| "198.51.100.9".into()).await;
    assert!(
        throttled >= 6,
        "only {throttled} of 12 requests were refused"
    );

    // Back again, once the bucket refilled: the first values hold once more.
    server.reload_as(&before);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        count_throttled(addr, 12, |_| "198.51.100.9".into()).await,
        0
    );
    assert!(!refused_from(addr, "https://old.example").await);
    assert_eq!(post_of(addr, 4096).await, 413);
}
