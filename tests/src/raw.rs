//! A byte-level XMPP client for tests: it sends exactly the bytes a test writes and hands
//! back exactly what the server sent, so framing (NULs, headers, errors) can be asserted.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::WAIT;

/// The Flash client header of docs/flash-protocol.md §2b (XIFF attribute order).
pub const FLASH_HEADER: &str = "<?xml version=\"1.0\"?><flash:stream xmlns=\"jabber:client\" xmlns:flash=\"http://www.jabber.com/streams/flash\" to=\"localhost\" version=\"1.0\">\0";

/// XIFF 3's "terminated" standard header (its STREAM_TYPE_STANDARD_TERMINATED): self-closed,
/// and meant as an open stream; sent again after SASL success.
pub const XIFF_TERMINATED_HEADER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><stream:stream xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/streams\" to=\"localhost\" xml:lang=\"en\" version=\"1.0\" />";

/// SASL PLAIN as XIFF sends it (authzid = the bare JID), without a terminator.
pub fn xiff_plain_auth(user: &str, password: &str) -> String {
    let token = B64.encode(format!("{user}@localhost\0{user}\0{password}"));
    format!("<auth mechanism=\"PLAIN\" xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\">{token}</auth>")
}

/// A standard client header for `localhost`.
pub const STREAM_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

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
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Io::Gone => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Io::Gone => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Io::Gone => Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Io::Gone => Poll::Ready(Ok(())),
        }
    }
}

