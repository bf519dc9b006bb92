//! SASL end to end (RFC 6120 §6, RFC 5802/7677, RFC 4616, RFC 4505): what is offered when
//! (before and after TLS, standard and Flash streams), each mechanism working with a client
//! we did not write (slixmpp) and with our own SCRAM client, ANONYMOUS guests, and Flash
//! being refused where the config says so.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jabberwock_tests::raw::{FLASH_HEADER, STREAM_HEADER};
use jabberwock_tests::slix::Slix;
use jabberwock_tests::{RawClient, TestConfig, TestServer};
use sasl::client::mechanisms::Scram;
use sasl::client::Mechanism;
use sasl::common::scram::{ScramProvider, Sha1, Sha256};
use sasl::common::Credentials;

const SASL_NS: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

fn text_of<'a>(element: &'a str, name: &str) -> &'a str {
    let open = format!("<{name} xmlns=\"{SASL_NS}\">");
    element
        .strip_prefix(open.as_str())
        .and_then(|rest| rest.strip_suffix(&format!("</{name}>")))
        .unwrap_or_else(|| panic!("expected <{name}> with content, got {element}"))
}

/// SASL PLAIN without an authzid.
fn plain_auth(user: &str, password: &str) -> String {
    let token = B64.encode(format!("\0{user}\0{password}"));
    format!("<auth xmlns='{SASL_NS}' mechanism='PLAIN'>{token}</auth>")
}

/// The `<mechanism>` names offered in `features`, in order.
fn mechanisms(features: &str) -> Vec<String> {
    features
        .split("<mechanism>")
        .skip(1)
        .map(|m| {
            m.split("</mechanism>")
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// A SCRAM exchange driven by the `sasl` crate's client: auth with the client-first message,
/// challenge/response, then `<success/>` whose `v=` the client verifies (RFC 5802 §3).
/// `sep` is the unit terminator ("\0" on Flash streams).
async fn scram_login<S: ScramProvider>(
    c: &mut RawClient,
    user: &str,
    password: &str,
    sep: &str,
) -> Result<(), String> {
    let credentials = Credentials::default()
        .with_username(user)
        .with_password(password);
    let mut mech = Scram::<S>::from_credentials(credentials).expect("SCRAM client");
    let name = mech.name().to_owned();
    let initial = B64.encode(mech.initial());
    c.send(format!(
        "<auth xmlns='{SASL_NS}' mechanism='{name}'>{initial}</auth>{sep}"
    ))
    .await;
    let challenge = c.read_stanza().await;
    let server_first = B64
        .decode(text_of(&challenge, "challenge"))
        .expect("base64 challenge");
    assert!(
        server_first.starts_with(b"r="),
        "{}",
        String::from_utf8_lossy(&server_first)
    );
    let response = mech.response(&server_first).expect("client-final-message");
    c.send(format!(
        "<response xmlns='{SASL_NS}'>{}</response>{sep}",
        B64.encode(response)
    ))
    .await;
    let outcome = c.read_stanza().await;
    if outcome.starts_with("<failure") {
        return Err(outcome);
    }
    let server_final = B64
        .decode(text_of(&outcome, "success"))
        .expect("base64 success");
    assert!(
        server_final.starts_with(b"v="),
        "{}",
        String::from_utf8_lossy(&server_final)
    );
    mech.success(&server_final)
        .map_err(|e| format!("the server signature did not verify: {e}"))
}

/// Restart, bind `resource` and ping, on a stream that just authenticated.
async fn restart_bind_ping(c: &mut RawClient, header: &str, sep: &str, resource: &str) -> String {
    c.send(header).await;
    c.read_until("</stream:features>").await;
    c.send(format!(
        "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>{sep}"
    ))
    .await;
    let result = c.read_stanza_containing("id=\"bind1\"").await;
    let jid = result
        .split("<jid>")
        .nth(1)
        .and_then(|r| r.split("</jid>").next())
        .unwrap_or_else(|| panic!("no jid in {result}"))
        .to_owned();
    c.ping("after-bind", sep).await;
    jid
}

/// A standard stream's first features, before TLS.
async fn standard_features(server: &TestServer) -> (RawClient, String) {
    let mut c = RawClient::connect(server.c2s).await;
    c.send(STREAM_HEADER).await;
    c.read_until("<stream:stream ").await;
    c.read_until(">").await;
    let features = c.read_stanza().await;
    (c, features)
}

/// A Flash stream's first features (the second NUL-terminated unit).
async fn flash_features(server: &TestServer) -> (RawClient, String) {
    let mut c = RawClient::connect(server.c2s).await;
    c.send(FLASH_HEADER).await;
    let header = c.read_unit().await;
    assert!(header.contains("<flash:stream "), "{header}");
    let features = c.read_unit().await;
    (c, features)
}

#[tokio::test]
async fn slixmpp_logs_in_with_each_mechanism_over_starttls() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    let port = server.c2s.port().to_string();
    let cert = server.cert_path();
    let run = |mechanism: &'static str| {
        let jid = format!("alice@localhost/slix-{}", mechanism.to_lowercase());
        let mut slix = Slix::spawn(&[
            "--jid",
            &jid,
            "--password",
            "wonderland",
            "--port",
            &port,
            "--cafile",
            cert.to_str().unwrap(),
            "--mechanism",
            mechanism,
        ]);
        async move {
            let auth = slix.expect("auth_success").await;
            assert!(
                auth.contains(&format!("\"mechanism\": \"{mechanism}\"")),
                "{auth}"
            );
            let start = slix.expect("session_start").await;
            assert!(start.contains(&jid), "{start}");
            assert!(
                slix.finish().await,
                "slixmpp with {mechanism} reported failure"
            );
        }
    };
    tokio::join!(run("SCRAM-SHA-256"), run("SCRAM-SHA-1"), run("PLAIN"));
}

#[tokio::test]
async fn our_scram_sha256_client_logs_in_over_a_flash_stream() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");

    let (mut c, features) = flash_features(&server).await;
    // No STARTTLS for XMLSocket, PLAIN first for XIFF, then SCRAM.
    assert!(!features.contains("starttls"), "{features}");
    assert_eq!(
        mechanisms(&features),
        ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-1"],
        "{features}"
    );
    scram_login::<Sha256>(&mut c, "alice", "wonderland", "\0")
        .await
        .unwrap();
    let jid = restart_bind_ping(&mut c, FLASH_HEADER, "\0", "xiff").await;
    assert_eq!(jid, "alice@localhost/xiff");

    // A wrong password gets no success and no signature to verify.
    let (mut c, _) = flash_features(&server).await;
    let failure = scram_login::<Sha256>(&mut c, "alice", "not-the-password", "\0")
        .await
        .unwrap_err();
    assert_eq!(
        failure,
        format!("<failure xmlns=\"{SASL_NS}\"><not-authorized/></failure>")
    );
}

