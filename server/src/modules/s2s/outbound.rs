//! Our side of a server-to-server stream (RFC 6120 §4, the initiating entity): connect to
//! the peer's address, STARTTLS (§5), then XEP-0220 dialback for the (local, remote)
//! pair; stanzas queued meanwhile go out once it passed, and an idle stream is closed.

use std::sync::Arc;

use jabberwock_protocol::dialback::{self, Dialback, Kind, Outcome};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::Condition;
use jabberwock_protocol::stream::{s2s_header, StreamHeader};
use jabberwock_protocol::xml::reader::Event;
use jabberwock_protocol::xml::Element;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};

use super::pool::{self, Pair};
use super::resolve;
use super::Shared;
use crate::server::Server;
use crate::stream::connection::{Connection, ReadError};
use crate::stream::transport::Transport;

/// Why an outgoing stream could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Find(#[from] resolve::FindError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("stream: {0}")]
    Read(#[from] ReadError),
    #[error("the peer offers no STARTTLS and encryption is required")]
    NoTls,
    #[error("unexpected {0:?} from the peer")]
    Unexpected(String),
    #[error("the peer's stream has no id")]
    NoStreamId,
    #[error("dialback refused by the peer")]
    Refused,
}

/// An open, encrypted (unless the config allows otherwise) stream to `remote`, its header
/// sent and the peer's header and features read: what dialback is done over.
pub struct Opened {
    pub conn: Connection,
    /// The id of the peer's current stream (XEP-0185's Stream ID).
    pub stream_id: String,
}

/// Connects to `remote` for `local`, STARTTLS included.
pub async fn open(
    shared: &Shared,
    server: &Server,
    local: &str,
    remote: &str,
) -> Result<Opened, OpenError> {
    let found = shared.resolver.connect(&shared.config, remote).await?;
    let _ = found.tcp.set_nodelay(true);
    let transport = Transport::Plain(found.tcp);
    let mut conn = Connection::server_to_server(transport, found.addr, server.limits());
    if found.direct_tls {
        conn.start_tls_client(&shared.tls_direct, tls_name(remote)?)
            .await?;
    }
    let (mut header, mut features) = exchange_headers(&mut conn, local, remote).await?;
    if !conn.is_encrypted() {
        if features.get_child("starttls", ns::TLS).is_some() {
            conn.send(&Element::new("starttls", ns::TLS)).await?;
            let proceed = next_element(&mut conn).await?;
            if !proceed.is("proceed", ns::TLS) {
                return Err(OpenError::Unexpected(proceed.name().to_owned()));
            }
            conn.start_tls_client(&shared.tls, tls_name(remote)?)
                .await?;
            (header, features) = exchange_headers(&mut conn, local, remote).await?;
        } else if shared.config.require_encryption {
            return Err(OpenError::NoTls);
        }
    }
    let _ = features;
    let stream_id = header.id.ok_or(OpenError::NoStreamId)?;
    Ok(Opened { conn, stream_id })
}

fn tls_name(remote: &str) -> Result<ServerName<'static>, OpenError> {
    ServerName::try_from(remote.to_owned())
        .map_err(|_| OpenError::Unexpected("a domain that is no TLS name".into()))
}

/// Sends our header, reads the peer's and its features.
async fn exchange_headers(
    conn: &mut Connection,
    local: &str,
    remote: &str,
) -> Result<(StreamHeader, Element), OpenError> {
    conn.send_header(&s2s_header(local, Some(remote), None), None, false)
        .await?;
    let header = match conn.next_event().await? {
        Event::Header(header) => header,
        Event::Stanza(el) => return Err(OpenError::Unexpected(el.name().to_owned())),
        Event::Close => return Err(OpenError::Unexpected("stream close".into())),
    };
    let features = next_element(conn).await?;
    if !features.is("features", ns::STREAM) {
        return Err(OpenError::Unexpected(features.name().to_owned()));
    }
    Ok((header, features))
}

/// The next top-level element; a stream error or close ends the attempt.
pub async fn next_element(conn: &mut Connection) -> Result<Element, OpenError> {
    match conn.next_event().await? {
        Event::Stanza(el) if el.is("error", ns::STREAM) => {
            let condition = el.children().next().map(|c| c.name().to_owned());
            Err(OpenError::Unexpected(format!(
                "stream error {}",
                condition.unwrap_or_default()
            )))
        }
        Event::Stanza(el) => Ok(el),
        Event::Header(_) => Err(OpenError::Unexpected("a second header".into())),
        Event::Close => Err(OpenError::Unexpected("stream close".into())),
    }
}

