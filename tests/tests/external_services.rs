//! XEP-0215 external service discovery: the STUN/TURN servers of `[modules.external_services]`
//! asked for by slixmpp (tests/clients/slix_features.py, raw IQs through its API: it has no
//! plugin), with TURN REST API credentials checked against an HMAC-SHA-1 computed here, and
//! a guest, which is no account, refused.

use base64::Engine;
use hmac::{Hmac, Mac};
use jabberwock_tests::slix::SlixIm;
use jabberwock_tests::{RawClient, TestConfig, TestServer};

const SECRET: &str = "shared-with-coturn";
const TTL: i64 = 600;

fn server() -> TestServer {
    let section = "modules.external_services";
    TestServer::start_with(
        TestConfig::default()
            .host("localhost", "anonymous = true")
            .section(section, &format!("secret = {SECRET:?}"))
            .section(section, &format!("ttl = {TTL}"))
            .section(
                section,
                "services = [\
                 { type = \"stun\", host = \"stun.localhost\" }, \
                 { type = \"turn\", host = \"turn.localhost\", port = 3479, transport = \"udp\", \
                   restricted = true, name = \"Relay\" }]",
            ),
    )
}

/// The value of `"key": "…"` in a JSON line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line
        .find(&format!("\"{key}\": \""))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + key.len()
        + 5;
    let end = line[start..].find('"').expect("closing quote") + start;
    &line[start..end]
}

/// Checks TURN REST API credentials as coturn's `use-auth-secret` would: the user name is
/// `EXPIRY:ACCOUNT`, the expiry in the future but within the ttl, and the password
/// base64(HMAC-SHA-1(secret, user name)).
fn assert_valid_credentials(line: &str, account: &str) {
    let username = field(line, "username");
    let (expiry, user) = username.split_once(':').expect("EXPIRY:USER");
    assert_eq!(user, account, "{line}");
    let expiry: i64 = expiry.parse().expect("a Unix time");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(expiry > now && expiry <= now + TTL, "{line}");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(field(line, "password"), expected, "{line}");
    assert!(field(line, "expires").ends_with('Z'), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_gets_the_services_and_turn_credentials_a_guest_does_not() {
    let server = server();
    server.add_user("alice@localhost", "pw-alice");
    let mut alice =
        SlixIm::available(&server, "slix_features.py", "alice@localhost/a", "pw-alice").await;

    // XEP-0215 §3.1: the server says it has them.
    alice
        .command(r#"{"cmd": "disco_info", "to": "localhost"}"#)
        .await;
    assert!(alice.latest("disco_info").contains("urn:xmpp:extdisco:2"));

    // §3.2: both services; the restricted one with its credentials.
    alice.command(r#"{"cmd": "external_services"}"#).await;
    let all = alice.latest("external_services");
    assert!(all.contains("\"host\": \"stun.localhost\""), "{all}");
    assert!(all.contains("\"port\": \"3478\""), "{all}");
    let turn = all
        .split("}, {")
        .find(|s| s.contains("turn.localhost"))
        .expect("turn");
    assert!(turn.contains("\"port\": \"3479\"") && turn.contains("\"transport\": \"udp\""));
    assert!(turn.contains("\"restricted\": \"1\"") && turn.contains("\"name\": \"Relay\""));
    assert_valid_credentials(turn, "alice@localhost");

    // Filtered by type: the STUN server only, which needs no credentials.
    alice
        .command(r#"{"cmd": "external_services", "type": "stun"}"#)
        .await;
    let stun = alice.latest("external_services");
    assert!(
        stun.contains("stun.localhost") && !stun.contains("turn.localhost"),
        "{stun}"
    );
    assert!(!stun.contains("password"), "{stun}");

    // §3.3: credentials for the TURN server, and none for a server that is not listed.
    alice
        .command(r#"{"cmd": "external_credentials", "host": "turn.localhost", "type": "turn"}"#)
        .await;
    assert_valid_credentials(&alice.latest("external_credentials"), "alice@localhost");
    alice
        .command(r#"{"cmd": "external_credentials", "host": "turn.example.org", "type": "turn"}"#)
        .await;
    let missing = alice.latest("iq_error");
    assert!(
        missing.contains("\"cmd\": \"external_credentials\""),
        "{missing}"
    );
    assert!(missing.contains("item-not-found"), "{missing}");
    assert!(alice.quit().await);

    // A SASL ANONYMOUS guest is no account: it is told nothing.
    let (mut guest, _) = RawClient::login_anonymous(server.c2s, &server.cert_path(), "g").await;
    for (id, query) in [
        ("s1", "<services xmlns='urn:xmpp:extdisco:2'/>"),
        (
            "c1",
            "<credentials xmlns='urn:xmpp:extdisco:2'>\
             <service host='turn.localhost' type='turn'/></credentials>",
        ),
    ] {
        guest
            .send(format!(
                "<iq type='get' id='{id}' to='localhost'>{query}</iq>"
            ))
            .await;
        let answer = guest.read_stanza_containing(&format!("id=\"{id}\"")).await;
        assert!(answer.contains("type=\"error\""), "{answer}");
        assert!(answer.contains("<forbidden "), "{answer}");
        assert!(!answer.contains("password="), "{answer}");
    }
}
