//! The server under test: the real `jabberwock` binary, its own temp directory, config
//! file, SQLite database and generated certificate, listening on ephemeral loopback ports.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::WAIT;

/// What a test changes from the defaults; rendered into a TOML file.
#[derive(Clone, Debug)]
pub struct TestConfig {
    /// Lines added to `[c2s]` (listeners are always ephemeral loopback ports).
    pub c2s: Vec<String>,
    /// Lines of `[flash]`.
    pub flash: Vec<String>,
    /// Virtual hosts and the lines of their tables.
    pub hosts: Vec<(String, Vec<String>)>,
    /// `[storage] url`; `None` = the default SQLite file in the temp data dir.
    pub storage_url: Option<String>,
    /// Other top-level tables (e.g. `[offline]`, `[roster]`) and their lines.
    pub sections: Vec<(String, Vec<String>)>,
    /// `[log] level`: a tracing filter (default "info").
    pub log_level: String,
    /// `[log] format` ("text" or "json"); `None` leaves the server's default.
    pub log_format: Option<String>,
    /// Environment variables the server process starts with (e.g. systemd's `NOTIFY_SOCKET`).
    pub env: Vec<(String, String)>,
}

impl Default for TestConfig {
    fn default() -> Self {
        TestConfig {
            c2s: Vec::new(),
            flash: Vec::new(),
            hosts: vec![("localhost".into(), Vec::new())],
            storage_url: None,
            sections: Vec::new(),
            log_level: "info".into(),
            log_format: None,
            env: Vec::new(),
        }
    }
}

impl TestConfig {
    pub fn c2s(mut self, line: &str) -> Self {
        self.c2s.push(line.into());
        self
    }

    pub fn flash(mut self, line: &str) -> Self {
        self.flash.push(line.into());
        self
    }

    /// Adds a line to the table of `host` (created if missing).
    pub fn host(mut self, host: &str, line: &str) -> Self {
        match self.hosts.iter_mut().find(|(h, _)| h == host) {
            Some((_, lines)) => lines.push(line.into()),
            None => self.hosts.push((host.into(), vec![line.into()])),
        }
        self
    }

    /// Sets `[log] level` (e.g. "info,sqlx::query=debug" to see every statement).
    pub fn log_level(mut self, filter: &str) -> Self {
        self.log_level = filter.into();
        self
    }

    /// Sets `[log] format`.
    pub fn log_format(mut self, format: &str) -> Self {
        self.log_format = Some(format.into());
        self
    }

    /// Starts the server with `name=value` in its environment.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Uses this database URL (e.g. a PostgreSQL database) instead of the SQLite file.
    pub fn storage(mut self, url: &str) -> Self {
        self.storage_url = Some(url.into());
        self
    }

    /// Adds a line to the top-level table `[name]` (created if missing), for tables that
    /// have no helper of their own (e.g. `section("offline", "max_messages = 2")`). Not for
    /// `c2s`, `flash`, `storage`, `log` or `hosts`, which are rendered elsewhere.
    pub fn section(mut self, name: &str, line: &str) -> Self {
        match self.sections.iter_mut().find(|(n, _)| n == name) {
            Some((_, lines)) => lines.push(line.into()),
            None => self.sections.push((name.into(), vec![line.into()])),
        }
        self
    }

    pub fn render(&self, data_dir: &Path) -> String {
        let mut toml = format!(
            "data_dir = {:?}\n\n[log]\nlevel = {:?}\n\n",
            data_dir.display().to_string(),
            self.log_level
        );
        if let Some(format) = &self.log_format {
            toml.insert_str(toml.len() - 1, &format!("format = {format:?}\n"));
        }
        if let Some(url) = &self.storage_url {
            toml.push_str(&format!("[storage]\nurl = {url:?}\n\n"));
        }
        toml.push_str("[c2s]\nlisten = [\"127.0.0.1:0\"]\ndirect_tls_listen = [\"127.0.0.1:0\"]\n");
        for line in &self.c2s {
            toml.push_str(line);
            toml.push('\n');
        }
        toml.push_str("\n[flash]\n");
        // The dedicated policy listener on an ephemeral port too, unless the test sets it.
        if !self
            .flash
            .iter()
            .any(|l| l.trim_start().starts_with("policy_listen"))
        {
            toml.push_str("policy_listen = [\"127.0.0.1:0\"]\n");
        }
        for line in &self.flash {
            toml.push_str(line);
            toml.push('\n');
        }
        // The HTTP listener (Ruffle's socket proxy) likewise, unless the test sets it.
        let http_listen_set = self.sections.iter().any(|(name, lines)| {
            name == "http" && lines.iter().any(|l| l.trim_start().starts_with("listen"))
        });
        // And the HTTPS listener (its default is the fixed port 5281).
        let tls_listen_set = self.sections.iter().any(|(name, lines)| {
            name == "http"
                && lines
                    .iter()
                    .any(|l| l.trim_start().starts_with("tls_listen"))
        });
        if !http_listen_set && !self.sections.iter().any(|(name, _)| name == "http") {
            toml.push_str("\n[http]\nlisten = [\"127.0.0.1:0\"]\n");
            toml.push_str("tls_listen = [\"127.0.0.1:0\"]\n");
        }
        for (name, lines) in &self.sections {
            toml.push_str(&format!("\n[{name}]\n"));
            if name == "http" && !http_listen_set {
                toml.push_str("listen = [\"127.0.0.1:0\"]\n");
            }
            if name == "http" && !tls_listen_set {
                toml.push_str("tls_listen = [\"127.0.0.1:0\"]\n");
            }
            for line in lines {
                toml.push_str(line);
                toml.push('\n');
            }
        }
        for (host, lines) in &self.hosts {
            toml.push_str(&format!("\n[hosts.{host:?}]\n"));
            for line in lines {
                toml.push_str(line);
                toml.push('\n');
            }
        }
        toml
    }
}

