//! One client connection: transport (TCP, TLS after STARTTLS), framing (standard or Flash
//! NUL-terminated units), and the steps of a login. The reader does no XML parsing: it
//! tracks element depth just far enough to cut the byte stream into top-level units
//! (stream header, stanza, stream close), and callers look for the few bytes they measure.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use memchr::memmem;
use sasl::common::scram::{generate_nonce, ScramProvider, Sha1, Sha256};
use sasl::common::Password;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

use crate::{Mechanism, Transport};

/// A failed step, with enough text to tell which.
pub type Res<T> = Result<T, String>;

fn io_err(what: &str, e: io::Error) -> String {
    format!("{what}: {e}")
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Io::Gone => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, b),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, b),
            Io::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Io::Gone => Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Io::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// What the framer cut out of the byte stream. Ranges index [`Conn::bytes`].
#[derive(Debug, Clone, PartialEq)]
pub enum Unit {
    Header(usize, usize),
    Stanza(usize, usize),
    Close,
}

/// Where to connect, and as what.
pub struct Target {
    pub addr: SocketAddr,
    /// Local addresses to spread connections over (loopback aliases 127.0.0.x), round robin.
    pub sources: Vec<IpAddr>,
    pub domain: String,
    pub transport: Transport,
    pub mechanism: Mechanism,
    pub password: String,
    pub scram_cache: bool,
    pub tls: Arc<rustls::ClientConfig>,
    pub next_source: std::sync::atomic::AtomicUsize,
}

impl Target {
    pub fn header(&self) -> String {
        match self.transport {
            Transport::Flash => format!(
                "<?xml version=\"1.0\"?><flash:stream xmlns=\"jabber:client\" xmlns:flash=\"http://www.jabber.com/streams/flash\" to=\"{}\" version=\"1.0\">",
                self.domain
            ),
            _ => format!(
                "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{}' version='1.0'>",
                self.domain
            ),
        }
    }
}

pub struct Conn {
    io: Io,
    /// Received bytes; `buf[..scan]` is framed, the rest not yet.
    buf: Vec<u8>,
    scan: usize,
    depth: u32,
    unit_start: usize,
    flash: bool,
    wbuf: Vec<u8>,
    eof: bool,
}

/// Start tag or end tag length from `<` (quote-aware), or None when incomplete.
fn tag_len(b: &[u8]) -> Option<usize> {
    let mut quote = 0u8;
    for (i, &c) in b.iter().enumerate().skip(1) {
        if quote != 0 {
            if c == quote {
                quote = 0;
            }
        } else if c == b'"' || c == b'\'' {
            quote = c;
        } else if c == b'>' {
            return Some(i + 1);
        }
    }
    None
}

fn is_stream_root(name: &[u8]) -> bool {
    name.starts_with(b"stream:stream") || name.starts_with(b"flash:stream")
}

impl Conn {
    pub async fn connect(target: &Target) -> Res<Conn> {
        let i = target
            .next_source
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tcp = if target.sources.is_empty() {
            TcpStream::connect(target.addr).await
        } else {
            let socket = TcpSocket::new_v4().map_err(|e| io_err("socket", e))?;
            let src = target.sources[i % target.sources.len()];
            socket
                .bind(SocketAddr::new(src, 0))
                .map_err(|e| io_err("bind source address", e))?;
            socket.connect(target.addr).await
        }
        .map_err(|e| io_err("connect", e))?;
        let _ = tcp.set_nodelay(true);
        Ok(Conn {
            io: Io::Plain(tcp),
            buf: Vec::with_capacity(4096),
            scan: 0,
            depth: 0,
            unit_start: 0,
            flash: target.transport == Transport::Flash,
            wbuf: Vec::with_capacity(512),
            eof: false,
        })
    }

    pub fn bytes(&self, start: usize, end: usize) -> &[u8] {
        &self.buf[start..end]
    }

