//! Debian's Prosody as a federation peer, run privately ([`crate::peer`]): its own config,
//! data, log and certificate (a throwaway self-signed one, or one a test CA issued, with
//! that CA trusted) in a temp directory owned by the `prosody` user, its listeners on a
//! loopback address of the test's, started as that user in a mount namespace whose
//! /etc/resolv.conf names the test's nameserver (Prosody asks DNS only: no /etc/hosts, no
//! static map).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

use crate::peer::{namespaced_as, require_root, run, wait_listening, Peer, PeerTls};
use crate::WAIT;

pub struct Prosody {
    child: Child,
    dir: TempDir,
    pub domain: String,
    /// Prosody's c2s listener (STARTTLS, port 5222 on its address).
    pub c2s: SocketAddr,
}

impl Prosody {
    /// Prosody serving `domain` (and a MUC at `conference.DOMAIN`) on `ip` (c2s 5222, s2s
    /// 5269) with the certificate `tls` says, asking the nameserver at `nameserver:53`;
    /// `extra` is appended to the global section of its config.
    pub fn start(domain: &str, ip: &str, nameserver: &str, tls: PeerTls, extra: &str) -> Prosody {
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
        // With a CA: its certificates trusted and a peer's required (`s2s_secure_auth`),
        // so Prosody refuses dialback and authenticates servers by SASL EXTERNAL.
        let secure_auth = tls.install(path, domain);
        let cafile = if secure_auth {
            format!(", cafile = \"{}/ca.pem\"", path.display())
        } else {
            String::new()
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
        let child = namespaced_as(
            "prosody",
            path,
            false,
            "prosody",
            &format!("-F --config {}", cfg.display()),
        )
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
        wait_listening(addr, WAIT, "Prosody", || self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// Stops the server and keeps its directory (its data for an importer to read).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its data directory (`data_path`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Peer for Prosody {
    fn c2s(&self) -> SocketAddr {
        self.c2s
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("prosody.log")
    }

    /// `prosodyctl register` under the private config, as the prosody user.
    fn register(&self, user: &str, password: &str) {
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
