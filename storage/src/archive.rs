//! Message archives (XEP-0313): [`NewArchived`], [`ArchivedMessage`], [`ArchiveQuery`], the
//! [`ArchiveStore`] trait, its statements, and its one implementation for both backends.
//!
//! The tables (migration 0008) keep an owner per archive (`archive_owners`: an account's
//! bare JID, or a room's, which is no account) and the messages of each in the order they
//! were appended (`seq`); clients name messages by an opaque id the server chose, never by
//! `seq`.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::common::{numbered, Sql};
use crate::{AccountId, PostgresStore, SqliteStore, StoreError};

/// Whose archive: an account's (XEP-0313 §5, the user archive) or a room's (§6, a MUC
/// archive, whose owner row names no account).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ArchiveOwner {
    Account(AccountId),
    /// The room's bare JID, as the server normalised it.
    Room(String),
}

impl From<&AccountId> for ArchiveOwner {
    fn from(account: &AccountId) -> ArchiveOwner {
        ArchiveOwner::Account(account.clone())
    }
}

/// One message to append to an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewArchived {
    pub owner: ArchiveOwner,
    /// The opaque id the server chose (unique within the owner's archive).
    pub id: String,
    /// The other party's bare JID, and its resource (empty when it had none).
    pub with_jid: String,
    pub with_resource: String,
    /// The owner sent it (else received it).
    pub outgoing: bool,
    /// Unix seconds.
    pub stamp: i64,
    pub stanza: String,
}

/// One archived message as a query returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedMessage {
    pub id: String,
    pub with_jid: String,
    pub outgoing: bool,
    /// Unix seconds.
    pub stamp: i64,
    pub stanza: String,
}

/// Which messages of an archive a query wants. Every filter narrows; the page is the
/// first `limit` matching messages in archive order, or the last `limit` with
/// `from_end`, returned oldest first either way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveQuery {
    /// The other party's bare JID, and with `with_resource` only that resource.
    pub with_jid: Option<String>,
    pub with_resource: Option<String>,
    /// Archived at or after / at or before (Unix seconds).
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// Strictly after / before the message with this id (an unknown id is
    /// [`StoreError::UnknownArchiveId`]).
    pub after: Option<String>,
    pub before: Option<String>,
    /// Only messages with one of these ids.
    pub ids: Option<Vec<String>>,
    pub from_end: bool,
    pub limit: usize,
}

/// The archives of accounts and rooms.
///
/// Reads of a missing account (or an owner that never archived anything) find nothing;
/// appends for a missing account store nothing for that message. A room's archive is made
/// by its first message and lasts until [`ArchiveStore::remove_room_archive`].
#[async_trait::async_trait]
pub trait ArchiveStore: Send + Sync {
    /// Appends the messages in one transaction, durable when it returns (SQLite syncs this
    /// commit, as an offline message's), in the given order. Says per message whether it
    /// was stored: false when its owner is an account that does not exist.
    async fn archive_append(&self, messages: &[NewArchived]) -> Result<Vec<bool>, StoreError>;

    /// One page of the owner's archive (see [`ArchiveQuery`]), oldest first.
    async fn archive_query(
        &self,
        owner: &ArchiveOwner,
        query: &ArchiveQuery,
    ) -> Result<Vec<ArchivedMessage>, StoreError>;

    /// Removes a room's archive, every message of it; false when it had none.
    async fn remove_room_archive(&self, room: &str) -> Result<bool, StoreError>;

    /// The rooms on `domain` (`room@domain`) that have an archive.
    async fn room_archives(&self, domain: &str) -> Result<Vec<String>, StoreError>;

    /// The owner's preferences as the server serialised them; None: never set.
    async fn archive_prefs(&self, owner: &AccountId) -> Result<Option<String>, StoreError>;

    /// Replaces the owner's preferences. NotFound if the account doesn't exist.
    async fn set_archive_prefs(&self, owner: &AccountId, prefs: &str) -> Result<(), StoreError>;

