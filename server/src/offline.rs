//! XEP-0160: messages for an account with no available resource are kept and delivered,
//! stamped with XEP-0203 `<delay/>`, when the user next sends available presence.

use jabberwock_protocol::delay::delay;
use jabberwock_protocol::jid::{BareJid, FullJid};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, Stanza, StanzaError};
use jabberwock_protocol::xml::parse_stanza;
use jabberwock_storage::StoreError;

use crate::accounts::account_of;
use crate::error::store_to_stanza_error;
use crate::server::Server;

/// Keeps `message` for `to`. Errors are the ones the sender gets back: no such account,
/// storage off or full (XEP-0160 §5: service-unavailable).
pub async fn store(server: &Server, to: &BareJid, message: &Stanza) -> Result<(), StanzaError> {
    let limit = server.config.offline.max_messages;
    if limit == 0 {
        return Err(StanzaError::new(Condition::ServiceUnavailable));
    }
    let stanza = String::from_utf8_lossy(&message.element().to_bytes(ns::CLIENT)).into_owned();
    match server
        .store
        .store_offline(&account_of(to), &stanza, limit)
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(StanzaError::with_text(
            Condition::ServiceUnavailable,
            "The recipient's offline storage is full",
        )),
        Err(StoreError::NotFound) => Err(StanzaError::new(Condition::ServiceUnavailable)),
        Err(e) => Err(store_to_stanza_error(e)),
    }
}

/// Delivers and then forgets everything kept for `jid`'s account. A message is deleted only
/// after its session took it, so a crash in between delivers it again rather than never.
pub async fn deliver(server: &Server, jid: &FullJid) {
    let account = account_of(&jid.to_bare());
    let messages = match server.store.offline_messages(&account).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "reading offline messages failed");
            return;
        }
    };
    let mut delivered = Vec::with_capacity(messages.len());
    for message in messages {
        let Ok(mut element) = parse_stanza(message.stanza.as_bytes()) else {
            tracing::warn!(id = message.id, "dropping an unreadable offline message");
            delivered.push(message.id);
            continue;
        };
        element.push_child(delay(jid.domain().as_str(), message.stored_at));
        if server.router.table.send_to_full(jid, element).is_err() {
            break;
        }
        delivered.push(message.id);
    }
    if !delivered.is_empty() {
        if let Err(e) = server.store.delete_offline(&account, &delivered).await {
            tracing::error!(error = %e, "deleting delivered offline messages failed");
        }
    }
}
