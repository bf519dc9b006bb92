//! The one error type of the storage layer.

/// What can go wrong in a store operation.
///
/// `AlreadyExists` and `NotFound` are the outcomes a caller is expected to
/// handle (registration of a taken name, password change of a removed
/// account); the rest are operational failures to log and report as an
/// internal error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("account already exists")]
    AlreadyExists,
    #[error("no such account")]
    NotFound,
    /// An archive query named a message id its archive does not hold (XEP-0313 §4.3.2:
    /// `item-not-found`).
    #[error("no such archived message")]
    UnknownArchiveId,
    #[error("unsupported database URL {0:?} (expected sqlite:… or postgres://…)")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// The database ran out of space (SQLite `SQLITE_FULL`, PostgreSQL class 53
    /// "insufficient resources", e.g. 53100 `disk_full`): the request was sound and may
    /// succeed later, once an operator freed space.
    pub fn is_out_of_space(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(e)) = self else {
            return false;
        };
        match e.code() {
            // SQLite reports its primary result code (13) or an extended one whose low
            // byte is 13.
            Some(code) => {
                code.parse::<i32>().is_ok_and(|c| c & 0xff == 13) || code.starts_with("53")
            }
            None => false,
        }
    }
}