pub struct RawClient {
    io: Io,
    /// Received and not yet consumed by a `read_*` call.
    pending: Vec<u8>,
    /// Whether the server closed its side.
    eof: bool,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        let tcp = timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        RawClient::over(tcp)
    }

    fn over(tcp: TcpStream) -> RawClient {
        RawClient {
            io: Io::Plain(tcp),
            pending: Vec::new(),
            eof: false,
        }
    }

    /// Connects from the local address `from` (any of 127.0.0.0/8 on loopback), so one test
    /// can be several client addresses.
    pub async fn connect_from(addr: SocketAddr, from: std::net::IpAddr) -> RawClient {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(from, 0))
            .expect("bind the client address");
        let tcp = timeout(WAIT, socket.connect(addr)).await;
        RawClient::over(tcp.expect("connect timed out").expect("connect"))
    }

    /// On a fresh connection: a Flash stream, whose features must offer XEP-0077, and one
    /// registration of `user`; returns the server's answer.
    pub async fn register_flash(&mut self, user: &str, password: &str) -> String {
        self.send(FLASH_HEADER).await;
        self.read_unit().await;
        let features = self.read_unit().await;
        assert!(features.contains("iq-register"), "{features}");
        self.send(format!(
            "<iq type=\"set\" id=\"reg\" to=\"localhost\"><query xmlns=\"jabber:iq:register\">\
             <username>{user}</username><password>{password}</password></query></iq>\0"
        ))
        .await;
        self.read_unit().await
    }

    /// Connects and immediately does a TLS handshake (XEP-0368 direct TLS).
    pub async fn connect_tls(addr: SocketAddr, cert: &Path) -> RawClient {
        let mut client = RawClient::connect(addr).await;
        client.tls_handshake(cert).await;
        client
    }

    async fn tls_handshake(&mut self, cert: &Path) {
        let Io::Plain(tcp) = std::mem::replace(&mut self.io, Io::Gone) else {
            panic!("TLS is already on");
        };
        let connector = TlsConnector::from(crate::tls::client_config(cert));
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = timeout(WAIT, connector.connect(name, tcp))
            .await
            .expect("TLS handshake timed out")
            .expect("TLS handshake");
        self.io = Io::Tls(Box::new(tls));
    }

    pub async fn send(&mut self, data: impl AsRef<[u8]>) {
        self.io.write_all(data.as_ref()).await.expect("send");
        self.io.flush().await.expect("flush");
    }

    /// Sends without panicking (for tests where the server may already have closed).
    pub async fn try_send(&mut self, data: impl AsRef<[u8]>) -> std::io::Result<()> {
        self.io.write_all(data.as_ref()).await?;
        self.io.flush().await
    }

    async fn fill(&mut self, wait: Duration) -> bool {
        let mut buf = [0u8; 8192];
        match timeout(wait, self.io.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.eof = true;
                false
            }
            Ok(Ok(n)) => {
                self.pending.extend_from_slice(&buf[..n]);
                true
            }
            Err(_) => false,
        }
    }

    /// Reads until `needle` has arrived; returns everything up to and including it.
    pub async fn read_until(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(pos) = find(&self.pending, needle.as_bytes()) {
                let end = pos + needle.len();
                let out: Vec<u8> = self.pending.drain(..end).collect();
                return String::from_utf8_lossy(&out).into_owned();
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            // `fill` may set `eof`, so it is read again after the call.
            let failed = self.eof || left.is_zero() || !self.fill(left).await;
            if failed && (self.eof || tokio::time::Instant::now() >= deadline) {
                panic!(
                    "waited for {needle:?}, got {:?}{}",
                    String::from_utf8_lossy(&self.pending),
                    if self.eof {
                        " and the connection closed"
                    } else {
                        ""
                    }
                );
            }
        }
    }

    /// One NUL-terminated Flash unit, without its NUL.
    pub async fn read_unit(&mut self) -> String {
        let unit = self.read_until("\0").await;
        unit.trim_end_matches('\0').to_owned()
    }

    /// Ends our sending side without closing the XML stream (over TLS a close_notify, then
    /// a FIN), as a client that goes away does, and keeps reading what the server sends.
    pub async fn stop_sending(&mut self) {
        let _ = self.io.shutdown().await;
    }

    /// Everything until the server closes the connection (panics if it doesn't in time).
    pub async fn read_to_close(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.eof {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "server did not close; got {:?}",
                String::from_utf8_lossy(&self.pending)
            );
            self.fill(left).await;
        }
        String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned()
    }

    /// Whatever arrives within `wait` (to assert that nothing was delivered).
    pub async fn read_for(&mut self, wait: Duration) -> String {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || self.eof {
                break;
            }
            self.fill(left).await;
        }
        String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned()
    }

    /// Standard login: stream, STARTTLS, SASL PLAIN over TLS, bind `resource`, initial
    /// presence. Returns the bound full JID.
    pub async fn login_standard(
        addr: SocketAddr,
        cert: &Path,
        user: &str,
        password: &str,
        resource: &str,
    ) -> (RawClient, String) {
        let mut c = RawClient::connect_starttls(addr, cert).await;
        c.authenticate_plain(STREAM_HEADER, user, password, "</stream:features>")
            .await;
        let jid = c.bind(resource, "").await;
        (c, jid)
    }

    /// Standard login as a SASL ANONYMOUS guest (the host has `anonymous = true`): STARTTLS,
    /// ANONYMOUS, restart, bind `resource`, initial presence. Returns the bound full JID,
    /// whose node the server made up.
    pub async fn login_anonymous(
        addr: SocketAddr,
        cert: &Path,
        resource: &str,
    ) -> (RawClient, String) {
        let mut c = RawClient::connect_starttls(addr, cert).await;
        c.authenticate(STREAM_HEADER, "ANONYMOUS", "", "</stream:features>")
            .await;
        let jid = c.bind(resource, "").await;
        (c, jid)
    }

    /// [`RawClient::login_standard`] on the virtual host `domain` (the stream headers' `to`).
    pub async fn login_standard_at(
        addr: SocketAddr,
        cert: &Path,
        domain: &str,
        user: &str,
        password: &str,
        resource: &str,
    ) -> (RawClient, String) {
        let header = STREAM_HEADER.replace("to='localhost'", &format!("to='{domain}'"));
        let mut c = RawClient::connect_starttls_with(addr, cert, &header).await;
        c.authenticate_plain(&header, user, password, "</stream:features>")
            .await;
        let jid = c.bind(resource, "").await;
        (c, jid)
    }

    /// A standard stream secured with STARTTLS, before the new stream header.
    async fn connect_starttls(addr: SocketAddr, cert: &Path) -> RawClient {
        RawClient::connect_starttls_with(addr, cert, STREAM_HEADER).await
    }

    /// [`RawClient::connect_starttls`] opening with `header`.
    async fn connect_starttls_with(addr: SocketAddr, cert: &Path, header: &str) -> RawClient {
        let mut c = RawClient::connect(addr).await;
        c.send(header).await;
        c.read_until("</stream:features>").await;
        c.starttls(cert).await;
        c
    }

    /// Over an already secured (or Flash) stream: header, PLAIN, restart, bind.
    async fn authenticate_plain(
        &mut self,
        header: &str,
        user: &str,
        password: &str,
        features_end: &str,
    ) -> String {
        let token = B64.encode(format!("\0{user}\0{password}"));
        self.authenticate(header, "PLAIN", &token, features_end)
            .await
    }

    /// Over an already secured (or Flash) stream: header, a one-step SASL `mechanism` with
    /// `token` (base64), restart; returns the post-auth features.
    async fn authenticate(
        &mut self,
        header: &str,
        mechanism: &str,
        token: &str,
        features_end: &str,
    ) -> String {
        self.send(header).await;
        let features = self.read_until(features_end).await;
        assert!(
            features.contains(&format!("<mechanism>{mechanism}</mechanism>")),
            "{mechanism} not offered: {features}"
        );
        let sep = if header.contains("flash:stream") {
            "\0"
        } else {
            ""
        };
        self.send(format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mechanism}'>{token}</auth>{sep}"
        ))
        .await;
        let answer = self.read_until("/>").await;
        assert!(
            answer.contains("<success"),
            "{mechanism} login failed: {answer}"
        );
        self.send(header).await;
        let features = self.read_until(features_end).await;
        assert!(
            features.contains("urn:ietf:params:xml:ns:xmpp-bind"),
            "no bind feature: {features}"
        );
        features
    }

    /// Binds `resource` (no presence); returns the bound full JID. `sep` as in `bind`.
    pub async fn bind_only(&mut self, resource: &str, sep: &str) -> String {
        self.send(format!(
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>{sep}"
        ))
        .await;
        let result = self.read_until("</iq>").await;
        result
            .split("<jid>")
            .nth(1)
            .and_then(|r| r.split("</jid>").next())
            .unwrap_or_else(|| panic!("no jid in bind result: {result}"))
            .to_owned()
    }

    /// Binds and sends initial presence; `sep` is the unit terminator ("\0" for Flash).
    async fn bind(&mut self, resource: &str, sep: &str) -> String {
        let jid = self.bind_only(resource, sep).await;
        self.send(format!("<presence/>{sep}")).await;
        // Our own presence comes back to us (RFC 6121 §4.2.2); the presence of the user's
        // other resources may come before it and is skipped here.
        self.read_until(&format!("from=\"{jid}\"")).await;
        self.read_until(">").await;
        jid
    }

    /// Flash login exactly as docs/flash-protocol.md §2b-2c: NUL-framed, plaintext,
    /// SASL PLAIN (the first mechanism offered to Flash streams), restart, bind, session.
    pub async fn login_flash(
        addr: SocketAddr,
        user: &str,
        password: &str,
        resource: &str,
    ) -> (RawClient, String) {
        let mut c = RawClient::login_flash_unbound(addr, user, password).await;
        let jid = c.bind(resource, "\0").await;
        c.read_until("\0").await;
        c.send("<iq type=\"set\" id=\"sess_1\"><session xmlns=\"urn:ietf:params:xml:ns:xmpp-session\"/></iq>\0")
            .await;
        // Presence of the user's other resources may arrive first (RFC 6121 §4.2.2).
        let session = loop {
            let unit = c.read_unit().await;
            if unit.contains("id=\"sess_1\"") {
                break unit;
            }
        };
        assert!(session.contains("type=\"result\""), "{session}");
        (c, jid)
    }

    /// The Flash login of [`RawClient::login_flash`] up to the restarted stream's features,
    /// before resource binding.
    pub async fn login_flash_unbound(addr: SocketAddr, user: &str, password: &str) -> RawClient {
        let mut c = RawClient::connect(addr).await;
        c.send(FLASH_HEADER).await;
        let header = c.read_unit().await;
        assert!(
            header.starts_with("<?xml version='1.0' encoding='UTF-8'?><flash:stream "),
            "{header}"
        );
        let features = c.read_unit().await;
        assert!(features.starts_with("<stream:features>"), "{features}");
        assert!(
            features.contains("<mechanisms xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"><mechanism>PLAIN</mechanism>"),
            "PLAIN must be offered first to Flash: {features}"
        );
        assert!(
            !features.contains("starttls"),
            "no STARTTLS for XMLSocket: {features}"
        );
        c.send(format!("{}\0", xiff_plain_auth(user, password)))
            .await;
        assert_eq!(
            c.read_unit().await,
            "<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>"
        );
        c.send(FLASH_HEADER).await;
        // After the restart, header and features come in one unit (Openfire's shape).
        let restart = c.read_unit().await;
        assert!(
            restart.contains("<flash:stream ") && restart.ends_with("</stream:features>"),
            "{restart}"
        );
        c
    }

    /// XEP-0199 ping to the server; panics unless the pong comes back. `sep` as in `bind`.
    pub async fn ping(&mut self, id: &str, sep: &str) {
        self.send(format!(
            "<iq type='get' id='{id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>{sep}"
        ))
        .await;
        let pong = self.read_until(&format!("id=\"{id}\"")).await;
        let rest = self.read_until(">").await;
        assert!(
            format!("{pong}{rest}").contains("type=\"result\""),
            "ping {id} not answered with a result: {pong}{rest}"
        );
    }

    /// Pings the server (standard framing) and returns everything that arrived before the
    /// pong: a session handles its stanzas in order, so whatever the earlier ones caused for
    /// this session is in it.
    pub async fn until_pong(&mut self, id: &str) -> String {
        self.until_pong_from("localhost", id).await
    }

    /// [`RawClient::until_pong`] with the ping sent to `to` (another host, or another
    /// server: a server handles what one stream brings in order, so its pong comes after
    /// whatever the stanzas sent before it caused there).
    pub async fn until_pong_from(&mut self, to: &str, id: &str) -> String {
        self.send(format!(
            "<iq type='get' id='{id}' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>"
        ))
        .await;
        let got = self.read_until(&format!("id=\"{id}\"")).await;
        self.read_until(">").await;
        got.rsplit_once("<iq")
            .map_or(got.clone(), |(before, _)| before.to_owned())
    }
}

