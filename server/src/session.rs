//! A bound client session (RFC 6120 §7 onwards): reads the client's stanzas and hands them
//! to the router, and writes what the router put in its inbox. The session owns its
//! connection; other sessions reach it only through the router.

use std::time::Duration;

use jabberwock_protocol::jid::{bare_part, FullJid};
use jabberwock_protocol::stanza::{Stanza, StanzaKind};
use jabberwock_protocol::stream::StreamCondition;
use jabberwock_protocol::xml::reader::Event;
use jabberwock_protocol::xml::Element;
use tokio::time::{sleep_until, Instant};

use crate::c2s::Bound;
use crate::error::SessionEnd;
use crate::modules::{Event as ModuleEvent, EventKind, Flow, Nonza, OwnWrites, SessionState};
use crate::router::table::EndSignal;
use crate::router::{Inbox, Outbound, Outgoing};
use crate::server::Server;
use crate::shutdown::ShutdownSignal;
use crate::stream::connection::Connection;

/// After this long without traffic a session hands its buffers back.
const SHRINK_AFTER: Duration = Duration::from_secs(5);

pub async fn run(
    server: &Server,
    conn: &mut Connection,
    bound: Bound,
    shutdown: &mut ShutdownSignal,
) -> SessionEnd {
    let Bound {
        jid,
        mut inbox,
        session_id,
        guest,
        state,
    } = bound;
    let mut own = OwnWrites::default();
    let mut event = ModuleEvent::SessionBound {
        jid: &jid,
        state: &state,
    };
    server.modules.fire(server, &mut event).await;
    let end = serve(server, conn, &jid, &state, &mut inbox, &mut own, shutdown).await;
    // Takes nothing more from here on: senders see this resource as gone and route around it.
    let left = inbox.close_and_drain();
    // Modules learn of the end while the session is still in the table (the presence
    // module says goodbye for it, RFC 6121 §4.5.4, unless a newer login took this full JID
    // over); `last` tells whether another resource of the account stays.
    let replaced = !server.router.table.is_bound_by(&jid, session_id);
    let last = server.router.table.resource_count(jid.to_bare().as_str()) <= 1;
    let mut event = ModuleEvent::SessionEnded {
        jid: &jid,
        state: &state,
        last,
        replaced,
    };
    server.modules.fire(server, &mut event).await;
    // What was queued for the client and never written is undeliverable, not lost (RFC 6121
    // §8.5.3.2): messages to the bare JID's other resources or offline storage, IQ requests
    // answered with an error.
    server.router.redeliver(server, &jid, left).await;
    // A SASL ANONYMOUS guest's account lives as long as its (only) session.
    if guest {
        crate::c2s::guest::remove(server, &jid.to_bare()).await;
    }
    end
}

