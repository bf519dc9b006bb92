//! A bound client session (RFC 6120 §7 onwards): reads the client's stanzas and hands them
//! to the router, and writes what the router put in its inbox. The session owns its
//! connection; other sessions reach it only through the router.

use std::time::Duration;

use jabberwock_protocol::jid::FullJid;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Stanza, StanzaKind};
use jabberwock_protocol::stream::{StreamCondition, StreamError};
use jabberwock_protocol::xml::reader::Event;
use jabberwock_protocol::xml::Element;
use tokio::time::{sleep_until, Instant};

use crate::c2s::Bound;
use crate::error::SessionEnd;
use crate::router::Outbound;
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
    let Bound { jid, mut inbox, .. } = bound;
    let idle = server.config.c2s.idle_timeout;
    let mut shrunk_after: Option<Instant> = None;
    loop {
        let last = conn.last_activity();
        let can_shrink = shrunk_after != Some(last);
        tokio::select! {
            biased;
            _ = shutdown.triggered() => return SessionEnd::error(StreamCondition::SystemShutdown),
            outbound = inbox.recv() => match outbound {
                Some(Outbound::Stanza(element)) => {
                    if conn.send(&element).await.is_err() {
                        return SessionEnd::Disconnected;
                    }
                }
                // RFC 6120 §7.7.2.2: the older of two sessions for one full JID is closed.
                Some(Outbound::Replaced) | None => {
                    return SessionEnd::Error(StreamError::with_text(
                        StreamCondition::Conflict,
                        "Replaced by a new connection",
                    ))
                }
            },
            event = conn.next_event() => match event {
                Ok(Event::Stanza(element)) => {
                    if let Err(end) = from_client(server, &jid, element).await {
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

/// One stanza from the client: checked, stamped, routed.
async fn from_client(server: &Server, jid: &FullJid, element: Element) -> Result<(), SessionEnd> {
    let mut stanza = Stanza::from_element(element)?;
    // RFC 6120 §8.1.2.1: `from` is the server's to set; a client may only repeat its own
    // full or bare JID, anything else is a spoof.
    if let Some(from) = stanza.from() {
        let bare = jid.to_bare();
        if from != jid.as_str() && from != bare.as_str() {
            return Err(SessionEnd::error(StreamCondition::InvalidFrom));
        }
    }
    stanza.set_from(jid.as_str());
    if stanza.kind() == StanzaKind::Presence && stanza.to().is_none() {
        note_broadcast_presence(server, jid, &stanza);
    }
    server.router.route(server, jid, stanza).await;
    Ok(())
}

/// RFC 6121 §4.7.2.3: broadcast presence decides whether (and how eagerly) a resource
/// receives messages sent to the bare JID.
fn note_broadcast_presence(server: &Server, jid: &FullJid, presence: &Stanza) {
    let priority = match presence.type_attr() {
        None => Some(
            presence
                .element()
                .get_child("priority", ns::CLIENT)
                .and_then(|p| p.text().trim().parse::<i8>().ok())
                .unwrap_or(0),
        ),
        Some("unavailable") => None,
        // Subscription management and probes are not availability changes.
        Some(_) => return,
    };
    server.router.set_presence(jid, priority);
}
