//! Client-to-server stream negotiation (RFC 6120 §4–§7): stream header, STARTTLS, SASL,
//! resource binding. It ends with a bound full JID and the session's inbox; what happens
//! after that is [`crate::session`]'s job.
//!
//! The phases read as what is expected next: [`Phase::Unauthenticated`] (STARTTLS, SASL or
//! in-band registration), then [`Phase::Authenticated`] (bind). Anything out of place is a
//! stream error, never a guess.

pub mod bind;
pub mod features;
pub mod guest;
pub mod legacy_auth;
pub mod sasl;
pub mod scram;
pub mod throttle;

use jabberwock_protocol::jid::FullJid;
use jabberwock_protocol::ns;
use jabberwock_protocol::sasl::{self as sasl_wire, SaslFailure, SaslRequest};
use jabberwock_protocol::sm;
use jabberwock_protocol::stanza::{Condition, Stanza, StanzaError};
use jabberwock_protocol::stream::{self, StreamCondition, StreamError, StreamHeader};
use jabberwock_protocol::xml::reader::Event;
use jabberwock_protocol::xml::Element;

use std::sync::Arc;

use crate::error::SessionEnd;
use crate::modules::{FeatureContext, PreAuthIq, SessionState};
use crate::router::Inbox;
use crate::server::Server;
use crate::stream::connection::{new_stream_id, Connection};

use self::sasl::{Authenticated, Outcome};

/// A negotiated, bound session, ready for [`crate::session::run`].
pub struct Bound {
    pub jid: FullJid,
    pub session_id: u64,
    pub guest: bool,
    pub inbox: Inbox,
    /// What modules keep for the session (shared with its entry in the router's table).
    pub state: Arc<SessionState>,
    /// XEP-0198, once the client enabled it; set on a session taken over by `<resume/>`.
    pub sm: Option<Box<crate::session::StreamManagement>>,
}

enum Phase {
    Unauthenticated { failures: u32 },
    Authenticated(Authenticated),
}

/// Drives negotiation on `conn` until a resource is bound.
pub async fn negotiate(
    server: &Server,
    conn: &mut Connection,
    session_id: u64,
) -> Result<Bound, SessionEnd> {
    let mut phase = Phase::Unauthenticated { failures: 0 };
    let mut restarted = false;
    // A guest's account row is removed if we stop (or are dropped) before binding.
    let mut guest = guest::Guard::new(server);
    loop {
        // Each pass is one stream: the first, then again after STARTTLS and after SASL.
        let host = open_stream(server, conn, &phase, restarted).await?;
        restarted = true;
        match &mut phase {
            Phase::Unauthenticated { failures } => {
                match unauthenticated(server, conn, &host, failures, session_id).await? {
                    Next::Restart => {}
                    Next::Authenticated(auth) => {
                        if auth.guest {
                            guest.arm(auth.account.clone());
                        }
                        phase = Phase::Authenticated(auth);
                    }
                    // XEP-0078: authenticated and bound in one step, no restart.
                    Next::Bound(bound) => return Ok(bound),
                }
            }
            Phase::Authenticated(auth) => {
                let bound = bind(server, conn, auth, session_id).await?;
                guest.disarm();
                return Ok(bound);
            }
        }
    }
}

/// How a pre-authentication exchange ended.
enum Next {
    /// STARTTLS: the stream restarts, still unauthenticated.
    Restart,
    /// SASL success: the stream restarts for binding.
    Authenticated(Authenticated),
    /// XEP-0078 success: authenticated and bound.
    Bound(Bound),
}

