//! What a client is offered in `<stream:features/>` at each step (RFC 6120 §4.3.2), and
//! the Flash exceptions to it (docs/flash-protocol.md §4).

use jabberwock_protocol::ns;
use jabberwock_protocol::sasl;
use jabberwock_protocol::stream::Dialect;
use jabberwock_protocol::xml::Element;

use crate::modules::{FeatureContext, Stage};
use crate::server::Server;

pub const PLAIN: &str = "PLAIN";
pub const SCRAM_SHA_1: &str = "SCRAM-SHA-1";
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
pub const ANONYMOUS: &str = "ANONYMOUS";

/// The pre-authentication offer; also what we accept, so a client can't use a mechanism
/// (or STARTTLS) it wasn't offered. Modules add their own features (XEP-0077's
/// `<register/>`) through the registry.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Offer {
    /// `Some(required)` when STARTTLS is offered.
    pub starttls: Option<bool>,
    pub mechanisms: Vec<&'static str>,
    /// XEP-0078 `jabber:iq:auth` (Flash streams with `flash.legacy_auth` only).
    pub iq_auth: bool,
}

impl Offer {
    pub fn allows(&self, mechanism: &str) -> bool {
        self.mechanisms.contains(&mechanism)
    }

    pub fn to_element(&self) -> Element {
        let mut features = Element::new("features", ns::STREAM);
        if let Some(required) = self.starttls {
            let mut starttls = Element::new("starttls", ns::TLS);
            if required {
                starttls.push_child(Element::new("required", ns::TLS));
            }
            features.push_child(starttls);
        }
        if !self.mechanisms.is_empty() {
            features.push_child(sasl::mechanisms(&self.mechanisms));
        }
        if self.iq_auth {
            // XEP-0078 §4: the stream feature that says jabber:iq:auth is available.
            features.push_child(Element::new("auth", ns::IQ_AUTH_FEATURE));
        }
        features
    }
}

/// `flash_policy`: the Flash policy applies (a `<flash:stream>` header, or any stream through a
/// Flash socket endpoint: `Connection::is_flash`).
pub fn pre_auth(
    server: &Server,
    host: &str,
    dialect: &Dialect,
    flash_policy: bool,
    encrypted: bool,
) -> Offer {
    let live = server.live.get();
    let c2s = &live.c2s;
    let flash = &server.config.flash;
    let host_config = server.host(host);
    let anonymous = host_config.is_some_and(|h| h.anonymous);
    let mut offer = Offer::default();
    match dialect {
        _ if flash_policy => {
            // COMPAT: XMLSocket can't do TLS, so STARTTLS is never required of Flash clients
            // (nor of XIFF 3's standard header through a Flash socket: Flash's binary socket
            // can't either), and PLAIN comes first because XIFF takes the first mechanism it
            // knows.
            if !encrypted && flash.offer_starttls {
                offer.starttls = Some(false);
            }
            if flash.allow_plain || encrypted {
                offer.mechanisms.push(PLAIN);
            }
            offer.mechanisms.extend([SCRAM_SHA_256, SCRAM_SHA_1]);
            // COMPAT: AS2-era widgets (XIFF 2.0) know only XEP-0078; standard clients all
            // do SASL, so they never get it.
            offer.iq_auth = flash.legacy_auth;
        }
        Dialect::WebSocket => {
            // RFC 7395: no STARTTLS inside a WebSocket; its own TLS (wss://) is what counts.
            // Without it, c2s.require_encryption leaves nothing to offer (a TCP stream
            // would get STARTTLS only); a mechanism asked for anyway is answered
            // encryption-required (mod.rs).
            if !encrypted && c2s.require_encryption {
                return offer;
            }
            offer.mechanisms.extend([SCRAM_SHA_256, SCRAM_SHA_1]);
            if encrypted || c2s.allow_plain_without_tls {
                offer.mechanisms.push(PLAIN);
            }
        }
        Dialect::Xmpp | Dialect::Flash => {
            if !encrypted {
                offer.starttls = Some(c2s.require_encryption);
                // RFC 6120 §5.3.1: when TLS is mandatory-to-negotiate, it is all we offer.
                if c2s.require_encryption {
                    return offer;
                }
            }
            offer.mechanisms.extend([SCRAM_SHA_256, SCRAM_SHA_1]);
            if encrypted || c2s.allow_plain_without_tls {
                offer.mechanisms.push(PLAIN);
            }
        }
    }
    if anonymous {
        offer.mechanisms.push(ANONYMOUS);
    }
    offer
}

/// After SASL: resource binding (RFC 6120 §7), then what the modules on for the host offer
/// (roster versioning, legacy session, ...).
pub fn post_auth(ctx: &FeatureContext<'_>) -> Element {
    let mut features = Element::new("features", ns::STREAM);
    features.push_child(Element::new("bind", ns::BIND));
    for feature in ctx.server.modules.stream_features(Stage::PostAuth, ctx) {
        features.push_child(feature);
    }
    features
}

/// The pre-authentication features: the core's offer, then the modules'.
pub fn pre_auth_element(offer: &Offer, ctx: &FeatureContext<'_>) -> Element {
    let mut features = offer.to_element();
    for feature in ctx.server.modules.stream_features(Stage::PreAuth, ctx) {
        features.push_child(feature);
    }
    features
}
