//! The Debian package (server/Cargo.toml `[package.metadata.deb]`, packaging/): built with
//! cargo-deb from the binary under test, installed with dpkg on this machine, started as a
//! host without systemd starts a service (start-stop-daemon as the package's user), logged in
//! to with slixmpp, then purged.
//!
//! Needs root, dpkg and cargo-deb (tests/run installs it). It installs /usr/bin/jabberwock;
//! the other tests run target/<profile>/jabberwock (`server::binary`), never a PATH lookup.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use jabberwock_tests::server::listening_addrs;
use jabberwock_tests::slix::Slix;
use jabberwock_tests::WAIT;

const PACKAGE: &str = "jabberwock";
const CONFIG: &str = "/etc/jabberwock/jabberwock.toml";
const DATA: &str = "/var/lib/jabberwock";
const BIN: &str = "/usr/bin/jabberwock";
const UNIT: &str = "/usr/lib/systemd/system/jabberwock.service";

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed() -> bool {
    let out = run("dpkg-query", &["-W", "-f=${db:Status-Status}", PACKAGE]);
    out.status.success() && String::from_utf8_lossy(&out.stdout) != "not-installed"
}

/// The installed package and the server started from it: stopped and purged on drop, so a
/// failing test leaves nothing installed or running.
struct Installed {
    pidfile: PathBuf,
}

impl Installed {
    fn stop(&self) -> Output {
        run(
            "start-stop-daemon",
            &[
                "--stop",
                "--quiet",
                "--oknodo",
                "--pidfile",
                self.pidfile.to_str().unwrap(),
                "--exec",
                BIN,
                "--retry",
                "TERM/20/KILL/5",
            ],
        )
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = run("dpkg", &["--purge", PACKAGE]);
    }
}

/// Processes running as `uid`, from /proc. A zombie is not running: a daemon's parent is
/// PID 1 after start-stop-daemon detaches it, and PID 1 here may not reap it.
fn processes_of(uid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            if entry.metadata().ok()?.uid() != uid {
                return None;
            }
            // /proc/PID/stat: "PID (COMM) STATE ...", COMM may hold spaces and parentheses.
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
            (state != "Z").then_some(pid)
        })
        .collect()
}

fn uid_of(user: &str) -> u32 {
    run_ok("id", &["-u", user]).trim().parse().expect("a uid")
}

fn mode_and_owner(path: &str) -> (u32, String) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let owner = run_ok("stat", &["-c", "%U:%G", path]).trim().to_owned();
    (meta.permissions().mode() & 0o7777, owner)
}

