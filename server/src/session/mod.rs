//! A bound client session (RFC 6120 §7 onwards): reads the client's stanzas and hands them
//! to the router, and writes what the router put in its inbox. The session owns its
//! connection; other sessions reach it only through the router.
//!
//! With XEP-0198 (`acks.rs`, `resume.rs`) a session may outlive its connection: a
//! resumable session whose stream is lost waits for its client, keeping what it could not
//! deliver, and goes on over the stream that resumes it; only when the wait is over does
//! it end as any session ends.

pub mod acks;
pub mod resume;
mod writer;

use std::collections::VecDeque;
use std::time::Duration;

use jabberwock_protocol::jid::{bare_part, FullJid};
use jabberwock_protocol::ns;
use jabberwock_protocol::sm::{self, ClientNonza};
use jabberwock_protocol::stanza::{Condition, Stanza, StanzaKind};
use jabberwock_protocol::stream::{StreamCondition, StreamError};
use jabberwock_protocol::xml::reader::Event;
use jabberwock_protocol::xml::Element;
use tokio::time::{sleep_until, Instant};

use self::acks::Acks;
pub use self::resume::Resumptions;
use self::resume::{Registration, Takeover};
pub use self::writer::ClientWriter;

use crate::c2s::Bound;
use crate::error::SessionEnd;
use crate::modules::durability::{self, InFlight, Owed};
use crate::modules::{Event as ModuleEvent, EventKind, Flow, Nonza, OwnWrites, SessionState};
use crate::router::table::EndSignal;
use crate::router::{Outbound, Outgoing};
use crate::server::Server;
use crate::shutdown::ShutdownSignal;
use crate::stream::connection::Connection;

/// After this long without traffic a session hands its buffers back.
const SHRINK_AFTER: Duration = Duration::from_secs(5);

/// How long telling a lost stream why it is closed may take before the socket goes anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Unacknowledged stanzas past which an `<r/>` goes out even in the middle of a burst.
const REQUEST_EVERY: usize = 32;

/// XEP-0198 state of a session whose client enabled it. It belongs to the session, not to
/// the stream: a resuming stream takes it over with the rest of [`Bound`].
pub struct StreamManagement {
    acks: Acks,
    /// Set when the client asked for resumption (§5): the session's id and its wait.
    resumable: Option<Resumable>,
    /// What arrived while the client was away, written once it is back (in order, after
    /// what was sent again).
    pending: VecDeque<Outgoing>,
    /// When our outstanding `<r/>` went out.
    requested_at: Option<Instant>,
    /// Writes modules made for the client's stanzas that are not durable yet, and the
    /// counts the client asked for that wait for them (`modules::durability`).
    in_flight: InFlight,
    owed: Owed,
}

struct Resumable {
    registration: Registration,
    timeout: Duration,
}

impl StreamManagement {
    /// Kept for the client: sent and unacknowledged, and arrived while it was away.
    fn kept(&self) -> usize {
        self.acks.unacked_len() + self.pending.len()
    }
}

/// How [`serve`] stopped.
enum Served {
    End(SessionEnd),
    /// The client resumed this session on another stream while this one still looked
    /// alive (a connection cut without a FIN is found dead only by a timeout).
    Takeover(Takeover),
}

/// Why a session ends when XEP-0198 keeps more than the client acknowledges.
fn too_many_kept(jid: &FullJid) -> SessionEnd {
    tracing::warn!(%jid, "too many unacknowledged stanzas: session ended");
    SessionEnd::error_text(
        StreamCondition::PolicyViolation,
        "Too many unacknowledged stanzas",
    )
}