    /// Queues one unit (Flash framing adds its NUL); [`Conn::flush`] writes the queue.
    pub fn queue(&mut self, unit: &[u8]) {
        self.wbuf.extend_from_slice(unit);
        if self.flash {
            self.wbuf.push(0);
        }
    }

    pub async fn flush(&mut self) -> Res<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let r = self.io.write_all(&self.wbuf).await;
        self.wbuf.clear();
        r.map_err(|e| io_err("write", e))
    }

    pub async fn send(&mut self, unit: &[u8]) -> Res<()> {
        self.queue(unit);
        self.flush().await
    }

    /// Cuts the next complete unit out of what has been received, if there is one.
    pub fn next_buffered(&mut self) -> Option<Unit> {
        loop {
            let b = &self.buf;
            let Some(i) = memchr::memchr(b'<', &b[self.scan..]) else {
                self.scan = b.len();
                return None;
            };
            let p = self.scan + i;
            let rest = &b[p..];
            if rest.len() < 2 {
                self.scan = p;
                return None;
            }
            match rest[1] {
                b'?' => {
                    let Some(n) = memmem::find(rest, b"?>") else {
                        self.scan = p;
                        return None;
                    };
                    self.scan = p + n + 2;
                }
                b'!' => {
                    let end: &[u8] = if rest.starts_with(b"<![CDATA[") {
                        b"]]>"
                    } else if rest.len() < 9 {
                        self.scan = p;
                        return None;
                    } else {
                        b"-->"
                    };
                    let Some(n) = memmem::find(rest, end) else {
                        self.scan = p;
                        return None;
                    };
                    self.scan = p + n + 3;
                }
                b'/' => {
                    let Some(n) = tag_len(rest) else {
                        self.scan = p;
                        return None;
                    };
                    self.scan = p + n;
                    if self.depth <= 1 {
                        self.depth = 0;
                        return Some(Unit::Close);
                    }
                    self.depth -= 1;
                    if self.depth == 1 {
                        return Some(Unit::Stanza(self.unit_start, self.scan));
                    }
                }
                _ => {
                    let Some(n) = tag_len(rest) else {
                        self.scan = p;
                        return None;
                    };
                    self.scan = p + n;
                    if self.depth <= 1 && is_stream_root(&rest[1..]) {
                        // A (re)started stream: its header, whatever came before.
                        self.depth = 1;
                        return Some(Unit::Header(p, self.scan));
                    }
                    let self_closing = rest[n - 2] == b'/';
                    if self.depth <= 1 {
                        self.unit_start = p;
                        if self_closing {
                            return Some(Unit::Stanza(p, self.scan));
                        }
                        self.depth = 2;
                    } else if !self_closing {
                        self.depth += 1;
                    }
                }
            }
        }
    }

    /// Reads more bytes, first dropping what has been framed and handed out.
    async fn fill(&mut self) -> Res<()> {
        let keep = if self.depth > 1 {
            self.unit_start
        } else {
            self.scan
        };
        if keep > 0 {
            self.buf.drain(..keep);
            self.scan -= keep;
            self.unit_start = self.unit_start.saturating_sub(keep);
        }
        if self.buf.capacity() - self.buf.len() < 2048 {
            self.buf.reserve(4096);
        }
        match self.io.read_buf(&mut self.buf).await {
            Ok(0) => {
                self.eof = true;
                Err("connection closed by server".into())
            }
            Ok(_) => Ok(()),
            Err(e) => {
                self.eof = true;
                Err(io_err("read", e))
            }
        }
    }

    /// The next unit, reading as needed (no timeout: callers bound it).
    pub async fn next(&mut self) -> Res<Unit> {
        loop {
            if let Some(u) = self.next_buffered() {
                return Ok(u);
            }
            self.fill().await?;
        }
    }

    /// Frees the read buffer of an idle connection (what a held session costs us).
    pub fn shrink(&mut self) {
        if self.depth <= 1 && self.scan == self.buf.len() {
            self.buf = Vec::new();
            self.scan = 0;
            self.unit_start = 0;
            self.wbuf = Vec::new();
        }
    }

    /// Skips units until one satisfies `want`; stream errors, SASL failures and closes end it.
    pub async fn wait_for(
        &mut self,
        what: &str,
        want: impl Fn(&[u8]) -> bool,
    ) -> Res<(usize, usize)> {
        loop {
            match self
                .next()
                .await
                .map_err(|e| format!("waiting for {what}: {e}"))?
            {
                Unit::Close => return Err(format!("waiting for {what}: stream closed")),
                Unit::Header(..) => {}
                Unit::Stanza(s, e) => {
                    let u = &self.buf[s..e];
                    if want(u) {
                        return Ok((s, e));
                    }
                    if u.starts_with(b"<stream:error") || u.starts_with(b"<failure") {
                        return Err(format!(
                            "waiting for {what}: {}",
                            String::from_utf8_lossy(u)
                        ));
                    }
                }
            }
        }
    }

    async fn open_stream(&mut self, target: &Target) -> Res<(usize, usize)> {
        self.send(target.header().as_bytes()).await?;
        match self
            .next()
            .await
            .map_err(|e| format!("stream header: {e}"))?
        {
            Unit::Header(..) => {}
            Unit::Close => return Err("stream closed before its header".into()),
            Unit::Stanza(s, e) => {
                return Err(format!(
                    "before the stream header: {}",
                    String::from_utf8_lossy(&self.buf[s..e])
                ))
            }
        }
        self.wait_for("stream features", |u| u.starts_with(b"<stream:features"))
            .await
    }

    async fn starttls(&mut self, target: &Target) -> Res<()> {
        self.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            .await?;
        self.wait_for("proceed", |u| u.starts_with(b"<proceed"))
            .await?;
        let Io::Plain(tcp) = std::mem::replace(&mut self.io, Io::Gone) else {
            return Err("TLS already on".into());
        };
        let name = rustls::pki_types::ServerName::try_from(target.domain.clone())
            .map_err(|e| format!("TLS server name: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(target.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| io_err("TLS handshake", e))?;
        self.io = Io::Tls(Box::new(tls));
        self.buf.clear();
        self.scan = 0;
        self.depth = 0;
        Ok(())
    }

    /// Stream, STARTTLS if asked: returns the range of the features.
    pub async fn negotiate(&mut self, target: &Target) -> Res<(usize, usize)> {
        let features = self.open_stream(target).await?;
        if target.transport == Transport::Starttls {
            self.starttls(target).await?;
            return self.open_stream(target).await;
        }
        Ok(features)
    }

    /// Stream, [STARTTLS], SASL and the restart: the stream as it is before binding (or, with
    /// XEP-0198, resuming). Returns the range of the restarted stream's features.
    pub async fn authenticated(&mut self, target: &Target, user: &str) -> Res<(usize, usize)> {
        self.negotiate(target).await?;
        self.authenticate(target, user).await?;
        self.open_stream(target).await
    }

    /// Drops the connection without closing the stream, as a client that vanishes does: no
    /// `</stream:stream>`, no TLS close_notify; the kernel sends a FIN (after a shutdown of
    /// our sending side, so unread bytes don't turn it into an RST), or with `reset` an RST
    /// (SO_LINGER 0).
    pub fn cut(self, reset: bool) {
        let tcp = match &self.io {
            Io::Plain(t) => t,
            Io::Tls(t) => t.get_ref().0,
            Io::Gone => return,
        };
        if reset {
            let _ = tcp.set_zero_linger();
        } else {
            // SAFETY: a valid socket descriptor, ours until `self` drops below.
            unsafe {
                libc::shutdown(std::os::fd::AsRawFd::as_raw_fd(tcp), libc::SHUT_WR);
            }
        }
    }

    /// A full login: stream, [STARTTLS], SASL, restart, bind, roster get, initial presence
    /// (and, with `wait_echo`, its echo). Returns the roster result's `subscription='both'` count.
    pub async fn login(
        &mut self,
        target: &Target,
        user: &str,
        resource: &str,
        wait_echo: bool,
    ) -> Res<usize> {
        let (s, e) = self.authenticated(target, user).await?;
        let session_required = {
            let f = &self.buf[s..e];
            memmem::find(f, b"xmpp-session").is_some() && memmem::find(f, b"optional").is_none()
        };
        let bind = format!(
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
        );
        self.send(bind.as_bytes()).await?;
        let (s, e) = self.wait_for("bind result", |u| is_iq(u, b"bind1")).await?;
        let full = {
            let u = &self.buf[s..e];
            if attr(u, b"type") != Some(b"result") {
                return Err(format!("bind: {}", String::from_utf8_lossy(u)));
            }
            match (memmem::find(u, b"<jid>"), memmem::find(u, b"</jid>")) {
                (Some(a), Some(b)) => String::from_utf8_lossy(&u[a + 5..b]).into_owned(),
                _ => format!("{user}@{}/{resource}", target.domain),
            }
        };
        if session_required {
            self.send(b"<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
                .await?;
            self.wait_for("session result", |u| is_iq(u, b"sess1"))
                .await?;
        }
        self.queue(b"<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>");
        self.queue(b"<presence/>");
        self.flush().await?;
        let (s, e) = self
            .wait_for("roster result", |u| is_iq(u, b"roster1"))
            .await?;
        let both = {
            let u = &self.buf[s..e];
            memmem::find_iter(u, b"subscription='both'").count()
                + memmem::find_iter(u, b"subscription=\"both\"").count()
        };
        if !wait_echo {
            return Ok(both);
        }
        let full_b = full.as_bytes();
        self.wait_for("own presence", |u| {
            u.starts_with(b"<presence") && attr(u, b"from") == Some(full_b)
        })
        .await?;
        Ok(both)
    }

    async fn authenticate(&mut self, target: &Target, user: &str) -> Res<()> {
        match target.mechanism {
            Mechanism::Plain => {
                let creds = B64.encode(format!("\0{user}\0{}", target.password));
                let auth = format!(
                    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>"
                );
                self.send(auth.as_bytes()).await?;
                self.wait_for("SASL success", |u| u.starts_with(b"<success"))
                    .await?;
                Ok(())
            }
            Mechanism::ScramSha1 => self.scram::<Sha1>(target, user, "SCRAM-SHA-1").await,
            Mechanism::ScramSha256 => self.scram::<Sha256>(target, user, "SCRAM-SHA-256").await,
        }
    }

    /// RFC 5802 client, with the keys of (user, salt, iterations) cached as §5.1 allows a
    /// client to, so the load generator doesn't spend its core on PBKDF2.
    async fn scram<H: ScramProvider>(
        &mut self,
        target: &Target,
        user: &str,
        name: &str,
    ) -> Res<()> {
        let nonce = generate_nonce().map_err(|e| format!("nonce: {e:?}"))?;
        let first_bare = format!("n={user},r={nonce}");
        let auth = format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{name}'>{}</auth>",
            B64.encode(format!("n,,{first_bare}"))
        );
        self.send(auth.as_bytes()).await?;
        let (s, e) = self
            .wait_for("SASL challenge", |u| u.starts_with(b"<challenge"))
            .await?;
        let server_first = B64
            .decode(text(&self.buf[s..e]))
            .map_err(|e| format!("challenge base64: {e}"))?;
        let field = |k: u8| {
            server_first
                .split(|&c| c == b',')
                .find(|f| f.len() > 1 && f[0] == k && f[1] == b'=')
                .map(|f| &f[2..])
        };
        let (Some(r), Some(salt), Some(iter)) = (field(b'r'), field(b's'), field(b'i')) else {
            return Err(format!(
                "bad server-first-message {}",
                String::from_utf8_lossy(&server_first)
            ));
        };
        if !r.starts_with(nonce.as_bytes()) {
            return Err("server nonce does not extend ours".into());
        }
        let salt = B64.decode(salt).map_err(|e| format!("salt: {e}"))?;
        let iterations: u32 = std::str::from_utf8(iter)
            .ok()
            .and_then(|i| i.parse().ok())
            .ok_or("bad iteration count")?;
        let (client_key, server_key) = scram_keys::<H>(target, user, name, &salt, iterations)?;
        let mut final_bare = b"c=biws,r=".to_vec();
        final_bare.extend_from_slice(r);
        let mut auth_message = first_bare.into_bytes();
        auth_message.push(b',');
        auth_message.extend_from_slice(&server_first);
        auth_message.push(b',');
        auth_message.extend_from_slice(&final_bare);
        let stored_key = H::hash(&client_key);
        let signature = H::hmac(&auth_message, &stored_key).map_err(|e| format!("{e:?}"))?;
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        final_bare.extend_from_slice(b",p=");
        final_bare.extend_from_slice(B64.encode(proof).as_bytes());
        let response = format!(
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
            B64.encode(&final_bare)
        );
        self.send(response.as_bytes()).await?;
        let (s, e) = self
            .wait_for("SASL success", |u| u.starts_with(b"<success"))
            .await?;
        let expected = H::hmac(&auth_message, &server_key).map_err(|e| format!("{e:?}"))?;
        let v = B64.decode(text(&self.buf[s..e])).unwrap_or_default();
        if v.strip_prefix(b"v=") != Some(B64.encode(expected).as_bytes()) {
            return Err("server signature mismatch".into());
        }
        Ok(())
    }

    /// XEP-0077 registration on a fresh stream; Ok(false) = the account already exists.
    pub async fn register(&mut self, target: &Target, user: &str) -> Res<bool> {
        self.negotiate(target).await?;
        let iq = format!(
            "<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>{user}</username><password>{}</password></query></iq>",
            target.password
        );
        self.send(iq.as_bytes()).await?;
        let (s, e) = self
            .wait_for("registration result", |u| is_iq(u, b"reg1"))
            .await?;
        let u = &self.buf[s..e];
        match attr(u, b"type") {
            Some(b"result") => Ok(true),
            _ if memmem::find(u, b"<conflict").is_some() => Ok(false),
            _ => Err(format!("registration: {}", String::from_utf8_lossy(u))),
        }
    }

    /// XEP-0199 ping to the server; true when answered with a result.
    pub async fn ping(&mut self, domain: &str, id: &str) -> Res<bool> {
        let iq =
            format!("<iq type='get' id='{id}' to='{domain}'><ping xmlns='urn:xmpp:ping'/></iq>");
        self.send(iq.as_bytes()).await?;
        let id = id.as_bytes();
        let (s, e) = self.wait_for("ping result", |u| is_iq(u, id)).await?;
        Ok(attr(&self.buf[s..e], b"type") == Some(b"result"))
    }

    /// Closes our stream and waits (bounded) for the server to close its side.
    pub async fn close(mut self) {
        let end: &[u8] = if self.flash {
            b"</flash:stream>"
        } else {
            b"</stream:stream>"
        };
        if self.send(end).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while !self.eof {
                if self.fill().await.is_err() {
                    break;
                }
                self.scan = self.buf.len();
            }
        })
        .await;
        let _ = self.io.shutdown().await;
    }
}

