//! Interop: rosters, subscriptions and presence through the one IM core
//! with clients we did not write. Two slixmpp users add each other until both directions are
//! `both` (roster pushes also reach a second resource of the same user), see each other's
//! presence come and go and chat; xmpp-rs's tokio-xmpp does the same with slixmpp; and a Flash
//! client (NUL-framed XMLSocket) does it with slixmpp, roster versioning included.

use jabberwock_tests::slix::SlixIm;
use jabberwock_tests::xmpp_rs::Tokio;
use jabberwock_tests::{RawClient, TestServer, WAIT};
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::message::{Lang, Message, MessageType};
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::parsers::roster::{Ask, Subscription};
use tokio_xmpp::{Event, Stanza};

const ROSTER_NS: &str = "jabber:iq:roster";

/// The value of attribute `name` in the first tag of `xml` that has it.
fn attr<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!(" {name}=\"");
    let start = xml.find(&needle)? + needle.len();
    xml[start..].split('"').next()
}

/// A raw session's roster push containing `needle`: checks it is a push addressed to this
/// resource and answers it as RFC 6121 §2.1.6 asks. `sep` is "\0" on Flash streams.
async fn raw_push(c: &mut RawClient, to: &str, needle: &str, sep: &str) -> String {
    let push = loop {
        let stanza = c.read_stanza_containing(needle).await;
        if stanza.starts_with("<iq") {
            break stanza;
        }
    };
    assert!(push.contains("type=\"set\""), "{push}");
    assert_eq!(attr(&push, "to"), Some(to), "{push}");
    assert!(
        push.contains(&format!("<query xmlns=\"{ROSTER_NS}\" ver=\"")),
        "a push carries the new roster version (XEP-0237 §3): {push}"
    );
    let id = attr(&push, "id").expect("push id");
    c.send(format!("<iq type='result' id='{id}'/>{sep}")).await;
    push
}

/// Roster get (with `ver` when given); returns the whole result stanza.
async fn raw_roster_get(c: &mut RawClient, id: &str, ver: Option<&str>, sep: &str) -> String {
    let ver = ver.map(|v| format!(" ver='{v}'")).unwrap_or_default();
    c.send(format!(
        "<iq type='get' id='{id}'><query xmlns='{ROSTER_NS}'{ver}/></iq>{sep}"
    ))
    .await;
    let result = c.read_stanza_containing(&format!("id=\"{id}\"")).await;
    assert!(result.contains("type=\"result\""), "{result}");
    result
}

/// The roster `ver` of a roster result or push.
fn roster_ver(stanza: &str) -> String {
    let query = &stanza[stanza.find("<query").expect("a query")..];
    attr(query, "ver").expect("ver").to_owned()
}