/// Reads the client's stream header and answers with ours and the features.
async fn open_stream(
    server: &Server,
    conn: &mut Connection,
    phase: &Phase,
    restarted: bool,
) -> Result<String, SessionEnd> {
    let header = match conn.next_event().await? {
        Event::Header(header) => header,
        Event::Close => return Err(SessionEnd::ClientClosed),
        Event::Stanza(_) => return Err(SessionEnd::error(StreamCondition::NotWellFormed)),
    };
    let host = stream_host(server, conn, &header)?;
    if let Phase::Authenticated(auth) = phase {
        // RFC 6120 §6.4.6: the restarted stream must be for the host we authenticated with.
        if auth.account.domain != host {
            return Err(SessionEnd::error(StreamCondition::InvalidFrom));
        }
    }
    // A Flash socket is a Flash client whatever its header says.
    if conn.is_flash() && !flash_allowed(server, &host) {
        return Err(SessionEnd::error_text(
            StreamCondition::PolicyViolation,
            "Flash clients are not accepted on this host",
        ));
    }
    // RFC 6120 §4.7.5: no version means a pre-1.0 client, which gets no features.
    let modern = header
        .version
        .as_deref()
        .is_some_and(|v| v.starts_with("1."));
    let features = match phase {
        Phase::Unauthenticated { .. } => {
            let offer = features::pre_auth(
                server,
                &host,
                conn.dialect(),
                conn.is_flash(),
                conn.is_encrypted(),
            );
            features::pre_auth_element(&offer, &feature_context(server, conn, &host, &offer))
        }
        Phase::Authenticated(_) => {
            let ctx = FeatureContext {
                server,
                host: &host,
                encrypted: conn.is_encrypted(),
                flash: conn.is_flash(),
                auth_offered: true,
            };
            features::post_auth(&ctx)
        }
    };
    let our_header = stream::server_header(
        &header.dialect,
        &host,
        &new_stream_id(),
        header.from.as_deref(),
        modern,
        "en",
    );
    conn.send_header(&our_header, modern.then_some(&features), restarted)
        .await?;
    Ok(host)
}

/// What modules' pre-authentication features and IQ handlers may depend on.
fn feature_context<'a>(
    server: &'a Server,
    conn: &Connection,
    host: &'a str,
    offer: &features::Offer,
) -> FeatureContext<'a> {
    FeatureContext {
        server,
        host,
        encrypted: conn.is_encrypted(),
        flash: conn.is_flash(),
        auth_offered: !offer.mechanisms.is_empty() || offer.iq_auth,
    }
}

/// RFC 6120 §4.7.1: `to` names the host; one we don't serve is host-unknown.
fn stream_host(
    server: &Server,
    conn: &Connection,
    header: &StreamHeader,
) -> Result<String, SessionEnd> {
    let host = match &header.to {
        Some(to) => to.to_lowercase(),
        // Lenient like Prosody's default host: old widgets sometimes omit `to`.
        None => server.default_host().to_owned(),
    };
    if !server.serves(&host) {
        // Usually a client configured with the wrong domain: the admin sees which.
        tracing::info!(%host, ip = %conn.peer.ip(), "stream to a host not served here");
        return Err(SessionEnd::error(StreamCondition::HostUnknown));
    }
    Ok(host)
}

fn flash_allowed(server: &Server, host: &str) -> bool {
    server.config.flash.enabled && server.host(host).is_some_and(|h| h.flash)
}

/// The pre-authentication exchange on one stream, until STARTTLS, SASL success or an
/// XEP-0078 login.
async fn unauthenticated(
    server: &Server,
    conn: &mut Connection,
    host: &str,
    failures: &mut u32,
    session_id: u64,
) -> Result<Next, SessionEnd> {
    let offer = features::pre_auth(
        server,
        host,
        conn.dialect(),
        conn.is_flash(),
        conn.is_encrypted(),
    );
    loop {
        let element = next_element(conn).await?;
        if element.is("starttls", ns::TLS) {
            if offer.starttls.is_none() {
                // RFC 6120 §5.4.2.2: failure, then the stream is closed.
                conn.send(&Element::new("failure", ns::TLS)).await?;
                return Err(SessionEnd::Closed);
            }
            conn.send(&Element::new("proceed", ns::TLS)).await?;
            conn.start_tls(&server.tls).await?;
            return Ok(Next::Restart);
        }
        if element.ns() == ns::SASL {
            if let Some(auth) = sasl_attempt(server, conn, host, &offer, &element, failures).await?
            {
                conn.restart();
                return Ok(Next::Authenticated(auth));
            }
            continue;
        }
        let stanza = Stanza::from_element(element)?;
        if stanza.lacks_iq_id() {
            refuse_iq_without_id(conn, &stanza).await?;
            continue;
        }
        if legacy_auth::is_auth_iq(&stanza) {
            let attempt =
                legacy_auth::handle(server, conn, host, &offer, &stanza, failures, session_id);
            if let Some(bound) = attempt.await? {
                return Ok(Next::Bound(bound));
            }
            continue;
        }
        // An exchange a module runs before authentication (XEP-0077 registration).
        let handler = stanza
            .iq_payload()
            .and_then(|p| server.modules.pre_auth_iq_handler(host, p));
        if let Some(handler) = handler {
            let ctx = feature_context(server, conn, host, &offer);
            let iq = PreAuthIq {
                ctx: &ctx,
                peer: conn.peer.ip(),
                stanza: &stanza,
            };
            if let Some(reply) = handler.handle(iq).await {
                conn.send(&reply).await?;
                continue;
            }
        }
        // RFC 6120 §6.1: no stanzas before authentication.
        return Err(SessionEnd::error(StreamCondition::NotAuthorized));
    }
}

