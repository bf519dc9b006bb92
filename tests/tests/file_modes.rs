//! What the server writes is private: the data directory it creates is 0700, the SQLite
//! database and its -wal/-shm files and the generated TLS key are 0600 (they hold SCRAM
//! keys, rosters, offline messages and the key), whatever the umask.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use jabberwock_tests::{RawClient, TestServer};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn data_directory_database_and_key_are_private() {
    let server = TestServer::start();
    server.wait_started();
    server.add_user("alice@localhost", "pw-alice");
    // A login and a write, so the WAL and shared-memory files exist.
    let (mut c, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "pw-alice", "r").await;
    c.send("<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost'/></query></iq>")
        .await;
    c.read_stanza_containing("id=\"s1\"").await;

    let db = server.db_path();
    let data = db.parent().expect("data dir");
    assert_eq!(mode(data), 0o700, "data directory");
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", db.display());
        assert_eq!(mode(Path::new(&file)), 0o600, "{file}");
    }
    assert_eq!(mode(&data.join("key.pem")), 0o600, "key.pem");
    assert_eq!(mode(&data.join("node-id")), 0o600, "node-id");
}
