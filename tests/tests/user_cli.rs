//! Accounts: the `jabberwock user` commands an admin uses (checked by
//! logging in against the running server), and XEP-0077 in-band registration from a Flash
//! client when a host allows it.

use std::process::Output;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jabberwock_tests::raw::FLASH_HEADER;
use jabberwock_tests::{RawClient, TestConfig, TestServer};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn listed(server: &TestServer) -> Vec<String> {
    let out = server.cli(&["user", "list"], "");
    assert_eq!(out.status.code(), Some(0), "user list: {}", stderr(&out));
    stdout(&out).lines().map(str::to_owned).collect()
}

/// Opens a Flash stream and returns the client and its (pre-auth) features unit.
async fn flash_stream(server: &TestServer) -> (RawClient, String) {
    let mut c = RawClient::connect(server.c2s).await;
    c.send(FLASH_HEADER).await;
    let header = c.read_unit().await;
    assert!(header.contains("<flash:stream "), "{header}");
    let features = c.read_unit().await;
    assert!(features.starts_with("<stream:features>"), "{features}");
    (c, features)
}

/// One SASL PLAIN attempt on a fresh Flash stream; the server's answer unit.
async fn plain_attempt(server: &TestServer, user: &str, password: &str) -> String {
    let (mut c, _) = flash_stream(server).await;
    let token = B64.encode(format!("\0{user}\0{password}"));
    c.send(format!(
        "<auth mechanism=\"PLAIN\" xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\">{token}</auth>\0"
    ))
    .await;
    c.read_unit().await
}

async fn assert_login_fails(server: &TestServer, user: &str, password: &str) {
    let answer = plain_attempt(server, user, password).await;
    assert!(
        answer.starts_with("<failure xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"><not-authorized/>"),
        "{user} with {password:?} was not refused: {answer}"
    );
}

async fn assert_login_works(server: &TestServer, user: &str, password: &str) {
    let answer = plain_attempt(server, user, password).await;
    assert_eq!(
        answer, "<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>",
        "{user} with {password:?}"
    );
}

#[tokio::test]
async fn user_add_then_list_and_login() {
    let server = TestServer::start();
    let out = server.cli(
        &["user", "add", "alice@localhost"],
        "wonderland\nignored second line\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(listed(&server), ["alice@localhost"]);
    // The password is the first line only.
    assert_login_works(&server, "alice", "wonderland").await;
    assert_login_fails(&server, "alice", "wonderland\nignored second line").await;
    // The full login flow works with the account.
    let (_c, jid) = RawClient::login_flash(server.c2s, "alice", "wonderland", "r").await;
    assert_eq!(jid, "alice@localhost/r");
}

/// A command run while the server is stopped leaves no WAL beside the database (its
/// connections close when it exits), like a server's clean stop: the file alone holds the
/// new account, so a backup of it misses nothing.
#[tokio::test]
async fn a_command_on_a_stopped_server_leaves_the_database_file_whole() {
    let mut server = TestServer::start();
    server.wait_started();
    assert!(server.terminate().success(), "{}", server.log_text());
    let db = server.db_path();
    let export = server.dir.path().join("export");
    let export = export.to_str().expect("utf-8 path");
    for (args, stdin) in [
        (&["user", "add", "alice@localhost"][..], "wonderland\n"),
        (&["export", export][..], ""),
    ] {
        let out = server.cli(args, stdin);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let wal = std::fs::metadata(format!("{}-wal", db.display())).map_or(0, |m| m.len());
        assert_eq!(wal, 0, "the WAL holds {wal} bytes after {args:?}");
    }
    server.restart();
    assert_login_works(&server, "alice", "wonderland").await;
}

#[tokio::test]
async fn user_add_twice_is_refused_with_exit_1() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "first");
    let out = server.cli(&["user", "add", "alice@localhost"], "second\n");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    // The existing account is untouched.
    assert_login_works(&server, "alice", "first").await;
    assert_login_fails(&server, "alice", "second").await;
    assert_eq!(listed(&server), ["alice@localhost"]);
}

#[tokio::test]
async fn user_add_on_a_host_we_do_not_serve_exits_2() {
    let server = TestServer::start();
    let out = server.cli(&["user", "add", "alice@example.org"], "pw\n");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(message.contains("example.org"), "{message}");
    assert!(message.contains("not served"), "{message}");
    assert!(listed(&server).is_empty());
}

