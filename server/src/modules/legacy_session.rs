//! RFC 3921 §3 session establishment, kept because old clients (Flash ones among them)
//! still send it; RFC 6121 dropped it and we mark the feature optional. Answered with an
//! empty result whether addressed to the host or, with no `to`, to the account.

use std::sync::Arc;

use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::IqType;

use super::{EmptyResult, Module, Registry, Target};

pub struct LegacySession;

impl Module for LegacySession {
    fn name(&self) -> &'static str {
        "legacy_session"
    }

    fn xeps(&self) -> &'static [(u16, &'static str)] {
        &[]
    }

    fn register(&self, registry: &mut Registry) {
        for target in [Target::Host, Target::Account] {
            registry.iq(
                IqType::Set,
                target,
                ns::SESSION,
                "session",
                Arc::new(EmptyResult),
            );
        }
    }
}