#[tokio::test]
async fn anonymous_guests_when_enabled_get_a_random_localhost_jid_and_can_chat() {
    let server =
        TestServer::start_with(TestConfig::default().host("localhost", "anonymous = true"));
    server.add_user("alice@localhost", "wonderland");

    // Offered on both dialects (after TLS on the standard one).
    let (mut std_c, _) = standard_features(&server).await;
    std_c.starttls(&server.cert_path()).await;
    std_c.send(STREAM_HEADER).await;
    let features = std_c.read_until("</stream:features>").await;
    assert!(
        mechanisms(&features).contains(&"ANONYMOUS".to_owned()),
        "{features}"
    );
    let (mut guest, features) = flash_features(&server).await;
    assert!(
        mechanisms(&features).contains(&"ANONYMOUS".to_owned()),
        "{features}"
    );

    guest
        .send(format!(
            "<auth xmlns=\"{SASL_NS}\" mechanism=\"ANONYMOUS\"/>\0"
        ))
        .await;
    assert_eq!(
        guest.read_unit().await,
        format!("<success xmlns=\"{SASL_NS}\"/>")
    );
    let guest_jid = restart_bind_ping(&mut guest, FLASH_HEADER, "\0", "guest").await;
    let (node, rest) = guest_jid
        .split_once('@')
        .unwrap_or_else(|| panic!("{guest_jid}"));
    assert!(!node.is_empty(), "{guest_jid}");
    assert_eq!(rest, "localhost/guest");

    // A second guest gets another node.
    let (mut guest2, _) = flash_features(&server).await;
    guest2
        .send(format!(
            "<auth xmlns=\"{SASL_NS}\" mechanism=\"ANONYMOUS\"/>\0"
        ))
        .await;
    assert_eq!(
        guest2.read_unit().await,
        format!("<success xmlns=\"{SASL_NS}\"/>")
    );
    let guest2_jid = restart_bind_ping(&mut guest2, FLASH_HEADER, "\0", "guest").await;
    assert_ne!(guest2_jid, guest_jid);

    // The guest and a normal user talk both ways.
    let (mut alice, _) = RawClient::login_standard(
        server.c2s,
        &server.cert_path(),
        "alice",
        "wonderland",
        "desk",
    )
    .await;
    guest
        .send("<message type=\"chat\" to=\"alice@localhost\" id=\"g1\"><body>hello from a guest</body></message>\0")
        .await;
    let got = alice.read_stanza_containing("id=\"g1\"").await;
    assert!(
        got.contains(&format!("from=\"{guest_jid}\"")) && got.contains("hello from a guest"),
        "{got}"
    );
    alice
        .send(format!(
            "<message type='chat' to='{guest_jid}' id='g2'><body>welcome</body></message>"
        ))
        .await;
    let got = guest.read_stanza_containing("id=\"g2\"").await;
    assert!(
        got.contains("from=\"alice@localhost/desk\"") && got.contains("<body>welcome</body>"),
        "{got}"
    );
}