/// One `<auth/>` (or a stray SASL element). Counts failures; too many close the stream
/// with `not-authorized` (RFC 6120 §6.4.5).
async fn sasl_attempt(
    server: &Server,
    conn: &mut Connection,
    host: &str,
    offer: &features::Offer,
    element: &Element,
    failures: &mut u32,
) -> Result<Option<Authenticated>, SessionEnd> {
    let failure = match sasl_wire::parse_request(element) {
        Ok(SaslRequest::Auth { mechanism, initial }) if offer.allows(&mechanism) => {
            let attempt = sasl::exchange(server, conn, host, &mechanism, initial).await?;
            match attempt.outcome {
                Outcome::Success(auth) => {
                    crate::metrics::login(&mechanism);
                    server.throttle.success(conn.peer.ip());
                    tracing::info!(
                        jid = %format_args!("{}@{}", auth.account.username, auth.account.domain),
                        ip = %conn.peer.ip(),
                        mechanism,
                        "authenticated"
                    );
                    return Ok(Some(auth));
                }
                Outcome::Failure(f) => {
                    crate::metrics::login_failed(&mechanism);
                    // What an admin needs to spot a guessing attack or a user with a
                    // stale password: who was tried, from where, and how.
                    tracing::info!(
                        user = attempt.authcid.as_deref().unwrap_or("-"),
                        %host,
                        ip = %conn.peer.ip(),
                        mechanism,
                        condition = f.as_str(),
                        "authentication failed"
                    );
                    f
                }
            }
        }
        // RFC 6120 §6.5.3 (as Prosody does): a mechanism we would offer over TLS, asked
        // for in clear text, is encryption-required rather than invalid-mechanism.
        Ok(SaslRequest::Auth { mechanism, .. })
            if !conn.is_encrypted()
                && features::pre_auth(server, host, conn.dialect(), conn.is_flash(), true)
                    .allows(&mechanism) =>
        {
            crate::metrics::login_failed(&mechanism);
            SaslFailure::EncryptionRequired
        }
        Ok(SaslRequest::Auth { mechanism, .. }) => {
            crate::metrics::login_failed(&mechanism);
            SaslFailure::InvalidMechanism
        }
        // RFC 6120 §6.4.5: an abort with no exchange under way still gets <aborted/>.
        Ok(SaslRequest::Abort) => SaslFailure::Aborted,
        Ok(SaslRequest::Response(_)) => SaslFailure::MalformedRequest,
        // RFC 6120 §6.4.2: an <auth/> without a mechanism is invalid-mechanism.
        Err(e) => e.failure(),
    };
    *failures += 1;
    if failure == SaslFailure::NotAuthorized {
        tokio::time::sleep(server.throttle.failure(conn.peer.ip())).await;
    }
    conn.send(&sasl_wire::failure(failure, None)).await?;
    if *failures >= server.live.get().c2s.max_auth_failures {
        return Err(SessionEnd::error_text(
            StreamCondition::NotAuthorized,
            "Too many failed authentication attempts",
        ));
    }
    Ok(None)
}

/// RFC 6120 §7: waits for the bind request and binds the resource in the router.
async fn bind(
    server: &Server,
    conn: &mut Connection,
    auth: &Authenticated,
    session_id: u64,
) -> Result<Bound, SessionEnd> {
    loop {
        let element = next_element(conn).await?;
        if element.ns() == ns::SM {
            if let Some(bound) = resume(server, conn, auth, &element).await? {
                return Ok(bound);
            }
            continue;
        }
        let stanza = Stanza::from_element(element)?;
        if stanza.lacks_iq_id() {
            refuse_iq_without_id(conn, &stanza).await?;
            continue;
        }
        if !bind::is_bind_iq(&stanza) {
            // RFC 6120 §7.1: nothing but binding until a resource is bound.
            return Err(SessionEnd::error(StreamCondition::NotAuthorized));
        }
        let bound = bind::full_jid(&auth.account, &stanza)
            .and_then(|jid| bind_in_router(server, jid, session_id, auth.guest));
        match bound {
            Ok(bound) => {
                let reply = bind::result(&stanza, &bound.jid);
                return confirm_bind(server, conn, bound, &reply).await;
            }
            Err(err) => conn.send(&stanza.error_reply(&err)).await?,
        }
    }
}

