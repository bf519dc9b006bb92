//! A user cannot read or change another user's roster (RFC 6121
//! §2.1.5), malformed roster sets are refused (§2.3.3), and presence never reaches a JID
//! without a subscription or directed presence (§4): not initial presence, not updates, not
//! unavailable, not probe answers.
//!
//! "Nothing arrived" is asserted with a ping barrier (see im_support): the actor's ping
//! answer means its stanza was fully processed, the observer's that it read all of it.

mod im_support;

use std::net::SocketAddr;
use std::path::Path;

use im_support::{attr, item_for, presence_from, pushes, register, Peer};
use jabberwock_tests::{TestConfig, TestServer};

const PASSWORD: &str = "pw-secret";

fn server() -> TestServer {
    TestServer::start_with(TestConfig::default().host("localhost", "registration = true"))
}

async fn user(server: &TestServer, name: &str) -> Peer {
    let (addr, cert): (SocketAddr, &Path) = (server.c2s, &server.cert_path());
    register(addr, cert, name, PASSWORD).await;
    let mut peer = Peer::login(addr, cert, name, PASSWORD, "res").await;
    peer.roster().await;
    peer
}

/// `subscriber` asks for `owner`'s presence and `owner` approves (RFC 6121 §3.1).
async fn subscribe(subscriber: &mut Peer, owner: &mut Peer) {
    let to = owner.bare.clone();
    subscriber
        .send(format!("<presence to='{to}' type='subscribe'/>"))
        .await;
    subscriber.sync().await;
    owner.sync().await;
    let to = subscriber.bare.clone();
    owner
        .send(format!("<presence to='{to}' type='subscribed'/>"))
        .await;
    owner.sync().await;
    subscriber.sync().await;
}

/// Presence notifications (available or unavailable, not subscription stanzas) from any
/// resource of `from_bare`.
fn notifications<'a>(stanzas: &'a [String], from_bare: &str) -> Vec<&'a String> {
    presence_from(stanzas, from_bare)
        .into_iter()
        .filter(|s| matches!(attr(s, "type").as_deref(), None | Some("unavailable")))
        .collect()
}

/// Asserts `observer` was handed no presence notification from `from_bare`.
async fn sees_nothing_from(observer: &mut Peer, from_bare: &str, what: &str) {
    let got = observer.sync().await;
    let leaked = notifications(&got, from_bare);
    assert!(
        leaked.is_empty(),
        "{what}: {} must not see presence of {from_bare}: {leaked:?}",
        observer.jid
    );
}

/// The one presence notification from `from_full` among what `observer` was handed.
async fn sees_from(observer: &mut Peer, from_full: &str, what: &str) -> String {
    let got = observer.sync().await;
    let bare = from_full.split('/').next().unwrap();
    let from: Vec<_> = notifications(&got, bare)
        .into_iter()
        .filter(|s| attr(s, "from").as_deref() == Some(from_full))
        .collect();
    assert_eq!(
        from.len(),
        1,
        "{what}: {} should get one presence from {from_full}: {got:?}",
        observer.jid
    );
    from[0].clone()
}

fn is_error(reply: &str, condition: &str) -> bool {
    reply.contains("type=\"error\"") && reply.contains(&format!("<{condition} "))
}

#[tokio::test]
async fn another_users_roster_can_be_neither_read_nor_changed() {
    let server = server();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    let (ok, _) = bob
        .iq("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'><item jid='carol@localhost' name='Carol'><group>Friends</group></item></query></iq>")
        .await;
    assert!(ok.contains("type=\"result\""), "{ok}");
    bob.sync().await;

    // §2.1.5: a roster request addressed to another account is forbidden.
    let (reply, _) = alice
        .iq("<iq type='get' id='{id}' to='bob@localhost'><query xmlns='jabber:iq:roster'/></iq>")
        .await;
    assert!(is_error(&reply, "forbidden"), "get: {reply}");
    assert!(!reply.contains("carol"), "bob's roster leaked: {reply}");
    for set in [
        "<iq type='set' id='{id}' to='bob@localhost'><query xmlns='jabber:iq:roster'><item jid='mallory@localhost' name='Mallory'/></query></iq>",
        "<iq type='set' id='{id}' to='bob@localhost'><query xmlns='jabber:iq:roster'><item jid='carol@localhost' name='Renamed'/></query></iq>",
        "<iq type='set' id='{id}' to='bob@localhost'><query xmlns='jabber:iq:roster'><item jid='carol@localhost' subscription='remove'/></query></iq>",
    ] {
        let (reply, _) = alice.iq(set).await;
        assert!(is_error(&reply, "forbidden"), "{set}: {reply}");
    }

    // Bob's roster is as he left it, and nothing was pushed to him.
    let pushed = bob.sync().await;
    assert!(pushes(&pushed).is_empty(), "pushes to bob: {pushed:?}");
    let (roster, _) = bob.roster().await;
    let carol = item_for(&roster, "carol@localhost").expect("carol still in bob's roster");
    assert_eq!(attr(&carol, "name").as_deref(), Some("Carol"), "{roster}");
    assert!(roster.contains("<group>Friends</group>"), "{roster}");
    assert!(item_for(&roster, "mallory@localhost").is_none(), "{roster}");

    // Control: addressed to her own bare JID, alice's request is hers to make.
    let (own, _) = alice
        .iq("<iq type='get' id='{id}' to='alice@localhost'><query xmlns='jabber:iq:roster'/></iq>")
        .await;
    assert!(own.contains("type=\"result\""), "{own}");
    assert!(!own.contains("carol"), "{own}");
}

