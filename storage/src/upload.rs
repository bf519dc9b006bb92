//! HTTP file uploads (XEP-0363): the [`UploadStore`] trait, its statements, and its one
//! implementation for both backends.

use crate::common::Sql;
use crate::{AccountId, PostgresStore, SqliteStore, StoreError};

/// A slot a user was given, and the file once its upload completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSlot {
    /// Random and unguessable: the URL path segment and the file's name on disk.
    pub id: String,
    pub owner: AccountId,
    pub filename: String,
    /// Bytes the PUT must carry, exactly.
    pub size: i64,
    /// The content type the PUT must declare, if the request named one.
    pub content_type: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which no PUT is taken.
    pub slot_expires_at: i64,
    /// Unix seconds the upload completed; `None` while the slot waits.
    pub completed_at: Option<i64>,
}

/// Whether a slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotGranted {
    Granted,
    /// The owner's complete files plus this one would pass the quota; `used` is what the
    /// complete files take.
    QuotaExceeded {
        used: i64,
    },
}

/// What completing an upload found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadCompleted {
    Completed,
    /// Another PUT completed the slot first.
    AlreadyComplete,
    /// The slot is gone (expired and swept).
    Unknown,
    /// The owner's complete files plus this one would pass the quota.
    QuotaExceeded {
        used: i64,
    },
}

/// Upload slots and the files they became. Writes hold the owner's account (PostgreSQL
/// locks its row, SQLite's write lock is the database's), so a quota holds when several
/// uploads of one user complete at once, from one process or several. Rows name their
/// owner, with no foreign key to the account: removing an account leaves them, and the
/// upload module removes them with their files ([`UploadStore::remove_account_uploads`]).
#[async_trait::async_trait]
pub trait UploadStore: Send + Sync {
    /// Records a new slot, if the owner's complete files plus `slot.size` fit in `quota`
    /// (`None`: no quota). NotFound if the owner has no account.
    async fn add_upload_slot(
        &self,
        slot: &UploadSlot,
        quota: Option<i64>,
    ) -> Result<SlotGranted, StoreError>;

    /// The slot `id`, complete or waiting.
    async fn upload_slot(&self, id: &str) -> Result<Option<UploadSlot>, StoreError>;

    /// Marks `slot` complete at `now` if the owner's complete files plus this one fit in
    /// `quota`. NotFound if the owner's account is gone.
    async fn complete_upload(
        &self,
        slot: &UploadSlot,
        now: i64,
        quota: Option<i64>,
    ) -> Result<UploadCompleted, StoreError>;

    /// Bytes the owner's complete files take.
    async fn upload_usage(&self, owner: &AccountId) -> Result<i64, StoreError>;

