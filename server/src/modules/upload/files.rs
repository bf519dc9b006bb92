//! The uploaded files on disk: `data_dir/uploads/ID` once complete, `data_dir/uploads/tmp/
//! ID.part` while a PUT writes them. Only the slot id names a file (the client's filename
//! stays in storage), so no name a client chose reaches the file system.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jabberwock_storage::{AccountId, Store};
use rand::RngCore as _;

use super::UploadConfig;
use crate::live::Snapshot;
use crate::StartError;

/// Expired slots and files removed per batch, and batches per sweep: the rest waits for the
/// next sweep, so one sweep's work is bounded however much expired.
const SWEEP_BATCH: i64 = 500;
const SWEEP_BATCHES: usize = 20;
/// How often the sweep runs (and once at start).
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Bytes in a slot id (hex in URLs and file names).
const SLOT_ID_BYTES: usize = 16;

#[derive(Default)]
pub struct Files {
    /// `data_dir/uploads`, set at start.
    dir: OnceLock<PathBuf>,
}

/// A new slot id: 128 random bits, so a slot's URL can't be guessed (XEP-0363 §11.1).
pub fn new_slot_id() -> String {
    let mut bytes = [0u8; SLOT_ID_BYTES];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `id` has the form of a slot id (so it is safe as a file name).
pub fn is_slot_id(id: &str) -> bool {
    id.len() == SLOT_ID_BYTES * 2 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Files {
    /// Creates the directories (owner-only) and removes the temporary files a killed run
    /// left: their uploads never completed.
    pub fn prepare(&self, data_dir: &Path) -> Result<(), StartError> {
        let dir = dir_in(data_dir);
        let tmp = dir.join("tmp");
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| StartError::Uploads { path, source }
        };
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder.create(&tmp).map_err(err(&tmp))?;
        let mut removed = 0usize;
        for entry in std::fs::read_dir(&tmp).map_err(err(&tmp))? {
            let path = entry.map_err(err(&tmp))?.path();
            if std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(removed, "removed unfinished uploads left by the last run");
        }
        let _ = self.dir.set(dir);
        Ok(())
    }

    /// Where slot `id`'s complete file is (`None` before start).
    pub fn complete(&self, id: &str) -> Option<PathBuf> {
        Some(complete_in(self.dir.get()?, id))
    }

    /// Where slot `id`'s file is written until complete.
    pub fn partial(&self, id: &str) -> Option<PathBuf> {
        Some(partial_in(self.dir.get()?, id))
    }

    /// Runs the sweep now and every [`SWEEP_EVERY`], with the options in force then; first,
    /// once, removes the files no slot names any more.
    pub async fn sweep_forever(&self, store: Arc<dyn Store>, config: &Snapshot<UploadConfig>) {
        self.remove_orphans(store.as_ref()).await;
        let mut every = tokio::time::interval(SWEEP_EVERY);
        loop {
            every.tick().await;
            self.sweep(store.as_ref(), &config.get(), unix_now()).await;
        }
    }

    /// Removes, in bounded batches, the slots whose PUT never came in time and the files
    /// older than `expiry_days`: the bytes first, then the rows (a row without its file is
    /// served as gone; a file without a row would be kept forever).
    async fn sweep(&self, store: &dyn Store, config: &UploadConfig, now: i64) {
        let files_before = match config.expiry_days {
            0 => i64::MIN,
            days => now.saturating_sub((days as i64).saturating_mul(86_400)),
        };
        let Some(dir) = self.dir.get() else {
            return;
        };
        for _ in 0..SWEEP_BATCHES {
            let ids = match store.expired_uploads(now, files_before, SWEEP_BATCH).await {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::error!(error = %e, "expired uploads not listed");
                    return;
                }
            };
            for id in &ids {
                if let Err(NotRemoved { path, source }) = remove_bytes(dir, id).await {
                    tracing::error!(path = %path.display(), error = %source, "expired upload not removed");
                    return;
                }
            }
            if let Err(e) = store.remove_uploads(&ids).await {
                tracing::error!(error = %e, "expired uploads not forgotten");
                return;
            }
            if !ids.is_empty() {
                tracing::info!(removed = ids.len(), "removed expired uploads");
            }
            if (ids.len() as i64) < SWEEP_BATCH {
                return;
            }
        }
    }

    /// Removes the complete files whose slot storage no longer has: an expired or removed
    /// upload whose file could not be deleted then (that was only logged), found again
    /// after the next start. Every complete file had its slot row before it was written, so
    /// a file without one is nobody's. Files being written (`tmp/`) are not looked at.
    async fn remove_orphans(&self, store: &dyn Store) {
        let Some(dir) = self.dir.get() else {
            return;
        };
        let mut entries = match tokio::fs::read_dir(dir).await {
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!(path = %dir.display(), error = %e, "uploads not listed");
                return;
            }
        };
        let mut removed = 0usize;
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name();
            let Some(id) = name.to_str().filter(|name| is_slot_id(name)) else {
                continue;
            };
            match store.upload_slot(id).await {
                Ok(Some(_)) => {}
                Ok(None) => match remove_bytes(dir, id).await {
                    Ok(()) => removed += 1,
                    Err(NotRemoved { path, source }) => {
                        tracing::error!(path = %path.display(), error = %source, "upload file of no slot not removed");
                    }
                },
                Err(e) => {
                    tracing::error!(error = %e, "upload files not checked against their slots");
                    return;
                }
            }
        }
        if removed > 0 {
            tracing::info!(removed, "removed upload files that no slot names");
        }
    }
}

