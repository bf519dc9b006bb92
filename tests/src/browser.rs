//! The browser tests' node scripts (tests/browser/*.mjs, headless Chromium through
//! playwright-core): each prints one JSON object a line on stdout and the browser's console
//! on stderr.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::{TestConfig, TestServer};

/// tests/browser, where the scripts and their npm packages (`npm ci`) are.
pub fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Asserts that each of `packages` (paths under tests/browser/node_modules) is installed.
pub fn need_packages(packages: &[&str]) {
    let modules = browser_dir().join("node_modules");
    for package in packages {
        assert!(
            modules.join(package).exists(),
            "{package} is missing: run `npm ci` in {}",
            browser_dir().display()
        );
    }
}

/// A server whose chat page (`http.chat_path`) serves Converse.js from the npm package.
pub fn start_with_chat_page() -> TestServer {
    let server = TestServer::start_with(with_chat_page(TestConfig::default()));
    server.wait_started();
    server
}

/// `config` with the chat page serving Converse.js from the npm package.
pub fn with_chat_page(config: TestConfig) -> TestConfig {
    need_packages(&["converse.js/dist/converse.min.js", "playwright-core"]);
    let converse = browser_dir().join("node_modules/converse.js/dist");
    config.section(
        "http",
        &format!("chat_assets = {:?}", converse.display().to_string()),
    )
}

/// One run of a node script: its JSON lines as they come, then its exit and console.
pub struct NodeRun {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    console: tokio::task::JoinHandle<String>,
}

impl NodeRun {
    /// Starts node on tests/browser/`script` with `args`.
    pub fn spawn(script: &str, args: &[&std::ffi::OsStr]) -> NodeRun {
        let mut child = Command::new("node")
            .arg(browser_dir().join(script))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node is needed to run the browser test");
        let mut stderr = child.stderr.take().expect("stderr");
        let console = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        NodeRun {
            child,
            lines,
            console,
        }
    }

    /// Starts tests/browser/`script`, a Converse.js script, on the chat page at `base`
    /// logged in as `user` (password `pw-USER`), with `more` arguments.
    pub fn converse(script: &str, base: &str, user: &str, more: &[&std::ffi::OsStr]) -> NodeRun {
        let pass = format!("pw-{user}");
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--base".as_ref(),
            base.as_ref(),
            "--user".as_ref(),
            user.as_ref(),
            "--pass".as_ref(),
            pass.as_ref(),
        ];
        args.extend_from_slice(more);
        NodeRun::spawn(script, &args)
    }

    /// The next JSON line, or `None` once the script's output is over; panics past
    /// `deadline`.
    pub async fn next_json(&mut self, deadline: tokio::time::Instant) -> Option<serde_json::Value> {
        let line = match tokio::time::timeout_at(deadline, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(_) => return None,
            Err(_) => panic!("the browser run took longer than its deadline"),
        };
        Some(
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")),
        )
    }

    /// Waits for node to exit; its status and console.
    pub async fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the browser run did not exit")
            .expect("wait for node");
        (status, self.console.await.unwrap_or_default())
    }
}
