//! XEP-0280 Message Carbons end to end. Alice is on three devices: two slixmpp clients that
//! enable carbons through slixmpp's own xep_0280 plugin (phone, laptop) and a Flash client
//! that never asks for them. Bob, her contact, writes raw bytes.

use jabberwock_tests::slix::SlixIm;
use jabberwock_tests::{RawClient, TestServer};

const CARBONS: &str = "urn:xmpp:carbons:2";

async fn device(server: &TestServer, resource: &str) -> SlixIm {
    let jid = format!("alice@localhost/{resource}");
    SlixIm::available(server, "slix_devices.py", &jid, "pw-alice").await
}

fn chat(to: &str, body: &str) -> String {
    format!("<message type='chat' to='{to}'><body>{body}</body></message>")
}

/// Bob's message to `to` and what alice's `device` gets of it directly.
async fn bob_says(bob: &mut RawClient, to: &str, body: &str, device: &mut SlixIm) {
    bob.send(chat(to, body)).await;
    device
        .expect_all(&["\"received\"", "bob@localhost/desk", body])
        .await;
}

/// The Flash client pings the server; everything that reached it before the pong.
async fn flash_until_pong(flash: &mut RawClient, id: &str) -> String {
    flash
        .send(format!(
            "<iq type='get' id='{id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>\0"
        ))
        .await;
    let got = flash.read_until(&format!("id=\"{id}\"")).await;
    flash.read_until("\0").await;
    got
}

#[tokio::test]
async fn carbons_reach_the_enabled_devices_only() {
    let server = TestServer::start();
    server.wait_started();
    server.add_user("alice@localhost", "pw-alice");
    server.add_user("bob@localhost", "pw-bob");
    let (mut bob, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "pw-bob", "desk").await;
    let (mut flash, _) = RawClient::login_flash(server.c2s, "alice", "pw-alice", "flash").await;

    // §3: the server says it does carbons.
    flash
        .send("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>\0")
        .await;
    let info = flash.read_until("id=\"d1\"").await + &flash.read_until("</iq>").await;
    assert!(
        info.contains(&format!("<feature var=\"{CARBONS}\"/>")),
        "{info}"
    );

    let mut phone = device(&server, "phone").await;
    let mut laptop = device(&server, "laptop").await;
    phone.command(r#"{"cmd": "carbons_enable"}"#).await;
    laptop.command(r#"{"cmd": "carbons_enable"}"#).await;

    // §7: bob writes to the phone; the laptop gets a received carbon, from alice's bare JID.
    bob_says(&mut bob, "alice@localhost/phone", "hello phone", &mut phone).await;
    let carbon = laptop
        .expect_all(&["\"carbon_received\"", "hello phone"])
        .await;
    assert!(
        carbon.contains("\"from\": \"alice@localhost\"")
            && carbon.contains("\"forwarded_from\": \"bob@localhost/desk\"")
            && carbon.contains("\"forwarded_to\": \"alice@localhost/phone\""),
        "{carbon}"
    );

    // §8: the phone answers; the laptop gets a sent carbon, bob the message.
    phone
        .command(r#"{"cmd": "message", "to": "bob@localhost/desk", "body": "hi bob"}"#)
        .await;
    bob.read_stanza_containing("hi bob").await;
    let carbon = laptop.expect_all(&["\"carbon_sent\"", "hi bob"]).await;
    assert!(
        carbon.contains("\"from\": \"alice@localhost\"")
            && carbon.contains("\"forwarded_from\": \"alice@localhost/phone\"")
            && carbon.contains("\"forwarded_to\": \"bob@localhost/desk\""),
        "{carbon}"
    );

    // §9: a <private/> message is copied neither way, and the recipient gets it without
    // the <private/>. The next, ordinary, message is copied: the private one, before it
    // from the same sender, would have come first.
    bob.send(
        "<message type='chat' to='alice@localhost/phone'><body>secret in</body><private xmlns='urn:xmpp:carbons:2'/></message>",
    )
    .await;
    let secret = phone.expect_all(&["\"received\"", "secret in"]).await;
    assert!(secret.contains("\"private\": false"), "{secret}");
    bob_says(&mut bob, "alice@localhost/phone", "open in", &mut phone).await;
    laptop.expect_all(&["\"carbon_received\"", "open in"]).await;
    assert!(!laptop.seen(&["secret in"]), "{:?}", laptop.events);

    phone
        .command(r#"{"cmd": "private_message", "to": "bob@localhost/desk", "body": "secret out"}"#)
        .await;
    let got = bob.read_stanza_containing("secret out").await;
    assert!(!got.contains(CARBONS), "private not removed: {got}");
    phone
        .command(r#"{"cmd": "message", "to": "bob@localhost/desk", "body": "open out"}"#)
        .await;
    laptop.expect_all(&["\"carbon_sent\"", "open out"]).await;
    assert!(!laptop.seen(&["secret out"]), "{:?}", laptop.events);

    // The Flash client never enabled carbons: none of the copies above reached it (they
    // were queued before the laptop's, which it has seen; the pong comes after them).
    let flash_got = flash_until_pong(&mut flash, "p1").await;
    assert!(!flash_got.contains(CARBONS), "{flash_got}");
    assert!(!flash_got.contains("hello phone"), "{flash_got}");

    // §5: after <disable/> the laptop gets no more copies. Bob's message to the laptop
    // itself comes after the copy it would have had.
    laptop.command(r#"{"cmd": "carbons_disable"}"#).await;
    bob_says(
        &mut bob,
        "alice@localhost/phone",
        "after disable",
        &mut phone,
    )
    .await;
    phone
        .command(r#"{"cmd": "message", "to": "bob@localhost/desk", "body": "sent after disable"}"#)
        .await;
    bob.read_stanza_containing("sent after disable").await;
    bob_says(
        &mut bob,
        "alice@localhost/laptop",
        "direct to laptop",
        &mut laptop,
    )
    .await;
    assert!(!laptop.seen(&["after disable"]), "{:?}", laptop.events);
    // The phone still has carbons on: bob's message to the laptop is copied to it.
    phone
        .expect_all(&["\"carbon_received\"", "direct to laptop"])
        .await;
    // Nor did the phone ever get a copy of what it got itself (those copies would have
    // come before this one, from the same sender).
    assert!(
        !phone.seen(&["carbon_received", "hello phone"]),
        "{:?}",
        phone.events
    );

    assert!(phone.quit().await);
    assert!(laptop.quit().await);
}
