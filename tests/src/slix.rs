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

    /// The script logging in to `server`'s c2s port over STARTTLS as `jid` with SASL
    /// `mechanism`, trusting the server's certificate; `more` are further arguments
    /// (`--send-to`, `--body`, …).
    pub fn login(
        server: &crate::TestServer,
        jid: &str,
        password: &str,
        mechanism: &str,
        more: &[&str],
    ) -> Slix {
        Slix::login_at(
            server.c2s.port(),
            &server.cert_path(),
            jid,
            password,
            mechanism,
            more,
        )
    }

    /// [`Slix::login`] to a server the test did not start as a `TestServer` (e.g. the
    /// packaged one): its c2s `port` on loopback, trusting the certificate at `cafile`.
    pub fn login_at(
        port: u16,
        cafile: &std::path::Path,
        jid: &str,
        password: &str,
        mechanism: &str,
        more: &[&str],
    ) -> Slix {
        let port = port.to_string();
        let mut args = vec![
            "--jid",
            jid,
            "--password",
            password,
            "--port",
            &port,
            "--cafile",
            cafile.to_str().expect("a UTF-8 path"),
            "--mechanism",
            mechanism,
        ];
        args.extend_from_slice(more);
        Slix::spawn(&args)
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

/// slixmpp driven command by command through tests/clients/slix_im.py: JSON commands on its
/// stdin, JSON events on its stdout (see the script's docstring).
pub struct SlixIm {
    child: Child,
    stdin: tokio::process::ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Every JSON line seen so far.
    pub events: Vec<String>,
}

impl SlixIm {
    /// Logs in as `jid` (a full JID) over STARTTLS to `port`, trusting `cafile`.
    pub fn spawn(jid: &str, password: &str, port: u16, cafile: &std::path::Path) -> SlixIm {
        SlixIm::spawn_script("slix_im.py", jid, password, port, cafile)
    }

    /// Like [`SlixIm::spawn`] with another script of tests/clients/ that speaks the same
    /// protocol (e.g. slix_features.py, which adds slixmpp's XEP plugins).
    pub fn spawn_script(
        script: &str,
        jid: &str,
        password: &str,
        port: u16,
        cafile: &std::path::Path,
    ) -> SlixIm {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        SlixIm::spawn_script_at(script, jid, password, addr, cafile)
    }

    /// Like [`SlixIm::spawn_script`], connecting to `addr` (another server's c2s, say).
    pub fn spawn_script_at(
        script: &str,
        jid: &str,
        password: &str,
        addr: std::net::SocketAddr,
        cafile: &std::path::Path,
    ) -> SlixIm {
        SlixIm::spawn_with(script, jid, password, addr, cafile, &[])
    }

    /// Like [`SlixIm::spawn_script_at`] with more of the script's options (e.g.
    /// `--mechanism SCRAM-SHA-1`).
    pub fn spawn_with(
        script: &str,
        jid: &str,
        password: &str,
        addr: std::net::SocketAddr,
        cafile: &std::path::Path,
        extra: &[&str],
    ) -> SlixIm {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("clients")
            .join(script);
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--jid", jid, "--password", password, "--host"])
            .arg(addr.ip().to_string())
            .arg("--port")
            .arg(addr.port().to_string())
            .arg("--cafile")
            .arg(cafile)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with slixmpp (pip install slixmpp)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        SlixIm {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            events: Vec::new(),
        }
    }

    /// Sends one command (a JSON object) and waits for the script's `ok` for it.
    pub async fn command(&mut self, json: &str) -> String {
        use tokio::io::AsyncWriteExt;
        let cmd = json
            .split("\"cmd\":")
            .nth(1)
            .and_then(|r| r.split('"').nth(1))
            .unwrap_or_else(|| panic!("no \"cmd\" in {json}"))
            .to_owned();
        self.stdin
            .write_all(format!("{json}\n").as_bytes())
            .await
            .expect("write to slix_im.py");
        self.stdin.flush().await.expect("flush slix_im.py stdin");
        if cmd == "get_roster" || cmd == "roster_state" {
            return self.expect_all(&["\"event\": \"roster\""]).await;
        }
        self.expect_all(&["\"event\": \"ok\"", &format!("\"cmd\": \"{cmd}\"")])
            .await
    }

    /// Waits for an event line containing every one of `needles`; panics with all lines seen
    /// if none comes in time. Lines before it are kept in `events` and skipped.
    pub async fn expect_all(&mut self, needles: &[&str]) -> String {
        let deadline = tokio::time::Instant::now() + WAIT * 2;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line()).await;
            match line {
                Ok(Ok(Some(line))) => {
                    self.events.push(line.clone());
                    if needles.iter().all(|n| line.contains(n)) {
                        return line;
                    }
                }
                _ => panic!(
                    "slixmpp never said {needles:?}; it said:\n{}",
                    self.events.join("\n")
                ),
            }
        }
    }

    /// Whether a line containing every one of `needles` was already seen.
    pub fn seen(&self, needles: &[&str]) -> bool {
        self.events
            .iter()
            .any(|line| needles.iter().all(|n| line.contains(n)))
    }

    /// Sends `quit` and waits for the script to exit; true when it reported success.
    pub async fn quit(mut self) -> bool {
        use tokio::io::AsyncWriteExt;
        self.stdin
            .write_all(b"{\"cmd\": \"quit\"}\n")
            .await
            .expect("write to slix_im.py");
        self.stdin.flush().await.expect("flush slix_im.py stdin");
        let _ = self.expect_all(&["\"event\": \"done\""]).await;
        let status = tokio::time::timeout(WAIT, self.child.wait()).await;
        matches!(status, Ok(Ok(s)) if s.success())
    }
}

