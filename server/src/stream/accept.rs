//! The first moments of a connection: direct TLS or not, then what the first bytes are.
//! Ends with an XML [`Connection`] for c2s, or with the connection already answered
//! (policy file, HTTP, garbage, silence).

use std::io;
use std::net::SocketAddr;

use jabberwock_protocol::stream::{StreamCondition, StreamError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::connection::Connection;
use super::detect::{classify, FirstBytes};
use super::permits::ConnectionPermits;
use super::transport::Transport;
use crate::server::Server;

/// How much we read while still unable to tell what the client is (Prosody's multiplexer
/// uses the same 1 KiB bound).
const SNIFF_LIMIT: usize = 1024;

/// TLS record type of a handshake message; never a valid first byte of XML or HTTP.
const TLS_HANDSHAKE: u8 = 0x16;

/// Sniffs and answers what the stream layer itself serves. Returns the XML stream (standard
/// or Flash) for c2s, holding the connection's `permits`, or `None` when the connection
/// was already answered and closed (HTTP keeps the place under `c2s.max_connections` for
/// as long as it is served, and gives it to a stream it is upgraded to).
/// `direct_tls_only` is set on the XEP-0368 port, where a connection must start with TLS.
/// `deadline` is the whole handshake's (sniffing, TLS, negotiation), not this step's.
pub async fn open(
    server: &Server,
    tcp: TcpStream,
    peer: SocketAddr,
    direct_tls_only: bool,
    deadline: Instant,
    permits: ConnectionPermits,
) -> Option<Connection> {
    let mut transport = Transport::Plain(tcp);
    let mut initial = Vec::new();
    let sniffed = timeout_at(
        deadline,
        sniff(server, &mut transport, &mut initial, direct_tls_only),
    )
    .await;
    let kind = match sniffed {
        Ok(Ok(kind)) => kind,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "connection ended before it said anything");
            return None;
        }
        Err(_) => {
            // RFC 6120 §4.9.3.4: a peer that says nothing in time gets connection-timeout.
            let mut conn = Connection::new(transport, peer, server.limits(), &initial);
            let err = StreamError::new(StreamCondition::ConnectionTimeout);
            conn.close(Some(&err), &server.default_host()).await;
            return None;
        }
    };
    match kind {
        FirstBytes::Xml => {
            Some(Connection::new(transport, peer, server.limits(), &initial).holding(permits))
        }
        FirstBytes::PolicyRequest if server.config.flash.enabled => {
            // docs/flash-protocol.md §5: the policy document, one NUL, then close.
            tracing::debug!(%peer, "answered a Flash socket policy request");
            let mut reply = server.policy().to_vec();
            reply.push(0);
            let _ = transport.write_all(&reply).await;
            let _ = transport.shutdown().await;
            None
        }
        FirstBytes::Http => {
            // One port for every client kind: WebSocket, BOSH and the rest of the HTTP
            // endpoints are served here too, by the same HTTP stack (http/conn.rs).
            // The address's place is held while the HTTP connection is served.
            let (permit, _address) = permits.split();
            crate::http::conn::handoff(server, transport, initial, peer, permit).await;
            None
        }
        _ => {
            tracing::debug!(%peer, "unrecognised first bytes");
            let mut conn = Connection::new(transport, peer, server.limits(), &[]);
            let err = StreamError::new(StreamCondition::NotWellFormed);
            conn.close(Some(&err), &server.default_host()).await;
            None
        }
    }
}

async fn sniff(
    server: &Server,
    transport: &mut Transport,
    buf: &mut Vec<u8>,
    direct_tls_only: bool,
) -> io::Result<FirstBytes> {
    if let Transport::Plain(tcp) = transport {
        // Peek, don't read: the TLS library needs the ClientHello bytes untouched.
        let mut first = [0u8; 1];
        if tcp.peek(&mut first).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if first[0] == TLS_HANDSHAKE {
            transport.upgrade(&server.tls).await?;
        } else if direct_tls_only {
            return Ok(FirstBytes::Garbage);
        }
    }
    loop {
        if transport.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        match classify(buf) {
            FirstBytes::NeedMore if buf.len() < SNIFF_LIMIT => continue,
            FirstBytes::NeedMore | FirstBytes::Tls => return Ok(FirstBytes::Garbage),
            kind => return Ok(kind),
        }
    }
}
