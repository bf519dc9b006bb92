//! XEP-0199: XMPP Ping — the server answers pings to its domain and to accounts it hosts.

use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{IqType, StanzaError};
use jabberwock_protocol::xml::Element;

use super::{IqHandler, IqRequest, Module, Registry, Target};

pub struct Ping;

struct Pong;

#[async_trait]
impl IqHandler for Pong {
    /// XEP-0199 §4: an empty result is the pong.
    async fn handle(&self, _request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        Ok(None)
    }
}

impl Module for Ping {
    fn name(&self) -> &'static str {
        "ping"
    }

    fn xeps(&self) -> &'static [(u16, &'static str)] {
        &[(199, "2.0.1")]
    }

    fn register(&self, registry: &mut Registry) {
        registry.iq(IqType::Get, Target::Host, ns::PING, "ping", Arc::new(Pong));
        registry.disco_feature(ns::PING);
    }
}
