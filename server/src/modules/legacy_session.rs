//! RFC 3921 §3 session establishment, kept because old clients (Flash ones among them)
//! still send it; RFC 6121 dropped it and we mark the feature optional. Answered with an
//! empty result whether addressed to the host or, with no `to`, to the account.

use std::sync::Arc;

use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::IqType;
use jabberwock_protocol::xml::Element;

use super::{EmptyResult, Module, NoConfig, Registrar, Stage, Target, Xep};

pub struct LegacySession;

impl Module for LegacySession {
    const NAME: &'static str = "legacy_session";
    const XEPS: &'static [Xep] = &[];
    type Config = NoConfig;

    fn register(_config: NoConfig, registry: &mut Registrar<'_>) {
        for target in [Target::Host, Target::Account] {
            registry.iq(
                IqType::Set,
                target,
                ns::SESSION,
                "session",
                Arc::new(EmptyResult),
            );
        }

        // Offered marked optional (draft-cridland-xmpp-session): clients that know may skip it.
        registry.stream_feature(
            Stage::PostAuth,
            Arc::new(
                Element::new("session", ns::SESSION)
                    .with_child(Element::new("optional", ns::SESSION)),
            ),
        );
    }
}
