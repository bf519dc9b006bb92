//! XEP-0115: Entity Capabilities (version 1.6.0), both ways.
//!
//! The server's own: a `<c/>` stream feature before (once TLS is up, where it must be) and
//! after authentication (§6.3), whose
//! `ver` hashes the host's disco#info as the disco module answers it (so a host with a
//! module switched off has its own `ver`), and that info answered again under
//! `NODE#VER` (§6.2) through the disco module.
//!
//! Clients': the `<c/>` of a client's broadcast presence kept on its session, for modules
//! that choose what to send by what a resource supports (PEP's `+notify`, XEP-0163 §4).
//! The client's disco#info is not asked for yet: nothing reads the features behind a `ver`
//! until PEP does, and then the `ver`s seen are what to ask (and cache) by.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use jabberwock_protocol::caps::{self, Caps as CapsElement, SHA_1};
use jabberwock_protocol::jid::FullJid;
use jabberwock_protocol::ns;
use jabberwock_protocol::xml::Element;
use serde::Deserialize;

use super::disco::info_query;
use super::{
    xep, Event, EventKind, FeatureContext, Flow, Hook, InfoNode, Module, Registrar, Stage,
    StreamFeature, Target, Xep,
};
use crate::server::Server;

pub struct Caps;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CapsConfig {
    /// §4: a URI naming the software; peers cache the info by `ver`, not by it.
    node: String,
}

impl Default for CapsConfig {
    fn default() -> Self {
        CapsConfig {
            node: DEFAULT_NODE.to_owned(),
        }
    }
}

const DEFAULT_NODE: &str = "https://jabberwock.invalid/";

/// The server's caps: its node and, per host, the `ver` of that host's info.
struct ServerCaps {
    node: String,
    /// Computed at the first stream of each host: the modules on for a host do not change
    /// while the server runs. Only configured hosts are kept.
    vers: Mutex<HashMap<String, Option<String>>>,
}

impl ServerCaps {
    fn vers(&self) -> MutexGuard<'_, HashMap<String, Option<String>>> {
        self.vers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `ver` of `host`'s disco#info, `None` if it is ill-formed (§5.4: a peer could not
    /// check it, so none is offered).
    fn ver(&self, server: &Server, host: &str) -> Option<String> {
        if let Some(ver) = self.vers().get(host) {
            return ver.clone();
        }
        let ver = match caps::ver(&info_query(&server.modules, host, Target::Host)) {
            Ok(ver) => Some(ver),
            Err(e) => {
                tracing::warn!(host, error = %e, "no XEP-0115 ver: the disco#info is ill-formed");
                None
            }
        };
        if server.host(host).is_some() {
            self.vers().insert(host.to_owned(), ver.clone());
        }
        ver
    }
}

/// The `<c/>` stream feature (§6.3).
struct Feature(Arc<ServerCaps>, Stage);

impl StreamFeature for Feature {
    fn offer(&self, ctx: &FeatureContext<'_>) -> Option<Element> {
        // RFC 6120 §5.3.1: where TLS is mandatory-to-negotiate, a standard stream in clear
        // is offered STARTTLS alone: nothing else until the core offers a login.
        if self.1 == Stage::PreAuth && !ctx.auth_offered {
            return None;
        }
        let ver = self.0.ver(ctx.server, ctx.host)?;
        Some(
            CapsElement {
                hash: Some(SHA_1.to_owned()),
                node: self.0.node.clone(),
                ver,
            }
            .to_element(),
        )
    }
}

/// `NODE#VER` names the host's own info (§6.2).
struct Node(Arc<ServerCaps>);

impl InfoNode for Node {
    fn is_own(&self, server: &Server, host: &str, node: &str) -> bool {
        let Some((name, ver)) = node.rsplit_once('#') else {
            return false;
        };
        name == self.0.node && self.0.ver(server, host).is_some_and(|own| own == ver)
    }
}

/// What a session's client last said it is (§4), kept on its session.
#[derive(Default)]
struct ClientCaps(Mutex<Option<CapsElement>>);