#[tokio::test]
async fn malformed_roster_sets_are_bad_requests() {
    let server = server();
    let mut alice = user(&server, "alice").await;
    for (what, item) in [
        (
            "two items",
            "<item jid='one@localhost'/><item jid='two@localhost'/>",
        ),
        ("an invalid JID", "<item jid='bad@@jid@localhost'/>"),
        ("no JID", "<item name='nobody'/>"),
        (
            "an empty group",
            "<item jid='three@localhost'><group></group></item>",
        ),
        (
            "a repeated group",
            "<item jid='four@localhost'><group>G</group><group>G</group></item>",
        ),
    ] {
        let (reply, _) = alice
            .iq(&format!(
                "<iq type='set' id='{{id}}'><query xmlns='jabber:iq:roster'>{item}</query></iq>"
            ))
            .await;
        assert!(is_error(&reply, "bad-request"), "{what}: {reply}");
    }
    let pushed = alice.sync().await;
    assert!(pushes(&pushed).is_empty(), "{pushed:?}");
    let (roster, _) = alice.roster().await;
    assert!(!roster.contains("<item"), "nothing was added: {roster}");
}

#[tokio::test]
async fn presence_reaches_subscribers_only() {
    let server = server();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await; // subscribed to alice ("from" in her roster)
    let mut carol = user(&server, "carol").await; // no subscription either way
    let mut dave = user(&server, "dave").await; // alice is subscribed to him ("to"), not he to her
    subscribe(&mut bob, &mut alice).await;
    subscribe(&mut alice, &mut dave).await;
    for peer in [&mut alice, &mut bob, &mut carol, &mut dave] {
        peer.sync().await;
    }

    // Initial presence of a second resource: to bob, not to carol or dave.
    let (addr, cert) = (server.c2s, server.cert_path());
    let mut phone = Peer::login(addr, &cert, "alice", PASSWORD, "phone").await;
    let at_login = phone.sync().await;
    // Control: alice's new resource probed dave, whom she is subscribed to.
    assert_eq!(
        notifications(&at_login, "dave@localhost").len(),
        1,
        "{at_login:?}"
    );
    sees_from(&mut bob, "alice@localhost/phone", "initial presence").await;
    sees_nothing_from(&mut carol, "alice@localhost", "initial presence").await;
    sees_nothing_from(&mut dave, "alice@localhost", "initial presence").await;

    // An update.
    alice.send("<presence><show>away</show></presence>").await;
    alice.sync().await;
    let update = sees_from(&mut bob, "alice@localhost/res", "update").await;
    assert!(update.contains("<show>away</show>"), "{update}");
    sees_nothing_from(&mut carol, "alice@localhost", "update").await;
    sees_nothing_from(&mut dave, "alice@localhost", "update").await;

    // Unavailable.
    phone.send("<presence type='unavailable'/>").await;
    phone.sync().await;
    let gone = sees_from(&mut bob, "alice@localhost/phone", "unavailable").await;
    assert_eq!(
        attr(&gone, "type").as_deref(),
        Some("unavailable"),
        "{gone}"
    );
    sees_nothing_from(&mut carol, "alice@localhost", "unavailable").await;
    sees_nothing_from(&mut dave, "alice@localhost", "unavailable").await;

    // A `to` subscription works one way: dave's presence reaches alice, not carol.
    dave.send("<presence><status>dave here</status></presence>")
        .await;
    dave.sync().await;
    let from_dave = sees_from(&mut alice, "dave@localhost/res", "dave's update").await;
    assert!(from_dave.contains("dave here"), "{from_dave}");
    sees_nothing_from(&mut carol, "dave@localhost", "dave's update").await;
    sees_nothing_from(&mut bob, "dave@localhost", "dave's update").await;

    // Alice cancels bob's subscription: he sees her go, then nothing more.
    alice
        .send("<presence to='bob@localhost' type='unsubscribed'/>")
        .await;
    alice.sync().await;
    let got = bob.sync().await;
    let unavailable = got
        .iter()
        .position(|s| {
            s.starts_with("<presence")
                && attr(s, "from").as_deref() == Some("alice@localhost/res")
                && attr(s, "type").as_deref() == Some("unavailable")
        })
        .unwrap_or_else(|| panic!("bob should see alice unavailable: {got:?}"));
    let unsubscribed = got
        .iter()
        .position(|s| {
            s.starts_with("<presence") && attr(s, "type").as_deref() == Some("unsubscribed")
        })
        .unwrap_or_else(|| panic!("bob should get unsubscribed: {got:?}"));
    assert!(unavailable < unsubscribed, "{got:?}");
    alice
        .send("<presence><status>after</status></presence>")
        .await;
    alice.sync().await;
    sees_nothing_from(&mut bob, "alice@localhost", "after unsubscribed").await;
    sees_nothing_from(&mut carol, "alice@localhost", "after unsubscribed").await;
    let mut tablet = Peer::login(addr, &cert, "alice", PASSWORD, "tablet").await;
    tablet.sync().await;
    sees_nothing_from(
        &mut bob,
        "alice@localhost",
        "initial presence after unsubscribed",
    )
    .await;
}