pub async fn run(
    server: &Server,
    conn: &mut Connection,
    mut session: Bound,
    shutdown: &mut ShutdownSignal,
) -> SessionEnd {
    let mut own = OwnWrites::default();
    // What `jabberwock sessions` shows; a resumed session keeps its start, with its new
    // connection's address and kind.
    session
        .state
        .insert(crate::admin::SessionInfo::of(conn, &session.state));
    if session.sm.is_some() {
        // A resumed session: the modules knew it all along.
        if let Err(end) = resumed(server, conn, &mut session).await {
            return finish(server, conn, session, shutdown, end).await;
        }
    } else {
        let mut event = ModuleEvent::SessionBound {
            jid: &session.jid,
            state: &session.state,
        };
        server.modules.fire(server, &mut event).await;
    }
    loop {
        match serve(server, conn, &mut session, &mut own, shutdown).await {
            Served::End(end) => return finish(server, conn, session, shutdown, end).await,
            Served::Takeover(takeover) => match hand_over(session, takeover) {
                Ok(()) => {
                    return SessionEnd::HandedOver(Some(StreamError::with_text(
                        StreamCondition::Conflict,
                        "Resumed on another stream",
                    )))
                }
                Err(back) => session = *back,
            },
        }
    }
}

/// The session's stream ended with `end`: a resumable session whose stream was lost waits
/// for its client (XEP-0198 §5); any other ends here.
async fn finish(
    server: &Server,
    conn: &mut Connection,
    mut session: Bound,
    shutdown: &mut ShutdownSignal,
    end: SessionEnd,
) -> SessionEnd {
    // Only a lost stream is waited for: not one the client closed, one that ended with a
    // stream error, or one whose inbox overflowed (the slow-client policy ended it).
    let lost = (matches!(end, SessionEnd::Disconnected)
        || matches!(&end, SessionEnd::Error(e) if e.condition == StreamCondition::ConnectionTimeout))
        && !session.inbox.is_ending();
    let wait = session
        .sm
        .as_ref()
        .and_then(|sm| sm.resumable.as_ref())
        .map(|r| r.timeout);
    let mut end = end;
    if let (true, Some(wait)) = (lost, wait) {
        tracing::info!(jid = %session.jid, seconds = wait.as_secs(), "stream lost: session waits for resumption");
        // The wait needs no connection: a stream that timed out is told so (RFC 6120
        // §4.9.3.4, `connection-timeout`) and closed, one the peer dropped just closed, and
        // the socket and its buffers go now rather than when the wait ends.
        if let SessionEnd::Error(error) = &end {
            let host = server.default_host();
            let closing = conn.close(Some(error), &host);
            let _ = tokio::time::timeout(CLOSE_WAIT, closing).await;
        }
        conn.release();
        let until = Instant::now() + wait;
        loop {
            match hibernate(server, &mut session, shutdown, until).await {
                Away::Takeover(takeover) => match hand_over(session, takeover) {
                    Ok(()) => return SessionEnd::HandedOver(None),
                    Err(back) => session = *back,
                },
                Away::Expired => {
                    tracing::info!(jid = %session.jid, "no resumption in time: session ends");
                    break;
                }
                Away::Ended(why) => {
                    end = why;
                    break;
                }
            }
        }
    }
    end_session(server, session).await;
    end
}

enum Away {
    Takeover(Takeover),
    Expired,
    Ended(SessionEnd),
}

/// Waits, without a stream, for the client to resume (until `until`), keeping what arrives
/// for it.
async fn hibernate(
    server: &Server,
    session: &mut Bound,
    shutdown: &mut ShutdownSignal,
    until: Instant,
) -> Away {
    let max = server
        .modules
        .stream_management()
        .map_or(usize::MAX, |s| s.get().max_unacked);
    let end_signal = session.inbox.end_signal();
    loop {
        let Some(sm) = session.sm.as_deref_mut() else {
            return Away::Expired;
        };
        let Some(resumable) = sm.resumable.as_mut() else {
            return Away::Expired;
        };
        let woke = tokio::select! {
            biased;
            _ = shutdown.triggered() => {
                return Away::Ended(SessionEnd::error(StreamCondition::SystemShutdown))
            }
            err = end_signal.ended() => return Away::Ended(SessionEnd::Error(err)),
            takeover = resumable.registration.takeovers.recv() => match takeover {
                Some(takeover) => return Away::Takeover(takeover),
                None => return Away::Expired,
            },
            outbound = session.inbox.recv() => outbound,
            _ = sleep_until(until) => return Away::Expired,
        };
        match woke {
            Some(Outbound::Stanza(element)) => sm.pending.push_back(Outgoing::Own(element)),
            Some(Outbound::Shared(shared)) => sm.pending.push_back(Outgoing::Shared(shared)),
            Some(Outbound::Close(err)) => return Away::Ended(SessionEnd::Error(*err)),
            None => return Away::Ended(SessionEnd::error(StreamCondition::Conflict)),
        }
        if sm.kept() > max {
            return Away::Ended(too_many_kept(&session.jid));
        }
    }
}