type KeyCache = Mutex<HashMap<(String, Vec<u8>, u32, &'static str), (Vec<u8>, Vec<u8>)>>;

fn scram_keys<H: ScramProvider>(
    target: &Target,
    user: &str,
    name: &str,
    salt: &[u8],
    iterations: u32,
) -> Res<(Vec<u8>, Vec<u8>)> {
    static CACHE: OnceLock<KeyCache> = OnceLock::new();
    let mech: &'static str = if name == "SCRAM-SHA-1" {
        "SHA-1"
    } else {
        "SHA-256"
    };
    let key = (user.to_string(), salt.to_vec(), iterations, mech);
    let cache = CACHE.get_or_init(Default::default);
    if target.scram_cache {
        if let Some(k) = cache.lock().unwrap().get(&key) {
            return Ok(k.clone());
        }
    }
    let salted = H::derive(&Password::Plain(target.password.clone()), salt, iterations)
        .map_err(|e| format!("PBKDF2: {e:?}"))?;
    let client_key = H::hmac(b"Client Key", &salted).map_err(|e| format!("{e:?}"))?;
    let server_key = H::hmac(b"Server Key", &salted).map_err(|e| format!("{e:?}"))?;
    if target.scram_cache {
        cache
            .lock()
            .unwrap()
            .insert(key, (client_key.clone(), server_key.clone()));
    }
    Ok((client_key, server_key))
}

