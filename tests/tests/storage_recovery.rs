//! Storage that recovers: the SQLite database on a small tmpfs that fills up. Writes fail
//! while the disk is full (answered with a stanza error, the server keeps running), and
//! succeed again by themselves once space is freed, with every acknowledged write kept.
//!
//! Needs root (to mount the tmpfs); without it the test fails rather than skips.

mod im_support;

use im_support::{item_for, Peer};
use jabberwock_tests::tmpfs::{fill, Tmpfs};
use jabberwock_tests::{TestConfig, TestServer};

/// Roster set of the `n`th contact (after incrementing `n`); its JID and the answer.
async fn set(alice: &mut Peer, n: &mut u32) -> (String, String) {
    *n += 1;
    let jid = format!("contact{n}@localhost");
    // A long name, so each write needs fresh pages.
    let name = format!("{n}-{}", "x".repeat(900));
    let (answer, _) = alice
        .iq(&format!(
            "<iq type='set' id='{{id}}'><query xmlns='jabber:iq:roster'>\
             <item jid='{jid}' name='{name}'><group>Group {n}</group></item></query></iq>"
        ))
        .await;
    (jid, answer)
}

#[tokio::test]
async fn writes_recover_after_the_disk_was_full_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The whole data directory (database, WAL, certificate) on a small tmpfs.
    let mount = Tmpfs::mount(&dir.path().join("data"), "2m");
    let mut server = TestServer::start_in(dir, TestConfig::default());
    server.wait_started();
    server.add_user("alice@localhost", "pw-alice");
    let mut alice = Peer::login(server.c2s, &server.cert_path(), "alice", "pw-alice", "desk").await;

    let mut acknowledged = Vec::new();
    let mut n = 0;
    // Some writes with room to spare.
    for _ in 0..5 {
        let (jid, answer) = set(&mut alice, &mut n).await;
        assert!(answer.contains("type=\"result\""), "{answer}");
        acknowledged.push(jid);
    }

    let filler = mount.path.join("filler");
    assert!(fill(&filler) > 0, "the filler took no space");
    // Write until the database reports the disk full (a few may still fit in pages the
    // database already has).
    let mut refused = 0;
    for _ in 0..200 {
        let (jid, answer) = set(&mut alice, &mut n).await;
        if answer.contains("type=\"result\"") {
            acknowledged.push(jid);
        } else {
            // RFC 6120 §8.3.3.18: out of space is a resource constraint, worth a retry.
            assert!(
                answer.contains("<error type=\"wait\"><resource-constraint "),
                "{answer}\n{}",
                server.log_text()
            );
            refused += 1;
            if refused == 8 {
                break;
            }
        }
    }
    assert_eq!(refused, 8, "the full disk never refused a write");

    // Space is back: every write succeeds again, without a restart.
    std::fs::remove_file(&filler).expect("remove filler");
    for _ in 0..12 {
        let (jid, answer) = set(&mut alice, &mut n).await;
        assert!(
            answer.contains("type=\"result\""),
            "write after space was freed: {answer}\n{}",
            server.log_text()
        );
        acknowledged.push(jid);
    }
    let (roster, _) = alice.roster().await;
    for jid in &acknowledged {
        assert!(item_for(&roster, jid).is_some(), "{jid} lost: {roster}");
    }

    // And on disk: after a restart, everything acknowledged is still there.
    drop(alice);
    server.terminate();
    server.restart();
    let mut alice = Peer::login(server.c2s, &server.cert_path(), "alice", "pw-alice", "desk").await;
    let (roster, _) = alice.roster().await;
    for jid in &acknowledged {
        assert!(
            item_for(&roster, jid).is_some(),
            "{jid} lost after restart: {roster}"
        );
    }
    drop(alice);
    drop(server);
    drop(mount);
}
