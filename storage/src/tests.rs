//! Tests against real databases: SQLite files in a temporary directory
//! always, and PostgreSQL too when `JABBERWOCK_TEST_POSTGRES` names one
//! (e.g. `postgres://postgres@127.0.0.1/test`), each test in a fresh schema.
//!
//! The behaviour tests are written once over a [`Harness`] and instantiated
//! per backend by `backend_tests!` (modules `sqlite` and `postgres`);
//! SQLite-only concerns (file creation, pragmas, URL parsing) are plain
//! tests at the end.

use std::str::FromStr as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use sqlx::Connection as _;
use tempfile::TempDir;

use crate::{
    open, AccountId, AccountStore as _, OfflineMessage, RosterEntry, RosterUpdate, RosterUpdated,
    ScramCredential, ScramHash, SqliteStore, Store, StoreError, StoredVcard, Subscription,
};
use crate::{AffiliationChange, StoredAffiliation, StoredRoom, StoredSubject};
use crate::{ArchiveOwner, ArchiveQuery, ArchivedMessage, NewArchived};
use crate::{
    Created, ItemsWanted, PublishPlan, Published, PubsubService, StoredItem, StoredSubscription,
    Subscribers,
};
use crate::{SlotGranted, UploadCompleted, UploadSlot};

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

    /// A raw statement on a connection of its own, bypassing the store.
    async fn exec(&self, sql: &str) {
        match &self.backend {
            Backend::Sqlite(_) => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
            Backend::Postgres { .. } => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
        }
    }

    /// Brings the empty database to the schema of the first release only
    /// (migration 0001, read from the source tree like `migrate!` does), as a
    /// deployed database would be before an upgrade.
    async fn migrate_first_release_only(&self) {
        let dialect = match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres { .. } => "postgres",
        };
        let dir = TempDir::new().unwrap();
        let name = "0001_accounts.sql";
        std::fs::copy(
            format!("{}/migrations/{dialect}/{name}", env!("CARGO_MANIFEST_DIR")),
            dir.path().join(name),
        )
        .unwrap();
        let migrator = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
        match &self.backend {
            Backend::Sqlite(_) => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url)
                    .unwrap()
                    .create_if_missing(true);
                let mut conn = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .unwrap();
                migrator.run(&mut conn).await.unwrap();
            }
            Backend::Postgres { .. } => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                migrator.run(&mut conn).await.unwrap();
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
    remove_cascades_to_everything_the_account_owns,
    list_is_sorted_and_filtered_by_domain,
    accounts_without_credentials_are_listed,
    data_survives_reopen,
    concurrent_writers_do_not_fail_with_busy,
    roster_entry_round_trip,
    roster_version_counts_changes,
    put_roster_entry_on_missing_account_is_not_found,
    roster_lists_pending_only_entries_and_sizes_only_items,
    rosters_of_two_accounts_do_not_mix,
    concurrent_roster_writes_get_distinct_versions,
    update_roster_entry_reads_decides_and_writes,
    update_roster_entry_within_refuses_a_full_roster,
    two_stores_updating_one_roster_lose_no_change,
    guests_are_listed_for_their_owner_only,
    offline_store_limit_order_delete_count,
    offline_ids_are_never_reused,
    offline_store_on_missing_account_is_not_found,
    offline_messages_of_two_accounts_do_not_mix,
    offline_messages_survive_reopen,
    concurrent_offline_stores_respect_the_limit,
    upgrade_from_first_release_keeps_accounts,
    presence_roster_tells_whether_offline_messages_wait,
    presence_shared_with_lists_the_accounts_subscribed_from,
    roster_versions_keep_rising_across_account_recreation,
    private_xml_round_trip_and_replace,
    vcard_round_trip_replace_and_photo_hash,
    block_and_unblock_return_what_changed,
    concurrent_blocks_add_each_jid_once,
    last_activity_round_trip_and_replace,
    motd_set_replace_delete_per_domain,
    writes_to_a_missing_account_are_not_found,
    private_vcard_blocklist_last_activity_keep_accounts_apart,
    private_vcard_blocklist_last_activity_survive_reopen,
    muc_rooms_round_trip_per_host,
    muc_affiliation_changes_apply_in_order,
    muc_room_deletion_takes_its_affiliations,
    archive_pages_both_ways_in_order,
    archive_filters_by_with_time_and_ids,
    archive_append_skips_missing_accounts_and_unknown_ids_are_errors,
    archive_append_batches_many_owners_in_order,
    archive_prefs_round_trip,
    archive_expires_by_age_and_trims_per_owner,
    archive_goes_with_the_account,
    room_archives_need_no_account_and_go_when_removed,
    pubsub_publish_keeps_the_newest_items_in_order,
    pubsub_publish_plan_sees_the_config_and_limits_hold,
    pubsub_node_changes_and_last_items,
    pubsub_nodes_survive_reopen_and_go_with_the_account,
    pubsub_service_affiliations_and_subscriptions,
    upload_quota_counts_complete_files_and_survives_reopen,
    upload_expiry_lists_waiting_slots_and_old_files,
    account_uploads_are_removed_by_owner,
);

/// XEP-0237: a client that cached the roster of a removed account must not find its
/// version again in a new account of the same name.
async fn roster_versions_keep_rising_across_account_recreation(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store.create_account(&id, &[]).await.unwrap();
    let mut old = 0;
    for contact in ["bob@b.example", "carol@c.example", "dave@d.example"] {
        old = store.put_roster_entry(&id, &item(contact)).await.unwrap();
    }
    assert!(store.remove_account(&id).await.unwrap());
    store.create_account(&id, &[]).await.unwrap();
    let fresh = store.roster_version(&id).await.unwrap();
    assert!(
        fresh > old,
        "new account at {fresh}, the removed one was at {old}"
    );
    let next = store
        .put_roster_entry(&id, &item("bob@b.example"))
        .await
        .unwrap();
    assert!(next > fresh);
    // Removing another account, at a lower version, lowers nothing.
    let other = AccountId::new("zed", "z.example");
    store.create_account(&other, &[]).await.unwrap();
    assert!(store.remove_account(&other).await.unwrap());
    assert!(store.remove_account(&id).await.unwrap());
    assert!(!store.remove_account(&id).await.unwrap());
    store.create_account(&id, &[]).await.unwrap();
    assert!(store.roster_version(&id).await.unwrap() > next);
}

/// The one read behind a login's probes: who shares their presence with a contact.
async fn presence_shared_with_lists_the_accounts_subscribed_from(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let contact = "alice@a.example";
    assert!(store
        .presence_shared_with(contact)
        .await
        .unwrap()
        .is_empty());
    let subs = [
        ("carol", Subscription::Both),
        ("bob", Subscription::From),
        ("dave", Subscription::To),
        ("erin", Subscription::None),
    ];
    for (user, sub) in subs {
        let id = AccountId::new(user, "b.example");
        store.create_account(&id, &[]).await.unwrap();
        let mut entry = item(contact);
        entry.subscription = sub;
        store.put_roster_entry(&id, &entry).await.unwrap();
        // Another contact's entry, subscribed both: not about alice.
        let mut other = item("zed@z.example");
        other.subscription = Subscription::Both;
        store.put_roster_entry(&id, &other).await.unwrap();
    }
    // The same name on another domain, sorted after.
    let frank = AccountId::new("bob", "c.example");
    store.create_account(&frank, &[]).await.unwrap();
    let mut entry = item(contact);
    entry.subscription = Subscription::From;
    entry.in_roster = false;
    store.put_roster_entry(&frank, &entry).await.unwrap();
    assert_eq!(
        store.presence_shared_with(contact).await.unwrap(),
        vec![
            AccountId::new("bob", "b.example"),
            AccountId::new("carol", "b.example"),
            AccountId::new("bob", "c.example"),
        ]
    );
    // Bare JIDs are compared exactly: another contact shares nothing.
    assert!(store
        .presence_shared_with("alice@a.example/res")
        .await
        .unwrap()
        .is_empty());
}

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

