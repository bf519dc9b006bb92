//! The ways a Flash-era client authenticates, each when on and refused when
//! off: SASL mechanisms offered to Flash streams (`[flash] allow_plain`), XEP-0078
//! `jabber:iq:auth` (`[flash] legacy_auth`, plaintext password only), and SASL ANONYMOUS
//! guests (`anonymous = true` on a host) whose account, roster and offline messages exist
//! only for the visit. Raw Flash clients over TCP, NUL-framed as an XMLSocket sends them; the
//! SQLite file is read directly to check what a guest leaves behind.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jabberwock_tests::raw::{xiff_plain_auth, FLASH_HEADER};
use jabberwock_tests::{RawClient, TestConfig, TestServer};
use sasl::client::mechanisms::Scram;
use sasl::client::Mechanism;
use sasl::common::scram::Sha256;
use sasl::common::Credentials;
use sqlx::SqliteConnection;

const SASL_NS: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const IQ_AUTH_FEATURE: &str = "<auth xmlns=\"http://jabber.org/features/iq-auth\"/>";
const STANZAS_NS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// A pre-XMPP-1.0 Flash header (XIFF 2.0 attribute order, no `version`).
const FLASH_HEADER_PRE_1_0: &str = "<?xml version=\"1.0\"?><flash:stream to=\"localhost\" xmlns=\"jabber:client\" xmlns:flash=\"http://www.jabber.com/streams/flash\">\0";

/// The `<mechanism>` names offered in `features`, in order.
fn mechanisms(features: &str) -> Vec<String> {
    features
        .split("<mechanism>")
        .skip(1)
        .filter_map(|m| m.split("</mechanism>").next())
        .map(str::to_owned)
        .collect()
}

/// A Flash stream's header and first features (two NUL-terminated units).
async fn flash_features(server: &TestServer) -> (RawClient, String) {
    let mut c = RawClient::connect(server.c2s).await;
    c.send(FLASH_HEADER).await;
    let header = c.read_unit().await;
    assert!(header.contains("<flash:stream "), "{header}");
    let features = c.read_unit().await;
    assert!(features.starts_with("<stream:features>"), "{features}");
    (c, features)
}

