//! XEP-0199: XMPP Ping — the server answers pings to its domain and to accounts it hosts.

use std::sync::Arc;

use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::IqType;

use super::{xep, EmptyResult, Module, NoConfig, Registrar, Target, Xep};

pub struct Ping;

impl Module for Ping {
    const NAME: &'static str = "ping";
    const XEPS: &'static [Xep] = &[xep(199, "2.0.1")];
    type Config = NoConfig;

    fn register(_config: NoConfig, registry: &mut Registrar<'_>) {
        // A ping to an account's bare JID is the server's to answer (RFC 6120 §10.3.3); a
        // service's domain answers too (XEP-0199 §4.2: pinging any entity).
        for target in [Target::Host, Target::Account, Target::Service] {
            registry.iq(IqType::Get, target, ns::PING, "ping", Arc::new(EmptyResult));
            registry.disco_feature(target, ns::PING);
        }
    }
}
