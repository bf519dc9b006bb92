//! Roster versioning (XEP-0237, RFC 6121 §2.6): the feature is
//! advertised after authentication; a get without `ver` (or with an old one) returns the
//! whole roster and its version; a get with the current version returns an empty result;
//! every change is pushed with a higher version; the version survives a restart.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jabberwock_tests::raw::STREAM_HEADER;
use jabberwock_tests::{RawClient, TestServer};

const ROSTERVER: &str = "<ver xmlns=\"urn:xmpp:features:rosterver\"/>";
const QUIET: Duration = Duration::from_secs(1);

fn server_with_users() -> TestServer {
    let server = TestServer::start();
    // Not before the server's own migrations are done.
    server.wait_started();
    for (jid, pw) in [
        ("alice@localhost", "pw-a"),
        ("bob@localhost", "pw-b"),
        ("carol@localhost", "pw-c"),
    ] {
        server.add_user(jid, pw);
    }
    server
}

async fn login(server: &TestServer, user: &str, password: &str, resource: &str) -> RawClient {
    let (c, jid) =
        RawClient::login_standard(server.c2s, &server.cert_path(), user, password, resource).await;
    assert_eq!(jid, format!("{user}@localhost/{resource}"));
    c
}

/// The `ver` attribute of the roster `<query/>` in `stanza`.
fn ver_of(stanza: &str) -> u64 {
    let query = stanza
        .split("<query xmlns=\"jabber:iq:roster\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no roster query: {stanza}"));
    let tag = query.split('>').next().unwrap();
    tag.split("ver=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .unwrap_or_else(|| panic!("no ver: {stanza}"))
        .parse()
        .unwrap_or_else(|_| panic!("ver is not the counter we expect: {stanza}"))
}

/// Roster get (with `ver` if given); returns the whole result stanza.
async fn roster_get(c: &mut RawClient, id: &str, ver: Option<&str>) -> String {
    let ver = ver.map(|v| format!(" ver='{v}'")).unwrap_or_default();
    c.send(format!(
        "<iq type='get' id='{id}'><query xmlns='jabber:iq:roster'{ver}/></iq>"
    ))
    .await;
    let result = c.read_stanza_containing(&format!("id=\"{id}\"")).await;
    assert!(result.contains("type=\"result\""), "{result}");
    result
}

/// The next roster push, acknowledged as RFC 6121 §2.1.6 asks.
async fn next_push(c: &mut RawClient) -> String {
    let push = c.read_stanza_containing("type=\"set\"").await;
    assert!(push.contains("<query xmlns=\"jabber:iq:roster\""), "{push}");
    let id = push
        .split("id=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .expect("push id");
    c.send(format!("<iq type='result' id='{id}'/>")).await;
    push
}

#[tokio::test]
async fn the_feature_is_advertised_after_authentication() {
    let server = server_with_users();
    let (mut c, before_auth) = RawClient::starttls_stream(server.c2s, &server.cert_path()).await;
    assert!(before_auth.contains("<mechanisms"), "{before_auth}");
    let token = B64.encode("\0alice\0pw-a");
    c.send(format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
    ))
    .await;
    let success = c.read_until("/>").await;
    assert!(success.contains("<success"), "{success}");
    c.send(STREAM_HEADER).await;
    let features = c.read_until("</stream:features>").await;
    assert!(features.contains(ROSTERVER), "{features}");
    assert!(
        features.contains("urn:ietf:params:xml:ns:xmpp-bind"),
        "{features}"
    );
}

