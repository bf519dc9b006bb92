//! TLS over a TCP socket with rustls' unbuffered API, so an idle session holds no buffer.
//!
//! rustls' buffered `ServerConnection` keeps a 4 KiB receive buffer for the life of the
//! connection (and tokio-rustls reads through it), which was most of what an idle STARTTLS
//! session cost over a plain one. Here the caller owns the buffers: TLS bytes are read only
//! once the socket is readable, decrypted, handed over as plaintext, and every buffer is
//! released as soon as it is empty. Used for STARTTLS (RFC 6120 §5.4) and direct TLS
//! (XEP-0368); TLS 1.2 and 1.3 alike, close_notify both ways.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// How many TLS bytes one socket read takes (the buffer lives only until they are decrypted).
const READ_SIZE: usize = 4096;

/// The most received bytes kept unprocessed: a handshake message rustls is still joining (it
/// allows 64 KiB, as its buffered API does) plus a record header; a record alone is smaller.
const MAX_INCOMING: usize = 0xffff + 5 + READ_SIZE;

/// Plaintext encrypted per `poll_write` call: one full record (RFC 8446 §5.1: 2^14).
const WRITE_CHUNK: usize = 16 * 1024;

/// What a pass over the received TLS records ended with.
enum Progress {
    /// Everything received is processed; application data may be written.
    Ready,
    /// The handshake waits for more bytes from the peer.
    NeedsData,
}

/// What to encrypt once rustls lets us write.
#[derive(Clone, Copy)]
enum Send<'a> {
    Nothing,
    Data(&'a [u8]),
    CloseNotify,
}

/// One socket read.
enum Read {
    Bytes,
    Eof,
}

pub struct TlsTcp {
    tcp: TcpStream,
    conn: UnbufferedServerConnection,
    /// Received TLS bytes not processed yet (a partial record); empty, without capacity, when
    /// there are none.
    incoming: Vec<u8>,
    /// Decrypted bytes not yet read by the caller, from `plain_pos` on.
    plaintext: Vec<u8>,
    plain_pos: usize,
    /// Encrypted bytes not yet written to the socket, from `out_pos` on.
    outgoing: Vec<u8>,
    out_pos: usize,
    /// The peer sent close_notify or closed the socket: reads give end of file.
    read_closed: bool,
    close_notify_sent: bool,
    /// rustls reported an error: the connection only sends what is queued (an alert), then closes.
    failed: bool,
}

