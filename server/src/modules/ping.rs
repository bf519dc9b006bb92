//! XEP-0199: XMPP Ping — the server answers pings to its domain and to accounts it hosts.

use std::sync::Arc;

use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::IqType;

use super::{EmptyResult, Module, Registry, Target};

pub struct Ping;

impl Module for Ping {
    fn name(&self) -> &'static str {
        "ping"
    }

    fn xeps(&self) -> &'static [(u16, &'static str)] {
        &[(199, "2.0.1")]
    }

    fn register(&self, registry: &mut Registry) {
        // A ping to an account's bare JID is the server's to answer (RFC 6120 §10.3.3).
        for target in [Target::Host, Target::Account] {
            registry.iq(IqType::Get, target, ns::PING, "ping", Arc::new(EmptyResult));
        }
        registry.disco_feature(ns::PING);
    }
}