impl ClientCaps {
    fn lock(&self) -> MutexGuard<'_, Option<CapsElement>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The caps a client's broadcast presence says it has: `Some(None)` when it says nothing
/// (available without `<c/>`, or unavailable), `None` when the presence is not broadcast
/// (directed presence says nothing about the session).
fn announced(presence: &Element) -> Option<Option<CapsElement>> {
    if presence.attr("to").is_some() {
        return None;
    }
    match presence.attr("type") {
        None => Some(
            presence
                .get_child("c", ns::CAPS)
                .and_then(CapsElement::parse),
        ),
        Some("unavailable") => Some(None),
        Some(_) => None,
    }
}

/// Keeps the caps of each client's broadcast presence on its session.
struct Record;

#[async_trait]
impl Hook for Record {
    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        let Event::PresenceOut { from, stanza, .. } = event else {
            return Flow::Continue;
        };
        let Some(caps) = announced(stanza.element()) else {
            return Flow::Continue;
        };
        let Some(state) = server.router.table.session_state(from) else {
            return Flow::Continue;
        };
        if caps.is_none() && !state.has::<ClientCaps>() {
            return Flow::Continue;
        }
        *state.get_or_insert_with(ClientCaps::default).lock() = caps;
        Flow::Continue
    }
}

/// The caps (hash, node, ver) the client at `jid` announced in its last broadcast presence,
/// if it is bound, available and announced any.
pub fn client_caps(server: &Server, jid: &FullJid) -> Option<CapsElement> {
    server
        .router
        .table
        .session_state(jid)?
        .get::<ClientCaps>()?
        .lock()
        .clone()
}

impl Module for Caps {
    const NAME: &'static str = "caps";
    const XEPS: &'static [Xep] = &[xep(115, "1.6.0")];
    /// The `ver` hashes the disco#info, and `NODE#VER` is answered, by the disco module.
    const DEPENDS: &'static [&'static str] = &["disco"];
    type Config = CapsConfig;

    fn register(config: CapsConfig, registry: &mut Registrar<'_>) {
        let server_caps = Arc::new(ServerCaps {
            node: config.node,
            vers: Mutex::new(HashMap::new()),
        });
        for stage in [Stage::PreAuth, Stage::PostAuth] {
            registry.stream_feature(stage, Arc::new(Feature(server_caps.clone(), stage)));
        }
        registry.disco_info_node(Target::Host, Arc::new(Node(server_caps)));
        registry.hook(EventKind::PresenceOut, 0, Arc::new(Record));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jabberwock_protocol::xml::parse_stanza;

    fn presence(xml: &str) -> Element {
        parse_stanza(xml.as_bytes()).unwrap()
    }

    const C: &str = "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' \
                     node='https://example.org/client' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>";

    #[test]
    fn broadcast_available_presence_announces_its_caps() {
        let caps = announced(&presence(&format!(
            "<presence xmlns='jabber:client'>{C}</presence>"
        )))
        .unwrap()
        .unwrap();
        assert_eq!(caps.hash.as_deref(), Some("sha-1"));
        assert_eq!(caps.node, "https://example.org/client");
        assert_eq!(caps.ver, "QgayPKawpkPSDYmwT/WM94uAlu0=");
    }

    #[test]
    fn presence_without_caps_or_unavailable_announces_none() {
        let plain = presence("<presence xmlns='jabber:client'><show>away</show></presence>");
        assert_eq!(announced(&plain), Some(None));
        let gone = presence(&format!(
            "<presence xmlns='jabber:client' type='unavailable'>{C}</presence>"
        ));
        assert_eq!(announced(&gone), Some(None));
    }

    #[test]
    fn directed_presence_and_subscriptions_say_nothing_of_the_session() {
        let directed = presence(&format!(
            "<presence xmlns='jabber:client' to='room@muc.example.org/me'>{C}</presence>"
        ));
        assert_eq!(announced(&directed), None);
        let subscribe =
            presence("<presence xmlns='jabber:client' to='b@example.org' type='subscribe'/>");
        assert_eq!(announced(&subscribe), None);
        let probe = presence("<presence xmlns='jabber:client' type='probe'/>");
        assert_eq!(announced(&probe), None);
    }
}
