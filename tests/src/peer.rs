//! What the federation peers we did not write ([`crate::prosody`], [`crate::ejabberd`])
//! share: each runs privately as its package's system user, with its config, data, log
//! and certificate in a temp directory that user owns, in a mount namespace of its own
//! (`unshare -m`) whose /etc/resolv.conf (and /etc/hosts) are the test's, so the
//! machine's files stay as they are. That needs root (`unshare`, `setpriv`, the test
//! nameserver's port 53): a test run without it fails saying so. [`federate_with`] is the
//! lab every peer's federation test runs.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::dns::TestDns;
use crate::s2s::{
    authenticated, federated_config_at, log_line, start_federated, users_of_two_servers_federate,
    Side, TestCa, S2S_PORT,
};
use crate::{TestServer, WAIT};

/// Panics unless this process runs as root.
pub fn require_root(what: &str) {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    let uid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        uid, "0",
        "{what} needs root (unshare -m, setpriv, a nameserver on port 53); run the tests as root, as CI does"
    );
}

/// Runs `cmd`, panicking with its output unless it succeeds.
pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The certificate a peer serves and whom it trusts for server-to-server streams.
pub enum PeerTls<'a> {
    /// A throwaway self-signed certificate, made at start: no peer can check it, and the
    /// peer does not insist on checking ours, so federation runs on dialback.
    SelfSigned,
    /// `cert` and `key` (PEM) as its certificate, the CA certificates in `ca` trusted,
    /// and a peer's certificate required: its domain is proved by SASL EXTERNAL
    /// (XEP-0178), dialback refused. The files are copied into the peer's directory,
    /// where its user can read them.
    Issued {
        cert: &'a Path,
        key: &'a Path,
        ca: &'a Path,
    },
}

impl PeerTls<'_> {
    /// Writes the certificate and key as `dir/cert.pem` and `dir/key.pem` (self-signed for
    /// `domain` and its subdomains, or copied), and the CA as `dir/ca.pem` if there is
    /// one; returns whether there is.
    pub fn install(&self, dir: &Path, domain: &str) -> bool {
        match self {
            PeerTls::SelfSigned => {
                run(Command::new("openssl")
                    .args([
                        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    ])
                    .arg("-subj")
                    .arg(format!("/CN={domain}"))
                    .arg("-addext")
                    .arg(format!("subjectAltName=DNS:{domain},DNS:*.{domain}"))
                    .arg("-keyout")
                    .arg(dir.join("key.pem"))
                    .arg("-out")
                    .arg(dir.join("cert.pem"))
                    .stderr(Stdio::null()));
                false
            }
            PeerTls::Issued { cert, key, ca } => {
                for (from, to) in [(cert, "cert.pem"), (key, "key.pem"), (ca, "ca.pem")] {
                    std::fs::copy(from, dir.join(to))
                        .unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
                }
                true
            }
        }
    }
}

/// Waits until something listens on `addr`, for at most `limit`; panics with `log()`
/// (the peer's log) otherwise.
pub fn wait_listening(addr: SocketAddr, limit: Duration, name: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + limit;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{name} never listened on {addr}; its log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the file at `path` comes to contain `needle` within `limit`.
pub fn wait_file_contains(path: &Path, needle: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A command that runs `program` with `args` as `user` inside a mount namespace whose
/// /etc/resolv.conf is `dir/resolv.conf` (and /etc/hosts `dir/hosts`, if `hosts`),
/// started in `dir`.
pub fn namespaced_as(user: &str, dir: &Path, hosts: bool, program: &str, args: &str) -> Command {
    let d = dir.display();
    let hosts = if hosts {
        format!("mount --bind {d}/hosts /etc/hosts && ")
    } else {
        String::new()
    };
    let script = format!(
        "mount --bind {d}/resolv.conf /etc/resolv.conf && {hosts}exec setpriv \
         --reuid={user} --regid={user} --init-groups {program} {args}"
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c", &script])
        .current_dir(dir)
        .stdin(Stdio::null());
    cmd
}

/// A server we did not write, started for [`federate_with`].
pub trait Peer {
    /// Its c2s listener (STARTTLS).
    fn c2s(&self) -> SocketAddr;
    /// Its private directory, where [`PeerTls::install`] put its certificate.
    fn dir(&self) -> &Path;
    /// Its log file.
    fn log_file(&self) -> PathBuf;
    /// Adds the account `user@DOMAIN` with its own tool.
    fn register(&self, user: &str, password: &str);

    /// The certificate it presents (what its clients trust when it is self-signed).
    fn cert_path(&self) -> PathBuf {
        self.dir().join("cert.pem")
    }

    /// Whether its log comes to contain `needle` within [`WAIT`].
    fn wait_log(&self, needle: &str) -> bool {
        wait_file_contains(&self.log_file(), needle, WAIT)
    }
}

/// How Jabberwock and a peer authenticate each other's streams.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Method {
    /// Self-signed certificates nobody can check: XEP-0220 dialback.
    Dialback,
    /// Certificates from the test's CA, which both trust and require: XEP-0178 EXTERNAL.
    External,
}

impl Method {
    /// The word our log line names it by.
    pub fn logged(self) -> &'static str {
        match self {
            Method::Dialback => "dialback",
            Method::External => "EXTERNAL",
        }
    }
}

/// Prints our server's log and the questions the nameserver was asked if the test fails
/// (the peers print their logs themselves).
struct LogOnPanic<'a>(&'a TestServer, &'a TestDns);

impl Drop for LogOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("a.test's log:\n{}", self.0.log_text());
            eprintln!("DNS questions:\n{}", self.1.questions());
        }
    }
}

