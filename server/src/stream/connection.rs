//! One client connection as a flow of XML stream events in, and framed stanzas out.
//!
//! This is where the wire dialects differ and nowhere else above it: a Flash
//! (XMLSocket) stream gets one NUL after every unit it is sent (docs/flash-protocol.md §2),
//! a standard stream does not, and an XMPP-over-WebSocket stream (RFC 7395) is read message
//! by message ([`FrameReader`]) and written one element per message, each stanza carrying
//! `xmlns="jabber:client"` and each stream-level element its `xmlns:stream`.

use std::io;
use std::net::SocketAddr;

use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::SharedStanza;
use jabberwock_protocol::stream::framing::FrameReader;
use jabberwock_protocol::stream::{self, Dialect, StreamError};
use jabberwock_protocol::xml::reader::{Event, Limits, StreamReader};
use jabberwock_protocol::xml::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::permits::ConnectionPermits;
use super::transport::Transport;

/// Read size: large enough for a typical stanza in one call, small enough to keep idle
/// sessions cheap (plain and TLS sessions release it after every read, others when idle).
const READ_CHUNK: usize = 4096;

/// Room reserved for one outgoing write: a chat message or a presence fits without growing.
const WRITE_START: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The peer broke the XML stream rules: answer with this stream error.
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("connection closed by peer without closing the stream")]
    Disconnected,
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// The ways a client reaches a session, named as an admin sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClientKind {
    /// A standard stream over plain TCP.
    Tcp,
    /// A standard stream over TLS (STARTTLS or direct TLS).
    Tls,
    /// Flash XMLSocket (`<flash:stream>`, NUL-terminated units) over TCP or TLS.
    Flash,
    /// A Flash widget in Ruffle, through the WebSocket socket proxy.
    Ruffle,
    /// XMPP over WebSocket (RFC 7395).
    WebSocket,
    /// BOSH (XEP-0206).
    Bosh,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Tcp => "tcp",
            ClientKind::Tls => "tls",
            ClientKind::Flash => "flash",
            ClientKind::Ruffle => "ruffle",
            ClientKind::WebSocket => "websocket",
            ClientKind::Bosh => "bosh",
        }
    }
}

pub struct Connection {
    transport: Transport,
    reader: StreamReader,
    dialect: Dialect,
    read_buf: Vec<u8>,
    write_buf: Vec<u8>,
    header_sent: bool,
    closed: bool,
    last_activity: Instant,
    pub peer: SocketAddr,
    /// RFC 7395 streams: messages are read by this instead of `reader`.
    frames: Option<FrameReader>,
    /// RFC 7395 streams: where each unit in `write_buf` ends (one message each).
    unit_ends: Vec<usize>,
    /// The bytes come from a Flash socket (Ruffle's socket proxy endpoint), whatever header
    /// the client opens with: the Flash policy applies to the stream.
    flash_socket: bool,
    /// The client terminates its units with NUL, so ours are too (always in the Flash
    /// dialect; on a Flash socket also after a standard header, see [`Self::flash_socket`]).
    nul_units: bool,
    /// A server-to-server stream (`jabber:server`, RFC 6120 §4.8.2): its reader maps the
    /// content namespace, and a header we still owe is the s2s one.
    s2s: bool,
    /// A client connection's places under the connection caps, held while it is open
    /// (`stream/permits.rs`); none for a server-to-server stream.
    permits: Option<ConnectionPermits>,
}

impl Connection {
    /// `initial` holds the bytes the stream layer already read while sniffing.
    pub fn new(transport: Transport, peer: SocketAddr, limits: Limits, initial: &[u8]) -> Self {
        let framed = matches!(&transport, Transport::WebSocket(ws) if ws.is_xmpp());
        let frames = framed.then(|| FrameReader::new(limits.clone()));
        let mut reader = StreamReader::new(limits);
        reader.feed(initial);
        Connection {
            transport,
            reader,
            // Known before the first message: a stream error then still uses the framing.
            dialect: if framed {
                Dialect::WebSocket
            } else {
                Dialect::Xmpp
            },
            read_buf: Vec::new(),
            write_buf: Vec::new(),
            header_sent: false,
            closed: false,
            last_activity: Instant::now(),
            peer,
            frames,
            unit_ends: Vec::new(),
            flash_socket: false,
            nul_units: false,
            s2s: false,
            permits: None,
        }
    }