#[tokio::test]
async fn gets_pushes_and_old_versions() {
    let server = server_with_users();
    let mut a = login(&server, "alice", "pw-a", "a").await;
    let mut b = login(&server, "alice", "pw-a", "b").await;

    // No ver: the whole (empty) roster with its version.
    let first = roster_get(&mut a, "g1", None).await;
    let v0 = ver_of(&first);
    assert!(!first.contains("<item"), "{first}");
    // An empty ver means "I support versioning but have no cache" (XEP-0237 §4): all of it.
    let empty = roster_get(&mut a, "g1b", Some("")).await;
    assert_eq!(ver_of(&empty), v0, "{empty}");
    // The current ver: an empty result, no query (XEP-0237 §4, RFC 6121 §2.6.3).
    let current = roster_get(&mut a, "g2", Some(&v0.to_string())).await;
    assert!(
        !current.contains("<query") && current.ends_with("/>"),
        "{current}"
    );

    // A roster set from another resource: pushed to the interested resource with a higher
    // version each time.
    b.send("<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'><group>Friends</group></item></query></iq>")
        .await;
    let push1 = next_push(&mut a).await;
    assert!(push1.contains("jid=\"bob@localhost\""), "{push1}");
    assert!(push1.contains("name=\"Bob\""), "{push1}");
    let v1 = ver_of(&push1);
    assert!(v1 > v0, "{v1} after {v0}: {push1}");
    b.read_stanza_containing("id=\"s1\"").await;

    b.send("<iq type='set' id='s2'><query xmlns='jabber:iq:roster'><item jid='carol@localhost'/></query></iq>")
        .await;
    let push2 = next_push(&mut a).await;
    assert!(push2.contains("jid=\"carol@localhost\""), "{push2}");
    let v2 = ver_of(&push2);
    assert!(v2 > v1, "{v2} after {v1}: {push2}");

    // A subscription change is a roster change too (RFC 6121 §3.1.2: ask="subscribe").
    b.send("<presence to='bob@localhost' type='subscribe'/>")
        .await;
    let push3 = next_push(&mut a).await;
    assert!(
        push3.contains("jid=\"bob@localhost\"") && push3.contains("ask=\"subscribe\""),
        "{push3}"
    );
    let v3 = ver_of(&push3);
    assert!(v3 > v2, "{v3} after {v2}: {push3}");

    // ... and the contact accepting it moves the version on again.
    let mut bob = login(&server, "bob", "pw-b", "home").await;
    bob.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    let push4 = next_push(&mut a).await;
    assert!(
        push4.contains("jid=\"bob@localhost\"") && push4.contains("subscription=\"to\""),
        "{push4}"
    );
    let v4 = ver_of(&push4);
    assert!(v4 > v3, "{v4} after {v3}: {push4}");

    // An old version: the whole roster, at the current version.
    let full = roster_get(&mut a, "g3", Some(&v1.to_string())).await;
    assert_eq!(ver_of(&full), v4, "{full}");
    assert!(
        full.contains("jid=\"bob@localhost\"") && full.contains("subscription=\"to\""),
        "{full}"
    );
    assert!(full.contains("<group>Friends</group>"), "{full}");
    assert!(full.contains("jid=\"carol@localhost\""), "{full}");
    // A version the server never handed out is not current either.
    let unknown = roster_get(&mut a, "g4", Some("not-a-version")).await;
    assert_eq!(ver_of(&unknown), v4, "{unknown}");
    // The current one: empty again.
    let current = roster_get(&mut a, "g5", Some(&v4.to_string())).await;
    assert!(!current.contains("<query"), "{current}");

    // Nothing is pushed to a resource that never asked for the roster (RFC 6121 §2.1.6).
    let got = b.read_for(QUIET).await;
    assert!(!got.contains("push-"), "alice/b was not interested: {got}");
}

#[tokio::test]
async fn the_version_survives_a_restart() {
    let mut server = server_with_users();
    let mut a = login(&server, "alice", "pw-a", "a").await;
    let v0 = ver_of(&roster_get(&mut a, "g1", None).await);
    a.send("<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'/></query></iq>")
        .await;
    let push = next_push(&mut a).await;
    let v1 = ver_of(&push);
    assert!(v1 > v0, "{push}");
    a.read_stanza_containing("id=\"s1\"").await;

    assert!(server.terminate().success());
    drop(a);
    server.restart();

    let mut a = login(&server, "alice", "pw-a", "a").await;
    // The cached copy is still current after the restart...
    let current = roster_get(&mut a, "g2", Some(&v1.to_string())).await;
    assert!(!current.contains("<query"), "{current}");
    // ... an older one gets the roster at the same version...
    let full = roster_get(&mut a, "g3", Some(&v0.to_string())).await;
    assert_eq!(ver_of(&full), v1, "{full}");
    assert!(full.contains("name=\"Bob\""), "{full}");
    // ... and the next change continues from it rather than starting over.
    a.send("<iq type='set' id='s2'><query xmlns='jabber:iq:roster'><item jid='carol@localhost'/></query></iq>")
        .await;
    let push = next_push(&mut a).await;
    assert!(ver_of(&push) > v1, "{push}");
}

/// XEP-0237 across an account's removal: a client that cached the removed account's roster
/// version must get the new account's roster, not "up to date", even after the new account
/// made as many changes as the old one had.
#[tokio::test]
async fn a_recreated_account_never_matches_a_cached_version() {
    let server = server_with_users();
    let set = |id: &str, jid: &str| {
        format!("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'><item jid='{jid}'/></query></iq>")
    };
    let mut a = login(&server, "alice", "pw-a", "a").await;
    for (id, jid) in [("s1", "bob@localhost"), ("s2", "carol@localhost")] {
        a.send(set(id, jid)).await;
        a.read_stanza_containing(&format!("id=\"{id}\"")).await;
    }
    let cached = ver_of(&roster_get(&mut a, "g1", None).await).to_string();
    drop(a);

    server.remove_user("alice@localhost");
    server.add_user("alice@localhost", "pw-new");
    let mut a = login(&server, "alice", "pw-new", "a").await;
    // The new account's own changes, as many as the old one made, to other contacts.
    for (id, jid) in [("t1", "dave@localhost"), ("t2", "erin@localhost")] {
        a.send(set(id, jid)).await;
        a.read_stanza_containing(&format!("id=\"{id}\"")).await;
    }
    let answer = roster_get(&mut a, "g2", Some(&cached)).await;
    assert!(
        answer.contains("<query") && answer.contains("dave@localhost"),
        "the cached version {cached} of the removed account was taken as current: {answer}"
    );
    assert!(!answer.contains("bob@localhost"), "{answer}");
}
