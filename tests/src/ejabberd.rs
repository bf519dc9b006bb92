//! Debian's ejabberd (23.01) as a federation peer, run privately ([`crate::peer`]): its
//! own config, Mnesia spool, logs and certificate in a temp directory owned by the
//! `ejabberd` user, its listeners on a loopback address of the test's, started as that user
//! in a mount namespace whose /etc/resolv.conf names the test's nameserver and whose
//! /etc/hosts maps `localhost` (the Erlang node's host) and nothing else. The Erlang
//! distribution listens on a free loopback port without epmd, under a node name and cookie
//! of its own, so `ejabberdctl` reaches exactly this node and the system's ejabberd (if
//! any) is never touched. The whole process group is killed on drop.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::peer::{namespaced_as, require_root, run, wait_listening, Peer, PeerTls};

/// Debian's control script (in /usr/sbin, which a test's PATH may lack).
const EJABBERDCTL: &str = "/usr/sbin/ejabberdctl";

/// How long the Erlang VM may take to start ejabberd (slower than a wait for a stanza).
const START: Duration = Duration::from_secs(60);

pub struct Ejabberd {
    child: Child,
    dir: TempDir,
    node: String,
    pub domain: String,
    /// ejabberd's c2s listener (STARTTLS, port 5222 on its address).
    pub c2s: SocketAddr,
}

impl Ejabberd {
    /// ejabberd serving `domain` on `ip` (c2s 5222, s2s 5269) with the certificate `tls`
    /// says, asking the nameserver at `nameserver:53`. With [`PeerTls::SelfSigned`] it
    /// authenticates servers by dialback (`mod_s2s_dialback`); with [`PeerTls::Issued`]
    /// it trusts that CA (`ca_file`) and has no dialback module, so SASL EXTERNAL
    /// (XEP-0178) is the only way in or out.
    pub fn start(domain: &str, ip: &str, nameserver: &str, tls: PeerTls) -> Ejabberd {
        require_root("ejabberd as a peer");
        assert!(
            Path::new(EJABBERDCTL).exists(),
            "ejabberd is not installed (tests/run installs Debian's ejabberd)"
        );
        let dir = tempfile::Builder::new()
            .prefix("jabberwock-ejabberd-")
            .tempdir()
            .expect("temp dir");
        let path = dir.path();
        for sub in ["log", "spool"] {
            std::fs::create_dir(path.join(sub)).expect("ejabberd's dirs");
        }
        let issued = tls.install(path, domain);
        // ejabberd reads the certificate and its key from one file.
        let combined = [path.join("cert.pem"), path.join("key.pem")]
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("certificate or key"))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(path.join("combined.pem"), combined).expect("combined.pem");
        std::fs::write(
            path.join("resolv.conf"),
            format!("nameserver {nameserver}\n"),
        )
        .expect("resolv.conf");
        std::fs::write(path.join("hosts"), "127.0.0.1 localhost\n").expect("hosts");
        // ejabberdctl points ERL_INETRC here; empty: the resolver's defaults.
        std::fs::write(path.join("inetrc"), "").expect("inetrc");
        let dist_port = free_port();
        let node = format!("jwtest{}x{dist_port}@localhost", std::process::id());
        std::fs::write(
            path.join("ejabberdctl.cfg"),
            format!(
                "EXEC_CMD=as_current_user\nERL_DIST_PORT={dist_port}\n\
                 INET_DIST_INTERFACE=127.0.0.1\n\
                 ERL_OPTIONS=\"-setcookie jwtest{dist_port} -env ERL_CRASH_DUMP_BYTES 0\"\n"
            ),
        )
        .expect("ejabberdctl.cfg");
        std::fs::write(path.join("ejabberd.yml"), config(path, domain, ip, issued))
            .expect("ejabberd.yml");
        run(Command::new("chown")
            .args(["-R", "ejabberd:ejabberd"])
            .arg(path));
        let log = std::fs::File::create(path.join("stdout.log")).expect("stdout.log");
        let child = namespaced_as(
            "ejabberd",
            path,
            true,
            EJABBERDCTL,
            &format!("{} foreground", ctl_args(path, &node)),
        )
        .env("HOME", path)
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        // Its own process group: ejabberdctl runs erl as a child, and the drop kills both.
        .process_group(0)
        .spawn()
        .expect("spawn ejabberd");
        let c2s: SocketAddr = format!("{ip}:5222").parse().expect("c2s address");
        let ejabberd = Ejabberd {
            child,
            dir,
            node,
            domain: domain.to_owned(),
            c2s,
        };
        ejabberd.wait_started();
        for addr in [c2s, format!("{ip}:5269").parse().expect("s2s address")] {
            wait_listening(addr, START, "ejabberd", || ejabberd.log_text());
        }
        ejabberd
    }

    /// Until `ejabberdctl status` says the node runs ejabberd, within [`START`].
    fn wait_started(&self) {
        let deadline = Instant::now() + START;
        loop {
            let out = self.ctl(&["status"]).output().expect("ejabberdctl status");
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ejabberd did not start within {START:?}: {}; its log:\n{}",
                String::from_utf8_lossy(&out.stdout),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `ejabberdctl export_piefxis DIR`: its accounts as XEP-0227 files in `dir`, which
    /// the ejabberd user must be able to write.
    pub fn export_piefxis(&self, dir: &Path) {
        run(&mut self.ctl(&["export_piefxis", &dir.display().to_string()]));
    }

    /// `ejabberdctl ARGS` for this node, as the ejabberd user.
    fn ctl(&self, args: &[&str]) -> Command {
        let path = self.dir.path();
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=ejabberd",
            "--regid=ejabberd",
            "--init-groups",
            EJABBERDCTL,
        ])
        .args(ctl_args(path, &self.node).split(' '))
        .args(args)
        .env("HOME", path)
        .current_dir(path)
        .stdin(Stdio::null());
        cmd
    }

    /// ejabberd's log, and what the VM printed (start-up failures land there).
    pub fn log_text(&self) -> String {
        let read = |path: PathBuf| std::fs::read_to_string(path).unwrap_or_default();
        read(self.log_file()) + &read(self.dir.path().join("stdout.log"))
    }
}