    /// A server-to-server stream over `transport` (federation, `modules/s2s/`), either way.
    pub fn server_to_server(transport: Transport, peer: SocketAddr, limits: Limits) -> Self {
        let mut conn = Connection::new(transport, peer, limits.clone(), &[]);
        conn.reader = StreamReader::for_servers(limits);
        conn.s2s = true;
        conn
    }

    /// Marks a connection that came through a Flash socket endpoint (`/flash`): every
    /// stream on it gets the Flash policy, a standard header included (c2s/features.rs).
    pub fn flash_socket(mut self) -> Self {
        self.flash_socket = true;
        self
    }

    /// Makes the connection hold `permits` until it is closed, released or dropped, so
    /// that they are not held by whatever serves it for longer than it is open.
    pub fn holding(mut self, permits: ConnectionPermits) -> Self {
        self.permits = Some(permits);
        self
    }

    /// Whether the Flash policy applies: a `<flash:stream>` header, or a Flash socket.
    pub fn is_flash(&self) -> bool {
        self.dialect == Dialect::Flash || self.flash_socket
    }

    pub fn dialect(&self) -> &Dialect {
        &self.dialect
    }

    /// How the client reaches us, as an admin tells sessions apart (`jabberwock status`).
    pub fn client_kind(&self) -> ClientKind {
        match &self.transport {
            Transport::WebSocket(ws) if ws.is_xmpp() => ClientKind::WebSocket,
            Transport::WebSocket(_) => ClientKind::Ruffle,
            Transport::Memory { .. } => ClientKind::Bosh,
            _ if self.dialect == Dialect::Flash => ClientKind::Flash,
            Transport::Tls(_) | Transport::TlsClient(_) => ClientKind::Tls,
            _ => ClientKind::Tcp,
        }
    }

    /// When the client last sent anything, whitespace keepalives included.
    pub fn last_activity(&self) -> Instant {
        self.last_activity
    }

    pub fn is_encrypted(&self) -> bool {
        self.transport.is_encrypted()
    }

