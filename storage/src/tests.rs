//! Tests against real databases: SQLite files in a temporary directory
//! always, and PostgreSQL too when `JABBERWOCK_TEST_POSTGRES` names one
//! (e.g. `postgres://postgres@127.0.0.1/test`), each test in a fresh schema.
//!
//! The behaviour tests are written once over a [`Harness`] and instantiated
//! per backend by `backend_tests!` (modules `sqlite` and `postgres`);
//! SQLite-only concerns (file creation, pragmas, URL parsing) are plain
//! tests at the end.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use sqlx::Connection as _;
use tempfile::TempDir;

use crate::{open, AccountId, ScramCredential, ScramHash, SqliteStore, StoreError};

/// One fresh, empty database for one test.
struct Harness {
    url: String,
    backend: Backend,
}

enum Backend {
    /// Held so the directory outlives the test's stores.
    Sqlite(#[allow(dead_code)] TempDir),
    Postgres {
        base: String,
        schema: String,
    },
}

impl Harness {
    fn sqlite() -> Self {
        let dir = TempDir::new().unwrap();
        let url = format!("sqlite:{}", dir.path().join("db.sqlite").display());
        Harness {
            url,
            backend: Backend::Sqlite(dir),
        }
    }

    /// None (the test passes vacuously) unless `JABBERWOCK_TEST_POSTGRES` is set.
    async fn postgres() -> Option<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = std::env::var("JABBERWOCK_TEST_POSTGRES").ok()?;
        // Tests run in parallel, and several test runs may share the server:
        // a schema per test keeps their tables apart.
        let schema = format!(
            "jw_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        // `options=-c search_path=SCHEMA`, percent-encoded: every connection
        // of the store (and its migrations table) lives in that schema.
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Some(Harness {
            url,
            backend: Backend::Postgres { base, schema },
        })
    }

