//! RFC 6121 §2: roster get and set, with roster versioning (XEP-0237).

use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::{RosterUpdate, RosterUpdated};

use super::{xep, IqHandler, IqRequest, Module, NoConfig, Registrar, Stage, Target, Xep};
use crate::accounts::account_of;
use crate::error::store_to_stanza_error;
use crate::roster::item::{self, ItemRequest};
use crate::roster::{self as rosters};

pub struct Roster;

struct Get;
struct Set;

/// §2.1.5: only the user may touch the user's roster (no `to`, or the user's own bare JID).
fn check_owner(request: &IqRequest<'_>) -> Result<(), StanzaError> {
    if request.to.to_bare() == request.from.to_bare() {
        Ok(())
    } else {
        Err(StanzaError::new(Condition::Forbidden))
    }
}

#[async_trait]
impl IqHandler for Get {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        check_owner(&request)?;
        let owner = request.from.to_bare();
        let server = request.server;
        // RFC 6121 §2.1.6: a resource that asked for the roster gets its pushes.
        if let Some(state) = server.router.table.session_state(request.from) {
            state.set(&rosters::INTERESTED);
        }
        let (version, entries) = server
            .store
            .roster(&account_of(&owner))
            .await
            .map_err(store_to_stanza_error)?;
        let ver = version.to_string();
        // XEP-0237 §4: the client's copy is current: an empty result, pushes will follow.
        if request.payload.attr("ver") == Some(ver.as_str()) {
            return Ok(None);
        }
        let mut query = Element::new("query", ns::ROSTER).with_attr("ver", ver);
        for entry in entries.iter().filter(|e| e.in_roster) {
            query.push_child(item::to_element(entry));
        }
        Ok(Some(query))
    }
}

#[async_trait]
impl IqHandler for Set {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        check_owner(&request)?;
        let owner = request.from.to_bare();
        let server = request.server;
        match item::parse_set(request.payload)? {
            ItemRequest::Remove { jid } => {
                let existed = rosters::remove_item(server, &owner, &jid)
                    .await
                    .map_err(store_to_stanza_error)?;
                // §2.5.3: removing what isn't there is item-not-found.
                if !existed {
                    return Err(StanzaError::new(Condition::ItemNotFound));
                }
            }
            ItemRequest::Update { jid, name, groups } => {
                let max_items = server.live.get().roster.max_items;
                let mut written = None;
                // One storage transaction from the read to the write, so a subscription
                // change can't slip in between (its state is kept, only the item changes).
                let updated = server
                    .store
                    .update_roster_entry(&account_of(&owner), jid.as_str(), &mut |stored| {
                        let mut entry = rosters::entry_or_fresh(stored, &jid);
                        entry.name = name.clone();
                        entry.groups = groups.clone();
                        entry.in_roster = true;
                        written = Some(entry.clone());
                        // §2.3.3: a full roster refuses new items.
                        RosterUpdate::PutWithin { entry, max_items }
                    })
                    .await
                    .map_err(store_to_stanza_error)?;
                match (updated, written) {
                    (RosterUpdated::Stored(version), Some(entry)) => {
                        // A roster set changes the item, never the subscription.
                        let subscription = entry.subscription;
                        rosters::push(
                            server,
                            &owner,
                            item::to_element(&entry),
                            version,
                            subscription,
                        )
                        .await;
                    }
                    (RosterUpdated::Full, _) => {
                        return Err(StanzaError::with_text(
                            Condition::NotAllowed,
                            "The roster is full",
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(None)
    }
}

impl Module for Roster {
    const NAME: &'static str = "roster";
    const XEPS: &'static [Xep] = &[xep(237, "1.3")];
    type Config = NoConfig;

    fn register(_config: NoConfig, registry: &mut Registrar<'_>) {
        registry.iq(
            IqType::Get,
            Target::Account,
            ns::ROSTER,
            "query",
            Arc::new(Get),
        );
        registry.iq(
            IqType::Set,
            Target::Account,
            ns::ROSTER,
            "query",
            Arc::new(Set),
        );

        // XEP-0237 §3: roster versioning is a stream feature.
        registry.stream_feature(
            Stage::PostAuth,
            Arc::new(Element::new("ver", ns::ROSTER_VER)),
        );
    }
}
