//! Features as modules (Prosody's and ejabberd's shape): each module registers the IQ
//! namespaces it answers and the disco features it adds. A new XEP is one file here plus
//! one line in [`registry`].

mod disco;
mod legacy_session;
mod ping;
pub mod register;
mod roster;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::jid::{FullJid, Jid};
use jabberwock_protocol::stanza::{IqType, Stanza, StanzaError};
use jabberwock_protocol::xml::Element;

use crate::config::Config;
use crate::server::Server;

/// Who an IQ is addressed to (RFC 6120 §10.3): the server's domain, or an account's bare JID
/// that the server answers for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Host,
    Account,
}

/// One IQ for a handler: the payload is the iq's first child, already namespace-matched.
pub struct IqRequest<'a> {
    pub server: &'a Server,
    pub from: &'a FullJid,
    pub to: &'a Jid,
    pub stanza: &'a Stanza,
    pub payload: &'a Element,
}

#[async_trait]
pub trait IqHandler: Send + Sync {
    /// `Ok(Some(el))` answers a result carrying `el`, `Ok(None)` an empty result.
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError>;
}

/// Answers with an empty result: XEP-0199 pongs, RFC 3921 session establishment.
pub struct EmptyResult;

#[async_trait]
impl IqHandler for EmptyResult {
    async fn handle(&self, _request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        Ok(None)
    }
}

pub trait Module {
    fn name(&self) -> &'static str;
    /// The XEPs implemented, with the version followed (ejabberd's `-protocol`).
    fn xeps(&self) -> &'static [(u16, &'static str)];
    fn register(&self, registry: &mut Registry);
}

/// IQ type (as its discriminant), target, payload namespace and payload name.
type IqKey = (u8, Target, String, String);

#[derive(Default)]
pub struct Registry {
    iq: HashMap<IqKey, Arc<dyn IqHandler>>,
    features: BTreeSet<&'static str>,
}

impl Registry {
    /// Answer IQs of `iq_type` to `target` whose payload is `<name xmlns=ns>`.
    pub fn iq(
        &mut self,
        iq_type: IqType,
        target: Target,
        ns: &str,
        name: &str,
        handler: Arc<dyn IqHandler>,
    ) {
        self.iq.insert(
            (iq_type as u8, target, ns.to_owned(), name.to_owned()),
            handler,
        );
    }

    pub fn disco_feature(&mut self, feature: &'static str) {
        self.features.insert(feature);
    }

    pub fn iq_handler(
        &self,
        iq_type: IqType,
        target: Target,
        ns: &str,
        name: &str,
    ) -> Option<&Arc<dyn IqHandler>> {
        self.iq
            .get(&(iq_type as u8, target, ns.to_owned(), name.to_owned()))
    }

    pub fn features(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.features.iter().copied()
    }
}

/// Every module the server runs.
pub fn registry(_config: &Config) -> Registry {
    let modules: [&dyn Module; 5] = [
        &disco::Disco,
        &legacy_session::LegacySession,
        &ping::Ping,
        &register::Register,
        &roster::Roster,
    ];
    let mut registry = Registry::default();
    for module in modules {
        module.register(&mut registry);
    }
    registry
}