    /// Removes at most `limit` messages archived before `stamp`, oldest first, from every
    /// archive; returns how many went.
    async fn archive_expire(&self, stamp: i64, limit: u64) -> Result<u64, StoreError>;

    /// Removes at most `limit` of the owner's oldest messages beyond its newest `keep`;
    /// returns how many went.
    async fn archive_trim(
        &self,
        owner: &AccountId,
        keep: u64,
        limit: u64,
    ) -> Result<u64, StoreError>;

    /// The accounts whose archives hold more than `keep` messages (rooms' archives are
    /// not counted): where a per-account limit just set or lowered has work to do.
    async fn archive_accounts_over(&self, keep: u64) -> Result<Vec<AccountId>, StoreError>;
}

/// The owner row of an account's archive.
static OWNER_OF_ACCOUNT: Sql = Sql::new(
    "SELECT o.id FROM archive_owners o JOIN accounts a ON a.id = o.account_id \
     WHERE a.domain = ? AND a.username = ?",
);

/// The owner row of a room's archive: one that names no account.
static OWNER_OF_ROOM: Sql =
    Sql::new("SELECT id FROM archive_owners WHERE jid = ? AND account_id IS NULL");

/// Creates it (nothing when another writer just did).
static NEW_ROOM_OWNER: Sql =
    Sql::new("INSERT INTO archive_owners (jid) VALUES (?) ON CONFLICT (jid) DO NOTHING");

/// The messages go with it (`ON DELETE CASCADE`).
static REMOVE_ROOM_OWNER: Sql =
    Sql::new("DELETE FROM archive_owners WHERE jid = ? AND account_id IS NULL");

/// Rooms' archives on a service's domain (its JIDs end in `@domain`).
static ROOM_OWNERS: Sql =
    Sql::new("SELECT jid FROM archive_owners WHERE account_id IS NULL AND jid LIKE ? ESCAPE '\\'");

/// Creates it (nothing when the account is missing, or another writer just did).
static NEW_OWNER: Sql = Sql::new(
    "INSERT INTO archive_owners (jid, account_id) SELECT ?, id FROM accounts \
     WHERE domain = ? AND username = ? ON CONFLICT (jid) DO NOTHING",
);

/// The owner rows of a batch's archives, by JID (the `archive_owners.jid` index): an
/// account's row names it (`account_id`), a room's names none. One `?` per JID, then `)`.
const OWNERS_BY_JID: &str = "SELECT jid, id, account_id FROM archive_owners WHERE jid IN (";

/// Creates the owner rows a batch lacks, each `(jid, domain, username)` of the VALUES
/// list: an account's (domain and username set) only when the account exists, a room's
/// (both NULL) always; a row another writer just made stays as it is. Both dialects name a
/// VALUES list's columns `column1`, `column2`, …; SQLite wants the WHERE before an upsert's
/// ON CONFLICT after a SELECT (the "parsing ambiguity" of its upsert).
const NEW_OWNERS: (&str, &str) = (
    "INSERT INTO archive_owners (jid, account_id) SELECT v.column1, a.id FROM (VALUES ",
    ") AS v LEFT JOIN accounts a ON a.domain = v.column2 AND a.username = v.column3 \
     WHERE v.column2 IS NULL OR a.id IS NOT NULL ON CONFLICT (jid) DO NOTHING",
);

/// Appends rows: the head, one `(?, ?, ?, ?, ?, ?, ?)` per row, then the tail; per dialect
/// (see `archive_store!(@append …)`). A batch tried again after a commit whose outcome
/// was never known (the connection to PostgreSQL dropped during it) finds its rows there:
/// kept once. On SQLite `OR IGNORE` says the same of the `(owner_id, id)` index, and of the
/// NOT NULL and CHECK constraints, which the bound values always meet: with no constraint
/// left that could abort the statement half way, SQLite keeps no statement journal of the
/// pages a multi-row INSERT changes (a copy of each page before its first change in each
/// statement, which was a tenth of the writer's time). The writer's connection checks no
/// foreign keys either (`sqlite_writer.rs`), the other constraint that could abort.
const APPEND_SQLITE: (&str, &str) = (
    "INSERT OR IGNORE INTO archive \
     (owner_id, id, with_jid, with_resource, outgoing, stamp, stanza) VALUES ",
    "",
);
const APPEND_POSTGRES: (&str, &str) = (
    "INSERT INTO archive \
     (owner_id, id, with_jid, with_resource, outgoing, stamp, stanza) VALUES ",
    " ON CONFLICT (owner_id, id) DO NOTHING",
);

