//! Our side of a server-to-server stream (RFC 6120 §4, the initiating entity): connect to
//! the peer's address, STARTTLS (§5) — or TLS at once where an `_xmpps-server._tcp` record
//! led us (XEP-0368) — with the peer's certificate checked against its domain, then SASL
//! EXTERNAL (XEP-0178) when the peer offers it, else XEP-0220 dialback for the (local,
//! remote) pair, as the remote domain's policy allows. Stanzas queued
//! meanwhile go out once it passed; another of our domains of the same host may join the
//! stream by dialback (XEP-0220 §2.5, piggybacking); an idle stream is closed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jabberwock_protocol::dialback::{self, Dialback, Kind, Outcome};
use jabberwock_protocol::jid::Jid;
use jabberwock_protocol::ns;
use jabberwock_protocol::sasl;
use jabberwock_protocol::stanza::Condition;
use jabberwock_protocol::stream::{s2s_header, StreamHeader};
use jabberwock_protocol::xml::reader::Event;
use jabberwock_protocol::xml::Element;
use rustls::pki_types::ServerName;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};

use super::certificate::CertificateError;
use super::pool::{self, Pair};
use super::resolve;
use super::{host_of, log_authenticated, Method, Shared};
use crate::server::Server;
use crate::stream::connection::{Connection, ReadError};
use crate::stream::transport::Transport;

/// Stanzas written to the peer in one write at most: enough to spare a busy stream most of
/// its system calls and TLS records, few enough that the first of them is not held back.
const MAX_BATCH: usize = 64;

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
    #[error("a valid certificate is required and the peer's is not: {0}")]
    Certificate(CertificateError),
    #[error("SASL EXTERNAL was not possible and dialback is not allowed for the domain")]
    DialbackNotAllowed,
}

/// An open, encrypted (unless the config allows otherwise) stream to `remote`, its header
/// sent and the peer's header and features read: what authentication is done over.
pub struct Opened {
    pub conn: Connection,
    /// The id of the peer's current stream (XEP-0185's Stream ID).
    pub stream_id: String,
    pub features: Element,
    /// Whether the peer's certificate proves `remote` (an unencrypted stream has none).
    pub certificate: Result<(), CertificateError>,
    /// TLS started with the connection (XEP-0368) rather than by STARTTLS.
    pub direct_tls: bool,
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
        let Some(tls) = shared.tls_direct.get() else {
            return Err(OpenError::NoTls);
        };
        conn.start_tls_client(tls, tls_name(remote)?).await?;
    }
    let (mut header, mut features) = exchange_headers(&mut conn, local, remote).await?;
    if !conn.is_encrypted() {
        if features.get_child("starttls", ns::TLS).is_some() {
            conn.send(&Element::new("starttls", ns::TLS)).await?;
            let proceed = next_element(&mut conn).await?;
            if !proceed.is("proceed", ns::TLS) {
                return Err(OpenError::Unexpected(proceed.name().to_owned()));
            }
            let Some(tls) = shared.tls_out.get() else {
                return Err(OpenError::NoTls);
            };
            conn.start_tls_client(tls, tls_name(remote)?).await?;
            (header, features) = exchange_headers(&mut conn, local, remote).await?;
        } else if shared.config.require_encryption {
            return Err(OpenError::NoTls);
        }
    }
    let certificate = shared.certificate_proves(&conn, remote);
    let stream_id = header.id.ok_or(OpenError::NoStreamId)?;
    Ok(Opened {
        conn,
        stream_id,
        features,
        certificate,
        direct_tls: found.direct_tls,
    })
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

/// An authenticated outgoing stream: the connection and the peer's current stream id
/// (what piggybacked dialback keys are made for).
struct Link {
    conn: Connection,
    stream_id: String,
    direct_tls: bool,
}

