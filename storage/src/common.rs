//! Helpers shared by the backends: the parts of a row mapping that do not
//! depend on the SQL dialect.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::FromRow as _;

use crate::account::{AccountId, ScramCredential, ScramHash};
use crate::offline::OfflineMessage;
use crate::roster::{RosterEntry, Subscription};
use crate::StoreError;

/// A statement written once, for both backends: the text uses SQLite's `?` placeholders,
/// and PostgreSQL gets it with them numbered (`$1`, `$2`, …) in order. The texts are ours
/// and put no `?` inside literals.
pub(crate) struct Sql {
    text: &'static str,
    /// Appended for PostgreSQL only: a clause SQLite has no use for (a row lock).
    postgres_tail: &'static str,
    numbered: OnceLock<String>,
}

impl Sql {
    pub(crate) const fn new(text: &'static str) -> Sql {
        Sql::with_postgres_tail(text, "")
    }

    /// `text`, to which PostgreSQL's version adds `tail` (which holds no placeholder).
    pub(crate) const fn with_postgres_tail(text: &'static str, tail: &'static str) -> Sql {
        Sql {
            text,
            postgres_tail: tail,
            numbered: OnceLock::new(),
        }
    }

    pub(crate) fn sqlite(&self) -> &'static str {
        self.text
    }

    pub(crate) fn postgres(&self) -> &str {
        self.numbered.get_or_init(|| {
            let mut out = numbered(self.text);
            out.push_str(self.postgres_tail);
            out
        })
    }
}