#[tokio::test]
async fn anonymous_is_neither_offered_nor_accepted_by_default() {
    let server = TestServer::start();
    let (mut c, features) = flash_features(&server).await;
    assert!(
        !mechanisms(&features).contains(&"ANONYMOUS".to_owned()),
        "{features}"
    );
    c.send(format!(
        "<auth xmlns=\"{SASL_NS}\" mechanism=\"ANONYMOUS\"/>\0"
    ))
    .await;
    assert_eq!(
        c.read_unit().await,
        format!("<failure xmlns=\"{SASL_NS}\"><invalid-mechanism/></failure>")
    );

    let (mut c, _) = standard_features(&server).await;
    c.starttls(&server.cert_path()).await;
    c.send(STREAM_HEADER).await;
    let features = c.read_until("</stream:features>").await;
    assert!(
        !mechanisms(&features).contains(&"ANONYMOUS".to_owned()),
        "{features}"
    );
    c.send(format!("<auth xmlns='{SASL_NS}' mechanism='ANONYMOUS'/>"))
        .await;
    assert_eq!(
        c.read_stanza().await,
        format!("<failure xmlns=\"{SASL_NS}\"><invalid-mechanism/></failure>")
    );
}

#[tokio::test]
async fn by_default_a_standard_stream_is_offered_only_required_starttls_before_tls() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    let (mut c, features) = standard_features(&server).await;
    // RFC 6120 §5.3.1: when TLS is mandatory-to-negotiate, it is the only feature.
    assert_eq!(
        features,
        "<stream:features><starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"><required/></starttls></stream:features>"
    );

    // Correct credentials, but in clear text: refused (RFC 6120 §6.5.3).
    let token = B64.encode("\0alice\0wonderland");
    c.send(format!(
        "<auth xmlns='{SASL_NS}' mechanism='PLAIN'>{token}</auth>"
    ))
    .await;
    assert_eq!(
        c.read_stanza().await,
        format!("<failure xmlns=\"{SASL_NS}\"><encryption-required/></failure>")
    );
    // SCRAM too: with TLS required, nothing authenticates before it.
    let scram = Scram::<Sha256>::from_credentials(
        Credentials::default()
            .with_username("alice")
            .with_password("wonderland"),
    )
    .expect("SCRAM client")
    .initial();
    c.send(format!(
        "<auth xmlns='{SASL_NS}' mechanism='SCRAM-SHA-256'>{}</auth>",
        B64.encode(scram)
    ))
    .await;
    assert_eq!(
        c.read_stanza().await,
        format!("<failure xmlns=\"{SASL_NS}\"><encryption-required/></failure>")
    );

    // The same credentials work once TLS is on.
    c.starttls(&server.cert_path()).await;
    c.send(STREAM_HEADER).await;
    let features = c.read_until("</stream:features>").await;
    assert!(
        mechanisms(&features).contains(&"PLAIN".to_owned()),
        "{features}"
    );
    c.send(format!(
        "<auth xmlns='{SASL_NS}' mechanism='PLAIN'>{token}</auth>"
    ))
    .await;
    assert_eq!(
        c.read_stanza().await,
        format!("<success xmlns=\"{SASL_NS}\"/>")
    );
}