async fn remove_cascades_to_everything_the_account_owns(h: &Harness) {
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
    for owner in [&id, &bob] {
        let mut e = item("carol@c.example");
        e.groups = vec!["Friends".into(), "Work".into()];
        store.put_roster_entry(owner, &e).await.unwrap();
        store.store_offline(owner, "<message/>", 10).await.unwrap();
        fill_private_vcard_blocklist_last_activity(&*store, owner).await;
    }
    assert_eq!(h.count("SELECT COUNT(*) FROM scram_credentials").await, 3);
    assert_eq!(h.count("SELECT COUNT(*) FROM roster_entries").await, 2);
    assert_eq!(h.count("SELECT COUNT(*) FROM roster_groups").await, 4);
    assert_eq!(h.count("SELECT COUNT(*) FROM offline_messages").await, 2);
    assert_eq!(h.count("SELECT COUNT(*) FROM private_storage").await, 4);
    assert_eq!(h.count("SELECT COUNT(*) FROM vcards").await, 2);
    assert_eq!(h.count("SELECT COUNT(*) FROM blocklist").await, 4);
    assert_eq!(h.count("SELECT COUNT(*) FROM last_activity").await, 2);

    assert!(store.remove_account(&id).await.unwrap());
    assert!(!store.account_exists(&id).await.unwrap());
    // Only bob's rows are left: alice's went with her account row (the
    // groups through her roster entries).
    assert_eq!(h.count("SELECT COUNT(*) FROM scram_credentials").await, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM roster_entries").await, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM roster_groups").await, 2);
    assert_eq!(h.count("SELECT COUNT(*) FROM offline_messages").await, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM private_storage").await, 2);
    assert_eq!(h.count("SELECT COUNT(*) FROM vcards").await, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM blocklist").await, 2);
    assert_eq!(h.count("SELECT COUNT(*) FROM last_activity").await, 1);
    for table in [
        "scram_credentials",
        "roster_entries",
        "roster_groups",
        "offline_messages",
        "private_storage",
        "vcards",
        "blocklist",
        "last_activity",
    ] {
        assert_eq!(
            h.count(&format!(
                "SELECT COUNT(*) FROM {table} t \
                 LEFT JOIN accounts a ON a.id = t.account_id WHERE a.id IS NULL"
            ))
            .await,
            0,
            "{table}"
        );
    }
    assert!(store.account_exists(&bob).await.unwrap());
    assert_eq!(store.roster(&bob).await.unwrap().1.len(), 1);
    assert_eq!(store.offline_count(&bob).await.unwrap(), 1);
    assert_private_vcard_blocklist_last_activity(&*store, &bob).await;

    // A new account of the same name starts empty (at a higher roster version: XEP-0237,
    // a cached version of the removed account must not match).
    store.create_account(&id, &[]).await.unwrap();
    let (version, entries) = store.roster(&id).await.unwrap();
    assert!(version > 0 && entries.is_empty(), "{version} {entries:?}");
    assert_eq!(store.offline_count(&id).await.unwrap(), 0);
    assert_eq!(
        store.private_get(&id, "storage:bookmarks").await.unwrap(),
        None
    );
    assert_eq!(store.vcard(&id).await.unwrap(), None);
    assert!(store.blocklist(&id).await.unwrap().is_empty());
    assert_eq!(store.last_activity(&id).await.unwrap(), None);
    assert!(store.remove_account(&id).await.unwrap());

    assert!(!store.remove_account(&id).await.unwrap());
}

async fn accounts_without_credentials_are_listed(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    assert_eq!(store.accounts_without_credentials().await.unwrap(), vec![]);
    let bob = AccountId::new("bob", "a.example");
    let zed = AccountId::new("zed", "a.example");
    let amy = AccountId::new("amy", "b.example");
    store
        .create_account(&alice(), &[cred(ScramHash::Sha256, 1)])
        .await
        .unwrap();
    for id in [&zed, &amy, &bob] {
        store.create_account(id, &[]).await.unwrap();
    }
    // A bare account can own rows like any other.
    store
        .put_roster_entry(&bob, &item("alice@a.example"))
        .await
        .unwrap();
    store.store_offline(&bob, "<message/>", 10).await.unwrap();
    assert_eq!(
        store.accounts_without_credentials().await.unwrap(),
        vec![bob.clone(), zed.clone(), amy.clone()]
    );
    // Getting credentials takes an account off the list.
    store
        .set_credentials(&zed, &[cred(ScramHash::Sha1, 2)])
        .await
        .unwrap();
    assert!(store.remove_account(&bob).await.unwrap());
    assert_eq!(
        store.accounts_without_credentials().await.unwrap(),
        vec![amy]
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM roster_entries").await, 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM offline_messages").await, 0);
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
    // One row per migration file (0001 accounts, 0002 rosters/offline, 0003 contact
    // index, 0004 roster version floor, 0005 private XML, vCards, blocklists, last
    // activity, 0006 guest owners, 0007 MUC rooms, 0008 message archive, 0009 PEP, 0010
    // pubsub affiliations and subscriptions, 0011 uploads, 0012 messages of the day,
    // 0013 pending pubsub subscriptions).
    assert_eq!(h.count("SELECT COUNT(*) FROM _sqlx_migrations").await, 13);
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

// ---- rosters ---------------------------------------------------------------

/// A plain roster item: in the roster, no subscription, no name or groups.
fn item(contact: &str) -> RosterEntry {
    RosterEntry {
        contact: contact.into(),
        in_roster: true,
        ..RosterEntry::default()
    }
}

async fn roster_entry_round_trip(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store.create_account(&id, &[]).await.unwrap();

    // Everything set; groups deliberately not in sorted order.
    let full = RosterEntry {
        contact: "bob@b.example".into(),
        name: Some("Bob ☃ <the builder>".into()),
        groups: vec!["Work".into(), "Ärger".into(), "Friends".into()],
        subscription: Subscription::Both,
        pending_out: true,
        pending_in: true,
        approved: true,
        in_roster: true,
        pending_in_stanza: Some(
            "<presence from='bob@b.example' type='subscribe'><status>hi</status></presence>".into(),
        ),
    };
    store.put_roster_entry(&id, &full).await.unwrap();
    assert_eq!(
        store.roster_entry(&id, &full.contact).await.unwrap(),
        Some(full.clone())
    );
    assert_eq!(store.roster(&id).await.unwrap(), (1, vec![full.clone()]));

    // Nothing set (name None, no groups, every flag false).
    let bare = RosterEntry {
        contact: "carol@c.example".into(),
        ..RosterEntry::default()
    };
    store.put_roster_entry(&id, &bare).await.unwrap();
    assert_eq!(
        store.roster_entry(&id, &bare.contact).await.unwrap(),
        Some(bare.clone())
    );

    // One flag at a time, so two columns swapped on the way shows; and every
    // subscription value.
    let flags: [fn(&mut RosterEntry); 4] = [
        |e| e.pending_out = true,
        |e| e.pending_in = true,
        |e| e.approved = true,
        |e| e.in_roster = true,
    ];
    for (i, set) in flags.iter().enumerate() {
        let mut e = bare.clone();
        e.contact = format!("flag{i}@c.example");
        set(&mut e);
        store.put_roster_entry(&id, &e).await.unwrap();
        assert_eq!(store.roster_entry(&id, &e.contact).await.unwrap(), Some(e));
    }
    for sub in [
        Subscription::None,
        Subscription::To,
        Subscription::From,
        Subscription::Both,
    ] {
        assert_eq!(Subscription::from_name(sub.as_str()), Some(sub));
        let mut e = item("sub@c.example");
        e.subscription = sub;
        store.put_roster_entry(&id, &e).await.unwrap();
        assert_eq!(store.roster_entry(&id, &e.contact).await.unwrap(), Some(e));
    }
    assert_eq!(Subscription::from_name("remove"), None);

    // Replacing: every field, groups replaced rather than merged.
    let replaced = RosterEntry {
        contact: full.contact.clone(),
        name: None,
        groups: vec!["Friends".into()],
        subscription: Subscription::To,
        pending_out: false,
        pending_in: false,
        approved: false,
        in_roster: true,
        pending_in_stanza: None,
    };
    store.put_roster_entry(&id, &replaced).await.unwrap();
    assert_eq!(
        store.roster_entry(&id, &full.contact).await.unwrap(),
        Some(replaced)
    );
    assert_eq!(
        h.count("SELECT COUNT(*) FROM roster_groups WHERE contact = 'bob@b.example'")
            .await,
        1
    );

    assert_eq!(
        store.roster_entry(&id, "nobody@c.example").await.unwrap(),
        None
    );
}

async fn roster_version_counts_changes(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    // No account: an empty roster, no error.
    assert_eq!(store.roster_version(&id).await.unwrap(), 0);
    assert_eq!(store.roster(&id).await.unwrap(), (0, vec![]));
    assert_eq!(
        store
            .remove_roster_entry(&id, "bob@b.example")
            .await
            .unwrap(),
        None
    );

    store.create_account(&id, &[]).await.unwrap();
    assert_eq!(store.roster_version(&id).await.unwrap(), 0);
    assert_eq!(store.roster(&id).await.unwrap(), (0, vec![]));

    let bob = item("bob@b.example");
    assert_eq!(store.put_roster_entry(&id, &bob).await.unwrap(), 1);
    assert_eq!(store.roster_version(&id).await.unwrap(), 1);
    // A put that changes nothing is still a write the server asked for.
    assert_eq!(store.put_roster_entry(&id, &bob).await.unwrap(), 2);
    assert_eq!(
        store
            .put_roster_entry(&id, &item("carol@c.example"))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store.remove_roster_entry(&id, &bob.contact).await.unwrap(),
        Some(4)
    );
    assert_eq!(store.roster_version(&id).await.unwrap(), 4);
    // Missing entries: nothing changed, so the version does not move.
    assert_eq!(
        store.remove_roster_entry(&id, &bob.contact).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .remove_roster_entry(&id, "nobody@c.example")
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.roster_version(&id).await.unwrap(), 4);
    let (version, entries) = store.roster(&id).await.unwrap();
    assert_eq!(version, 4);
    assert_eq!(entries, vec![item("carol@c.example")]);
    // Removing the last entry leaves the version where it got to.
    assert_eq!(
        store
            .remove_roster_entry(&id, "carol@c.example")
            .await
            .unwrap(),
        Some(5)
    );
    assert_eq!(store.roster(&id).await.unwrap(), (5, vec![]));
}

async fn put_roster_entry_on_missing_account_is_not_found(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let mut e = item("bob@b.example");
    e.groups = vec!["Friends".into()];
    let err = store.put_roster_entry(&alice(), &e).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert_eq!(h.count("SELECT COUNT(*) FROM roster_entries").await, 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM roster_groups").await, 0);
}

async fn roster_lists_pending_only_entries_and_sizes_only_items(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store.create_account(&id, &[]).await.unwrap();
    // Someone asked for a subscription; not (yet) in the roster.
    let pending = RosterEntry {
        contact: "mallory@m.example".into(),
        pending_in: true,
        pending_in_stanza: Some("<presence type='subscribe'/>".into()),
        ..RosterEntry::default()
    };
    let mut dave = item("dave@d.example");
    dave.groups = vec!["B".into(), "A".into()];
    // Out of order on purpose: the roster lists by contact.
    for e in [&dave, &pending, &item("bob@b.example")] {
        store.put_roster_entry(&id, e).await.unwrap();
    }
    let (version, entries) = store.roster(&id).await.unwrap();
    assert_eq!(version, 3);
    assert_eq!(entries, vec![item("bob@b.example"), dave, pending.clone()]);
    assert_eq!(store.roster_size(&id).await.unwrap(), 2);
    assert_eq!(
        store.roster_entry(&id, &pending.contact).await.unwrap(),
        Some(pending)
    );
    assert_eq!(
        store.roster_size(&AccountId::new("x", "y")).await.unwrap(),
        0
    );
}

async fn rosters_of_two_accounts_do_not_mix(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    let bob = AccountId::new("bob", "a.example");
    // Same username, other domain: a different account.
    let alice_b = AccountId::new("alice", "b.example");
    for a in [&id, &bob, &alice_b] {
        store.create_account(a, &[]).await.unwrap();
    }
    let mut carol_of_alice = item("carol@c.example");
    carol_of_alice.name = Some("Carol (alice's)".into());
    carol_of_alice.groups = vec!["Alice's group".into()];
    let mut carol_of_bob = item("carol@c.example");
    carol_of_bob.name = Some("Carol (bob's)".into());
    carol_of_bob.groups = vec!["Bob's group".into()];
    store.put_roster_entry(&id, &carol_of_alice).await.unwrap();
    store
        .put_roster_entry(&id, &item("dave@d.example"))
        .await
        .unwrap();
    store.put_roster_entry(&bob, &carol_of_bob).await.unwrap();

    assert_eq!(
        store.roster(&id).await.unwrap(),
        (2, vec![carol_of_alice.clone(), item("dave@d.example")])
    );
    assert_eq!(
        store.roster(&bob).await.unwrap(),
        (1, vec![carol_of_bob.clone()])
    );
    assert_eq!(store.roster(&alice_b).await.unwrap(), (0, vec![]));
    assert_eq!(
        store.roster_entry(&bob, "carol@c.example").await.unwrap(),
        Some(carol_of_bob.clone())
    );
    assert_eq!(
        store.roster_entry(&bob, "dave@d.example").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .roster_entry(&alice_b, "dave@d.example")
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.roster_size(&bob).await.unwrap(), 1);
    assert_eq!(store.roster_size(&alice_b).await.unwrap(), 0);

    // Bob cannot remove alice's entry, and his failed attempt moves nobody's version.
    assert_eq!(
        store
            .remove_roster_entry(&bob, "dave@d.example")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .remove_roster_entry(&alice_b, "dave@d.example")
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.roster(&id).await.unwrap().1.len(), 2);
    assert_eq!(store.roster_version(&id).await.unwrap(), 2);
    // Removing bob's carol leaves alice's.
    assert_eq!(
        store
            .remove_roster_entry(&bob, "carol@c.example")
            .await
            .unwrap(),
        Some(2)
    );
    assert_eq!(
        store.roster_entry(&id, "carol@c.example").await.unwrap(),
        Some(carol_of_alice)
    );
}

/// Every write to one roster gets its own version (no lost bump, no
/// deadlock between puts and removes, no SQLITE_BUSY).
async fn concurrent_roster_writes_get_distinct_versions(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store.create_account(&id, &[]).await.unwrap();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let id = alice();
                let mut shared = item("shared@s.example");
                shared.groups = vec![format!("g{i}"), "common".into()];
                let own = item(&format!("own{i:02}@o.example"));
                let a = store.put_roster_entry(&id, &shared).await?;
                let b = store.put_roster_entry(&id, &own).await?;
                let c = store.remove_roster_entry(&id, &own.contact).await?;
                Ok::<_, StoreError>(vec![a, b, c.expect("own entry exists")])
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.extend(task.await.unwrap().unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=36).collect::<Vec<u64>>());
    let (version, entries) = store.roster(&id).await.unwrap();
    assert_eq!(version, 36);
    assert_eq!(entries.len(), 1);
    // The last writer's groups, whole: never a mix of two puts.
    assert_eq!(entries[0].groups.len(), 2);
    assert_eq!(entries[0].groups[1], "common");
}

/// The read-modify-write sees the stored entry, and writes (and bumps the version) only
/// when told to.
async fn update_roster_entry_reads_decides_and_writes(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    // No account: shown as no entry; keeping is fine, writing is NotFound.
    let mut seen = Vec::new();
    let kept = store
        .update_roster_entry(&id, "bob@b.example", &mut |e| {
            seen.push(e);
            RosterUpdate::Keep
        })
        .await
        .unwrap();
    assert_eq!((kept, seen), (RosterUpdated::Kept, vec![None]));
    assert!(matches!(
        store
            .update_roster_entry(&id, "bob@b.example", &mut |_| RosterUpdate::Put(item(
                "bob@b.example"
            )))
            .await,
        Err(StoreError::NotFound)
    ));

    store.create_account(&id, &[]).await.unwrap();
    let mut bob = item("bob@b.example");
    bob.groups = vec!["Friends".into(), "Work".into()];
    bob.subscription = Subscription::To;
    let to_write = bob.clone();
    let stored = store
        .update_roster_entry(&id, "bob@b.example", &mut |e| {
            assert_eq!(e, None);
            RosterUpdate::Put(to_write.clone())
        })
        .await
        .unwrap();
    assert_eq!(stored, RosterUpdated::Stored(1));
    assert_eq!(
        store.roster_entry(&id, "bob@b.example").await.unwrap(),
        Some(bob.clone())
    );
    // Keep: the version stays.
    let mut seen = None;
    let kept = store
        .update_roster_entry(&id, "bob@b.example", &mut |e| {
            seen = e;
            RosterUpdate::Keep
        })
        .await
        .unwrap();
    assert_eq!((kept, seen), (RosterUpdated::Kept, Some(bob.clone())));
    assert_eq!(store.roster_version(&id).await.unwrap(), 1);
    // A change of what was read: groups replaced whole, version bumped.
    let stored = store
        .update_roster_entry(&id, "bob@b.example", &mut |e| {
            let mut e = e.expect("stored");
            e.groups = vec!["Work".into()];
            e.subscription = Subscription::Both;
            RosterUpdate::Put(e)
        })
        .await
        .unwrap();
    assert_eq!(stored, RosterUpdated::Stored(2));
    let now = store
        .roster_entry(&id, "bob@b.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.groups, vec!["Work".to_owned()]);
    assert_eq!(now.subscription, Subscription::Both);
    assert_eq!(h.count("SELECT COUNT(*) FROM roster_groups").await, 1);
}

/// RFC 6121 §2.3.3: a full roster refuses a new item, but an item it holds may change and
/// a pending-only entry may be written.
async fn update_roster_entry_within_refuses_a_full_roster(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store.create_account(&id, &[]).await.unwrap();
    for contact in ["bob@b.example", "carol@c.example"] {
        store.put_roster_entry(&id, &item(contact)).await.unwrap();
    }
    let within = |entry: RosterEntry| RosterUpdate::PutWithin {
        entry,
        max_items: 2,
    };
    let full = store
        .update_roster_entry(&id, "dave@d.example", &mut |_| {
            within(item("dave@d.example"))
        })
        .await
        .unwrap();
    assert_eq!(full, RosterUpdated::Full);
    assert_eq!(
        store.roster_entry(&id, "dave@d.example").await.unwrap(),
        None
    );
    assert_eq!(store.roster_version(&id).await.unwrap(), 2);
    let renamed = store
        .update_roster_entry(&id, "bob@b.example", &mut |e| {
            let mut e = e.expect("stored");
            e.name = Some("Bob".into());
            within(e)
        })
        .await
        .unwrap();
    assert_eq!(renamed, RosterUpdated::Stored(3));
    let pending = RosterEntry {
        contact: "erin@e.example".into(),
        pending_in: true,
        ..RosterEntry::default()
    };
    let stored = store
        .update_roster_entry(&id, "erin@e.example", &mut |_| within(pending.clone()))
        .await
        .unwrap();
    assert_eq!(stored, RosterUpdated::Stored(4));
    assert_eq!(store.roster_size(&id).await.unwrap(), 2);
}

/// Two stores with pools of their own on one database, as two server processes sharing
/// it would be: concurrent read-modify-writes of one entry all land (each adds a group to
/// what it read), none overwrites another's.
async fn two_stores_updating_one_roster_lose_no_change(h: &Harness) {
    const WRITES: usize = 24;
    let stores = [open(&h.url).await.unwrap(), open(&h.url).await.unwrap()];
    let id = alice();
    stores[0].create_account(&id, &[]).await.unwrap();
    let tasks: Vec<_> = (0..WRITES)
        .map(|i| {
            let store = Arc::clone(&stores[i % 2]);
            tokio::spawn(async move {
                store
                    .update_roster_entry(&alice(), "bob@b.example", &mut |e| {
                        let mut e = e.unwrap_or_else(|| item("bob@b.example"));
                        e.groups.push(format!("g{i:02}"));
                        RosterUpdate::Put(e)
                    })
                    .await
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            RosterUpdated::Stored(v) => versions.push(v),
            other => panic!("{other:?}"),
        }
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=WRITES as u64).collect::<Vec<_>>());
    let entry = stores[1]
        .roster_entry(&id, "bob@b.example")
        .await
        .unwrap()
        .unwrap();
    let mut groups = entry.groups.clone();
    groups.sort_unstable();
    let every: Vec<String> = (0..WRITES).map(|i| format!("g{i:02}")).collect();
    assert_eq!(groups, every, "every write's group, none lost");
}

// ---- guests ----------------------------------------------------------------

/// Each node finds its own guests, and the untagged credential-less accounts (guests of a
/// version before migration 0006), never another node's guests or a user with a password.
async fn guests_are_listed_for_their_owner_only(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let (a1, a2) = (
        AccountId::new("guest-a1", "a.example"),
        AccountId::new("guest-a2", "b.example"),
    );
    let b1 = AccountId::new("guest-b1", "a.example");
    let old = AccountId::new("guest-old", "a.example");
    store.create_guest(&a2, "node-a").await.unwrap();
    store.create_guest(&a1, "node-a").await.unwrap();
    store.create_guest(&b1, "node-b").await.unwrap();
    store.create_account(&old, &[]).await.unwrap();
    store
        .create_account(&alice(), &[cred(ScramHash::Sha256, 1)])
        .await
        .unwrap();
    assert!(matches!(
        store.create_guest(&a1, "node-b").await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        store.create_guest(&alice(), "node-b").await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store.guests_of("node-a").await.unwrap(),
        vec![a1.clone(), old.clone(), a2.clone()]
    );
    assert_eq!(
        store.guests_of("node-b").await.unwrap(),
        vec![b1.clone(), old.clone()]
    );
    assert_eq!(store.guests_of("node-c").await.unwrap(), vec![old.clone()]);
    // A guest is an account like any other: it exists, holds a roster, and goes.
    assert!(store.account_exists(&b1).await.unwrap());
    store
        .put_roster_entry(&b1, &item("bob@b.example"))
        .await
        .unwrap();
    assert!(store.remove_account(&b1).await.unwrap());
    assert_eq!(store.guests_of("node-b").await.unwrap(), vec![old]);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM accounts WHERE guest_owner = 'node-a'")
            .await,
        2
    );
}

// ---- offline messages ------------------------------------------------------

async fn offline_store_limit_order_delete_count(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store.create_account(&id, &[]).await.unwrap();
    assert_eq!(store.offline_count(&id).await.unwrap(), 0);
    assert!(store.offline_messages(&id).await.unwrap().is_empty());

    let before = crate::common::unix_now();
    for stanza in [
        "<message id='1'/>",
        "<message id='2'/>",
        "<message id='3'/>",
    ] {
        assert!(store.store_offline(&id, stanza, 3).await.unwrap());
    }
    // Full: refused, and nothing stored.
    assert!(!store
        .store_offline(&id, "<message id='4'/>", 3)
        .await
        .unwrap());
    assert_eq!(store.offline_count(&id).await.unwrap(), 3);
    let after = crate::common::unix_now();

    let messages = store.offline_messages(&id).await.unwrap();
    let stanzas: Vec<&str> = messages.iter().map(|m| m.stanza.as_str()).collect();
    assert_eq!(
        stanzas,
        [
            "<message id='1'/>",
            "<message id='2'/>",
            "<message id='3'/>"
        ]
    );
    assert!(messages.windows(2).all(|w| w[0].id < w[1].id));
    assert!(messages
        .iter()
        .all(|m| (before..=after).contains(&m.stored_at)));

    // Delete a subset (not a prefix); unknown ids are ignored.
    store
        .delete_offline(&id, &[messages[2].id, messages[0].id, 999_999])
        .await
        .unwrap();
    store.delete_offline(&id, &[]).await.unwrap();
    assert_eq!(
        store.offline_messages(&id).await.unwrap(),
        vec![messages[1].clone()]
    );
    assert_eq!(store.offline_count(&id).await.unwrap(), 1);

    // Room again; the new message comes after the old one, with a new id.
    assert!(store
        .store_offline(&id, "<message id='5'/>", 3)
        .await
        .unwrap());
    let now = store.offline_messages(&id).await.unwrap();
    assert_eq!(now.len(), 2);
    assert_eq!(now[0], messages[1]);
    assert_eq!(now[1].stanza, "<message id='5'/>");
    assert!(messages.iter().all(|m| m.id != now[1].id));
    assert!(!store.store_offline(&id, "<message/>", 0).await.unwrap());
    assert!(!store.store_offline(&id, "<message/>", 2).await.unwrap());
    assert_eq!(store.offline_count(&id).await.unwrap(), 2);
}

/// After a delivery emptied the table, a new message must not get a
/// delivered one's id: a late delete of that id would lose it.
async fn offline_ids_are_never_reused(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store.create_account(&id, &[]).await.unwrap();
    store
        .store_offline(&id, "<message id='1'/>", 10)
        .await
        .unwrap();
    let first = store.offline_messages(&id).await.unwrap();
    store.delete_offline(&id, &[first[0].id]).await.unwrap();
    store
        .store_offline(&id, "<message id='2'/>", 10)
        .await
        .unwrap();
    // The late, repeated delete of the delivered message.
    store.delete_offline(&id, &[first[0].id]).await.unwrap();
    let second = store.offline_messages(&id).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].stanza, "<message id='2'/>");
}

async fn offline_store_on_missing_account_is_not_found(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let err = store
        .store_offline(&alice(), "<message/>", 100)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert_eq!(h.count("SELECT COUNT(*) FROM offline_messages").await, 0);
    assert_eq!(store.offline_count(&alice()).await.unwrap(), 0);
    assert!(store.offline_messages(&alice()).await.unwrap().is_empty());
    store.delete_offline(&alice(), &[1]).await.unwrap();
}

async fn offline_messages_of_two_accounts_do_not_mix(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    let bob = AccountId::new("bob", "a.example");
    let alice_b = AccountId::new("alice", "b.example");
    for a in [&id, &bob, &alice_b] {
        store.create_account(a, &[]).await.unwrap();
    }
    assert!(store
        .store_offline(&id, "<message to='alice'/>", 1)
        .await
        .unwrap());
    // Alice is full; bob's limit is his own.
    assert!(!store.store_offline(&id, "<message/>", 1).await.unwrap());
    assert!(store
        .store_offline(&bob, "<message to='bob'/>", 1)
        .await
        .unwrap());

    let alices = store.offline_messages(&id).await.unwrap();
    assert_eq!(alices.len(), 1);
    assert_eq!(alices[0].stanza, "<message to='alice'/>");
    assert_eq!(store.offline_count(&bob).await.unwrap(), 1);
    assert_eq!(store.offline_count(&alice_b).await.unwrap(), 0);
    assert!(store.offline_messages(&alice_b).await.unwrap().is_empty());

    // Deleting alice's id as bob (or as alice@b.example) deletes nothing.
    store.delete_offline(&bob, &[alices[0].id]).await.unwrap();
    store
        .delete_offline(&alice_b, &[alices[0].id])
        .await
        .unwrap();
    assert_eq!(store.offline_messages(&id).await.unwrap(), alices);
    assert_eq!(store.offline_count(&bob).await.unwrap(), 1);
}

async fn offline_messages_survive_reopen(h: &Harness) {
    let stored: Vec<OfflineMessage> = {
        let store = open(&h.url).await.unwrap();
        store.create_account(&alice(), &[]).await.unwrap();
        for i in 0..3 {
            let stanza = format!("<message id='{i}'><body>é</body></message>");
            assert!(store.store_offline(&alice(), &stanza, 10).await.unwrap());
        }
        store.offline_messages(&alice()).await.unwrap()
        // Dropped without any close.
    };
    assert_eq!(stored.len(), 3);
    let store = open(&h.url).await.unwrap();
    assert_eq!(store.offline_messages(&alice()).await.unwrap(), stored);
}

/// The count and the insert are one atomic step: concurrent senders cannot
/// overshoot the limit together.
async fn concurrent_offline_stores_respect_the_limit(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    store.create_account(&alice(), &[]).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .store_offline(&alice(), &format!("<message id='{i}'/>"), 10)
                    .await
            })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 10);
    assert_eq!(store.offline_count(&alice()).await.unwrap(), 10);
}