/// How many rows one multi-row statement of a batch takes at most, and so the sizes of
/// its statements: powers of two up to it, a batch of n rows being n's binary digits
/// (100 = 64 + 32 + 4), so a handful of texts are ever prepared (and stay in the
/// connection's statement cache). 1024 rows of seven values bind 7,168, under the
/// bundled SQLite's 32,766 and PostgreSQL's 65,535; a batch of a few thousand rows takes
/// a few statements, each setting up its bindings and pages once.
const ROWS_PER_STATEMENT: usize = 1024;

/// `n`'s sizes of statements (see [`ROWS_PER_STATEMENT`]), largest first.
fn statement_sizes(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let size = if n >= ROWS_PER_STATEMENT {
            ROWS_PER_STATEMENT
        } else if n > 0 {
            1 << n.ilog2()
        } else {
            return None;
        };
        n -= size;
        Some(size)
    })
}

/// `head`, `rows` times `tuple` separated by commas, then `tail`.
fn multi_row(head: &str, tuple: &str, rows: usize, tail: &str) -> String {
    let mut text = String::with_capacity(head.len() + rows * (tuple.len() + 2) + tail.len());
    text.push_str(head);
    for n in 0..rows {
        if n > 0 {
            text.push_str(", ");
        }
        text.push_str(tuple);
    }
    text.push_str(tail);
    text
}

static PLACE_OF: Sql = Sql::new("SELECT seq FROM archive WHERE owner_id = ? AND id = ?");

static PREFS: Sql = Sql::new(
    "SELECT o.prefs FROM archive_owners o JOIN accounts a ON a.id = o.account_id \
     WHERE a.domain = ? AND a.username = ?",
);

static SET_PREFS: Sql = Sql::new("UPDATE archive_owners SET prefs = ? WHERE id = ?");

/// The oldest message of all: expiry has nothing to do while it is young enough, which
/// spares a scan of the whole table at every tick.
static OLDEST_STAMP: Sql = Sql::new("SELECT stamp FROM archive ORDER BY seq LIMIT 1");

/// Rows are appended in time order, so the ones to expire are at the start of `seq`.
static EXPIRE: Sql = Sql::new(
    "DELETE FROM archive WHERE seq IN \
     (SELECT seq FROM archive WHERE stamp < ? ORDER BY seq LIMIT ?)",
);

/// The owner's rows up to its `keep + 1`-th newest, oldest first.
static TRIM: Sql = Sql::new(
    "DELETE FROM archive WHERE seq IN (SELECT seq FROM archive WHERE owner_id = ? AND seq <= \
     (SELECT seq FROM archive WHERE owner_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?) \
     ORDER BY seq LIMIT ?)",
);

/// Accounts with a message beyond their first `keep`: each owner's count stops at
/// `keep + 1` (the `(owner_id, seq)` index), rather than counting whole archives.
static ACCOUNTS_OVER: Sql = Sql::new(
    "SELECT a.username, a.domain FROM archive_owners o JOIN accounts a ON a.id = o.account_id \
     WHERE EXISTS (SELECT 1 FROM archive x WHERE x.owner_id = o.id ORDER BY x.seq LIMIT 1 OFFSET ?)",
);

/// An archive row as queries read it: id, with_jid, outgoing, stamp, stanza.
type ArchiveRow = (String, String, bool, i64, String);

/// A bound value of a statement built at run time.
enum Value {
    Int(i64),
    Text(String),
}