/// Gives the session to the stream that resumes it (§5), if that is the same account and
/// its count is one we can believe; otherwise the session stays here.
fn hand_over(mut session: Bound, takeover: Takeover) -> Result<(), Box<Bound>> {
    if takeover.account != bare_part(session.jid.as_str()) {
        tracing::warn!(jid = %session.jid, account = %takeover.account, "resumption by another account refused");
        let _ = takeover.reply.send(Err(Condition::ItemNotFound));
        return Err(Box::new(session));
    }
    let Some(sm) = session.sm.as_deref_mut() else {
        let _ = takeover.reply.send(Err(Condition::ItemNotFound));
        return Err(Box::new(session));
    };
    if let Err(too_high) = sm.acks.acknowledge(takeover.h) {
        tracing::info!(jid = %session.jid, h = too_high.h, sent = too_high.sent, "resumption with a count above what was sent refused");
        let _ = takeover.reply.send(Err(Condition::UnexpectedRequest));
        return Err(Box::new(session));
    }
    sm.acks.requested = false;
    sm.requested_at = None;
    match takeover.reply.send(Ok(session)) {
        Ok(()) => Ok(()),
        // The resuming stream gave up waiting: the session stays.
        Err(Ok(session)) => Err(Box::new(session)),
        Err(Err(_)) => unreachable!("an Ok was sent"),
    }
}

/// The session is over: the modules learn it, and what it holds for the client goes back to
/// routing as undeliverable.
async fn end_session(server: &Server, mut session: Bound) {
    let jid = &session.jid;
    // What was sent and never acknowledged, then what arrived while away (XEP-0198 §5:
    // undeliverable, not lost).
    let mut left = Vec::new();
    if let Some(sm) = session.sm.as_deref_mut() {
        // First of all: no resumption of a session that is ending.
        sm.resumable = None;
        left.extend(sm.acks.take_unacked());
        left.extend(sm.pending.drain(..));
    }
    // Takes nothing more from here on: senders see this resource as gone and route around it.
    left.extend(session.inbox.close_and_drain());
    // Modules learn of the end while the session is still in the table (the presence
    // module says goodbye for it, RFC 6121 §4.5.4, unless a newer login took this full JID
    // over); `last` tells whether another resource of the account stays.
    let replaced = !server.router.table.is_bound_by(jid, session.session_id);
    let last = server.router.table.resource_count(jid.to_bare().as_str()) <= 1;
    let mut event = ModuleEvent::SessionEnded {
        jid,
        state: &session.state,
        last,
        replaced,
    };
    server.modules.fire(server, &mut event).await;
    // What was queued for the client and never written is undeliverable, not lost (RFC 6121
    // §8.5.3.2): messages to the bare JID's other resources or offline storage, IQ requests
    // answered with an error.
    server.router.redeliver(server, jid, left).await;
    // A SASL ANONYMOUS guest's account lives as long as its (only) session.
    if session.guest {
        crate::c2s::guest::remove(server, &jid.to_bare()).await;
    }
}

/// The first writes of a resumed session on its new stream (§5): `<resumed/>` with our
/// count, what the client had not acknowledged (under the same numbers), then what arrived
/// while it was away.
async fn resumed(
    server: &Server,
    conn: &mut Connection,
    session: &mut Bound,
) -> Result<(), SessionEnd> {
    let Bound {
        jid,
        state,
        inbox,
        sm,
        ..
    } = session;
    let Some(sm) = sm.as_deref_mut() else {
        return Ok(());
    };
    let id = sm
        .resumable
        .as_ref()
        .map(|r| r.registration.id.clone())
        .unwrap_or_default();
    // §5: the count resumed with covers only what is durable.
    if sm.owed.settle_all(&sm.in_flight).await.is_err() {
        return Err(not_durable(jid));
    }
    conn.send(&sm::resumed(&id, sm.acks.handled())).await?;
    tracing::info!(%jid, again = sm.acks.unacked_len(), waiting = sm.pending.len(), "session resumed");
    for stanza in sm.acks.unacked() {
        send(conn, jid, stanza).await?;
    }
    let end_signal = inbox.end_signal();
    while let Some(stanza) = sm.pending.pop_front() {
        to_client(
            server,
            conn,
            jid,
            state,
            &end_signal,
            stanza,
            Some(&mut sm.acks),
        )
        .await?;
    }
    request_ack(conn, sm, true).await?;
    Ok(())
}

