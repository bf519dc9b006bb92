//! Debian's Prosody as a federation peer, run privately: its own config, data, log and
//! certificate (a throwaway self-signed one, or one a test CA issued, with that CA
//! trusted) in a temp directory owned by the `prosody` user, its
//! listeners on a loopback address of the test's, started as that user in a mount
//! namespace of its own (`unshare -m`) whose /etc/resolv.conf names the test's nameserver
//! (Prosody asks DNS only: no /etc/hosts, no static map). The machine's files stay as
//! they are. Needs root (for `unshare`, `setpriv` and the nameserver's port 53): a test
//! run without it fails saying so.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::WAIT;

pub struct Prosody {
    child: Child,
    dir: TempDir,
    pub domain: String,
    /// Prosody's c2s listener (STARTTLS, port 5222 on its address).
    pub c2s: SocketAddr,
}

/// Panics unless this process runs as root.
pub fn require_root(what: &str) {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    let uid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        uid, "0",
        "{what} needs root (unshare -m, setpriv, a nameserver on port 53); run the tests as root, as CI does"
    );
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The certificate Prosody serves and whom it trusts for server-to-server streams.
pub enum ProsodyTls<'a> {
    /// A throwaway self-signed certificate, made at start: no peer can check it, and
    /// Prosody does not insist on checking theirs (`s2s_secure_auth = false`), so
    /// federation runs on dialback.
    SelfSigned,
    /// `cert` and `key` (PEM) as its certificate, the CA certificates in `ca` trusted, and
    /// `s2s_secure_auth = true`: a peer must prove its domain with a certificate, which
    /// with Prosody means SASL EXTERNAL (XEP-0178), dialback refused. The files are copied
    /// into Prosody's directory, where its user can read them.
    Issued {
        cert: &'a Path,
        key: &'a Path,
        ca: &'a Path,
    },
}

impl Prosody {
    /// Prosody serving `domain` (and a MUC at `conference.DOMAIN`) on `ip` (c2s 5222, s2s
    /// 5269) with the certificate `tls` says, asking the nameserver at `nameserver:53`;
    /// `extra` is appended to the global section of its config.
    pub fn start(
        domain: &str,
        ip: &str,
        nameserver: &str,
        tls: ProsodyTls,
        extra: &str,
    ) -> Prosody {
        require_root("Prosody as a peer");
        assert!(
            Path::new("/usr/bin/prosody").exists(),
            "Prosody is not installed (tests/run installs Debian's prosody)"
        );
        let dir = tempfile::Builder::new()
            .prefix("jabberwock-prosody-")
            .tempdir()
            .expect("temp dir");
        let path = dir.path();
        std::fs::create_dir(path.join("data")).expect("data dir");
        let copy = |from: &Path, to: &str| {
            std::fs::copy(from, path.join(to))
                .unwrap_or_else(|e| panic!("copy {} for Prosody: {e}", from.display()));
        };
        let (secure_auth, cafile) = match tls {
            ProsodyTls::SelfSigned => {
                run(Command::new("openssl")
                    .args([
                        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    ])
                    .arg("-subj")
                    .arg(format!("/CN={domain}"))
                    .arg("-addext")
                    .arg(format!("subjectAltName=DNS:{domain},DNS:*.{domain}"))
                    .arg("-keyout")
                    .arg(path.join("key.pem"))
                    .arg("-out")
                    .arg(path.join("cert.pem"))
                    .stderr(Stdio::null()));
                (false, String::new())
            }
            ProsodyTls::Issued { cert, key, ca } => {
                copy(cert, "cert.pem");
                copy(key, "key.pem");
                copy(ca, "ca.pem");
                (true, format!(", cafile = \"{}/ca.pem\"", path.display()))
            }
        };
        std::fs::write(
            path.join("resolv.conf"),
            format!("nameserver {nameserver}\n"),
        )
        .expect("resolv.conf");
        let p = path.display();
        let config = format!(
            r#"pidfile = "{p}/prosody.pid"
data_path = "{p}/data"
log = {{ debug = "{p}/prosody.log" }}
interfaces = {{ "{ip}" }}
c2s_ports = {{ 5222 }}
s2s_ports = {{ 5269 }}
c2s_direct_tls_ports = {{ }}
s2s_direct_tls_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
s2s_secure_auth = {secure_auth}
authentication = "internal_hashed"
modules_enabled = {{ "roster", "saslauth", "tls", "dialback", "disco", "ping", "version" }}
{extra}
VirtualHost "{domain}"
    ssl = {{ certificate = "{p}/cert.pem", key = "{p}/key.pem"{cafile} }}
Component "conference.{domain}" "muc"
    ssl = {{ certificate = "{p}/cert.pem", key = "{p}/key.pem"{cafile} }}
"#
        );
        std::fs::write(path.join("prosody.cfg.lua"), config).expect("config");
        run(Command::new("chown")
            .args(["-R", "prosody:prosody"])
            .arg(path));
        let cfg = path.join("prosody.cfg.lua");
        let script = format!(
            "mount --bind {p}/resolv.conf /etc/resolv.conf && exec setpriv --reuid=prosody \
             --regid=prosody --init-groups prosody -F --config {}",
            cfg.display()
        );
        let child = Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .current_dir(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prosody");
        let c2s: SocketAddr = format!("{ip}:5222").parse().expect("c2s address");
        let prosody = Prosody {
            child,
            dir,
            domain: domain.to_owned(),
            c2s,
        };
        prosody.wait_listening(c2s);
        prosody.wait_listening(format!("{ip}:5269").parse().expect("s2s address"));
        prosody
    }

    fn wait_listening(&self, addr: SocketAddr) {
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Prosody never listened on {addr}; its log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The certificate Prosody presents (what its clients trust).
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// `prosodyctl register` under the private config, as the prosody user.
    pub fn register(&self, user: &str, password: &str) {
        let cfg = self.dir.path().join("prosody.cfg.lua");
        run(Command::new("setpriv")
            .args([
                "--reuid=prosody",
                "--regid=prosody",
                "--init-groups",
                "prosodyctl",
                "--config",
            ])
            .arg(cfg)
            .args(["register", user, &self.domain, password])
            .current_dir(self.dir.path()));
    }

    /// Whether Prosody's log comes to contain `needle` within [`WAIT`].
    pub fn wait_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.log_text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prosody.log")).unwrap_or_default()
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("Prosody's log:\n{}", self.log_text());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
