//! The Flash test widget (tests/flash/FlashXmpp.hx), compiled with Haxe and run in headless
//! Chromium under Ruffle by tests/browser/flash_widget.mjs, which reports its steps as JSON
//! lines.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::browser::{need_packages, NodeRun};
use crate::TestServer;

/// Compiles the widget with Haxe into `out_dir`; returns the SWF's path.
pub fn build_widget(out_dir: &Path) -> PathBuf {
    let swf = out_dir.join("FlashXmpp.swf");
    let output = std::process::Command::new("haxe")
        .arg("-cp")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("flash"))
        .args(["-main", "FlashXmpp", "-swf"])
        .arg(&swf)
        .args(["-swf-version", "11", "-swf-header", "800:600:30:FFFFFF"])
        .output()
        .expect("haxe is needed to build the Flash widget (apt-get install haxe)");
    assert!(
        output.status.success(),
        "haxe failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    swf
}

/// A run of tests/browser/flash_widget.mjs: its steps, then its exit and console.
pub struct WidgetRun(NodeRun);

/// Starts node on flash_widget.mjs with the SWF and `args`.
pub fn spawn_widget(swf: &Path, screenshot: &Path, args: &[&str]) -> WidgetRun {
    need_packages(&["@ruffle-rs/ruffle/ruffle.js", "playwright-core"]);
    let mut all: Vec<&OsStr> = vec![
        "--swf".as_ref(),
        swf.as_os_str(),
        "--screenshot".as_ref(),
        screenshot.as_os_str(),
    ];
    all.extend(args.iter().map(OsStr::new));
    WidgetRun(NodeRun::spawn("flash_widget.mjs", &all))
}

impl WidgetRun {
    /// The next step (variant, kind, text), or `None` when the run is over.
    pub async fn next_step(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Option<(String, String, String)> {
        let step = self.0.next_json(deadline).await?;
        let field = |name: &str| step[name].as_str().unwrap_or_default().to_owned();
        Some((field("variant"), field("kind"), field("text")))
    }

    /// Waits for node to exit; its status and console.
    pub async fn finish(self) -> (std::process::ExitStatus, String) {
        self.0.finish().await
    }
}

/// Ruffle's socketProxy target: our own WebSocket endpoint for XMLSocket clients.
pub fn proxy_url(server: &TestServer) -> String {
    let http = server
        .http
        .expect("the test server has an HTTP listener ([http] listen)");
    format!("ws://{http}/flash")
}