#[tokio::test]
async fn directed_presence_reaches_its_target_only_and_ends_with_the_session() {
    let server = server();
    let mut alice = user(&server, "alice").await;
    let mut carol = user(&server, "carol").await; // the target, no subscription
    let mut eve = user(&server, "eve").await; // a third user

    alice
        .send("<presence to='carol@localhost'><status>hi carol</status></presence>")
        .await;
    alice.sync().await;
    let directed = sees_from(&mut carol, "alice@localhost/res", "directed presence").await;
    assert!(directed.contains("hi carol"), "{directed}");
    assert_eq!(attr(&directed, "type"), None, "{directed}");
    sees_nothing_from(&mut eve, "alice@localhost", "directed presence").await;

    // Directed presence is no subscription: a broadcast update doesn't reach carol.
    alice.send("<presence><show>dnd</show></presence>").await;
    alice.sync().await;
    sees_nothing_from(&mut carol, "alice@localhost", "broadcast after directed").await;

    // §4.6.3: the session ends without a goodbye (TCP drop): the server tells carol.
    drop(alice);
    let gone = carol
        .c
        .read_stanza_containing("from=\"alice@localhost/res\"")
        .await;
    assert!(gone.starts_with("<presence"), "{gone}");
    assert_eq!(
        attr(&gone, "type").as_deref(),
        Some("unavailable"),
        "{gone}"
    );
    sees_nothing_from(&mut eve, "alice@localhost", "session end").await;
}

#[tokio::test]
async fn a_probe_without_a_subscription_gets_nothing() {
    let server = server();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    let mut carol = user(&server, "carol").await;
    subscribe(&mut bob, &mut alice).await;
    bob.sync().await;

    carol
        .send("<presence to='alice@localhost' type='probe'/>")
        .await;
    sees_nothing_from(&mut carol, "alice@localhost", "probe").await;
    // Also not to a full JID.
    carol
        .send("<presence to='alice@localhost/res' type='probe'/>")
        .await;
    sees_nothing_from(&mut carol, "alice@localhost", "probe to a full JID").await;

    // Control: the subscriber's probe is answered with alice's presence.
    bob.send("<presence to='alice@localhost' type='probe'/>")
        .await;
    sees_from(&mut bob, "alice@localhost/res", "subscriber's probe").await;
    let alice_got = alice.sync().await;
    assert!(
        !alice_got.iter().any(|s| s.contains("type=\"probe\"")),
        "probes are the server's business: {alice_got:?}"
    );
}

/// RFC 6121 §4.6.3: directed presence to a full JID is followed by unavailable to that
/// full JID however the sender's availability ends: explicit unavailable, a clean stream
/// close, a dropped connection.
#[tokio::test]
async fn directed_presence_to_a_full_jid_ends_with_unavailable_however_the_session_ends() {
    let server = server();
    let mut carol = user(&server, "carol").await; // the target, no subscription
    let (addr, cert): (SocketAddr, &Path) = (server.c2s, &server.cert_path());
    register(addr, cert, "alice", PASSWORD).await;
    for (resource, ending) in [("a1", "unavailable"), ("a2", "close"), ("a3", "drop")] {
        let mut alice = Peer::login(addr, cert, "alice", PASSWORD, resource).await;
        alice
            .send("<presence to='carol@localhost/res'><status>hi</status></presence>")
            .await;
        alice.sync().await;
        let from = format!("alice@localhost/{resource}");
        let directed = sees_from(&mut carol, &from, ending).await;
        assert_eq!(attr(&directed, "type"), None, "{directed}");
        assert_eq!(
            attr(&directed, "to").as_deref(),
            Some("carol@localhost/res")
        );
        match ending {
            "unavailable" => {
                alice.send("<presence type='unavailable'/>").await;
                alice.sync().await;
            }
            "close" => {
                alice.send("</stream:stream>").await;
                alice.c.read_to_close().await;
            }
            _ => drop(alice),
        }
        let gone = carol
            .c
            .read_stanza_containing(&format!("from=\"{from}\""))
            .await;
        assert!(gone.starts_with("<presence"), "{ending}: {gone}");
        assert_eq!(
            attr(&gone, "type").as_deref(),
            Some("unavailable"),
            "{ending}: {gone}"
        );
        assert_eq!(
            attr(&gone, "to").as_deref(),
            Some("carol@localhost/res"),
            "{ending}: {gone}"
        );
    }
}