/// A database created by the first release (accounts only) is upgraded in
/// place: its accounts keep working and get an empty roster at version 0.
async fn upgrade_from_first_release_keeps_accounts(h: &Harness) {
    h.migrate_first_release_only().await;
    h.exec(
        "INSERT INTO accounts (username, domain, created_at) \
         VALUES ('alice', 'a.example', 1)",
    )
    .await;
    let store = open(&h.url).await.unwrap();
    assert!(store.account_exists(&alice()).await.unwrap());
    assert_eq!(store.roster(&alice()).await.unwrap(), (0, vec![]));
    assert_eq!(
        store
            .put_roster_entry(&alice(), &item("bob@b.example"))
            .await
            .unwrap(),
        1
    );
    assert!(store
        .store_offline(&alice(), "<message/>", 1)
        .await
        .unwrap());
    fill_private_vcard_blocklist_last_activity(&*store, &alice()).await;
    assert_private_vcard_blocklist_last_activity(&*store, &alice()).await;
    // Without credentials and from before guests had owners: any node's leftover sweep
    // finds it.
    assert_eq!(store.guests_of("node").await.unwrap(), vec![alice()]);
    assert!(store.muc_rooms("localhost").await.unwrap().is_empty());
    let everything = ArchiveQuery {
        limit: 10,
        ..ArchiveQuery::default()
    };
    assert!(store
        .archive_query(&ArchiveOwner::from(&alice()), &everything)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .pubsub_nodes("alice@a.example")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.upload_usage(&alice()).await.unwrap(), 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM _sqlx_migrations").await, 13);
}

// ---- private XML, vCards, blocklists, last activity -----------------------

/// Two private XML namespaces, a vCard, two blocked JIDs and a last activity, all
/// naming `owner`, so a mix-up between accounts shows.
async fn fill_private_vcard_blocklist_last_activity(store: &dyn Store, owner: &AccountId) {
    let who = format!("{}@{}", owner.username, owner.domain);
    store
        .private_set(
            owner,
            &[
                (
                    "storage:bookmarks".into(),
                    format!("<storage xmlns='storage:bookmarks' owner='{who}'/>"),
                ),
                (
                    "exodus:prefs".into(),
                    format!("<exodus xmlns='exodus:prefs'>{who}</exodus>"),
                ),
            ],
        )
        .await
        .unwrap();
    store
        .set_vcard(
            owner,
            &format!("<vCard xmlns='vcard-temp'><FN>{who}</FN></vCard>"),
            Some(&format!("hash of {who}")),
        )
        .await
        .unwrap();
    let added = store
        .block(
            owner,
            &[format!("spam@{}", owner.domain), "troll@t.example".into()],
        )
        .await
        .unwrap();
    assert_eq!(added.len(), 2);
    store
        .set_last_activity(owner, 1_700_000_000, &format!("{who} left"))
        .await
        .unwrap();
}

/// What [`fill_private_vcard_blocklist_last_activity`] stored for `owner`, read back.
async fn assert_private_vcard_blocklist_last_activity(store: &dyn Store, owner: &AccountId) {
    let who = format!("{}@{}", owner.username, owner.domain);
    assert_eq!(
        store.private_get(owner, "storage:bookmarks").await.unwrap(),
        Some(format!(
            "<storage xmlns='storage:bookmarks' owner='{who}'/>"
        ))
    );
    assert_eq!(
        store.private_get(owner, "exodus:prefs").await.unwrap(),
        Some(format!("<exodus xmlns='exodus:prefs'>{who}</exodus>"))
    );
    assert_eq!(
        store.vcard(owner).await.unwrap(),
        Some(StoredVcard {
            xml: format!("<vCard xmlns='vcard-temp'><FN>{who}</FN></vCard>"),
            photo_hash: Some(format!("hash of {who}")),
        })
    );
    assert_eq!(
        store.vcard_photo_hash(owner).await.unwrap(),
        Some(format!("hash of {who}"))
    );
    assert_eq!(
        store.blocklist(owner).await.unwrap(),
        vec![format!("spam@{}", owner.domain), "troll@t.example".into()]
    );
    assert_eq!(
        store.last_activity(owner).await.unwrap(),
        Some((1_700_000_000, format!("{who} left")))
    );
}

async fn private_xml_round_trip_and_replace(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store.create_account(&id, &[]).await.unwrap();
    assert_eq!(
        store.private_get(&id, "storage:bookmarks").await.unwrap(),
        None
    );
    // Nothing to store is still a valid request.
    store.private_set(&id, &[]).await.unwrap();

    let bookmarks = "<storage xmlns='storage:bookmarks'>\
                     <conference jid='room@muc.example' name='Café &amp; co'/></storage>";
    let prefs = "<exodus xmlns='exodus:prefs'><defaultnick>Hamlet ☃</defaultnick></exodus>";
    store
        .private_set(
            &id,
            &[
                ("storage:bookmarks".into(), bookmarks.into()),
                ("exodus:prefs".into(), prefs.into()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .private_get(&id, "storage:bookmarks")
            .await
            .unwrap()
            .as_deref(),
        Some(bookmarks)
    );
    assert_eq!(
        store
            .private_get(&id, "exodus:prefs")
            .await
            .unwrap()
            .as_deref(),
        Some(prefs)
    );
    // All of them at once, by namespace (what an export reads).
    assert_eq!(
        store.private_all(&id).await.unwrap(),
        [
            ("exodus:prefs".to_owned(), prefs.to_owned()),
            ("storage:bookmarks".to_owned(), bookmarks.to_owned()),
        ]
    );
    // Namespaces are compared exactly.
    assert_eq!(store.private_get(&id, "Exodus:prefs").await.unwrap(), None);
    assert_eq!(store.private_get(&id, "exodus").await.unwrap(), None);

    // Replacing one namespace leaves the other; within one set the later element wins.
    let emptied = "<storage xmlns='storage:bookmarks'/>";
    store
        .private_set(
            &id,
            &[
                (
                    "storage:bookmarks".into(),
                    "<storage xmlns='storage:bookmarks'>first</storage>".into(),
                ),
                ("storage:bookmarks".into(), emptied.into()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .private_get(&id, "storage:bookmarks")
            .await
            .unwrap()
            .as_deref(),
        Some(emptied)
    );
    assert_eq!(
        store
            .private_get(&id, "exodus:prefs")
            .await
            .unwrap()
            .as_deref(),
        Some(prefs)
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM private_storage").await, 2);
}

async fn vcard_round_trip_replace_and_photo_hash(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store.create_account(&id, &[]).await.unwrap();
    assert_eq!(store.vcard(&id).await.unwrap(), None);
    assert_eq!(store.vcard_photo_hash(&id).await.unwrap(), None);

    let with_photo = StoredVcard {
        xml: "<vCard xmlns='vcard-temp'><FN>Alice Ü</FN><PHOTO><TYPE>image/png</TYPE>\
              <BINVAL>iVBORw0KGgo=</BINVAL></PHOTO></vCard>"
            .into(),
        photo_hash: Some("01b307acba4f54f55aafc33bb06bbbf6ca803e9a".into()),
    };
    store
        .set_vcard(&id, &with_photo.xml, with_photo.photo_hash.as_deref())
        .await
        .unwrap();
    assert_eq!(store.vcard(&id).await.unwrap(), Some(with_photo.clone()));
    assert_eq!(
        store.vcard_photo_hash(&id).await.unwrap(),
        with_photo.photo_hash
    );

    // Replaced whole: the hash goes with the photo.
    let without_photo = StoredVcard {
        xml: "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>".into(),
        photo_hash: None,
    };
    store
        .set_vcard(&id, &without_photo.xml, None)
        .await
        .unwrap();
    assert_eq!(store.vcard(&id).await.unwrap(), Some(without_photo));
    assert_eq!(store.vcard_photo_hash(&id).await.unwrap(), None);

    // An empty vCard is a stored vCard, not the absence of one.
    store
        .set_vcard(&id, "<vCard xmlns='vcard-temp'/>", Some(""))
        .await
        .unwrap();
    assert_eq!(
        store.vcard(&id).await.unwrap(),
        Some(StoredVcard {
            xml: "<vCard xmlns='vcard-temp'/>".into(),
            photo_hash: Some(String::new()),
        })
    );
    assert_eq!(
        store.vcard_photo_hash(&id).await.unwrap(),
        Some(String::new())
    );
    store.set_vcard(&id, "", None).await.unwrap();
    assert_eq!(
        store.vcard(&id).await.unwrap(),
        Some(StoredVcard {
            xml: String::new(),
            photo_hash: None,
        })
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM vcards").await, 1);
}

async fn block_and_unblock_return_what_changed(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store.create_account(&id, &[]).await.unwrap();
    let jids = |list: &[&str]| list.iter().map(|j| j.to_string()).collect::<Vec<_>>();
    assert!(store.blocklist(&id).await.unwrap().is_empty());
    assert!(store.unblock_all(&id).await.unwrap().is_empty());

    // Given order kept in the answer, the repeat ignored; the list is sorted by byte
    // ("Zed" before "amy", which most locales' collations would swap).
    let added = store
        .block(
            &id,
            &jids(&[
                "spam@s.example",
                "b.example/amy",
                "b.example/Zed",
                "spam@s.example",
            ]),
        )
        .await
        .unwrap();
    assert_eq!(
        added,
        jids(&["spam@s.example", "b.example/amy", "b.example/Zed"])
    );
    assert_eq!(
        store.blocklist(&id).await.unwrap(),
        jids(&["b.example/Zed", "b.example/amy", "spam@s.example"])
    );
    // Blocking again adds only what is new; blocking nothing changes nothing.
    assert_eq!(
        store
            .block(&id, &jids(&["b.example/amy", "troll@t.example"]))
            .await
            .unwrap(),
        jids(&["troll@t.example"])
    );
    assert!(store
        .block(&id, &jids(&["spam@s.example"]))
        .await
        .unwrap()
        .is_empty());
    assert!(store.block(&id, &[]).await.unwrap().is_empty());
    assert_eq!(h.count("SELECT COUNT(*) FROM blocklist").await, 4);

    // Unblocking returns what was there, in the given order, each once.
    assert_eq!(
        store
            .unblock(
                &id,
                &jids(&[
                    "troll@t.example",
                    "nobody@n.example",
                    "b.example/amy",
                    "troll@t.example"
                ])
            )
            .await
            .unwrap(),
        jids(&["troll@t.example", "b.example/amy"])
    );
    assert!(store
        .unblock(&id, &jids(&["troll@t.example", "b.example/amy"]))
        .await
        .unwrap()
        .is_empty());
    // Exact match: a bare JID is not its full JIDs, nor the other way round.
    assert!(store
        .unblock(&id, &jids(&["spam@s.example/res", "b.example"]))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.blocklist(&id).await.unwrap(),
        jids(&["b.example/Zed", "spam@s.example"])
    );

    store.block(&id, &jids(&["amy@a.example"])).await.unwrap();
    assert_eq!(
        store.unblock_all(&id).await.unwrap(),
        jids(&["amy@a.example", "b.example/Zed", "spam@s.example"])
    );
    assert!(store.unblock_all(&id).await.unwrap().is_empty());
    assert!(store.blocklist(&id).await.unwrap().is_empty());
    assert_eq!(h.count("SELECT COUNT(*) FROM blocklist").await, 0);
}

/// Concurrent blocks of overlapping lists: every JID is reported new exactly once.
async fn concurrent_blocks_add_each_jid_once(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    store.create_account(&alice(), &[]).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                // Task i blocks jids i..i+4: neighbours overlap.
                let jids: Vec<String> = (i..i + 4).map(|n| format!("u{n:02}@b.example")).collect();
                store.block(&alice(), &jids).await
            })
        })
        .collect();
    let mut added = Vec::new();
    for task in tasks {
        added.extend(task.await.unwrap().unwrap());
    }
    added.sort_unstable();
    let all: Vec<String> = (0..11).map(|n| format!("u{n:02}@b.example")).collect();
    assert_eq!(added, all);
    assert_eq!(store.blocklist(&alice()).await.unwrap(), all);
}

async fn last_activity_round_trip_and_replace(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store.create_account(&id, &[]).await.unwrap();
    assert_eq!(store.last_activity(&id).await.unwrap(), None);
    store
        .set_last_activity(&id, 1_700_000_000, "Gone fishing 🎣")
        .await
        .unwrap();
    assert_eq!(
        store.last_activity(&id).await.unwrap(),
        Some((1_700_000_000, "Gone fishing 🎣".into()))
    );
    // The next session's end replaces it; no status is an empty one.
    store
        .set_last_activity(&id, 1_700_000_600, "")
        .await
        .unwrap();
    assert_eq!(
        store.last_activity(&id).await.unwrap(),
        Some((1_700_000_600, String::new()))
    );
    // The whole i64 range survives the column.
    store.set_last_activity(&id, i64::MAX, "far").await.unwrap();
    assert_eq!(
        store.last_activity(&id).await.unwrap(),
        Some((i64::MAX, "far".into()))
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM last_activity").await, 1);
}

/// Every write of these stores needs the account; the reads find nothing.
async fn writes_to_a_missing_account_are_not_found(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    // Another account exists, so a write landing on the wrong one would show.
    let bob = AccountId::new("bob", "a.example");
    store.create_account(&bob, &[]).await.unwrap();
    let ns = || vec![("storage:bookmarks".to_string(), "<storage/>".to_string())];
    let jid = || vec!["spam@s.example".to_string()];
    let results = [
        store.private_set(&id, &ns()).await.err(),
        store.private_set(&id, &[]).await.err(),
        store.set_vcard(&id, "<vCard/>", Some("hash")).await.err(),
        store.block(&id, &jid()).await.err(),
        store.block(&id, &[]).await.err(),
        store.unblock(&id, &jid()).await.err(),
        store.unblock_all(&id).await.err(),
        store.set_last_activity(&id, 1, "bye").await.err(),
    ];
    for (i, err) in results.into_iter().enumerate() {
        assert!(
            matches!(err, Some(StoreError::NotFound)),
            "write {i}: {err:?}"
        );
    }
    for table in ["private_storage", "vcards", "blocklist", "last_activity"] {
        assert_eq!(
            h.count(&format!("SELECT COUNT(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
    assert_eq!(
        store.private_get(&id, "storage:bookmarks").await.unwrap(),
        None
    );
    assert_eq!(store.vcard(&id).await.unwrap(), None);
    assert_eq!(store.vcard_photo_hash(&id).await.unwrap(), None);
    assert!(store.blocklist(&id).await.unwrap().is_empty());
    assert_eq!(store.last_activity(&id).await.unwrap(), None);
    assert!(!store.account_exists(&id).await.unwrap());
}

async fn private_vcard_blocklist_last_activity_keep_accounts_apart(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    let bob = AccountId::new("bob", "a.example");
    // Same username, other domain: a different account, which stores nothing here.
    let alice_b = AccountId::new("alice", "b.example");
    for a in [&id, &bob, &alice_b] {
        store.create_account(a, &[]).await.unwrap();
    }
    for owner in [&id, &bob] {
        fill_private_vcard_blocklist_last_activity(&*store, owner).await;
    }
    assert_private_vcard_blocklist_last_activity(&*store, &id).await;
    assert_private_vcard_blocklist_last_activity(&*store, &bob).await;
    assert_eq!(
        store
            .private_get(&alice_b, "storage:bookmarks")
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.vcard(&alice_b).await.unwrap(), None);
    assert_eq!(store.vcard_photo_hash(&alice_b).await.unwrap(), None);
    assert!(store.blocklist(&alice_b).await.unwrap().is_empty());
    assert_eq!(store.last_activity(&alice_b).await.unwrap(), None);

    // Bob's changes, and alice@b.example's, leave alice@a.example's rows as they were.
    let troll = vec!["troll@t.example".to_string()];
    assert_eq!(store.unblock(&bob, &troll).await.unwrap(), troll);
    assert_eq!(
        store.unblock(&alice_b, &troll).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        store.unblock_all(&alice_b).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        store.unblock_all(&bob).await.unwrap(),
        vec!["spam@a.example".to_string()]
    );
    store
        .private_set(&bob, &[("storage:bookmarks".into(), "<storage/>".into())])
        .await
        .unwrap();
    store.set_vcard(&bob, "<vCard/>", None).await.unwrap();
    store.set_last_activity(&bob, 1, "").await.unwrap();
    store
        .set_vcard(&alice_b, "<vCard/>", Some("other"))
        .await
        .unwrap();
    assert_private_vcard_blocklist_last_activity(&*store, &id).await;
    assert!(store.blocklist(&bob).await.unwrap().is_empty());
}

async fn private_vcard_blocklist_last_activity_survive_reopen(h: &Harness) {
    {
        let store = open(&h.url).await.unwrap();
        store.create_account(&alice(), &[]).await.unwrap();
        fill_private_vcard_blocklist_last_activity(&*store, &alice()).await;
        // Dropped without any close.
    }
    let store = open(&h.url).await.unwrap();
    assert_private_vcard_blocklist_last_activity(&*store, &alice()).await;
}

fn muc_room(jid: &str, host: &str, config: &str) -> StoredRoom {
    StoredRoom {
        jid: jid.to_owned(),
        host: host.to_owned(),
        config: config.to_owned(),
        ..StoredRoom::default()
    }
}

fn affiliation(jid: &str, affiliation: &str) -> StoredAffiliation {
    StoredAffiliation {
        jid: jid.to_owned(),
        affiliation: affiliation.to_owned(),
        nick: None,
        reason: None,
    }
}

async fn muc_rooms_round_trip_per_host(h: &Harness) {
    {
        let store = open(&h.url).await.unwrap();
        assert!(store.muc_rooms("example.org").await.unwrap().is_empty());
        let mut den = muc_room(
            "den@conference.example.org",
            "example.org",
            r#"{"name":"Den"}"#,
        );
        den.subject = StoredSubject {
            text: "Brillig".into(),
            nick: Some("alice".into()),
            occupant_id: Some("b2NjdXBhbnQ=".into()),
        };
        let banned = StoredAffiliation {
            nick: Some("slithy".into()),
            reason: Some("gyred".into()),
            ..affiliation("tove@example.net", "outcast")
        };
        let changes = [
            AffiliationChange::Set(affiliation("alice@example.org", "owner")),
            AffiliationChange::Set(banned.clone()),
            AffiliationChange::Set(affiliation("bob@example.org", "member")),
        ];
        store.save_muc_room(&den, &changes).await.unwrap();
        let tea = muc_room("tea@conference.example.org", "example.org", "{}");
        store.save_muc_room(&tea, &[]).await.unwrap();
        let other = muc_room("tea@conference.example.com", "example.com", "{}");
        store.save_muc_room(&other, &[]).await.unwrap();
        // Dropped without any close: what was saved is committed.
    }
    let store = open(&h.url).await.unwrap();
    let rooms = store.muc_rooms("example.org").await.unwrap();
    let jids: Vec<&str> = rooms.iter().map(|r| r.jid.as_str()).collect();
    assert_eq!(
        jids,
        ["den@conference.example.org", "tea@conference.example.org"]
    );
    let den = &rooms[0];
    assert_eq!(den.host, "example.org");
    assert_eq!(den.config, r#"{"name":"Den"}"#);
    assert_eq!(den.subject.text, "Brillig");
    assert_eq!(den.subject.nick.as_deref(), Some("alice"));
    assert_eq!(den.subject.occupant_id.as_deref(), Some("b2NjdXBhbnQ="));
    // Sorted by JID, nick and reason kept.
    assert_eq!(
        den.affiliations,
        [
            affiliation("alice@example.org", "owner"),
            affiliation("bob@example.org", "member"),
            StoredAffiliation {
                nick: Some("slithy".into()),
                reason: Some("gyred".into()),
                ..affiliation("tove@example.net", "outcast")
            },
        ]
    );
    assert!(rooms[1].affiliations.is_empty());
    assert_eq!(rooms[1].subject, StoredSubject::default());
    let com = store.muc_rooms("example.com").await.unwrap();
    assert_eq!(com.len(), 1);
    assert_eq!(com[0].jid, "tea@conference.example.com");
}

async fn muc_affiliation_changes_apply_in_order(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let mut room = muc_room("den@conference.example.org", "example.org", "{}");
    let set = |jid: &str, a: &str| AffiliationChange::Set(affiliation(jid, a));
    store
        .save_muc_room(
            &room,
            &[
                set("alice@example.org", "owner"),
                set("bob@example.org", "member"),
            ],
        )
        .await
        .unwrap();
    // Config and subject replaced; bob promoted then demoted in one save (the last wins);
    // carol added; alice untouched since no change names her.
    room.config = r#"{"persistent":true}"#.into();
    room.subject.text = "Mimsy".into();
    store
        .save_muc_room(
            &room,
            &[
                set("bob@example.org", "admin"),
                AffiliationChange::Remove("bob@example.org".into()),
                set("carol@example.org", "outcast"),
                // Removing one that is not there changes nothing.
                AffiliationChange::Remove("dave@example.org".into()),
            ],
        )
        .await
        .unwrap();
    let rooms = store.muc_rooms("example.org").await.unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].config, r#"{"persistent":true}"#);
    assert_eq!(rooms[0].subject.text, "Mimsy");
    assert_eq!(
        rooms[0].affiliations,
        [
            affiliation("alice@example.org", "owner"),
            affiliation("carol@example.org", "outcast"),
        ]
    );
    // An affiliation the schema does not know is refused, and the whole save with it.
    room.config = "{}".into();
    let err = store
        .save_muc_room(&room, &[set("eve@example.org", "none")])
        .await;
    assert!(matches!(err, Err(StoreError::Database(_))), "{err:?}");
    let rooms = store.muc_rooms("example.org").await.unwrap();
    assert_eq!(rooms[0].config, r#"{"persistent":true}"#);
}

async fn muc_room_deletion_takes_its_affiliations(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let den = muc_room("den@conference.example.org", "example.org", "{}");
    let tea = muc_room("tea@conference.example.org", "example.org", "{}");
    let owner = [AffiliationChange::Set(affiliation(
        "alice@example.org",
        "owner",
    ))];
    store.save_muc_room(&den, &owner).await.unwrap();
    store.save_muc_room(&tea, &owner).await.unwrap();
    assert!(store.delete_muc_room(&den.jid).await.unwrap());
    assert!(!store.delete_muc_room(&den.jid).await.unwrap());
    let rooms = store.muc_rooms("example.org").await.unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].jid, tea.jid);
    assert_eq!(rooms[0].affiliations.len(), 1);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM muc_affiliations WHERE room = 'den@conference.example.org'")
            .await,
        0
    );
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
    // 2 = MEMORY.
    let temp: i64 = sqlx::query_scalar("PRAGMA temp_store")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(temp, 2);
    // 1 = NORMAL.
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(sync, 1);
}

/// The kept readers serve each read from a fresh snapshot: what another process (here a
/// second store on the same file) commits shows at the next read, e.g. `jabberwock user
/// passwd` or a removal while the server runs.
#[tokio::test]
async fn kept_readers_see_commits_of_another_process() {
    let dir = TempDir::new().unwrap();
    let url = format!("sqlite:{}", dir.path().join("db.sqlite").display());
    let server = SqliteStore::open(&url).await.unwrap();
    let cli = SqliteStore::open(&url).await.unwrap();
    let id = alice();
    cli.create_account(&id, &[cred(ScramHash::Sha1, 1)])
        .await
        .unwrap();
    // Several reads at once, so more than one reader (or a queue on one) serves them.
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (server, id) = (server.clone(), id.clone());
        reads.spawn(async move { server.credential(&id, ScramHash::Sha1).await });
    }
    while let Some(got) = reads.join_next().await {
        assert_eq!(got.unwrap().unwrap(), Some(cred(ScramHash::Sha1, 1)));
    }
    cli.set_credentials(&id, &[cred(ScramHash::Sha1, 2)])
        .await
        .unwrap();
    assert_eq!(
        server.credential(&id, ScramHash::Sha1).await.unwrap(),
        Some(cred(ScramHash::Sha1, 2))
    );
    assert!(cli.remove_account(&id).await.unwrap());
    assert_eq!(server.credential(&id, ScramHash::Sha1).await.unwrap(), None);
    assert!(!server.account_exists(&id).await.unwrap());
    server.close().await;
    cli.close().await;
}

/// One statement gives the presence broadcast its roster and the offline check its answer.
async fn presence_roster_tells_whether_offline_messages_wait(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    // No account: nothing, and nothing waits.
    assert_eq!(store.presence_roster(&id).await.unwrap(), (vec![], false));
    store.create_account(&id, &[]).await.unwrap();
    assert_eq!(store.presence_roster(&id).await.unwrap(), (vec![], false));
    let mut entry = item("bob@b.example");
    entry.subscription = Subscription::Both;
    entry.groups = vec!["Friends".into(), "Work".into()];
    store.put_roster_entry(&id, &entry).await.unwrap();
    store
        .put_roster_entry(&id, &item("carol@c.example"))
        .await
        .unwrap();
    let roster = store.roster(&id).await.unwrap().1;
    assert_eq!(roster.len(), 2);
    assert_eq!(
        store.presence_roster(&id).await.unwrap(),
        (roster.clone(), false)
    );
    assert!(store.store_offline(&id, "<message/>", 10).await.unwrap());
    assert_eq!(store.presence_roster(&id).await.unwrap(), (roster, true));
    let ids: Vec<i64> = store
        .offline_messages(&id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    store.delete_offline(&id, &ids).await.unwrap();
    assert!(!store.presence_roster(&id).await.unwrap().1);
}

/// The directory the store creates is 0700 and the database file 0600, even under a
/// permissive umask; an existing world-readable file is made private.
#[cfg(unix)]
#[tokio::test]
async fn database_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("new").join("db.sqlite");
    let store = SqliteStore::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    store.create_account(&alice(), &[]).await.unwrap();
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&path), 0o600);
    store.close().await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = SqliteStore::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    assert!(store.account_exists(&alice()).await.unwrap());
    store.close().await;
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

/// store_offline syncs its commit (synchronous=FULL) and must hand the
/// connection back with the store's setting, whatever the outcome. The
/// in-memory store has one connection, so it is the one the call used.
#[tokio::test]
async fn store_offline_restores_synchronous_normal() {
    let store = SqliteStore::open("sqlite::memory:").await.unwrap();
    // The in-memory pool sets nothing itself; start from the file setting.
    sqlx::query("PRAGMA synchronous = NORMAL")
        .execute(store.pool())
        .await
        .unwrap();
    let sync = || async {
        let s: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(store.pool())
            .await
            .unwrap();
        s
    };
    use crate::{AccountStore as _, OfflineStore as _};
    // Missing account (an error on the way), stored, full.
    assert!(store.store_offline(&alice(), "<m/>", 1).await.is_err());
    assert_eq!(sync().await, 1);
    store.create_account(&alice(), &[]).await.unwrap();
    assert!(store.store_offline(&alice(), "<m/>", 1).await.unwrap());
    assert_eq!(sync().await, 1);
    assert!(!store.store_offline(&alice(), "<m/>", 1).await.unwrap());
    assert_eq!(sync().await, 1);
}

/// Deleting more ids than one statement binds (see DELETE_CHUNK).
#[tokio::test]
async fn delete_offline_handles_large_batches() {
    let store = open("sqlite::memory:").await.unwrap();
    store.create_account(&alice(), &[]).await.unwrap();
    for i in 0..3 {
        store
            .store_offline(&alice(), &format!("<m id='{i}'/>"), 10)
            .await
            .unwrap();
    }
    let ids: Vec<i64> = store
        .offline_messages(&alice())
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    // The real ids at the end of a list longer than a chunk.
    let mut batch: Vec<i64> = (1_000_000..1_001_200).collect();
    batch.extend(&ids[..2]);
    store.delete_offline(&alice(), &batch).await.unwrap();
    let left = store.offline_messages(&alice()).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, ids[2]);
}

/// A message of `owner`'s archive with `with` (a bare or full JID), archived at `stamp`.
fn archived(owner: &AccountId, id: &str, with: &str, outgoing: bool, stamp: i64) -> NewArchived {
    let (with_jid, with_resource) = with.split_once('/').unwrap_or((with, ""));
    NewArchived {
        owner: owner.into(),
        id: id.to_owned(),
        with_jid: with_jid.to_owned(),
        with_resource: with_resource.to_owned(),
        outgoing,
        stamp,
        stanza: format!("<message id='{id}'/>"),
    }
}

fn ids(page: &[ArchivedMessage]) -> Vec<&str> {
    page.iter().map(|m| m.id.as_str()).collect()
}

/// Alice's archive with ten messages, m0..m9 at stamps 100..109, with bob (even) and
/// carol (odd), received from the /phone resource for m2 and m4.
async fn ten_messages(store: &dyn Store) -> AccountId {
    let id = alice();
    store.create_account(&id, &[]).await.unwrap();
    let batch: Vec<NewArchived> = (0..10)
        .map(|n| {
            let with = match n {
                2 | 4 => "bob@b.example/phone",
                n if n % 2 == 0 => "bob@b.example",
                _ => "carol@c.example/laptop",
            };
            archived(&id, &format!("m{n}"), with, n % 3 == 0, 100 + n)
        })
        .collect();
    let stored = store.archive_append(&batch[..4]).await.unwrap();
    assert_eq!(stored, vec![true; 4]);
    store.archive_append(&batch[4..]).await.unwrap();
    id
}

/// Bob's account with messages b1, b2, … from alice archived at `stamps`.
async fn bob_archive(store: &dyn Store, stamps: &[i64]) -> AccountId {
    let bob = AccountId::new("bob", "b.example");
    store.create_account(&bob, &[]).await.unwrap();
    let batch: Vec<NewArchived> = (1..)
        .zip(stamps)
        .map(|(n, stamp)| archived(&bob, &format!("b{n}"), "alice@a.example", false, *stamp))
        .collect();
    store.archive_append(&batch).await.unwrap();
    bob
}

async fn archive_pages_both_ways_in_order(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = ten_messages(&*store).await;
    let page = |after: Option<&str>, before: Option<&str>, from_end: bool| ArchiveQuery {
        after: after.map(str::to_owned),
        before: before.map(str::to_owned),
        from_end,
        limit: 4,
        ..ArchiveQuery::default()
    };
    let first = store
        .archive_query(&ArchiveOwner::from(&id), &page(None, None, false))
        .await
        .unwrap();
    assert_eq!(ids(&first), ["m0", "m1", "m2", "m3"]);
    assert_eq!(
        (
            first[0].with_jid.as_str(),
            first[0].outgoing,
            first[0].stamp
        ),
        ("bob@b.example", true, 100)
    );
    assert_eq!(first[1].stanza, "<message id='m1'/>");
    let next = store
        .archive_query(&ArchiveOwner::from(&id), &page(Some("m3"), None, false))
        .await
        .unwrap();
    assert_eq!(ids(&next), ["m4", "m5", "m6", "m7"]);
    let rest = store
        .archive_query(&ArchiveOwner::from(&id), &page(Some("m7"), None, false))
        .await
        .unwrap();
    assert_eq!(ids(&rest), ["m8", "m9"]);
    // Backwards from the end, each page still oldest first.
    let last = store
        .archive_query(&ArchiveOwner::from(&id), &page(None, None, true))
        .await
        .unwrap();
    assert_eq!(ids(&last), ["m6", "m7", "m8", "m9"]);
    let earlier = store
        .archive_query(&ArchiveOwner::from(&id), &page(None, Some("m6"), true))
        .await
        .unwrap();
    assert_eq!(ids(&earlier), ["m2", "m3", "m4", "m5"]);
    let between = store
        .archive_query(
            &ArchiveOwner::from(&id),
            &page(Some("m1"), Some("m4"), false),
        )
        .await
        .unwrap();
    assert_eq!(ids(&between), ["m2", "m3"]);
}

async fn archive_filters_by_with_time_and_ids(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = ten_messages(&*store).await;
    let all = |q: ArchiveQuery| ArchiveQuery { limit: 100, ..q };
    let with_bob = all(ArchiveQuery {
        with_jid: Some("bob@b.example".into()),
        ..ArchiveQuery::default()
    });
    let page = store
        .archive_query(&ArchiveOwner::from(&id), &with_bob)
        .await
        .unwrap();
    assert_eq!(ids(&page), ["m0", "m2", "m4", "m6", "m8"]);
    let phone = ArchiveQuery {
        with_resource: Some("phone".into()),
        ..with_bob.clone()
    };
    assert_eq!(
        ids(&store
            .archive_query(&ArchiveOwner::from(&id), &phone)
            .await
            .unwrap()),
        ["m2", "m4"]
    );
    let window = all(ArchiveQuery {
        start: Some(103),
        end: Some(105),
        ..ArchiveQuery::default()
    });
    assert_eq!(
        ids(&store
            .archive_query(&ArchiveOwner::from(&id), &window)
            .await
            .unwrap()),
        ["m3", "m4", "m5"]
    );
    let last_bob = ArchiveQuery {
        limit: 2,
        from_end: true,
        ..with_bob
    };
    assert_eq!(
        ids(&store
            .archive_query(&ArchiveOwner::from(&id), &last_bob)
            .await
            .unwrap()),
        ["m6", "m8"]
    );
    let chosen = all(ArchiveQuery {
        ids: Some(vec!["m7".into(), "m1".into(), "nope".into()]),
        ..ArchiveQuery::default()
    });
    assert_eq!(
        ids(&store
            .archive_query(&ArchiveOwner::from(&id), &chosen)
            .await
            .unwrap()),
        ["m1", "m7"]
    );
    let none = all(ArchiveQuery {
        ids: Some(Vec::new()),
        ..ArchiveQuery::default()
    });
    assert!(store
        .archive_query(&ArchiveOwner::from(&id), &none)
        .await
        .unwrap()
        .is_empty());
}

async fn archive_append_skips_missing_accounts_and_unknown_ids_are_errors(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    let ghost = AccountId::new("ghost", "a.example");
    store.create_account(&id, &[]).await.unwrap();
    let stored = store
        .archive_append(&[
            archived(&id, "a1", "bob@b.example", true, 1),
            archived(&ghost, "g1", "bob@b.example", false, 1),
            archived(&id, "a2", "bob@b.example", false, 2),
        ])
        .await
        .unwrap();
    assert_eq!(stored, [true, false, true]);
    let everything = ArchiveQuery {
        limit: 10,
        ..ArchiveQuery::default()
    };
    assert_eq!(
        ids(&store
            .archive_query(&ArchiveOwner::from(&id), &everything)
            .await
            .unwrap()),
        ["a1", "a2"]
    );
    assert!(store
        .archive_query(&ArchiveOwner::from(&ghost), &everything)
        .await
        .unwrap()
        .is_empty());
    // Another archive's id is no place in this one.
    bob_archive(&*store, &[1]).await;
    for (after, before) in [(Some("b1"), None), (None, Some("nope"))] {
        let q = ArchiveQuery {
            after: after.map(str::to_owned),
            before: before.map(str::to_owned),
            ..everything.clone()
        };
        assert!(matches!(
            store.archive_query(&ArchiveOwner::from(&id), &q).await,
            Err(StoreError::UnknownArchiveId)
        ));
    }
    let q = ArchiveQuery {
        after: Some("a1".into()),
        ..everything
    };
    assert!(matches!(
        store.archive_query(&ArchiveOwner::from(&ghost), &q).await,
        Err(StoreError::UnknownArchiveId)
    ));
}

/// One large batch for many archives at once, as the writer hands it over: owners that
/// have rows already, accounts and rooms archiving for the first time, accounts that do not
/// exist and a room named like an account. Each message says whether it was stored, and
/// each archive holds its own messages in batch order, across the batch's statements.
async fn archive_append_batches_many_owners_in_order(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let accounts: Vec<AccountId> = (0..150)
        .map(|n| AccountId::new(format!("u{n}"), "a.example"))
        .collect();
    for account in &accounts {
        store.create_account(account, &[]).await.unwrap();
    }
    let den = ArchiveOwner::Room("den@muc.a.example".to_owned());
    let hall = ArchiveOwner::Room("hall@muc.a.example".to_owned());
    // Owner rows before the batch: u0's and the den's.
    let mut earlier = archived(&accounts[0], "early", "bob@b.example", true, 1);
    let stored = store.archive_append(&[earlier.clone()]).await.unwrap();
    assert_eq!(stored, [true]);
    earlier.owner = den.clone();
    assert_eq!(store.archive_append(&[earlier]).await.unwrap(), [true]);

    let ghost = ArchiveOwner::Account(AccountId::new("ghost", "a.example"));
    let posing = ArchiveOwner::Room("u1@a.example".to_owned());
    let owner_of = |n: usize| match n % 20 {
        3 => ghost.clone(),
        7 => den.clone(),
        11 => hall.clone(),
        13 => posing.clone(),
        _ => ArchiveOwner::Account(accounts[n % accounts.len()].clone()),
    };
    let batch: Vec<NewArchived> = (0..333)
        .map(|n| NewArchived {
            owner: owner_of(n),
            ..archived(
                &accounts[0],
                &format!("m{n}"),
                "bob@b.example",
                n % 2 == 0,
                2,
            )
        })
        .collect();
    let stored = store.archive_append(&batch).await.unwrap();
    let expected: Vec<bool> = batch
        .iter()
        .map(|m| m.owner != ghost && m.owner != posing)
        .collect();
    assert_eq!(stored, expected);
    // A second batch finds the owners the first one made.
    let again: Vec<NewArchived> = [1, 7, 11, 13]
        .into_iter()
        .map(|n| NewArchived {
            owner: owner_of(n),
            ..archived(&accounts[0], &format!("again{n}"), "bob@b.example", true, 3)
        })
        .collect();
    assert_eq!(
        store.archive_append(&again).await.unwrap(),
        [true, true, true, false]
    );

    let everything = ArchiveQuery {
        limit: 100,
        ..ArchiveQuery::default()
    };
    let mut owners: Vec<ArchiveOwner> = accounts.iter().map(ArchiveOwner::from).collect();
    owners.extend([den.clone(), hall, ghost, posing]);
    let all_stored: Vec<bool> = expected
        .iter()
        .copied()
        .chain([true, true, true, false])
        .collect();
    let mut total = 0;
    for owner in &owners {
        let mut want: Vec<&str> = Vec::new();
        if *owner == ArchiveOwner::from(&accounts[0]) || *owner == den {
            want.push("early");
        }
        for (message, stored) in batch.iter().chain(&again).zip(&all_stored) {
            if *stored && message.owner == *owner {
                want.push(&message.id);
            }
        }
        let page = store.archive_query(owner, &everything).await.unwrap();
        assert_eq!(ids(&page), want, "{owner:?}");
        total += page.len();
    }
    assert_eq!(total, 2 + all_stored.iter().filter(|s| **s).count());
    // Neither the ghost's nor the posing room's messages went anywhere.
    assert_eq!(h.count("SELECT COUNT(*) FROM archive").await, total as i64);
}

async fn archive_prefs_round_trip(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store.create_account(&id, &[]).await.unwrap();
    assert_eq!(store.archive_prefs(&id).await.unwrap(), None);
    store.set_archive_prefs(&id, "never").await.unwrap();
    store
        .set_archive_prefs(&id, "roster;bob@b.example")
        .await
        .unwrap();
    assert_eq!(
        store.archive_prefs(&id).await.unwrap().as_deref(),
        Some("roster;bob@b.example")
    );
    // Prefs set before any message: the archive that follows is the same owner's.
    store
        .archive_append(&[archived(&id, "a1", "bob@b.example", true, 1)])
        .await
        .unwrap();
    assert_eq!(
        store.archive_prefs(&id).await.unwrap().as_deref(),
        Some("roster;bob@b.example")
    );
    let ghost = AccountId::new("ghost", "a.example");
    assert!(matches!(
        store.set_archive_prefs(&ghost, "never").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.archive_prefs(&ghost).await.unwrap(), None);
}

async fn archive_expires_by_age_and_trims_per_owner(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = ten_messages(&*store).await;
    let bob = bob_archive(&*store, &[101, 120]).await;
    // Nothing is older than the oldest message.
    assert_eq!(store.archive_expire(100, 100).await.unwrap(), 0);
    // A room's archive is no account's, however long (and younger than what expires below).
    let room: Vec<NewArchived> = (0..12)
        .map(|n| NewArchived {
            owner: ArchiveOwner::Room("room@muc.a.example".into()),
            ..archived(&id, &format!("r{n}"), "room@muc.a.example/nick", false, 200)
        })
        .collect();
    store.archive_append(&room).await.unwrap();
    // Alice has ten, bob two: over nine only alice, over one both, over ten nobody.
    let over = |keep| {
        let store = &store;
        async move {
            let mut accounts = store.archive_accounts_over(keep).await.unwrap();
            accounts.sort_by(|a, b| a.username.cmp(&b.username));
            accounts
        }
    };
    assert_eq!(over(9).await, std::slice::from_ref(&id));
    assert_eq!(over(1).await, [id.clone(), bob.clone()]);
    assert!(over(10).await.is_empty());
    // Before 104: m0..m3 and b1, at most three at a time, oldest first.
    assert_eq!(store.archive_expire(104, 3).await.unwrap(), 3);
    assert_eq!(store.archive_expire(104, 3).await.unwrap(), 2);
    assert_eq!(store.archive_expire(104, 3).await.unwrap(), 0);
    let everything = ArchiveQuery {
        limit: 100,
        ..ArchiveQuery::default()
    };
    let left = store
        .archive_query(&ArchiveOwner::from(&id), &everything)
        .await
        .unwrap();
    assert_eq!(ids(&left), ["m4", "m5", "m6", "m7", "m8", "m9"]);
    assert_eq!(
        ids(&store
            .archive_query(&ArchiveOwner::from(&bob), &everything)
            .await
            .unwrap()),
        ["b2"]
    );
    // Alice keeps her newest two; two go per call.
    assert_eq!(store.archive_trim(&id, 2, 2).await.unwrap(), 2);
    assert_eq!(store.archive_trim(&id, 2, 2).await.unwrap(), 2);
    assert_eq!(store.archive_trim(&id, 2, 2).await.unwrap(), 0);
    let left = store
        .archive_query(&ArchiveOwner::from(&id), &everything)
        .await
        .unwrap();
    assert_eq!(ids(&left), ["m8", "m9"]);
    assert_eq!(store.archive_trim(&bob, 2, 2).await.unwrap(), 0);
    let ghost = AccountId::new("ghost", "a.example");
    assert_eq!(store.archive_trim(&ghost, 0, 10).await.unwrap(), 0);
}

async fn archive_goes_with_the_account(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = ten_messages(&*store).await;
    bob_archive(&*store, &[1]).await;
    store.set_archive_prefs(&id, "never").await.unwrap();
    assert!(store.remove_account(&id).await.unwrap());
    assert_eq!(h.count("SELECT COUNT(*) FROM archive").await, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM archive_owners").await, 1);
    // A new account of the same name starts with an empty archive and no prefs.
    store.create_account(&id, &[]).await.unwrap();
    let everything = ArchiveQuery {
        limit: 100,
        ..ArchiveQuery::default()
    };
    assert!(store
        .archive_query(&ArchiveOwner::from(&id), &everything)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.archive_prefs(&id).await.unwrap(), None);
}

/// XEP-0313 §6: a room's archive has an owner row of its own, no account behind it; its
/// messages are filtered by occupant (the `with` resource is the nick), and removing the
/// archive takes every message of it and nothing of anyone else's.
async fn room_archives_need_no_account_and_go_when_removed(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let account = ten_messages(&*store).await;
    let den = ArchiveOwner::Room("den@muc.a.example".to_owned());
    let hall = ArchiveOwner::Room("hall@muc.a.example".to_owned());
    let in_room = |owner: &ArchiveOwner, id: &str, nick: &str| NewArchived {
        owner: owner.clone(),
        id: id.to_owned(),
        with_jid: "den@muc.a.example".to_owned(),
        with_resource: nick.to_owned(),
        outgoing: false,
        stamp: 5,
        stanza: format!("<message id='{id}'/>"),
    };
    let stored = store
        .archive_append(&[
            in_room(&den, "d1", "alice"),
            in_room(&hall, "h1", "bob"),
            in_room(&den, "d2", "bob"),
            in_room(&den, "d3", "alice"),
        ])
        .await
        .unwrap();
    assert_eq!(stored, [true; 4]);
    let everything = ArchiveQuery {
        limit: 10,
        ..ArchiveQuery::default()
    };
    let page = store.archive_query(&den, &everything).await.unwrap();
    assert_eq!(ids(&page), ["d1", "d2", "d3"]);
    let alice_said = ArchiveQuery {
        with_jid: Some("den@muc.a.example".into()),
        with_resource: Some("alice".into()),
        ..everything.clone()
    };
    let page = store.archive_query(&den, &alice_said).await.unwrap();
    assert_eq!(ids(&page), ["d1", "d3"]);
    let mut rooms = store.room_archives("muc.a.example").await.unwrap();
    rooms.sort();
    assert_eq!(rooms, ["den@muc.a.example", "hall@muc.a.example"]);
    // A domain's LIKE wildcards match only themselves.
    assert!(store
        .room_archives("muc_a.example")
        .await
        .unwrap()
        .is_empty());

    assert!(store
        .remove_room_archive("den@muc.a.example")
        .await
        .unwrap());
    assert!(!store
        .remove_room_archive("den@muc.a.example")
        .await
        .unwrap());
    assert!(store
        .archive_query(&den, &everything)
        .await
        .unwrap()
        .is_empty());
    let page = store.archive_query(&hall, &everything).await.unwrap();
    assert_eq!(ids(&page), ["h1"]);
    let page = store
        .archive_query(&ArchiveOwner::from(&account), &everything)
        .await
        .unwrap();
    assert_eq!(page.len(), 10);
    // An account's archive is no room's, whatever its JID.
    assert!(!store.remove_room_archive("alice@a.example").await.unwrap());
}

// ---- publish-subscribe nodes and items ---------------------------------------

/// Alice's personal eventing service (XEP-0163): her bare JID, her account.
fn alice_pep(id: &AccountId) -> PubsubService<'_> {
    PubsubService {
        name: "alice@a.example",
        owner: Some(id),
    }
}

fn pubsub_item(id: &str, payload: &str) -> StoredItem {
    StoredItem {
        id: id.into(),
        publisher: "alice@a.example".into(),
        payload: payload.into(),
        published_at: 1_700_000_000,
    }
}

/// Publishes `item`, creating the node with `config` when missing, keeping `keep` items.
async fn publish(
    store: &dyn Store,
    service: &PubsubService<'_>,
    node: &str,
    item: &StoredItem,
    keep: u64,
) -> Published {
    store
        .publish_pubsub_item(service, node, item, &mut |_| PublishPlan::Publish {
            create: Some("{}".into()),
            max_nodes: 10,
            keep: Some(keep),
            max_service_items: 5,
        })
        .await
        .unwrap()
}

fn item_ids(items: &[StoredItem]) -> Vec<&str> {
    items.iter().map(|i| i.id.as_str()).collect()
}

/// A publish creates its node, keeps the newest `keep` items in publication order, and a
/// republished id becomes the newest; retrieval by count or by id.
async fn pubsub_publish_keeps_the_newest_items_in_order(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store.create_account(&id, &[]).await.unwrap();
    let service = alice_pep(&id);
    assert_eq!(
        publish(
            &*store,
            &service,
            "urn:xmpp:avatar:metadata",
            &pubsub_item("a", "<a/>"),
            3
        )
        .await,
        Published::Done { created: true }
    );
    for name in ["b", "c", "d"] {
        assert_eq!(
            publish(
                &*store,
                &service,
                "urn:xmpp:avatar:metadata",
                &pubsub_item(name, "<x/>"),
                3
            )
            .await,
            Published::Done { created: false }
        );
    }
    // "a" was the oldest of four: gone.
    let all = store
        .pubsub_items(
            service.name,
            "urn:xmpp:avatar:metadata",
            ItemsWanted::Newest(u64::MAX),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(all.config, "{}");
    assert_eq!(item_ids(&all.items), ["b", "c", "d"]);
    // "b" again: replaced, and now the newest.
    publish(
        &*store,
        &service,
        "urn:xmpp:avatar:metadata",
        &pubsub_item("b", "<b2/>"),
        3,
    )
    .await;
    let newest = store
        .pubsub_items(
            service.name,
            "urn:xmpp:avatar:metadata",
            ItemsWanted::Newest(2),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item_ids(&newest.items), ["d", "b"]);
    assert_eq!(newest.items[1].payload, "<b2/>");
    let asked = ["b".to_owned(), "zz".to_owned(), "c".to_owned()];
    let by_id = store
        .pubsub_items(
            service.name,
            "urn:xmpp:avatar:metadata",
            ItemsWanted::Ids(&asked),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item_ids(&by_id.items), ["b", "c"]);
    assert!(store
        .pubsub_items(service.name, "nope", ItemsWanted::Newest(1))
        .await
        .unwrap()
        .is_none());
    // Not kept (persist_items off): announced only.
    store
        .publish_pubsub_item(
            &service,
            "urn:xmpp:avatar:metadata",
            &pubsub_item("e", "<e/>"),
            &mut |_| PublishPlan::Publish {
                create: None,
                max_nodes: 10,
                keep: None,
                max_service_items: 5,
            },
        )
        .await
        .unwrap();
    let after = store
        .pubsub_items(
            service.name,
            "urn:xmpp:avatar:metadata",
            ItemsWanted::Newest(10),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item_ids(&after.items), ["c", "d", "b"]);
}

/// The publish callback sees the stored configuration (none for a new node) and may refuse;
/// a node that must exist is not made; the node limit holds.
async fn pubsub_publish_plan_sees_the_config_and_limits_hold(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store.create_account(&id, &[]).await.unwrap();
    let service = alice_pep(&id);
    let mut seen = Vec::new();
    let refused = store
        .publish_pubsub_item(&service, "n1", &pubsub_item("1", "<p/>"), &mut |config| {
            seen.push(config.map(str::to_owned));
            PublishPlan::Refuse
        })
        .await
        .unwrap();
    assert_eq!(refused, Published::Refused);
    let must_exist = store
        .publish_pubsub_item(&service, "n1", &pubsub_item("1", "<p/>"), &mut |config| {
            seen.push(config.map(str::to_owned));
            PublishPlan::Publish {
                create: None,
                max_nodes: 10,
                keep: Some(1),
                max_service_items: 100,
            }
        })
        .await
        .unwrap();
    assert_eq!(must_exist, Published::NoSuchNode);
    assert!(store.pubsub_nodes(service.name).await.unwrap().is_empty());
    let created = store
        .create_pubsub_node(&service, "n1", r#"{"access_model":"open"}"#, 2, None)
        .await
        .unwrap();
    assert_eq!(created, Created::Done);
    assert_eq!(
        store
            .create_pubsub_node(&service, "n1", "{}", 2, None)
            .await
            .unwrap(),
        Created::Exists
    );
    store
        .publish_pubsub_item(&service, "n1", &pubsub_item("1", "<p/>"), &mut |config| {
            seen.push(config.map(str::to_owned));
            PublishPlan::Refuse
        })
        .await
        .unwrap();
    assert_eq!(
        seen,
        [None, None, Some(r#"{"access_model":"open"}"#.to_owned())]
    );
    publish(&*store, &service, "n2", &pubsub_item("1", "<p/>"), 1).await;
    // Two nodes is the limit: a third is refused, by publish and by create.
    let over = store
        .publish_pubsub_item(&service, "n3", &pubsub_item("1", "<p/>"), &mut |_| {
            PublishPlan::Publish {
                create: Some("{}".into()),
                max_nodes: 2,
                keep: Some(1),
                max_service_items: 100,
            }
        })
        .await
        .unwrap();
    assert_eq!(over, Published::TooManyNodes);
    assert_eq!(
        store
            .create_pubsub_node(&service, "n3", "{}", 2, None)
            .await
            .unwrap(),
        Created::TooManyNodes
    );
    let names: Vec<String> = store
        .pubsub_nodes(service.name)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.node)
        .collect();
    assert_eq!(names, ["n1", "n2"]);
    // Five items over the service at most (see `publish`): n2 holds one, n1 gets four; a
    // sixth is refused, a replacement is not.
    for name in ["1", "2", "3", "4"] {
        assert_eq!(
            publish(&*store, &service, "n1", &pubsub_item(name, "<p/>"), 10).await,
            Published::Done { created: false }
        );
    }
    assert_eq!(
        publish(&*store, &service, "n1", &pubsub_item("5", "<p/>"), 10).await,
        Published::TooManyItems
    );
    assert_eq!(
        publish(&*store, &service, "n1", &pubsub_item("4", "<q/>"), 10).await,
        Published::Done { created: false }
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM pubsub_items").await, 5);
    // A service whose account does not exist keeps nothing.
    let ghost = AccountId::new("ghost", "a.example");
    let err = store
        .create_pubsub_node(
            &PubsubService {
                name: "ghost@a.example",
                owner: Some(&ghost),
            },
            "n",
            "{}",
            2,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

/// Configure (with trimming), retract, expire, purge and delete; the last item of each node,
/// and of every node of the accounts that share their presence with a contact.
async fn pubsub_node_changes_and_last_items(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    let bob = AccountId::new("bob", "a.example");
    let carol = AccountId::new("carol", "a.example");
    for account in [&id, &bob, &carol] {
        store.create_account(account, &[]).await.unwrap();
    }
    let service = alice_pep(&id);
    for name in ["1", "2", "3"] {
        publish(&*store, &service, "n", &pubsub_item(name, "<p/>"), 10).await;
    }
    publish(&*store, &service, "other", &pubsub_item("x", "<x/>"), 10).await;
    store
        .create_pubsub_node(&service, "empty", "{}", 10, None)
        .await
        .unwrap();
    assert!(store
        .configure_pubsub_node(service.name, "n", r#"{"max_items":2}"#, 2)
        .await
        .unwrap());
    assert!(!store
        .configure_pubsub_node(service.name, "nope", "{}", 2)
        .await
        .unwrap());
    assert_eq!(
        store
            .pubsub_node(service.name, "n")
            .await
            .unwrap()
            .as_deref(),
        Some(r#"{"max_items":2}"#)
    );
    let items = store
        .pubsub_items(service.name, "n", ItemsWanted::Newest(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item_ids(&items.items), ["2", "3"]);
    // The newest retracted: the one before is the last item now.
    let retracted = store
        .retract_pubsub_items(service.name, "n", &["3".to_owned(), "9".to_owned()])
        .await
        .unwrap();
    assert_eq!(retracted, Some(vec!["3".to_owned()]));
    assert_eq!(
        store
            .retract_pubsub_items(service.name, "nope", &["1".to_owned()])
            .await
            .unwrap(),
        None
    );
    // Expiry takes the items published before a time, the one at it stays.
    for (name, age) in [("a", 20), ("b", 10), ("c", 0)] {
        let mut aged = pubsub_item(name, "<p/>");
        aged.published_at -= age;
        publish(&*store, &service, "aged", &aged, 10).await;
    }
    let before = 1_700_000_000 - 10;
    assert_eq!(
        store
            .expire_pubsub_items(service.name, "aged", before)
            .await
            .unwrap(),
        Some(1)
    );
    let left = store
        .pubsub_items(service.name, "aged", ItemsWanted::Newest(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item_ids(&left.items), ["b", "c"]);
    assert_eq!(
        store
            .expire_pubsub_items(service.name, "nope", before)
            .await
            .unwrap(),
        None
    );
    assert!(store
        .delete_pubsub_node(service.name, "aged")
        .await
        .unwrap());
    let last = store.pubsub_last_items(service.name).await.unwrap();
    let summary: Vec<(&str, Option<&str>)> = last
        .iter()
        .map(|(n, i)| (n.node.as_str(), i.as_ref().map(|i| i.id.as_str())))
        .collect();
    assert_eq!(
        summary,
        [("empty", None), ("n", Some("2")), ("other", Some("x"))]
    );
    // Bob sees Alice's presence (from), Carol only asked (none): Bob is owed Alice's items.
    let mut entry = item("bob@a.example");
    entry.subscription = Subscription::From;
    store.put_roster_entry(&id, &entry).await.unwrap();
    let mut asked = item("carol@a.example");
    asked.pending_in = true;
    store.put_roster_entry(&id, &asked).await.unwrap();
    let shared = store
        .pep_last_items_shared_with("bob@a.example")
        .await
        .unwrap();
    let summary: Vec<(&str, &str, &str)> = shared
        .iter()
        .map(|(s, n, i)| (s.as_str(), n.node.as_str(), i.id.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("alice@a.example", "n", "2"),
            ("alice@a.example", "other", "x")
        ]
    );
    assert!(store
        .pep_last_items_shared_with("carol@a.example")
        .await
        .unwrap()
        .is_empty());
    assert!(store.purge_pubsub_node(service.name, "n").await.unwrap());
    assert!(!store.purge_pubsub_node(service.name, "nope").await.unwrap());
    assert!(store
        .pubsub_items(service.name, "n", ItemsWanted::Newest(10))
        .await
        .unwrap()
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .delete_pubsub_node(service.name, "other")
        .await
        .unwrap());
    assert!(!store
        .delete_pubsub_node(service.name, "other")
        .await
        .unwrap());
    assert_eq!(h.count("SELECT COUNT(*) FROM pubsub_items").await, 0);
}

/// An account's nodes and items go with it, and another account's stay; what was published
/// is there after the store is opened again.
async fn pubsub_nodes_survive_reopen_and_go_with_the_account(h: &Harness) {
    let id = alice();
    let bob = AccountId::new("bob", "a.example");
    {
        let store = open(&h.url).await.unwrap();
        store.create_account(&id, &[]).await.unwrap();
        store.create_account(&bob, &[]).await.unwrap();
        publish(&*store, &alice_pep(&id), "n", &pubsub_item("1", "<p/>"), 5).await;
        let bobs = PubsubService {
            name: "bob@a.example",
            owner: Some(&bob),
        };
        publish(&*store, &bobs, "n", &pubsub_item("1", "<p/>"), 5).await;
    }
    let store = open(&h.url).await.unwrap();
    let kept = store
        .pubsub_items("alice@a.example", "n", ItemsWanted::Newest(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item_ids(&kept.items), ["1"]);
    assert_eq!(kept.items[0], pubsub_item("1", "<p/>"));
    assert!(store.remove_account(&id).await.unwrap());
    assert!(store
        .pubsub_nodes("alice@a.example")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(h.count("SELECT COUNT(*) FROM pubsub_nodes").await, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM pubsub_items").await, 1);
}

/// A service of its own: the creator is the first owner, affiliations change in one write
/// that the caller may refuse, an outcast loses its subscriptions, everything survives a
/// reopen and goes with the node.
async fn pubsub_service_affiliations_and_subscriptions(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let service = PubsubService {
        name: "pubsub.a.example",
        owner: None,
    };
    let created = store
        .create_pubsub_node(&service, "news", "{}", 10, Some("alice@a.example"))
        .await
        .unwrap();
    assert_eq!(created, Created::Done);
    let sub = |jid: &str, subid: &str| StoredSubscription {
        jid: jid.to_owned(),
        subid: subid.to_owned(),
        options: "{}".to_owned(),
        pending: subid == "3",
    };
    for (bare, s) in [
        ("bob@a.example", sub("bob@a.example/phone", "1")),
        ("bob@a.example", sub("bob@a.example", "2")),
        ("carol@a.example", sub("carol@a.example", "3")),
    ] {
        assert!(store
            .put_pubsub_subscription(service.name, "news", bare, &s)
            .await
            .unwrap());
    }
    assert!(!store
        .put_pubsub_subscription(
            service.name,
            "nope",
            "x@a.example",
            &sub("x@a.example", "4")
        )
        .await
        .unwrap());
    let mine = store
        .pubsub_subscriptions_of(service.name, "bob@a.example")
        .await
        .unwrap();
    assert_eq!(
        mine,
        vec![
            ("news".to_owned(), sub("bob@a.example", "2")),
            ("news".to_owned(), sub("bob@a.example/phone", "1")),
        ]
    );
    // A refused change writes nothing.
    let changes = vec![("alice@a.example".to_owned(), None)];
    let written = store
        .set_pubsub_affiliations(service.name, "news", &changes, &[], &mut |after| {
            after.iter().any(|(_, a)| a == "owner")
        })
        .await
        .unwrap();
    assert_eq!(written, Some(false));
    let changes = vec![
        ("bob@a.example".to_owned(), Some("outcast".to_owned())),
        ("carol@a.example".to_owned(), Some("publisher".to_owned())),
    ];
    let written = store
        .set_pubsub_affiliations(service.name, "news", &changes, &["outcast"], &mut |_| true)
        .await
        .unwrap();
    assert_eq!(written, Some(true));
    drop(store);
    let store = open(&h.url).await.unwrap();
    assert_eq!(
        store
            .pubsub_affiliations(service.name, "news")
            .await
            .unwrap(),
        Some(vec![
            ("alice@a.example".to_owned(), "owner".to_owned()),
            ("bob@a.example".to_owned(), "outcast".to_owned()),
            ("carol@a.example".to_owned(), "publisher".to_owned()),
        ])
    );
    assert_eq!(
        store
            .pubsub_affiliations_of(service.name, "carol@a.example")
            .await
            .unwrap(),
        vec![("news".to_owned(), "publisher".to_owned())]
    );
    // The outcast's subscriptions, bare and full, went with the change.
    assert_eq!(
        store
            .pubsub_subscriptions(service.name, "news")
            .await
            .unwrap(),
        Some(vec![sub("carol@a.example", "3")])
    );
    assert_eq!(
        store
            .remove_pubsub_subscriptions(service.name, "news", Subscribers::Jid("carol@a.example"))
            .await
            .unwrap(),
        Some(vec!["carol@a.example".to_owned()])
    );
    assert!(store
        .delete_pubsub_node(service.name, "news")
        .await
        .unwrap());
    assert_eq!(
        store
            .pubsub_affiliations_of(service.name, "alice@a.example")
            .await
            .unwrap(),
        vec![]
    );
}

fn upload_slot(id: &str, owner: &AccountId, size: i64, expires: i64) -> UploadSlot {
    UploadSlot {
        id: id.into(),
        owner: owner.clone(),
        filename: format!("{id}.png"),
        size,
        content_type: Some("image/png".into()),
        created_at: 1_700_000_000,
        slot_expires_at: expires,
        completed_at: None,
    }
}

/// XEP-0363: a quota counts complete files only, holds when slots are given and when
/// uploads complete, and what was counted is still there after a reopen.
async fn upload_quota_counts_complete_files_and_survives_reopen(h: &Harness) {
    let id = alice();
    let quota = Some(100);
    {
        let store = open(&h.url).await.unwrap();
        let missing = upload_slot("s0", &id, 10, 2_000_000_000);
        assert!(matches!(
            store.add_upload_slot(&missing, quota).await,
            Err(StoreError::NotFound)
        ));
        store.create_account(&id, &[]).await.unwrap();
        let a = upload_slot("s1", &id, 60, 2_000_000_000);
        let b = upload_slot("s2", &id, 60, 2_000_000_000);
        // Waiting slots take nothing: both are given.
        for slot in [&a, &b] {
            assert_eq!(
                store.add_upload_slot(slot, quota).await.unwrap(),
                SlotGranted::Granted
            );
        }
        assert_eq!(store.upload_usage(&id).await.unwrap(), 0);
        assert_eq!(
            store
                .complete_upload(&a, 1_700_000_010, quota)
                .await
                .unwrap(),
            UploadCompleted::Completed
        );
        assert_eq!(
            store
                .complete_upload(&a, 1_700_000_011, quota)
                .await
                .unwrap(),
            UploadCompleted::AlreadyComplete
        );
        // The second would pass the quota once the first is complete.
        assert_eq!(
            store
                .complete_upload(&b, 1_700_000_012, quota)
                .await
                .unwrap(),
            UploadCompleted::QuotaExceeded { used: 60 }
        );
        let c = upload_slot("s3", &id, 41, 2_000_000_000);
        assert_eq!(
            store.add_upload_slot(&c, quota).await.unwrap(),
            SlotGranted::QuotaExceeded { used: 60 }
        );
        let unknown = upload_slot("nope", &id, 1, 2_000_000_000);
        assert_eq!(
            store.complete_upload(&unknown, 1, quota).await.unwrap(),
            UploadCompleted::Unknown
        );
    }
    let store = open(&h.url).await.unwrap();
    assert_eq!(store.upload_usage(&id).await.unwrap(), 60);
    let kept = store.upload_slot("s1").await.unwrap().unwrap();
    assert_eq!(kept.completed_at, Some(1_700_000_010));
    assert_eq!(kept.content_type.as_deref(), Some("image/png"));
    assert_eq!(kept.owner, id);
    assert_eq!(
        store.upload_slot("s2").await.unwrap().unwrap().completed_at,
        None
    );
    assert!(store.upload_slot("s0").await.unwrap().is_none());
}

async fn upload_expiry_lists_waiting_slots_and_old_files(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let id = alice();
    store.create_account(&id, &[]).await.unwrap();
    for (slot, expires) in [("a", 100), ("b", 300), ("c", 100), ("d", 100)] {
        let slot = upload_slot(slot, &id, 1, expires);
        store.add_upload_slot(&slot, None).await.unwrap();
    }
    for (slot, at) in [("c", 50), ("d", 500)] {
        let slot = store.upload_slot(slot).await.unwrap().unwrap();
        store.complete_upload(&slot, at, None).await.unwrap();
    }
    // Waiting "a" passed its deadline, "b" not yet; complete "c" is old, "d" is not.
    assert_eq!(
        store.expired_uploads(200, 400, 10).await.unwrap(),
        vec!["a".to_owned(), "c".to_owned()]
    );
    assert_eq!(
        store.expired_uploads(200, 400, 1).await.unwrap(),
        vec!["a".to_owned()]
    );
    store
        .remove_uploads(&["a".to_owned(), "c".to_owned()])
        .await
        .unwrap();
    assert!(store
        .expired_uploads(200, 400, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.upload_slot("a").await.unwrap().is_none());
    assert_eq!(store.upload_usage(&id).await.unwrap(), 1);
}

/// A removed account's slots and files, waiting and complete, go by owner and are named
/// for their bytes to follow; another account's, and a namesake's on another domain, stay.
async fn account_uploads_are_removed_by_owner(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let alice = alice();
    let bob = AccountId::new("bob", "a.example");
    let namesake = AccountId::new("alice", "b.example");
    for owner in [&alice, &bob, &namesake] {
        store.create_account(owner, &[]).await.unwrap();
    }
    for (owner, slot) in [
        (&alice, "a2"),
        (&alice, "a1"),
        (&bob, "b1"),
        (&namesake, "n1"),
    ] {
        let slot = upload_slot(slot, owner, 5, 2_000_000_000);
        store.add_upload_slot(&slot, None).await.unwrap();
    }
    for id in ["a1", "b1"] {
        let slot = store.upload_slot(id).await.unwrap().unwrap();
        store
            .complete_upload(&slot, 1_700_000_010, None)
            .await
            .unwrap();
    }
    assert_eq!(
        store.remove_account_uploads(&alice).await.unwrap(),
        vec!["a1".to_owned(), "a2".to_owned()]
    );
    for gone in ["a1", "a2"] {
        assert!(store.upload_slot(gone).await.unwrap().is_none(), "{gone}");
    }
    assert_eq!(store.upload_usage(&alice).await.unwrap(), 0);
    assert!(store
        .remove_account_uploads(&alice)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.upload_usage(&bob).await.unwrap(), 5);
    assert!(store.upload_slot("n1").await.unwrap().is_some());
}

async fn motd_set_replace_delete_per_domain(h: &Harness) {
    let store = open(&h.url).await.unwrap();
    let pair = |s: &str, b: &str| Some((s.to_owned(), b.to_owned()));
    assert_eq!(store.motd("localhost").await.unwrap(), None);
    assert!(!store.delete_motd("localhost").await.unwrap());
    store
        .set_motd("localhost", "Notice", "Maintenance at 6")
        .await
        .unwrap();
    store.set_motd("example.org", "", "Welcome").await.unwrap();
    store
        .set_motd("localhost", "Notice", "Maintenance at 7 🛠")
        .await
        .unwrap();
    assert_eq!(
        store.motd("localhost").await.unwrap(),
        pair("Notice", "Maintenance at 7 🛠")
    );
    assert!(store.delete_motd("localhost").await.unwrap());
    assert_eq!(store.motd("localhost").await.unwrap(), None);
    assert_eq!(
        store.motd("example.org").await.unwrap(),
        pair("", "Welcome")
    );
}
