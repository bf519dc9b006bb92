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
    #[error("unsupported database URL {0:?} (expected sqlite:… or postgres://…)")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}