/// The text (with `?` placeholders) and values of one page's query, the places of the
/// after/before ids already resolved.
fn page_statement(
    owner_id: i64,
    query: &ArchiveQuery,
    after: Option<i64>,
    before: Option<i64>,
) -> (String, Vec<Value>) {
    let mut sql = String::from(
        "SELECT id, with_jid, outgoing, stamp, stanza FROM archive WHERE owner_id = ?",
    );
    let mut values = vec![Value::Int(owner_id)];
    let mut and = |clause: &str, value: Value| {
        sql.push_str(clause);
        values.push(value);
    };
    if let Some(with) = &query.with_jid {
        and(" AND with_jid = ?", Value::Text(with.clone()));
    }
    if let Some(resource) = &query.with_resource {
        and(" AND with_resource = ?", Value::Text(resource.clone()));
    }
    if let Some(start) = query.start {
        and(" AND stamp >= ?", Value::Int(start));
    }
    if let Some(end) = query.end {
        and(" AND stamp <= ?", Value::Int(end));
    }
    if let Some(after) = after {
        and(" AND seq > ?", Value::Int(after));
    }
    if let Some(before) = before {
        and(" AND seq < ?", Value::Int(before));
    }
    if let Some(ids) = &query.ids {
        sql.push_str(" AND id IN (");
        for (n, id) in ids.iter().enumerate() {
            sql.push_str(if n == 0 { "?" } else { ", ?" });
            values.push(Value::Text(id.clone()));
        }
        // An empty list matches nothing (and `IN ()` is no valid SQL).
        if ids.is_empty() {
            sql.push_str("NULL");
        }
        sql.push(')');
    }
    sql.push_str(if query.from_end {
        " ORDER BY seq DESC LIMIT ?"
    } else {
        " ORDER BY seq LIMIT ?"
    });
    values.push(Value::Int(i64::try_from(query.limit).unwrap_or(i64::MAX)));
    (sql, values)
}

fn message_from_row((id, with_jid, outgoing, stamp, stanza): ArchiveRow) -> ArchivedMessage {
    ArchivedMessage {
        id,
        with_jid,
        outgoing,
        stamp,
        stanza,
    }
}

fn owner_jid(owner: &AccountId) -> String {
    format!("{}@{}", owner.username, owner.domain)
}

/// The JID an archive's owner row names.
fn jid_of(owner: &ArchiveOwner) -> Cow<'_, str> {
    match owner {
        ArchiveOwner::Account(account) => Cow::Owned(owner_jid(account)),
        ArchiveOwner::Room(room) => Cow::Borrowed(room),
    }
}

