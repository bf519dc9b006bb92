//! The SQLite store's files on disk: who may read them, and one creator at a time.
//!
//! The database holds SCRAM keys and every user's roster and offline messages, so its
//! directory is created private (0700) and the file, with SQLite's `-wal` and `-shm` files
//! (which SQLite creates with the database file's mode), is 0600.
//!
//! Two processes opening a fresh file at once (the server's first start and a `jabberwock
//! user add`) would both find no schema and both run the migrations; the second fails on
//! tables the first created. sqlx's migrator takes no lock on SQLite, so the store takes
//! one: an exclusive lock on `<database>.lock` around creating, migrating and opening.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::StoreError;

/// Held while the database is created and migrated; unlocked when dropped.
pub(crate) struct OpenLock(#[allow(dead_code)] File);

fn io(e: std::io::Error) -> StoreError {
    StoreError::Database(sqlx::Error::Io(e))
}

/// Creates the directory (private) and the database file (0600) when missing, tightens
/// the modes of existing database files, and waits for the open lock.
pub(crate) async fn prepare(path: &Path) -> Result<OpenLock, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // A first start with `data/jabberwock.db` should just work; SQLite itself creates
        // the file but not its directory. Only directories created here get the mode: an
        // existing one is the administrator's choice.
        let mut dirs = std::fs::DirBuilder::new();
        dirs.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
        dirs.create(parent).map_err(io)?;
    }
    let lock = private_file(&with_suffix(path, ".lock"))?;
    // `File::lock` blocks: off the async threads.
    let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
        .await
        .map_err(|e| io(std::io::Error::other(e)))?
        .map_err(io)?;
    drop(private_file(path)?);
    for suffix in ["-wal", "-shm"] {
        let file = with_suffix(path, suffix);
        if file.exists() {
            restrict(&file);
        }
    }
    restrict(path);
    Ok(OpenLock(lock))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Opens `path`, creating it with mode 0600 when missing.
fn private_file(path: &Path) -> Result<File, StoreError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(io)
}

/// Takes group and other permissions away from an existing file (from an older version,
/// created 0644). Not fatal: a file we may use but not chmod (another owner) still works.
fn restrict(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            let private = std::fs::Permissions::from_mode(mode & 0o700);
            if let Err(e) = std::fs::set_permissions(path, private) {
                tracing::warn!(file = %path.display(), error = %e, "could not make the file private");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
