//! The password database holds no password in any recoverable form (a
//! test reads the row). Accounts are created the two ways a password reaches the server (the
//! admin CLI and XEP-0077 from a client); then the SQLite file is read directly, every row of
//! every table, and the stored SCRAM credentials are recomputed from the password to prove they
//! are exactly what SCRAM (RFC 5802 §3) needs and nothing more.

use std::collections::{BTreeMap, HashSet};

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use jabberwock_tests::{RawClient, TestConfig, TestServer};
use sasl::common::scram::{ScramProvider, Sha1, Sha256};
use sasl::common::Password;
use sqlx::{Connection, Row, SqliteConnection};

/// Alice and Bob share it (so their keys must still differ); non-ASCII on purpose.
const SHARED: &str = "Sh4red-pässword-Ω-1";
/// Carol's, registered in-band.
const CAROL: &str = "in-band-s3cret-Carol";

async fn register_in_band(server: &TestServer, user: &str, password: &str) {
    let mut c = RawClient::connect(server.c2s).await;
    let answer = c.register_flash(user, password).await;
    assert!(
        answer.contains("type=\"result\"") && answer.contains("id=\"reg\""),
        "{answer}"
    );
}

/// Every byte sequence that would give the password away if found in the database.
fn encodings(password: &str) -> Vec<(String, Vec<u8>)> {
    let utf16le: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let utf16be: Vec<u8> = password.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let hex: String = password.bytes().map(|b| format!("{b:02x}")).collect();
    vec![
        ("UTF-8".into(), password.as_bytes().to_vec()),
        ("UTF-16LE".into(), utf16le),
        ("UTF-16BE".into(), utf16be),
        ("base64".into(), B64.encode(password).into_bytes()),
        // The base64 with its padding removed is a substring check of the padded form too.
        ("base64url".into(), B64URL.encode(password).into_bytes()),
        ("hex".into(), hex.clone().into_bytes()),
        ("HEX".into(), hex.to_uppercase().into_bytes()),
        ("lowercase".into(), password.to_lowercase().into_bytes()),
    ]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every value of every row of every table (sqlite_master included), as bytes.
async fn every_value(db: &mut SqliteConnection) -> Vec<(String, Vec<u8>)> {
    let tables: Vec<String> = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table'")
        .fetch_all(&mut *db)
        .await
        .expect("list tables")
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    assert!(tables.iter().any(|t| t == "accounts"), "{tables:?}");
    assert!(
        tables.iter().any(|t| t == "scram_credentials"),
        "{tables:?}"
    );
    let mut values = Vec::new();
    for table in tables.iter().map(String::as_str).chain(["sqlite_master"]) {
        let columns: Vec<String> = sqlx::query(&format!("PRAGMA table_info(\"{table}\")"))
            .fetch_all(&mut *db)
            .await
            .expect("table_info")
            .iter()
            .map(|r| r.get::<String, _>("name"))
            .collect();
        assert!(!columns.is_empty(), "no columns in {table}");
        for column in columns {
            let rows = sqlx::query(&format!(
                "SELECT CAST(\"{column}\" AS BLOB) FROM \"{table}\""
            ))
            .fetch_all(&mut *db)
            .await
            .expect("read column");
            for row in rows {
                if let Some(bytes) = row.get::<Option<Vec<u8>>, _>(0) {
                    values.push((format!("{table}.{column}"), bytes));
                }
            }
        }
    }
    values
}

struct Credential {
    user: String,
    hash: String,
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

async fn credentials(db: &mut SqliteConnection) -> Vec<Credential> {
    sqlx::query(
        "SELECT a.username, c.hash, c.salt, c.iterations, c.stored_key, c.server_key \
         FROM scram_credentials c JOIN accounts a ON a.id = c.account_id ORDER BY a.username, c.hash",
    )
    .fetch_all(&mut *db)
    .await
    .expect("read credentials")
    .iter()
    .map(|r| Credential {
        user: r.get(0),
        hash: r.get(1),
        salt: r.get(2),
        iterations: u32::try_from(r.get::<i64, _>(3)).expect("iterations fit u32"),
        stored_key: r.get(4),
        server_key: r.get(5),
    })
    .collect()
}

/// RFC 5802 §3: StoredKey = H(HMAC(SaltedPassword, "Client Key")),
/// ServerKey = HMAC(SaltedPassword, "Server Key"). sasl's `hmac` takes (data, key).
fn scram_keys<H: ScramProvider>(
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> (Vec<u8>, Vec<u8>) {
    let salted =
        H::derive(&Password::Plain(password.to_owned()), salt, iterations).expect("PBKDF2");
    let client_key = H::hmac(b"Client Key", &salted).expect("HMAC");
    let server_key = H::hmac(b"Server Key", &salted).expect("HMAC");
    (H::hash(&client_key), server_key)
}

fn keys_for(hash: &str, password: &str, salt: &[u8], iterations: u32) -> (Vec<u8>, Vec<u8>) {
    match hash {
        "SHA-1" => scram_keys::<Sha1>(password, salt, iterations),
        "SHA-256" => scram_keys::<Sha256>(password, salt, iterations),
        other => panic!("unexpected hash {other:?}"),
    }
}

#[tokio::test]
async fn database_holds_scram_keys_and_no_password() {
    let server = TestServer::start_with(
        TestConfig::default()
            .host("localhost", "registration = true")
            // Over a clear Flash socket too.
            .host("localhost", "flash_registration = true"),
    );
    server.add_user("alice@localhost", SHARED);
    server.add_user("bob@localhost", SHARED);
    register_in_band(&server, "carol", CAROL).await;
    // The accounts work, so the database is the one the server uses.
    RawClient::login_flash(server.c2s, "alice", SHARED, "a").await;
    RawClient::login_flash(server.c2s, "carol", CAROL, "c").await;

    let mut db = server.read_db().await;

    // 1. No password, in any encoding, in any value of any table.
    let values = every_value(&mut db).await;
    assert!(
        values.iter().any(|(col, _)| col == "accounts.username"),
        "read nothing?"
    );
    for password in [SHARED, CAROL] {
        for (encoding, needle) in encodings(password) {
            for (column, value) in &values {
                assert!(
                    !contains(value, &needle),
                    "{column} holds the password {password:?} ({encoding}): {value:?}"
                );
            }
        }
    }
    // Nor anywhere in the file itself (free pages, journal, WAL included).
    for suffix in ["", "-wal", "-journal"] {
        let path = format!("{}{suffix}", server.db_path().display());
        if let Ok(bytes) = std::fs::read(&path) {
            for password in [SHARED, CAROL] {
                for (encoding, needle) in encodings(password) {
                    assert!(
                        !contains(&bytes, &needle),
                        "{path} holds {password:?} ({encoding})"
                    );
                }
            }
        }
    }

    // 2. Exactly the SCRAM credentials: both hashes per account, proper sizes.
    let creds = credentials(&mut db).await;
    let mut per_user: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in &creds {
        per_user.entry(&c.user).or_default().push(&c.hash);
        let len = if c.hash == "SHA-1" { 20 } else { 32 };
        assert!(
            c.salt.len() >= 16,
            "{} {}: salt of {} bytes",
            c.user,
            c.hash,
            c.salt.len()
        );
        assert!(
            c.iterations >= 4096,
            "{} {}: {} iterations",
            c.user,
            c.hash,
            c.iterations
        );
        assert_eq!(c.stored_key.len(), len, "{} {} stored_key", c.user, c.hash);
        assert_eq!(c.server_key.len(), len, "{} {} server_key", c.user, c.hash);
        assert_ne!(c.stored_key, c.server_key, "{} {}", c.user, c.hash);
    }
    let expected: BTreeMap<&str, Vec<&str>> = ["alice", "bob", "carol"]
        .into_iter()
        .map(|u| (u, vec!["SHA-1", "SHA-256"]))
        .collect();
    assert_eq!(per_user, expected);

    // 3. Salts are random: distinct per account and per hash.
    let salts: HashSet<&[u8]> = creds.iter().map(|c| c.salt.as_slice()).collect();
    assert_eq!(salts.len(), creds.len(), "a salt is reused");

    // 4. The same password gives unrelated rows for different accounts.
    for hash in ["SHA-1", "SHA-256"] {
        let of = |user: &str| {
            creds
                .iter()
                .find(|c| c.user == user && c.hash == hash)
                .unwrap()
        };
        let (alice, bob) = (of("alice"), of("bob"));
        assert_ne!(
            alice.stored_key, bob.stored_key,
            "{hash}: same password, same stored key"
        );
        assert_ne!(
            alice.server_key, bob.server_key,
            "{hash}: same password, same server key"
        );
    }

    // 5. The rows are what SCRAM needs: recomputed from password, salt and iterations.
    for c in &creds {
        let password = if c.user == "carol" { CAROL } else { SHARED };
        let (stored_key, server_key) = keys_for(&c.hash, password, &c.salt, c.iterations);
        assert_eq!(
            c.stored_key, stored_key,
            "{} {}: not the SCRAM StoredKey",
            c.user, c.hash
        );
        assert_eq!(
            c.server_key, server_key,
            "{} {}: not the SCRAM ServerKey",
            c.user, c.hash
        );
        let (wrong, _) = keys_for(&c.hash, "not the password", &c.salt, c.iterations);
        assert_ne!(c.stored_key, wrong);
    }
    db.close().await.expect("close");
}

#[tokio::test]
async fn password_change_replaces_every_credential() {
    let server = TestServer::start();
    server.add_user("dave@localhost", "first-Pass-123");
    let mut db = server.read_db().await;
    let before = credentials(&mut db).await;
    db.close().await.expect("close");

    let out = server.cli(&["user", "passwd", "dave@localhost"], "second-Pass-456\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut db = server.read_db().await;
    let after = credentials(&mut db).await;
    let values = every_value(&mut db).await;
    db.close().await.expect("close");
    assert_eq!(after.len(), 2, "one row per hash, the old ones gone");
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old.hash, new.hash);
        assert_ne!(old.salt, new.salt, "{}: the salt was not renewed", new.hash);
        let (stored_key, server_key) =
            keys_for(&new.hash, "second-Pass-456", &new.salt, new.iterations);
        assert_eq!(
            (&new.stored_key, &new.server_key),
            (&stored_key, &server_key),
            "{}",
            new.hash
        );
    }
    for password in ["first-Pass-123", "second-Pass-456"] {
        for (encoding, needle) in encodings(password) {
            for (column, value) in &values {
                assert!(
                    !contains(value, &needle),
                    "{column} holds {password:?} ({encoding})"
                );
            }
        }
    }
}
