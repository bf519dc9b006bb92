//! XEP-0012: Last Activity — asked of the server, its uptime (§5); asked of an account's
//! bare JID, how long ago its last session ended and the status it left with (§4), told
//! only to those who may see its presence (the account itself, contacts subscribed to it).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::Subscription;

use super::time::now_unix;
use super::{
    xep, Event, EventKind, Flow, Hook, IqHandler, IqRequest, Module, NoConfig, Registrar, Target,
    Xep,
};
use crate::accounts::account_of;
use crate::error::store_to_stanza_error;
use crate::server::Server;

pub struct Last;

struct Uptime(Instant);
struct OfAccount;
struct Record;

/// The status text of the session's last unavailable presence.
#[derive(Default)]
struct LeftWith(Mutex<String>);

fn answer(seconds: u64, status: &str) -> Element {
    Element::new("query", ns::LAST)
        .with_attr("seconds", seconds.to_string())
        .with_text(status)
}

#[async_trait]
impl IqHandler for Uptime {
    async fn handle(&self, _request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        Ok(Some(answer(self.0.elapsed().as_secs(), "")))
    }
}

#[async_trait]
impl IqHandler for OfAccount {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let server = request.server;
        let owner = request.to.to_bare();
        let requester = request.from.to_bare();
        let account = account_of(&owner);
        if owner != requester {
            // §4: only someone allowed to see the account's presence.
            let entry = server
                .store
                .roster_entry(&account, requester.as_str())
                .await
                .map_err(store_to_stanza_error)?;
            if !entry
                .is_some_and(|e| matches!(e.subscription, Subscription::From | Subscription::Both))
            {
                return Err(StanzaError::new(Condition::Forbidden));
            }
        }
        // Online now: no idle time to tell from here (a resource may answer for itself).
        if !server
            .router
            .table
            .available_presences(owner.as_str())
            .is_empty()
        {
            return Ok(Some(answer(0, "")));
        }
        match server
            .store
            .last_activity(&account)
            .await
            .map_err(store_to_stanza_error)?
        {
            Some((at, status)) => {
                let seconds = u64::try_from(now_unix() - at).unwrap_or(0);
                Ok(Some(answer(seconds, &status)))
            }
            None => Err(StanzaError::new(Condition::ItemNotFound)),
        }
    }
}

/// Remembers the status of an unavailable broadcast and records the end of an account's
/// last session.
#[async_trait]
impl Hook for Record {
    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        match event {
            Event::PresenceOut { from, stanza, .. }
                if stanza.to().is_none() && stanza.type_attr() == Some("unavailable") =>
            {
                if let Some(state) = server.router.table.session_state(from) {
                    let status = stanza
                        .element()
                        .get_child("status", ns::CLIENT)
                        .map(|s| s.text())
                        .unwrap_or_default();
                    *state
                        .get_or_insert_with(LeftWith::default)
                        .0
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = status;
                }
            }
            Event::SessionEnded {
                jid,
                state,
                last: true,
                ..
            } => {
                let status = state
                    .get::<LeftWith>()
                    .map(|l| l.0.lock().unwrap_or_else(|p| p.into_inner()).clone())
                    .unwrap_or_default();
                let account = account_of(&jid.to_bare());
                if let Err(e) = server
                    .store
                    .set_last_activity(&account, now_unix(), &status)
                    .await
                {
                    tracing::warn!(error = %e, "recording last activity failed");
                }
            }
            _ => {}
        }
        Flow::Continue
    }
}

impl Module for Last {
    const NAME: &'static str = "last";
    const XEPS: &'static [Xep] = &[xep(12, "2.0")];
    type Config = NoConfig;

    fn register(_config: NoConfig, registry: &mut Registrar<'_>) {
        registry.iq(
            IqType::Get,
            Target::Host,
            ns::LAST,
            "query",
            Arc::new(Uptime(Instant::now())),
        );
        registry.iq(
            IqType::Get,
            Target::Account,
            ns::LAST,
            "query",
            Arc::new(OfAccount),
        );
        registry.disco_feature(Target::Host, ns::LAST);
        let record = Arc::new(Record);
        registry.hook(EventKind::PresenceOut, 0, record.clone());
        registry.hook(EventKind::SessionEnded, 0, record);
    }
}