impl SlixIm {
    /// `script` (one of tests/clients/) logged in to `server` as `jid` (a full JID) and
    /// available.
    pub async fn available(
        server: &crate::TestServer,
        script: &str,
        jid: &str,
        password: &str,
    ) -> SlixIm {
        SlixIm::available_at(server, &server.cert_path(), script, jid, password).await
    }

    /// [`SlixIm::available`] trusting `cafile` (a CA that issued the server's
    /// `tls.cert`, say) instead of the generated certificate.
    pub async fn available_at(
        server: &crate::TestServer,
        cafile: &std::path::Path,
        script: &str,
        jid: &str,
        password: &str,
    ) -> SlixIm {
        let mut client = SlixIm::spawn_script(script, jid, password, server.c2s.port(), cafile);
        client.expect_all(&["session_start"]).await;
        client.command(r#"{"cmd": "available"}"#).await;
        client
    }

    /// The most recent event named `event` seen so far (a command's results come before
    /// its `ok`, which [`SlixIm::command`] waited for).
    pub fn latest(&self, event: &str) -> String {
        let needle = format!("\"event\": \"{event}\"");
        self.events
            .iter()
            .rev()
            .find(|line| line.contains(&needle))
            .cloned()
            .unwrap_or_else(|| panic!("no {event} event in {:?}", self.events))
    }

    /// Like [`SlixIm::expect_all`], but an event already seen (skipped by an earlier wait)
    /// counts too: for events whose order relative to others is not fixed.
    pub async fn expect_ever(&mut self, needles: &[&str]) -> String {
        if let Some(line) = self
            .events
            .iter()
            .find(|line| needles.iter().all(|n| line.contains(n)))
        {
            return line.clone();
        }
        self.expect_all(needles).await
    }
}

/// `a` asks for `b`'s presence; both clients approve and return subscriptions themselves,
/// so they end subscribed both ways, each having seen the other's presence.
pub async fn befriend(a: &mut SlixIm, a_jid: &str, b: &mut SlixIm, b_jid: &str) {
    let bare = |jid: &str| jid.split('/').next().unwrap_or(jid).to_owned();
    a.command(&format!(
        r#"{{"cmd": "subscribe", "to": "{}"}}"#,
        bare(b_jid)
    ))
    .await;
    a.expect_ever(&["\"event\": \"presence\"", &format!("\"from\": \"{b_jid}\"")])
        .await;
    b.expect_ever(&["\"event\": \"presence\"", &format!("\"from\": \"{a_jid}\"")])
        .await;
}

/// slix_pep.py's `client` says, in its caps, that it wants notifications of exactly `nodes`
/// (announced with its next available presence).
pub async fn interests(client: &mut SlixIm, nodes: &[&str]) {
    let nodes: Vec<String> = nodes.iter().map(|n| format!("\"{n}\"")).collect();
    client
        .command(&format!(
            r#"{{"cmd": "interests", "nodes": [{}]}}"#,
            nodes.join(", ")
        ))
        .await;
}

/// A 1×1 PNG, the avatar slix_features.py's `set_avatar` publishes (base64).
pub const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// The XEP-0153 hash of [`PNG_B64`] (the hex SHA-1 of the image), computed here
/// independently of the server.
pub fn avatar_hash() -> String {
    use base64::Engine;
    use sha1::Digest;
    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG_B64)
        .expect("base64");
    sha1::Sha1::digest(&png)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// XEP-0153 with slix_features.py: `owner` (logged in as the full JID `owner_jid`) publishes
/// [`PNG_B64`] as its avatar; `contact`, subscribed to its presence, sees the photo's hash
/// in it and reads the photo in its vCard. Returns the hash.
pub async fn avatar_reaches(owner: &mut SlixIm, owner_jid: &str, contact: &mut SlixIm) -> String {
    owner
        .command(&format!(
            r#"{{"cmd": "set_avatar", "png_b64": "{PNG_B64}"}}"#
        ))
        .await;
    let hash = avatar_hash();
    contact
        .expect_all(&[
            "\"event\": \"presence\"",
            &format!("\"from\": \"{owner_jid}\""),
            &format!("\"photo\": \"{hash}\""),
        ])
        .await;
    let bare = owner_jid.split('/').next().unwrap_or(owner_jid);
    contact
        .command(&format!(r#"{{"cmd": "vcard", "to": "{bare}"}}"#))
        .await;
    let vcard = contact.latest("vcard");
    assert!(!vcard.contains("\"photo_bytes\": 0"), "{vcard}");
    hash
}

/// `cmd` of tests/clients/slix_pubsub.py about `node` on the publish-subscribe `service`,
/// with more JSON fields (`extra`, from a comma).
pub async fn pubsub_on(
    client: &mut SlixIm,
    service: &str,
    cmd: &str,
    node: &str,
    extra: &str,
) -> String {
    client
        .command(&format!(
            r#"{{"cmd": "{cmd}", "to": "{service}", "node": "{node}"{extra}}}"#
        ))
        .await
}

/// `cmd` of tests/clients/slix_pubsub.py submitting a form about `node` on `service`
/// (`configure_at`, `set_options`): `options`, a JSON object of its fields.
pub async fn pubsub_submit(
    client: &mut SlixIm,
    service: &str,
    cmd: &str,
    node: &str,
    options: &str,
) -> String {
    let extra = format!(r#", "options": {options}"#);
    pubsub_on(client, service, cmd, node, &extra).await
}

/// The last `cmd` of `client` failed with `condition` and the pubsub#errors `pubsub` one.
pub fn assert_refused(client: &SlixIm, cmd: &str, condition: &str, pubsub: &str) {
    let err = iq_error(client, cmd);
    assert!(
        err.contains(&format!("\"condition\": \"{condition}\""))
            && err.contains(&format!("\"pubsub\": \"{pubsub}\"")),
        "{err}"
    );
}

/// The IQ error `client`'s last command `cmd` got (slix_pep.py's `iq_error`, with the
/// stanza error condition and the `pubsub#errors` one).
pub fn iq_error(client: &SlixIm, cmd: &str) -> String {
    let err = client.latest("iq_error");
    assert!(err.contains(&format!("\"cmd\": \"{cmd}\"")), "{err}");
    err
}

/// The configuration `client` reads of its own XEP-0402 bookmarks node (`node_config`)
/// is the one §3 asks for: private (`whitelist`), every item kept, no last item sent.
pub async fn assert_bookmarks_node_is_private(client: &mut SlixIm) {
    client
        .command(r#"{"cmd": "node_config", "node": "urn:xmpp:bookmarks:1"}"#)
        .await;
    let config = client.latest("node_config");
    for expected in [
        "\"pubsub#access_model\": \"whitelist\"",
        "\"pubsub#max_items\": \"max\"",
        "\"pubsub#send_last_published_item\": \"never\"",
    ] {
        assert!(config.contains(expected), "{expected}: {config}");
    }
}

/// A personal eventing notification `client` (slix_pep.py) got: `kind` about `node` from `from`.
pub async fn pep_event(client: &mut SlixIm, kind: &str, from: &str, node: &str) -> String {
    client
        .expect_ever(&[
            "\"event\": \"pep\"",
            &format!("\"kind\": \"{kind}\""),
            &format!("\"from\": \"{from}\""),
            &format!("\"node\": \"{node}\""),
        ])
        .await
}

/// The items `client` (slix_pep.py) reads of `owner`'s `node`: the "items" event.
pub async fn read_items(client: &mut SlixIm, owner: &str, node: &str) -> String {
    client
        .command(&format!(
            r#"{{"cmd": "items", "to": "{owner}", "node": "{node}"}}"#
        ))
        .await;
    client.latest("items")
}

/// `from` sends `to` a chat message, which `to` receives: anything the server had for `to`
/// before it (a notification, say) has reached it by then.
pub async fn settle(from: &mut SlixIm, to: &mut SlixIm, to_jid: &str, marker: &str) {
    from.command(&format!(
        r#"{{"cmd": "message", "to": "{to_jid}", "body": "{marker}"}}"#
    ))
    .await;
    to.expect_ever(&[
        "\"event\": \"received\"",
        &format!("\"body\": \"{marker}\""),
    ])
    .await;
}

/// `jid` (password `pw-USER`) logged in to `server` with `script` and available, wanting notifications of exactly `nodes`
/// when `script` is slix_pep.py (other scripts: `nodes` empty).
pub async fn pep_online(
    server: &crate::TestServer,
    script: &str,
    jid: &str,
    nodes: &[&str],
) -> SlixIm {
    let user = jid.split('@').next().unwrap_or(jid);
    let mut client = SlixIm::spawn_script(
        script,
        jid,
        &format!("pw-{user}"),
        server.c2s.port(),
        &server.cert_path(),
    );
    client.expect_all(&["session_start"]).await;
    if !nodes.is_empty() {
        interests(&mut client, nodes).await;
    }
    client.command(r#"{"cmd": "available"}"#).await;
    client
}