/// Waits until the server's log (start-stop-daemon's `--output` file) says it started, or
/// panics with the log.
fn wait_started(log: &Path) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("Jabberwock started") {
            return text.lines().map(str::to_owned).collect();
        }
        assert!(
            Instant::now() < deadline,
            "the packaged server did not start:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `cargo deb` on the binary the other tests run (no build: the dev profile's
/// target/debug/jabberwock, stripped), into `out`.
fn build_deb(out: &Path) -> PathBuf {
    let binary = jabberwock_tests::server::binary();
    // target/<profile>/jabberwock -> target: cargo-deb finds the binary through it.
    let target_dir = binary.parent().and_then(Path::parent).expect("target dir");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let started = Instant::now();
    let built = Command::new(cargo)
        .args([
            "deb",
            "--quiet",
            "-p",
            "jabberwock-server",
            "--profile",
            "dev",
        ])
        .args(["--no-build", "--fast", "--output"])
        .arg(out)
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", target_dir)
        .stdin(Stdio::null())
        .output()
        .expect("cargo");
    assert!(
        built.status.success(),
        "cargo deb (cargo-deb, installed by tests/run) failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    eprintln!("cargo deb took {:?}", started.elapsed());
    let path = String::from_utf8_lossy(&built.stdout).trim().to_owned();
    PathBuf::from(path)
}

#[tokio::test]
async fn the_deb_installs_serves_a_login_and_purges_clean() {
    assert!(
        !installed(),
        "a {PACKAGE} package is already installed on this machine; this test installs and \
         purges its own, so it leaves a real installation alone"
    );
    let work = tempfile::tempdir().expect("temp dir");
    let deb = build_deb(work.path());

    // The control data: the conffile, and what the postinst needs.
    let conffiles = run_ok("dpkg-deb", &["--info", deb.to_str().unwrap(), "conffiles"]);
    assert_eq!(conffiles.trim(), CONFIG);
    let control = run_ok("dpkg-deb", &["--field", deb.to_str().unwrap(), "Depends"]);
    assert!(control.contains("adduser"), "{control}");

    let guard = Installed {
        pidfile: work.path().join("jabberwock.pid"),
    };
    run_ok("dpkg", &["--install", deb.to_str().unwrap()]);

    // The postinst: the system user and group, its private data directory, the config
    // readable by the group only.
    let passwd = run_ok("getent", &["passwd", "jabberwock"]);
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    assert_eq!(fields[5], DATA, "{passwd}");
    assert_eq!(fields[6], "/usr/sbin/nologin", "{passwd}");
    let uid = uid_of("jabberwock");
    assert!(uid < 1000, "not a system user: {passwd}");
    run_ok("getent", &["group", "jabberwock"]);
    assert_eq!(
        mode_and_owner(DATA),
        (0o700, "jabberwock:jabberwock".into())
    );
    assert_eq!(mode_and_owner(CONFIG), (0o640, "root:jabberwock".into()));
    assert_eq!(mode_and_owner(BIN), (0o755, "root:root".into()));
    // The unit, enabled (as on any Debian host) but not started: systemd is not PID 1 here.
    assert!(
        Path::new("/etc/systemd/system/multi-user.target.wants/jabberwock.service").exists(),
        "the unit is not enabled"
    );
    assert!(
        processes_of(uid).is_empty(),
        "the postinst started something"
    );
    let conffiles = run_ok(
        "dpkg-query",
        &["--showformat=${Conffiles}", "--show", PACKAGE],
    );
    assert!(conffiles.contains(CONFIG), "{conffiles}");
    // The installed unit's paths are the package's: the binary exists and the config it
    // names is the conffile.
    let unit = std::fs::read_to_string(UNIT).expect("the installed unit");
    assert!(
        unit.contains(&format!("\nExecStart={BIN} --config {CONFIG}\n")),
        "{unit}"
    );
    assert!(unit.contains("\nStateDirectory=jabberwock\n"), "{unit}");
    jabberwock_tests::systemd::analyze_verify(Path::new(UNIT));

    // As an admin would: edit the installed config. Here for ports of the system's choosing
    // on loopback (others tests use the defaults), and nothing else listening.
    let mut config = std::fs::read_to_string(CONFIG).expect("the installed config");
    assert!(
        config.contains(&format!("\ndata_dir = \"{DATA}\"\n")),
        "{config}"
    );
    config.push_str(
        "\n[c2s]\nlisten = [\"127.0.0.1:0\"]\ndirect_tls_listen = []\n\
         \n[flash]\npolicy_listen = []\n\
         \n[http]\nlisten = []\ntls_listen = []\n",
    );
    std::fs::write(CONFIG, config).expect("edit the installed config");

    // As a Debian host without systemd starts a daemon (an init script's way).
    let log = work.path().join("jabberwock.log");
    run_ok(
        "start-stop-daemon",
        &[
            "--start",
            "--quiet",
            "--background",
            "--make-pidfile",
            "--pidfile",
            guard.pidfile.to_str().unwrap(),
            "--chuid",
            "jabberwock:jabberwock",
            "--output",
            log.to_str().unwrap(),
            "--exec",
            BIN,
            "--",
            "--config",
            CONFIG,
        ],
    );
    let lines = wait_started(&log);
    let c2s = listening_addrs(&lines, "c2s");
    assert_eq!(c2s.len(), 1, "{lines:?}");
    let pid: u32 = std::fs::read_to_string(&guard.pidfile)
        .expect("the pid file")
        .trim()
        .parse()
        .expect("a pid");
    assert_eq!(
        processes_of(uid),
        vec![pid],
        "the server runs as jabberwock"
    );

    // The packaged CLI, as the service's user, against the packaged config.
    let add = Command::new("runuser")
        .args(["-u", "jabberwock", "--", BIN, "--config", CONFIG])
        .args(["user", "add", "alice@localhost"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runuser");
    let add = {
        use std::io::Write as _;
        let mut add = add;
        add.stdin
            .take()
            .expect("stdin")
            .write_all(b"pw-alice\n")
            .expect("the password");
        add.wait_with_output().expect("user add")
    };
    assert!(
        add.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&add.stderr)
    );
    // What the server wrote in data_dir is its user's.
    for file in ["jabberwock.sqlite", "cert.pem", "key.pem"] {
        let path = format!("{DATA}/{file}");
        assert_eq!(mode_and_owner(&path).1, "jabberwock:jabberwock", "{path}");
    }

    // A client we did not write logs in over STARTTLS, trusting the generated certificate.
    let cert = Path::new(DATA).join("cert.pem");
    let slix = Slix::login_at(
        c2s[0].port(),
        &cert,
        "alice@localhost",
        "pw-alice",
        "SCRAM-SHA-256",
        &[],
    );
    assert!(slix.finish().await, "slixmpp did not log in");

    let stopped = guard.stop();
    assert!(stopped.status.success(), "{stopped:?}");
    // start-stop-daemon is done once /proc/PID/exe is gone, a moment before the process
    // is: wait for that.
    let deadline = Instant::now() + WAIT;
    while !processes_of(uid).is_empty() {
        let left = processes_of(uid);
        assert!(
            Instant::now() < deadline,
            "still running after the stop: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log_text.contains("authenticated"), "{log_text}");

    // The package again over itself, as an upgrade: the edited conffile is kept as edited,
    // and the postinst runs again over the existing user and directories.
    let edited = std::fs::read_to_string(CONFIG).expect("the edited config");
    run_ok("dpkg", &["--install", deb.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(CONFIG).expect("the config"), edited);
    assert_eq!(
        mode_and_owner(DATA),
        (0o700, "jabberwock:jabberwock".into())
    );
    assert!(
        processes_of(uid).is_empty(),
        "the postinst started something"
    );

    // A removal keeps the config and the data (Debian policy: only a purge deletes them).
    run_ok("dpkg", &["--remove", PACKAGE]);
    assert!(!Path::new(BIN).exists());
    assert!(Path::new(CONFIG).exists(), "the removal took the config");
    assert!(
        Path::new(DATA).join("jabberwock.sqlite").exists(),
        "the removal took the data"
    );

    // A purge takes the data and the config with it, and nothing is left running.
    run_ok("dpkg", &["--purge", PACKAGE]);
    assert!(!installed());
    let wants = "/etc/systemd/system/multi-user.target.wants/jabberwock.service";
    for path in [DATA, CONFIG, BIN, UNIT, wants] {
        assert!(
            !Path::new(path).exists(),
            "{path} is still there after the purge"
        );
    }
    assert!(processes_of(uid).is_empty());
    drop(guard);
}