/// The lab on 127.0.`net`.0/24: Jabberwock serving `a.test` (and its rooms on
/// `conference.a.test`) on .1, the peer `start(ip, nameserver, tls)` makes serving
/// `domain` on .2, and a nameserver on .53 that both ask (SRV for the peer's domain, A
/// records for all). With [`Method::External`] the test's CA issues both certificates
/// (ours for a.test and conference.a.test, the peer's for `domain` and its conference
/// service), both trust it, and we refuse `domain` any stream that a valid certificate
/// does not prove and any dialback (`require_valid_certificate`, `allow_dialback =
/// false`). Then [`users_of_two_servers_federate`] runs with alice@a.test and
/// bob@`domain`, and every stream between the servers — a.test both ways, and
/// conference.a.test both ways for the room — must have been authenticated by `method`,
/// as our log says. Returns both servers for the caller's checks of the peer's log.
pub async fn federate_with<P: Peer>(
    net: u8,
    method: Method,
    domain: &str,
    start: impl FnOnce(&str, &str, PeerTls) -> P,
) -> (TestServer, P) {
    require_root("a federation peer");
    let ip = |host| Ipv4Addr::new(127, 0, net, host);
    let dns = TestDns::start(&format!("{}:53", ip(53)));
    dns.a("a.test", ip(1));
    dns.a("conference.a.test", ip(1));
    dns.srv(
        &format!("_xmpp-server._tcp.{domain}"),
        0,
        0,
        S2S_PORT,
        &format!("{domain}."),
    );
    dns.a(domain, ip(2));
    let resolvers = format!("resolvers = [\"{}\"]", dns.addr);
    let a_config = federated_config_at(
        "a.test",
        &format!("{}:{S2S_PORT}", ip(1)),
        &[],
        &[&resolvers],
    );
    let (peer_ip, nameserver) = (ip(2).to_string(), ip(53).to_string());
    let ca = TestCa::new();
    // What each side's clients trust: the server's own certificate, or the CA.
    let (a, b, a_trust, b_trust) = match method {
        Method::Dialback => {
            let a = start_federated(a_config);
            let b = start(&peer_ip, &nameserver, PeerTls::SelfSigned);
            let (a_trust, b_trust) = (a.cert_path(), b.cert_path());
            (a, b, a_trust, b_trust)
        }
        Method::External => {
            let (a_config, _) = ca.configure(a_config, "a", &["a.test", "conference.a.test"]);
            // No dialback with the peer, neither as a fallback nor for conference.a.test
            // joining a.test's stream (XEP-0220 §2.5): every stream proves its domain by
            // certificate.
            let policy = format!("modules.s2s.domains.{domain:?}");
            let a_config = a_config
                .section(&policy, "require_valid_certificate = true")
                .section(&policy, "allow_dialback = false");
            let conference = format!("conference.{domain}");
            let (cert, key) = ca.issue("peer", &[domain, &conference]);
            let ca_file = ca.ca_file();
            let tls = PeerTls::Issued {
                cert: &cert,
                key: &key,
                ca: &ca_file,
            };
            let a = start_federated(a_config);
            let b = start(&peer_ip, &nameserver, tls);
            (a, b, ca_file.clone(), ca_file)
        }
    };
    let a_log = LogOnPanic(&a, &dns);
    a.add_user("alice@a.test", "alicepw");
    b.register("bob", "bobpw");
    let bob_jid = format!("bob@{domain}");
    let alice = Side {
        jid: "alice@a.test",
        password: "alicepw",
        c2s: a.c2s,
        trust: &a_trust,
    };
    let bob = Side {
        jid: &bob_jid,
        password: "bobpw",
        c2s: b.c2s(),
        trust: &b_trust,
    };
    users_of_two_servers_federate(alice, bob, "lounge@conference.a.test").await;
    for (direction, local) in [
        ("outgoing", "a.test"),
        ("incoming", "a.test"),
        ("outgoing", "conference.a.test"),
        ("incoming", "conference.a.test"),
    ] {
        log_line(
            &a,
            &authenticated(direction, local, domain, method.logged()),
        );
    }
    if method == Method::External {
        assert!(
            !a.log_text().contains("method=dialback"),
            "{}",
            a.log_text()
        );
    }
    drop(a_log);
    (a, b)
}
