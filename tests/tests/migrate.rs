//! Moving in and out (docs/migrating.md): `jabberwock export` and `jabberwock import` of
//! XEP-0227 files, a round trip between two data directories, and accounts brought over
//! from real Prosody 0.12 (its data directory, and its own migrator's XEP-0227 output) and
//! real ejabberd 23.01 (`ejabberdctl export_piefxis`). Each time slixmpp logs in to
//! Jabberwock with the old password and finds the roster the old server kept (and, from
//! Prosody's data directory, the message its mod_offline kept, and the nickname its mod_pep
//! kept). PEP nodes published by slixmpp go through an export and import and are read back
//! with their configuration.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use jabberwock_tests::ejabberd::Ejabberd;
use jabberwock_tests::peer::{run, wait_file_contains, Peer, PeerTls};
use jabberwock_tests::prosody::Prosody;
use jabberwock_tests::slix::{assert_bookmarks_node_is_private, befriend, read_items, SlixIm};
use jabberwock_tests::{RawClient, TestConfig, TestServer};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn import(server: &TestServer, path: &Path, force: bool) -> Output {
    let path = path.to_str().expect("utf-8 path");
    let args: &[&str] = match force {
        true => &["import", "--force", path],
        false => &["import", path],
    };
    server.cli(args, "")
}