#[tokio::test]
async fn without_required_tls_plaintext_streams_get_scram_but_not_plain() {
    let config = TestConfig::default()
        .c2s("require_encryption = false")
        .c2s("allow_plain_without_tls = false");
    let server = TestServer::start_with(config);
    server.add_user("alice@localhost", "wonderland");

    let (mut c, features) = standard_features(&server).await;
    assert!(
        features.contains("<starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/>"),
        "optional STARTTLS: {features}"
    );
    assert_eq!(
        mechanisms(&features),
        ["SCRAM-SHA-256", "SCRAM-SHA-1"],
        "{features}"
    );
    let token = B64.encode("\0alice\0wonderland");
    c.send(format!(
        "<auth xmlns='{SASL_NS}' mechanism='PLAIN'>{token}</auth>"
    ))
    .await;
    assert_eq!(
        c.read_stanza().await,
        format!("<failure xmlns=\"{SASL_NS}\"><encryption-required/></failure>")
    );

    // SCRAM never sends the password, so it is fine in clear text.
    scram_login::<Sha1>(&mut c, "alice", "wonderland", "")
        .await
        .unwrap();
    let jid = restart_bind_ping(&mut c, STREAM_HEADER, "", "plain-tcp").await;
    assert_eq!(jid, "alice@localhost/plain-tcp");
}

/// A Flash header on `server` is closed with policy-violation; a standard stream still works.
async fn assert_flash_refused(server: &TestServer) {
    let mut c = RawClient::connect(server.c2s).await;
    c.send(FLASH_HEADER).await;
    let closed = c.read_to_close().await;
    assert!(
        closed.contains(
            "<stream:error><policy-violation xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"
        ),
        "{closed:?}"
    );
    assert!(!closed.contains("<stream:features>"), "{closed:?}");
    let (_, features) = standard_features(server).await;
    assert!(features.contains("<starttls"), "{features}");
}

#[tokio::test]
async fn flash_is_refused_when_disabled_globally() {
    let server = TestServer::start_with(TestConfig::default().flash("enabled = false"));
    assert_flash_refused(&server).await;
}

#[tokio::test]
async fn flash_is_refused_when_disabled_for_the_host() {
    let server = TestServer::start_with(TestConfig::default().host("localhost", "flash = false"));
    assert_flash_refused(&server).await;
}

/// A client that pipelines: `<auth/>`, the restart header and the bind request in one write,
/// without waiting for `<success/>`. What followed the `<auth/>` is the restarted stream.
#[tokio::test]
async fn a_restart_and_bind_pipelined_behind_auth_are_kept() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    let bind = "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>fast</resource></bind></iq>";
    let auth = plain_auth("alice", "wonderland");

    let (mut c, _) = RawClient::starttls_stream(server.c2s, &server.cert_path()).await;
    c.send(format!("{auth}{STREAM_HEADER}{bind}")).await;
    assert_eq!(
        c.read_until("/>").await,
        format!("<success xmlns=\"{SASL_NS}\"/>")
    );
    let restart = c.read_until("</stream:features>").await;
    assert!(restart.contains("<stream:stream "), "{restart}");
    let bound = c.read_until("</iq>").await;
    assert!(
        bound.contains("id=\"bind1\"") && bound.contains("<jid>alice@localhost/fast</jid>"),
        "{bound}"
    );
    c.ping("pipelined", "").await;

    // Flash: the same units, each NUL-terminated, in one write.
    let (mut f, _) = flash_features(&server).await;
    f.send(format!("{auth}\0{FLASH_HEADER}{bind}\0")).await;
    assert_eq!(
        f.read_unit().await,
        format!("<success xmlns=\"{SASL_NS}\"/>")
    );
    let restart = f.read_unit().await;
    assert!(restart.ends_with("</stream:features>"), "{restart}");
    let bound = f.read_unit().await;
    assert!(bound.contains("<jid>alice@localhost/fast</jid>"), "{bound}");
}

/// RFC 6120 §5.3.3 / §5.4.3.3: unlike after SASL, plaintext sent behind `<starttls/>` is not
/// carried into the TLS stream. Were the injected header kept, the client's real header
/// over TLS would be a second one (bad-format) and its features would come in clear.
#[tokio::test]
async fn plaintext_pipelined_behind_starttls_is_discarded() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    let mut c = RawClient::connect(server.c2s).await;
    c.send(STREAM_HEADER).await;
    c.read_until("</stream:features>").await;
    c.starttls_pipelining(
        &server.cert_path(),
        &format!("{STREAM_HEADER}<iq type='get' id='injected'><ping xmlns='urn:xmpp:ping'/></iq>"),
    )
    .await;
    c.send(STREAM_HEADER).await;
    let features = c.read_until("</stream:features>").await;
    assert!(
        features.contains("<mechanism>PLAIN</mechanism>") && !features.contains("injected"),
        "{features}"
    );
    c.send(plain_auth("alice", "wonderland")).await;
    assert_eq!(
        c.read_until("/>").await,
        format!("<success xmlns=\"{SASL_NS}\"/>")
    );
}