/// Asks the client for its count (`<r/>`) when something waits for acknowledgement and no
/// request is out: at the end of a burst (`idle`), or every [`REQUEST_EVERY`] stanzas.
async fn request_ack(
    conn: &mut Connection,
    sm: &mut StreamManagement,
    idle: bool,
) -> std::io::Result<()> {
    let waiting = sm.acks.unacked_len();
    if sm.acks.requested || waiting == 0 || !(idle || waiting >= REQUEST_EVERY) {
        return Ok(());
    }
    sm.acks.requested = true;
    sm.requested_at = Some(Instant::now());
    conn.send(&sm::request()).await
}

/// The stream's loop: the inbox to the client, the client's stanzas to the router.
async fn serve(
    server: &Server,
    conn: &mut Connection,
    session: &mut Bound,
    own: &mut OwnWrites,
    shutdown: &mut ShutdownSignal,
) -> Served {
    let idle = server.live.get().c2s.idle_timeout;
    let settings = server.modules.stream_management().map(|s| s.get());
    // Without the module no `<r/>` ever goes out, so the value is never used.
    let ack_timeout = settings
        .as_ref()
        .map_or(Duration::from_secs(3600), |s| s.ack_timeout);
    let max_kept = settings.map_or(usize::MAX, |s| s.max_unacked);
    let mut shrunk_after: Option<Instant> = None;
    let end_signal = session.inbox.end_signal();
    let Bound {
        jid,
        state,
        inbox,
        sm,
        ..
    } = session;
    let end = |end| Served::End(end);
    loop {
        let last = conn.last_activity();
        let can_shrink = shrunk_after != Some(last);
        let requested_at = sm.as_ref().and_then(|sm| sm.requested_at);
        let managed = sm.is_some();
        tokio::select! {
            biased;
            _ = shutdown.triggered() => return end(SessionEnd::error(StreamCondition::SystemShutdown)),
            // The slow-client policy (router::table): the inbox overflowed.
            err = end_signal.ended() => return end(SessionEnd::Error(err)),
            event = sm_event(sm), if managed => match event {
                SmEvent::Takeover(Some(takeover)) => return Served::Takeover(takeover),
                SmEvent::Takeover(None) => return end(SessionEnd::Disconnected),
                SmEvent::Settled(Ok(h)) => {
                    if let Err(e) = conn.send(&sm::answer(h)).await {
                        return end(e.into());
                    }
                }
                SmEvent::Settled(Err(_)) => return end(not_durable(jid)),
            },
            outbound = inbox.recv() => match outbound {
                Some(outbound) => {
                    let stanza = match outbound {
                        Outbound::Stanza(element) => Outgoing::Own(element),
                        Outbound::Shared(shared) => Outgoing::Shared(shared),
                        // A newer login for this full JID (RFC 6120 §7.7.2.2), or the
                        // account is gone.
                        Outbound::Close(err) => return end(SessionEnd::Error(*err)),
                    };
                    let acks = sm.as_deref_mut().map(|sm| &mut sm.acks);
                    if let Err(e) = to_client(server, conn, jid, state, &end_signal, stanza, acks).await {
                        return end(e);
                    }
                    if let Some(sm) = sm.as_deref_mut() {
                        if sm.kept() > max_kept {
                            return end(too_many_kept(jid));
                        }
                        if let Err(e) = request_ack(conn, sm, inbox.is_empty()).await {
                            return end(e.into());
                        }
                    }
                }
                None => return end(SessionEnd::error(StreamCondition::Conflict)),
            },
            event = conn.next_event() => match event {
                Ok(Event::Stanza(element)) => {
                    // Boxed: a client stanza's handling (presence, routing, storage) is a large
                    // future, and an idle session should not carry room for it.
                    let in_flight = sm.as_ref().map(|sm| sm.in_flight.clone());
                    let handled = durability::handling(in_flight, from_client(server, jid, state, sm, own, element));
                    if let Err(e) = Box::pin(handled).await {
                        return end(e);
                    }
                    // What the stanza earned this session itself, written before more input
                    // is read (see `PresenceState`).
                    let acks = sm.as_deref_mut().map(|sm| &mut sm.acks);
                    if let Err(e) = Box::pin(write_own(server, conn, jid, state, own, acks)).await {
                        return end(e);
                    }
                }
                Ok(Event::Close) => return end(SessionEnd::ClientClosed),
                Ok(Event::Header(_)) => return end(SessionEnd::error(StreamCondition::BadFormat)),
                Err(err) => return end(err.into()),
            },
            // XEP-0198: a client that does not answer our `<r/>` is gone, whatever TCP says.
            _ = sleep_until(requested_at.map_or(last, |at| at + ack_timeout)), if requested_at.is_some() => {
                tracing::info!(%jid, "no <a/> in time: the stream counts as lost");
                return end(SessionEnd::Disconnected);
            }
            _ = sleep_until(last + idle) => {
                if conn.last_activity() == last {
                    return end(SessionEnd::error(StreamCondition::ConnectionTimeout));
                }
            }
            _ = sleep_until(last + SHRINK_AFTER), if can_shrink => {
                conn.shrink();
                shrunk_after = Some(last);
            }
        }
    }
}