/// Opens the pair's stream and authenticates it: SASL EXTERNAL when the peer offers it
/// (it found our certificate good for `local`), else dialback (XEP-0220 §2.1), as the
/// remote domain's policy allows.
async fn establish(shared: &Shared, server: &Server, pair: &Pair) -> Result<Link, OpenError> {
    let (local, remote) = (pair.0.as_str(), pair.1.as_str());
    let policy = shared.config.policy(remote);
    let Opened {
        mut conn,
        stream_id,
        features,
        certificate,
        direct_tls,
    } = open(shared, server, local, remote).await?;
    let log = |conn: &Connection, method| {
        log_authenticated("outgoing", local, remote, method, conn, direct_tls)
    };
    match certificate {
        Err(e) if policy.require_valid_certificate => return Err(OpenError::Certificate(e)),
        Err(e) => tracing::info!(reason = %e, "the peer's certificate does not prove its domain"),
        Ok(()) => {}
    }
    if offers_external(&features) {
        if let Some(stream_id) = external(&mut conn, local, remote).await? {
            log(&conn, Method::External);
            return Ok(Link {
                conn,
                stream_id,
                direct_tls,
            });
        }
    }
    if !policy.allow_dialback {
        conn.close(None, local).await;
        return Err(OpenError::DialbackNotAllowed);
    }
    let key = dialback::key(shared.secret(), remote, local, &stream_id);
    let request = Dialback::request(Kind::Result, local, remote, None, &key);
    conn.send(&request.to_element()).await?;
    loop {
        let el = next_element(&mut conn).await?;
        let Some(outcome) = dialback_answer(&el, remote, local) else {
            continue;
        };
        return match outcome {
            Some(Outcome::Valid) => {
                log(&conn, Method::Dialback);
                Ok(Link {
                    conn,
                    stream_id,
                    direct_tls,
                })
            }
            _ => {
                conn.close(None, local).await;
                Err(OpenError::Refused)
            }
        };
    }
}

/// Whether the features offer SASL EXTERNAL.
fn offers_external(features: &Element) -> bool {
    features.get_child("mechanisms", ns::SASL).is_some_and(|m| {
        m.children()
            .any(|c| c.name() == "mechanism" && c.text().trim() == "EXTERNAL")
    })
}

/// XEP-0178 §3: EXTERNAL with our domain as authorization identity; on success the
/// stream restarts (RFC 6120 §6.4.6) and the new stream's id is returned, on failure
/// `None` (the stream stays open for dialback).
async fn external(
    conn: &mut Connection,
    local: &str,
    remote: &str,
) -> Result<Option<String>, OpenError> {
    conn.send(&sasl::auth("EXTERNAL", local.as_bytes())).await?;
    let answer = next_element(conn).await?;
    if answer.is("success", ns::SASL) {
        conn.restart();
        let (header, _features) = exchange_headers(conn, local, remote).await?;
        return header.id.map(Some).ok_or(OpenError::NoStreamId);
    }
    let condition = answer.children().next().map(|c| c.name().to_owned());
    tracing::warn!(
        failure = condition.as_deref().unwrap_or(""),
        "SASL EXTERNAL refused by the peer; trying dialback"
    );
    Ok(None)
}

/// The outcome of a `<db:result/>` answer from `remote` to `local` (`Some(None)`: an
/// answer with no type), or `None` when `el` is no such answer.
fn dialback_answer(el: &Element, remote: &str, local: &str) -> Option<Option<Outcome>> {
    let answer = Dialback::parse(el).ok()?;
    let ours = answer.kind == Kind::Result
        && answer.from.eq_ignore_ascii_case(remote)
        && answer.to.eq_ignore_ascii_case(local);
    ours.then_some(answer.outcome)
}

