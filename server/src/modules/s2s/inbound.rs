//! The receiving side of a server-to-server stream (RFC 6120 §4, the receiving entity):
//! our header and features, STARTTLS, then XEP-0220 dialback for each domain the peer
//! claims; only stanzas from a domain it proved, for a domain of ours, enter the router
//! (§4.9.3.10 `invalid-from` otherwise). `<db:verify/>` questions about our own keys are
//! answered on any stream.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use jabberwock_protocol::dialback::{Dialback, Kind, Outcome};
use jabberwock_protocol::jid::Jid;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::Stanza;
use jabberwock_protocol::stream::{s2s_header, StreamCondition, StreamError};
use jabberwock_protocol::xml::reader::Event;
use jabberwock_protocol::xml::Element;
use tokio::net::TcpStream;
use tokio::time::sleep_until;

use super::{dialback, is_ours, Shared};
use crate::server::Server;
use crate::shutdown::ShutdownSignal;
use crate::stream::connection::{new_stream_id, Connection, ReadError};
use crate::stream::transport::Transport;

/// One incoming stream's state.
struct Inbound<'a> {
    shared: &'a Shared,
    server: &'a Server,
    conn: Connection,
    /// The id of our current stream header (what the peer's dialback keys are made for).
    stream_id: String,
    /// (remote domain, our domain) pairs dialback proved on this stream.
    verified: HashSet<(String, String)>,
}

/// Serves one incoming connection until it closes, idles out or the server stops.
pub async fn serve(
    shared: Arc<Shared>,
    server: Arc<Server>,
    tcp: TcpStream,
    peer: SocketAddr,
    mut shutdown: ShutdownSignal,
) {
    let conn = Connection::server_to_server(Transport::Plain(tcp), peer, server.limits());
    let mut stream = Inbound {
        shared: &shared,
        server: &server,
        conn,
        stream_id: new_stream_id(),
        verified: HashSet::new(),
    };
    let idle = shared.config.idle_timeout();
    let end = loop {
        let idle_until = stream.conn.last_activity() + idle;
        let event = tokio::select! {
            event = stream.conn.next_event() => event,
            _ = sleep_until(idle_until) => {
                break Some(StreamError::new(StreamCondition::ConnectionTimeout));
            }
            _ = shutdown.triggered() => {
                break Some(StreamError::new(StreamCondition::SystemShutdown));
            }
        };
        let result = match event {
            Ok(Event::Header(header)) => {
                stream
                    .header(header.to.as_deref(), header.from.as_deref())
                    .await
            }
            Ok(Event::Stanza(element)) => stream.element(element).await,
            Ok(Event::Close) => break None,
            Err(ReadError::Stream(err)) => Err(err),
            Err(_) => {
                tracing::debug!("s2s peer went away");
                return;
            }
        };
        if let Err(err) = result {
            tracing::info!(condition = err.condition.as_str(), "s2s stream error sent");
            break Some(err);
        }
    };
    let host = server.default_host().to_owned();
    stream.conn.close(end.as_ref(), &host).await;
}

fn error(condition: StreamCondition, text: &str) -> StreamError {
    StreamError::with_text(condition, text)
}