impl Peer for Ejabberd {
    fn c2s(&self) -> SocketAddr {
        self.c2s
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("log/ejabberd.log")
    }

    /// `ejabberdctl register USER DOMAIN PASSWORD`.
    fn register(&self, user: &str, password: &str) {
        run(&mut self.ctl(&["register", user, &self.domain, password]));
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("ejabberd's log:\n{}", self.log_text());
        }
        // The group process_group(0) made: ejabberdctl's shell and the VM under it.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// `ejabberdctl`'s options for the private config, directories and node under `dir`.
fn ctl_args(dir: &Path, node: &str) -> String {
    let d = dir.display();
    format!(
        "--config-dir {d} --config {d}/ejabberd.yml --ctl-config {d}/ejabberdctl.cfg \
         --logs {d}/log --spool {d}/spool --node {node}"
    )
}

/// A loopback port free right now (for the Erlang distribution).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// ejabberd.yml: `domain` on `ip`, STARTTLS required between servers; with a CA
/// (`issued`), `ca_file` and no dialback module, else dialback.
fn config(dir: &Path, domain: &str, ip: &str, issued: bool) -> String {
    let d = dir.display();
    let (ca_file, dialback) = if issued {
        (format!("ca_file: \"{d}/ca.pem\"\n"), "")
    } else {
        (String::new(), "  mod_s2s_dialback: {}\n")
    };
    format!(
        r#"loglevel: info
log_rotate_count: 0
hosts:
  - "{domain}"
certfiles:
  - "{d}/combined.pem"
{ca_file}s2s_use_starttls: required
listen:
  -
    port: 5222
    ip: "{ip}"
    module: ejabberd_c2s
    starttls: true
  -
    port: 5269
    ip: "{ip}"
    module: ejabberd_s2s_in
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
  mod_version: {{}}
{dialback}"#
    )
}