async fn count(db: &mut SqliteConnection, sql: &str, bind: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(db)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// How many guest accounts exist.
async fn guest_rows(db: &mut SqliteConnection) -> i64 {
    count(
        db,
        "SELECT COUNT(*) FROM accounts WHERE username LIKE ?",
        "guest-%",
    )
    .await
}

/// The row id of `username`@localhost, if the account exists.
async fn account_row(db: &mut SqliteConnection, username: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT id FROM accounts WHERE domain = 'localhost' AND username = ?")
        .bind(username)
        .fetch_optional(db)
        .await
        .expect("query accounts")
}

/// After `<success/>`: restart the Flash stream, bind `resource`, start the legacy session,
/// send initial presence and wait for its echo. Returns the full JID.
async fn restart_and_bind_flash(c: &mut RawClient, resource: &str) -> String {
    c.send(FLASH_HEADER).await;
    let restart = c.read_unit().await;
    assert!(restart.ends_with("</stream:features>"), "{restart}");
    c.send(format!(
        "<iq type=\"set\" id=\"bind_1\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><resource>{resource}</resource></bind></iq>\0"
    ))
    .await;
    let result = c.read_stanza_containing("id=\"bind_1\"").await;
    let jid = result
        .split("<jid>")
        .nth(1)
        .and_then(|r| r.split("</jid>").next())
        .unwrap_or_else(|| panic!("no jid in {result}"))
        .to_owned();
    c.send("<iq type=\"set\" id=\"sess_1\"><session xmlns=\"urn:ietf:params:xml:ns:xmpp-session\"/></iq>\0")
        .await;
    c.read_stanza_containing("id=\"sess_1\"").await;
    c.send("<presence/>\0").await;
    c.read_stanza_containing(&format!("from=\"{jid}\"")).await;
    jid
}

/// XIFF-style ANONYMOUS login on a new Flash connection: returns the client and its full JID.
async fn guest_login(server: &TestServer) -> (RawClient, String) {
    let (mut c, features) = flash_features(server).await;
    assert!(
        mechanisms(&features).contains(&"ANONYMOUS".to_owned()),
        "{features}"
    );
    c.send(format!(
        "<auth mechanism=\"ANONYMOUS\" xmlns=\"{SASL_NS}\"/>\0"
    ))
    .await;
    assert_eq!(
        c.read_unit().await,
        format!("<success xmlns=\"{SASL_NS}\"/>")
    );
    let jid = restart_and_bind_flash(&mut c, "xiff").await;
    (c, jid)
}

/// A jabber:iq:auth `set` (`sep` = "\0" on Flash streams).
async fn iq_auth_set(c: &mut RawClient, id: &str, fields: &str) -> String {
    c.send(format!(
        "<iq type=\"set\" id=\"{id}\"><query xmlns=\"jabber:iq:auth\">{fields}</query></iq>\0"
    ))
    .await;
    c.read_stanza_containing(&format!("id=\"{id}\"")).await
}

/// Our SCRAM-SHA-256 client (the `sasl` crate) over a Flash stream; `Err` with the failure.
async fn scram_sha256(c: &mut RawClient, user: &str, password: &str) -> Result<(), String> {
    let credentials = Credentials::default()
        .with_username(user)
        .with_password(password);
    let mut mech = Scram::<Sha256>::from_credentials(credentials).expect("SCRAM client");
    c.send(format!(
        "<auth xmlns=\"{SASL_NS}\" mechanism=\"SCRAM-SHA-256\">{}</auth>\0",
        B64.encode(mech.initial())
    ))
    .await;
    let challenge = c.read_unit().await;
    let data = challenge
        .split('>')
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or_else(|| panic!("{challenge}"));
    let response = mech
        .response(&B64.decode(data).expect("base64 challenge"))
        .expect("client-final-message");
    c.send(format!(
        "<response xmlns=\"{SASL_NS}\">{}</response>\0",
        B64.encode(response)
    ))
    .await;
    let outcome = c.read_unit().await;
    let Some(rest) = outcome.strip_prefix(&format!("<success xmlns=\"{SASL_NS}\">")) else {
        return Err(outcome);
    };
    let server_final = B64
        .decode(rest.trim_end_matches("</success>"))
        .expect("base64 success");
    mech.success(&server_final)
        .map_err(|e| format!("server signature: {e}"))
}

#[tokio::test]
async fn flash_sasl_offers_plain_first_unless_allow_plain_is_off_and_scram_always() {
    // Default: PLAIN first (XIFF takes the first it knows), then SCRAM; no iq-auth.
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    let (_c, features) = flash_features(&server).await;
    assert_eq!(
        mechanisms(&features),
        ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-1"],
        "{features}"
    );
    assert!(!features.contains(IQ_AUTH_FEATURE), "{features}");
    let (mut alice, jid) = RawClient::login_flash(server.c2s, "alice", "wonderland", "xiff").await;
    assert_eq!(jid, "alice@localhost/xiff");
    alice.ping("p1", "\0").await;

    // allow_plain = false: PLAIN is neither offered nor accepted in clear text; SCRAM works.
    let server = TestServer::start_with(TestConfig::default().flash("allow_plain = false"));
    server.add_user("alice@localhost", "wonderland");
    let (mut c, features) = flash_features(&server).await;
    assert_eq!(
        mechanisms(&features),
        ["SCRAM-SHA-256", "SCRAM-SHA-1"],
        "{features}"
    );
    let token = B64.encode("alice@localhost\0alice\0wonderland");
    c.send(format!(
        "<auth mechanism=\"PLAIN\" xmlns=\"{SASL_NS}\">{token}</auth>\0"
    ))
    .await;
    // RFC 6120 §6.5.3: a mechanism we would offer over TLS, asked for in clear text.
    assert_eq!(
        c.read_unit().await,
        format!("<failure xmlns=\"{SASL_NS}\"><encryption-required/></failure>")
    );
    // The same stream goes on with SCRAM, signature verified.
    scram_sha256(&mut c, "alice", "wonderland").await.unwrap();
    let jid = restart_and_bind_flash(&mut c, "xiff").await;
    assert_eq!(jid, "alice@localhost/xiff");
    c.ping("p2", "\0").await;
}

#[tokio::test]
async fn legacy_auth_when_enabled_logs_a_flash_client_in_with_a_plaintext_password() {
    let server = TestServer::start_with(TestConfig::default().flash("legacy_auth = true"));
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let (mut bob, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "builder", "desk").await;

    let (mut c, features) = flash_features(&server).await;
    assert!(features.contains(IQ_AUTH_FEATURE), "{features}");
    // SASL stays available next to it.
    assert_eq!(mechanisms(&features)[0], "PLAIN", "{features}");

    // XEP-0078 §3.1: the fields, without <digest/> (we can't check one).
    c.send("<iq type=\"get\" id=\"auth_1\" to=\"localhost\"><query xmlns=\"jabber:iq:auth\"><username>alice</username></query></iq>\0")
        .await;
    assert_eq!(
        c.read_unit().await,
        "<iq type=\"result\" id=\"auth_1\" from=\"localhost\"><query xmlns=\"jabber:iq:auth\"><username>alice</username><password/><resource/></query></iq>"
    );
    let result = iq_auth_set(
        &mut c,
        "auth_2",
        "<username>alice</username><password>wonderland</password><resource>widget</resource>",
    )
    .await;
    assert_eq!(result, "<iq type=\"result\" id=\"auth_2\"/>");

    // No restart: the session runs. Roster, presence, messages both ways.
    c.send("<iq type=\"get\" id=\"roster_1\"><query xmlns=\"jabber:iq:roster\"/></iq>\0")
        .await;
    let roster = c.read_stanza_containing("id=\"roster_1\"").await;
    assert!(
        roster.contains("type=\"result\"") && roster.contains("jabber:iq:roster"),
        "{roster}"
    );
    c.send("<presence><status>legacy</status></presence>\0")
        .await;
    let echo = c
        .read_stanza_containing("from=\"alice@localhost/widget\"")
        .await;
    assert!(echo.contains("<status>legacy</status>"), "{echo}");
    c.send("<message type=\"chat\" to=\"bob@localhost\" id=\"m1\"><body>hi from 2005</body></message>\0")
        .await;
    let got = bob.read_stanza_containing("id=\"m1\"").await;
    assert!(
        got.contains("from=\"alice@localhost/widget\"") && got.contains("hi from 2005"),
        "{got}"
    );
    bob.send("<message type='chat' to='alice@localhost/widget' id='m2'><body>hello back</body></message>")
        .await;
    let got = c.read_stanza_containing("id=\"m2\"").await;
    assert!(got.contains("<body>hello back</body>"), "{got}");

    // Same resource again: like RFC 6120 bind, the new login replaces the old session.
    let (mut c2, _) = flash_features(&server).await;
    let result = iq_auth_set(
        &mut c2,
        "auth_3",
        "<username>alice</username><password>wonderland</password><resource>widget</resource>",
    )
    .await;
    assert!(result.contains("type=\"result\""), "{result}");
    let closed = c.read_to_close().await;
    assert!(
        closed.contains("<conflict xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"),
        "{closed}"
    );
    c2.ping("p3", "\0").await;

    // Standard streams never get it, even with legacy_auth on: no feature after TLS, and the
    // iq is service-unavailable (the stream stays open).
    let (mut std_c, features) = RawClient::starttls_stream(server.c2s, &server.cert_path()).await;
    assert!(!features.contains("iq-auth"), "{features}");
    std_c
        .send("<iq type='set' id='std_1'><query xmlns='jabber:iq:auth'><username>alice</username><password>wonderland</password><resource>r</resource></query></iq>")
        .await;
    let refused = std_c.read_stanza_containing("id=\"std_1\"").await;
    assert!(
        refused.contains("type=\"error\"")
            && refused.contains(&format!("<service-unavailable xmlns=\"{STANZAS_NS}\"/>")),
        "{refused}"
    );
}

#[tokio::test]
async fn legacy_auth_errors_and_the_failure_limit() {
    let server = TestServer::start_with(
        TestConfig::default()
            .flash("legacy_auth = true")
            .c2s("max_auth_failures = 2")
            .c2s("auth_failure_delay_ms = 10"),
    );
    server.add_user("alice@localhost", "wonderland");
    let (mut c, _) = flash_features(&server).await;

    // XEP-0078 §3.2: a digest we can't verify; missing fields: 406, not counted.
    let digest = iq_auth_set(
        &mut c,
        "e1",
        "<username>alice</username><digest>48fc78be9ec8f86d8ce1c39c320c97c21d62334d</digest><resource>r</resource>",
    )
    .await;
    assert!(
        digest.contains("type=\"error\"")
            && digest.contains("code=\"406\"")
            && digest.contains(&format!("<not-acceptable xmlns=\"{STANZAS_NS}\"/>"))
            && digest.contains("Digest authentication is not supported"),
        "{digest}"
    );
    for (id, fields) in [
        (
            "e2",
            "<username>alice</username><password>wonderland</password>",
        ),
        (
            "e3",
            "<password>wonderland</password><resource>r</resource>",
        ),
        ("e4", "<username>alice</username><resource>r</resource>"),
    ] {
        let reply = iq_auth_set(&mut c, id, fields).await;
        assert!(
            reply.contains("code=\"406\"")
                && reply.contains(&format!("<not-acceptable xmlns=\"{STANZAS_NS}\"/>")),
            "{id}: {reply}"
        );
    }
    // A resource longer than RFC 7622's 1023 bytes.
    let long = format!(
        "<username>alice</username><password>wonderland</password><resource>{}</resource>",
        "r".repeat(1024)
    );
    let reply = iq_auth_set(&mut c, "e5", &long).await;
    assert!(reply.contains("<not-acceptable"), "{reply}");

    // Wrong password: 401 not-authorized, type auth.
    let wrong = iq_auth_set(
        &mut c,
        "e6",
        "<username>alice</username><password>nope</password><resource>r</resource>",
    )
    .await;
    assert!(
        wrong.contains("type=\"error\"")
            && wrong.contains("type=\"auth\"")
            && wrong.contains("code=\"401\"")
            && wrong.contains(&format!("<not-authorized xmlns=\"{STANZAS_NS}\"/>")),
        "{wrong}"
    );
    // An unknown user looks the same, and is the second failure: the stream closes.
    let unknown = iq_auth_set(
        &mut c,
        "e7",
        "<username>nobody</username><password>wonderland</password><resource>r</resource>",
    )
    .await;
    assert!(unknown.contains("code=\"401\""), "{unknown}");
    let closed = c.read_to_close().await;
    assert!(
        closed.contains("<not-authorized xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>")
            && closed.contains("Too many failed authentication attempts")
            && closed.contains("</flash:stream>"),
        "{closed}"
    );

    // Failures of SASL and jabber:iq:auth share the one limit.
    let (mut c, _) = flash_features(&server).await;
    let token = B64.encode("\0alice\0nope");
    c.send(format!(
        "<auth mechanism=\"PLAIN\" xmlns=\"{SASL_NS}\">{token}</auth>\0"
    ))
    .await;
    assert!(c.read_unit().await.contains("<not-authorized/>"));
    iq_auth_set(
        &mut c,
        "e8",
        "<username>alice</username><password>nope</password><resource>r</resource>",
    )
    .await;
    let closed = c.read_to_close().await;
    assert!(closed.contains("Too many failed"), "{closed}");
}

#[tokio::test]
async fn a_pre_xmpp_1_0_flash_stream_gets_no_features_and_uses_legacy_auth() {
    let server = TestServer::start_with(TestConfig::default().flash("legacy_auth = true"));
    server.add_user("alice@localhost", "wonderland");
    let mut c = RawClient::connect(server.c2s).await;
    c.send(FLASH_HEADER_PRE_1_0).await;
    let header = c.read_unit().await;
    assert!(
        header.contains("<flash:stream ") && !header.contains("version=\"1.0\""),
        "{header}"
    );
    // RFC 6120 §4.7.5: no version, no features; the next unit answers our get.
    c.send("<iq type=\"get\" id=\"a1\"><query xmlns=\"jabber:iq:auth\"><username>alice</username></query></iq>\0")
        .await;
    let fields = c.read_unit().await;
    assert!(
        fields.starts_with("<iq type=\"result\" id=\"a1\">") && fields.contains("<password/>"),
        "{fields}"
    );
    let result = iq_auth_set(
        &mut c,
        "a2",
        "<username>alice</username><password>wonderland</password><resource>as2</resource>",
    )
    .await;
    assert!(result.contains("type=\"result\""), "{result}");
    c.send("<presence/>\0").await;
    c.read_stanza_containing("from=\"alice@localhost/as2\"")
        .await;
    c.ping("p1", "\0").await;
}

#[tokio::test]
async fn legacy_auth_is_off_by_default_and_sasl_still_follows() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    let (mut c, features) = flash_features(&server).await;
    assert!(!features.contains("iq-auth"), "{features}");
    for (kind, id, query) in [
        ("get", "g1", "<username>alice</username>"),
        (
            "set",
            "s1",
            "<username>alice</username><password>wonderland</password><resource>r</resource>",
        ),
    ] {
        c.send(format!(
            "<iq type=\"{kind}\" id=\"{id}\"><query xmlns=\"jabber:iq:auth\">{query}</query></iq>\0"
        ))
        .await;
        let reply = c.read_unit().await;
        assert!(
            reply.starts_with(&format!("<iq type=\"error\" id=\"{id}\">"))
                && reply.contains(&format!("<service-unavailable xmlns=\"{STANZAS_NS}\"/>")),
            "{reply}"
        );
    }
    // A pre-1.0 stream without legacy auth has no way in: its iq:auth is refused too.
    let mut old = RawClient::connect(server.c2s).await;
    old.send(FLASH_HEADER_PRE_1_0).await;
    old.read_unit().await;
    old.send("<iq type=\"set\" id=\"s2\"><query xmlns=\"jabber:iq:auth\"><username>alice</username><password>wonderland</password><resource>r</resource></query></iq>\0")
        .await;
    assert!(old.read_unit().await.contains("<service-unavailable"));

    // The refused stream is still open and SASL PLAIN works on it.
    let token = B64.encode("\0alice\0wonderland");
    c.send(format!(
        "<auth mechanism=\"PLAIN\" xmlns=\"{SASL_NS}\">{token}</auth>\0"
    ))
    .await;
    assert_eq!(
        c.read_unit().await,
        format!("<success xmlns=\"{SASL_NS}\"/>")
    );
    let jid = restart_and_bind_flash(&mut c, "xiff").await;
    assert_eq!(jid, "alice@localhost/xiff");
}

