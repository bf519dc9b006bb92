//! Helpers shared by the backends: the parts of a row mapping that do not
//! depend on the SQL dialect.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::account::{ScramCredential, ScramHash};
use crate::offline::OfflineMessage;
use crate::roster::{RosterEntry, Subscription};
use crate::StoreError;

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