    /// At most `limit` ids due to go, oldest first by id order: waiting slots whose
    /// deadline is before `slots_before`, and complete files that completed before
    /// `files_before`.
    async fn expired_uploads(
        &self,
        slots_before: i64,
        files_before: i64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Forgets these slots and files (their bytes on disk are the caller's).
    async fn remove_uploads(&self, ids: &[String]) -> Result<(), StoreError>;

    /// Forgets every slot and file of `owner` (a removed account's), waiting or complete,
    /// and names them, in id order: their bytes on disk are the caller's.
    async fn remove_account_uploads(&self, owner: &AccountId) -> Result<Vec<String>, StoreError>;
}

static INSERT_SLOT: Sql = Sql::new(
    "INSERT INTO uploads (id, username, domain, filename, size, content_type, created_at, \
     slot_expires_at, completed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
);

static SELECT_SLOT: Sql = Sql::new(
    "SELECT id, username, domain, filename, size, content_type, created_at, \
     slot_expires_at, completed_at FROM uploads WHERE id = ?",
);

/// CAST: PostgreSQL sums BIGINTs into a NUMERIC.
static USAGE: Sql = Sql::new(
    "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM uploads \
     WHERE domain = ? AND username = ? AND completed_at IS NOT NULL",
);

static COMPLETED_AT: Sql = Sql::new("SELECT completed_at FROM uploads WHERE id = ?");

static COMPLETE: Sql = Sql::new("UPDATE uploads SET completed_at = ? WHERE id = ?");

static EXPIRED: Sql = Sql::new(
    "SELECT id FROM uploads WHERE (completed_at IS NULL AND slot_expires_at < ?) \
     OR (completed_at IS NOT NULL AND completed_at < ?) ORDER BY id LIMIT ?",
);

static DELETE: Sql = Sql::new("DELETE FROM uploads WHERE id = ?");

/// No ORDER BY on a DELETE's RETURNING: the caller sorts.
static DELETE_OWNER: Sql =
    Sql::new("DELETE FROM uploads WHERE domain = ? AND username = ? RETURNING id");

type SlotRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    i64,
    i64,
    Option<i64>,
);

fn slot_from_row(row: SlotRow) -> UploadSlot {
    let (id, username, domain, filename, size, content_type, created, expires, completed) = row;
    UploadSlot {
        id,
        owner: AccountId { username, domain },
        filename,
        size,
        content_type,
        created_at: created,
        slot_expires_at: expires,
        completed_at: completed,
    }
}

/// Whether `used + size` is within `quota`.
fn fits(used: i64, size: i64, quota: Option<i64>) -> bool {
    quota.is_none_or(|quota| used.saturating_add(size) <= quota)
}

/// [`UploadStore`] for a backend: `$dialect` names the statements' text (`sqlite` or
/// `postgres`); the store provides `reader()` and `begin_account_write()`.
macro_rules! upload_store {
    ($store:ty, $dialect:ident) => {
        #[async_trait::async_trait]
        impl UploadStore for $store {
            async fn add_upload_slot(
                &self,
                slot: &UploadSlot,
                quota: Option<i64>,
            ) -> Result<SlotGranted, StoreError> {
                let (mut tx, _) = self.begin_account_write(&slot.owner).await?;
                let used: i64 = sqlx::query_scalar(USAGE.$dialect())
                    .bind(&slot.owner.domain)
                    .bind(&slot.owner.username)
                    .fetch_one(&mut *tx)
                    .await?;
                if !fits(used, slot.size, quota) {
                    return Ok(SlotGranted::QuotaExceeded { used });
                }
                sqlx::query(INSERT_SLOT.$dialect())
                    .bind(&slot.id)
                    .bind(&slot.owner.username)
                    .bind(&slot.owner.domain)
                    .bind(&slot.filename)
                    .bind(slot.size)
                    .bind(&slot.content_type)
                    .bind(slot.created_at)
                    .bind(slot.slot_expires_at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(SlotGranted::Granted)
            }

            async fn upload_slot(&self, id: &str) -> Result<Option<UploadSlot>, StoreError> {
                let row: Option<SlotRow> = sqlx::query_as(SELECT_SLOT.$dialect())
                    .bind(id)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                Ok(row.map(slot_from_row))
            }

            async fn complete_upload(
                &self,
                slot: &UploadSlot,
                now: i64,
                quota: Option<i64>,
            ) -> Result<UploadCompleted, StoreError> {
                let (mut tx, _) = self.begin_account_write(&slot.owner).await?;
                let completed: Option<Option<i64>> = sqlx::query_scalar(COMPLETED_AT.$dialect())
                    .bind(&slot.id)
                    .fetch_optional(&mut *tx)
                    .await?;
                match completed {
                    None => return Ok(UploadCompleted::Unknown),
                    Some(Some(_)) => return Ok(UploadCompleted::AlreadyComplete),
                    Some(None) => {}
                }
                let used: i64 = sqlx::query_scalar(USAGE.$dialect())
                    .bind(&slot.owner.domain)
                    .bind(&slot.owner.username)
                    .fetch_one(&mut *tx)
                    .await?;
                if !fits(used, slot.size, quota) {
                    return Ok(UploadCompleted::QuotaExceeded { used });
                }
                sqlx::query(COMPLETE.$dialect())
                    .bind(now)
                    .bind(&slot.id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(UploadCompleted::Completed)
            }

            async fn upload_usage(&self, owner: &AccountId) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(USAGE.$dialect())
                    .bind(&owner.domain)
                    .bind(&owner.username)
                    .fetch_one(&mut *self.reader().await?)
                    .await?)
            }

            async fn expired_uploads(
                &self,
                slots_before: i64,
                files_before: i64,
                limit: i64,
            ) -> Result<Vec<String>, StoreError> {
                Ok(sqlx::query_scalar(EXPIRED.$dialect())
                    .bind(slots_before)
                    .bind(files_before)
                    .bind(limit)
                    .fetch_all(&mut *self.reader().await?)
                    .await?)
            }

            async fn remove_uploads(&self, ids: &[String]) -> Result<(), StoreError> {
                if ids.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin_write().await?;
                for id in ids {
                    sqlx::query(DELETE.$dialect())
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn remove_account_uploads(
                &self,
                owner: &AccountId,
            ) -> Result<Vec<String>, StoreError> {
                let mut tx = self.begin_write().await?;
                let mut ids: Vec<String> = sqlx::query_scalar(DELETE_OWNER.$dialect())
                    .bind(&owner.domain)
                    .bind(&owner.username)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                ids.sort();
                Ok(ids)
            }
        }
    };
}

upload_store!(SqliteStore, sqlite);
upload_store!(PostgresStore, postgres);
