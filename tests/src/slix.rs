//! Runs slixmpp (PyPI), a client we did not write, through tests/clients/slix_chat.py.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::WAIT;

pub struct Slix {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Every JSON line seen so far.
    pub events: Vec<String>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("clients")
        .join("slix_chat.py")
}

impl Slix {
    /// Starts the script with `args` (see its docstring).
    pub fn spawn(args: &[&str]) -> Slix {
        let mut child = Command::new("python3")
            .arg(script())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with slixmpp (pip install slixmpp)");
        let stdout = child.stdout.take().expect("stdout");
        Slix {
            child,
            lines: BufReader::new(stdout).lines(),
            events: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; panics with all lines seen if it doesn't come.
    pub async fn expect(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT * 2;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line()).await;
            match line {
                Ok(Ok(Some(line))) => {
                    self.events.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                _ => panic!(
                    "slixmpp never said {needle:?}; it said:\n{}",
                    self.events.join("\n")
                ),
            }
        }
    }

    /// Waits for the script to exit; true when it reported success.
    pub async fn finish(mut self) -> bool {
        let _ = self.expect("\"event\": \"done\"").await;
        let status = tokio::time::timeout(WAIT, self.child.wait()).await;
        matches!(status, Ok(Ok(s)) if s.success())
    }
}
