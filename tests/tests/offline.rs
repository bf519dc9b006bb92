//! Offline messages (XEP-0160) with delay stamps (XEP-0203): a chat or
//! normal message for an account with no available non-negative resource is kept, survives
//! a clean restart and a crash right after it was accepted, and is delivered exactly once,
//! in order, at the recipient's next initial presence with non-negative priority. The limit
//! (`[offline] max_messages`) and accounts that don't exist bounce with service-unavailable.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jabberwock_tests::{RawClient, TestConfig, TestServer};

const SERVICE_UNAVAILABLE: &str =
    "<service-unavailable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>";
/// Long enough for a stray stanza to show up on loopback.
const QUIET: Duration = Duration::from_secs(1);

fn server_with(config: TestConfig) -> TestServer {
    let server = TestServer::start_with(config);
    // Not before the server's own migrations are done.
    server.wait_started();
    server.add_user("alice@localhost", "pw-a");
    server.add_user("bob@localhost", "pw-b");
    server
}

async fn login(server: &TestServer, user: &str, password: &str, resource: &str) -> RawClient {
    let (c, jid) =
        RawClient::login_standard(server.c2s, &server.cert_path(), user, password, resource).await;
    assert_eq!(jid, format!("{user}@localhost/{resource}"));
    c
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Sends `stanza`, then pings on the same stream and returns everything that arrived before
/// the pong. Stanzas of one stream are handled in order, so once the pong is back the server
/// has finished with `stanza` (stored it, or put its error before the pong).
async fn send_confirmed(c: &mut RawClient, stanza: &str, ping_id: &str) -> String {
    c.send(stanza).await;
    c.send(format!(
        "<iq type='get' id='{ping_id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
    ))
    .await;
    let got = c.read_until(&format!("id=\"{ping_id}\"")).await;
    let rest = c.read_until(">").await;
    let pong = format!("{got}{rest}");
    let pong = pong.rsplit("<iq").next().unwrap_or_default();
    assert!(pong.contains("type=\"result\""), "no pong: {got}{rest}");
    got
}

/// Sends a chat message from bob to alice's bare JID and asserts it was accepted (no error).
async fn send_accepted(bob: &mut RawClient, id: &str, body: &str) {
    let before_pong = send_confirmed(
        bob,
        &format!(
            "<message type='chat' to='alice@localhost' id='{id}'><body>{body}</body></message>"
        ),
        &format!("ping-{id}"),
    )
    .await;
    assert!(
        !before_pong.contains(&format!("id=\"{id}\"")),
        "{id} was bounced: {before_pong}"
    );
}

/// Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic: 400-year eras of
/// 146097 days, years counted from March so the leap day is last).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The XEP-0203 stamp of `message` (XEP-0082 `YYYY-MM-DDThh:mm:ssZ`) in Unix seconds, after
/// checking the whole `<delay/>` element: its namespace, `from` (the server) and format.
fn delay_stamp(message: &str) -> i64 {
    let delay = message
        .split("<delay ")
        .nth(1)
        .unwrap_or_else(|| panic!("no <delay/>: {message}"))
        .split("/>")
        .next()
        .unwrap();
    assert!(delay.contains("xmlns=\"urn:xmpp:delay\""), "{message}");
    assert!(delay.contains("from=\"localhost\""), "{message}");
    let stamp = delay
        .split("stamp=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no stamp: {message}"));
    let b = stamp.as_bytes();
    assert!(
        b.len() == 20
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && b[19] == b'Z',
        "not YYYY-MM-DDThh:mm:ssZ: {stamp}"
    );
    let n = |range: std::ops::Range<usize>| -> i64 {
        stamp[range]
            .parse()
            .unwrap_or_else(|_| panic!("bad stamp {stamp}"))
    };
    days_from_civil(n(0..4), n(5..7), n(8..10)) * 86_400
        + n(11..13) * 3600
        + n(14..16) * 60
        + n(17..19)
}

#[test]
fn stamp_parser_knows_some_instants() {
    let at = |stamp: &str| {
        delay_stamp(&format!("<message><delay xmlns=\"urn:xmpp:delay\" from=\"localhost\" stamp=\"{stamp}\"/></message>"))
    };
    assert_eq!(at("1970-01-01T00:00:00Z"), 0);
    assert_eq!(at("2000-02-29T00:00:00Z"), 951_782_400);
    assert_eq!(at("2023-11-14T22:13:20Z"), 1_700_000_000);
}

