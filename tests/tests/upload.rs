//! XEP-0363 HTTP file upload end to end: slixmpp's own xep_0363 plugin finds the service
//! through disco, gets a slot and PUTs a file that another account downloads byte for
//! byte; slot requests are checked (size, content type, who asks); PUTs are checked
//! (size, type, token, expiry, a second PUT); a killed upload leaves no file and takes no
//! quota; the quota holds over a bounded loop of uploads, racing ones included; files and
//! quota survive a restart on SQLite and PostgreSQL; the expiry sweep forgets slots whose
//! PUT never came; a removed account's uploads go with it, with a running server and
//! without; CORS preflights are answered;
//! Converse.js in headless Chromium uploads an image (cross-origin, from the server's chat
//! page) that slixmpp downloads byte for byte.

use std::time::Duration;

use jabberwock_tests::browser::{with_chat_page, NodeRun};
use jabberwock_tests::http::request as http;
use jabberwock_tests::muc::{iq, log_in};
use jabberwock_tests::postgres::Scratch;
use jabberwock_tests::slix::SlixIm;
use jabberwock_tests::upload::{config, file_bytes, path_of, put, put_path, request_slot, SERVICE};
use jabberwock_tests::{RawClient, TestConfig, TestServer, WAIT};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// The last event whose name starts with `event` that `client` reported.
fn last_event(client: &SlixIm, event: &str) -> serde_json::Value {
    let needle = format!("\"event\": \"{event}");
    let line = client.events.iter().rev().find(|l| l.contains(&needle));
    json(line.unwrap_or_else(|| panic!("no {event} event in {:?}", client.events)))
}

/// slix_upload.py logged in as `user@localhost/desk` (password `pw-USER`, made by `log_in`).
async fn slix(server: &TestServer, user: &str) -> SlixIm {
    let mut client = SlixIm::spawn_script(
        "slix_upload.py",
        &format!("{user}@localhost/desk"),
        &format!("pw-{user}"),
        server.c2s.port(),
        &server.cert_path(),
    );
    client.expect_all(&["session_start"]).await;
    client
}