async fn serve(
    server: &Server,
    conn: &mut Connection,
    jid: &FullJid,
    state: &SessionState,
    inbox: &mut Inbox,
    own: &mut OwnWrites,
    shutdown: &mut ShutdownSignal,
) -> SessionEnd {
    let idle = server.config.c2s.idle_timeout;
    let mut shrunk_after: Option<Instant> = None;
    let end_signal = inbox.end_signal();
    loop {
        let last = conn.last_activity();
        let can_shrink = shrunk_after != Some(last);
        tokio::select! {
            biased;
            _ = shutdown.triggered() => return SessionEnd::error(StreamCondition::SystemShutdown),
            // The slow-client policy (router::table): the inbox overflowed.
            err = end_signal.ended() => return SessionEnd::Error(err),
            outbound = inbox.recv() => match outbound {
                Some(outbound) => {
                    let stanza = match outbound {
                        Outbound::Stanza(element) => Outgoing::Own(element),
                        Outbound::Shared(shared) => Outgoing::Shared(shared),
                        // A newer login for this full JID (RFC 6120 §7.7.2.2), or the
                        // account is gone.
                        Outbound::Close(err) => return SessionEnd::Error(*err),
                    };
                    if let Err(end) = to_client(server, conn, jid, state, &end_signal, stanza).await {
                        return end;
                    }
                }
                None => return SessionEnd::error(StreamCondition::Conflict),
            },
            event = conn.next_event() => match event {
                Ok(Event::Stanza(element)) => {
                    // Boxed: a client stanza's handling (presence, routing, storage) is a large
                    // future, and an idle session should not carry room for it.
                    if let Err(end) = Box::pin(from_client(server, jid, state, own, element)).await {
                        return end;
                    }
                    // What the stanza earned this session itself, written before more input
                    // is read (see `PresenceState`).
                    if let Err(end) = Box::pin(write_own(server, conn, jid, state, own)).await {
                        return end;
                    }
                }
                Ok(Event::Close) => return SessionEnd::ClientClosed,
                Ok(Event::Header(_)) => return SessionEnd::error(StreamCondition::BadFormat),
                Err(err) => return err.into(),
            },
            _ = sleep_until(last + idle) => {
                if conn.last_activity() == last {
                    return SessionEnd::error(StreamCondition::ConnectionTimeout);
                }
            }
            _ = sleep_until(last + SHRINK_AFTER), if can_shrink => {
                conn.shrink();
                shrunk_after = Some(last);
            }
        }
    }
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
) -> Result<(), SessionEnd> {
    // Kept small across the writes below (a Vec and a pointer, not elements): this future
    // is every idle session's, and its largest state counts.
    let (before, stanza) = if server.modules.listens(EventKind::StanzaToClient) {
        Box::pin(through_modules(server, jid, state, stanza)).await
    } else {
        (Vec::new(), Some(stanza))
    };
    let mut units = before.into_iter().map(Outgoing::own).chain(stanza);
    while let Some(unit) = units.next() {
        // A client that stopped reading blocks this write; once its inbox overflows too
        // the session ends without finishing it (the unit is cut, so nothing more can be
        // written on this stream).
        let stopped = tokio::select! {
            sent = send(conn, jid, &unit) => if sent.is_err() {
                return Err(SessionEnd::Disconnected);
            } else {
                false
            },
            _ = end_signal.ended() => true,
        };
        if stopped {
            tracing::warn!(%jid, "client stopped reading: connection dropped");
            let left = std::iter::once(unit).chain(units).collect();
            Box::pin(server.router.redeliver(server, jid, left)).await;
            return Err(SessionEnd::Disconnected);
        }
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
/// requests, then what modules kept for the account (the offline backlog).
async fn write_own(
    server: &Server,
    conn: &mut Connection,
    jid: &FullJid,
    state: &SessionState,
    own: &mut OwnWrites,
) -> Result<(), SessionEnd> {
    let listens = server.modules.listens(EventKind::StanzaToClient);
    for element in std::mem::take(&mut own.stanzas) {
        if !listens {
            conn.send(&element).await?;
            continue;
        }
        let (before, stanza) = through_modules(server, jid, state, Outgoing::own(element)).await;
        for element in before {
            conn.send(&element).await?;
        }
        if let Some(stanza) = stanza {
            send(conn, jid, &stanza).await?;
        }
    }
    if std::mem::take(&mut own.backlog_due) {
        for backlog in server.modules.backlogs(jid.domain().as_str()) {
            backlog.write(server, jid, conn).await?;
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

/// One stanza from the client: checked, stamped, then presence to the modules (the presence
/// module handles it), messages past the modules to the router, IQs to the router.
async fn from_client(
    server: &Server,
    jid: &FullJid,
    state: &SessionState,
    own: &mut OwnWrites,
    element: Element,
) -> Result<(), SessionEnd> {
    // A nonza a module handles (XEP-0352's <active/>, XEP-0198's <r/>): what it writes, and
    // its answer if any, go out with what the session writes for itself.
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
    let mut stanza = Stanza::from_element(element)?;
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