    /// The peer's TLS certificate chain, if it presented one (server-to-server streams).
    pub fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        self.transport.peer_certificates()
    }

    /// The negotiated TLS version, if the stream is TLS.
    pub fn tls_version(&self) -> Option<rustls::ProtocolVersion> {
        self.transport.tls_version()
    }

    /// The next stream event. Cancel-safe: bytes read are handed to the reader before any
    /// await point that could be dropped.
    pub async fn next_event(&mut self) -> Result<Event, ReadError> {
        if self.frames.is_some() {
            return self.next_framed_event().await;
        }
        loop {
            let event = self.reader.next_event()?;
            if self.dialect == Dialect::Xmpp && self.reader.dialect() == Some(Dialect::Flash) {
                // COMPAT: the NUL of an XMLSocket client's standard header came in a later
                // read than the header: from now on it is the Flash stream it always was.
                self.dialect = Dialect::Flash;
                self.nul_units = true;
            }
            if let Some(event) = event {
                if let Event::Header(header) = &event {
                    self.dialect = header.dialect.clone();
                    self.nul_units |= self.dialect == Dialect::Flash;
                }
                return Ok(event);
            }
            // Idle sessions wait here: waiting for readability first means they hold no
            // read buffer while they wait (the buffer lives only for the read itself).
            self.transport.readable().await?;
            if self.read_buf.capacity() < READ_CHUNK {
                self.read_buf.reserve_exact(READ_CHUNK);
            }
            self.read_buf.clear();
            let n = self.transport.read_buf(&mut self.read_buf).await?;
            if n == 0 {
                return Err(ReadError::Disconnected);
            }
            self.last_activity = Instant::now();
            if self.flash_socket && self.dialect != Dialect::Flash {
                // COMPAT: an XMLSocket widget opening with the standard header still ends
                // every unit with NUL (the player adds it): on a Flash socket those NULs
                // are dropped before the reader, which allows them after `<flash:stream>`
                // only, and our units get one too, or XMLSocket would never deliver them.
                let before = self.read_buf.len();
                self.read_buf.retain(|&b| b != 0);
                self.nul_units |= self.read_buf.len() < before;
                self.reader.feed(&self.read_buf);
            } else {
                self.reader.feed(&self.read_buf[..n]);
            }
            if self.transport.can_wait_readable() {
                self.read_buf = Vec::new();
            }
        }
    }

    /// RFC 7395: the next message's event (whitespace-only messages are skipped).
    /// Cancel-safe: a message is parsed as soon as it is taken from the socket.
    async fn next_framed_event(&mut self) -> Result<Event, ReadError> {
        loop {
            let Transport::WebSocket(ws) = &mut self.transport else {
                return Err(ReadError::Disconnected);
            };
            let Some(message) = ws.next_message().await? else {
                return Err(ReadError::Disconnected);
            };
            self.last_activity = Instant::now();
            let Some(frames) = self.frames.as_mut() else {
                return Err(ReadError::Disconnected);
            };
            if let Some(event) = frames.read(&message)? {
                return Ok(event);
            }
        }
    }

    /// RFC 7395 §3.6.1: answers the client's `<open/>` with a `<close/>` naming another
    /// endpoint, then ends the connection.
    pub async fn redirect(&mut self, see_other_uri: &str) {
        self.closed = true;
        self.begin_write();
        let close = Element::new("close", ns::FRAMING).with_attr("see-other-uri", see_other_uri);
        self.write_element(&close);
        self.end_unit();
        let _ = self.flush_write_buf().await;
        self.hang_up().await;
    }

    /// Sends our stream header, and the features when given. A Flash client gets them as two
    /// NUL-terminated units on the first stream; after a restart Openfire sent both in one
    /// unit, and XIFF relies on neither, so `one_unit` keeps that shape (COMPAT).
    pub async fn send_header(
        &mut self,
        header: &[u8],
        features: Option<&Element>,
        one_unit: bool,
    ) -> io::Result<()> {
        self.header_sent = true;
        self.begin_write();
        self.write_buf.extend_from_slice(header);
        if let Some(features) = features {
            // RFC 7395 §3.3.2: the features are a message of their own.
            if !one_unit || self.dialect == Dialect::WebSocket {
                self.end_unit();
            }
            self.write_element(features);
        }
        self.end_unit();
        self.flush_write_buf().await
    }

    pub async fn send(&mut self, element: &Element) -> io::Result<()> {
        self.begin_write();
        self.write_element(element);
        self.end_unit();
        self.flush_write_buf().await
    }

    /// Serialises `element` after the units queued before it, without writing anything:
    /// [`Self::flush`] sends them all in one write (over TLS in as few records as they fit
    /// in), what a busy server-to-server stream wants instead of a write per stanza.
    /// Whatever is queued and not flushed is dropped by the next [`Self::send`].
    pub fn queue(&mut self, element: &Element) {
        if self.write_buf.is_empty() {
            self.write_buf.reserve(WRITE_START);
        }
        self.write_element(element);
        self.end_unit();
    }

    /// Writes what [`Self::queue`] gathered, if anything.
    pub async fn flush(&mut self) -> io::Result<()> {
        if self.write_buf.is_empty() {
            return Ok(());
        }
        self.flush_write_buf().await
    }

    /// A stanza shared by many recipients, for the recipient `to`: the bytes its own copy
    /// would get from [`Self::send`], made once per dialect's form for all of them.
    pub async fn send_shared(&mut self, stanza: &SharedStanza, to: &str) -> io::Result<()> {
        self.begin_write();
        let parent_ns = self.stanza_parent_ns();
        if stanza.write_to(&mut self.write_buf, parent_ns, to) {
            // Once per dialect's form for all the stanza's recipients (tests count these).
            tracing::debug!(
                dialect = ?self.dialect,
                kind = %stanza.element().name(),
                "shared stanza serialised"
            );
        }
        self.end_unit();
        self.flush_write_buf().await
    }

    /// Raw bytes as one unit (policy answers, pre-built payloads).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.begin_write();
        self.write_buf.extend_from_slice(bytes);
        self.end_unit();
        self.flush_write_buf().await
    }

    /// RFC 6120 §5.4.3.3: after `<proceed/>` the TLS handshake takes over the socket, and the
    /// XML stream starts again from scratch.
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        self.reader.restart();
        self.transport.upgrade(acceptor).await
    }

    /// RFC 6120 §5.4.3.3, the initiating side: after `<proceed/>` we run the TLS client
    /// handshake for `name`, and the stream starts again from scratch.
    pub async fn start_tls_client(
        &mut self,
        connector: &tokio_rustls::TlsConnector,
        name: rustls::pki_types::ServerName<'static>,
    ) -> io::Result<()> {
        self.reader.restart();
        self.transport.upgrade_client(connector, name).await
    }

    /// RFC 6120 §4.3.3: after SASL success both sides start a new stream on the same socket.
    /// What the client already sent after its last SASL element (a pipelined restart header
    /// and bind) is read as that new stream, unlike after STARTTLS.
    pub fn restart(&mut self) {
        self.reader.restart_keeping_input();
    }

    /// Ends the stream: an optional stream error, then the closing tag, then TCP close.
    /// RFC 6120 §4.9.1.1: an error before our header still needs a header to be well-formed.
    pub async fn close(&mut self, error: Option<&StreamError>, default_host: &str) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.begin_write();
        if !self.header_sent {
            let header = if self.s2s {
                stream::s2s_header(default_host, None, Some(&new_stream_id()))
            } else {
                stream::server_header(
                    &self.dialect,
                    default_host,
                    &new_stream_id(),
                    None,
                    true,
                    "en",
                )
            };
            self.write_buf.extend_from_slice(&header);
            self.end_unit();
        }
        if let Some(error) = error {
            self.write_element(&error.to_element());
            self.end_unit();
        }
        self.write_buf
            .extend_from_slice(stream::stream_close(&self.dialect));
        self.end_unit();
        let _ = self.flush_write_buf().await;
        self.hang_up().await;
    }

    /// The stream is over, its last bytes written: its connection permits go before the
    /// FIN, so a client that reconnects as soon as it sees the close is not refused for a
    /// connection that is already gone.
    async fn hang_up(&mut self) {
        self.permits = None;
        let _ = self.transport.shutdown().await;
    }

    /// Lets go of the connection for good while its session lives on without it (a
    /// XEP-0198 session waiting for resumption, which may take many minutes): the socket is
    /// closed, so the peer's side is not left half-open and the descriptor is free, every
    /// buffer is given back, and so are its connection permits: a session waiting for
    /// resumption counts against neither connection cap (`stream/permits.rs`). Later
    /// writes fail; [`Self::close`] does nothing.
    pub fn release(&mut self) {
        self.closed = true;
        self.transport = Transport::Gone;
        self.permits = None;
        self.shrink();
    }

    /// Gives memory back while the session is idle (the performance issue's per-session budget).
    pub fn shrink(&mut self) {
        self.read_buf = Vec::new();
        self.write_buf = Vec::new();
        self.unit_ends = Vec::new();
        self.reader.shrink_to_fit();
        if let Some(frames) = &mut self.frames {
            frames.shrink_to_fit();
        }
    }

    /// Starts an outgoing write with room for a typical stanza in one allocation.
    fn begin_write(&mut self) {
        self.write_buf.clear();
        self.write_buf.reserve(WRITE_START);
    }

    /// The namespace a top-level element is written inside: the stream header's
    /// `jabber:client`, or, RFC 7395 §3.3.2, nothing (every message is a document of its
    /// own, so stanzas carry xmlns="jabber:client").
    fn stanza_parent_ns(&self) -> &'static str {
        match self.dialect {
            Dialect::WebSocket => "",
            Dialect::Flash | Dialect::Xmpp => ns::CLIENT,
        }
    }

    /// Serialises one top-level element as the dialect wants it.
    fn write_element(&mut self, element: &Element) {
        let start = self.write_buf.len();
        let parent_ns = self.stanza_parent_ns();
        if self.s2s {
            // XEP-0220 §2: dialback elements carry the prefix our header binds to
            // `jabber:server:dialback` (s2s_header's `xmlns:db`); ejabberd reads nothing
            // else as dialback.
            element.write_to_bound(&mut self.write_buf, parent_ns, &[(ns::DIALBACK, "db")]);
        } else {
            element.write_to(&mut self.write_buf, parent_ns);
        }
        // RFC 7395 §3.3.2: stream:features / stream:error declare the stream prefix they use.
        if self.dialect == Dialect::WebSocket && element.ns() == ns::STREAM {
            let at = start + "<stream:".len() + element.name().len();
            let decl = format!(" xmlns:stream=\"{}\"", ns::STREAM);
            self.write_buf.splice(at..at, decl.into_bytes());
        }
    }

    fn end_unit(&mut self) {
        match self.dialect {
            Dialect::WebSocket => self.unit_ends.push(self.write_buf.len()),
            // COMPAT: Flash XMLSocket delivers data to the SWF only at a NUL.
            _ if self.nul_units => self.write_buf.push(0),
            Dialect::Flash | Dialect::Xmpp => {}
        }
    }

    async fn flush_write_buf(&mut self) -> io::Result<()> {
        if self.dialect == Dialect::WebSocket {
            // One message per unit: the WebSocket transport sends what one flush carries.
            let mut start = 0;
            for end in std::mem::take(&mut self.unit_ends) {
                self.transport
                    .write_all(&self.write_buf[start..end])
                    .await?;
                self.transport.flush().await?;
                start = end;
            }
        } else {
            self.transport.write_all(&self.write_buf).await?;
        }
        self.transport.flush().await?;
        // Released after every write: a buffer kept between writes is held by every session
        // until its idle shrink, and what those buffers leave behind when they are freed stays
        // in the process's resident memory (docs/performance.md, "Profile-driven changes").
        self.write_buf = Vec::new();
        Ok(())
    }
}

