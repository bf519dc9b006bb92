//! Converse.js 14 (the server's chat page, in headless Chromium) shows what other clients
//! stored on the account through the older protocols, converted by the server:
//! - a room bookmark an XEP-0048 client (slixmpp's xep_0048 in xep_0049 private storage)
//!   saved: Converse reads XEP-0402 bookmarks because the account announces
//!   `urn:xmpp:bookmarks:1#compat`, and its bookmark list shows the room's name;
//! - a contact's XEP-0084 avatar (slixmpp's xep_0084): Converse knows only vCard avatars
//!   (XEP-0153's hash in presence, then the vCard), which the server keeps in step
//!   (XEP-0398); the roster draws exactly the PNG the contact published.

use std::time::Duration;

use base64::Engine;
use jabberwock_tests::browser::{start_with_chat_page, NodeRun};
use jabberwock_tests::slix::{avatar_hash, befriend, SlixIm, PNG_B64};

const ROOM: &str = "lobby@conference.localhost";

fn base64(text: &str) -> Vec<u8> {
    // A data URL may wrap its base64; whitespace is not part of the data.
    let text: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("not base64 ({e})"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converse_shows_a_bookmark_and_an_avatar_set_by_other_clients() {
    let server = start_with_chat_page();
    server.add_user("alice@localhost", "pw-alice");
    server.add_user("bob@localhost", "pw-bob");

    // alice's older client saves a bookmark in private storage and becomes bob's contact
    // (both ways); bob stays online with his XEP-0084 client.
    let mut old = SlixIm::available(
        &server,
        "slix_features.py",
        "alice@localhost/old",
        "pw-alice",
    )
    .await;
    let mut bob = SlixIm::available(&server, "slix_pep.py", "bob@localhost/b", "pw-bob").await;
    befriend(&mut old, "alice@localhost/old", &mut bob, "bob@localhost/b").await;
    old.command(&format!(
        r#"{{"cmd": "bookmark", "room": "{ROOM}", "name": "The Lobby", "nick": "alice-in-lobby", "autojoin": false}}"#
    ))
    .await;
    assert!(!old.seen(&["\"event\": \"iq_error\""]), "{:?}", old.events);
    assert!(old.quit().await);

    // alice logs in with Converse.
    let base = format!("http://{}", server.http.unwrap());
    let mut browser = NodeRun::converse(
        "converse_pep.mjs",
        &base,
        "alice",
        &[
            "--room".as_ref(),
            ROOM.as_ref(),
            "--contact".as_ref(),
            "bob@localhost".as_ref(),
        ],
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut events = Vec::new();
    let mut bookmark = None;
    let mut avatar = None;
    while let Some(event) = browser.next_json(deadline).await {
        match event["kind"].as_str() {
            Some("bookmark") => bookmark = Some(event.clone()),
            // bob is in the roster Converse shows: he publishes an XEP-0084 avatar, then
            // his presence (which carries no XEP-0153 element of his client's own).
            Some("roster") => {
                assert_eq!(event["subscription"], "both", "{event}");
                bob.command(&format!(r#"{{"cmd": "avatar", "png_b64": "{PNG_B64}"}}"#))
                    .await;
                assert!(!bob.seen(&["\"event\": \"iq_error\""]), "{:?}", bob.events);
                bob.command(r#"{"cmd": "available"}"#).await;
            }
            Some("avatar") => avatar = Some(event.clone()),
            _ => {}
        }
        events.push(event);
    }
    let (status, console) = browser.finish().await;

    // The bookmark list shows the room under the name the old client gave it, with its nick.
    let bookmark = bookmark.unwrap_or_else(|| panic!("no bookmark shown: {events:?}\n{console}"));
    assert_eq!(bookmark["shown"], "The Lobby", "{bookmark}");
    assert_eq!(bookmark["nick"], "alice-in-lobby", "{bookmark}");
    assert_eq!(bookmark["autojoin"], false, "{bookmark}");

    // The roster draws bob's avatar: the very PNG he published.
    let avatar = avatar.unwrap_or_else(|| panic!("no avatar drawn: {events:?}\n{console}"));
    assert_eq!(avatar["type"], "image/png", "{avatar}");
    let drawn = base64(avatar["data"].as_str().unwrap_or_default());
    assert_eq!(drawn, base64(PNG_B64), "{avatar}");
    assert_eq!(avatar["image_hash"], avatar_hash().as_str(), "{avatar}");
    assert!(status.success(), "{events:?}\n{console}");
    assert!(bob.quit().await);
}