#[tokio::test]
async fn slixmpp_users_subscribe_to_both_see_presence_come_and_go_and_chat() {
    let server = TestServer::start();
    // Migrations finish after the listeners are logged; `user add` must not race them.
    server.wait_started();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let cert = server.cert_path();
    let port = server.c2s.port();

    // Alice's second resource: did a roster get, so it is sent every roster push.
    let (mut second, second_jid) =
        RawClient::login_standard(server.c2s, &cert, "alice", "wonderland", "second").await;
    let empty = raw_roster_get(&mut second, "r1", None, "").await;
    assert!(!empty.contains("<item"), "{empty}");
    let empty_ver = roster_ver(&empty);

    let mut alice = SlixIm::spawn("alice@localhost/slix", "wonderland", port, &cert);
    let mut bob = SlixIm::spawn("bob@localhost/slix", "builder", port, &cert);
    alice.expect_all(&["session_start"]).await;
    bob.expect_all(&["session_start"]).await;
    let roster = alice.command(r#"{"cmd": "get_roster"}"#).await;
    assert!(roster.contains("\"items\": {}"), "{roster}");
    bob.command(r#"{"cmd": "get_roster"}"#).await;
    alice.command(r#"{"cmd": "available"}"#).await;
    bob.command(r#"{"cmd": "available"}"#).await;

    // Alice asks: her roster shows bob, none + ask (RFC 6121 §3.1.2), on both resources.
    alice
        .command(r#"{"cmd": "subscribe", "to": "bob@localhost"}"#)
        .await;
    alice
        .expect_all(&[
            "roster_update",
            "\"type\": \"set\"",
            r#""bob@localhost": {"subscription": "none", "ask": "subscribe"}"#,
        ])
        .await;
    let push = raw_push(&mut second, &second_jid, "ask=\"subscribe\"", "").await;
    assert!(push.contains("jid=\"bob@localhost\""), "{push}");
    assert!(push.contains("subscription=\"none\""), "{push}");

    // Bob gets the request from alice's bare JID (§3.1.3) and approves it.
    bob.expect_all(&[
        "\"event\": \"presence\"",
        r#""from": "alice@localhost", "type": "subscribe""#,
    ])
    .await;
    bob.command(r#"{"cmd": "authorize", "to": "alice@localhost"}"#)
        .await;
    bob.expect_all(&[
        "roster_update",
        r#""alice@localhost": {"subscription": "from""#,
    ])
    .await;
    alice
        .expect_all(&[
            "roster_update",
            r#""bob@localhost": {"subscription": "to", "ask": """#,
        ])
        .await;
    let push = raw_push(&mut second, &second_jid, "subscription=\"to\"", "").await;
    assert!(push.contains("jid=\"bob@localhost\""), "{push}");
    assert!(!push.contains("ask="), "{push}");
    // §3.1.5: approving shares bob's presence with his new subscriber.
    alice
        .expect_ever(&[r#""from": "bob@localhost/slix", "type": "available""#])
        .await;

    // Bob asks back; alice approves: both directions are `both`.
    bob.command(r#"{"cmd": "subscribe", "to": "alice@localhost"}"#)
        .await;
    bob.expect_all(&[
        "roster_update",
        r#""alice@localhost": {"subscription": "from", "ask": "subscribe"}"#,
    ])
    .await;
    alice
        .expect_ever(&[r#""from": "bob@localhost", "type": "subscribe""#])
        .await;
    alice
        .command(r#"{"cmd": "authorize", "to": "bob@localhost"}"#)
        .await;
    alice
        .expect_all(&[
            "roster_update",
            r#""bob@localhost": {"subscription": "both""#,
        ])
        .await;
    bob.expect_all(&[
        "roster_update",
        r#""alice@localhost": {"subscription": "both""#,
    ])
    .await;
    let push = raw_push(&mut second, &second_jid, "subscription=\"both\"", "").await;
    assert!(push.contains("jid=\"bob@localhost\""), "{push}");
    // Bob now sees both of alice's available resources.
    bob.expect_ever(&[r#""from": "alice@localhost/slix", "type": "available""#])
        .await;
    bob.expect_ever(&[r#""from": "alice@localhost/second", "type": "available""#])
        .await;

    // Each client's own roster (slixmpp's client_roster) says `both`.
    let state = alice.command(r#"{"cmd": "roster_state"}"#).await;
    assert!(
        state.contains(r#""bob@localhost": {"subscription": "both", "pending_out": false}"#),
        "{state}"
    );
    let state = bob.command(r#"{"cmd": "roster_state"}"#).await;
    assert!(
        state.contains(r#""alice@localhost": {"subscription": "both", "pending_out": false}"#),
        "{state}"
    );

    // Bob goes away and comes back: alice's resources see it, from his full JID.
    bob.command(r#"{"cmd": "unavailable"}"#).await;
    alice
        .expect_all(&[r#""from": "bob@localhost/slix", "type": "unavailable""#])
        .await;
    loop {
        let presence = second
            .read_stanza_containing("from=\"bob@localhost/slix\"")
            .await;
        if presence.starts_with("<presence") && attr(&presence, "type") == Some("unavailable") {
            break;
        }
    }
    bob.command(r#"{"cmd": "available"}"#).await;
    alice
        .expect_all(&[r#""from": "bob@localhost/slix", "type": "available""#])
        .await;

    // Messages both ways.
    alice
        .command(r#"{"cmd": "message", "to": "bob@localhost", "body": "hello bob"}"#)
        .await;
    bob.expect_all(&[
        "\"event\": \"received\"",
        r#""from": "alice@localhost/slix", "body": "hello bob""#,
    ])
    .await;
    bob.command(r#"{"cmd": "message", "to": "alice@localhost/slix", "body": "hi alice"}"#)
        .await;
    alice
        .expect_all(&[
            "\"event\": \"received\"",
            r#""from": "bob@localhost/slix", "body": "hi alice""#,
        ])
        .await;

    // The second resource's roster, fetched again: bob is `both`; with the version it
    // already has, the answer is empty (XEP-0237 §4).
    let full = raw_roster_get(&mut second, "r2", Some(&empty_ver), "").await;
    assert!(
        full.contains("<item jid=\"bob@localhost\" subscription=\"both\""),
        "{full}"
    );
    let current = roster_ver(&full);
    let same = raw_roster_get(&mut second, "r3", Some(&current), "").await;
    assert!(!same.contains("<item"), "{same}");

    // Alice's slixmpp leaves: bob sees that resource go.
    assert!(alice.quit().await, "alice's slixmpp reported failure");
    bob.expect_all(&[r#""from": "alice@localhost/slix", "type": "unavailable""#])
        .await;
    assert!(bob.quit().await, "bob's slixmpp reported failure");
}

fn presence_from(s: &Stanza, from: &str, type_: PresenceType) -> bool {
    matches!(s, Stanza::Presence(p)
        if p.type_ == type_ && p.from.as_ref().map(|f| f.to_string()).as_deref() == Some(from))
}

#[tokio::test]
async fn tokio_xmpp_and_slixmpp_subscribe_to_both_see_presence_and_chat() {
    let server = TestServer::start();
    // Migrations finish after the listeners are logged; `user add` must not race them.
    server.wait_started();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let cert = server.cert_path();
    let bob_jid: BareJid = "bob@localhost".parse().unwrap();

    let (mut alice, online) = Tokio::online(&server, "alice@localhost/tokio", "wonderland").await;
    let Event::Online {
        bound_jid,
        features,
        ..
    } = online
    else {
        panic!("expected Online, got {online:?}");
    };
    assert_eq!(bound_jid.to_string(), "alice@localhost/tokio");
    // Through STARTTLS (the connector above) and tokio-xmpp's own SASL: PLAIN today, since
    // it brings tls-exporter binding data and we offer no SCRAM-*-PLUS.
    assert!(
        server.wait_log("authenticated jid=alice@localhost ip=127.0.0.1 mechanism="),
        "{}",
        server.log_text()
    );
    assert!(
        features
            .others
            .iter()
            .any(|f| f.is("ver", "urn:xmpp:features:rosterver")),
        "roster versioning is advertised after SASL: {features:?}"
    );
    let roster = alice.roster().await;
    assert!(roster.items.is_empty(), "{roster:?}");
    assert!(
        roster.ver.is_some(),
        "the result carries a version: {roster:?}"
    );
    alice.send(Presence::available()).await;

    let mut bob = SlixIm::spawn("bob@localhost/slix", "builder", server.c2s.port(), &cert);
    bob.expect_all(&["session_start"]).await;
    bob.command(r#"{"cmd": "get_roster"}"#).await;
    bob.command(r#"{"cmd": "available"}"#).await;

    // tokio-xmpp asks, slixmpp approves and asks back, tokio-xmpp approves.
    alice
        .send(Presence::subscribe().with_to(bob_jid.clone()))
        .await;
    alice
        .push(&bob_jid, "a push with ask=subscribe", |s, a| {
            *s == Subscription::None && *a == Ask::Subscribe
        })
        .await;
    bob.expect_all(&[r#""from": "alice@localhost", "type": "subscribe""#])
        .await;
    bob.command(r#"{"cmd": "authorize", "to": "alice@localhost"}"#)
        .await;
    bob.command(r#"{"cmd": "subscribe", "to": "alice@localhost"}"#)
        .await;
    alice
        .push(&bob_jid, "a push with subscription=to", |s, _| {
            *s == Subscription::To
        })
        .await;
    alice
        .wait("bob's available presence", |s| {
            presence_from(s, "bob@localhost/slix", PresenceType::None).then_some(())
        })
        .await;
    alice
        .wait("bob's subscription request", |s| {
            presence_from(s, "bob@localhost", PresenceType::Subscribe).then_some(())
        })
        .await;
    alice
        .send(Presence::subscribed().with_to(bob_jid.clone()))
        .await;
    alice
        .push(&bob_jid, "a push with subscription=both", |s, a| {
            *s == Subscription::Both && *a == Ask::None
        })
        .await;
    bob.expect_all(&[
        "roster_update",
        r#""alice@localhost": {"subscription": "both""#,
    ])
    .await;
    bob.expect_ever(&[r#""from": "alice@localhost/tokio", "type": "available""#])
        .await;
    let roster = alice.roster().await;
    let item = roster
        .items
        .iter()
        .find(|i| i.jid == bob_jid)
        .unwrap_or_else(|| panic!("bob is not in {roster:?}"));
    assert_eq!(item.subscription, Subscription::Both, "{roster:?}");

    // Bob's presence goes and comes back; tokio-xmpp sees both, from his full JID.
    let mark = alice.seen.len();
    bob.command(r#"{"cmd": "unavailable"}"#).await;
    alice
        .wait_from(mark, "bob's unavailable presence", |s| {
            presence_from(s, "bob@localhost/slix", PresenceType::Unavailable).then_some(())
        })
        .await;
    let mark = alice.seen.len();
    bob.command(r#"{"cmd": "available"}"#).await;
    alice
        .wait_from(mark, "bob's presence again", |s| {
            presence_from(s, "bob@localhost/slix", PresenceType::None).then_some(())
        })
        .await;

    // Messages both ways.
    let mut message = Message::chat(Some(Jid::from(bob_jid.clone())));
    message
        .bodies
        .insert(Lang::default(), "hello from tokio-xmpp".into());
    alice.send(message).await;
    bob.expect_all(&[r#""from": "alice@localhost/tokio", "body": "hello from tokio-xmpp""#])
        .await;
    bob.command(
        r#"{"cmd": "message", "to": "alice@localhost/tokio", "body": "hello from slixmpp"}"#,
    )
    .await;
    let body = alice
        .wait("bob's message", |s| match s {
            Stanza::Message(m)
                if m.type_ == MessageType::Chat
                    && m.from.as_ref().map(|f| f.to_string()).as_deref()
                        == Some("bob@localhost/slix") =>
            {
                m.get_best_body_cloned(vec![]).map(|(_, body)| body)
            }
            _ => None,
        })
        .await;
    assert_eq!(body, "hello from slixmpp");

    // tokio-xmpp closes its stream: bob sees it go.
    alice.client.send_end().await.expect("tokio-xmpp close");
    bob.expect_all(&[r#""from": "alice@localhost/tokio", "type": "unavailable""#])
        .await;
    assert!(bob.quit().await, "bob's slixmpp reported failure");
}

/// The next Flash unit containing `needle` (each unit one NUL-terminated element).
async fn flash_unit(c: &mut RawClient, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut skipped = Vec::new();
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Flash unit containing {needle:?}; skipped {skipped:?}"
        );
        let unit = c.read_unit().await;
        assert!(unit.starts_with('<'), "{unit:?}");
        if unit.contains(needle) {
            return unit;
        }
        skipped.push(unit);
    }
}

#[tokio::test]
async fn flash_client_and_slixmpp_share_roster_subscriptions_presence_and_messages() {
    let server = TestServer::start();
    // Migrations finish after the listeners are logged; `user add` must not race them.
    server.wait_started();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let cert = server.cert_path();

    let (mut flash, flash_jid) =
        RawClient::login_flash(server.c2s, "alice", "wonderland", "xiff").await;
    assert_eq!(flash_jid, "alice@localhost/xiff");

    // Roster get: a result with the version and no items yet.
    flash
        .send(format!(
            "<iq type=\"get\" id=\"roster_1\"><query xmlns=\"{ROSTER_NS}\"/></iq>\0"
        ))
        .await;
    let first = flash_unit(&mut flash, "id=\"roster_1\"").await;
    assert!(first.contains("type=\"result\""), "{first}");
    assert!(!first.contains("<item"), "{first}");
    let empty_ver = roster_ver(&first);

    // Roster set: bob added with a name and a group; the push comes as its own unit.
    flash
        .send(format!(
            "<iq type=\"set\" id=\"roster_2\"><query xmlns=\"{ROSTER_NS}\"><item jid=\"bob@localhost\" name=\"Bob\"><group>Friends</group></item></query></iq>\0"
        ))
        .await;
    let push = flash_unit(&mut flash, "<iq type=\"set\"").await;
    assert_eq!(attr(&push, "to"), Some(flash_jid.as_str()), "{push}");
    assert!(push.contains("jid=\"bob@localhost\""), "{push}");
    assert!(push.contains("subscription=\"none\""), "{push}");
    assert!(push.contains("name=\"Bob\""), "{push}");
    assert!(push.contains("<group>Friends</group>"), "{push}");
    assert_ne!(roster_ver(&push), empty_ver, "{push}");
    let id = attr(&push, "id").unwrap().to_owned();
    flash
        .send(format!("<iq type=\"result\" id=\"{id}\"/>\0"))
        .await;
    let result = flash_unit(&mut flash, "id=\"roster_2\"").await;
    assert!(result.contains("type=\"result\""), "{result}");

    let mut bob = SlixIm::spawn("bob@localhost/slix", "builder", server.c2s.port(), &cert);
    bob.expect_all(&["session_start"]).await;
    bob.command(r#"{"cmd": "get_roster"}"#).await;
    bob.command(r#"{"cmd": "available"}"#).await;

    // Flash asks; slixmpp approves and asks back; Flash approves.
    flash
        .send("<presence to=\"bob@localhost\" type=\"subscribe\"/>\0")
        .await;
    let push = flash_unit(&mut flash, "ask=\"subscribe\"").await;
    assert!(push.starts_with("<iq"), "{push}");
    assert!(push.contains("name=\"Bob\""), "the name is kept: {push}");
    bob.expect_all(&[r#""from": "alice@localhost", "type": "subscribe""#])
        .await;
    bob.command(r#"{"cmd": "authorize", "to": "alice@localhost"}"#)
        .await;
    let push = flash_unit(&mut flash, "subscription=\"to\"").await;
    assert!(push.starts_with("<iq") && !push.contains("ask="), "{push}");
    let presence = flash_unit(&mut flash, "from=\"bob@localhost/slix\"").await;
    assert!(presence.starts_with("<presence"), "{presence}");
    assert!(!presence.contains("type="), "available: {presence}");
    bob.command(r#"{"cmd": "subscribe", "to": "alice@localhost"}"#)
        .await;
    let request = flash_unit(&mut flash, "type=\"subscribe\"").await;
    assert!(request.starts_with("<presence"), "{request}");
    assert_eq!(attr(&request, "from"), Some("bob@localhost"), "{request}");
    flash
        .send("<presence to=\"bob@localhost\" type=\"subscribed\"/>\0")
        .await;
    let push = flash_unit(&mut flash, "subscription=\"both\"").await;
    assert!(push.starts_with("<iq"), "{push}");
    let both_ver = roster_ver(&push);
    bob.expect_all(&[
        "roster_update",
        r#""alice@localhost": {"subscription": "both""#,
    ])
    .await;
    bob.expect_ever(&[r#""from": "alice@localhost/xiff", "type": "available""#])
        .await;
    let state = bob.command(r#"{"cmd": "roster_state"}"#).await;
    assert!(
        state.contains(r#""alice@localhost": {"subscription": "both", "pending_out": false}"#),
        "{state}"
    );

    // Roster get from the old version: the item, `both`, at the newest version; from the
    // newest version: an empty result (XEP-0237 §4).
    flash
        .send(format!(
            "<iq type=\"get\" id=\"roster_3\"><query xmlns=\"{ROSTER_NS}\" ver=\"{empty_ver}\"/></iq>\0"
        ))
        .await;
    let full = flash_unit(&mut flash, "id=\"roster_3\"").await;
    assert!(full.contains("type=\"result\""), "{full}");
    assert!(full.contains("jid=\"bob@localhost\""), "{full}");
    assert!(full.contains("subscription=\"both\""), "{full}");
    assert!(full.contains("<group>Friends</group>"), "{full}");
    assert_eq!(roster_ver(&full), both_ver, "{full}");
    flash
        .send(format!(
            "<iq type=\"get\" id=\"roster_4\"><query xmlns=\"{ROSTER_NS}\" ver=\"{both_ver}\"/></iq>\0"
        ))
        .await;
    let same = flash_unit(&mut flash, "id=\"roster_4\"").await;
    assert!(
        same.contains("type=\"result\"") && !same.contains("<item"),
        "{same}"
    );

    // Bob goes and comes back: the Flash client sees both.
    bob.command(r#"{"cmd": "unavailable"}"#).await;
    let gone = flash_unit(&mut flash, "type=\"unavailable\"").await;
    assert_eq!(attr(&gone, "from"), Some("bob@localhost/slix"), "{gone}");
    bob.command(r#"{"cmd": "available"}"#).await;
    let back = flash_unit(&mut flash, "from=\"bob@localhost/slix\"").await;
    assert!(
        back.starts_with("<presence") && !back.contains("type="),
        "{back}"
    );

    // Flash goes unavailable and comes back: bob sees both.
    flash.send("<presence type=\"unavailable\"/>\0").await;
    bob.expect_all(&[r#""from": "alice@localhost/xiff", "type": "unavailable""#])
        .await;
    flash.send("<presence/>\0").await;
    bob.expect_all(&[r#""from": "alice@localhost/xiff", "type": "available""#])
        .await;

    // Messages both ways.
    flash
        .send("<message type=\"chat\" to=\"bob@localhost\" id=\"m_1\"><body>hi bob, from flash</body></message>\0")
        .await;
    bob.expect_all(&[r#""from": "alice@localhost/xiff", "body": "hi bob, from flash""#])
        .await;
    bob.command(r#"{"cmd": "message", "to": "alice@localhost", "body": "hi flash"}"#)
        .await;
    let message = flash_unit(&mut flash, "<message").await;
    assert_eq!(
        attr(&message, "from"),
        Some("bob@localhost/slix"),
        "{message}"
    );
    assert!(message.contains("<body>hi flash</body>"), "{message}");

    assert!(bob.quit().await, "bob's slixmpp reported failure");
    let gone = flash_unit(&mut flash, "type=\"unavailable\"").await;
    assert_eq!(attr(&gone, "from"), Some("bob@localhost/slix"), "{gone}");
    flash.send("</flash:stream>\0").await;
    let close = flash.read_to_close().await;
    assert!(close.ends_with("</flash:stream>\0"), "{close:?}");
}
