//! What is archived, and when: a message an account sends (from its session, before it is
//! routed) and one it receives (once the router let it through, before delivery or
//! offline storage), each in that account's archive, once. The copy the recipient gets
//! carries the archive's XEP-0359 `<stanza-id/>`; the sender's id goes only into its own
//! sent carbons (and its archive's query results).

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use jabberwock_protocol::jid::{BareJid, Jid};
use jabberwock_protocol::mam::{stanza_id, strip_stanza_ids};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, Stanza, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::{ArchiveOwner, NewArchived};
use rand::RngCore as _;

use super::prefs::shall_archive;
use super::State;
use crate::accounts::account_of;
use crate::modules::durability;
use crate::modules::offline::STORABLE;
use crate::modules::{Event, Flow, Hook};
use crate::server::Server;

/// XEP-0313 §5 (with XEP-0334) for user archives: chat and normal messages with something
/// to read or decrypt. Not groupchat (a room keeps its own archive), headlines (ephemeral)
/// or errors; not chat states or receipts alone; never a message hinted `<no-store/>` or
/// `<no-permanent-store/>`, always one hinted `<store/>`.
fn worth_archiving(message: &Element) -> bool {
    matches!(message.attr("type").unwrap_or("normal"), "chat" | "normal") && worth_keeping(message)
}

/// Whatever its type, a message worth keeping in an archive (XEP-0313 §5 with XEP-0334):
/// something to read or decrypt, or hinted `<store/>`, and not hinted `<no-store/>` or
/// `<no-permanent-store/>`. A room's archive asks the same of its groupchat messages.
pub(crate) fn worth_keeping(message: &Element) -> bool {
    if message.get_child("no-store", ns::HINTS).is_some()
        || message.get_child("no-permanent-store", ns::HINTS).is_some()
    {
        return false;
    }
    message.get_child("store", ns::HINTS).is_some()
        || message.get_child("body", ns::CLIENT).is_some()
        || STORABLE
            .iter()
            .any(|(name, ns)| message.get_child(name, ns).is_some())
}

/// The alphabet of archive ids: base64url's 64 characters in ASCII order, so ids compare
/// as text in the order of their bytes.
const ID_ALPHABET: &str = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// A new archive id: 96 bits, the first 48 the milliseconds since 1970 and the other 48
/// random, written in [`ID_ALPHABET`]. Not counted, so an id tells nobody how many
/// messages the server archived (XEP-0359 asks only that ids be unique and stable); the
/// time it tells, the archived message's `<delay/>` tells anyway. Ids made later sort
/// after earlier ones, so a new row's entry in the archive's unique index on
/// `(owner, id)` goes at the end of its owner's range, on a page the batch before already
/// wrote, rather than on a random page of it: with random ids that index wrote about one
/// page per archived row (docs/performance.md). The archive's order is still its own
/// sequence (docs/archive.md).
pub(crate) fn new_id() -> String {
    static ENGINE: std::sync::LazyLock<base64::engine::GeneralPurpose> =
        std::sync::LazyLock::new(|| {
            let alphabet = base64::alphabet::Alphabet::new(ID_ALPHABET).expect("64 distinct");
            base64::engine::GeneralPurpose::new(&alphabet, base64::engine::general_purpose::NO_PAD)
        });
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut bytes = [0u8; 12];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    rand::thread_rng().fill_bytes(&mut bytes[6..]);
    ENGINE.encode(bytes)
}

/// Archives `message` for `owner` with `with`, if the owner's preferences say so: the id
/// it got, or None (not archived). Durable before this returns, or, for a stanza a
/// client's session is handling, before that session counts it (`modules::durability`).
async fn archive(
    server: &Server,
    state: &State,
    owner: &BareJid,
    with: &Jid,
    outgoing: bool,
    message: &Element,
) -> Result<Option<String>, StanzaError> {
    let with_bare = with.to_bare();
    if !shall_archive(server, state, owner, with_bare.as_str()).await? {
        return Ok(None);
    }
    let id = new_id();
    let entry = NewArchived {
        owner: ArchiveOwner::Account(account_of(owner)),
        id: id.clone(),
        with_jid: with_bare.to_string(),
        with_resource: with
            .resource()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default(),
        outgoing,
        // The writer stamps the batch.
        stamp: 0,
        stanza: message.to_xml_string(ns::CLIENT),
    };
    if !state.writer.can_defer() {
        let stored = state.writer.append(server, entry).await?;
        return Ok(stored.then_some(id));
    }
    // The message goes on now; the client's session counts it only once it is durable.
    let durable = state.writer.append_deferred(server, entry).await;
    if let Err(durable) = durability::defer(durable) {
        if !durable.await.unwrap_or(false) {
            return Err(StanzaError::new(Condition::InternalServerError));
        }
    }
    Ok(Some(id))
}