fn limit_value(limit: u64) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// [`ArchiveStore`] for a backend: `$dialect` names the statements' text (`sqlite` or
/// `postgres`); the store provides `reader()`, `begin_write()`, `durable_writer()`,
/// `begin_durable()` and `release_durable()`.
macro_rules! archive_store {
    ($store:ty, $dialect:ident, $conn:ty) => {
        impl $store {
            /// The archive owner row of an account or a room, created on first use; None
            /// when there is no such account.
            async fn archive_owner(
                conn: &mut $conn,
                owner: &ArchiveOwner,
            ) -> Result<Option<i64>, StoreError> {
                let owner = match owner {
                    ArchiveOwner::Account(account) => account,
                    ArchiveOwner::Room(room) => {
                        let found = Self::existing_owner(&mut *conn, owner).await?;
                        if found.is_some() {
                            return Ok(found);
                        }
                        sqlx::query(NEW_ROOM_OWNER.$dialect())
                            .bind(room)
                            .execute(&mut *conn)
                            .await?;
                        return Self::existing_owner(&mut *conn, owner).await;
                    }
                };
                let found: Option<i64> = sqlx::query_scalar(OWNER_OF_ACCOUNT.$dialect())
                    .bind(&owner.domain)
                    .bind(&owner.username)
                    .fetch_optional(&mut *conn)
                    .await?;
                if found.is_some() {
                    return Ok(found);
                }
                sqlx::query(NEW_OWNER.$dialect())
                    .bind(owner_jid(owner))
                    .bind(&owner.domain)
                    .bind(&owner.username)
                    .execute(&mut *conn)
                    .await?;
                Ok(sqlx::query_scalar(OWNER_OF_ACCOUNT.$dialect())
                    .bind(&owner.domain)
                    .bind(&owner.username)
                    .fetch_optional(&mut *conn)
                    .await?)
            }
        }

        impl $store {
            /// The owner rows the archives of `owners` have, in one statement per
            /// [`ROWS_PER_STATEMENT`] owners.
            async fn owner_ids<'o>(
                conn: &mut $conn,
                owners: &[&'o ArchiveOwner],
            ) -> Result<HashMap<&'o ArchiveOwner, i64>, StoreError> {
                let mut found = HashMap::with_capacity(owners.len());
                let mut rest = owners;
                for size in statement_sizes(owners.len()) {
                    let (chunk, after) = rest.split_at(size);
                    rest = after;
                    let jids: Vec<Cow<'_, str>> = chunk.iter().map(|o| jid_of(o)).collect();
                    let text = multi_row(OWNERS_BY_JID, "?", size, ")");
                    let text = archive_store!(@text $dialect, text);
                    let mut statement = sqlx::query_as::<_, (String, i64, Option<i64>)>(&text);
                    for jid in &jids {
                        statement = statement.bind(jid.as_ref());
                    }
                    let rows: HashMap<String, (i64, bool)> = statement
                        .fetch_all(&mut *conn)
                        .await?
                        .into_iter()
                        .map(|(jid, id, account)| (jid, (id, account.is_some())))
                        .collect();
                    for (owner, jid) in chunk.iter().zip(&jids) {
                        // An account's archive is no room's, whatever its JID.
                        let is_account = matches!(owner, ArchiveOwner::Account(_));
                        match rows.get(jid.as_ref()) {
                            Some((id, account)) if *account == is_account => {
                                found.insert(*owner, *id);
                            }
                            _ => {}
                        }
                    }
                }
                Ok(found)
            }

            /// Creates the owner rows of `owners` (see [`NEW_OWNERS`]).
            async fn new_owners(
                conn: &mut $conn,
                owners: &[&ArchiveOwner],
            ) -> Result<(), StoreError> {
                let mut rest = owners;
                for size in statement_sizes(owners.len()) {
                    let (chunk, after) = rest.split_at(size);
                    rest = after;
                    let text = multi_row(NEW_OWNERS.0, "(?, ?, ?)", size, NEW_OWNERS.1);
                    let text = archive_store!(@text $dialect, text);
                    let mut statement = sqlx::query(&text);
                    for owner in chunk {
                        let (domain, username) = match owner {
                            ArchiveOwner::Account(a) => {
                                (Some(a.domain.as_str()), Some(a.username.as_str()))
                            }
                            ArchiveOwner::Room(_) => (None, None),
                        };
                        statement = statement.bind(jid_of(owner)).bind(domain).bind(username);
                    }
                    statement.execute(&mut *conn).await?;
                }
                Ok(())
            }
        }

        impl $store {
            /// The archive owner row of an account or a room, if it has one.
            async fn existing_owner(
                conn: &mut $conn,
                owner: &ArchiveOwner,
            ) -> Result<Option<i64>, StoreError> {
                Ok(match owner {
                    ArchiveOwner::Account(account) => {
                        sqlx::query_scalar(OWNER_OF_ACCOUNT.$dialect())
                            .bind(&account.domain)
                            .bind(&account.username)
                            .fetch_optional(&mut *conn)
                            .await?
                    }
                    ArchiveOwner::Room(room) => {
                        sqlx::query_scalar(OWNER_OF_ROOM.$dialect())
                            .bind(room)
                            .fetch_optional(&mut *conn)
                            .await?
                    }
                })
            }
        }

        #[async_trait::async_trait]
        impl ArchiveStore for $store {
            async fn archive_append(
                &self,
                messages: &[NewArchived],
            ) -> Result<Vec<bool>, StoreError> {
                if messages.is_empty() {
                    return Ok(Vec::new());
                }
                // Each message's owner hashed once: its place in `distinct`, by which the
                // owner's row id is found below (a batch is thousands of messages of a
                // few hundred owners).
                let mut distinct: Vec<&ArchiveOwner> = Vec::new();
                let mut place: HashMap<&ArchiveOwner, usize> = HashMap::new();
                let owner_of: Vec<usize> = messages
                    .iter()
                    .map(|message| {
                        *place.entry(&message.owner).or_insert_with(|| {
                            distinct.push(&message.owner);
                            distinct.len() - 1
                        })
                    })
                    .collect();
                let mut conn = self.durable_writer().await?;
                let result = async {
                    let mut tx = Self::begin_durable(&mut conn).await?;
                    let mut ids = Self::owner_ids(&mut tx, &distinct).await?;
                    let missing: Vec<&ArchiveOwner> = distinct
                        .iter()
                        .copied()
                        .filter(|owner| !ids.contains_key(owner))
                        .collect();
                    if !missing.is_empty() {
                        Self::new_owners(&mut tx, &missing).await?;
                        ids.extend(Self::owner_ids(&mut tx, &missing).await?);
                    }
                    let row_ids: Vec<Option<i64>> =
                        distinct.iter().map(|owner| ids.get(owner).copied()).collect();
                    let rows: Vec<(i64, &NewArchived)> = owner_of
                        .iter()
                        .zip(messages)
                        .filter_map(|(place, m)| row_ids[*place].map(|id| (id, m)))
                        .collect();
                    let mut rest = &rows[..];
                    for size in statement_sizes(rows.len()) {
                        let (chunk, after) = rest.split_at(size);
                        rest = after;
                        let (head, tail) = archive_store!(@append $dialect);
                        let text = multi_row(head, "(?, ?, ?, ?, ?, ?, ?)", size, tail);
                        let text = archive_store!(@text $dialect, text);
                        let mut statement = sqlx::query(&text);
                        for (owner_id, message) in chunk {
                            statement = statement
                                .bind(*owner_id)
                                .bind(&message.id)
                                .bind(&message.with_jid)
                                .bind(&message.with_resource)
                                .bind(message.outgoing)
                                .bind(message.stamp)
                                .bind(&message.stanza);
                        }
                        statement.execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok::<_, StoreError>(
                        owner_of.iter().map(|place| row_ids[*place].is_some()).collect(),
                    )
                }
                .await;
                Self::release_durable(conn, result.is_err()).await;
                result
            }

            async fn archive_query(
                &self,
                owner: &ArchiveOwner,
                query: &ArchiveQuery,
            ) -> Result<Vec<ArchivedMessage>, StoreError> {
                let mut conn = self.reader().await?;
                let owner_id = Self::existing_owner(&mut conn, owner).await?;
                let Some(owner_id) = owner_id else {
                    // Nothing archived yet: no id can be known either.
                    if query.after.is_some() || query.before.is_some() {
                        return Err(StoreError::UnknownArchiveId);
                    }
                    return Ok(Vec::new());
                };
                let mut places = [None, None];
                for (place, id) in places.iter_mut().zip([&query.after, &query.before]) {
                    if let Some(id) = id {
                        let seq: Option<i64> = sqlx::query_scalar(PLACE_OF.$dialect())
                            .bind(owner_id)
                            .bind(id)
                            .fetch_optional(&mut *conn)
                            .await?;
                        *place = Some(seq.ok_or(StoreError::UnknownArchiveId)?);
                    }
                }
                let (text, values) = page_statement(owner_id, query, places[0], places[1]);
                let text = archive_store!(@text $dialect, text);
                let mut statement = sqlx::query_as::<_, ArchiveRow>(&text);
                for value in values {
                    statement = match value {
                        Value::Int(n) => statement.bind(n),
                        Value::Text(s) => statement.bind(s),
                    };
                }
                let rows = statement.fetch_all(&mut *conn).await?;
                let mut page: Vec<ArchivedMessage> =
                    rows.into_iter().map(message_from_row).collect();
                if query.from_end {
                    page.reverse();
                }
                Ok(page)
            }

            async fn remove_room_archive(&self, room: &str) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(REMOVE_ROOM_OWNER.$dialect())
                    .bind(room)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn room_archives(&self, domain: &str) -> Result<Vec<String>, StoreError> {
                // LIKE's own wildcards in a domain name match only themselves.
                let escaped = domain
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                Ok(sqlx::query_scalar(ROOM_OWNERS.$dialect())
                    .bind(format!("%@{escaped}"))
                    .fetch_all(&mut *self.reader().await?)
                    .await?)
            }

            async fn archive_prefs(
                &self,
                owner: &AccountId,
            ) -> Result<Option<String>, StoreError> {
                let prefs: Option<Option<String>> = sqlx::query_scalar(PREFS.$dialect())
                    .bind(&owner.domain)
                    .bind(&owner.username)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                Ok(prefs.flatten())
            }

            async fn set_archive_prefs(
                &self,
                owner: &AccountId,
                prefs: &str,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                let owner_id = Self::archive_owner(&mut *tx, &ArchiveOwner::from(owner))
                    .await?
                    .ok_or(StoreError::NotFound)?;
                sqlx::query(SET_PREFS.$dialect())
                    .bind(prefs)
                    .bind(owner_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn archive_expire(&self, stamp: i64, limit: u64) -> Result<u64, StoreError> {
                let oldest: Option<i64> = sqlx::query_scalar(OLDEST_STAMP.$dialect())
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                if oldest.is_none_or(|oldest| oldest >= stamp) {
                    return Ok(0);
                }
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(EXPIRE.$dialect())
                    .bind(stamp)
                    .bind(limit_value(limit))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }

            async fn archive_trim(
                &self,
                owner: &AccountId,
                keep: u64,
                limit: u64,
            ) -> Result<u64, StoreError> {
                let mut tx = self.begin_write().await?;
                let owner_id: Option<i64> = sqlx::query_scalar(OWNER_OF_ACCOUNT.$dialect())
                    .bind(&owner.domain)
                    .bind(&owner.username)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(owner_id) = owner_id else {
                    return Ok(0);
                };
                let done = sqlx::query(TRIM.$dialect())
                    .bind(owner_id)
                    .bind(owner_id)
                    .bind(limit_value(keep))
                    .bind(limit_value(limit))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }

            async fn archive_accounts_over(
                &self,
                keep: u64,
            ) -> Result<Vec<AccountId>, StoreError> {
                let rows: Vec<(String, String)> = sqlx::query_as(ACCOUNTS_OVER.$dialect())
                    .bind(limit_value(keep))
                    .fetch_all(&mut *self.reader().await?)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(username, domain)| AccountId::new(username, domain))
                    .collect())
            }
        }
    };
    (@append sqlite) => {
        APPEND_SQLITE
    };
    (@append postgres) => {
        APPEND_POSTGRES
    };
    (@text sqlite, $text:ident) => {
        $text
    };
    (@text postgres, $text:ident) => {
        numbered(&$text)
    };
}

archive_store!(SqliteStore, sqlite, sqlx::SqliteConnection);
archive_store!(PostgresStore, postgres, sqlx::PgConnection);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_cut_into_few_statements_of_few_sizes() {
        let sizes = |n| statement_sizes(n).collect::<Vec<_>>();
        assert!(sizes(0).is_empty());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(100), [64, 32, 4]);
        assert_eq!(sizes(300), [256, 32, 8, 4]);
        assert_eq!(sizes(3000), [1024, 1024, 512, 256, 128, 32, 16, 8]);
        for n in 0..=3000 {
            assert_eq!(sizes(n).iter().sum::<usize>(), n);
        }
    }
}