/// How the guest leaves.
#[derive(Clone, Copy, Debug)]
enum Leave {
    /// The TCP connection just drops (the browser tab closes).
    Drop,
    /// `</flash:stream>`, answered in kind.
    CloseStream,
}

/// A guest visit: roster, a mutual subscription with Bob, messages both ways, an offline
/// message while unavailable; then the guest leaves and nothing of it is left.
async fn guest_visit(leave: Leave) {
    let server =
        TestServer::start_with(TestConfig::default().host("localhost", "anonymous = true"));
    server.add_user("bob@localhost", "builder");
    let (mut bob, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "builder", "desk").await;
    bob.send("<iq type='get' id='bob_roster'><query xmlns='jabber:iq:roster'/></iq>")
        .await;
    bob.read_stanza_containing("id=\"bob_roster\"").await;

    let (mut guest, guest_jid) = guest_login(&server).await;
    let (guest_bare, _) = guest_jid.split_once('/').unwrap();
    let guest_node = guest_bare.strip_suffix("@localhost").unwrap().to_owned();
    assert!(guest_node.starts_with("guest-"), "{guest_jid}");
    let mut sql = server.read_db().await;
    let guest_id = account_row(&mut sql, &guest_node)
        .await
        .expect("the guest has an account row during the visit");
    assert_eq!(
        count(
            &mut sql,
            "SELECT COUNT(*) FROM scram_credentials WHERE account_id = CAST(? AS INTEGER)",
            &guest_id.to_string()
        )
        .await,
        0,
        "a guest has no credentials"
    );

    // A guest can't register or manage its account (XEP-0077 after authentication).
    for (id, iq) in [
        ("reg_1", format!("<iq type=\"set\" id=\"reg_1\"><query xmlns=\"jabber:iq:register\"><username>{guest_node}</username><password>keepme</password></query></iq>\0")),
        ("reg_2", "<iq type=\"get\" id=\"reg_2\"><query xmlns=\"jabber:iq:register\"/></iq>\0".to_owned()),
        ("reg_3", "<iq type=\"set\" id=\"reg_3\"><query xmlns=\"jabber:iq:register\"><remove/></query></iq>\0".to_owned()),
    ] {
        guest.send(iq).await;
        let reply = guest.read_stanza_containing(&format!("id=\"{id}\"")).await;
        assert!(
            reply.contains("type=\"error\"")
                && reply.contains(&format!("<not-allowed xmlns=\"{STANZAS_NS}\"/>")),
            "{id}: {reply}"
        );
    }

    // Roster: add Bob.
    guest.send("<iq type=\"set\" id=\"ros_1\"><query xmlns=\"jabber:iq:roster\"><item jid=\"bob@localhost\" name=\"Bob\"><group>Builders</group></item></query></iq>\0")
        .await;
    let set = guest.read_stanza_containing("id=\"ros_1\"").await;
    assert!(set.contains("type=\"result\""), "{set}");
    guest
        .send("<iq type=\"get\" id=\"ros_2\"><query xmlns=\"jabber:iq:roster\"/></iq>\0")
        .await;
    let roster = guest.read_stanza_containing("id=\"ros_2\"").await;
    assert!(
        roster.contains("jid=\"bob@localhost\"") && roster.contains("<group>Builders</group>"),
        "{roster}"
    );

    // Subscriptions both ways, approved.
    guest
        .send("<presence to=\"bob@localhost\" type=\"subscribe\"/>\0")
        .await;
    let request = bob.read_stanza_containing("type=\"subscribe\"").await;
    assert!(
        request.contains(&format!("from=\"{guest_bare}\"")),
        "{request}"
    );
    bob.send(format!("<presence to='{guest_bare}' type='subscribed'/>"))
        .await;
    bob.send(format!("<presence to='{guest_bare}' type='subscribe'/>"))
        .await;
    let request = guest.read_stanza_containing("type=\"subscribe\"").await;
    assert!(request.contains("from=\"bob@localhost\""), "{request}");
    guest
        .send("<presence to=\"bob@localhost\" type=\"subscribed\"/>\0")
        .await;
    let push = bob.read_stanza_containing("subscription=\"both\"").await;
    assert!(push.contains(&format!("jid=\"{guest_bare}\"")), "{push}");

    // Messages both ways.
    guest.send("<message type=\"chat\" to=\"bob@localhost\" id=\"gm1\"><body>hi, I'm just visiting</body></message>\0")
        .await;
    let got = bob.read_stanza_containing("id=\"gm1\"").await;
    assert!(got.contains(&format!("from=\"{guest_jid}\"")), "{got}");
    bob.send(format!(
        "<message type='chat' to='{guest_jid}' id='bm1'><body>welcome</body></message>"
    ))
    .await;
    let got = guest.read_stanza_containing("id=\"bm1\"").await;
    assert!(got.contains("<body>welcome</body>"), "{got}");

    // Unavailable but still connected: a message to the bare JID is stored offline.
    guest.send("<presence type=\"unavailable\"/>\0").await;
    bob.read_stanza_containing("type=\"unavailable\"").await;
    bob.send(format!(
        "<message type='chat' to='{guest_bare}' id='bm2'><body>for later</body></message>"
    ))
    .await;
    // Bob's stanzas are handled in order: once the pong is back, the message is stored.
    bob.ping("bob_ping", "").await;
    let guest_id_text = guest_id.to_string();
    let owned =
        |table: &str| format!("SELECT COUNT(*) FROM {table} WHERE account_id = CAST(? AS INTEGER)");
    assert_eq!(
        count(&mut sql, &owned("offline_messages"), &guest_id_text).await,
        1
    );
    assert_eq!(
        count(&mut sql, &owned("roster_entries"), &guest_id_text).await,
        1
    );
    assert_eq!(
        count(&mut sql, &owned("roster_groups"), &guest_id_text).await,
        1
    );

    match leave {
        Leave::Drop => drop(guest),
        Leave::CloseStream => {
            guest.send("</flash:stream>\0").await;
            let rest = guest.read_to_close().await;
            assert!(rest.ends_with("</flash:stream>\0"), "{rest}");
        }
    }

    // Bob's roster: the subscriptions are cancelled both ways and pushed.
    let push = bob.read_stanza_containing("subscription=\"none\"").await;
    assert!(push.contains(&format!("jid=\"{guest_bare}\"")), "{push}");
    assert!(
        server.wait_log("guest left; account removed"),
        "{}",
        server.log_text()
    );
    assert_eq!(account_row(&mut sql, &guest_node).await, None);
    for table in [
        "offline_messages",
        "roster_entries",
        "roster_groups",
        "scram_credentials",
    ] {
        assert_eq!(
            count(&mut sql, &owned(table), &guest_id_text).await,
            0,
            "{table} still holds the guest's rows"
        );
    }
    let bob_view: (String, bool, bool) = sqlx::query_as(
        "SELECT e.subscription, e.pending_in, e.pending_out FROM roster_entries e \
         JOIN accounts a ON a.id = e.account_id WHERE a.username = 'bob' AND e.contact = ?",
    )
    .bind(guest_bare)
    .fetch_one(&mut sql)
    .await
    .expect("bob's entry for the guest");
    assert_eq!(bob_view, ("none".to_owned(), false, false));

    // The guest's address is gone: a message to it bounces.
    for to in [guest_bare, guest_jid.as_str()] {
        bob.send(format!(
            "<message type='chat' to='{to}' id='late'><body>still there?</body></message>"
        ))
        .await;
        let bounce = bob.read_stanza_containing("id=\"late\"").await;
        assert!(
            bounce.contains("type=\"error\"")
                && bounce.contains(&format!("<service-unavailable xmlns=\"{STANZAS_NS}\"/>")),
            "{to}: {bounce}"
        );
    }
}