/// The pair's stream for its life: set up within `connect_timeout`, then stanzas from the
/// queue out until idle, closed or shut down. Whatever it could not send is bounced.
/// Stanzas from another of our domains (the pool sends those of the same host here)
/// wait while that domain is authenticated by dialback on this stream (XEP-0220 §2.5).
pub async fn run(
    shared: Arc<Shared>,
    server: Arc<Server>,
    pair: Pair,
    queue: mpsc::Sender<Element>,
    mut rx: mpsc::Receiver<Element>,
) {
    let limit = shared.config.connect_timeout();
    let established = timeout(limit, establish(&shared, &server, &pair)).await;
    let Link {
        mut conn,
        stream_id,
        direct_tls,
    } = match established {
        Ok(Ok(link)) => link,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not reach the remote server");
            // A stream that could not be set up: not tried again for a while (pool.rs).
            let retry = shared.config.retry_after();
            shared
                .pool
                .failed(&pair.1, Condition::RemoteServerNotFound, retry);
            return give_up(
                &shared,
                &server,
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
            let retry = shared.config.retry_after();
            shared
                .pool
                .failed(&pair.1, Condition::RemoteServerTimeout, retry);
            return give_up(&shared, &server, &queue, rx, Condition::RemoteServerTimeout).await;
        }
    };
    let remote = pair.1.as_str();
    let mut authenticated: HashSet<String> = HashSet::from([pair.0.clone()]);
    // Our domains whose dialback on this stream is under way: since when, and what waits
    // for it. An answer that does not come within `connect_timeout` bounces those.
    let mut pending: HashMap<String, (Instant, Vec<Element>)> = HashMap::new();
    // The stanzas of the write under way, bounced if it fails.
    let mut batch: Vec<Element> = Vec::new();
    let idle = shared.config.idle_timeout();
    let mut shutdown = shared.shutdown();
    // A reload that removes the host whose domains use this stream ends the stream.
    let mut hosts = server.modules.hosts_changed();
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
                // What else is queued goes out with it in one write (at most MAX_BATCH
                // stanzas): a busy stream then costs one TLS record and one system call
                // per batch, not per stanza.
                let Some(first) = next else { break };
                let (mut next, mut taken) = (Some(first), 0);
                while let Some(stanza) = next.take() {
                    taken += 1;
                    let local = sender_domain(&stanza);
                    if authenticated.contains(&local) {
                        conn.queue(&stanza);
                        batch.push(stanza);
                    } else if let Some((_, waiting)) = pending.get_mut(&local) {
                        if waiting.len() < shared.config.max_queue {
                            waiting.push(stanza);
                        } else {
                            pool::bounce(&server, stanza, Condition::ResourceConstraint).await;
                        }
                    } else {
                        // XEP-0220 §2.5: another of our domains asks for this stream.
                        let key = dialback::key(shared.secret(), remote, &local, &stream_id);
                        let request = Dialback::request(Kind::Result, &local, remote, None, &key);
                        conn.queue(&request.to_element());
                        pending.insert(local, (Instant::now(), vec![stanza]));
                    }
                    if taken < MAX_BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                if let Err(e) = conn.flush().await {
                    tracing::warn!(error = %e, "outgoing stream failed");
                    // Nobody knows which of them got through: all bounce, with what
                    // waited for a dialback answer.
                    let unsent = batch.drain(..).chain(pending.drain().flat_map(|(_, (_, w))| w));
                    for stanza in unsent {
                        pool::bounce(&server, stanza, Condition::RemoteServerTimeout).await;
                    }
                    return give_up(&shared, &server, &queue, rx, Condition::RemoteServerTimeout).await;
                }
                // Tests count these.
                tracing::debug!(stanzas = batch.len(), "stanzas written to the peer in one write");
                batch.clear();
                last = Instant::now();
            }
            event = conn.next_event() => match event {
                Ok(Event::Stanza(el)) if el.is("error", ns::STREAM) => {
                    // RFC 6120 §4.9: the peer ends the stream; the admin sees why.
                    let condition = el
                        .children()
                        .find(|c| c.ns() == ns::STREAMS && c.name() != "text")
                        .map_or("-", |c| c.name());
                    let text = el.get_child("text", ns::STREAMS).map(|t| t.text());
                    tracing::info!(condition, text = text.as_deref().unwrap_or(""), "the remote server ended the stream with an error");
                    break;
                }
                Ok(Event::Stanza(el)) => {
                    // Nothing is expected on our stream but dialback answers and whitespace.
                    let answered = pending.keys().find_map(|local| {
                        dialback_answer(&el, remote, local).map(|outcome| (local.clone(), outcome))
                    });
                    let Some((local, outcome)) = answered else {
                        tracing::debug!(name = el.name(), "ignored on an outgoing stream");
                        continue;
                    };
                    let waiting = pending.remove(&local).map(|(_, w)| w).unwrap_or_default();
                    if outcome == Some(Outcome::Valid) {
                        log_authenticated("outgoing", &local, remote, Method::Dialback, &conn, direct_tls);
                        for stanza in waiting {
                            if conn.send(&stanza).await.is_err() {
                                pool::bounce(&server, stanza, Condition::RemoteServerTimeout).await;
                            }
                        }
                        authenticated.insert(local);
                    } else {
                        tracing::warn!(%local, "dialback for another of our domains refused by the peer");
                        shared.pool.forget(&(local, pair.1.clone()), &queue);
                        for stanza in waiting {
                            pool::bounce(&server, stanza, Condition::RemoteServerNotFound).await;
                        }
                    }
                }
                Ok(Event::Header(_)) | Ok(Event::Close) | Err(_) => {
                    tracing::info!("the remote server closed the stream");
                    break;
                }
            },
            _ = until(first_deadline(&pending, limit)) => {
                let now = Instant::now();
                pending.retain(|local, (since, waiting)| {
                    if *since + limit > now {
                        return true;
                    }
                    tracing::warn!(%local, "no dialback answer for another of our domains within connect_timeout");
                    shared.pool.forget(&(local.clone(), pair.1.clone()), &queue);
                    for stanza in waiting.drain(..) {
                        pool::bounce_later(&shared, stanza, Condition::RemoteServerTimeout);
                    }
                    false
                });
            }
            _ = sleep_until(last + idle) => {
                tracing::info!("idle outgoing stream closed");
                break;
            }
            _ = stop => break,
            Ok(()) = hosts.changed() => {
                if host_of(&server, &pair.0).is_none() {
                    tracing::info!("our domain is no longer served: outgoing stream closed");
                    break;
                }
            }
        }
    }
    shared.pool.remove(&queue);
    conn.close(None, &pair.0).await;
    // Stanzas that raced the close, and those still waiting for dialback, start a new
    // stream.
    rx.close();
    for stanza in pending.into_values().flat_map(|(_, waiting)| waiting) {
        pool::send(&shared, stanza);
    }
    while let Ok(stanza) = rx.try_recv() {
        pool::send(&shared, stanza);
    }
}

/// When the oldest piggybacked dialback in `pending` runs out of time, if any waits.
fn first_deadline(
    pending: &HashMap<String, (Instant, Vec<Element>)>,
    limit: std::time::Duration,
) -> Option<Instant> {
    pending.values().map(|(since, _)| *since + limit).min()
}

/// Sleeps until `deadline`; forever without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The domain of a queued stanza's sender (the pool only queues stanzas that have one).
fn sender_domain(stanza: &Element) -> String {
    stanza
        .attr("from")
        .and_then(|a| Jid::new(a).ok())
        .map(|j| j.domain().as_str().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The stream won't come: everything queued for it bounces with `condition`.
async fn give_up(
    shared: &Shared,
    server: &Server,
    queue: &mpsc::Sender<Element>,
    mut rx: mpsc::Receiver<Element>,
    condition: Condition,
) {
    shared.pool.remove(queue);
    rx.close();
    while let Ok(stanza) = rx.try_recv() {
        pool::bounce(server, stanza, condition).await;
    }
}
