//! The `jabberwock` command's side of the admin socket: one request, one answer.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::wire::{Answer, Request};

/// A reload re-reads files and a removal touches the database: generous, but bounded.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("not running: no admin socket at {}", .0.display())]
    NotRunning(PathBuf),
    #[error("admin socket {}: {}", path.display(), crate::config::io_reason(source))]
    Io { path: PathBuf, source: io::Error },
    #[error("admin socket {}: no answer within {} seconds", .0.display(), ANSWER_TIMEOUT.as_secs())]
    Timeout(PathBuf),
    #[error("admin socket {}: unreadable answer: {reason}", path.display())]
    BadAnswer { path: PathBuf, reason: String },
}

/// Sends `request` to the server whose `data_dir` this is.
pub async fn ask(data_dir: &Path, request: &Request) -> Result<Answer, AskError> {
    let path = super::socket_path(data_dir);
    let mut stream = match UnixStream::connect(&path).await {
        Ok(stream) => stream,
        // No file, or a file nobody listens on (a killed server's): not running.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(AskError::NotRunning(path))
        }
        Err(source) => return Err(AskError::Io { path, source }),
    };
    let exchange = async {
        let mut line = serde_json::to_vec(request).map_err(io::Error::other)?;
        line.push(b'\n');
        stream.write_all(&line).await?;
        let mut answer = String::new();
        BufReader::new(&mut stream).read_line(&mut answer).await?;
        Ok::<_, io::Error>(answer)
    };
    let answer = match tokio::time::timeout(ANSWER_TIMEOUT, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(source)) => return Err(AskError::Io { path, source }),
        Err(_) => return Err(AskError::Timeout(path)),
    };
    serde_json::from_str(&answer).map_err(|e| AskError::BadAnswer {
        path,
        reason: e.to_string(),
    })
}

/// [`ask`], with `None` when the server is not running.
pub async fn ask_if_running(
    data_dir: &Path,
    request: &Request,
) -> Result<Option<Answer>, AskError> {
    match ask(data_dir, request).await {
        Err(AskError::NotRunning(_)) => Ok(None),
        other => other.map(Some),
    }
}