#[tokio::test]
async fn a_guest_that_drops_the_connection_leaves_nothing_behind() {
    guest_visit(Leave::Drop).await;
}

#[tokio::test]
async fn a_guest_that_closes_its_stream_leaves_nothing_behind() {
    guest_visit(Leave::CloseStream).await;
}

#[tokio::test]
async fn a_guest_that_leaves_before_binding_leaves_no_row() {
    let server =
        TestServer::start_with(TestConfig::default().host("localhost", "anonymous = true"));
    let (mut c, _) = flash_features(&server).await;
    c.send(format!(
        "<auth mechanism=\"ANONYMOUS\" xmlns=\"{SASL_NS}\"/>\0"
    ))
    .await;
    assert!(c.read_unit().await.starts_with("<success"));
    let mut sql = server.read_db().await;
    let guests = "SELECT COUNT(*) FROM accounts WHERE username LIKE ?";
    assert_eq!(count(&mut sql, guests, "guest-%").await, 1);
    drop(c);
    assert!(
        server.wait_log("guest left before binding; account removed"),
        "{}",
        server.log_text()
    );
    assert_eq!(count(&mut sql, guests, "guest-%").await, 0);
}

#[tokio::test]
async fn anonymous_is_refused_when_the_host_does_not_allow_it() {
    let server = TestServer::start();
    let (mut c, features) = flash_features(&server).await;
    assert!(
        !mechanisms(&features).contains(&"ANONYMOUS".to_owned()),
        "{features}"
    );
    c.send(format!(
        "<auth mechanism=\"ANONYMOUS\" xmlns=\"{SASL_NS}\"/>\0"
    ))
    .await;
    assert_eq!(
        c.read_unit().await,
        format!("<failure xmlns=\"{SASL_NS}\"><invalid-mechanism/></failure>")
    );
    let mut sql = server.read_db().await;
    assert_eq!(guest_rows(&mut sql).await, 0);
}

