//! One client connection as a flow of XML stream events in, and framed stanzas out.
//!
//! This is where the two wire dialects differ and nowhere else above it: a Flash
//! (XMLSocket) stream gets one NUL after every unit it is sent (../shared/flash-protocol.md §2),
//! a standard stream does not.

use std::io;
use std::net::SocketAddr;

use jabberwock_protocol::ns;
use jabberwock_protocol::stream::{self, Dialect, StreamError};
use jabberwock_protocol::xml::reader::{Event, Limits, StreamReader};
use jabberwock_protocol::xml::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::transport::Transport;

/// Read size: large enough for a typical stanza in one call, small enough to keep idle
/// sessions cheap (the buffer is released when the session goes idle).
const READ_CHUNK: usize = 4096;

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
}

impl Connection {
    /// `initial` holds the bytes the stream layer already read while sniffing.
    pub fn new(transport: Transport, peer: SocketAddr, limits: Limits, initial: &[u8]) -> Self {
        let mut reader = StreamReader::new(limits);
        reader.feed(initial);
        Connection {
            transport,
            reader,
            dialect: Dialect::Xmpp,
            read_buf: Vec::new(),
            write_buf: Vec::new(),
            header_sent: false,
            closed: false,
            last_activity: Instant::now(),
            peer,
        }
    }

    pub fn dialect(&self) -> &Dialect {
        &self.dialect
    }

    /// When the client last sent anything, whitespace keepalives included.
    pub fn last_activity(&self) -> Instant {
        self.last_activity
    }

    pub fn is_encrypted(&self) -> bool {
        self.transport.is_encrypted()
    }

    /// The next stream event. Cancel-safe: bytes read are handed to the reader before any
    /// await point that could be dropped.
    pub async fn next_event(&mut self) -> Result<Event, ReadError> {
        loop {
            if let Some(event) = self.reader.next_event()? {
                if let Event::Header(header) = &event {
                    self.dialect = header.dialect.clone();
                }
                return Ok(event);
            }
            if self.read_buf.capacity() < READ_CHUNK {
                self.read_buf.reserve_exact(READ_CHUNK);
            }
            self.read_buf.clear();
            let n = self.transport.read_buf(&mut self.read_buf).await?;
            if n == 0 {
                return Err(ReadError::Disconnected);
            }
            self.last_activity = Instant::now();
            self.reader.feed(&self.read_buf[..n]);
        }
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
        self.write_buf.clear();
        self.write_buf.extend_from_slice(header);
        if let Some(features) = features {
            if !one_unit {
                self.end_unit();
            }
            features.write_to(&mut self.write_buf, ns::CLIENT);
        }
        self.end_unit();
        self.flush_write_buf().await
    }

    pub async fn send(&mut self, element: &Element) -> io::Result<()> {
        self.write_buf.clear();
        element.write_to(&mut self.write_buf, ns::CLIENT);
        self.end_unit();
        self.flush_write_buf().await
    }

    /// Raw bytes as one unit (policy answers, pre-built payloads).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_buf.clear();
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

    /// RFC 6120 §4.3.3: after SASL success both sides start a new stream on the same socket.
    pub fn restart(&mut self) {
        self.reader.restart();
    }

    /// Ends the stream: an optional stream error, then the closing tag, then TCP close.
    /// RFC 6120 §4.9.1.1: an error before our header still needs a header to be well-formed.
    pub async fn close(&mut self, error: Option<&StreamError>, default_host: &str) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.write_buf.clear();
        if !self.header_sent {
            let header = stream::server_header(
                &self.dialect,
                default_host,
                &new_stream_id(),
                None,
                true,
                "en",
            );
            self.write_buf.extend_from_slice(&header);
            self.end_unit();
        }
        if let Some(error) = error {
            error.to_element().write_to(&mut self.write_buf, ns::CLIENT);
            self.end_unit();
        }
        self.write_buf
            .extend_from_slice(stream::stream_close(&self.dialect));
        self.end_unit();
        let _ = self.flush_write_buf().await;
        let _ = self.transport.shutdown().await;
    }

    /// Gives memory back while the session is idle (the performance issue's per-session budget).
    pub fn shrink(&mut self) {
        self.read_buf = Vec::new();
        self.write_buf = Vec::new();
        self.reader.shrink_to_fit();
    }

    fn end_unit(&mut self) {
        // COMPAT: Flash XMLSocket delivers data to the SWF only at a NUL.
        if self.dialect == Dialect::Flash {
            self.write_buf.push(0);
        }
    }

    async fn flush_write_buf(&mut self) -> io::Result<()> {
        self.transport.write_all(&self.write_buf).await?;
        self.transport.flush().await?;
        if self.write_buf.capacity() > 4 * READ_CHUNK {
            self.write_buf = Vec::new();
        }
        Ok(())
    }
}

/// A fresh, unguessable stream id (RFC 6120 §4.7.3).
pub fn new_stream_id() -> String {
    use rand::Rng;
    let n: u128 = rand::thread_rng().gen();
    format!("{n:032x}")
}
