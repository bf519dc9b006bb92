//! The receiving side of a server-to-server stream (RFC 6120 §4, the receiving entity):
//! our header and features, STARTTLS (asking for the peer's certificate) unless TLS came
//! first (XEP-0368 direct TLS, on `direct_tls_listen`), then SASL
//! EXTERNAL (XEP-0178) for the header's domain when its certificate proves it, and
//! XEP-0220 dialback for each domain the peer claims, as the domain's policy allows; only
//! stanzas from a domain it proved, for a domain of ours, enter the router (§4.9.3.10
//! `invalid-from` otherwise). `<db:verify/>` questions about our own keys are answered on
//! any stream. Denied domains, and peers over their limits, get `policy-violation`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use jabberwock_protocol::dialback::{Dialback, Kind, Outcome};
use jabberwock_protocol::jid::Jid;
use jabberwock_protocol::ns;
use jabberwock_protocol::sasl::{self, SaslFailure, SaslRequest};
use jabberwock_protocol::stanza::{Condition, Stanza};
use jabberwock_protocol::stream::{s2s_header, StreamCondition, StreamError};
use jabberwock_protocol::xml::reader::Event;
use jabberwock_protocol::xml::Element;
use tokio::net::TcpStream;
use tokio::time::sleep_until;

use super::limits::Slot;
use super::{dialback, is_ours, log_authenticated, Method, Shared};
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
    /// (remote domain, our domain) pairs SASL or dialback proved on this stream.
    verified: HashSet<(String, String)>,
    /// The domains of the peer's current header (`from`, `to`).
    from: Option<String>,
    to: String,
    /// SASL succeeded on this stream: it is not offered again (RFC 6120 §6.4.6).
    sasl_done: bool,
    /// Our places in the per-domain counts, one per remote domain authenticated here.
    domain_slots: Vec<Slot<String>>,
    /// TLS started with the connection (XEP-0368), for the log.
    direct_tls: bool,
}

/// Serves one incoming connection until it closes, idles out or the server stops.
pub async fn serve(
    shared: Arc<Shared>,
    server: Arc<Server>,
    tcp: TcpStream,
    peer: SocketAddr,
    direct_tls: bool,
    mut shutdown: ShutdownSignal,
) {
    let mut conn = Connection::server_to_server(Transport::Plain(tcp), peer, server.limits());
    let Some(_address_slot) = shared.per_address.take(peer.ip()) else {
        tracing::warn!(
            max = shared.per_address.max(),
            "incoming stream refused: too many from this address"
        );
        let refusal = error(
            StreamCondition::PolicyViolation,
            "too many streams from your address",
        );
        conn.close(Some(&refusal), &server.default_host()).await;
        return;
    };
    if direct_tls && !direct_tls_handshake(&shared, &mut conn).await {
        return;
    }
    let mut stream = Inbound {
        shared: &shared,
        server: &server,
        conn,
        stream_id: new_stream_id(),
        verified: HashSet::new(),
        from: None,
        to: String::new(),
        sasl_done: false,
        domain_slots: Vec::new(),
        direct_tls,
    };
    let idle = shared.config.idle_timeout();
    // A reload that removes our domain this stream is for ends the stream.
    let mut hosts = server.modules.hosts_changed();
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
            Ok(()) = hosts.changed() => match stream.hosts_changed() {
                Some(gone) => break Some(gone),
                None => continue,
            },
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
            tracing::warn!(
                condition = err.condition.as_str(),
                reason = err.text.as_deref().unwrap_or(""),
                "incoming stream refused"
            );
            break Some(err);
        }
    };
    let host = server.default_host().to_owned();
    stream.conn.close(end.as_ref(), &host).await;
}

/// XEP-0368 §3: on a direct TLS port the connection starts with the TLS handshake (ALPN
/// `xmpp-server`, the peer's certificate asked for as after STARTTLS), and the stream
/// follows inside it. A peer that does not complete it within `connect_timeout` (a
/// plaintext header, silence) is let go without a word: there is no stream to write an
/// error in.
async fn direct_tls_handshake(shared: &Shared, conn: &mut Connection) -> bool {
    let Some(tls) = shared.tls_in.get() else {
        return false;
    };
    let limit = shared.config.connect_timeout();
    match tokio::time::timeout(limit, conn.start_tls(tls)).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::info!(error = %e, "s2s direct TLS handshake failed");
            false
        }
        Err(_) => {
            tracing::info!("s2s direct TLS handshake not done within connect_timeout");
            false
        }
    }
}

