//! What PEP keeps in step with older stores, each way driven by the clients of that
//! protocol (slixmpp's own plugins): XEP-0398, an XEP-0084 avatar (slix_pep.py, xep_0084)
//! is the vCard's photo and presence hash that a vcard-temp client (slix_features.py,
//! xep_0054 and xep_0153) sees, and the other way round; XEP-0411, XEP-0048 bookmarks in
//! private storage (xep_0049 with xep_0048) and XEP-0402 PEP bookmarks (xep_0402) are one
//! list.

use jabberwock_tests::slix::{avatar_hash, befriend, pep_online as online, SlixIm, PNG_B64};
use jabberwock_tests::{TestConfig, TestServer};

const METADATA: &str = "urn:xmpp:avatar:metadata";
const BOOKMARKS: &str = "urn:xmpp:bookmarks:1";

/// A server with these accounts (`USER@localhost`, password `pw-USER`).
fn server_with(users: &[&str]) -> TestServer {
    let server = TestServer::start_with(TestConfig::default());
    for user in users {
        server.add_user(&format!("{user}@localhost"), &format!("pw-{user}"));
    }
    server
}

/// Whether `client`'s disco#info of its own account lists `feature`.
async fn account_has_feature(client: &mut SlixIm, account: &str, feature: &str) -> bool {
    client
        .command(&format!(r#"{{"cmd": "disco_info", "to": "{account}"}}"#))
        .await;
    client.latest("disco_info").contains(feature)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pep_avatar_becomes_the_vcard_photo_and_the_presence_hash() {
    let server = server_with(&["alice", "bob"]);
    let mut alice = online(&server, "slix_pep.py", "alice@localhost/a", &[METADATA]).await;
    let mut bob = online(&server, "slix_features.py", "bob@localhost/b", &[]).await;
    befriend(&mut alice, "alice@localhost/a", &mut bob, "bob@localhost/b").await;
    assert!(
        account_has_feature(
            &mut alice,
            "alice@localhost",
            "urn:xmpp:pep-vcard-conversion:0"
        )
        .await
    );

    // Before: no photo in alice's vCard.
    bob.command(r#"{"cmd": "vcard", "to": "alice@localhost"}"#)
        .await;
    assert!(bob.latest("vcard").contains("\"photo_bytes\": 0"));

    // alice publishes an XEP-0084 avatar (data, then metadata); bob, who only knows
    // vcard-temp, reads it in her vCard...
    alice
        .command(&format!(r#"{{"cmd": "avatar", "png_b64": "{PNG_B64}"}}"#))
        .await;
    bob.command(r#"{"cmd": "vcard", "to": "alice@localhost"}"#)
        .await;
    let vcard = bob.latest("vcard");
    assert!(!vcard.contains("\"photo_bytes\": 0"), "{vcard}");

    // ...and her next presence (her client puts no XEP-0153 element in it) carries its hash.
    alice.command(r#"{"cmd": "available"}"#).await;
    bob.expect_all(&[
        "\"event\": \"presence\"",
        "\"from\": \"alice@localhost/a\"",
        &format!("\"photo\": \"{}\"", avatar_hash()),
    ])
    .await;
    assert!(alice.quit().await);
    assert!(bob.quit().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vcard_photo_is_published_as_a_pep_avatar_once() {
    let server = server_with(&["carol", "dave"]);
    let mut carol = online(&server, "slix_features.py", "carol@localhost/c", &[]).await;
    let mut dave = online(&server, "slix_pep.py", "dave@localhost/d", &[METADATA]).await;
    befriend(
        &mut carol,
        "carol@localhost/c",
        &mut dave,
        "dave@localhost/d",
    )
    .await;

    // carol sets her avatar the XEP-0153 way (vCard PHOTO, then presence)...
    carol
        .command(&format!(
            r#"{{"cmd": "set_avatar", "png_b64": "{PNG_B64}"}}"#
        ))
        .await;
    // ...and dave, who follows XEP-0084 avatars, is told of its metadata and fetches the
    // data the server published under the image's hash.
    let hash = avatar_hash();
    dave.expect_ever(&[
        "\"event\": \"pep\"",
        "\"kind\": \"publish\"",
        "\"from\": \"carol@localhost\"",
        &format!("\"node\": \"{METADATA}\""),
        &format!("\"ids\": [\"{hash}\"]"),
    ])
    .await;
    dave.command(&format!(
        r#"{{"cmd": "avatar_data", "to": "carol@localhost", "id": "{hash}"}}"#
    ))
    .await;
    assert!(dave
        .latest("avatar_data")
        .contains(&format!("\"sha1\": \"{hash}\"")));

    // The same photo set again publishes nothing new, and the metadata node holds the one
    // item: the server's own publish did not come back to the vCard and round again.
    carol
        .command(&format!(
            r#"{{"cmd": "set_avatar", "png_b64": "{PNG_B64}"}}"#
        ))
        .await;
    dave.command(&format!(
        r#"{{"cmd": "items", "to": "carol@localhost", "node": "{METADATA}"}}"#
    ))
    .await;
    let items = dave.latest("items");
    assert!(items.contains(&format!("\"ids\": [\"{hash}\"]")), "{items}");
    let notified = dave
        .events
        .iter()
        .filter(|l| l.contains("\"event\": \"pep\"") && l.contains("carol@localhost"))
        .count();
    assert_eq!(notified, 1, "{:?}", dave.events);
    carol
        .command(r#"{"cmd": "vcard", "to": "carol@localhost"}"#)
        .await;
    assert!(!carol.latest("vcard").contains("\"photo_bytes\": 0"));
    assert!(carol.quit().await);
    assert!(dave.quit().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_and_pep_bookmarks_are_one_list() {
    let server = server_with(&["erin"]);
    // Two clients of one account: an old one with XEP-0048 in private storage, a new one
    // with XEP-0402 that wants bookmark notifications.
    let mut old = online(&server, "slix_features.py", "erin@localhost/old", &[]).await;
    let mut new = online(&server, "slix_pep.py", "erin@localhost/new", &[BOOKMARKS]).await;
    assert!(
        account_has_feature(
            &mut new,
            "erin@localhost",
            "urn:xmpp:bookmarks-conversion:0"
        )
        .await
    );
    // XEP-0402 §5.3's name for the same thing, which Converse.js looks for.
    assert!(account_has_feature(&mut new, "erin@localhost", "urn:xmpp:bookmarks:1#compat").await);
    let lobby = "lobby@conference.localhost";
    let dev = "dev@conference.localhost";

    // The old client saves a bookmark: the new one is notified of a PEP item for the room.
    old.command(&format!(
        r#"{{"cmd": "bookmark", "room": "{lobby}", "name": "Lobby"}}"#
    ))
    .await;
    let published = new
        .expect_ever(&[
            "\"event\": \"pep\"",
            "\"kind\": \"publish\"",
            &format!("\"node\": \"{BOOKMARKS}\""),
            &format!("\"ids\": [\"{lobby}\"]"),
        ])
        .await;
    assert!(published.contains("\"text\": \"Lobby"), "{published}");

    // The new client adds one through PEP (with XEP-0402's publish options, which the node
    // the server made meets): the old client reads both from private storage.
    new.command(&format!(
        r#"{{"cmd": "bookmark", "room": "{dev}", "name": "Dev"}}"#
    ))
    .await;
    assert!(!new.seen(&["\"event\": \"iq_error\""]), "{:?}", new.events);
    old.command(r#"{"cmd": "bookmarks"}"#).await;
    let rooms = old.latest("bookmarks");
    assert!(rooms.contains(lobby) && rooms.contains(dev), "{rooms}");

    // The new client removes the lobby: gone from private storage too.
    new.command(&format!(
        r#"{{"cmd": "retract", "node": "{BOOKMARKS}", "id": "{lobby}", "notify": true}}"#
    ))
    .await;
    old.command(r#"{"cmd": "bookmarks"}"#).await;
    let rooms = old.latest("bookmarks");
    assert!(!rooms.contains(lobby) && rooms.contains(dev), "{rooms}");

    // The old client saves a list with only the lobby: the dev room is retracted from PEP,
    // notified, and the lobby is back.
    old.command(&format!(
        r#"{{"cmd": "bookmark", "room": "{lobby}", "name": "Lobby"}}"#
    ))
    .await;
    new.expect_ever(&[
        "\"event\": \"pep\"",
        "\"kind\": \"retract\"",
        &format!("\"ids\": [\"{dev}\"]"),
    ])
    .await;
    new.command(&format!(
        r#"{{"cmd": "items", "to": "erin@localhost", "node": "{BOOKMARKS}"}}"#
    ))
    .await;
    let items = new.latest("items");
    assert!(
        items.contains(&format!("\"ids\": [\"{lobby}\"]")),
        "{items}"
    );
    assert!(old.quit().await);
    assert!(new.quit().await);
}
