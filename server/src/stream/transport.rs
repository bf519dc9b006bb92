//! The byte pipe under a stream: plain TCP, or TLS over it (direct TLS or after STARTTLS),
//! or a WebSocket carrying the raw bytes (Ruffle's socket proxy, [`super::websocket`]).
//! Nothing here knows about XML; everything above sees one `AsyncRead + AsyncWrite`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::tls::TlsTcp;
use super::websocket::WsStream;

/// A client connection's transport. The TLS variant is boxed: a rustls session is large,
/// and a plain session should not pay for it.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsTcp>),
    /// TLS we initiated: an outgoing server-to-server stream after STARTTLS (RFC 6120
    /// §5.4.3.3, the initiating entity's side).
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Binary WebSocket frames carrying the stream's bytes (no TLS of its own).
    WebSocket(Box<WsStream>),
    /// An in-memory pipe whose far end is a BOSH session (`crate::http::bosh`), which
    /// writes what the client POSTs and reads what the core writes. `secure`: the HTTP
    /// hop counts as encrypted (no STARTTLS over BOSH: XEP-0206 §4).
    Memory {
        io: tokio::io::DuplexStream,
        secure: bool,
    },
    /// No socket here: a TLS handshake owns it for the moment, or the connection was let go
    /// while its session lives on (`Connection::release`).
    Gone,
}

impl Transport {
    /// Whether [`Transport::readable`] really waits: a socket can say it has data without
    /// being read, and our TLS knows what it holds besides (the others can't tell).
    pub fn can_wait_readable(&self) -> bool {
        matches!(self, Transport::Plain(_) | Transport::Tls(_))
    }

    /// Resolves when a read would find data (or end of stream); at once for transports
    /// that can't tell without reading.
    pub async fn readable(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(tcp) => tcp.readable().await,
            Transport::Tls(tls) => tls.readable().await,
            _ => Ok(()),
        }
    }

    pub fn is_encrypted(&self) -> bool {
        match self {
            Transport::Tls(_) | Transport::TlsClient(_) => true,
            Transport::WebSocket(ws) => ws.is_secure(),
            Transport::Memory { secure, .. } => *secure,
            _ => false,
        }
    }

    /// The peer's certificate chain on a TLS transport, if it sent one.
    pub fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        match self {
            Transport::Tls(tls) => tls.peer_certificates(),
            Transport::TlsClient(tls) => tls.get_ref().1.peer_certificates(),
            _ => None,
        }
    }

    /// The negotiated TLS version on a TLS transport.
    pub fn tls_version(&self) -> Option<rustls::ProtocolVersion> {
        match self {
            Transport::Tls(tls) => tls.protocol_version(),
            Transport::TlsClient(tls) => tls.get_ref().1.protocol_version(),
            _ => None,
        }
    }

    /// Runs the server side of a TLS handshake over the plain socket (RFC 6120 §5.4.3.3 for
    /// STARTTLS, XEP-0368 for direct TLS). On failure the transport is gone: the caller closes.
    pub async fn upgrade(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        match std::mem::replace(self, Transport::Gone) {
            Transport::Plain(tcp) => {
                let tls = TlsTcp::accept(tcp, acceptor.config().clone()).await?;
                *self = Transport::Tls(Box::new(tls));
                Ok(())
            }
            other @ Transport::WebSocket(_) => {
                *self = other;
                Err(io::Error::other("no TLS over this WebSocket"))
            }
            other @ Transport::Memory { .. } => {
                *self = other;
                Err(io::Error::other("no TLS over BOSH"))
            }
            other => {
                *self = other;
                Err(io::Error::other("TLS is already in place"))
            }
        }
    }
}

impl Transport {
    /// Runs the client side of a TLS handshake over the plain socket, for `name`.
    pub async fn upgrade_client(
        &mut self,
        connector: &TlsConnector,
        name: rustls::pki_types::ServerName<'static>,
    ) -> io::Result<()> {
        match std::mem::replace(self, Transport::Gone) {
            Transport::Plain(tcp) => {
                let tls = connector.connect(name, tcp).await?;
                *self = Transport::TlsClient(Box::new(tls));
                Ok(())
            }
            other => {
                *self = other;
                Err(io::Error::other("TLS needs a plain TCP transport"))
            }
        }
    }
}

/// Builds the acceptor once; every connection shares it.
pub fn acceptor(config: Arc<rustls::ServerConfig>) -> TlsAcceptor {
    TlsAcceptor::from(config)
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "transport is being upgraded")
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::WebSocket(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::Memory { io, .. } => Pin::new(io).poll_read(cx, buf),
            Transport::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::WebSocket(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Memory { io, .. } => Pin::new(io).poll_write(cx, buf),
            Transport::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::WebSocket(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Memory { io, .. } => Pin::new(io).poll_flush(cx),
            Transport::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::TlsClient(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::WebSocket(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::Memory { io, .. } => Pin::new(io).poll_shutdown(cx),
            Transport::Gone => Poll::Ready(Ok(())),
        }
    }
}