fn import_ok(server: &TestServer, path: &Path) -> String {
    let out = import(server, path, false);
    assert_eq!(
        out.status.code(),
        Some(0),
        "import {}: {}{}",
        path.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// slixmpp logs in to `server` as `jid` with `password` and its roster holds `contact`
/// with subscription `both`; returns the client for more checks.
async fn logs_in_and_sees(server: &TestServer, jid: &str, password: &str, contact: &str) -> SlixIm {
    logs_in_with(server, jid, password, contact, &[]).await
}

/// [`logs_in_and_sees`] with more of slix_im.py's options.
async fn logs_in_with(
    server: &TestServer,
    jid: &str,
    password: &str,
    contact: &str,
    extra: &[&str],
) -> SlixIm {
    let mut client = SlixIm::spawn_with(
        "slix_im.py",
        &format!("{jid}/moved"),
        password,
        server.c2s,
        &server.cert_path(),
        extra,
    );
    client.expect_all(&["\"event\": \"session_start\""]).await;
    let roster = client.command(r#"{"cmd": "get_roster"}"#).await;
    assert!(
        roster.contains(&format!("\"{contact}\": {{\"subscription\": \"both\"")),
        "{jid}'s roster: {roster}"
    );
    client
}

/// An IQ from a raw client logged in as `user` on localhost, and its answer.
async fn ask(client: &mut RawClient, id: &str, iq: &str) -> String {
    client.send(iq).await;
    client.read_stanza_containing(id).await
}

#[tokio::test]
async fn export_then_import_into_a_fresh_data_dir_keeps_accounts_rosters_vcards_offline() {
    let old = TestServer::start();
    old.add_user("alice@localhost", "alice-old-pw");
    old.add_user("bob@localhost", "bob-old-pw");
    friends(
        ("alice@localhost/a", "alice-old-pw"),
        ("bob@localhost/b", "bob-old-pw"),
        old.c2s,
        &old.cert_path(),
    )
    .await;
    let (mut alice, _) =
        RawClient::login_standard(old.c2s, &old.cert_path(), "alice", "alice-old-pw", "raw").await;
    let set = ask(
        &mut alice,
        "vcard-set",
        "<iq type='set' id='vcard-set'><vCard xmlns='vcard-temp'><FN>Alice Liddell</FN></vCard></iq>",
    )
    .await;
    assert!(set.contains("type=\"result\""), "{set}");
    let set = ask(
        &mut alice,
        "private-set",
        "<iq type='set' id='private-set'><query xmlns='jabber:iq:private'>\
         <prefs xmlns='x-migrate:prefs'><nick>Al</nick></prefs></query></iq>",
    )
    .await;
    assert!(set.contains("type=\"result\""), "{set}");
    alice.send("</stream:stream>").await;
    alice.read_to_close().await;
    // Alice is away: Bob's message waits for her.
    let (mut bob, _) =
        RawClient::login_standard(old.c2s, &old.cert_path(), "bob", "bob-old-pw", "raw").await;
    bob.send(
        "<message to='alice@localhost' type='chat'><body>kept while you moved</body></message>",
    )
    .await;

    let out_dir = tempfile::tempdir().expect("temp dir");
    let exported = out_dir.path().join("localhost.xml");
    // Bounded: the message is stored once the server has handled it.
    let mut file = String::new();
    for _ in 0..50 {
        let out = old.cli(&["export", out_dir.path().to_str().unwrap()], "");
        assert_eq!(out.status.code(), Some(0), "export: {}", text(&out.stderr));
        file = std::fs::read_to_string(&exported).expect("localhost.xml");
        if file.contains("kept while you moved") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for needle in [
        "<server-data xmlns=\"urn:xmpp:pie:0\"><host jid=\"localhost\"><user name=\"alice\">",
        "<scram-credentials xmlns=\"urn:xmpp:pie:0#scram\" mechanism=\"SCRAM-SHA-256\">",
        "<item jid=\"bob@localhost\" subscription=\"both\"",
        "<FN>Alice Liddell</FN>",
        "kept while you moved",
        "<nick>Al</nick>",
    ] {
        assert!(
            file.contains(needle),
            "no {needle:?} in the export:\n{file}"
        );
    }
    assert!(
        !file.contains("alice-old-pw"),
        "the export holds a password"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&exported).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the export is readable by others: {mode:o}"
        );
    }
    drop(bob);

    let new = TestServer::start();
    let said = import_ok(&new, &exported);
    assert!(
        said.contains("imported alice@localhost") && said.contains("imported bob@localhost"),
        "{said}"
    );
    let mut alice =
        logs_in_and_sees(&new, "alice@localhost", "alice-old-pw", "bob@localhost").await;
    // Offline messages come with the initial presence (XEP-0160).
    alice.command(r#"{"cmd": "available"}"#).await;
    alice
        .expect_ever(&["\"event\": \"received\"", "kept while you moved"])
        .await;
    alice.quit().await;
    logs_in_and_sees(&new, "bob@localhost", "bob-old-pw", "alice@localhost")
        .await
        .quit()
        .await;
    let (mut raw, _) =
        RawClient::login_standard(new.c2s, &new.cert_path(), "alice", "alice-old-pw", "raw").await;
    let vcard = ask(
        &mut raw,
        "vcard-get",
        "<iq type='get' id='vcard-get'><vCard xmlns='vcard-temp'/></iq>",
    )
    .await;
    assert!(vcard.contains("<FN>Alice Liddell</FN>"), "{vcard}");
    let private = ask(
        &mut raw,
        "private-get",
        "<iq type='get' id='private-get'><query xmlns='jabber:iq:private'><prefs xmlns='x-migrate:prefs'/></query></iq>",
    )
    .await;
    assert!(private.contains("<nick>Al</nick>"), "{private}");
}

#[tokio::test]
async fn pep_nodes_and_items_go_through_export_and_import() {
    const NICK: &str = "http://jabber.org/protocol/nick";
    const BOOKMARKS: &str = "urn:xmpp:bookmarks:1";
    let old = TestServer::start();
    old.add_user("alice@localhost", "alice-old-pw");
    let mut alice =
        SlixIm::available(&old, "slix_pep.py", "alice@localhost/old", "alice-old-pw").await;
    alice
        .command(r#"{"cmd": "nick", "nick": "Alice Liddell"}"#)
        .await;
    alice
        .command(r#"{"cmd": "bookmark", "room": "tea@conference.localhost", "name": "Tea"}"#)
        .await;
    // Both publishes answered: the items are stored.
    let nick = read_items(&mut alice, "alice@localhost", NICK).await;
    assert!(nick.contains("Alice Liddell"), "{nick}");
    let marks = read_items(&mut alice, "alice@localhost", BOOKMARKS).await;
    assert!(marks.contains("tea@conference.localhost"), "{marks}");
    alice.quit().await;

    let out_dir = tempfile::tempdir().expect("temp dir");
    let out = old.cli(&["export", out_dir.path().to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(0), "export: {}", text(&out.stderr));
    let exported = out_dir.path().join("localhost.xml");
    let file = std::fs::read_to_string(&exported).expect("localhost.xml");
    for needle in [
        "<pubsub xmlns=\"http://jabber.org/protocol/pubsub#owner\"><configure node=\"",
        &format!("<items node=\"{NICK}\"><item id=\""),
        &format!("<items node=\"{BOOKMARKS}\"><item id=\"tea@conference.localhost\">"),
        "<field var=\"pubsub#access_model\" type=\"list-single\"><value>whitelist</value>",
    ] {
        assert!(
            file.contains(needle),
            "no {needle:?} in the export:\n{file}"
        );
    }

    let new = TestServer::start();
    let said = import_ok(&new, &exported);
    assert!(said.contains("imported alice@localhost"), "{said}");
    let mut alice =
        SlixIm::available(&new, "slix_pep.py", "alice@localhost/new", "alice-old-pw").await;
    let nick = read_items(&mut alice, "alice@localhost", NICK).await;
    assert!(nick.contains("Alice Liddell"), "{nick}");
    let marks = read_items(&mut alice, "alice@localhost", BOOKMARKS).await;
    assert!(
        marks.contains("\"ids\": [\"tea@conference.localhost\"]"),
        "{marks}"
    );
    // The bookmarks node's configuration came along: private, every item kept.
    assert_bookmarks_node_is_private(&mut alice).await;
    alice.quit().await;
}

#[tokio::test]
async fn an_existing_account_is_skipped_unless_forced_and_a_bad_file_exits_2() {
    let server = TestServer::start();
    server.add_user("carol@localhost", "carol-current");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("in.xml");
    std::fs::write(
        &file,
        "<?xml version='1.0'?>\n<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'>\
         <user name='carol' password='carol-imported'/><user name='dave' password='dave-imported'/>\
         <user name='nopass'/></host><host jid='elsewhere.example'><user name='x' password='y'/></host>\
         </server-data>",
    )
    .unwrap();
    let out = import(&server, &file, false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let warned = text(&out.stderr);
    assert!(
        warned.contains("carol@localhost exists already"),
        "{warned}"
    );
    assert!(
        warned.contains("nopass@localhost has no password"),
        "{warned}"
    );
    assert!(
        warned.contains("host elsewhere.example is not served here"),
        "{warned}"
    );
    assert!(text(&out.stdout).contains("imported dave@localhost"));
    RawClient::login_standard(
        server.c2s,
        &server.cert_path(),
        "carol",
        "carol-current",
        "r",
    )
    .await;
    RawClient::login_standard(
        server.c2s,
        &server.cert_path(),
        "dave",
        "dave-imported",
        "r",
    )
    .await;

    let out = import(&server, &file, true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("imported carol@localhost"));
    RawClient::login_standard(
        server.c2s,
        &server.cert_path(),
        "carol",
        "carol-imported",
        "r",
    )
    .await;

    std::fs::write(
        &file,
        "<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='erin'>\
         <query xmlns='jabber:iq:roster'><item name='no jid'/></query></user></host></server-data>",
    )
    .unwrap();
    let out = import(&server, &file, false);
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out.stderr);
    assert!(
        said.contains("in.xml")
            && said.contains("<user name='erin'>")
            && said.contains("without jid"),
        "{said}"
    );
    std::fs::write(
        &file,
        "<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'>",
    )
    .unwrap();
    let out = import(&server, &file, false);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not well-formed"),
        "{}",
        text(&out.stderr)
    );
    // Nothing of a refused file was written.
    let listed = text(&server.cli(&["user", "list"], "").stdout);
    assert!(!listed.contains("erin"), "{listed}");
}

/// Two accounts become each other's contacts (subscription both), each with its own
/// slixmpp client that approves and returns subscription requests (slix_features.py).
async fn friends(a: (&str, &str), b: (&str, &str), addr: SocketAddr, cafile: &Path) {
    let start = |(jid, password): (&str, &str)| {
        SlixIm::spawn_script_at("slix_features.py", jid, password, addr, cafile)
    };
    let (mut a_client, mut b_client) = (start(a), start(b));
    for client in [&mut a_client, &mut b_client] {
        client.expect_all(&["\"event\": \"session_start\""]).await;
        client.command(r#"{"cmd": "available"}"#).await;
    }
    befriend(&mut a_client, a.0, &mut b_client, b.0).await;
    let b_bare = b.0.split('/').next().unwrap_or(b.0);
    let roster = a_client.command(r#"{"cmd": "get_roster"}"#).await;
    assert!(
        roster.contains(&format!("\"{b_bare}\": {{\"subscription\": \"both\"")),
        "{roster}"
    );
    a_client.quit().await;
    b_client.quit().await;
}

/// alice and bob of Prosody (or ejabberd), registered there and each other's contacts.
async fn friends_at<P: Peer>(peer: &P, domain: &str) {
    peer.register("alice", "alice-at-peer");
    peer.register("bob", "bob-at-peer");
    friends(
        (&format!("alice@{domain}/peer"), "alice-at-peer"),
        (&format!("bob@{domain}/peer"), "bob-at-peer"),
        peer.c2s(),
        &peer.cert_path(),
    )
    .await;
}

fn serving(domain: &str) -> TestServer {
    TestServer::start_with(TestConfig::default().host(domain, ""))
}

#[tokio::test]
async fn prosody_data_dir_and_its_migrators_xep0227_output_are_imported() {
    let domain = "old.test";
    // mod_offline too, so a message to alice waits in Prosody's offline store, and mod_pep
    // for the nickname she publishes there.
    let modules =
        "modules_enabled = { \"roster\", \"saslauth\", \"tls\", \"disco\", \"offline\", \"pep\" }";
    let mut prosody = Prosody::start(
        domain,
        "127.0.60.2",
        "127.0.60.53",
        PeerTls::SelfSigned,
        modules,
    );
    friends_at(&prosody, domain).await;
    let mut bob = SlixIm::spawn_script_at(
        "slix_im.py",
        &format!("bob@{domain}/again"),
        "bob-at-peer",
        prosody.c2s(),
        &prosody.cert_path(),
    );
    bob.expect_all(&["\"event\": \"session_start\""]).await;
    bob.command(&format!(
        r#"{{"cmd": "message", "to": "alice@{domain}", "body": "left at Prosody"}}"#
    ))
    .await;
    let offline = prosody.data_dir().join("old%2etest/offline/alice.list");
    assert!(
        wait_file_contains(&offline, "left at Prosody", Duration::from_secs(10)),
        "Prosody kept no offline message for alice"
    );
    bob.quit().await;
    let mut alice = SlixIm::spawn_script_at(
        "slix_pep.py",
        &format!("alice@{domain}/pep"),
        "alice-at-peer",
        prosody.c2s(),
        &prosody.cert_path(),
    );
    alice.expect_all(&["\"event\": \"session_start\""]).await;
    alice
        .command(r#"{"cmd": "nick", "nick": "Alice at Prosody"}"#)
        .await;
    // mod_pep's item store for the node, its name percent-encoded.
    let nick_items = prosody
        .data_dir()
        .join("old%2etest/pep_http%3a%2f%2fjabber%2eorg%2fprotocol%2fnick/alice.list");
    assert!(
        wait_file_contains(&nick_items, "Alice at Prosody", Duration::from_secs(10)),
        "Prosody kept no nickname for alice"
    );
    alice.quit().await;
    prosody.stop();
    let data = prosody.data_dir();

    // (a) The data directory itself: SCRAM-SHA-1 keys, salt and iteration count as Prosody kept them.
    let server = serving(domain);
    let said = import_ok(&server, &data);
    assert!(
        said.contains("imported alice@old.test") && said.contains("imported bob@old.test"),
        "{said}"
    );
    // Prosody kept SCRAM-SHA-1 keys only: SCRAM-SHA-1 and PLAIN check against them.
    let mut alice = logs_in_with(
        &server,
        "alice@old.test",
        "alice-at-peer",
        "bob@old.test",
        &["--mechanism", "SCRAM-SHA-1"],
    )
    .await;
    alice.command(r#"{"cmd": "available"}"#).await;
    alice
        .expect_ever(&["\"event\": \"received\"", "left at Prosody"])
        .await;
    alice.quit().await;
    // The nickname alice published on Prosody is her PEP node's item here.
    let mut alice = SlixIm::spawn_with(
        "slix_pep.py",
        "alice@old.test/pep",
        "alice-at-peer",
        server.c2s,
        &server.cert_path(),
        &["--mechanism", "SCRAM-SHA-1"],
    );
    alice.expect_all(&["\"event\": \"session_start\""]).await;
    let nick = read_items(
        &mut alice,
        "alice@old.test",
        "http://jabber.org/protocol/nick",
    )
    .await;
    assert!(nick.contains("Alice at Prosody"), "{nick}");
    alice.quit().await;
    logs_in_with(
        &server,
        "bob@old.test",
        "bob-at-peer",
        "alice@old.test",
        &["--mechanism", "PLAIN"],
    )
    .await
    .quit()
    .await;
    // That password login gave bob SCRAM-SHA-256 keys too: clients that use it log in now.
    logs_in_with(
        &server,
        "bob@old.test",
        "bob-at-peer",
        "alice@old.test",
        &["--mechanism", "SCRAM-SHA-256"],
    )
    .await
    .quit()
    .await;

    // (b) prosody-migrator to XEP-0227. Its xep0227 driver writes where Prosody's
    // data_path is, the system's; a private mount puts our directory there.
    let out = prosody.dir().join("pie");
    std::fs::create_dir(&out).unwrap();
    let config = prosody.dir().join("migrator.cfg.lua");
    std::fs::write(
        &config,
        format!(
            "input {{ type = \"internal\"; path = \"{}\"; hosts = {{ [\"{domain}\"] = {{ \"accounts\", \"roster\", \"vcard\", \"private\" }} }} }}\n\
             output {{ type = \"xep0227\"; path = \"{}\" }}\n",
            data.display(),
            out.display()
        ),
    )
    .unwrap();
    run(Command::new("chown")
        .args(["-R", "prosody:prosody"])
        .arg(prosody.dir()));
    run(Command::new("unshare")
        .args(["--mount", "sh", "-c"])
        .arg(format!(
            "mount --bind {} /var/lib/prosody && exec setpriv --reuid=prosody --regid=prosody \
             --init-groups prosody-migrator --config={} input output",
            out.display(),
            config.display()
        ))
        .current_dir(prosody.dir()));
    let alice_file = out.join(format!("alice@{domain}.xml"));
    let written = std::fs::read_to_string(&alice_file).expect("the migrator's file for alice");
    assert!(
        written.contains("urn:xmpp:pie:0#scram") && written.contains("jabber:iq:roster"),
        "{written}"
    );
    let server = serving(domain);
    let said = import_ok(&server, &out);
    assert!(
        said.contains("imported alice@old.test") && said.contains("imported bob@old.test"),
        "{said}"
    );
    logs_in_with(
        &server,
        "alice@old.test",
        "alice-at-peer",
        "bob@old.test",
        &["--mechanism", "SCRAM-SHA-1"],
    )
    .await
    .quit()
    .await;
}

#[tokio::test]
async fn ejabberds_export_piefxis_is_imported() {
    let domain = "old.test";
    let ejabberd = Ejabberd::start(domain, "127.0.61.2", "127.0.61.53", PeerTls::SelfSigned);
    friends_at(&ejabberd, domain).await;
    let out = tempfile::tempdir().expect("temp dir");
    run(Command::new("chown")
        .args(["ejabberd:ejabberd"])
        .arg(out.path()));
    ejabberd.export_piefxis(out.path());
    drop(ejabberd);

    let server = serving(domain);
    let said = import_ok(&server, out.path());
    assert!(
        said.contains("imported alice@old.test") && said.contains("imported bob@old.test"),
        "{said}"
    );
    logs_in_and_sees(&server, "alice@old.test", "alice-at-peer", "bob@old.test")
        .await
        .quit()
        .await;
    logs_in_and_sees(&server, "bob@old.test", "bob-at-peer", "alice@old.test")
        .await
        .quit()
        .await;
}
