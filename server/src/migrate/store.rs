//! Accounts into and out of our store: the one place an import writes.

use std::sync::Arc;

use jabberwock_protocol::ns;
use jabberwock_protocol::xml::parse_stanza;
use jabberwock_storage::{
    AccountId, Created, ItemsWanted, PublishPlan, PubsubService, ScramHash, Store, StoredItem,
};

use super::{Account, MigrateError, PepItem, PepNode, Secret};
use crate::accounts::{self, local_account};
use crate::config::Config;
use crate::modules::pubsub::config::NodeConfig;
use crate::modules::vcard::photo_hash;

pub enum Outcome {
    Imported(String),
    /// Not imported, and why (a warning, not an error: the rest goes on).
    Skipped(String),
}

pub async fn import_account(
    store: &Arc<dyn Store>,
    config: &Config,
    account: Account,
    force: bool,
) -> Result<Outcome, MigrateError> {
    let Some(id) = local_account(&account.username, &account.host) else {
        return Ok(Outcome::Skipped(format!(
            "{}: {:?} is not a valid username here; skipped",
            account.origin, account.username
        )));
    };
    let jid = format!("{}@{}", id.username, id.domain);
    let credentials = match account.secret {
        Secret::Scram(credentials) => credentials,
        Secret::Plain(password) => {
            // The old password must keep working: prepared as every password is, but not
            // held to today's length rule.
            let prepared = match accounts::prepare_password(&password) {
                Ok(p) => p.into_owned(),
                Err(e) => {
                    return Ok(Outcome::Skipped(format!(
                        "{}: {jid}'s password: {e}; skipped",
                        account.origin
                    )))
                }
            };
            let iterations = config.auth.scram_iterations;
            tokio::task::spawn_blocking(move || accounts::scram_credentials(&prepared, iterations))
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        }
        // An account without credentials would be a guest's here (and end with its
        // session); one nobody can log in to is not worth creating.
        Secret::None => {
            return Ok(Outcome::Skipped(format!(
                "{}: {jid} has no password or SCRAM credentials in the source; skipped",
                account.origin
            )))
        }
    };
    if store.account_exists(&id).await? {
        if !force {
            return Ok(Outcome::Skipped(format!(
                "{jid} exists already; skipped (--force replaces it)"
            )));
        }
        store.remove_account(&id).await?;
    }
    store.create_account(&id, &credentials).await?;
    for entry in &account.roster {
        store.put_roster_entry(&id, entry).await?;
    }
    if let Some(vcard) = &account.vcard {
        let xml = vcard.to_xml_string(ns::CLIENT);
        store
            .set_vcard(&id, &xml, photo_hash(vcard).as_deref())
            .await?;
    }
    for message in &account.offline {
        let xml = message.to_xml_string(ns::CLIENT);
        // Everything the source kept is kept: no per-account limit on the way in.
        store.store_offline(&id, &xml, i64::MAX as u64).await?;
    }
    let private: Vec<(String, String)> = account
        .private
        .iter()
        .map(|el| {
            let xml = el.to_xml_string(ns::CLIENT);
            (el.ns().to_owned(), xml)
        })
        .collect();
    if !private.is_empty() {
        store.private_set(&id, &private).await?;
    }
    for node in &account.pep {
        import_pep_node(store, &id, &jid, node).await?;
    }
    Ok(Outcome::Imported(jid))
}

/// A node of the account's personal eventing service with its items, oldest first, all
/// that the source kept: the limits of `[modules.pep]` hold for what is published later.
async fn import_pep_node(
    store: &Arc<dyn Store>,
    id: &AccountId,
    jid: &str,
    node: &PepNode,
) -> Result<(), MigrateError> {
    let service = PubsubService {
        name: jid,
        owner: Some(id),
    };
    let config = node.config.to_stored();
    // A fresh account: the node is new (a source naming it twice was merged on reading).
    let created = store
        .create_pubsub_node(&service, &node.node, &config, u64::MAX, Some(jid))
        .await?;
    debug_assert_eq!(created, Created::Done);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for item in &node.items {
        let stored = StoredItem {
            id: item.id.clone(),
            publisher: item.publisher.clone().unwrap_or_else(|| jid.to_owned()),
            payload: item
                .payload
                .as_ref()
                .map(|p| p.to_xml_string(ns::CLIENT))
                .unwrap_or_default(),
            published_at: now,
        };
        let mut keep_all = |_: Option<&str>| PublishPlan::Publish {
            create: None,
            max_nodes: u64::MAX,
            keep: Some(u64::MAX),
            max_service_items: u64::MAX,
        };
        store
            .publish_pubsub_item(&service, &node.node, &stored, &mut keep_all)
            .await?;
    }
    Ok(())
}

/// The account's personal eventing nodes with their configurations and items.
async fn export_pep(store: &Arc<dyn Store>, jid: &str) -> Result<Vec<PepNode>, MigrateError> {
    let mut out = Vec::new();
    for node in store.pubsub_nodes(jid).await? {
        let items = store
            .pubsub_items(jid, &node.node, ItemsWanted::Newest(u64::MAX))
            .await?
            .map(|n| n.items)
            .unwrap_or_default();
        out.push(PepNode {
            config: NodeConfig::from_stored(&node.config),
            node: node.node,
            items: items
                .into_iter()
                .map(|item| PepItem {
                    payload: if item.payload.is_empty() {
                        None
                    } else {
                        parse_stanza(item.payload.as_bytes()).ok()
                    },
                    // The account's own items say nothing more than the default.
                    publisher: (item.publisher != jid).then_some(item.publisher),
                    id: item.id,
                })
                .collect(),
        });
    }
    Ok(out)
}

/// Every account of `host` with what an export carries.
pub async fn export_host(store: &Arc<dyn Store>, host: &str) -> Result<Vec<Account>, MigrateError> {
    let mut out = Vec::new();
    for id in store.list_accounts(Some(host)).await? {
        let mut credentials = Vec::new();
        for hash in [ScramHash::Sha1, ScramHash::Sha256] {
            credentials.extend(store.credential(&id, hash).await?);
        }
        // A guest's account (no credentials) ends with its session: nothing to move.
        if credentials.is_empty() {
            continue;
        }
        out.push(export_account(store, id, credentials).await?);
    }
    Ok(out)
}

async fn export_account(
    store: &Arc<dyn Store>,
    id: AccountId,
    credentials: Vec<jabberwock_storage::ScramCredential>,
) -> Result<Account, MigrateError> {
    let (_, roster) = store.roster(&id).await?;
    let vcard = store
        .vcard(&id)
        .await?
        .and_then(|v| parse_stanza(v.xml.as_bytes()).ok());
    let offline = store
        .offline_messages(&id)
        .await?
        .iter()
        .filter_map(|m| parse_stanza(m.stanza.as_bytes()).ok())
        .collect();
    let private = store
        .private_all(&id)
        .await?
        .iter()
        .filter_map(|(_, xml)| parse_stanza(xml.as_bytes()).ok())
        .collect();
    let pep = export_pep(store, &format!("{}@{}", id.username, id.domain)).await?;
    Ok(Account {
        origin: String::new(),
        username: id.username,
        host: id.domain,
        secret: Secret::Scram(credentials),
        roster: roster.into_iter().filter(|e| e.in_roster).collect(),
        vcard,
        offline,
        private,
        pep,
    })
}