/// A fresh, unguessable stream id (RFC 6120 §4.7.3).
pub fn new_stream_id() -> String {
    use rand::Rng;
    let n: u128 = rand::thread_rng().gen();
    format!("{n:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jabberwock_protocol::stanza::Stanza;

    /// What `conn` wrote, read from the other end of its in-memory pipe.
    async fn written(conn: &mut Connection, peer: &mut tokio::io::DuplexStream) -> Vec<u8> {
        conn.transport.flush().await.unwrap();
        let mut got = vec![0; 64 * 1024];
        let n = peer.read(&mut got).await.unwrap();
        got.truncate(n);
        got
    }

    /// A shared stanza's bytes for one recipient are, in every dialect, the bytes the
    /// per-copy path writes for that recipient's own copy (`to` escaped the same way).
    #[tokio::test]
    async fn shared_stanza_bytes_equal_the_own_copys_in_every_dialect() {
        let message = Element::new("message", ns::CLIENT)
            .with_attr("from", "room@conference.example.com/N'ck & co")
            .with_attr("type", "groupchat")
            .with_attr("id", "m<1>")
            .with_child(Element::new("body", ns::CLIENT).with_text("fish & \"chips\" <3"))
            .with_child(Element::new("occupant-id", "urn:xmpp:occupant-id:0").with_attr("id", "x"));
        let shared = SharedStanza::new(Stanza::from_element(message.clone()).unwrap());
        let recipients = [
            "alice@example.com/desk",
            "bob@example.com/it's mine & \"yours\" <here>",
        ];
        for (dialect, nul_units) in [
            (Dialect::Xmpp, false),
            (Dialect::Xmpp, true),
            (Dialect::Flash, true),
            (Dialect::WebSocket, false),
        ] {
            for to in recipients {
                let (io, mut peer) = tokio::io::duplex(64 * 1024);
                let transport = Transport::Memory { io, secure: false };
                let addr = "127.0.0.1:1".parse().unwrap();
                let mut conn = Connection::new(transport, addr, Limits::default(), b"");
                conn.dialect = dialect.clone();
                conn.nul_units = nul_units;
                let own = message.clone().with_attr("to", to);
                conn.send(&own).await.unwrap();
                let want = written(&mut conn, &mut peer).await;
                conn.send_shared(&shared, to).await.unwrap();
                let got = written(&mut conn, &mut peer).await;
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want),
                    "{dialect:?} nul={nul_units} to={to}"
                );
                assert!(want.windows(4).any(|w| w == b" to="), "{want:?}");
            }
        }
    }

    /// Units queued and flushed together are the bytes their sends one by one write (with
    /// a NUL after each when the stream wants them), and a flush with nothing queued
    /// writes nothing.
    #[tokio::test]
    async fn queued_units_flush_as_their_sends_would_write_them() {
        let stanzas: Vec<Element> = (0..3)
            .map(|i| {
                Element::new("message", ns::CLIENT)
                    .with_attr("id", i.to_string())
                    .with_child(Element::new("body", ns::CLIENT).with_text("fish & chips"))
            })
            .collect();
        for nul_units in [false, true] {
            let (io, mut peer) = tokio::io::duplex(64 * 1024);
            let transport = Transport::Memory { io, secure: false };
            let addr = "127.0.0.1:1".parse().unwrap();
            let mut conn = Connection::new(transport, addr, Limits::default(), b"");
            conn.nul_units = nul_units;
            for stanza in &stanzas {
                conn.send(stanza).await.unwrap();
            }
            let want = written(&mut conn, &mut peer).await;
            for stanza in &stanzas {
                conn.queue(stanza);
            }
            conn.flush().await.unwrap();
            conn.flush().await.unwrap();
            conn.send(&stanzas[0]).await.unwrap();
            let got = written(&mut conn, &mut peer).await;
            let first = want.len() / 3;
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&[&want[..], &want[..first]].concat()),
                "nul={nul_units}"
            );
        }
    }
}