impl RawClient {
    /// On a plaintext standard stream whose features were read: `<starttls/>`, `<proceed/>`,
    /// TLS handshake. The caller then opens a new stream.
    pub async fn starttls(&mut self, cert: &Path) {
        self.starttls_pipelining(cert, "").await;
    }

    /// [`Self::starttls`] with `trailing` written in plaintext behind `<starttls/>`, in the
    /// same write (what a command-injection attempt looks like).
    pub async fn starttls_pipelining(&mut self, cert: &Path, trailing: &str) {
        self.send(format!(
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>{trailing}"
        ))
        .await;
        self.read_until("<proceed xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/>")
            .await;
        self.tls_handshake(cert).await;
    }

    /// STARTTLS, SASL PLAIN and the restart, stopping before resource binding (the
    /// post-auth features have been read).
    pub async fn login_standard_unbound(
        addr: SocketAddr,
        cert: &Path,
        user: &str,
        password: &str,
    ) -> RawClient {
        RawClient::login_standard_features(addr, cert, user, password)
            .await
            .0
    }

    /// Like [`RawClient::login_standard_unbound`], also returning the post-auth features.
    pub async fn login_standard_features(
        addr: SocketAddr,
        cert: &Path,
        user: &str,
        password: &str,
    ) -> (RawClient, String) {
        let mut c = RawClient::connect_starttls(addr, cert).await;
        let features = c
            .authenticate_plain(STREAM_HEADER, user, password, "</stream:features>")
            .await;
        (c, features)
    }