enum SmEvent {
    /// The next takeover of a resumable session (`None`: its registration is gone).
    Takeover(Option<Takeover>),
    /// A count the client asked for whose writes are now durable (or never will be).
    Settled(Result<u32, durability::NotDurable>),
}

/// What XEP-0198 brings a session besides its client's input: another stream resuming it,
/// or a count that can now be answered.
async fn sm_event(sm: &mut Option<Box<StreamManagement>>) -> SmEvent {
    let Some(sm) = sm.as_deref_mut() else {
        return std::future::pending().await;
    };
    let StreamManagement {
        resumable, owed, ..
    } = sm;
    let takeover = async {
        match resumable.as_mut() {
            Some(resumable) => resumable.registration.takeovers.recv().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        takeover = takeover => SmEvent::Takeover(takeover),
        settled = owed.next(), if !owed.is_empty() => SmEvent::Settled(settled),
    }
}

/// A write for a stanza the client sent can never be made durable (the server is going
/// down): the stanza can't be counted, so the stream ends without counting it; the
/// client sends it again on its next stream (XEP-0198 §5).
fn not_durable(jid: &FullJid) -> SessionEnd {
    tracing::error!(%jid, "a write for a client stanza failed: stream ended before counting it");
    SessionEnd::error(StreamCondition::InternalServerError)
}

/// Writes a stanza from the inbox, as the modules listening to
/// [`ModuleEvent::StanzaToClient`] leave it, and what they put before it.
async fn to_client(
    server: &Server,
    conn: &mut Connection,
    jid: &FullJid,
    state: &SessionState,
    end_signal: &EndSignal,
    stanza: Outgoing,
    acks: Option<&mut Acks>,
) -> Result<(), SessionEnd> {
    // Kept small across the writes below (a Vec and a pointer, not elements): this future
    // is every idle session's, and its largest state counts.
    let (before, stanza) = if server.modules.listens(EventKind::StanzaToClient) {
        Box::pin(through_modules(server, jid, state, stanza)).await
    } else {
        (Vec::new(), Some(stanza))
    };
    let mut out = ClientWriter::new(conn, jid, acks);
    let mut units = before.into_iter().map(Outgoing::own).chain(stanza);
    while let Some(unit) = units.next() {
        // A client that stopped reading blocks this write; once its inbox overflows too
        // the session ends without finishing it (the unit is cut, so nothing more can be
        // written on this stream).
        let stopped = tokio::select! {
            sent = out.write(&unit) => match sent {
                Ok(()) => false,
                Err(_) => {
                    out.keep(unit);
                    return Err(SessionEnd::Disconnected);
                }
            },
            _ = end_signal.ended() => true,
        };
        if stopped {
            tracing::warn!(%jid, "client stopped reading: connection dropped");
            let left = std::iter::once(unit).chain(units).collect();
            Box::pin(server.router.redeliver(server, jid, left)).await;
            return Err(SessionEnd::Disconnected);
        }
        out.keep(unit);
    }
    Ok(())
}

/// Writes one stanza; a shared one with this session's JID as its `to`.
async fn send(conn: &mut Connection, jid: &FullJid, stanza: &Outgoing) -> std::io::Result<()> {
    match stanza {
        Outgoing::Own(element) => conn.send(element).await,
        Outgoing::Shared(shared) => conn.send_shared(shared, jid.as_str()).await,
    }
}

/// Writes what the client's last stanza earned the session itself, in order: presence, waiting
/// requests, what modules made for the client meanwhile, then what modules kept for the
/// account (the offline backlog).
async fn write_own(
    server: &Server,
    conn: &mut Connection,
    jid: &FullJid,
    state: &SessionState,
    own: &mut OwnWrites,
    acks: Option<&mut Acks>,
) -> Result<(), SessionEnd> {
    let listens = server.modules.listens(EventKind::StanzaToClient);
    let mut out = ClientWriter::new(conn, jid, acks);
    // Then what modules made for this client while its stanza was handled
    // (`SessionState::write_after`).
    let later = state.take_later();
    for element in std::mem::take(&mut own.stanzas).into_iter().chain(later) {
        if !listens {
            out.element(element).await?;
            continue;
        }
        let (before, stanza) = through_modules(server, jid, state, Outgoing::own(element)).await;
        for element in before {
            out.element(element).await?;
        }
        if let Some(stanza) = stanza {
            out.send(stanza).await?;
        }
    }
    if std::mem::take(&mut own.backlog_due) {
        for backlog in server.modules.backlogs(jid.domain().as_str()) {
            backlog.write(server, jid, &mut out).await?;
        }
    }
    Ok(())
}

/// What the session writes for `element`, as the modules listening to
/// [`ModuleEvent::StanzaToClient`] leave it: what they put before it, then the stanza unless
/// one took it.
async fn through_modules(
    server: &Server,
    jid: &FullJid,
    state: &SessionState,
    stanza: Outgoing,
) -> (Vec<Element>, Option<Outgoing>) {
    let mut stanza = Some(stanza);
    let mut before = Vec::new();
    let mut event = ModuleEvent::StanzaToClient {
        jid,
        state,
        stanza: &mut stanza,
        out: &mut before,
    };
    server.modules.fire(server, &mut event).await;
    (before, stanza)
}

/// A XEP-0198 nonza of a bound session; its answer goes out with what the session writes
/// for itself.
fn stream_management(
    server: &Server,
    jid: &FullJid,
    sm: &mut Option<Box<StreamManagement>>,
    own: &mut OwnWrites,
    element: &Element,
) -> Result<(), SessionEnd> {
    let nonza = ClientNonza::parse(element).map_err(|e| {
        SessionEnd::error_text(StreamCondition::UnsupportedStanzaType, &e.to_string())
    })?;
    let Some(settings) = server.modules.stream_management() else {
        // §3: a server without the feature may refuse it this way.
        own.stanzas
            .push(sm::failed(Condition::FeatureNotImplemented, None));
        return Ok(());
    };
    match (nonza, sm.as_deref_mut()) {
        (ClientNonza::Enable { resume, max }, None) => {
            let resumable = resume.then(|| Resumable {
                registration: server.resumptions.register(),
                timeout: Duration::from_secs(settings.get().resume_timeout(max).into()),
            });
            own.stanzas.push(sm::enabled(
                resumable
                    .as_ref()
                    .map(|r| (r.registration.id.as_str(), r.timeout.as_secs() as u32)),
            ));
            tracing::debug!(%jid, resumable = resumable.is_some(), "stream management enabled");
            *sm = Some(Box::new(StreamManagement {
                acks: Acks::default(),
                resumable,
                pending: VecDeque::new(),
                requested_at: None,
                in_flight: InFlight::default(),
                owed: Owed::default(),
            }));
        }
        // Answered now, or once what the counted stanzas wrote is durable.
        (ClientNonza::Request, Some(sm)) => {
            if let Some(h) = sm.owed.owe(sm.acks.handled(), sm.in_flight.take()) {
                own.stanzas.push(sm::answer(h));
            }
        }
        (ClientNonza::Answer { h }, Some(sm)) => {
            // §4: a count above what was sent is a broken client.
            sm.acks.acknowledge(h).map_err(|e| {
                SessionEnd::error_text(
                    StreamCondition::UndefinedCondition,
                    &format!("handled-count-too-high: h={} send-count={}", e.h, e.sent),
                )
            })?;
            sm.acks.requested = false;
            sm.requested_at = None;
            // Some are still unacknowledged (sent after our <r/>): ask again, so that a stream
            // lost now leaves as little as possible to send twice.
            if sm.acks.unacked_len() > 0 {
                own.stanzas.push(sm::request());
                sm.acks.requested = true;
                sm.requested_at = Some(Instant::now());
            }
        }
        // A second <enable/>, <r/> or <a/> before <enable/>, <resume/> on a bound stream.
        (_, _) => own
            .stanzas
            .push(sm::failed(Condition::UnexpectedRequest, None)),
    }
    Ok(())
}

/// One stanza from the client: checked, stamped, then presence to the modules (the presence
/// module handles it), messages past the modules to the router, IQs to the router.
async fn from_client(
    server: &Server,
    jid: &FullJid,
    state: &SessionState,
    sm: &mut Option<Box<StreamManagement>>,
    own: &mut OwnWrites,
    element: Element,
) -> Result<(), SessionEnd> {
    if element.ns() == ns::SM {
        return stream_management(server, jid, sm, own, &element);
    }
    // A nonza a module handles (XEP-0352's <active/>): what it writes, and its answer if
    // any, go out with what the session writes for itself.
    if let Some(handler) = server
        .modules
        .nonza_handler(jid.domain().as_str(), &element)
    {
        let nonza = Nonza {
            server,
            jid,
            state,
            element: &element,
            out: &mut own.stanzas,
        };
        let reply = handler.handle(nonza).await.map_err(SessionEnd::Error)?;
        own.stanzas.extend(reply);
        return Ok(());
    }
    // XEP-0198 §4: every stanza received counts as handled, whatever becomes of it.
    if let Some(sm) = sm.as_deref_mut() {
        sm.acks.handled_one();
    }
    let mut stanza = Stanza::from_element(element)?;
    crate::metrics::stanza_in(stanza.kind());
    // RFC 6120 §8.1.2.1: `from` is the server's to set; a client may only repeat its own
    // full or bare JID, anything else is a spoof.
    if let Some(from) = stanza.from() {
        if from != jid.as_str() && from != bare_part(jid.as_str()) {
            return Err(SessionEnd::error(StreamCondition::InvalidFrom));
        }
    }
    stanza.set_from(jid.as_str());
    // RFC 6120 §8.1.3: not processed, not routed; the sender alone hears of it.
    if stanza.lacks_iq_id() {
        server
            .router
            .bounce(jid, &stanza, crate::c2s::iq_id_required());
        return Ok(());
    }
    match stanza.kind() {
        StanzaKind::Presence => {
            let mut event = ModuleEvent::PresenceOut {
                from: jid,
                stanza: &mut stanza,
                own,
            };
            match server.modules.fire(server, &mut event).await {
                Flow::Refuse(err) => server.router.bounce(jid, &stanza, err),
                // Handled by the presence module; with it switched off, presence goes nowhere.
                Flow::Handled | Flow::Continue => {}
            }
        }
        StanzaKind::Message => {
            let mut event = ModuleEvent::MessageFromClient {
                from: jid,
                stanza: &mut stanza,
            };
            match server.modules.fire(server, &mut event).await {
                Flow::Continue => server.router.route(server, jid, stanza).await,
                Flow::Handled => {}
                Flow::Refuse(err) => server.router.bounce(jid, &stanza, err),
            }
        }
        StanzaKind::Iq => server.router.route(server, jid, stanza).await,
    }
    Ok(())
}