/// Reads the next message for `c`, skipping presence, and checks it is `id` from bob with a
/// delay stamp within `[sent_from, sent_to]` (give or take a second of rounding).
async fn expect_delayed(c: &mut RawClient, id: &str, body: &str, sent: (i64, i64)) -> String {
    let got = c.read_stanza_containing("<message").await;
    assert!(
        got.contains(&format!("id=\"{id}\"")),
        "expected {id}: {got}"
    );
    assert!(got.contains(&format!("<body>{body}</body>")), "{got}");
    assert!(got.contains("from=\"bob@localhost/home\""), "{got}");
    let stamp = delay_stamp(&got);
    assert!(
        sent.0 - 1 <= stamp && stamp <= sent.1 + 1,
        "stamp {stamp} is not the send time {sent:?}: {got}"
    );
    got
}

async fn assert_no_message(c: &mut RawClient, who: &str) {
    let got = c.read_for(QUIET).await;
    assert!(!got.contains("<message"), "{who} got a message: {got}");
}

/// Closes the stream and waits for the server to close its side.
async fn log_out(mut c: RawClient) {
    c.send("<presence type='unavailable'/></stream:stream>")
        .await;
    let tail = c.read_to_close().await;
    assert!(tail.contains("</stream:stream>"), "{tail}");
}

#[tokio::test]
async fn a_message_for_an_offline_user_arrives_once_with_a_delay_at_initial_presence() {
    let server = server_with(TestConfig::default());
    let mut bob = login(&server, "bob", "pw-b", "home").await;

    let before = unix_now();
    send_accepted(&mut bob, "m1", "while you were out").await;
    let after = unix_now();

    let mut alice = login(&server, "alice", "pw-a", "desk").await;
    let got = expect_delayed(&mut alice, "m1", "while you were out", (before, after)).await;
    assert!(got.contains("type=\"chat\""), "{got}");
    assert_no_message(&mut alice, "alice (a second copy)").await;
    log_out(alice).await;

    // Delivered means gone: the next login gets nothing.
    let mut alice = login(&server, "alice", "pw-a", "desk").await;
    assert_no_message(&mut alice, "alice at her next login").await;
    // ... and while she is online, messages are live (no delay stamp).
    bob.send("<message type='chat' to='alice@localhost' id='live'><body>hi</body></message>")
        .await;
    let live = alice.read_stanza_containing("id=\"live\"").await;
    assert!(!live.contains("urn:xmpp:delay"), "{live}");
}

#[tokio::test]
async fn a_stored_message_survives_a_clean_restart_and_is_delivered_once() {
    let mut server = server_with(TestConfig::default());
    let mut bob = login(&server, "bob", "pw-b", "home").await;
    let before = unix_now();
    send_accepted(&mut bob, "r1", "before the restart").await;
    let after = unix_now();

    assert!(server.terminate().success());
    drop(bob);
    server.restart();

    let mut alice = login(&server, "alice", "pw-a", "desk").await;
    expect_delayed(&mut alice, "r1", "before the restart", (before, after)).await;
    assert_no_message(&mut alice, "alice (a second copy)").await;
    log_out(alice).await;
    let mut alice = login(&server, "alice", "pw-a", "desk").await;
    assert_no_message(&mut alice, "alice at her next login").await;
}

#[tokio::test]
async fn a_message_accepted_just_before_a_crash_is_delivered_once_after_it() {
    let mut server = server_with(TestConfig::default());
    let mut bob = login(&server, "bob", "pw-b", "home").await;
    let before = unix_now();
    // The pong says the message was handled: from here on it must not be lost.
    send_accepted(&mut bob, "k1", "before the crash").await;
    let after = unix_now();
    server.kill();
    drop(bob);
    server.restart();

    let mut alice = login(&server, "alice", "pw-a", "desk").await;
    expect_delayed(&mut alice, "k1", "before the crash", (before, after)).await;
    assert_no_message(&mut alice, "alice (a second copy)").await;
    log_out(alice).await;
    let mut alice = login(&server, "alice", "pw-a", "desk").await;
    assert_no_message(&mut alice, "alice at her next login").await;
}