    /// A raw count on a connection of its own, bypassing the store.
    async fn count(&self, sql: &str) -> i64 {
        match &self.backend {
            Backend::Sqlite(_) => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
            Backend::Postgres { .. } => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    /// Drops a PostgreSQL test schema (left behind if the test panicked,
    /// which helps looking at it; the next run with that name drops it first).
    async fn cleanup(self) {
        if let Backend::Postgres { base, schema } = &self.backend {
            let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let h = super::Harness::sqlite();
                    super::$name(&h).await;
                    h.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(h) = super::Harness::postgres().await else {
                        return;
                    };
                    super::$name(&h).await;
                    h.cleanup().await;
                }
            )*
        }
    };
}

backend_tests!(
    create_then_exists_and_credentials_round_trip,
    missing_hash_is_none,
    duplicate_create_is_already_exists_and_keeps_the_original,
    create_is_one_transaction,
    set_credentials_replaces_all,
    set_credentials_on_missing_account_is_not_found,
    remove_cascades_to_credentials,
    list_is_sorted_and_filtered_by_domain,
    data_survives_reopen,
    concurrent_writers_do_not_fail_with_busy,
);

/// Bytes that would be mangled by any text round trip (NUL, invalid UTF-8),
/// distinct per hash so a mix-up between rows shows.
fn cred(hash: ScramHash, seed: u8) -> ScramCredential {
    ScramCredential {
        hash,
        salt: vec![0x00, 0xff, seed, 0xc3, 0x28, 0x00],
        iterations: 4096 + u32::from(seed),
        stored_key: (0..32).map(|i| i ^ seed).collect(),
        server_key: (0..32).rev().map(|i| i ^ seed.wrapping_mul(3)).collect(),
    }
}

fn alice() -> AccountId {
    AccountId::new("alice", "a.example")
}

// ---- behaviour tests, run per backend -------------------------------------

async fn create_then_exists_and_credentials_round_trip(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    assert!(!store.account_exists(&id).await.unwrap());
    assert_eq!(store.credential(&id, ScramHash::Sha1).await.unwrap(), None);

    let sha1 = cred(ScramHash::Sha1, 1);
    let mut sha256 = cred(ScramHash::Sha256, 2);
    // The full u32 range must survive the integer column.
    sha256.iterations = u32::MAX;
    store
        .create_account(&id, &[sha1.clone(), sha256.clone()])
        .await
        .unwrap();

    assert!(store.account_exists(&id).await.unwrap());
    assert_eq!(
        store.credential(&id, ScramHash::Sha1).await.unwrap(),
        Some(sha1)
    );
    assert_eq!(
        store.credential(&id, ScramHash::Sha256).await.unwrap(),
        Some(sha256)
    );
    // Same username, other domain: a different account.
    let other = AccountId::new("alice", "b.example");
    assert!(!store.account_exists(&other).await.unwrap());
    assert_eq!(
        store.credential(&other, ScramHash::Sha1).await.unwrap(),
        None
    );
}

async fn missing_hash_is_none(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store
        .create_account(&id, &[cred(ScramHash::Sha256, 7)])
        .await
        .unwrap();
    assert_eq!(store.credential(&id, ScramHash::Sha1).await.unwrap(), None);
    assert!(store
        .credential(&id, ScramHash::Sha256)
        .await
        .unwrap()
        .is_some());
}

async fn duplicate_create_is_already_exists_and_keeps_the_original(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    let original = cred(ScramHash::Sha256, 1);
    store
        .create_account(&id, std::slice::from_ref(&original))
        .await
        .unwrap();

    let err = store
        .create_account(&id, &[cred(ScramHash::Sha256, 9)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");
    assert_eq!(
        store.credential(&id, ScramHash::Sha256).await.unwrap(),
        Some(original)
    );
    // The same name on another domain is free.
    store
        .create_account(&AccountId::new("alice", "b.example"), &[])
        .await
        .unwrap();
}

async fn create_is_one_transaction(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    // Two rows for one hash violate the credentials' primary key after the
    // account row is in: the whole creation must roll back.
    let err = store
        .create_account(&id, &[cred(ScramHash::Sha1, 1), cred(ScramHash::Sha1, 2)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(!store.account_exists(&id).await.unwrap());
    // And the name is still free.
    store
        .create_account(&id, &[cred(ScramHash::Sha1, 1)])
        .await
        .unwrap();
}

async fn set_credentials_replaces_all(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store
        .create_account(&id, &[cred(ScramHash::Sha1, 1), cred(ScramHash::Sha256, 2)])
        .await
        .unwrap();

    let new = cred(ScramHash::Sha256, 42);
    store
        .set_credentials(&id, std::slice::from_ref(&new))
        .await
        .unwrap();
    // Replaced, not merged: the SHA-1 set of the old password is gone.
    assert_eq!(store.credential(&id, ScramHash::Sha1).await.unwrap(), None);
    assert_eq!(
        store.credential(&id, ScramHash::Sha256).await.unwrap(),
        Some(new)
    );
}

async fn set_credentials_on_missing_account_is_not_found(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let err = store
        .set_credentials(&alice(), &[cred(ScramHash::Sha1, 1)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    // Nothing was created on the way.
    assert!(!store.account_exists(&alice()).await.unwrap());
}

async fn remove_cascades_to_credentials(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    let bob = AccountId::new("bob", "a.example");
    store
        .create_account(&id, &[cred(ScramHash::Sha1, 1), cred(ScramHash::Sha256, 2)])
        .await
        .unwrap();
    store
        .create_account(&bob, &[cred(ScramHash::Sha256, 3)])
        .await
        .unwrap();
    assert_eq!(h.count("SELECT COUNT(*) FROM scram_credentials").await, 3);

    assert!(store.remove_account(&id).await.unwrap());
    assert!(!store.account_exists(&id).await.unwrap());
    // Only bob's row is left: alice's went with her account row.
    assert_eq!(h.count("SELECT COUNT(*) FROM scram_credentials").await, 1);
    assert_eq!(
        h.count(
            "SELECT COUNT(*) FROM scram_credentials c \
             LEFT JOIN accounts a ON a.id = c.account_id WHERE a.id IS NULL"
        )
        .await,
        0
    );
    assert!(store.account_exists(&bob).await.unwrap());

    assert!(!store.remove_account(&id).await.unwrap());
}

async fn list_is_sorted_and_filtered_by_domain(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    // Inserted out of order on purpose; "Zed" sorts before "amy" in byte
    // order but not in most locales' collations.
    for (user, domain) in [
        ("zed", "b.example"),
        ("carol", "a.example"),
        ("amy", "b.example"),
        ("Zed", "b.example"),
        ("bob", "a.example"),
    ] {
        store
            .create_account(&AccountId::new(user, domain), &[])
            .await
            .unwrap();
    }
    let all = store.list_accounts(None).await.unwrap();
    assert_eq!(
        all,
        vec![
            AccountId::new("bob", "a.example"),
            AccountId::new("carol", "a.example"),
            AccountId::new("Zed", "b.example"),
            AccountId::new("amy", "b.example"),
            AccountId::new("zed", "b.example"),
        ]
    );
    assert_eq!(
        store.list_accounts(Some("b.example")).await.unwrap(),
        vec![
            AccountId::new("Zed", "b.example"),
            AccountId::new("amy", "b.example"),
            AccountId::new("zed", "b.example"),
        ]
    );
    assert!(store
        .list_accounts(Some("c.example"))
        .await
        .unwrap()
        .is_empty());
}

async fn data_survives_reopen(h: &Harness) {
    let sha = cred(ScramHash::Sha256, 5);
    {
        let store = open(&h.url).await.unwrap();
        store
            .create_account(&alice(), std::slice::from_ref(&sha))
            .await
            .unwrap();
        // Dropped without any close: committed data must already be durable.
    }
    // Later opens re-run the migrator on an already migrated database: it
    // must be a no-op, not a "table already exists" failure.
    for _ in 0..2 {
        let store = open(&h.url).await.unwrap();
        assert_eq!(
            store.credential(&alice(), ScramHash::Sha256).await.unwrap(),
            Some(sha.clone())
        );
    }
    assert_eq!(h.count("SELECT COUNT(*) FROM _sqlx_migrations").await, 1);
}

/// Catches a deferred BEGIN in SQLite: upgrading a read transaction to a
/// write fails at once with SQLITE_BUSY instead of waiting for the lock.
async fn concurrent_writers_do_not_fail_with_busy(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let id = AccountId::new(format!("user{i:02}"), "a.example");
                store
                    .create_account(&id, &[cred(ScramHash::Sha256, i)])
                    .await?;
                store
                    .set_credentials(&id, &[cred(ScramHash::Sha1, i)])
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.list_accounts(None).await.unwrap().len(), 16);
}

// ---- SQLite only ------------------------------------------------------------

#[tokio::test]
async fn open_creates_missing_parent_directories() {
    let dir = TempDir::new().unwrap();
    let path = dir
        .path()
        .join("deeply")
        .join("nested")
        .join("jabberwock.db");
    assert!(!path.parent().unwrap().exists());
    // The `sqlite://` spelling with an absolute path (three slashes).
    let store = open(&format!("sqlite://{}", path.display())).await.unwrap();
    store.create_account(&alice(), &[]).await.unwrap();
    assert!(path.is_file());
}

#[tokio::test]
async fn connection_settings_are_applied() {
    let dir = TempDir::new().unwrap();
    let url = format!("sqlite:{}", dir.path().join("db.sqlite").display());
    let store = SqliteStore::open(&url).await.unwrap();
    let mut conn = store.pool().acquire().await.unwrap();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(busy, 5000);
    // 1 = NORMAL.
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(sync, 1);
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    for bad in [
        "mysql://localhost/jabberwock",
        "/var/lib/jabberwock.db",
        "sqlite:",
        "sqlite://",
        "sqlite:data.db?mode=ro",
        "",
    ] {
        match open(bad).await {
            Err(StoreError::UnsupportedUrl(u)) => assert_eq!(u, bad),
            Err(e) => panic!("{bad:?}: wrong error {e:?}"),
            Ok(_) => panic!("{bad:?}: accepted"),
        }
    }
}

#[tokio::test]
async fn in_memory_database_keeps_its_data() {
    let store = open("sqlite::memory:").await.unwrap();
    store.create_account(&alice(), &[]).await.unwrap();
    // A second pool connection would be a fresh, empty database.
    assert!(store.account_exists(&alice()).await.unwrap());
    assert_eq!(store.list_accounts(None).await.unwrap(), vec![alice()]);
}