impl TlsTcp {
    /// Runs the server side of the handshake to completion.
    pub async fn accept(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<Self> {
        let conn = UnbufferedServerConnection::new(config).map_err(invalid)?;
        let mut tls = TlsTcp {
            tcp,
            conn,
            incoming: Vec::new(),
            plaintext: Vec::new(),
            plain_pos: 0,
            outgoing: Vec::new(),
            out_pos: 0,
            read_closed: false,
            close_notify_sent: false,
            failed: false,
        };
        loop {
            let progress = tls.process(Send::Nothing);
            // Handshake flights (and any alert) go out before we wait or fail.
            if tls.out_pos < tls.outgoing.len() {
                tls.tcp.write_all(&tls.outgoing[tls.out_pos..]).await?;
            }
            tls.outgoing = Vec::new();
            tls.out_pos = 0;
            match progress? {
                Progress::Ready => break,
                Progress::NeedsData => {
                    if let Read::Eof = poll_fn(|cx| tls.poll_read_some(cx)).await? {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
            }
        }
        tls.release_idle_buffers();
        Ok(tls)
    }

    /// The certificate chain the client presented, if it was asked for one and sent it
    /// (server-to-server streams ask: `modules/s2s/certificate.rs`).
    pub fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// The negotiated TLS version, for the logs.
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// Waits until a read would find something: buffered plaintext or TLS bytes, or the
    /// socket readable (or at end of file).
    pub async fn readable(&self) -> io::Result<()> {
        if self.plain_pos < self.plaintext.len() || !self.incoming.is_empty() || self.read_closed {
            return Ok(());
        }
        self.tcp.readable().await
    }

    /// Processes the received records until rustls needs more input or lets us write, then
    /// encrypts `send`: decrypted data goes to `plaintext`, handshake messages, alerts and
    /// records to `outgoing`. After a failure rustls is not asked again: its state may point
    /// into bytes that were discarded.
    fn process(&mut self, send: Send<'_>) -> io::Result<Progress> {
        if self.failed {
            return Err(io::Error::other("TLS connection failed earlier"));
        }
        let result = self.process_records(send);
        self.failed = result.is_err();
        result
    }

    fn process_records(&mut self, send: Send<'_>) -> io::Result<Progress> {
        loop {
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(&mut self.incoming);
            let progress = match state {
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(invalid)?;
                        if self.plain_pos == self.plaintext.len() {
                            self.plaintext.clear();
                            self.plain_pos = 0;
                        }
                        self.plaintext.extend_from_slice(record.payload);
                    }
                    None
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    let start = self.outgoing.len();
                    self.outgoing.resize(start + READ_SIZE, 0);
                    let written = match encode.encode(&mut self.outgoing[start..]) {
                        Err(EncodeError::InsufficientSize(size)) => {
                            self.outgoing.resize(start + size.required_size, 0);
                            encode.encode(&mut self.outgoing[start..])
                        }
                        other => other,
                    };
                    let n = written.map_err(|e| io::Error::other(e.to_string()))?;
                    self.outgoing.truncate(start + n);
                    None
                }
                // What was encoded is queued in `outgoing`, which is written before any later
                // byte: it counts as sent.
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    None
                }
                Ok(ConnectionState::BlockedHandshake) => Some(Progress::NeedsData),
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    let start = self.outgoing.len();
                    let guess = match send {
                        Send::Nothing => 0,
                        Send::Data(d) => d.len() + 64 * (d.len() / WRITE_CHUNK + 1),
                        Send::CloseNotify => 64,
                    };
                    self.outgoing.resize(start + guess, 0);
                    let mut encrypt = |out: &mut [u8]| match send {
                        Send::Nothing => Ok(0),
                        Send::Data(data) => traffic.encrypt(data, out),
                        Send::CloseNotify => traffic.queue_close_notify(out),
                    };
                    let written = match encrypt(&mut self.outgoing[start..]) {
                        Err(EncryptError::InsufficientSize(size)) => {
                            self.outgoing.resize(start + size.required_size, 0);
                            encrypt(&mut self.outgoing[start..])
                        }
                        other => other,
                    };
                    let n = written.map_err(|e| io::Error::other(e.to_string()))?;
                    self.outgoing.truncate(start + n);
                    Some(Progress::Ready)
                }
                Ok(ConnectionState::PeerClosed) => {
                    self.read_closed = true;
                    None
                }
                Ok(ConnectionState::Closed) => {
                    self.read_closed = true;
                    match send {
                        Send::Data(_) => return Err(io::ErrorKind::BrokenPipe.into()),
                        _ => Some(Progress::Ready),
                    }
                }
                // Early data is never accepted (`max_early_data_size` stays 0).
                Ok(_) => return Err(invalid("unexpected TLS state")),
                Err(e) => {
                    self.queue_alert();
                    self.discard(discard);
                    return Err(invalid(e));
                }
            };
            self.discard(discard);
            if let Some(progress) = progress {
                return Ok(progress);
            }
        }
    }

    /// After a fatal error rustls still holds the alert it wants sent (RFC 8446 §6.2). Asked
    /// with the same bytes as the failed call: rustls' handshake deframer still points into them.
    fn queue_alert(&mut self) {
        let status = self.conn.process_tls_records(&mut self.incoming);
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) = status.state {
            let start = self.outgoing.len();
            self.outgoing.resize(start + 64, 0);
            let n = encode.encode(&mut self.outgoing[start..]).unwrap_or(0);
            self.outgoing.truncate(start + n);
        }
    }

    fn discard(&mut self, n: usize) {
        if n > 0 {
            self.incoming.drain(..n);
        }
    }

    /// Appends what the socket has to `incoming`, waiting for it if need be. Through
    /// `poll_read`, which (unlike `try_read`) forgets the socket's readiness after a short
    /// read, so that `readable` waits again instead of waking a session for nothing.
    fn poll_read_some(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Read>> {
        let start = self.incoming.len();
        if start >= MAX_INCOMING {
            return Poll::Ready(Err(invalid("TLS message too large")));
        }
        self.incoming.resize(start + READ_SIZE, 0);
        let mut buf = ReadBuf::new(&mut self.incoming[start..]);
        let result = Pin::new(&mut self.tcp).poll_read(cx, &mut buf);
        let n = buf.filled().len();
        self.incoming.truncate(start + n);
        if result.is_pending() && self.incoming.is_empty() {
            self.incoming = Vec::new();
        }
        ready!(result)?;
        Poll::Ready(Ok(if n == 0 { Read::Eof } else { Read::Bytes }))
    }

    /// Writes `outgoing` to the socket; Ready once all of it is written (then it is freed).
    fn poll_write_outgoing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.outgoing.len() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.outgoing[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.outgoing = Vec::new();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }

    /// Drops the buffers that hold nothing (the point of this type: an idle session keeps none).
    fn release_idle_buffers(&mut self) {
        if self.incoming.is_empty() {
            self.incoming = Vec::new();
        }
        if self.plain_pos == self.plaintext.len() {
            self.plaintext = Vec::new();
            self.plain_pos = 0;
        }
        if self.out_pos == self.outgoing.len() {
            self.outgoing = Vec::new();
            self.out_pos = 0;
        }
    }

    /// Processes what was received (and sends what that asks for: a TLS 1.3 KeyUpdate answer,
    /// RFC 8446 §4.6.3, or an alert: now if the socket takes it, else before the next write).
    fn poll_process(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let progress = self.process(Send::Nothing);
        if self.out_pos < self.outgoing.len() {
            if let Poll::Ready(Err(e)) = self.poll_write_outgoing(cx) {
                progress?;
                return Err(e);
            }
        }
        progress.map(|_| ())
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl AsyncRead for TlsTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.plain_pos < this.plaintext.len() {
                let n = buf.remaining().min(this.plaintext.len() - this.plain_pos);
                buf.put_slice(&this.plaintext[this.plain_pos..this.plain_pos + n]);
                this.plain_pos += n;
                this.release_idle_buffers();
                return Poll::Ready(Ok(()));
            }
            if this.read_closed {
                this.release_idle_buffers();
                return Poll::Ready(Ok(()));
            }
            // Nothing buffered: wait for the socket without holding a buffer.
            this.release_idle_buffers();
            match ready!(this.poll_read_some(cx))? {
                // End of file without close_notify: the caller sees a lost connection.
                Read::Eof => this.read_closed = true,
                // A partial record stays in `incoming` until the rest arrives.
                Read::Bytes => this.poll_process(cx)?,
            }
        }
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Backpressure: earlier records must be on the socket before more are encrypted.
        ready!(this.poll_write_outgoing(cx))?;
        if this.close_notify_sent {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let n = buf.len().min(WRITE_CHUNK);
        // Only WriteTraffic encrypts: a handshake still waiting for the peer would leave the
        // data unsent, so saying it was written would lose it.
        if let Progress::NeedsData = this.process(Send::Data(&buf[..n]))? {
            return Poll::Ready(Err(io::Error::other(
                "TLS handshake not finished: cannot send application data",
            )));
        }
        // Start sending now; what the socket doesn't take waits for flush or the next write.
        if let Poll::Ready(Err(e)) = this.poll_write_outgoing(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_outgoing(cx))?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_notify_sent && !this.failed {
            ready!(this.poll_write_outgoing(cx))?;
            this.close_notify_sent = true;
            // RFC 8446 §6.1: close_notify before closing our side of the socket.
            this.process(Send::CloseNotify)?;
        }
        ready!(this.poll_write_outgoing(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    fn configs(
        version: &'static rustls::SupportedProtocolVersion,
    ) -> (Arc<ServerConfig>, Arc<rustls::ClientConfig>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert = CertificateDer::from(cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }

    /// Both directions carry more than one record, and both sides close with close_notify.
    async fn round_trip(version: &'static rustls::SupportedProtocolVersion) {
        let (server_config, client_config) = configs(version);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let expected = big.clone();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = TlsTcp::accept(tcp, server_config).await.unwrap();
            let mut got = vec![0; expected.len()];
            tls.readable().await.unwrap();
            tls.read_exact(&mut got).await.unwrap();
            assert!(got == expected, "server read what the client wrote");
            // Idle: nothing buffered once everything was read.
            assert_eq!(tls.incoming.capacity(), 0);
            assert_eq!(tls.plaintext.capacity(), 0);
            tls.write_all(&got).await.unwrap();
            tls.flush().await.unwrap();
            assert_eq!(tls.outgoing.capacity(), 0);
            // The client's close_notify is end of file.
            let mut rest = Vec::new();
            tls.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
            tls.shutdown().await.unwrap();
        });
        let connector = tokio_rustls::TlsConnector::from(client_config);
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = connector.connect(name, tcp).await.unwrap();
        client.write_all(&big).await.unwrap();
        client.flush().await.unwrap();
        let mut echoed = vec![0; big.len()];
        client.read_exact(&mut echoed).await.unwrap();
        assert!(echoed == big, "client read what the server echoed");
        client.shutdown().await.unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        // rustls reports a close without close_notify as UnexpectedEof: this one had it.
        assert!(rest.is_empty());
        server.await.unwrap();
    }

    #[tokio::test]
    async fn tls13_round_trip() {
        round_trip(&rustls::version::TLS13).await;
    }

    #[tokio::test]
    async fn tls12_round_trip() {
        round_trip(&rustls::version::TLS12).await;
    }

    #[tokio::test]
    async fn garbage_fails_the_handshake() {
        let (server_config, _) = configs(&rustls::version::TLS13);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            TlsTcp::accept(tcp, server_config).await.err()
        });
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"\x16\x03\x01\x00\x09\x01\x00\x00\x05hello")
            .await
            .unwrap();
        let err = server.await.unwrap().expect("handshake fails");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // RFC 8446 §6.2: the failure is announced with an alert record (type 21).
        let mut reply = [0u8; 1];
        tcp.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply[0], 21);
    }
}