pub struct TestServer {
    pub dir: TempDir,
    pub config_path: PathBuf,
    pub c2s: SocketAddr,
    pub direct_tls: SocketAddr,
    /// The HTTP listener (`[http] listen`), when it is on.
    pub http: Option<SocketAddr>,
    /// The dedicated Flash socket policy listener (`[flash] policy_listen`), when it is on.
    pub flash_policy: Option<SocketAddr>,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    /// The environment the server was started with, again at [`TestServer::restart`].
    env: Vec<(String, String)>,
}

/// The `jabberwock` binary cargo built next to this test (target/<profile>/jabberwock),
/// or `JABBERWOCK_BIN` when set.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("JABBERWOCK_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/jabberwock
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let bin = profile_dir.join("jabberwock");
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo test --workspace` does)",
        bin.display()
    );
    bin
}

/// Spawns `jabberwock` with `args` in `cwd`, collecting stderr lines in the background.
pub fn spawn_logged(args: &[&str], cwd: &Path) -> (Child, Arc<Mutex<Vec<String>>>) {
    spawn_logged_with(args, cwd, &[])
}

/// [`spawn_logged`] with `env` added to the server's environment.
fn spawn_logged_with(
    args: &[&str],
    cwd: &Path,
    env: &[(String, String)],
) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn jabberwock");
    let log = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().expect("piped stderr");
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    (child, log)
}

/// The `addr=` of the first "listening" log line of `kind`.
fn listening_addr(log: &[String], kind: &str) -> Option<SocketAddr> {
    listening_addrs(log, kind).into_iter().next()
}

/// The `addr=` of every "listening" log line of `kind`, from text or JSON (`log.format`)
/// lines.
pub fn listening_addrs(log: &[String], kind: &str) -> Vec<SocketAddr> {
    log.iter()
        .filter_map(|l| {
            if l.starts_with('{') {
                let line: serde_json::Value = serde_json::from_str(l).ok()?;
                let fields = &line["fields"];
                if fields["message"] != "listening" || fields["kind"] != kind {
                    return None;
                }
                return fields["addr"].as_str()?.parse().ok();
            }
            if !(l.contains(" listening ") && l.contains(&format!("kind={kind} "))) {
                return None;
            }
            l.split("addr=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// Waits until the server logged both listeners, or panics with the log.
pub fn wait_for_listeners(child: &mut Child, log: &Mutex<Vec<String>>) -> (SocketAddr, SocketAddr) {
    let deadline = Instant::now() + WAIT;
    loop {
        {
            let lines = log.lock().unwrap();
            if let (Some(c2s), Some(tls)) = (
                listening_addr(&lines, "c2s"),
                listening_addr(&lines, "c2s-direct-tls"),
            ) {
                return (c2s, tls);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            std::thread::sleep(Duration::from_millis(100));
            panic!(
                "jabberwock exited with {status} before listening:\n{}",
                log.lock().unwrap().join("\n")
            );
        }
        if Instant::now() >= deadline {
            // Don't leave a half-started server running after the test fails.
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "jabberwock did not start:\n{}",
                log.lock().unwrap().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The HTTP and Flash policy listeners, if the server logged them. Their lines come after
/// the c2s ones and before "Jabberwock started", which this waits for (bounded).
fn other_listeners(log: &Mutex<Vec<String>>) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = log.lock().unwrap();
        if lines.iter().any(|l| l.contains("Jabberwock started")) || Instant::now() > deadline {
            return (
                listening_addr(&lines, "http"),
                listening_addr(&lines, "flash-policy"),
            );
        }
        drop(lines);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `jabberwock --config <config> <args>` in `cwd` with `stdin` as its standard input
/// (a config of the test's own, e.g. for `jabberwock check`).
pub fn cli_at(config: &Path, cwd: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(config)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn jabberwock cli");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("cli output")
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(TestConfig::default())
    }

    pub fn start_with(config: TestConfig) -> TestServer {
        TestServer::start_in(tempfile::tempdir().expect("temp dir"), config)
    }

    /// Like [`TestServer::start_with`], in a temp directory the test prepared (e.g. with a
    /// file system mounted at `data`, the data directory).
    pub fn start_in(dir: TempDir, config: TestConfig) -> TestServer {
        let config_path = dir.path().join("jabberwock.toml");
        std::fs::write(&config_path, config.render(&dir.path().join("data")))
            .expect("write config");
        let (mut child, log) = spawn_logged_with(
            &["--config", config_path.to_str().unwrap()],
            dir.path(),
            &config.env,
        );
        let (c2s, direct_tls) = wait_for_listeners(&mut child, &log);
        let (http, flash_policy) = other_listeners(&log);
        TestServer {
            dir,
            config_path,
            c2s,
            direct_tls,
            http,
            flash_policy,
            child: Some(child),
            log,
            env: config.env,
        }
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("data").join("cert.pem")
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("data").join("jabberwock.sqlite")
    }

    /// A read-only connection to the server's SQLite file, for raw reads of its stores.
    pub async fn read_db(&self) -> sqlx::SqliteConnection {
        use sqlx::Connection as _;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(self.db_path())
            .read_only(true);
        sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("open the server's database")
    }

    /// Runs `jabberwock --config <ours> <args>` with `stdin` as its standard input.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        cli_at(&self.config_path, self.dir.path(), args, stdin)
    }

    /// Creates an account through the user CLI (as an admin would).
    pub fn add_user(&self, jid: &str, password: &str) {
        let out = self.cli(&["user", "add", jid], &format!("{password}\n"));
        assert!(
            out.status.success(),
            "user add {jid} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Removes an account through the user CLI (as an admin would).
    pub fn remove_user(&self, jid: &str) {
        let out = self.cli(&["user", "remove", jid], "");
        assert!(
            out.status.success(),
            "user remove {jid} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Polls the log until a line contains `needle`.
    pub fn wait_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server still running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "jabberwock did not exit after SIGTERM:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl TestServer {
    /// Sends SIGKILL (no shutdown, no flushing: a crash) and waits for the process to exit.
    pub fn kill(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server still running");
        let status = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -KILL failed");
        child.wait().expect("wait for the killed server")
    }

    /// Starts the binary again on the same config file and data directory (after
    /// [`TestServer::terminate`] or [`TestServer::kill`]) and waits until it listens and has
    /// opened its storage. The ports are new ephemeral ones: `c2s` and `direct_tls` are
    /// updated, and the log starts afresh.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server before restarting it");
        let (mut child, log) = spawn_logged_with(
            &["--config", self.config_path.to_str().unwrap()],
            self.dir.path(),
            &self.env,
        );
        let (c2s, direct_tls) = wait_for_listeners(&mut child, &log);
        self.c2s = c2s;
        self.direct_tls = direct_tls;
        (self.http, self.flash_policy) = other_listeners(&log);
        self.child = Some(child);
        self.log = log;
        self.wait_started();
    }

    /// Waits until the server has opened its storage ("Jabberwock started"). The listeners
    /// are bound (and logged) before the database is opened and migrated, so a CLI command
    /// run right after [`TestServer::start_with`] can race the server's migrations.
    pub fn wait_started(&self) {
        assert!(
            self.wait_log("Jabberwock started"),
            "jabberwock did not finish starting:\n{}",
            self.log_text()
        );
    }
}

impl TestServer {
    /// The address of the first "listening" log line of `kind` (e.g. "https" for
    /// `[http] tls_listen`), if the server logged one.
    pub fn listening(&self, kind: &str) -> Option<SocketAddr> {
        listening_addr(&self.log.lock().unwrap(), kind)
    }
}

impl TestServer {
    /// Runs `jabberwock reload`, which must exit 0; returns what it printed.
    pub fn reload(&self) -> String {
        let out = self.cli(&["reload"], "");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "jabberwock reload: {text}");
        text
    }

    /// Rewrites the config file as `config` renders it (the one the server started with,
    /// edited) and runs [`TestServer::reload`].
    pub fn reload_as(&self, config: &TestConfig) -> String {
        self.write_config(config);
        self.reload()
    }

    /// Replaces the config file with `config` (same data directory), for the next reload
    /// or restart.
    pub fn write_config(&self, config: &TestConfig) {
        let text = config.render(&self.dir.path().join("data"));
        std::fs::write(&self.config_path, text).expect("write config");
    }

    /// Sends SIGHUP: the server re-reads its config.
    pub fn hangup(&self) {
        let pid = self.pid().expect("server running");
        let status = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -HUP failed");
    }

    /// The server's process id (for /proc readings, e.g. by the load generator), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