#[tokio::test]
async fn only_an_initial_presence_with_non_negative_priority_triggers_delivery() {
    let server = server_with(TestConfig::default());
    let mut bob = login(&server, "bob", "pw-b", "home").await;
    let before = unix_now();
    send_accepted(&mut bob, "p1", "for a visible resource").await;
    let after = unix_now();

    // Bound, no presence yet: nothing.
    let (mut shy, _) = RawClient::login_standard_no_presence(
        server.c2s,
        &server.cert_path(),
        "alice",
        "pw-a",
        "shy",
    )
    .await;
    assert_no_message(&mut shy, "a session without presence").await;
    // XEP-0160 §3: initial presence with negative priority: still nothing.
    shy.send("<presence id='neg'><priority>-1</priority></presence>")
        .await;
    let echo = shy.read_stanza_containing("id=\"neg\"").await;
    assert!(echo.contains("<priority>-1</priority>"), "{echo}");
    assert_no_message(&mut shy, "a negative-priority resource").await;

    // Non-negative initial presence (priority 0, the default): delivered there.
    let mut desk = login(&server, "alice", "pw-a", "desk").await;
    expect_delayed(&mut desk, "p1", "for a visible resource", (before, after)).await;
    assert_no_message(&mut shy, "the negative-priority resource").await;
    assert_no_message(&mut desk, "alice/desk (a second copy)").await;
}

#[tokio::test]
async fn a_positive_priority_initial_presence_triggers_delivery() {
    let server = server_with(TestConfig::default());
    let mut bob = login(&server, "bob", "pw-b", "home").await;
    let before = unix_now();
    send_accepted(&mut bob, "pp1", "priority five").await;
    let after = unix_now();

    let (mut alice, _) = RawClient::login_standard_no_presence(
        server.c2s,
        &server.cert_path(),
        "alice",
        "pw-a",
        "desk",
    )
    .await;
    alice
        .send("<presence id='pos'><priority>5</priority></presence>")
        .await;
    expect_delayed(&mut alice, "pp1", "priority five", (before, after)).await;
}

#[tokio::test]
async fn the_message_that_does_not_fit_bounces_and_the_rest_are_kept() {
    let server = server_with(TestConfig::default().section("offline", "max_messages = 2"));
    let mut bob = login(&server, "bob", "pw-b", "home").await;
    let before = unix_now();
    send_accepted(&mut bob, "l1", "one").await;
    send_accepted(&mut bob, "l2", "two").await;
    let after = unix_now();

    // XEP-0160 §5: full storage answers service-unavailable.
    bob.send("<message type='chat' to='alice@localhost' id='l3'><body>three</body></message>")
        .await;
    let err = bob.read_stanza_containing("id=\"l3\"").await;
    assert!(
        err.starts_with("<message") && err.contains("type=\"error\""),
        "{err}"
    );
    assert!(err.contains(SERVICE_UNAVAILABLE), "{err}");
    assert!(err.contains("from=\"alice@localhost\""), "{err}");

    let mut alice = login(&server, "alice", "pw-a", "desk").await;
    expect_delayed(&mut alice, "l1", "one", (before, after)).await;
    expect_delayed(&mut alice, "l2", "two", (before, after)).await;
    assert_no_message(&mut alice, "alice (the bounced one)").await;
    log_out(alice).await;

    // Delivery emptied the store: there is room again.
    send_accepted(&mut bob, "l4", "four").await;
}

#[tokio::test]
async fn with_offline_storage_off_a_message_bounces_at_once() {
    let server = server_with(TestConfig::default().section("offline", "max_messages = 0"));
    let mut bob = login(&server, "bob", "pw-b", "home").await;
    bob.send("<message type='chat' to='alice@localhost' id='z1'><body>anyone?</body></message>")
        .await;
    let err = bob.read_stanza_containing("id=\"z1\"").await;
    assert!(
        err.contains("type=\"error\"") && err.contains(SERVICE_UNAVAILABLE),
        "{err}"
    );
    let mut alice = login(&server, "alice", "pw-a", "desk").await;
    assert_no_message(&mut alice, "alice").await;
}