impl Inbound<'_> {
    /// RFC 6120 §4.7: a header for one of our domains gets ours and the features: STARTTLS
    /// until the stream is encrypted, dialback (XEP-0220 §2.1) once it may be used.
    async fn header(&mut self, to: Option<&str>, from: Option<&str>) -> Result<(), StreamError> {
        let Some(to) = to.filter(|to| is_ours(self.server, to)) else {
            return Err(error(
                StreamCondition::HostUnknown,
                "not a domain of this server",
            ));
        };
        self.stream_id = new_stream_id();
        let mut features = Element::new("features", ns::STREAM);
        let encrypted = self.conn.is_encrypted();
        if !encrypted {
            let mut starttls = Element::new("starttls", ns::TLS);
            if self.shared.config.require_encryption {
                starttls.push_child(Element::new("required", ns::TLS));
            }
            features.push_child(starttls);
        }
        if encrypted || !self.shared.config.require_encryption {
            features.push_child(
                Element::new("dialback", ns::DIALBACK_FEATURE)
                    .with_child(Element::new("errors", ns::DIALBACK_FEATURE)),
            );
        }
        let header = s2s_header(to, from, Some(&self.stream_id));
        self.conn
            .send_header(&header, Some(&features), false)
            .await
            .map_err(|_| error(StreamCondition::InternalServerError, "write failed"))
    }

    async fn element(&mut self, element: Element) -> Result<(), StreamError> {
        if element.is("starttls", ns::TLS) && !self.conn.is_encrypted() {
            let _ = self.conn.send(&Element::new("proceed", ns::TLS)).await;
            let acceptor = self.shared.tls_in.get().unwrap_or(&self.server.tls);
            return self.conn.start_tls(acceptor).await.map_err(|e| {
                tracing::info!(error = %e, "s2s TLS handshake failed");
                error(StreamCondition::UndefinedCondition, "TLS handshake failed")
            });
        }
        if element.ns() == ns::DIALBACK {
            return self.dialback(&element).await;
        }
        self.stanza(element).await
    }

    async fn dialback(&mut self, element: &Element) -> Result<(), StreamError> {
        let request = Dialback::parse(element)
            .map_err(|e| error(StreamCondition::BadFormat, &e.to_string()))?;
        if request.outcome.is_some() {
            // Answers are for the streams we open, not this one.
            return Err(error(
                StreamCondition::UnsupportedStanzaType,
                "a dialback answer on an incoming stream",
            ));
        }
        if !is_ours(self.server, &request.to) {
            return Err(error(
                StreamCondition::HostUnknown,
                "not a domain of this server",
            ));
        }
        if self.shared.config.require_encryption && !self.conn.is_encrypted() {
            return Err(error(StreamCondition::PolicyViolation, "STARTTLS first"));
        }
        match request.kind {
            Kind::Verify => {
                let answer = dialback::answer(self.shared, &request);
                self.send(&answer.to_element()).await
            }
            Kind::Result => self.result(request).await,
        }
    }

    /// XEP-0220 §2.1.2–§2.4: the peer claims `request.from`; the authoritative server for
    /// that domain says whether the key is genuine.
    async fn result(&mut self, request: Dialback) -> Result<(), StreamError> {
        let Some(key) = request.key.as_deref() else {
            return Err(error(StreamCondition::BadFormat, "db:result without a key"));
        };
        let limit = self.shared.config.connect_timeout();
        let asked = tokio::time::timeout(
            limit,
            dialback::verify(
                self.shared,
                self.server,
                &request.to,
                &request.from,
                &self.stream_id,
                key,
            ),
        )
        .await;
        let (remote, local) = (request.from.clone(), request.to.clone());
        match asked {
            Ok(Ok(true)) => {
                tracing::info!(%remote, %local, "incoming stream authenticated (dialback)");
                self.verified.insert((remote, local));
                self.send(&request.answer(Outcome::Valid).to_element())
                    .await
            }
            Ok(Ok(false)) => {
                tracing::warn!(%remote, %local, "dialback key refused by the authoritative server");
                self.send(&request.answer(Outcome::Invalid).to_element())
                    .await?;
                Err(error(
                    StreamCondition::NotAuthorized,
                    "dialback key refused",
                ))
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_owned(),
                };
                tracing::warn!(%remote, %local, %why, "could not check a dialback key");
                // XEP-0220 §2.4: an error answer; the peer may try again later.
                let mut answer = request.answer(Outcome::Error).to_element();
                answer.push_child(
                    Element::new("error", ns::CLIENT)
                        .with_attr("type", "cancel")
                        .with_child(Element::new("remote-server-not-found", ns::STANZAS)),
                );
                self.send(&answer).await
            }
        }
    }

    /// A stanza: only from a domain dialback proved, to the domain it proved it for.
    async fn stanza(&mut self, element: Element) -> Result<(), StreamError> {
        if self.verified.is_empty() {
            return Err(error(StreamCondition::NotAuthorized, "dialback first"));
        }
        let stanza = Stanza::from_element(element)?;
        let (Some(from), Some(to)) = (stanza.from(), stanza.to()) else {
            return Err(error(
                StreamCondition::ImproperAddressing,
                "from and to are required",
            ));
        };
        let Ok(from) = Jid::new(from) else {
            return Err(error(StreamCondition::InvalidFrom, "malformed from"));
        };
        let to_domain = match Jid::new(to) {
            Ok(to) => to.domain().as_str().to_owned(),
            Err(_) => return Err(error(StreamCondition::ImproperAddressing, "malformed to")),
        };
        let from_domain = from.domain().as_str().to_owned();
        if !self
            .verified
            .iter()
            .any(|(remote, _)| *remote == from_domain)
        {
            // RFC 6120 §4.9.3.10: a domain this stream never authenticated.
            tracing::warn!(from = %from_domain, "stanza from a domain the peer did not authenticate");
            return Err(error(
                StreamCondition::InvalidFrom,
                "domain not authenticated on this stream",
            ));
        }
        if !self.verified.contains(&(from_domain, to_domain)) {
            return Err(error(
                StreamCondition::HostUnknown,
                "not authenticated for this domain of ours",
            ));
        }
        self.server
            .router
            .route_from_remote(self.server, from, stanza)
            .await;
        Ok(())
    }

    async fn send(&mut self, element: &Element) -> Result<(), StreamError> {
        self.conn
            .send(element)
            .await
            .map_err(|_| error(StreamCondition::InternalServerError, "write failed"))
    }
}
