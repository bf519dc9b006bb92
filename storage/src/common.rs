//! Helpers shared by the backends: the parts of a row mapping that do not
//! depend on the SQL dialect.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::account::{ScramCredential, ScramHash};
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

fn decode_error(msg: String) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(msg.into()))
}