/// `data_dir/uploads`.
fn dir_in(data_dir: &Path) -> PathBuf {
    data_dir.join("uploads")
}

fn complete_in(dir: &Path, id: &str) -> PathBuf {
    dir.join(id)
}

fn partial_in(dir: &Path, id: &str) -> PathBuf {
    dir.join("tmp").join(format!("{id}.part"))
}

/// A file of an upload that is still on disk.
struct NotRemoved {
    path: PathBuf,
    source: std::io::Error,
}

/// Removes slot `id`'s bytes under `dir`, complete or being written; none there is fine.
/// An id that is not a slot id names no file of ours and is left alone.
async fn remove_bytes(dir: &Path, id: &str) -> Result<(), NotRemoved> {
    if !is_slot_id(id) {
        return Ok(());
    }
    for path in [complete_in(dir, id), partial_in(dir, id)] {
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(NotRemoved { path, source }),
        }
    }
    Ok(())
}

/// A removed account's uploads go with it, as ejabberd's do: an admin removing an
/// account (an erasure request) expects its files gone, not left until they expire. The
/// rows go first, so from then on nothing of the account's is served and no PUT to its
/// slots completes; then the bytes, each one tried even when another can't be removed
/// (that one is logged, and removed at the next start: `remove_orphans`). `data_dir`, not
/// the started service's directory: `jabberwock user remove` without a running server
/// starts no service.
pub async fn remove_account(store: &dyn Store, data_dir: &Path, owner: &AccountId) {
    let ids = match store.remove_account_uploads(owner).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::error!(user = %owner.username, domain = %owner.domain, error = %e, "uploads of a removed account not forgotten");
            return;
        }
    };
    let dir = dir_in(data_dir);
    let mut left = 0usize;
    for id in &ids {
        if let Err(NotRemoved { path, source }) = remove_bytes(&dir, id).await {
            tracing::error!(path = %path.display(), error = %source, "file of a removed account not removed");
            left += 1;
        }
    }
    if !ids.is_empty() {
        tracing::info!(user = %owner.username, domain = %owner.domain, removed = ids.len() - left, left, "removed the uploads of a removed account");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_ids() {
        let a = new_slot_id();
        assert!(is_slot_id(&a), "{a}");
        assert_ne!(a, new_slot_id());
        for bad in ["", "../etc/passwd", &a.to_uppercase(), &a[1..], "tmp"] {
            assert!(!is_slot_id(bad), "{bad}");
        }
    }
}