/// [`archive`], then the message carries its id in `owner`'s archive; a failed write is
/// the sender's error.
async fn archive_and_mark(
    server: &Server,
    state: &State,
    owner: &BareJid,
    with: &Jid,
    outgoing: bool,
    stanza: &mut Stanza,
) -> Flow {
    match archive(server, state, owner, with, outgoing, stanza.element()).await {
        Ok(Some(id)) => {
            stanza
                .element_mut()
                .push_child(stanza_id(owner.as_str(), &id));
            Flow::Continue
        }
        Ok(None) => Flow::Continue,
        Err(err) => Flow::Refuse(err),
    }
}

/// XEP-0359 §3: a `<stanza-id/>` that claims to be by `owner` (or by its server) was not
/// put there by either: removed.
fn strip_spoofed(stanza: &mut Stanza, owner: &BareJid) {
    let claims = [owner.as_str(), owner.domain().as_str()];
    if strip_stanza_ids(stanza.element_mut(), &claims) {
        tracing::debug!(%owner, "removed a stanza-id claiming to be ours");
    }
}

/// The sender's side: a message from one of our sessions, in the sender's archive.
pub(super) struct Sent(pub(super) Arc<State>);

#[async_trait]
impl Hook for Sent {
    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        let Event::MessageFromClient { from, stanza } = event else {
            return Flow::Continue;
        };
        let owner = from.to_bare();
        strip_spoofed(stanza, &owner);
        if !worth_archiving(stanza.element()) {
            return Flow::Continue;
        }
        let to = match stanza.to().map(Jid::new) {
            None => Jid::from(owner.clone()),
            Some(Ok(to)) => to,
            // The router answers jid-malformed.
            Some(Err(_)) => return Flow::Continue,
        };
        // To the sender's own account: archived once, on arrival.
        if to.to_bare() == owner {
            return Flow::Continue;
        }
        // The id goes in for the sent carbons (XEP-0280 copies the message after this);
        // `SentIdOff` takes it off again before the message leaves.
        archive_and_mark(server, &self.0, &owner, &to, true, stanza).await
    }
}

/// After carbons: the sender's archive id is the sender's business, not the recipient's.
pub(super) struct SentIdOff;

#[async_trait]
impl Hook for SentIdOff {
    fn quick(&self, _server: &Server, event: &mut Event<'_>) -> Option<Flow> {
        if let Event::MessageFromClient { from, stanza } = event {
            let owner = jabberwock_protocol::jid::bare_part(from.as_str());
            strip_stanza_ids(stanza.element_mut(), &[owner]);
        }
        Some(Flow::Continue)
    }

    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        self.quick(server, event).unwrap_or(Flow::Continue)
    }
}

/// The recipient's side: a message for one of our accounts, in the recipient's archive,
/// delivered (or kept offline) with the archive's id.
pub(super) struct Received(pub(super) Arc<State>);

#[async_trait]
impl Hook for Received {
    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        let Event::MessageAccepted { to, stanza, .. } = event else {
            return Flow::Continue;
        };
        let owner = to.to_bare();
        strip_spoofed(stanza, &owner);
        if !worth_archiving(stanza.element()) {
            return Flow::Continue;
        }
        let Some(with) = stanza.from().and_then(|f| Jid::new(f).ok()) else {
            return Flow::Continue;
        };
        archive_and_mark(server, &self.0, &owner, &with, false, stanza).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::test_message as message;

    #[test]
    fn chat_and_normal_with_something_to_read_are_archived() {
        let body = ("body", ns::CLIENT);
        assert!(worth_archiving(&message(Some("chat"), &[body])));
        assert!(worth_archiving(&message(None, &[body])));
        assert!(worth_archiving(&message(
            Some("chat"),
            &[("encrypted", "eu.siacs.conversations.axolotl")]
        )));
        assert!(worth_archiving(&message(
            Some("chat"),
            &[("store", ns::HINTS)]
        )));
        for kind in ["groupchat", "headline", "error"] {
            assert!(!worth_archiving(&message(Some(kind), &[body])), "{kind}");
        }
        assert!(!worth_archiving(&message(
            Some("chat"),
            &[("active", "http://jabber.org/protocol/chatstates")]
        )));
        for hint in ["no-store", "no-permanent-store"] {
            assert!(!worth_archiving(&message(
                Some("chat"),
                &[body, (hint, ns::HINTS)]
            )));
        }
    }

    #[test]
    fn ids_are_distinct_and_opaque() {
        let a = new_id();
        assert_eq!(a.len(), 16);
        assert_ne!(a, new_id());
        assert!(a.chars().all(|c| ID_ALPHABET.contains(c)), "{a}");
    }

    #[test]
    fn ids_made_later_sort_after_earlier_ones() {
        let mut alphabet: Vec<char> = ID_ALPHABET.chars().collect();
        alphabet.sort_unstable();
        alphabet.dedup();
        assert_eq!(alphabet.iter().collect::<String>(), ID_ALPHABET);
        let earlier = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = new_id();
        assert!(earlier < later, "{earlier} {later}");
    }
}