#[tokio::test]
async fn guests_left_by_a_crash_are_removed_at_the_next_start() {
    let mut server =
        TestServer::start_with(TestConfig::default().host("localhost", "anonymous = true"));
    server.add_user("bob@localhost", "builder");
    let (mut guest, guest_jid) = guest_login(&server).await;
    let (guest_bare, _) = guest_jid.split_once('/').unwrap();
    let guest_node = guest_bare.strip_suffix("@localhost").unwrap().to_owned();
    // Bob (offline) gets a subscription request kept for him.
    guest
        .send("<presence to=\"bob@localhost\" type=\"subscribe\"/>\0")
        .await;
    guest.ping("after_subscribe", "\0").await;
    {
        let mut sql = server.read_db().await;
        assert!(account_row(&mut sql, &guest_node).await.is_some());
        let pending: bool = sqlx::query_scalar(
            "SELECT e.pending_in FROM roster_entries e JOIN accounts a ON a.id = e.account_id \
             WHERE a.username = 'bob' AND e.contact = ?",
        )
        .bind(guest_bare)
        .fetch_one(&mut sql)
        .await
        .expect("bob's pending request from the guest");
        assert!(pending);
    }

    server.kill();
    drop(guest);
    server.restart();
    assert!(
        server.wait_log("removed guests left by an unclean stop"),
        "{}",
        server.log_text()
    );
    let mut sql = server.read_db().await;
    assert_eq!(account_row(&mut sql, &guest_node).await, None);
    // The request the guest left with Bob is withdrawn too.
    let pending: Option<bool> = sqlx::query_scalar(
        "SELECT e.pending_in FROM roster_entries e JOIN accounts a ON a.id = e.account_id \
         WHERE a.username = 'bob' AND e.contact = ?",
    )
    .bind(guest_bare)
    .fetch_optional(&mut sql)
    .await
    .unwrap();
    assert_ne!(pending, Some(true));
    // Bob, logging in, gets no subscription request from the departed guest.
    let (mut bob, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "builder", "desk").await;
    // Pending requests are delivered after the initial presence, ahead of this pong.
    bob.send("<iq type='get' id='bob_ping' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let seen = bob.read_until("id=\"bob_ping\"").await;
    assert!(!seen.contains("type=\"subscribe\""), "{seen}");
}

