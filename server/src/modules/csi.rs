//! XEP-0352: Client State Indication (version 1.0.0). A client says `<inactive/>` when its
//! user is away from it and `<active/>` when back (§4.2); while it is inactive the server
//! holds back what can wait (§3.2): contacts' presence updates, only the latest of each
//! full JID kept. Anything else (a message, an IQ, a subscription request) goes at once,
//! after what was held, so the client sees everything in the order it happened.

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use jabberwock_protocol::ns;
use jabberwock_protocol::stream::StreamError;
use jabberwock_protocol::xml::Element;

use super::{
    xep, Event, EventKind, Flow, Hook, Module, NoConfig, Nonza, NonzaHandler, Registrar, Stage, Xep,
};
use crate::router::Outgoing;
use crate::server::Server;

pub struct Csi;

/// Past this many held presences (one per full JID), they are let go: a client that stays
/// inactive must not make the server keep an unbounded backlog for it.
const MAX_HELD: usize = 256;

/// A session's client state; a session that never indicated one is active (§4.2).
#[derive(Default)]
struct ClientState(Mutex<Held>);

#[derive(Default)]
struct Held {
    inactive: bool,
    /// Held presences, oldest first, with the full JID each is from.
    presences: Vec<(String, Element)>,
}

impl ClientState {
    fn lock(&self) -> MutexGuard<'_, Held> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// §3.2 leaves to the server what can wait: a contact's availability (available or
/// unavailable presence) can; subscription requests and answers, which the user acts on,
/// and errors cannot. The presence's `from`, by which later ones replace it.
fn can_wait(stanza: &Element) -> Option<&str> {
    if !stanza.is("presence", ns::CLIENT) {
        return None;
    }
    match stanza.attr("type") {
        None | Some("unavailable") => stanza.attr("from"),
        Some(_) => None,
    }
}

/// `<active/>` (false) or `<inactive/>` (true).
struct Indication(bool);

#[async_trait]
impl NonzaHandler for Indication {
    async fn handle(&self, nonza: Nonza<'_>) -> Result<Option<Element>, StreamError> {
        let state = nonza.state.get_or_insert_with(ClientState::default);
        let mut held = state.lock();
        held.inactive = self.0;
        if !self.0 {
            nonza
                .out
                .extend(held.presences.drain(..).map(|(_, presence)| presence));
        }
        // §4.2: the server answers neither.
        Ok(None)
    }
}

/// Holds what can wait while the client is inactive; lets it go before anything else.
struct Filter;

#[async_trait]
impl Hook for Filter {
    fn quick(&self, _server: &Server, event: &mut Event<'_>) -> Option<Flow> {
        let Event::StanzaToClient {
            jid,
            state,
            stanza,
            out,
        } = event
        else {
            return Some(Flow::Continue);
        };
        let Some(client) = state.get::<ClientState>() else {
            return Some(Flow::Continue);
        };
        let mut held = client.lock();
        if held.inactive {
            let from = stanza.as_ref().map(Outgoing::element).and_then(can_wait);
            if let Some(from) = from.map(str::to_owned) {
                held.presences.retain(|(f, _)| *f != from);
                // Held as the session's own copy (a shared stanza's is made here).
                if let Some(presence) = stanza.take().map(|s| s.into_element(jid.as_str())) {
                    held.presences.push((from, presence));
                }
                if held.presences.len() > MAX_HELD {
                    out.extend(held.presences.drain(..).map(|(_, presence)| presence));
                }
                return Some(Flow::Continue);
            }
        }
        out.extend(held.presences.drain(..).map(|(_, presence)| presence));
        Some(Flow::Continue)
    }

    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        self.quick(server, event).unwrap_or(Flow::Continue)
    }
}

impl Module for Csi {
    const NAME: &'static str = "csi";
    const XEPS: &'static [Xep] = &[xep(352, "1.0.0")];
    type Config = NoConfig;

    fn register(_config: NoConfig, registry: &mut Registrar<'_>) {
        // §4.1: offered after authentication.
        registry.stream_feature(Stage::PostAuth, Arc::new(Element::new("csi", ns::CSI)));
        registry.nonza(ns::CSI, "active", Arc::new(Indication(false)));
        registry.nonza(ns::CSI, "inactive", Arc::new(Indication(true)));
        registry.hook(EventKind::StanzaToClient, 0, Arc::new(Filter));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(kind: Option<&str>) -> Element {
        let mut presence = Element::new("presence", ns::CLIENT).with_attr("from", "b@x/desk");
        if let Some(kind) = kind {
            presence.set_attr("type", kind);
        }
        presence
    }

    #[test]
    fn availability_can_wait_and_the_rest_cannot() {
        assert_eq!(can_wait(&presence(None)), Some("b@x/desk"));
        assert_eq!(can_wait(&presence(Some("unavailable"))), Some("b@x/desk"));
        for kind in [
            "subscribe",
            "subscribed",
            "unsubscribe",
            "unsubscribed",
            "error",
        ] {
            assert_eq!(can_wait(&presence(Some(kind))), None, "{kind}");
        }
        let message = Element::new("message", ns::CLIENT).with_attr("from", "b@x/desk");
        assert_eq!(can_wait(&message), None);
    }
}