/// Opens the pair's stream and passes dialback (XEP-0220 §2.1): our `<db:result/>` with
/// the key for the peer's stream id, answered `valid`.
async fn establish(shared: &Shared, server: &Server, pair: &Pair) -> Result<Connection, OpenError> {
    let (local, remote) = (pair.0.as_str(), pair.1.as_str());
    let Opened {
        mut conn,
        stream_id,
    } = open(shared, server, local, remote).await?;
    let key = dialback::key(shared.secret(), remote, local, &stream_id);
    let request = Dialback::request(Kind::Result, local, remote, None, &key);
    conn.send(&request.to_element()).await?;
    loop {
        let el = next_element(&mut conn).await?;
        let Ok(answer) = Dialback::parse(&el) else {
            continue;
        };
        if answer.kind != Kind::Result || answer.from != remote || answer.to != local {
            continue;
        }
        return match answer.outcome {
            Some(Outcome::Valid) => Ok(conn),
            _ => {
                conn.close(None, local).await;
                Err(OpenError::Refused)
            }
        };
    }
}

/// The pair's stream for its life: set up within `connect_timeout`, then stanzas from the
/// queue out until idle, closed or shut down. Whatever it could not send is bounced.
pub async fn run(
    shared: Arc<Shared>,
    server: Arc<Server>,
    pair: Pair,
    queue: mpsc::Sender<Element>,
    mut rx: mpsc::Receiver<Element>,
) {
    let limit = shared.config.connect_timeout();
    let established = timeout(limit, establish(&shared, &server, &pair)).await;
    let mut conn = match established {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not reach the remote server");
            return give_up(
                &shared,
                &server,
                &pair,
                &queue,
                rx,
                Condition::RemoteServerNotFound,
            )
            .await;
        }
        Err(_) => {
            tracing::warn!(
                seconds = limit.as_secs(),
                "remote server not ready within connect_timeout"
            );
            return give_up(
                &shared,
                &server,
                &pair,
                &queue,
                rx,
                Condition::RemoteServerTimeout,
            )
            .await;
        }
    };
    tracing::info!("outgoing stream authenticated (dialback)");
    let idle = shared.config.idle_timeout();
    let mut shutdown = shared.shutdown();
    let mut last = Instant::now();
    loop {
        let stop = async {
            match shutdown.as_mut() {
                Some(signal) => signal.triggered().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            next = rx.recv() => {
                let Some(stanza) = next else { break };
                if let Err(e) = conn.send(&stanza).await {
                    tracing::warn!(error = %e, "outgoing stream failed");
                    pool::bounce(&server, stanza, Condition::RemoteServerTimeout).await;
                    return give_up(&shared, &server, &pair, &queue, rx, Condition::RemoteServerTimeout).await;
                }
                last = Instant::now();
            }
            event = conn.next_event() => match event {
                // Nothing is expected on our stream but dialback answers and whitespace.
                Ok(Event::Stanza(el)) => tracing::debug!(name = el.name(), "ignored on an outgoing stream"),
                Ok(Event::Header(_)) | Ok(Event::Close) | Err(_) => {
                    tracing::info!("the remote server closed the stream");
                    break;
                }
            },
            _ = sleep_until(last + idle) => {
                tracing::info!("idle outgoing stream closed");
                break;
            }
            _ = stop => break,
        }
    }
    shared.pool.remove(&pair, &queue);
    conn.close(None, &pair.0).await;
    // Stanzas that raced the close start a new stream.
    rx.close();
    while let Ok(stanza) = rx.try_recv() {
        pool::send(&shared, stanza);
    }
}

/// The stream won't come: everything queued for it bounces with `condition`.
async fn give_up(
    shared: &Shared,
    server: &Server,
    pair: &Pair,
    queue: &mpsc::Sender<Element>,
    mut rx: mpsc::Receiver<Element>,
    condition: Condition,
) {
    shared.pool.remove(pair, queue);
    shared
        .pool
        .failed(&pair.1, condition, shared.config.retry_after());
    rx.close();
    while let Ok(stanza) = rx.try_recv() {
        pool::bounce(server, stanza, condition).await;
    }
}

/// TLS for outgoing streams. In this version the peer's certificate buys encryption only:
/// the peer's identity comes from dialback, so any certificate is taken (XEP-0220 §1.3,
/// dialback's "weak identity verification"); checking it against the domain comes with
/// SASL EXTERNAL.
pub fn tls_connector() -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyCertificate(provider.clone()));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        });
    match config {
        Ok(config) => tokio_rustls::TlsConnector::from(Arc::new(config)),
        // ring supports the default versions; should it not, no TLS is possible at all.
        Err(e) => {
            tracing::error!(error = %e, "no TLS client configuration for s2s");
            tokio_rustls::TlsConnector::from(Arc::new(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            ))
        }
    }
}

/// Takes any certificate, still checking the handshake's signatures with it.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
