//! XEP-0050 ad-hoc commands and XEP-0133 service administration on a real server: an
//! administrator's slixmpp (its xep_0050/xep_0133 plugins) manages accounts and sessions,
//! announces and sets the message of the day; other users see none of it and are refused;
//! raw XML checks the XEP-0050 §4.6 errors on the wire.

use jabberwock_tests::slix::SlixIm;
use jabberwock_tests::{RawClient, TestConfig, TestServer};

const ADMIN_NODE: &str = "http://jabber.org/protocol/admin#";

fn server() -> TestServer {
    let config =
        TestConfig::default().section("modules.admin_adhoc", r#"admins = ["admin@localhost"]"#);
    let server = TestServer::start_with(config);
    server.wait_started();
    server.add_user("admin@localhost", "admin-pw");
    server.add_user("bob@localhost", "bob-pw");
    server.add_user("dave@localhost", "dave-pw");
    server
}

/// An slix_adhoc.py client logged in as `user`@localhost/`resource` and available.
async fn adhoc_client(server: &TestServer, user: &str, password: &str, resource: &str) -> SlixIm {
    let jid = format!("{user}@localhost/{resource}");
    SlixIm::available(server, "slix_adhoc.py", &jid, password).await
}

/// Runs the command `name` (an XEP-0133 node's last part) with `fields`; the `command` or
/// `iq_error` event.
async fn run(client: &mut SlixIm, name: &str, fields: &str) -> String {
    client
        .command(&format!(
            r#"{{"cmd": "run", "node": "{ADMIN_NODE}{name}", "fields": {fields}}}"#
        ))
        .await;
    client
        .events
        .iter()
        .rev()
        .find(|l| l.contains("\"event\": \"command\"") || l.contains("\"event\": \"iq_error\""))
        .cloned()
        .expect("a command result or error")
}

fn completed(result: &str) -> bool {
    result.contains("\"status\": \"completed\"")
}

#[tokio::test]
async fn admin_manages_accounts_and_sessions() {
    let server = server();
    let mut admin = adhoc_client(&server, "admin", "admin-pw", "desk").await;

    admin.command(r#"{"cmd": "commands"}"#).await;
    let listed = admin.latest("commands");
    for name in [
        "add-user",
        "delete-user",
        "change-user-password",
        "end-user-session",
    ] {
        assert!(listed.contains(&format!("{ADMIN_NODE}{name}")), "{listed}");
    }

    // add-user: a form, then the account, which logs in.
    let added = run(
        &mut admin,
        "add-user",
        r#"{"accountjid": "carol@localhost", "password": "carol-pw", "password-verify": "carol-pw"}"#,
    )
    .await;
    assert!(
        completed(&added) && added.contains("\"stages\": 2"),
        "{added}"
    );
    let carol = SlixIm::available(&server, "slix_im.py", "carol@localhost/a", "carol-pw").await;
    assert!(carol.quit().await);

    // Adding it again is a conflict; passwords that differ are refused.
    let again = run(
        &mut admin,
        "add-user",
        r#"{"accountjid": "carol@localhost", "password": "x-pw-1", "password-verify": "x-pw-1"}"#,
    )
    .await;
    assert!(again.contains("\"condition\": \"conflict\""), "{again}");

    // change-user-password: the new one works, the old one no longer does.
    let changed = run(
        &mut admin,
        "change-user-password",
        r#"{"accountjid": "carol@localhost", "password": "carol-new"}"#,
    )
    .await;
    assert!(completed(&changed), "{changed}");
    let mut old = SlixIm::spawn(
        "carol@localhost/b",
        "carol-pw",
        server.c2s.port(),
        &server.cert_path(),
    );
    old.expect_all(&["auth_failed"]).await;
    let mut carol =
        SlixIm::available(&server, "slix_im.py", "carol@localhost/b", "carol-new").await;

    // The online list and count name carol and bob, who are online.
    let mut bob =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "bob-pw", "phone")
            .await
            .0;
    let online = run(
        &mut admin,
        "get-online-users-list",
        r#"{"max_items": "none"}"#,
    )
    .await;
    for user in ["admin@localhost", "bob@localhost", "carol@localhost"] {
        assert!(online.contains(user), "{online}");
    }
    assert!(!online.contains("dave@localhost"), "{online}");
    let count = run(&mut admin, "get-online-users-num", "{}").await;
    assert!(count.contains(r#""onlineusersnum": ["3"]"#), "{count}");
    let registered = run(&mut admin, "get-registered-users-num", "{}").await;
    assert!(
        registered.contains(r#""registeredusersnum": ["4"]"#),
        "{registered}"
    );

    // end-user-session of bob's full JID: his stream ends, on the wire.
    let ended = run(
        &mut admin,
        "end-user-session",
        r#"{"accountjids": ["bob@localhost/phone"]}"#,
    )
    .await;
    assert!(
        completed(&ended) && ended.contains("1 session(s) ended"),
        "{ended}"
    );
    let closing = bob.read_until("</stream:stream>").await;
    assert!(closing.contains("<policy-violation"), "{closing}");

    // delete-user while carol is online: her session ends, and she can't log in again.
    let deleted = run(
        &mut admin,
        "delete-user",
        r#"{"accountjids": ["carol@localhost"]}"#,
    )
    .await;
    assert!(
        completed(&deleted) && deleted.contains("1 account(s) deleted"),
        "{deleted}"
    );
    carol.expect_all(&["\"event\": \"disconnected\""]).await;
    let mut gone = SlixIm::spawn(
        "carol@localhost/c",
        "carol-new",
        server.c2s.port(),
        &server.cert_path(),
    );
    gone.expect_all(&["auth_failed"]).await;
    assert!(admin.quit().await);
}

#[tokio::test]
async fn announce_reaches_every_online_user_and_non_admins_are_forbidden() {
    let server = server();
    let mut admin = adhoc_client(&server, "admin", "admin-pw", "desk").await;
    let mut bob = SlixIm::available(&server, "slix_im.py", "bob@localhost/a", "bob-pw").await;
    let mut bob2 = SlixIm::available(&server, "slix_im.py", "bob@localhost/b", "bob-pw").await;
    let mut dave = adhoc_client(&server, "dave", "dave-pw", "x").await;

    let sent = run(
        &mut admin,
        "announce",
        r#"{"subject": "Heads up", "body": "Restart at noon"}"#,
    )
    .await;
    assert!(completed(&sent), "{sent}");
    for client in [&mut bob, &mut bob2, &mut dave, &mut admin] {
        client
            .expect_ever(&[
                "\"event\": \"received\"",
                "\"from\": \"localhost\"",
                "Restart at noon",
            ])
            .await;
    }

    // A non-admin sees no admin command and is refused every one.
    dave.command(r#"{"cmd": "commands"}"#).await;
    let listed = dave.latest("commands");
    assert!(!listed.contains(ADMIN_NODE), "{listed}");
    for name in [
        "announce",
        "add-user",
        "delete-user",
        "set-motd",
        "get-online-users-num",
    ] {
        let refused = run(&mut dave, name, "{}").await;
        assert!(
            refused.contains("\"condition\": \"forbidden\""),
            "{name}: {refused}"
        );
    }
    // Refused on the wire too, before any form.
    let (mut raw, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "dave", "dave-pw", "raw").await;
    raw.send(format!(
        "<iq type='set' id='x1' to='localhost'><command xmlns='http://jabber.org/protocol/commands' \
         node='{ADMIN_NODE}delete-user' action='execute'/></iq>"
    ))
    .await;
    let reply = raw.read_stanza_containing("id=\"x1\"").await;
    assert!(
        reply.contains("type=\"error\"") && reply.contains("<forbidden"),
        "{reply}"
    );
    for client in [bob, bob2, dave, admin] {
        assert!(client.quit().await);
    }
}

/// XEP-0050 §4.6 on the wire, from an administrator's raw stream.
#[tokio::test]
async fn command_errors_follow_xep_0050() {
    let server = server();
    let (mut c, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "admin", "admin-pw", "raw")
            .await;
    let unknown = c
        .ad_hoc("e1", "node='urn:example:nope' action='execute'")
        .await;
    assert!(unknown.contains("<item-not-found"), "{unknown}");
    let node = format!("node='{ADMIN_NODE}add-user'");
    let malformed = c.ad_hoc("e2", &format!("{node} action='jump'")).await;
    assert!(
        malformed.contains("<bad-request") && malformed.contains("<malformed-action"),
        "{malformed}"
    );
    let stale = c
        .ad_hoc("e3", &format!("{node} action='complete' sessionid='nope'"))
        .await;
    assert!(
        stale.contains("<bad-request") && stale.contains("<bad-sessionid"),
        "{stale}"
    );

    // A run: the form asks to be completed; `next` is not offered, `cancel` ends it.
    let started = c.ad_hoc("e4", &format!("{node} action='execute'")).await;
    assert!(
        started.contains("status=\"executing\"") && started.contains("<complete"),
        "{started}"
    );
    assert!(started.contains("var=\"password-verify\""), "{started}");
    let sessionid = started
        .split("sessionid=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a sessionid")
        .to_owned();
    let next = c
        .ad_hoc(
            "e5",
            &format!("{node} action='next' sessionid='{sessionid}'"),
        )
        .await;
    assert!(next.contains("<bad-action"), "{next}");
    let canceled = c
        .ad_hoc(
            "e6",
            &format!("{node} action='cancel' sessionid='{sessionid}'"),
        )
        .await;
    assert!(
        canceled.contains("type=\"result\"") && canceled.contains("status=\"canceled\""),
        "{canceled}"
    );
    let after = c
        .ad_hoc(
            "e7",
            &format!("{node} action='complete' sessionid='{sessionid}'"),
        )
        .await;
    assert!(after.contains("<bad-sessionid"), "{after}");
}

#[tokio::test]
async fn motd_is_sent_at_login_until_deleted() {
    let server = server();
    let mut admin = adhoc_client(&server, "admin", "admin-pw", "desk").await;
    let set = run(
        &mut admin,
        "set-motd",
        r#"{"subject": "Welcome", "body": "Be excellent to each other"}"#,
    )
    .await;
    assert!(completed(&set), "{set}");
    let mut bob = SlixIm::available(&server, "slix_im.py", "bob@localhost/a", "bob-pw").await;
    bob.expect_ever(&[
        "\"event\": \"received\"",
        "\"from\": \"localhost\"",
        "Be excellent",
    ])
    .await;
    assert!(bob.quit().await);

    let deleted = run(&mut admin, "delete-motd", "{}").await;
    assert!(
        completed(&deleted) && deleted.contains("deleted"),
        "{deleted}"
    );
    let mut bob = SlixIm::available(&server, "slix_im.py", "bob@localhost/b", "bob-pw").await;
    // A message sent after the login arrives after anything the login earned.
    admin
        .command(r#"{"cmd": "message", "to": "bob@localhost/b", "body": "marker"}"#)
        .await;
    bob.expect_all(&["\"event\": \"received\"", "marker"]).await;
    assert!(!bob.seen(&["Be excellent"]), "{:?}", bob.events);
    assert!(bob.quit().await);
    assert!(admin.quit().await);
}

/// The disco#info features `alice` sees on the pubsub service, the server run with
/// `config`.
async fn pubsub_features(config: TestConfig) -> String {
    let server = TestServer::start_with(config);
    server.wait_started();
    server.add_user("alice@localhost", "alice-pw");
    let (mut alice, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "alice-pw", "r").await;
    alice
        .send(
            "<iq type='get' id='d1' to='pubsub.localhost'>\
             <query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        )
        .await;
    alice.read_stanza_containing("id=\"d1\"").await
}

/// The pubsub service offers its XEP-0050 commands (§8.7 pending subscriptions) only where
/// the `adhoc` module runs them.
#[tokio::test]
async fn the_pubsub_service_advertises_commands_only_with_the_adhoc_module() {
    let commands = "var=\"http://jabber.org/protocol/commands\"";
    let with = pubsub_features(TestConfig::default()).await;
    assert!(
        with.contains("var=\"http://jabber.org/protocol/pubsub\""),
        "{with}"
    );
    assert!(with.contains(commands), "{with}");
    let without = TestConfig::default()
        .section("modules.adhoc", "enabled = false")
        .section("modules.admin_adhoc", "enabled = false");
    let without = pubsub_features(without).await;
    assert!(
        without.contains("var=\"http://jabber.org/protocol/pubsub\""),
        "{without}"
    );
    assert!(!without.contains(commands), "{without}");
}