#[tokio::test]
async fn config_is_accepted_after_the_subcommand_and_user_list_checks_its_host() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    let config = server.config_path.to_str().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(jabberwock_tests::server::binary())
            .args(args)
            .current_dir(server.dir.path())
            .output()
            .expect("run jabberwock")
    };
    // The global option after the subcommand names the same database.
    for args in [
        ["user", "list", "--config", config],
        ["user", "--config", config, "list"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(
            stdout(&out).lines().collect::<Vec<_>>(),
            ["alice@localhost"]
        );
    }
    let out = run(&["user", "list", "localhost", "-c", config]);
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["alice@localhost"]
    );
    // A host this server does not serve is a mistake in the arguments, as for `user add`.
    let out = run(&["user", "list", "example.org", "--config", config]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("host example.org is not served"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

#[tokio::test]
async fn user_passwd_replaces_the_password() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "old-secret");
    assert_login_works(&server, "alice", "old-secret").await;
    let out = server.cli(&["user", "passwd", "alice@localhost"], "new-secret\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_login_fails(&server, "alice", "old-secret").await;
    assert_login_works(&server, "alice", "new-secret").await;
    let (_c, jid) = RawClient::login_flash(server.c2s, "alice", "new-secret", "r").await;
    assert_eq!(jid, "alice@localhost/r");

    // Changing the password of an account that does not exist is refused, and creates nothing.
    let out = server.cli(&["user", "passwd", "nobody@localhost"], "unused-pw\n");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // Alice's session above is still open: the running server marks her online.
    assert_eq!(listed(&server), ["alice@localhost\tonline"]);
}

#[tokio::test]
async fn user_remove_deletes_the_account() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    assert_eq!(listed(&server), ["alice@localhost", "bob@localhost"]);
    let out = server.cli(&["user", "remove", "alice@localhost"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(listed(&server), ["bob@localhost"]);
    assert_login_fails(&server, "alice", "wonderland").await;
    assert_login_works(&server, "bob", "builder").await;

    // Removing it again: nothing to remove.
    let out = server.cli(&["user", "remove", "alice@localhost"], "");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("alice@localhost"), "{}", stderr(&out));
}

const REGISTER_FEATURE: &str = "<register xmlns=\"http://jabber.org/features/iq-register\"/>";

#[tokio::test]
async fn in_band_registration_from_a_flash_client() {
    let server = TestServer::start_with(
        TestConfig::default()
            .host("localhost", "registration = true")
            // Over a clear Flash socket too.
            .host("localhost", "flash_registration = true"),
    );
    let (mut c, features) = flash_stream(&server).await;
    assert!(features.contains(REGISTER_FEATURE), "{features}");

    // XEP-0077 §3.1: the form names the fields.
    c.send("<iq type=\"get\" id=\"reg1\" to=\"localhost\"><query xmlns=\"jabber:iq:register\"/></iq>\0")
        .await;
    let form = c.read_unit().await;
    assert!(
        form.starts_with("<iq") && form.contains("type=\"result\"") && form.contains("id=\"reg1\""),
        "{form}"
    );
    assert!(
        form.contains("<query xmlns=\"jabber:iq:register\">"),
        "{form}"
    );
    assert!(
        form.contains("<username/>") && form.contains("<password/>"),
        "{form}"
    );

    c.send(
        "<iq type=\"set\" id=\"reg2\" to=\"localhost\"><query xmlns=\"jabber:iq:register\">\
         <username>carol</username><password>in-band</password></query></iq>\0",
    )
    .await;
    let created = c.read_unit().await;
    assert!(
        created.contains("type=\"result\"") && created.contains("id=\"reg2\""),
        "{created}"
    );

    // Same name again: conflict (XEP-0077 §3.1, example 6).
    c.send(
        "<iq type=\"set\" id=\"reg3\" to=\"localhost\"><query xmlns=\"jabber:iq:register\">\
         <username>carol</username><password>other</password></query></iq>\0",
    )
    .await;
    let conflict = c.read_unit().await;
    assert!(
        conflict.contains("type=\"error\"") && conflict.contains("id=\"reg3\""),
        "{conflict}"
    );
    assert!(
        conflict.contains("<conflict xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"),
        "{conflict}"
    );

    // The account is real: the admin sees it, and it logs in with the first password only.
    assert_eq!(listed(&server), ["carol@localhost"]);
    let (_carol, jid) = RawClient::login_flash(server.c2s, "carol", "in-band", "r").await;
    assert_eq!(jid, "carol@localhost/r");
    assert_login_fails(&server, "carol", "other").await;
}

#[tokio::test]
async fn in_band_registration_is_off_by_default() {
    let server = TestServer::start();
    let (mut c, features) = flash_stream(&server).await;
    assert!(!features.contains("iq-register"), "{features}");
    c.send("<iq type=\"get\" id=\"reg1\" to=\"localhost\"><query xmlns=\"jabber:iq:register\"/></iq>\0")
        .await;
    let answer = c.read_unit().await;
    assert!(
        answer.contains("type=\"error\"") && answer.contains("id=\"reg1\""),
        "{answer}"
    );
    assert!(
        answer.contains("<service-unavailable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"),
        "{answer}"
    );
    c.send(
        "<iq type=\"set\" id=\"reg2\" to=\"localhost\"><query xmlns=\"jabber:iq:register\">\
         <username>mallory</username><password>x</password></query></iq>\0",
    )
    .await;
    let answer = c.read_unit().await;
    assert!(
        answer.contains("id=\"reg2\"") && answer.contains("<service-unavailable"),
        "{answer}"
    );
    assert!(
        listed(&server).is_empty(),
        "registration created an account while disabled"
    );
}

#[tokio::test]
async fn in_band_registration_is_not_offered_before_starttls_on_standard_streams() {
    let server =
        TestServer::start_with(TestConfig::default().host("localhost", "registration = true"));
    let mut c = RawClient::connect(server.c2s).await;
    c.send(jabberwock_tests::raw::STREAM_HEADER).await;
    let features = c.read_until("</stream:features>").await;
    // RFC 6120 §5.3.1: with TLS mandatory, STARTTLS is all that is offered.
    assert!(features.contains("<starttls"), "{features}");
    assert!(!features.contains("iq-register"), "{features}");
    c.send(
        "<iq type='set' id='reg1' to='localhost'><query xmlns='jabber:iq:register'>\
         <username>eve</username><password>cleartext</password></query></iq>",
    )
    .await;
    let closed = c.read_to_close().await;
    assert!(
        closed.contains("<not-authorized xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"),
        "{closed}"
    );
    assert!(!closed.contains("type=\"result\""), "{closed}");
    assert!(
        listed(&server).is_empty(),
        "an account was registered over a cleartext stream"
    );
}

/// A username whose normal form normalises again to something else is refused by the CLI and
/// by in-band registration: U+03F9 `Ϲ` (unassigned in Unicode 3.2, so stringprep only applies
/// NFKC) becomes `Σ`, which becomes `σ`. Accepted, `Ϲ` was stored as `Σ` and its session bound
/// as `σ@localhost`: another user's account. Found by the `jid` fuzz target.
#[tokio::test]
async fn usernames_with_an_unstable_normal_form_are_refused() {
    let server = TestServer::start_with(
        TestConfig::default()
            .host("localhost", "registration = true")
            .host("localhost", "flash_registration = true"),
    );
    server.add_user("σ@localhost", "sigma-owner");

    let out = server.cli(&["user", "add", "\u{3f9}@localhost"], "intruder\n");
    assert_eq!(out.status.code(), Some(2), "user add: {}", stderr(&out));

    let (mut c, _) = flash_stream(&server).await;
    c.send(
        "<iq type=\"set\" id=\"reg\" to=\"localhost\"><query xmlns=\"jabber:iq:register\">\
         <username>\u{3f9}</username><password>intruder</password></query></iq>\0",
    )
    .await;
    let answer = c.read_unit().await;
    assert!(
        answer.contains("type=\"error\"")
            && answer.contains("<not-acceptable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"),
        "{answer}"
    );

    assert_eq!(listed(&server), ["σ@localhost"]);
    assert_login_fails(&server, "\u{3f9}", "intruder").await;
    assert_login_works(&server, "σ", "sigma-owner").await;
}