#[tokio::test]
async fn a_message_for_a_user_that_does_not_exist_is_service_unavailable() {
    let server = server_with(TestConfig::default());
    let mut bob = login(&server, "bob", "pw-b", "home").await;
    for (id, kind) in [("n1", "chat"), ("n2", "normal")] {
        bob.send(format!(
            "<message type='{kind}' to='nobody@localhost' id='{id}'><body>hello?</body></message>"
        ))
        .await;
        let err = bob.read_stanza_containing(&format!("id=\"{id}\"")).await;
        assert!(
            err.contains("type=\"error\"") && err.contains(SERVICE_UNAVAILABLE),
            "{err}"
        );
        assert!(err.contains("from=\"nobody@localhost\""), "{err}");
    }
    // A headline for an offline user is neither kept nor bounced (RFC 6121 §8.5.2.2.1).
    let before_pong = send_confirmed(
        &mut bob,
        "<message type='headline' to='alice@localhost' id='h1'><body>news</body></message>",
        "ping-h1",
    )
    .await;
    assert!(!before_pong.contains("id=\"h1\""), "{before_pong}");
    let mut alice = login(&server, "alice", "pw-a", "desk").await;
    assert_no_message(&mut alice, "alice (a headline)").await;
}

#[tokio::test]
async fn offline_messages_arrive_in_the_order_sent() {
    let server = server_with(TestConfig::default());
    let mut bob = login(&server, "bob", "pw-b", "home").await;
    let before = unix_now();
    // No pong between them: the order is the stream's.
    for i in 1..=5 {
        bob.send(format!(
            "<message type='chat' to='alice@localhost' id='o{i}'><body>number {i}</body></message>"
        ))
        .await;
    }
    let before_pong = send_confirmed(&mut bob, "", "ping-order").await;
    assert!(!before_pong.contains("type=\"error\""), "{before_pong}");
    let after = unix_now();

    let mut alice = login(&server, "alice", "pw-a", "desk").await;
    for i in 1..=5 {
        expect_delayed(
            &mut alice,
            &format!("o{i}"),
            &format!("number {i}"),
            (before, after),
        )
        .await;
    }
    assert_no_message(&mut alice, "alice (extra copies)").await;
}

/// XEP-0160 §3 and XEP-0334: what is kept for later. Messages with something to read or
/// decrypt (a body, a subject, an encrypted payload) are; chat states (XEP-0085) and
/// receipts (XEP-0184) alone are not, since they mean nothing once the moment has passed;
/// `<no-store/>` is never kept, `<store/>` always is. Not keeping is no error to the sender.
#[tokio::test]
async fn only_messages_worth_keeping_are_stored_offline_as_the_hints_say() {
    let server = server_with(TestConfig::default());
    let mut bob = login(&server, "bob", "pw-b", "home").await;
    let sent = [
        ("cs", false, "<composing xmlns='http://jabber.org/protocol/chatstates'/>"),
        ("rc", false, "<received xmlns='urn:xmpp:receipts' id='earlier'/>"),
        ("ns", false, "<body>secret</body><no-store xmlns='urn:xmpp:hints'/>"),
        ("st", true, "<active xmlns='http://jabber.org/protocol/chatstates'/><store xmlns='urn:xmpp:hints'/>"),
        ("sb", true, "<subject>news</subject>"),
        ("om", true, "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='7'/></encrypted>"),
        ("np", true, "<body>kept</body><no-permanent-store xmlns='urn:xmpp:hints'/>"),
        ("bd", true, "<body>hello</body><active xmlns='http://jabber.org/protocol/chatstates'/>"),
    ];
    for (id, _, payload) in sent {
        let before_pong = send_confirmed(
            &mut bob,
            &format!("<message type='chat' to='alice@localhost' id='{id}'>{payload}</message>"),
            &format!("ping-{id}"),
        )
        .await;
        assert!(
            !before_pong.contains(&format!("id=\"{id}\"")),
            "{id} was bounced: {before_pong}"
        );
    }

    let mut alice = login(&server, "alice", "pw-a", "desk").await;
    let expected: Vec<&str> = sent
        .iter()
        .filter(|(_, kept, _)| *kept)
        .map(|(id, _, _)| *id)
        .collect();
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let message = alice.read_stanza_containing("<message").await;
        assert!(message.contains("urn:xmpp:delay"), "{message}");
        let id = sent
            .iter()
            .map(|(id, _, _)| *id)
            .find(|id| message.contains(&format!("id=\"{id}\"")))
            .unwrap_or_else(|| panic!("unexpected message: {message}"));
        got.push(id);
    }
    assert_eq!(got, expected);
    assert_no_message(&mut alice, "alice (a message that should not be kept)").await;
}
