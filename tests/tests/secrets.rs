//! What the server keeps secret or must get exactly right about secrets: the SCRAM salt it
//! shows for unknown users (derived from a secret of its own), passwords in either Unicode
//! form (RFC 8265 OpaqueString), and the lifetime of its generated certificate.

use std::path::Path;
use std::process::Command;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jabberwock_tests::raw::FLASH_HEADER;
use jabberwock_tests::slix::Slix;
use jabberwock_tests::{RawClient, TestConfig, TestServer};

/// The salt of the server-first-message a SCRAM-SHA-256 exchange for `user` gets.
async fn scram_salt(server: &TestServer, user: &str) -> String {
    let mut c = RawClient::connect(server.c2s).await;
    c.send(FLASH_HEADER).await;
    c.read_unit().await;
    c.read_unit().await;
    let first = B64.encode(format!("n,,n={user},r=fyko+d2lbbFgONRv9qkxdawL"));
    c.send(format!(
        "<auth xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\" mechanism=\"SCRAM-SHA-256\">{first}</auth>\0"
    ))
    .await;
    let challenge = c.read_unit().await;
    let payload = challenge
        .split('>')
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no challenge: {challenge}"));
    let server_first = String::from_utf8(B64.decode(payload).expect("base64")).unwrap();
    server_first
        .split(',')
        .find_map(|field| field.strip_prefix("s="))
        .unwrap_or_else(|| panic!("no salt in {server_first}"))
        .to_owned()
}

#[tokio::test]
async fn unknown_users_get_a_salt_only_this_server_can_compute() {
    let mut one = TestServer::start();
    let two = TestServer::start();
    let salt = scram_salt(&one, "nobody").await;
    // Stable for one server, as a real account's salt is, so probing shows nothing...
    assert_eq!(scram_salt(&one, "nobody").await, salt);
    // ...but not the same on another server: it comes from a secret, not a public seed.
    assert_ne!(scram_salt(&two, "nobody").await, salt);
    assert_ne!(scram_salt(&one, "somebody").await, salt);

    // The secret is kept in data_dir, readable by the server's user only.
    let key = one.dir.path().join("data").join("decoy-salt.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)
            .expect("decoy key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    one.terminate();
    one.restart();
    assert_eq!(scram_salt(&one, "nobody").await, salt);
}

// "é" composed (U+00E9) and decomposed (e + U+0301), and a no-break space (U+00A0) that
// RFC 8265 OpaqueString maps to an ASCII space.
const STORED: &str = "caf\u{e9}\u{a0}Sp\u{e4}t-1";
const TYPED: &str = "cafe\u{301} Spa\u{308}t-1";

#[tokio::test]
async fn a_password_matches_in_either_unicode_form() {
    let server = TestServer::start();
    server.add_user("alice@localhost", STORED);

    // SASL PLAIN (checked by the server) with the other form.
    let (_plain, jid) = RawClient::login_flash(server.c2s, "alice", TYPED, "plain").await;
    assert_eq!(jid, "alice@localhost/plain");

    // SCRAM (the client derives the key; slixmpp applies SASLprep first) with both forms.
    for (resource, password) in [("typed", TYPED), ("stored", STORED)] {
        let jid = format!("alice@localhost/{resource}");
        let mut slix = Slix::login(&server, &jid, password, "SCRAM-SHA-256", &[]);
        let start = slix.expect("session_start").await;
        assert!(start.contains(&jid), "{start}");
        assert!(
            slix.finish().await,
            "slixmpp with the {resource} form failed"
        );
    }

    // A password changed to one form works in the other too.
    let out = server.cli(
        &["user", "passwd", "alice@localhost"],
        &format!("{TYPED}2\n"),
    );
    assert!(out.status.success());
    RawClient::login_flash(server.c2s, "alice", &format!("{STORED}2"), "again").await;
}

/// `openssl x509 -checkend`: whether the certificate is still valid `days` from now.
fn valid_in(cert: &Path, days: u64) -> bool {
    let status = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-checkend",
            &(days * 86_400).to_string(),
            "-in",
        ])
        .arg(cert)
        .output()
        .expect("openssl");
    status.status.success()
}

/// A self-signed pair for localhost valid `days` days, made by openssl (not by us).
fn openssl_pair(cert: &Path, key: &Path, days: u32) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args([
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .args(["-days", &days.to_string(), "-keyout"])
        .arg(key)
        .arg("-out")
        .arg(cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_generated_certificate_is_valid_a_year_and_renewed_before_it_ends() {
    let mut server = TestServer::start();
    let cert = server.cert_path();
    // Bounded: valid now and in 360 days, not in 370.
    assert!(valid_in(&cert, 0) && valid_in(&cert, 360), "too short");
    assert!(!valid_in(&cert, 370), "valid for more than a year");

    // A generated certificate with 10 days left is replaced at the next start.
    server.terminate();
    let key = server.dir.path().join("data").join("key.pem");
    openssl_pair(&cert, &key, 10);
    let planted = std::fs::read(&cert).unwrap();
    server.restart();
    let renewed = std::fs::read(&cert).unwrap();
    assert_ne!(renewed, planted, "the ending certificate was kept");
    assert!(
        valid_in(&cert, 360),
        "the new certificate is not a fresh one"
    );
    // And it is the one served: a client pinning the new file completes TLS.
    server.add_user("alice@localhost", "wonderland");
    let (_c, jid) =
        RawClient::login_direct_tls(server.direct_tls, &cert, "alice", "wonderland", "r").await;
    assert_eq!(jid, "alice@localhost/r");
}

#[tokio::test]
async fn a_configured_certificate_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    openssl_pair(&cert, &key, 10);
    let before = std::fs::read(&cert).unwrap();
    let server = TestServer::start_with(
        TestConfig::default()
            .section("tls", &format!("cert = {:?}", cert.display().to_string()))
            .section("tls", &format!("key = {:?}", key.display().to_string())),
    );
    server.wait_started();
    assert_eq!(std::fs::read(&cert).unwrap(), before);
    assert!(
        !server.cert_path().exists(),
        "a certificate was generated anyway"
    );
}
