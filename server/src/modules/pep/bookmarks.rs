//! XEP-0411: Bookmarks Conversion. XEP-0048 bookmarks, which older clients keep in private
//! storage (`<storage xmlns='storage:bookmarks'/>`, XEP-0049), and XEP-0402 bookmarks, one
//! PEP item per room on `urn:xmpp:bookmarks:1`, are the same list: a change through one is
//! made in the other, PEP's with notifications. The two forms are
//! `jabberwock_protocol::bookmarks`.

use std::collections::HashMap;

use jabberwock_protocol::bookmarks::{self, Conference};
use jabberwock_protocol::jid::BareJid;
use jabberwock_protocol::ns;
use jabberwock_protocol::xml::{parse_stanza, Element};
use jabberwock_storage::ItemsWanted;

use super::convert::{publish, publish_options};
use super::publish::retract_items;
use super::PepConfig;
use crate::accounts::account_of;
use crate::modules::pubsub::payload::stored_payload;
use crate::server::Server;

/// The account's XEP-0402 bookmarks, by room (an empty list when there is no node).
async fn pep_bookmarks(server: &Server, owner: &BareJid) -> Option<Vec<(String, Element)>> {
    let found = match server
        .store
        .pubsub_items(
            owner.as_str(),
            ns::BOOKMARKS2,
            ItemsWanted::Newest(u64::MAX),
        )
        .await
    {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(%owner, error = %e, "reading the PEP bookmarks failed");
            return None;
        }
    };
    Some(
        found
            .map(|node| {
                node.items
                    .iter()
                    .filter_map(|i| Some((i.id.clone(), stored_payload(i)?)))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// XEP-0411 §4: the account's PEP bookmarks changed; private storage gets the same list,
/// keeping what only XEP-0048 has (`<url/>` bookmarks).
pub(super) async fn to_private(server: &Server, owner: &BareJid) {
    let Some(items) = pep_bookmarks(server, owner).await else {
        return;
    };
    let account = account_of(owner);
    let old = match server
        .store
        .private_get(&account, ns::BOOKMARKS_STORAGE)
        .await
    {
        Ok(old) => old.and_then(|xml| parse_stanza(xml.as_bytes()).ok()),
        Err(e) => {
            tracing::warn!(%owner, error = %e, "reading the private bookmarks failed");
            return;
        }
    };
    let conferences: Vec<Conference> = items
        .iter()
        .filter_map(|(jid, payload)| Conference::from_pep(jid, payload))
        .collect();
    let storage = bookmarks::to_storage(&conferences, old.as_ref());
    let xml = storage.to_xml_string(ns::CLIENT);
    let pair = [(ns::BOOKMARKS_STORAGE.to_owned(), xml)];
    if let Err(e) = server.store.private_set(&account, &pair).await {
        tracing::warn!(%owner, error = %e, "the PEP bookmarks could not go into private storage");
    }
}

/// XEP-0411 §3: the account stored XEP-0048 bookmarks; each room is published as an
/// XEP-0402 item unless PEP has it alike already, and rooms no longer listed are retracted
/// with notification. A node made for them is configured as XEP-0402 §3 asks.
pub(super) async fn from_private(
    server: &Server,
    settings: &PepConfig,
    owner: &BareJid,
    storage: &Element,
) {
    let Some(items) = pep_bookmarks(server, owner).await else {
        return;
    };
    let mut existing: HashMap<String, Element> = items.into_iter().collect();
    let options = publish_options(&[
        ("pubsub#persist_items", "true"),
        ("pubsub#max_items", "max"),
        ("pubsub#send_last_published_item", "never"),
        ("pubsub#access_model", "whitelist"),
    ]);
    for conference in bookmarks::from_storage(storage) {
        let old = existing.remove(&conference.jid);
        if old
            .as_ref()
            .and_then(|p| Conference::from_pep(&conference.jid, p))
            .is_some_and(|c| c == conference)
        {
            continue;
        }
        let payload = conference.to_pep(old.as_ref());
        publish(
            server,
            settings,
            owner,
            ns::BOOKMARKS2,
            &conference.jid,
            payload,
            &options,
        )
        .await;
    }
    let gone: Vec<String> = existing.into_keys().collect();
    if gone.is_empty() {
        return;
    }
    if let Err(e) = retract_items(server, owner, ns::BOOKMARKS2, true, &gone).await {
        tracing::warn!(%owner, error = ?e.condition, "removed bookmarks not retracted");
    }
}
