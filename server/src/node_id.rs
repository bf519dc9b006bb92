//! This server node's id: what the guest accounts it creates are tagged with, so that
//! when several nodes share one database each sweeps only its own leftovers at start-up
//! (`c2s/guest.rs`). It is kept in `<data_dir>/node-id` (made on first start, random,
//! mode 0600) rather than drawn per start: a node restarted after a crash must recognise
//! the guests it left behind. Nodes sharing a database need data directories of their own.

use std::io::Write as _;
use std::path::Path;

use rand::rngs::OsRng;
use rand::RngCore as _;

use crate::accounts::SecretError;

const NODE_ID_FILE: &str = "node-id";
/// Anything longer is not a file we wrote.
const MAX_LEN: usize = 64;

/// A fresh id: 128 random bits from the operating system, in hex.
pub fn random() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The node id kept in `data_dir`, created there on first start.
pub fn load_or_create(data_dir: &Path) -> Result<String, SecretError> {
    let path = data_dir.join(NODE_ID_FILE);
    let err = |source| SecretError {
        path: path.clone(),
        source,
    };
    if let Some(id) = read(&path).map_err(err)? {
        return Ok(id);
    }
    std::fs::create_dir_all(data_dir).map_err(err)?;
    let id = random();
    let mut options = std::fs::OpenOptions::new();
    // create_new: of two processes starting at once on one data_dir, one writes it and
    // the other reads what was written.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(format!("{id}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(err)?;
            Ok(id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // The other process may not have written it yet.
            for _ in 0..50 {
                if let Some(id) = read(&path).map_err(err)? {
                    return Ok(id);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(err(invalid()))
        }
        Err(e) => Err(err(e)),
    }
}

/// The id in the file; None when there is no file or it is still empty.
fn read(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.is_empty() => Ok(None),
        Ok(text) => {
            let id = text.trim_end_matches('\n');
            let fits = !id.is_empty()
                && id.len() <= MAX_LEN
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if fits {
                Ok(Some(id.to_owned()))
            } else {
                Err(invalid())
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn invalid() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "expected a node id (letters, digits, '-', at most {MAX_LEN}); \
             delete the file only if no guest of this node is left in the database"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = load_or_create(&data).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(load_or_create(&data).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(data.join(NODE_ID_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Another data directory is another node.
        let other = load_or_create(&dir.path().join("other")).unwrap();
        assert_ne!(other, first);
    }

    #[test]
    fn an_admin_may_name_the_node_but_not_with_anything() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(NODE_ID_FILE), "node-a\n").unwrap();
        assert_eq!(load_or_create(dir.path()).unwrap(), "node-a");
        std::fs::write(dir.path().join(NODE_ID_FILE), "two words").unwrap();
        let e = load_or_create(dir.path()).unwrap_err();
        assert_eq!(e.source.kind(), std::io::ErrorKind::InvalidData);
    }
}