fn error(condition: StreamCondition, text: &str) -> StreamError {
    StreamError::with_text(condition, text)
}

/// A `<db:result type='error'/>` answer to `request` (XEP-0220 §2.4).
fn refusal(request: &Dialback, condition: Condition) -> Element {
    let mut answer = request.answer(Outcome::Error).to_element();
    answer.push_child(
        Element::new("error", ns::CLIENT)
            .with_attr("type", "cancel")
            .with_child(Element::new(condition.as_str(), ns::STANZAS)),
    );
    answer
}

impl Inbound<'_> {
    /// RFC 6120 §4.7: a header for one of our domains gets ours and the features: STARTTLS
    /// until the stream is encrypted, dialback (XEP-0220 §2.1) once it may be used.
    async fn header(&mut self, to: Option<&str>, from: Option<&str>) -> Result<(), StreamError> {
        let Some(to) = to.filter(|to| is_ours(self.server, to)) else {
            // A misdirected DNS record or a peer's typo: the admin sees which name.
            tracing::info!(
                host = to.unwrap_or("-"),
                remote = from.unwrap_or("-"),
                ip = %self.conn.peer.ip(),
                "server-to-server stream to a host not served here"
            );
            return Err(error(
                StreamCondition::HostUnknown,
                "not a domain of this server",
            ));
        };
        if let Some(from) = from.filter(|from| self.shared.config.denied(from)) {
            tracing::warn!(remote = %from, "stream from a denied domain");
            return Err(error(
                StreamCondition::PolicyViolation,
                "your domain is denied",
            ));
        }
        self.from = from.map(str::to_ascii_lowercase);
        self.to = to.to_ascii_lowercase();
        self.stream_id = new_stream_id();
        let mut features = Element::new("features", ns::STREAM);
        let encrypted = self.conn.is_encrypted();
        // XEP-0178 §3: EXTERNAL only when the certificate proves the header's domain.
        if let (true, false, Some(from)) = (encrypted, self.sasl_done, self.from.as_deref()) {
            match self.shared.certificate_proves(&self.conn, from) {
                Ok(()) => features.push_child(sasl::mechanisms(&["EXTERNAL"])),
                Err(e) => tracing::info!(
                    remote = %from,
                    reason = %e,
                    "the peer's certificate does not prove its domain"
                ),
            }
        }
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
            let Some(tls) = self.shared.tls_in.get() else {
                return Err(error(StreamCondition::InternalServerError, "no TLS"));
            };
            return self.conn.start_tls(tls).await.map_err(|e| {
                tracing::info!(error = %e, "s2s TLS handshake failed");
                error(StreamCondition::UndefinedCondition, "TLS handshake failed")
            });
        }
        if element.ns() == ns::DIALBACK {
            return self.dialback(&element).await;
        }
        if element.ns() == ns::SASL {
            return self.sasl(&element).await;
        }
        self.stanza(element).await
    }

    /// XEP-0178 §3 (RFC 6120 §6): SASL EXTERNAL for the header's `from`, proved by the
    /// certificate; the authorization identity, if any, must be that domain. A failure
    /// leaves the stream open: dialback may still authenticate the peer.
    async fn sasl(&mut self, element: &Element) -> Result<(), StreamError> {
        let refused = match self.external(element) {
            Ok(remote) => {
                let local = self.to.clone();
                self.authenticated(remote.clone(), local.clone())?;
                log_authenticated(
                    "incoming",
                    &local,
                    &remote,
                    Method::External,
                    &self.conn,
                    self.direct_tls,
                );
                self.sasl_done = true;
                self.send(&sasl::success(&[])).await?;
                // RFC 6120 §6.4.6: the peer opens a new stream on the same connection.
                self.conn.restart();
                return Ok(());
            }
            Err(refused) => refused,
        };
        tracing::warn!(
            remote = self.from.as_deref().unwrap_or(""),
            failure = refused.0.as_str(),
            reason = %refused.1,
            "SASL EXTERNAL refused"
        );
        self.send(&sasl::failure(refused.0, Some(&refused.1))).await
    }

    /// The domain EXTERNAL proves, or the failure to answer with and why.
    fn external(&self, element: &Element) -> Result<String, (SaslFailure, String)> {
        let request = sasl::parse_request(element).map_err(|e| (e.failure(), e.to_string()))?;
        let initial = match request {
            SaslRequest::Auth { mechanism, initial } if mechanism == "EXTERNAL" => initial,
            SaslRequest::Auth { .. } => {
                return Err((SaslFailure::InvalidMechanism, "only EXTERNAL".into()))
            }
            SaslRequest::Abort => return Err((SaslFailure::Aborted, "aborted".into())),
            SaslRequest::Response(_) => {
                return Err((SaslFailure::MalformedRequest, "no exchange open".into()))
            }
        };
        if !self.conn.is_encrypted() {
            return Err((SaslFailure::EncryptionRequired, "STARTTLS first".into()));
        }
        if self.sasl_done {
            return Err((
                SaslFailure::MalformedRequest,
                "already authenticated".into(),
            ));
        }
        let Some(from) = self.from.clone() else {
            return Err((
                SaslFailure::NotAuthorized,
                "the stream header has no from".into(),
            ));
        };
        // XEP-0178 §3: no authorization identity (or `=`) means the header's domain.
        let authzid = initial.unwrap_or_default();
        if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(from.as_bytes()) {
            return Err((SaslFailure::InvalidAuthzid, "not the stream's from".into()));
        }
        self.shared
            .certificate_proves(&self.conn, &from)
            .map_err(|e| (SaslFailure::NotAuthorized, e.to_string()))?;
        Ok(from)
    }

    /// The hosts in force changed: what the peer was authenticated for on domains of ours
    /// that are gone is forgotten (a stanza for one is then refused as for any domain it
    /// never authenticated for), and a stream whose header named one of them ends with
    /// `<host-gone/>` (RFC 6120 §4.9.3.5), at once rather than when it would idle out.
    fn hosts_changed(&mut self) -> Option<StreamError> {
        let server = self.server;
        self.verified.retain(|(_, local)| is_ours(server, local));
        if self.to.is_empty() || is_ours(server, &self.to) {
            return None;
        }
        tracing::info!(
            local = %self.to,
            remote = %self.from.as_deref().unwrap_or("-"),
            "our domain is no longer served: incoming stream closed"
        );
        Some(error(
            StreamCondition::HostGone,
            "this domain is no longer served here",
        ))
    }

    /// Records that `remote` proved itself to `local` on this stream, unless the remote
    /// domain has all the authenticated streams it may have.
    fn authenticated(&mut self, remote: String, local: String) -> Result<(), StreamError> {
        if !self.verified.iter().any(|(r, _)| *r == remote) {
            let Some(slot) = self.shared.per_domain.take(remote.clone()) else {
                tracing::warn!(
                    %remote,
                    max = self.shared.per_domain.max(),
                    "too many streams authenticated for one remote domain"
                );
                return Err(error(
                    StreamCondition::PolicyViolation,
                    "too many streams for your domain",
                ));
            };
            self.domain_slots.push(slot);
        }
        self.verified.insert((remote, local));
        Ok(())
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
            tracing::info!(
                host = %request.to,
                remote = %request.from,
                ip = %self.conn.peer.ip(),
                "dialback for a host not served here"
            );
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
        if let Some(why) = self.dialback_refusal(&request.from) {
            tracing::warn!(remote = %request.from, local = %request.to, reason = why, "dialback refused by policy");
            // XEP-0220 §2.4: an error answer refuses this domain only; other domains on
            // the stream stay as they are.
            let answer = refusal(&request, Condition::PolicyViolation);
            return self.send(&answer).await;
        }
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
                self.authenticated(remote.clone(), local.clone())?;
                log_authenticated(
                    "incoming",
                    &local,
                    &remote,
                    Method::Dialback,
                    &self.conn,
                    self.direct_tls,
                );
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
                let answer = refusal(&request, Condition::RemoteServerNotFound);
                self.send(&answer).await
            }
        }
    }

    /// Why policy keeps dialback from authenticating `remote` here, if it does: a denied
    /// domain, one that must use SASL EXTERNAL, or one whose certificate must be valid
    /// and is not.
    fn dialback_refusal(&self, remote: &str) -> Option<&'static str> {
        if self.shared.config.denied(remote) {
            return Some("the domain is denied");
        }
        let policy = self.shared.config.policy(remote);
        if !policy.allow_dialback {
            return Some("dialback is not allowed for the domain");
        }
        if policy.require_valid_certificate
            && self.shared.certificate_proves(&self.conn, remote).is_err()
        {
            return Some("a valid certificate is required for the domain");
        }
        None
    }

    /// A stanza: only from a domain dialback proved, to the domain it proved it for.
    async fn stanza(&mut self, element: Element) -> Result<(), StreamError> {
        if self.verified.is_empty() {
            return Err(error(StreamCondition::NotAuthorized, "authenticate first"));
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