/// A statement's text with SQLite's `?` placeholders numbered for PostgreSQL (`$1`, `$2`,
/// …), for statements built at run time (an archive query's filters); the same rule as
/// [`Sql`]: the texts are ours and put no `?` inside literals.
pub(crate) fn numbered(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut n = 0;
    for c in text.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// The account a write belongs to, read inside the write's transaction (no row: NotFound).
/// PostgreSQL locks the row too, as its roster and offline writes do: writes to one
/// account then run one at a time, and a write that meets a concurrent removal of the
/// account waits for it and finds no account, instead of failing on the foreign key. A
/// SQLite write transaction holds the database's one write lock already.
pub(crate) static ACCOUNT_FOR_WRITE: Sql = Sql::with_postgres_tail(
    "SELECT id FROM accounts WHERE domain = ? AND username = ?",
    " FOR UPDATE",
);

/// The roster query's one text: `$extra` adds columns after the ten roster columns (which
/// `roster_from_rows` reads by position), `$tail` goes after the WHERE clause.
macro_rules! roster_query {
    ($extra:literal, $tail:literal) => {
        concat!(
            "SELECT a.roster_version, e.contact, e.name, e.subscription, \
             e.pending_out, e.pending_in, e.approved, e.in_roster, e.pending_in_stanza, g.name",
            $extra,
            " FROM accounts a \
             LEFT JOIN roster_entries e ON e.account_id = a.id \
             LEFT JOIN roster_groups g ON g.account_id = e.account_id AND g.contact = e.contact \
             WHERE a.domain = ? AND a.username = ?",
            $tail
        )
    };
}
pub(crate) use roster_query;

/// [`roster_query!`] with one more column: whether the account has offline messages, so a
/// login's presence broadcast and offline delivery check are one statement (XEP-0160: the
/// messages themselves are read only when some wait).
pub(crate) static PRESENCE_ROSTER_SELECT: Sql = Sql::new(roster_query!(
    ", EXISTS (SELECT 1 FROM offline_messages o WHERE o.account_id = a.id)",
    " ORDER BY e.contact, g.position"
));

/// The accounts whose roster entry for a contact says they share their presence with it
/// (`from` or `both`, RFC 6121 §4.3.2), found through the `roster_entries_contact` index.
pub(crate) static PRESENCE_SHARED_WITH: Sql = Sql::new(
    "SELECT a.username, a.domain FROM roster_entries e JOIN accounts a ON a.id = e.account_id \
     WHERE e.contact = ? AND e.subscription IN ('from', 'both') ORDER BY a.domain, a.username",
);

/// A new account, its roster version starting at the floor that removed accounts raised
/// (migration 0004, XEP-0237): the id comes back.
pub(crate) static INSERT_ACCOUNT: Sql = Sql::new(
    "INSERT INTO accounts (username, domain, created_at, roster_version) VALUES (?, ?, ?, \
     COALESCE((SELECT version FROM roster_version_floor WHERE id = 1), 0)) RETURNING id",
);

/// Before an account is removed: raise the floor above its roster version, so an account
/// of the same name created later starts past every version a client may have cached.
pub(crate) static RAISE_VERSION_FLOOR: Sql = Sql::new(
    "UPDATE roster_version_floor SET version = a.roster_version + 1 FROM accounts a \
     WHERE roster_version_floor.id = 1 AND a.domain = ? AND a.username = ? \
     AND a.roster_version + 1 > roster_version_floor.version",
);

/// Reads the rows of [`PRESENCE_ROSTER_SELECT`]: the ten roster columns, then the flag.
pub(crate) fn presence_roster_from_rows<R>(
    rows: &[R],
) -> Result<(Vec<RosterEntry>, bool), StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    bool: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    RosterRow: for<'r> sqlx::FromRow<'r, R>,
{
    // Every row repeats the account's flag; no row means no account, so nothing waits.
    let waiting = match rows.first() {
        Some(row) => row.try_get::<bool, _>(10)?,
        None => false,
    };
    let rows = rows
        .iter()
        .map(RosterRow::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((roster_from_rows(rows)?.1, waiting))
}

/// (username, domain) rows as account ids.
pub(crate) fn accounts_from_rows(rows: Vec<(String, String)>) -> Vec<AccountId> {
    rows.into_iter()
        .map(|(username, domain)| AccountId { username, domain })
        .collect()
}

/// The `scram_credentials` columns as both backends read them:
/// hash, salt, iterations, stored_key, server_key.
pub(crate) type CredentialRow = (String, Vec<u8>, i64, Vec<u8>, Vec<u8>);

pub(crate) fn unix_now() -> i64 {
    // A clock before 1970 is a broken host, not a reason to refuse sign-ups.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Values that this crate's own writes cannot produce (the CHECK constraints
/// forbid them) become a decode error rather than a panic.
pub(crate) fn credential_from_row(row: CredentialRow) -> Result<ScramCredential, StoreError> {
    let (hash_name, salt, iterations, stored_key, server_key) = row;
    let hash = ScramHash::from_name(&hash_name)
        .ok_or_else(|| decode_error(format!("unknown SCRAM hash {hash_name:?}")))?;
    let iterations = u32::try_from(iterations)
        .map_err(|_| decode_error(format!("SCRAM iteration count {iterations} out of range")))?;
    Ok(ScramCredential {
        hash,
        salt,
        iterations,
        stored_key,
        server_key,
    })
}

/// One row of the roster query of both backends: the account's roster
/// version, then the entry columns (contact, name, subscription, pending_out,
/// pending_in, approved, in_roster, pending_in_stanza) and one group name.
/// Entry columns are NULL for an account without entries (LEFT JOIN), the
/// group for an entry without groups.
pub(crate) type RosterRow = (
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<bool>,
    Option<bool>,
    Option<bool>,
    Option<bool>,
    Option<String>,
    Option<String>,
);

/// The roster query returns one row per (entry, group), ordered by contact
/// then group position; this folds them back into entries.
pub(crate) fn roster_from_rows(
    rows: Vec<RosterRow>,
) -> Result<(u64, Vec<RosterEntry>), StoreError> {
    let mut version = 0;
    let mut entries: Vec<RosterEntry> = Vec::new();
    for row in rows {
        let (ver, contact, name, sub, pending_out, pending_in, approved, in_roster, stanza, group) =
            row;
        version = version_from_db(ver)?;
        let Some(contact) = contact else {
            // The account's own row with no entry joined: only the version.
            continue;
        };
        let same = entries.last().is_some_and(|e| e.contact == contact);
        if !same {
            let sub = sub.unwrap_or_default();
            let subscription = Subscription::from_name(&sub)
                .ok_or_else(|| decode_error(format!("unknown subscription {sub:?}")))?;
            entries.push(RosterEntry {
                contact,
                name,
                groups: Vec::new(),
                subscription,
                pending_out: pending_out.unwrap_or_default(),
                pending_in: pending_in.unwrap_or_default(),
                approved: approved.unwrap_or_default(),
                in_roster: in_roster.unwrap_or_default(),
                pending_in_stanza: stanza,
            });
        }
        if let (Some(group), Some(entry)) = (group, entries.last_mut()) {
            entry.groups.push(group);
        }
    }
    Ok((version, entries))
}

/// Versions are stored signed (neither backend has an unsigned 64-bit
/// integer); the CHECK constraint keeps them non-negative.
pub(crate) fn version_from_db(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| decode_error(format!("roster version {v} out of range")))
}

/// COUNT(*) is signed in both backends, and never negative.
pub(crate) fn count_from_db(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The `offline_messages` columns as both backends read them: id, stanza, stored_at.
pub(crate) type OfflineRow = (i64, String, i64);

pub(crate) fn offline_from_row((id, stanza, stored_at): OfflineRow) -> OfflineMessage {
    OfflineMessage {
        id,
        stanza,
        stored_at,
    }
}

fn decode_error(msg: String) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(msg.into()))
}

/// Closes every connection of `pool`. sqlx's `Pool::close` can miss one: a connection
/// dropped just before it is still on its way back (a ping, from a spawned task), and if it
/// reaches the idle list after the close's last look there, it stays open until the process
/// exits, so SQLite never folds its WAL into the database file. Once the first close has
/// returned nothing is checked out or on its way back, so a second one finds any such
/// connection idle and closes it.
pub(crate) async fn close_pool<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) {
    pool.close().await;
    pool.close().await;
}