/// The value of attribute `name` in the start tag at the beginning of `unit`.
pub fn attr<'a>(unit: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let tag_end = tag_len(unit).unwrap_or(unit.len());
    let tag = &unit[..tag_end];
    let mut from = 0;
    while let Some(i) = memmem::find(&tag[from..], name) {
        let at = from + i;
        let after = at + name.len();
        let before_ok = at > 0 && tag[at - 1].is_ascii_whitespace();
        if before_ok && tag.len() > after + 1 && tag[after] == b'=' {
            let q = tag[after + 1];
            if q == b'\'' || q == b'"' {
                let v = &tag[after + 2..];
                let n = memchr::memchr(q, v)?;
                return Some(&v[..n]);
            }
        }
        from = after;
    }
    None
}

/// An `<iq>` with this id.
pub fn is_iq(unit: &[u8], id: &[u8]) -> bool {
    unit.starts_with(b"<iq") && attr(unit, b"id") == Some(id)
}

/// Character data of a one-level element such as `<challenge>…</challenge>`.
fn text(unit: &[u8]) -> &[u8] {
    let Some(start) = tag_len(unit) else {
        return b"";
    };
    if unit[start - 2] == b'/' {
        return b"";
    }
    let end = memchr::memrchr(b'<', unit).unwrap_or(unit.len());
    if end < start {
        return b"";
    }
    &unit[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framer(data: &[u8]) -> Conn {
        Conn {
            io: Io::Gone,
            buf: data.to_vec(),
            scan: 0,
            depth: 0,
            unit_start: 0,
            flash: false,
            wbuf: Vec::new(),
            eof: false,
        }
    }

    #[test]
    fn frames_units_across_nul_and_restarts() {
        let mut c = framer(b"<?xml version='1.0'?><flash:stream a='1'>\0<stream:features><m>x</m></stream:features>\0<success xmlns='s'/>\0<flash:stream b='>'><stream:features/><message a='x>y'><body>1 2</body></message>\0</flash:stream>\0<iq");
        let mut got = Vec::new();
        while let Some(u) = c.next_buffered() {
            got.push(match u {
                Unit::Header(s, e) | Unit::Stanza(s, e) => {
                    String::from_utf8_lossy(&c.buf[s..e]).into_owned()
                }
                Unit::Close => "CLOSE".into(),
            });
        }
        assert_eq!(
            got,
            [
                "<flash:stream a='1'>",
                "<stream:features><m>x</m></stream:features>",
                "<success xmlns='s'/>",
                "<flash:stream b='>'>",
                "<stream:features/>",
                "<message a='x>y'><body>1 2</body></message>",
                "CLOSE"
            ]
        );
        assert_eq!(c.scan, c.buf.len() - 3);
    }

    #[test]
    fn attributes_and_text() {
        let u = b"<iq xmlns='jabber:client' type=\"result\" id='bind1' to='a@b/c'><x/></iq>";
        assert_eq!(attr(u, b"type"), Some(&b"result"[..]));
        assert_eq!(attr(u, b"id"), Some(&b"bind1"[..]));
        assert!(is_iq(u, b"bind1"));
        assert_eq!(text(b"<challenge xmlns='x'>abc=</challenge>"), b"abc=");
        assert_eq!(text(b"<success xmlns='x'/>"), b"");
    }
}