/// COMPAT: a hand-written widget's `<flash:stream>` without `xmlns:flash` is a Flash stream,
/// as the undeclared `stream:` prefix of its stanzas is tolerated.
#[tokio::test]
async fn a_flash_root_without_its_namespace_declaration_is_a_flash_stream() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    let header = "<flash:stream xmlns=\"jabber:client\" to=\"localhost\" version=\"1.0\">\0";
    let mut c = RawClient::connect(server.c2s).await;
    c.send(header).await;
    let header = c.read_unit().await;
    assert!(header.contains("<flash:stream "), "{header}");
    let features = c.read_unit().await;
    assert_eq!(
        mechanisms(&features).first().map(String::as_str),
        Some("PLAIN")
    );
    c.send(format!("{}\0", xiff_plain_auth("alice", "wonderland")))
        .await;
    assert!(c.read_unit().await.starts_with("<success"));
    c.send(header).await;
    let restart = c.read_unit().await;
    assert!(restart.ends_with("</stream:features>"), "{restart}");
    c.send("</flash:stream>\0").await;
    assert_eq!(c.read_to_close().await, "</flash:stream>\0");
}

/// XIFF 2.0's anonymous login (flash-protocol.md §4): a jabber:iq:auth `set` with only a
/// resource. A guest where the host takes guests (gone again when it leaves); elsewhere
/// the missing username is `not-acceptable` (XEP-0078 §3.2, 406).
#[tokio::test]
async fn an_iq_auth_set_without_username_logs_in_a_guest_where_guests_are_allowed() {
    let server = TestServer::start_with(
        TestConfig::default()
            .flash("legacy_auth = true")
            .host("localhost", "anonymous = true"),
    );
    let mut c = RawClient::connect(server.c2s).await;
    c.send(FLASH_HEADER_PRE_1_0).await;
    c.read_unit().await;
    let result = iq_auth_set(&mut c, "anon1", "<resource>xiff2</resource>").await;
    assert!(
        result.starts_with("<iq type=\"result\" id=\"anon1\""),
        "{result}"
    );
    c.send("<presence/>\0").await;
    let echo = c.read_stanza_containing("<presence").await;
    let jid = echo
        .split("from=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_owned();
    let node = jid.strip_suffix("@localhost/xiff2").unwrap_or_default();
    assert!(node.starts_with("guest-"), "{echo}");
    let mut sql = server.read_db().await;
    assert!(account_row(&mut sql, node).await.is_some());
    c.ping("anon-ping", "\0").await;
    c.send("</flash:stream>\0").await;
    c.read_to_close().await;
    assert!(
        server.wait_log("guest left; account removed"),
        "{}",
        server.log_text()
    );
    assert_eq!(account_row(&mut sql, node).await, None);

    // Without guests: the same request is a missing field.
    let server = TestServer::start_with(TestConfig::default().flash("legacy_auth = true"));
    let mut c = RawClient::connect(server.c2s).await;
    c.send(FLASH_HEADER_PRE_1_0).await;
    c.read_unit().await;
    let reply = iq_auth_set(&mut c, "anon2", "<resource>xiff2</resource>").await;
    assert!(
        reply.contains("type=\"error\"")
            && reply.contains("code=\"406\"")
            && reply.contains(&format!("<not-acceptable xmlns=\"{STANZAS_NS}\"/>")),
        "{reply}"
    );
    let mut sql = server.read_db().await;
    assert_eq!(guest_rows(&mut sql).await, 0);
}