    /// Like [`RawClient::login_standard`] but without initial presence: the session is
    /// bound and not available (RFC 6121 §4.2).
    pub async fn login_standard_no_presence(
        addr: SocketAddr,
        cert: &Path,
        user: &str,
        password: &str,
        resource: &str,
    ) -> (RawClient, String) {
        let mut c = RawClient::login_standard_unbound(addr, cert, user, password).await;
        let jid = c.bind_only(resource, "").await;
        (c, jid)
    }

    /// Sends an XEP-0050 `<command/>` with `attrs` to the server's JID (`localhost`);
    /// the reply.
    pub async fn ad_hoc(&mut self, id: &str, attrs: &str) -> String {
        self.send(format!(
            "<iq type='set' id='{id}' to='localhost'>\
             <command xmlns='http://jabber.org/protocol/commands' {attrs}/></iq>"
        ))
        .await;
        self.read_stanza_containing(&format!("id=\"{id}\"")).await
    }

    /// The next complete top-level element (a stanza, a stream error, a closing stream
    /// tag), skipping whitespace and NULs between elements. Only for use after the stream
    /// header has been read.
    pub async fn read_stanza(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some((start, end)) = complete_element(&self.pending) {
                let out: Vec<u8> = self.pending.drain(..end).collect();
                return String::from_utf8_lossy(&out[start..]).into_owned();
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if self.eof || left.is_zero() {
                panic!(
                    "waited for a stanza, got {:?}{}",
                    String::from_utf8_lossy(&self.pending),
                    if self.eof {
                        " and the connection closed"
                    } else {
                        ""
                    }
                );
            }
            self.fill(left).await;
        }
    }