#[tokio::test]
async fn slixmpp_uploads_and_another_account_downloads_byte_for_byte() {
    let server = TestServer::start_with(config(&["max_file_size = 1000000"]));
    server.wait_started();
    log_in(&server, &["alice", "bob"]).await;
    let bytes = file_bytes(300_000, 1);
    let file = server.dir.path().join("cat picture.png");
    std::fs::write(&file, &bytes).unwrap();

    let mut alice = slix(&server, "alice").await;
    alice
        .command(&format!(
            r#"{{"cmd": "upload", "path": {:?}, "content_type": "image/png"}}"#,
            file.display().to_string()
        ))
        .await;
    let uploaded = last_event(&alice, "upload");
    assert_eq!(uploaded["event"], "uploaded", "{uploaded}");
    // Found through the host's disco#items and the service's disco#info, with its limit.
    assert_eq!(uploaded["service"], SERVICE);
    assert_eq!(uploaded["max_file_size"], 1_000_000);
    let url = uploaded["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!(
            "http://localhost:{}/upload/",
            server.http.unwrap().port()
        )) && url.ends_with("/cat%20picture.png"),
        "{url}"
    );

    let mut bob = slix(&server, "bob").await;
    bob.command(&format!(r#"{{"cmd": "download", "url": "{url}"}}"#))
        .await;
    let downloaded = last_event(&bob, "downloaded");
    assert_eq!(downloaded["status"], 200);
    assert_eq!(downloaded["length"], bytes.len());
    assert_eq!(downloaded["sha1"], sha1_hex(&bytes));
    assert_eq!(downloaded["content_type"], "image/png");
    assert_eq!(downloaded["nosniff"], "nosniff");
    assert_eq!(
        downloaded["disposition"],
        "inline; filename*=UTF-8''cat%20picture.png"
    );
    // And HEAD says the same without the body.
    let head = http(server.http.unwrap(), "HEAD", &path_of(&url), &[], vec![]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("300000"));
    assert!(head.body.is_empty());
    assert!(alice.quit().await && bob.quit().await);
}

#[tokio::test]
async fn slot_requests_are_checked() {
    let server = TestServer::start_with(
        config(&[
            "max_file_size = 5000",
            "denied_content_types = [\"text/html\"]",
        ])
        .host("localhost", "anonymous = true"),
    );
    server.wait_started();
    let mut users = log_in(&server, &["alice"]).await;
    let alice = &mut users[0];

    // §3: the service is listed by the host and says what it is and its limit.
    let items = iq(
        alice,
        "items",
        "get",
        "localhost",
        "<query xmlns='http://jabber.org/protocol/disco#items'/>",
    )
    .await;
    assert!(items.contains(&format!("jid=\"{SERVICE}\"")), "{items}");
    let info = iq(
        alice,
        "info",
        "get",
        SERVICE,
        "<query xmlns='http://jabber.org/protocol/disco#info'/>",
    )
    .await;
    for needle in [
        "category=\"store\"",
        "type=\"file\"",
        "var=\"urn:xmpp:http:upload:0\"",
        "<field var=\"max-file-size\"><value>5000</value></field>",
    ] {
        assert!(info.contains(needle), "{needle} in {info}");
    }

    // §6.1: too large, with the maximum.
    let too_large = request_slot(alice, "big", "a.bin", 5001, "application/octet-stream").await;
    for needle in [
        "type=\"error\"",
        "<not-acceptable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>",
        "<file-too-large xmlns=\"urn:xmpp:http:upload:0\"><max-file-size>5000</max-file-size></file-too-large>",
    ] {
        assert!(too_large.contains(needle), "{needle} in {too_large}");
    }
    let exact = request_slot(alice, "max", "a.bin", 5000, "application/octet-stream").await;
    assert!(
        exact.contains("<slot xmlns=\"urn:xmpp:http:upload:0\">"),
        "{exact}"
    );
    let denied = request_slot(alice, "html", "a.html", 10, "text/html").await;
    assert!(denied.contains("<not-acceptable"), "{denied}");
    for (id, payload) in [
        (
            "nosize",
            "<request xmlns='urn:xmpp:http:upload:0' filename='a'/>",
        ),
        (
            "badsize",
            "<request xmlns='urn:xmpp:http:upload:0' filename='a' size='ten'/>",
        ),
        (
            "path",
            "<request xmlns='urn:xmpp:http:upload:0' filename='../a' size='1'/>",
        ),
    ] {
        let answer = iq(alice, id, "get", SERVICE, payload).await;
        assert!(answer.contains("<bad-request"), "{id}: {answer}");
    }

    // A SASL ANONYMOUS guest is no account of the host's to keep files for.
    let (mut guest, _) = RawClient::login_anonymous(server.c2s, &server.cert_path(), "g").await;
    let refused = request_slot(&mut guest, "guest", "a.png", 10, "image/png").await;
    assert!(refused.contains("<forbidden"), "{refused}");
}

#[tokio::test]
async fn puts_are_checked() {
    let server = TestServer::start_with(config(&["slot_lifetime = 1"]));
    server.wait_started();
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let addr = server.http.unwrap();
    let body = file_bytes(1000, 2);

    let slot = request_slot(&mut users[0], "s1", "a.png", 1000, "image/png").await;
    let path = put_path(&slot);
    // Nothing to get yet.
    assert_eq!(http(addr, "GET", &path, &[], vec![]).await.status, 404);
    // The slot's size, and its type, or nothing is taken.
    let longer = put(addr, &path, "image/png", file_bytes(1001, 2)).await;
    assert_eq!(longer.status, 413);
    let shorter = put(addr, &path, "image/png", file_bytes(999, 2)).await;
    assert_eq!(shorter.status, 400);
    let wrong_type = put(addr, &path, "text/html", body.clone()).await;
    assert_eq!(wrong_type.status, 415);
    // The token is the slot id: another one, or another slot's file name, is no slot.
    let (id, name) = path.trim_start_matches("/upload/").split_once('/').unwrap();
    let forged = format!(
        "/upload/{}{}/{name}",
        &id[..31],
        if id.ends_with('0') { "1" } else { "0" }
    );
    assert_eq!(
        put(addr, &forged, "image/png", body.clone()).await.status,
        404
    );
    let bobs = request_slot(&mut users[1], "s2", "b.png", 1000, "image/png").await;
    let bobs_path = put_path(&bobs);
    let bobs_id = bobs_path.split('/').nth(2).unwrap();
    let mixed = format!("/upload/{bobs_id}/{name}");
    assert_eq!(
        put(addr, &mixed, "image/png", body.clone()).await.status,
        404
    );
    assert_eq!(
        put(addr, "/upload/../../etc/passwd", "image/png", body.clone())
            .await
            .status,
        404
    );

    let first = put(addr, &path, "image/png", body.clone()).await;
    assert_eq!(
        first.status,
        201,
        "{:?}",
        String::from_utf8_lossy(&first.body)
    );
    // A slot takes one file.
    let again = put(addr, &path, "image/png", file_bytes(1000, 3)).await;
    assert_eq!(again.status, 409);
    let got = http(addr, "GET", &path, &[], vec![]).await;
    assert_eq!((got.status, got.body == body), (200, true));

    // A slot's PUT must come within slot_lifetime: bob's waited longer.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = put(addr, &bobs_path, "image/png", body).await;
    assert_eq!(late.status, 403);
    assert_eq!(http(addr, "GET", &bobs_path, &[], vec![]).await.status, 404);
}

/// Files in `data/uploads/tmp`.
fn partial_files(server: &TestServer) -> usize {
    std::fs::read_dir(server.dir.path().join("data/uploads/tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A PUT of `body` (`application/octet-stream`) over raw TCP, sent up to its middle and
/// held there once the server has started writing it: the rest is the caller's to send,
/// or not.
async fn put_half(server: &TestServer, path: &str, body: &[u8]) -> tokio::net::TcpStream {
    let addr = server.http.unwrap();
    let size = body.len();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&body[..size / 2]).await.unwrap();
    tcp.flush().await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while partial_files(server) == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(partial_files(server), 1, "the PUT never started writing");
    tcp
}

/// Alice, logged in, and the path of a slot she was given for `size` bytes of `a.bin`.
async fn alice_with_slot(server: &TestServer, size: usize) -> (RawClient, String) {
    let mut alice = log_in(server, &["alice"]).await.remove(0);
    let slot = request_slot(&mut alice, "s1", "a.bin", size, "application/octet-stream").await;
    (alice, put_path(&slot))
}

#[tokio::test]
async fn a_killed_upload_leaves_no_file_and_takes_no_quota() {
    let size = 200_000;
    let server = TestServer::start_with(config(&[&format!("quota = {size}")]));
    server.wait_started();
    let (mut alice, path) = alice_with_slot(&server, size).await;
    let addr = server.http.unwrap();
    let body = file_bytes(size, 4);

    // Half the body, until the server has started writing it, then the client is gone.
    drop(put_half(&server, &path, &body).await);
    let deadline = tokio::time::Instant::now() + WAIT;
    while partial_files(&server) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(partial_files(&server), 0, "the partial file stays");
    assert_eq!(http(addr, "GET", &path, &[], vec![]).await.status, 404);

    // No quota was used: the whole quota's worth still gets a slot, and the killed slot
    // itself takes its file whole.
    let second = request_slot(&mut alice, "s2", "b.bin", size, "application/octet-stream").await;
    assert!(second.contains("<slot"), "{second}");
    let whole = put(addr, &path, "application/octet-stream", body.clone()).await;
    assert_eq!(whole.status, 201);
    let got = http(addr, "GET", &path, &[], vec![]).await;
    assert!(got.body == body);
}

/// Exactly `quota / size` uploads (four) succeed however they are asked for: slots in a loop, and
/// slots given together whose PUTs race (only complete files count, so all are given and
/// the last to complete is refused).
#[tokio::test]
async fn the_quota_holds_under_a_bounded_loop_of_uploads() {
    let size = 10_000;
    let server = TestServer::start_with(config(&[&format!("quota = {}", size * 4)]));
    server.wait_started();
    let mut users = log_in(&server, &["alice"]).await;
    let addr = server.http.unwrap();

    // Four slots at once, four PUTs at once: the quota takes three more after this one.
    let first = request_slot(
        &mut users[0],
        "s0",
        "0.bin",
        size,
        "application/octet-stream",
    )
    .await;
    assert_eq!(
        put(
            addr,
            &put_path(&first),
            "application/octet-stream",
            file_bytes(size, 10)
        )
        .await
        .status,
        201
    );
    let mut paths = Vec::new();
    for i in 1..=4 {
        let slot = request_slot(
            &mut users[0],
            &format!("r{i}"),
            &format!("{i}.bin"),
            size,
            "application/octet-stream",
        )
        .await;
        paths.push(put_path(&slot));
    }
    let puts = paths.iter().enumerate().map(|(i, p)| {
        put(
            addr,
            p,
            "application/octet-stream",
            file_bytes(size, 20 + i as u32),
        )
    });
    let mut statuses: Vec<u16> = futures::future::join_all(puts)
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    statuses.sort();
    assert_eq!(statuses, [201, 201, 201, 413]);

    // Full now: a bounded loop of further requests all get resource-constraint.
    let mut refused = 0;
    for i in 0..5 {
        let answer = request_slot(
            &mut users[0],
            &format!("q{i}"),
            "x.bin",
            1,
            "application/octet-stream",
        )
        .await;
        if answer.contains("<resource-constraint") && answer.contains("quota") {
            refused += 1;
        }
    }
    assert_eq!(refused, 5);
    assert_eq!(
        std::fs::read_dir(server.dir.path().join("data/uploads"))
            .unwrap()
            .count(),
        1 + 4
    );
}

/// Uploads a file as alice, restarts, and checks it is served the same and still counts.
async fn survives_restart(config: TestConfig) {
    let size = 50_000;
    let mut server = TestServer::start_with(config);
    server.wait_started();
    let mut users = log_in(&server, &["alice"]).await;
    let body = file_bytes(size, 5);
    let slot = request_slot(&mut users[0], "s1", "kept.png", size, "image/png").await;
    let path = put_path(&slot);
    let put = put(server.http.unwrap(), &path, "image/png", body.clone()).await;
    assert_eq!(put.status, 201);
    drop(users);
    server.terminate();
    // What a killed run would leave half-written is gone after the start.
    let stale = server.dir.path().join("data/uploads/tmp/0123.part");
    std::fs::write(&stale, b"half").unwrap();
    server.restart();
    assert!(!stale.exists());
    let got = http(server.http.unwrap(), "GET", &path, &[], vec![]).await;
    assert_eq!(got.status, 200);
    assert!(got.body == body, "not the same bytes");
    assert_eq!(got.header("content-type"), Some("image/png"));
    // The quota still counts it.
    let (mut alice, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "pw-alice", "desk")
            .await;
    let full = request_slot(&mut alice, "s2", "more.png", 1, "image/png").await;
    assert!(full.contains("<resource-constraint"), "{full}");
}

#[tokio::test]
async fn a_file_survives_a_restart_on_sqlite() {
    survives_restart(config(&["quota = 50000"])).await;
}

#[tokio::test]
async fn a_file_survives_a_restart_on_postgresql() {
    let db = Scratch::create().await;
    survives_restart(config(&["quota = 50000"]).storage(&db.url())).await;
    db.drop_now().await;
}

#[tokio::test]
async fn cors_preflight_and_cross_origin_get() {
    let server = TestServer::start_with(config(&[]));
    server.wait_started();
    let mut users = log_in(&server, &["alice"]).await;
    let addr = server.http.unwrap();
    let slot = request_slot(&mut users[0], "s1", "a.png", 3, "image/png").await;
    let path = put_path(&slot);
    let origin = "http://chat.example";
    let preflight = http(
        addr,
        "OPTIONS",
        &path,
        &[
            ("origin", origin),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "content-type"),
        ],
        vec![],
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(origin)
    );
    let methods = preflight.header("access-control-allow-methods").unwrap();
    assert!(
        methods.contains("PUT") && methods.contains("GET"),
        "{methods}"
    );
    let allowed = preflight.header("access-control-allow-headers").unwrap();
    assert!(
        allowed.to_ascii_lowercase().contains("content-type"),
        "{allowed}"
    );

    let headers = [
        ("origin", origin),
        ("content-type", "image/png"),
        ("content-length", "3"),
    ];
    let put = http(addr, "PUT", &path, &headers, b"abc".to_vec()).await;
    assert_eq!(put.status, 201);
    assert_eq!(put.header("access-control-allow-origin"), Some(origin));
    let got = http(addr, "GET", &path, &[("origin", origin)], vec![]).await;
    assert_eq!((got.status, got.body.as_slice()), (200, &b"abc"[..]));
    assert_eq!(got.header("access-control-allow-origin"), Some(origin));
}

/// Converse.js 14 (the server's chat page, in headless Chromium) sends bob a picture with
/// its own XEP-0363 upload: disco, slot, a cross-origin PUT from the page (the slot URL
/// names `localhost`, the page is at 127.0.0.1), the URL in a message; bob, on slixmpp,
/// gets the message and downloads the picture byte for byte.
#[tokio::test]
async fn converse_uploads_an_image_that_slixmpp_downloads_byte_for_byte() {
    let server = TestServer::start_with(with_chat_page(config(&[])));
    server.wait_started();
    log_in(&server, &["alice", "bob"]).await;
    let mut bob = slix(&server, "bob").await;
    bob.command(r#"{"cmd": "available"}"#).await;
    let bytes = file_bytes(150_000, 6);
    let file = server.dir.path().join("picture.png");
    std::fs::write(&file, &bytes).unwrap();

    let base = format!("http://{}", server.http.unwrap());
    let mut browser = NodeRun::converse(
        "converse_upload.mjs",
        &base,
        "alice",
        &[
            "--to".as_ref(),
            "bob@localhost".as_ref(),
            "--file".as_ref(),
            file.as_os_str(),
            "--name".as_ref(),
            "picture.png".as_ref(),
            "--type".as_ref(),
            "image/png".as_ref(),
        ],
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut events = Vec::new();
    let mut url = None;
    while let Some(event) = browser.next_json(deadline).await {
        if event["kind"] == "uploaded" {
            url = event["oob_url"].as_str().map(str::to_owned);
        }
        events.push(event);
    }
    let (status, console) = browser.finish().await;
    let url = url.unwrap_or_else(|| panic!("no upload: {events:?}\n{console}"));
    assert!(status.success(), "{events:?}\n{console}");
    assert!(url.ends_with("/picture.png"), "{url}");

    // The URL came to bob in Converse's message; he fetches what it names.
    let received = bob
        .expect_all(&["\"event\": \"received\"", "/upload/"])
        .await;
    assert_eq!(json(&received)["body"], url.as_str());
    bob.command(&format!(r#"{{"cmd": "download", "url": "{url}"}}"#))
        .await;
    let downloaded = last_event(&bob, "downloaded");
    assert_eq!(downloaded["status"], 200);
    assert_eq!(downloaded["sha1"], sha1_hex(&bytes));
    assert_eq!(downloaded["content_type"], "image/png");
    assert!(bob.quit().await);
}

/// The expiry sweep (at start, then hourly) forgets a slot whose PUT never came in time:
/// its URL is then unknown rather than expired.
#[tokio::test]
async fn an_expired_slot_is_swept() {
    let mut server = TestServer::start_with(config(&["slot_lifetime = 1"]));
    server.wait_started();
    let mut users = log_in(&server, &["alice"]).await;
    let slot = request_slot(&mut users[0], "s1", "late.png", 3, "image/png").await;
    let path = put_path(&slot);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = put(server.http.unwrap(), &path, "image/png", b"abc".to_vec()).await;
    assert_eq!(expired.status, 403);
    drop(users);
    server.terminate();
    server.restart();
    assert!(
        server.wait_log("removed expired uploads"),
        "{}",
        server.log_text()
    );
    let swept = put(server.http.unwrap(), &path, "image/png", b"abc".to_vec()).await;
    assert_eq!(swept.status, 404);
}

/// The slot id in a slot URL's path, `/upload/ID/NAME`: the file's name on disk.
fn slot_id(path: &str) -> &str {
    path.split('/').nth(2).expect("slot id")
}

/// Alice and bob each upload a file and alice has a slot waiting for its PUT; alice's
/// account is removed (through the running server, or with it stopped); then her file
/// is no longer served, nor on disk, and her waiting slot takes no PUT; bob's file is
/// served as before.
async fn uploads_go_with_the_account(server_running: bool) {
    let mut server = TestServer::start_with(config(&[]));
    server.wait_started();
    let mut users = log_in(&server, &["alice", "bob"]).await;
    let addr = server.http.unwrap();
    let mut files = Vec::new();
    for (user, seed) in users.iter_mut().zip([30, 31]) {
        let body = file_bytes(1000, seed);
        let slot = request_slot(user, "s1", "a.png", 1000, "image/png").await;
        let path = put_path(&slot);
        assert_eq!(
            put(addr, &path, "image/png", body.clone()).await.status,
            201
        );
        let got = http(addr, "GET", &path, &[], vec![]).await;
        assert_eq!((got.status, got.body == body), (200, true));
        files.push((path, body));
    }
    let waiting = put_path(&request_slot(&mut users[0], "s2", "b.png", 3, "image/png").await);
    drop(users);
    let uploads = server.dir.path().join("data/uploads");
    let [(alices, _), (bobs, bobs_body)] = &files[..] else {
        unreachable!()
    };
    assert!(uploads.join(slot_id(alices)).exists());

    if server_running {
        server.remove_user("alice@localhost");
    } else {
        server.terminate();
        server.remove_user("alice@localhost");
        server.restart();
    }
    let addr = server.http.unwrap();
    assert_eq!(http(addr, "GET", alices, &[], vec![]).await.status, 404);
    assert!(
        !uploads.join(slot_id(alices)).exists(),
        "alice's file stays"
    );
    assert_eq!(
        put(addr, &waiting, "image/png", b"abc".to_vec())
            .await
            .status,
        404
    );
    assert!(!uploads.join(slot_id(&waiting)).exists());
    assert_eq!(partial_files(&server), 0);
    let got = http(addr, "GET", bobs, &[], vec![]).await;
    assert_eq!((got.status, &got.body == bobs_body), (200, true));
    assert!(uploads.join(slot_id(bobs)).exists());
}

#[tokio::test]
async fn a_removed_accounts_uploads_go_with_it() {
    uploads_go_with_the_account(true).await;
}

/// A file no slot names (its upload expired or its account went while the file could not
/// be deleted) is removed at the next start; uploads that have their slot stay, and so
/// does a file whose name is no slot id (not one of ours).
#[tokio::test]
async fn a_file_no_slot_names_is_removed_at_the_next_start() {
    let mut server = TestServer::start_with(config(&[]));
    server.wait_started();
    let mut users = log_in(&server, &["alice"]).await;
    let body = file_bytes(1000, 40);
    let path = put_path(&request_slot(&mut users[0], "s1", "a.png", 1000, "image/png").await);
    let addr = server.http.unwrap();
    assert_eq!(
        put(addr, &path, "image/png", body.clone()).await.status,
        201
    );
    drop(users);
    server.terminate();
    let uploads = server.dir.path().join("data/uploads");
    let orphan = uploads.join("0123456789abcdef0123456789abcdef");
    std::fs::write(&orphan, b"left behind").expect("write a file of no slot");
    let foreign = uploads.join("README.txt");
    std::fs::write(&foreign, b"not ours").expect("write a foreign file");

    server.restart();
    let deadline = tokio::time::Instant::now() + WAIT;
    while orphan.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the file of no slot stays: {}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(foreign.exists());
    let got = http(server.http.unwrap(), "GET", &path, &[], vec![]).await;
    assert_eq!((got.status, got.body == body), (200, true));
}

#[tokio::test]
async fn an_account_removed_while_the_server_is_stopped_takes_its_uploads() {
    uploads_go_with_the_account(false).await;
}

/// A PUT whose body is still coming when its owner's account is removed gets 404 when it
/// ends, and leaves no file, complete or partial.
#[tokio::test]
async fn a_put_in_flight_for_a_removed_account_leaves_no_file() {
    let size = 100_000;
    let server = TestServer::start_with(config(&[]));
    server.wait_started();
    let (alice, path) = alice_with_slot(&server, size).await;
    drop(alice);
    let addr = server.http.unwrap();
    let body = file_bytes(size, 32);

    let mut tcp = put_half(&server, &path, &body).await;
    server.remove_user("alice@localhost");
    tcp.write_all(&body[size / 2..]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut answer))
        .await
        .expect("no answer to the PUT")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert_eq!(partial_files(&server), 0);
    assert!(!server
        .dir
        .path()
        .join("data/uploads")
        .join(slot_id(&path))
        .exists());
    assert_eq!(http(addr, "GET", &path, &[], vec![]).await.status, 404);
}
