//! XEP-0049: Private XML Storage — one element per namespace, kept for the account and
//! readable only by it (bookmarks of older clients live here, XEP-0048 v1.0).

use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, StanzaError};
use jabberwock_protocol::xml::{parse_stanza, Element};

use super::{xep, Event, IqHandler, IqRequest, Module, NoConfig, Registrar, Target, Xep};
use crate::accounts::account_of;
use crate::error::store_to_stanza_error;

pub struct Private;

struct Get;
struct Set;

/// XEP-0049 §3: only the account itself; §2: each child names a namespace of its own, and
/// `jabber:iq:private` itself (or none) can't be one.
fn check(request: &IqRequest<'_>) -> Result<(), StanzaError> {
    if request.to.to_bare() != request.from.to_bare() {
        return Err(StanzaError::new(Condition::Forbidden));
    }
    let children: Vec<&Element> = request.payload.children().collect();
    if children.is_empty()
        || children
            .iter()
            .any(|c| c.ns().is_empty() || c.ns() == ns::PRIVATE || c.ns() == ns::CLIENT)
    {
        return Err(StanzaError::with_text(
            Condition::NotAcceptable,
            "Each stored element needs a namespace of its own",
        ));
    }
    Ok(())
}

#[async_trait]
impl IqHandler for Get {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        check(&request)?;
        let account = account_of(&request.from.to_bare());
        let mut query = Element::new("query", ns::PRIVATE);
        for asked in request.payload.children() {
            let stored = request
                .server
                .store
                .private_get(&account, asked.ns())
                .await
                .map_err(store_to_stanza_error)?;
            // §3.2: nothing stored gives back the (empty) element asked for.
            let element = stored
                .and_then(|xml| parse_stanza(xml.as_bytes()).ok())
                .unwrap_or_else(|| asked.clone());
            query.push_child(element);
        }
        Ok(Some(query))
    }
}

#[async_trait]
impl IqHandler for Set {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        check(&request)?;
        let account = account_of(&request.from.to_bare());
        let items: Vec<(String, String)> = request
            .payload
            .children()
            .map(|c| {
                let xml = c.to_xml_string(ns::CLIENT);
                (c.ns().to_owned(), xml)
            })
            .collect();
        let server = request.server;
        server
            .store
            .private_set(&account, &items)
            .await
            .map_err(store_to_stanza_error)?;
        // XEP-0411: bookmarks stored here are also the account's PEP bookmarks.
        let owner = request.from.to_bare();
        for element in request.payload.children() {
            let mut event = Event::AccountDataStored {
                owner: &owner,
                element,
            };
            server.modules.fire(server, &mut event).await;
        }
        Ok(None)
    }
}

impl Module for Private {
    const NAME: &'static str = "private";
    const XEPS: &'static [Xep] = &[xep(49, "1.2")];
    type Config = NoConfig;

    fn register(_config: NoConfig, registry: &mut Registrar<'_>) {
        registry.iq(
            IqType::Get,
            Target::Account,
            ns::PRIVATE,
            "query",
            Arc::new(Get),
        );
        registry.iq(
            IqType::Set,
            Target::Account,
            ns::PRIVATE,
            "query",
            Arc::new(Set),
        );
    }
}
