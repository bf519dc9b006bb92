//! XEP-0313 §6 archiving preferences: an account's default (always, never, roster) and
//! the JIDs always or never archived, read and set with `<prefs/>`, stored as the
//! element itself, and applied to every message the account sends or receives.
//!
//! Every archived message needs its owner's preferences, so they are kept in memory for
//! [`FRESH_FOR`]: a change made through another server sharing the database shows here
//! within that time (a change made here, at once). What is kept for an account that never
//! set them is that it did not: the configured default applies as it is now, so a reload's
//! new default applies to the next message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jabberwock_protocol::jid::{BareJid, Jid};
use jabberwock_protocol::mam::{DefaultRule, Prefs};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, StanzaError};
use jabberwock_protocol::xml::{parse_stanza, Element};

use super::State;
use crate::accounts::account_of;
use crate::error::store_to_stanza_error;
use crate::modules::{Event, Flow, Hook, IqHandler, IqRequest};
use crate::server::Server;

/// How long preferences read from storage are used before they are read again.
const FRESH_FOR: Duration = Duration::from_secs(30);

/// Accounts whose preferences are kept in memory at most (beyond, all are forgotten and
/// read again as needed).
const MAX_CACHED: usize = 10_000;

/// An account's stored preferences; `None`: it never set them.
type Stored = Option<Arc<Prefs>>;

/// Each account's stored preferences, and when they were read.
#[derive(Default)]
pub(super) struct Cache(Mutex<HashMap<String, (Instant, Stored)>>);

impl Cache {
    fn fresh(&self, owner: &str) -> Option<Stored> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(owner)
            .filter(|(at, _)| at.elapsed() < FRESH_FOR)
            .map(|(_, prefs)| prefs.clone())
    }

    fn put(&self, owner: &str, prefs: Stored) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_CACHED {
            map.clear();
        }
        map.insert(owner.to_owned(), (Instant::now(), prefs));
    }

    fn forget(&self, owner: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(owner);
    }
}

/// The account's preferences: what it set, else the configured default with no JIDs.
async fn prefs_of(
    server: &Server,
    state: &State,
    owner: &BareJid,
) -> Result<Arc<Prefs>, StanzaError> {
    let set = match state.prefs.fresh(owner.as_str()) {
        Some(set) => set,
        None => {
            let stored = server
                .store
                .archive_prefs(&account_of(owner))
                .await
                .map_err(store_to_stanza_error)?;
            let set = stored
                .and_then(|text| parse_stanza(text.as_bytes()).ok())
                .and_then(|el| Prefs::parse(&el).ok())
                .map(Arc::new);
            state.prefs.put(owner.as_str(), set.clone());
            set
        }
    };
    Ok(set.unwrap_or_else(|| state.default.get()))
}

/// Whether `owner` archives its messages with the bare JID `with` (§6): its lists first,
/// then its default.
pub(super) async fn shall_archive(
    server: &Server,
    state: &State,
    owner: &BareJid,
    with: &str,
) -> Result<bool, StanzaError> {
    let prefs = prefs_of(server, state, owner).await?;
    if prefs.never.iter().any(|j| j == with) {
        return Ok(false);
    }
    if prefs.always.iter().any(|j| j == with) {
        return Ok(true);
    }
    match prefs.default {
        DefaultRule::Always => Ok(true),
        DefaultRule::Never => Ok(false),
        DefaultRule::Roster => Ok(server
            .store
            .roster_entry(&account_of(owner), with)
            .await
            .map_err(store_to_stanza_error)?
            .is_some_and(|entry| entry.in_roster)),
    }
}

/// The JIDs of a list as bare JIDs in their normal form (§6: preferences are by bare JID).
fn normalised(jids: &[String]) -> Result<Vec<String>, StanzaError> {
    let mut out = Vec::with_capacity(jids.len());
    for jid in jids {
        let jid = Jid::new(jid).map_err(|_| StanzaError::new(Condition::JidMalformed))?;
        let bare = jid.to_bare().to_string();
        if !out.contains(&bare) {
            out.push(bare);
        }
    }
    Ok(out)
}

/// `<prefs/>` get and set, for the account's own sessions only.
pub(super) struct Handler(pub(super) Arc<State>);

#[async_trait]
impl IqHandler for Handler {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let owner = request.to.to_bare();
        if owner != request.from.to_bare() {
            return Err(StanzaError::new(Condition::Forbidden));
        }
        let server = request.server;
        if request.stanza.iq_type() == Some(IqType::Get) {
            return Ok(Some(prefs_of(server, &self.0, &owner).await?.to_element()));
        }
        let asked = Prefs::parse(request.payload)
            .map_err(|e| StanzaError::with_text(Condition::BadRequest, e.to_string()))?;
        let prefs = Prefs {
            default: asked.default,
            always: normalised(&asked.always)?,
            never: normalised(&asked.never)?,
        };
        let element = prefs.to_element();
        let text = element.to_xml_string(ns::CLIENT);
        server
            .store
            .set_archive_prefs(&account_of(&owner), &text)
            .await
            .map_err(store_to_stanza_error)?;
        self.0.prefs.put(owner.as_str(), Some(Arc::new(prefs)));
        // §6: the answer is the preferences now in force.
        Ok(Some(element))
    }
}

/// A removed account's preferences went with it (storage cascades); so do the kept ones.
pub(super) struct Forget(pub(super) Arc<State>);

#[async_trait]
impl Hook for Forget {
    fn quick(&self, _server: &Server, event: &mut Event<'_>) -> Option<Flow> {
        if let Event::AccountDeleted { account } = event {
            self.0.prefs.forget(account.as_str());
        }
        Some(Flow::Continue)
    }

    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        self.quick(server, event).unwrap_or(Flow::Continue)
    }
}