/// XEP-0198 before a resource is bound: `<resume/>` takes over a session of this account
/// (§5), which then goes on on this stream; anything else is answered `<failed/>`.
async fn resume(
    server: &Server,
    conn: &mut Connection,
    auth: &Authenticated,
    element: &Element,
) -> Result<Option<Bound>, SessionEnd> {
    let nonza = sm::ClientNonza::parse(element).map_err(|e| {
        SessionEnd::error_text(StreamCondition::UnsupportedStanzaType, &e.to_string())
    })?;
    let condition = match nonza {
        _ if server.modules.stream_management().is_none() => Condition::FeatureNotImplemented,
        sm::ClientNonza::Resume { previd, h } => {
            let account = format!("{}@{}", auth.account.username, auth.account.domain);
            match server.resumptions.take(&account, &previd, h).await {
                Ok(bound) => return Ok(Some(bound)),
                Err(condition) => condition,
            }
        }
        // §3: <enable/> only once a resource is bound; <r/> and <a/> only once enabled.
        _ => Condition::UnexpectedRequest,
    };
    conn.send(&sm::failed(condition, None)).await?;
    Ok(None)
}

/// Makes `jid` this session's in the router; an older session with the same full JID is
/// closed with `conflict` (RFC 6120 §7.7.2.2, the "replace" policy). An account already at
/// `c2s.max_sessions_per_account` gets `resource-constraint` (§7.6.2.1: "too many
/// resources"), so one account can't multiply every presence it sends.
fn bind_in_router(
    server: &Server,
    jid: FullJid,
    session_id: u64,
    guest: bool,
) -> Result<Bound, StanzaError> {
    let (tx, inbox) = crate::router::inbox();
    let state = Arc::new(SessionState::default());
    let replaced =
        StreamError::with_text(StreamCondition::Conflict, "Replaced by a new connection");
    let max = server.live.get().c2s.max_sessions_per_account;
    if !server
        .router
        .table
        .bind(&jid, session_id, tx, state.clone(), replaced, max)
    {
        tracing::info!(%jid, max, "bind refused: c2s.max_sessions_per_account reached");
        return Err(StanzaError::with_text(
            Condition::ResourceConstraint,
            "Too many resources bound for this account",
        ));
    }
    // A reload that removed the host after this stream opened ends the sessions it finds
    // bound; one binding meanwhile ends here, as they do (RFC 6120 §4.9.3.6).
    if !server.serves(jid.domain().as_str()) {
        let gone = StreamError::new(StreamCondition::HostGone);
        server.router.table.close(&jid, gone);
    }
    Ok(Bound {
        jid,
        session_id,
        guest,
        inbox,
        state,
        sm: None,
    })
}

/// Tells the client its resource is bound. If it can't be told (the connection is gone),
/// the router entry made for it is taken back, since no session will ever unbind it.
async fn confirm_bind(
    server: &Server,
    conn: &mut Connection,
    bound: Bound,
    reply: &Element,
) -> Result<Bound, SessionEnd> {
    if let Err(e) = conn.send(reply).await {
        server.router.table.unbind(&bound.jid, bound.session_id);
        return Err(e.into());
    }
    tracing::info!(jid = %bound.jid, "resource bound");
    Ok(bound)
}

/// RFC 6120 §8.1.3: an iq without `id` is answered `bad-request` (as Prosody and ejabberd
/// do), without an `id` since there is none to repeat; an error iq gets no answer.
pub(crate) async fn refuse_iq_without_id(
    conn: &mut Connection,
    stanza: &Stanza,
) -> Result<(), SessionEnd> {
    if !stanza.is_error() {
        conn.send(&stanza.error_reply(&iq_id_required())).await?;
    }
    Ok(())
}

pub(crate) fn iq_id_required() -> StanzaError {
    StanzaError::with_text(Condition::BadRequest, "An iq needs an id")
}

/// The next top-level element of the current stream.
pub(crate) async fn next_element(conn: &mut Connection) -> Result<Element, SessionEnd> {
    match conn.next_event().await? {
        Event::Stanza(element) => Ok(element),
        Event::Close => Err(SessionEnd::ClientClosed),
        // A second header without a restart is a protocol violation.
        Event::Header(_) => Err(SessionEnd::error(StreamCondition::BadFormat)),
    }
}
