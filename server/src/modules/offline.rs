//! XEP-0160: messages for an account with no available resource are kept (the router's
//! `MessageOffline` event) and delivered, stamped with XEP-0203 `<delay/>`, when the user
//! next sends available presence (a `Backlog` the session writes itself).

use jabberwock_protocol::delay::delay;
use jabberwock_protocol::jid::{BareJid, FullJid};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, Stanza, StanzaError};
use jabberwock_protocol::xml::{parse_stanza, Element};
use jabberwock_storage::StoreError;

use std::sync::Arc;

use async_trait::async_trait;

use super::{xep, Backlog, Event, EventKind, Flow, Hook, Module, NoConfig, Registrar, Xep};
use crate::accounts::account_of;
use crate::error::{store_to_stanza_error, SessionEnd};
use crate::metrics::{self, Counter, StorageOp};
use crate::server::Server;
use crate::session::ClientWriter;

/// XEP-0334 message processing hints.
const HINTS: &str = "urn:xmpp:hints";

/// Payloads worth keeping for later besides `<body/>` and `<subject/>`: encrypted bodies
/// (OMEMO legacy and current, OpenPGP for XMPP, legacy OpenPGP), which carry the text.
pub(super) const STORABLE: &[(&str, &str)] = &[
    ("encrypted", "eu.siacs.conversations.axolotl"),
    ("encrypted", "urn:xmpp:omemo:2"),
    ("openpgp", "urn:xmpp:openpgp:0"),
    ("x", "jabber:x:encrypted"),
];

/// How many delivered messages one delete removes while a backlog is written.
const DELETE_BATCH: usize = 64;

/// XEP-0160 §3 with XEP-0334: whether a message is worth keeping for an offline user.
/// `<no-store/>` never is, `<store/>` always is; otherwise a message is kept if it has
/// something to read or decrypt. Chat states (XEP-0085 §5.5) and receipts (XEP-0184) alone
/// are not: they mean nothing once the moment has passed (ejabberd and Prosody agree).
fn worth_keeping(message: &Element) -> bool {
    if message.get_child("no-store", HINTS).is_some() {
        return false;
    }
    if message.get_child("store", HINTS).is_some() {
        return true;
    }
    message.get_child("body", ns::CLIENT).is_some()
        || message.get_child("subject", ns::CLIENT).is_some()
        || STORABLE
            .iter()
            .any(|(name, ns)| message.get_child(name, ns).is_some())
}

/// Keeps `message` for `to`, unless it is not worth keeping (then it is let go, which is no
/// error for the sender). Errors are the ones the sender gets back: no such account,
/// storage off or full (XEP-0160 §5: service-unavailable).
async fn store(
    server: &Server,
    to: &BareJid,
    message: &Stanza,
    counts: &Counts,
) -> Result<(), StanzaError> {
    if !worth_keeping(message.element()) {
        tracing::debug!(%to, "message with nothing to keep not stored offline");
        return Ok(());
    }
    let limit = server.live.get().offline.max_messages;
    if limit == 0 {
        return Err(StanzaError::new(Condition::ServiceUnavailable));
    }
    let stanza = message.element().to_xml_string(ns::CLIENT);
    let account = account_of(to);
    let write = server.store.store_offline(&account, &stanza, limit);
    match metrics::storage(StorageOp::OfflineStore, write).await {
        Ok(true) => {
            counts.stored.inc();
            Ok(())
        }
        Ok(false) => Err(StanzaError::with_text(
            Condition::ServiceUnavailable,
            "The recipient's offline storage is full",
        )),
        Err(StoreError::NotFound) => Err(StanzaError::new(Condition::ServiceUnavailable)),
        Err(e) => Err(store_to_stanza_error(e)),
    }
}

/// Writes everything kept for `jid`'s account to its connection, oldest first, and forgets
/// what was written (XEP-0160 §4: delivered, then deleted). The session writes them itself
/// rather than through its inbox: a backlog may be larger than the inbox, which nothing
/// drains while the session's task is here. A message is deleted only once written, so a
/// crash or a lost connection in between delivers it again rather than never; with XEP-0198
/// on, the session keeps a written message until the client acknowledges it, so a stream
/// lost after the write hands it back (or sends it again on resumption) rather than losing it.
async fn deliver(
    server: &Server,
    jid: &FullJid,
    out: &mut ClientWriter<'_>,
    counts: &Counts,
) -> Result<(), SessionEnd> {
    let account = account_of(&jid.to_bare());
    let read = server.store.offline_messages(&account);
    let messages = match metrics::storage(StorageOp::OfflineLoad, read).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "reading offline messages failed");
            return Ok(());
        }
    };
    let mut written = Vec::with_capacity(DELETE_BATCH);
    let mut result = Ok(());
    for message in messages {
        match parse_stanza(message.stanza.as_bytes()) {
            Ok(mut element) => {
                element.push_child(delay(jid.domain().as_str(), message.stored_at));
                if let Err(e) = out.element(element).await {
                    result = Err(SessionEnd::from(e));
                    break;
                }
                counts.delivered.inc();
            }
            Err(_) => tracing::warn!(id = message.id, "dropping an unreadable offline message"),
        }
        written.push(message.id);
        if written.len() == DELETE_BATCH {
            forget(server, &account, &mut written).await;
        }
    }
    forget(server, &account, &mut written).await;
    result
}

async fn forget(server: &Server, account: &jabberwock_storage::AccountId, ids: &mut Vec<i64>) {
    if ids.is_empty() {
        return;
    }
    let delete = server.store.delete_offline(account, ids);
    if let Err(e) = metrics::storage(StorageOp::OfflineDelete, delete).await {
        tracing::error!(error = %e, "deleting delivered offline messages failed");
    }
    ids.clear();
}

pub struct Offline;

/// What `/metrics` shows of the offline queues: their size is stored minus delivered
/// (messages removed with their account aside).
#[derive(Clone)]
struct Counts {
    stored: Counter,
    delivered: Counter,
}

struct Keep(Counts);
struct Deliver(Counts);

#[async_trait]
impl Hook for Keep {
    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        let Event::MessageOffline { to, stanza } = event else {
            return Flow::Continue;
        };
        match store(server, to, stanza, &self.0).await {
            Ok(()) => Flow::Handled,
            Err(err) => Flow::Refuse(err),
        }
    }
}

#[async_trait]
impl Backlog for Deliver {
    async fn write(
        &self,
        server: &Server,
        jid: &FullJid,
        out: &mut ClientWriter<'_>,
    ) -> Result<(), SessionEnd> {
        deliver(server, jid, out, &self.0).await
    }
}

impl Module for Offline {
    const NAME: &'static str = "offline";
    const XEPS: &'static [Xep] = &[xep(160, "1.0.1"), xep(203, "2.0"), xep(334, "0.3.0")];
    type Config = NoConfig;

    fn register(_config: NoConfig, registry: &mut Registrar<'_>) {
        let counts = Counts {
            stored: registry.counter("stored", "Messages kept for offline accounts."),
            delivered: registry.counter(
                "delivered",
                "Offline messages written to their account's session.",
            ),
        };
        registry.hook(EventKind::MessageOffline, 0, Arc::new(Keep(counts.clone())));
        registry.backlog(Arc::new(Deliver(counts)));
        // XEP-0160 §2 has no feature of its own; `msgoffline` is what servers announce.
        registry.disco_feature(super::Target::Host, "msgoffline");
    }
}