    /// The next complete top-level element if one arrives within `wait`; `None` if none
    /// does, or once the connection is closed (for clients that also wait on others).
    pub async fn read_stanza_within(&mut self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some((start, end)) = complete_element(&self.pending) {
                let out: Vec<u8> = self.pending.drain(..end).collect();
                return Some(String::from_utf8_lossy(&out[start..]).into_owned());
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if self.eof || left.is_zero() {
                return None;
            }
            self.fill(left).await;
        }
    }

    /// Skips stanzas until one contains `needle`, and returns it.
    pub async fn read_stanza_containing(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut skipped = Vec::new();
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no stanza containing {needle:?}; skipped {skipped:?}"
            );
            let stanza = self.read_stanza().await;
            if stanza.contains(needle) {
                return stanza;
            }
            skipped.push(stanza);
        }
    }
}

/// The complete top-level elements of `text`, in order (e.g. the stanzas inside a BOSH
/// `<body/>`); an unfinished one at the end is left out.
pub fn elements(text: &str) -> Vec<String> {
    let mut rest = text.as_bytes();
    let mut out = Vec::new();
    while let Some((start, end)) = complete_element(rest) {
        out.push(String::from_utf8_lossy(&rest[start..end]).into_owned());
        rest = &rest[end..];
    }
    out
}

/// Where the first complete top-level element of `buf` starts and ends, if it has arrived.
fn complete_element(buf: &[u8]) -> Option<(usize, usize)> {
    let start = buf
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0))?;
    let mut depth: i64 = 0;
    let mut i = start;
    while i < buf.len() {
        if buf[i] != b'<' {
            i += 1;
            continue;
        }
        // The end of this tag, skipping quoted attribute values.
        let mut j = i + 1;
        let mut quote = None;
        while j < buf.len() {
            match (quote, buf[j]) {
                (None, b'"' | b'\'') => quote = Some(buf[j]),
                (Some(q), c) if c == q => quote = None,
                (None, b'>') => break,
                _ => {}
            }
            j += 1;
        }
        if j >= buf.len() {
            return None;
        }
        let tag = &buf[i..=j];
        if tag.starts_with(b"</") {
            depth -= 1;
        } else if tag.starts_with(b"<?") || tag.starts_with(b"<!") {
            // Declarations and comments don't nest.
        } else if !tag.ends_with(b"/>") {
            depth += 1;
        }
        if depth <= 0 && !tag.starts_with(b"<?") {
            return Some((start, j + 1));
        }
        i = j + 1;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl RawClient {
    /// Standard stream, STARTTLS, TLS handshake and the restarted stream: returns the client
    /// and the features offered on the secured stream (nothing authenticated yet).
    pub async fn starttls_stream(addr: SocketAddr, cert: &Path) -> (RawClient, String) {
        let mut c = RawClient::connect(addr).await;
        c.send(STREAM_HEADER).await;
        c.read_until("</stream:features>").await;
        c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            .await;
        c.read_until("<proceed xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/>")
            .await;
        c.tls_handshake(cert).await;
        c.send(STREAM_HEADER).await;
        let features = c.read_until("</stream:features>").await;
        (c, features)
    }

    /// XEP-0368 direct TLS login: TLS first, then a standard stream, SASL PLAIN, bind
    /// `resource`, initial presence. Returns the bound full JID.
    pub async fn login_direct_tls(
        addr: SocketAddr,
        cert: &Path,
        user: &str,
        password: &str,
        resource: &str,
    ) -> (RawClient, String) {
        let mut c = RawClient::connect_tls(addr, cert).await;
        c.authenticate_plain(STREAM_HEADER, user, password, "</stream:features>")
            .await;
        let jid = c.bind(resource, "").await;
        (c, jid)
    }
}
