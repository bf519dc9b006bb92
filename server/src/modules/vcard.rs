//! XEP-0054 vcard-temp, with XEP-0153 vCard-based avatars: each account's vCard, set by
//! the account and readable by anyone; the SHA-1 of its photo is put into the account's
//! broadcast presence (`<x xmlns='vcard-temp:x:update'><photo>…`) when the client did not
//! put one there itself, so contacts learn of a new avatar without asking.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jabberwock_protocol::jid::BareJid;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, StanzaError};
use jabberwock_protocol::xml::{parse_stanza, Element};
use jabberwock_storage::StoreError;
use sha1::{Digest, Sha1};

use super::{
    xep, Event, EventKind, Flow, Hook, IqHandler, IqRequest, Module, NoConfig, Registrar,
    SessionFlag, SessionState, Target, Xep,
};
use crate::accounts::account_of;
use crate::error::store_to_stanza_error;
use crate::server::Server;

pub struct Vcard;

struct Get;
struct Set;
struct AvatarInPresence;

/// Set on a session whose account is known to have no photo: the usual case, kept as a bit
/// so that an idle session without an avatar holds nothing more.
static NO_PHOTO: SessionFlag = SessionFlag::new();

/// The session's copy of its account's photo hash, when it has one.
#[derive(Default)]
struct PhotoHash(Mutex<Option<String>>);

/// The session's cached photo hash: `None` until read from storage once, `Some(None)`
/// when the account has no photo.
fn cached_hash(state: &SessionState) -> Option<Option<String>> {
    if state.is_set(&NO_PHOTO) {
        return Some(None);
    }
    let value = state.get::<PhotoHash>()?;
    let hash = value.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    hash.map(Some)
}

/// Caches `hash` on the session (what a reader sees is the old or the new hash, never none
/// where there is one).
fn remember_hash(state: &SessionState, hash: Option<String>) {
    match hash {
        None => {
            state.set(&NO_PHOTO);
            if let Some(value) = state.get::<PhotoHash>() {
                *value.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
            }
        }
        Some(hash) => {
            *state
                .get_or_insert_with(PhotoHash::default)
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(hash);
            state.clear(&NO_PHOTO);
        }
    }
}

/// XEP-0153 §2: the hex SHA-1 of the photo's binary data; `None` without a photo.
/// (XEP-0084 §4.2 names an avatar by the same hash.)
pub(crate) fn photo_hash(vcard: &Element) -> Option<String> {
    let binval = vcard
        .get_child("PHOTO", ns::VCARD)?
        .get_child("BINVAL", ns::VCARD)?
        .text();
    let cleaned: String = binval.split_whitespace().collect();
    let bytes = B64.decode(cleaned).ok()?;
    let digest = Sha1::digest(&bytes);
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

#[async_trait]
impl IqHandler for Get {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let stored = request
            .server
            .store
            .vcard(&account_of(&request.to.to_bare()))
            .await
            .map_err(store_to_stanza_error)?;
        // XEP-0054 §3.1 allows an empty vCard for "none"; the same answer for an account
        // that does not exist tells a stranger nothing.
        Ok(Some(
            stored
                .and_then(|v| parse_stanza(v.xml.as_bytes()).ok())
                .unwrap_or_else(|| Element::new("vCard", ns::VCARD)),
        ))
    }
}

#[async_trait]
impl IqHandler for Set {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        // XEP-0054 §3.2: only the account publishes its own vCard.
        let owner = request.from.to_bare();
        if request.to.to_bare() != owner {
            return Err(StanzaError::new(Condition::Forbidden));
        }
        let server = request.server;
        store_vcard(server, &owner, request.payload)
            .await
            .map_err(store_to_stanza_error)?;
        // XEP-0398: the PEP avatar follows the vCard's photo.
        let mut event = Event::AccountDataStored {
            owner: &owner,
            element: request.payload,
        };
        server.modules.fire(server, &mut event).await;
        Ok(None)
    }
}

/// Keeps `vcard` as `owner`'s vCard: what a vcard-temp set does, and what XEP-0398
/// conversion writes (which fires no event, so the conversion does not come back).
pub(crate) async fn store_vcard(
    server: &Server,
    owner: &BareJid,
    vcard: &Element,
) -> Result<(), StoreError> {
    let hash = photo_hash(vcard);
    let xml = vcard.to_xml_string(ns::CLIENT);
    server
        .store
        .set_vcard(&account_of(owner), &xml, hash.as_deref())
        .await?;
    // Every session of the account puts the new hash into its next presence.
    server
        .router
        .table
        .send_to_each(owner.as_str(), &|_, state| {
            remember_hash(state, hash.clone());
            None
        });
    Ok(())
}

async fn session_photo_hash(
    server: &Server,
    from: &jabberwock_protocol::jid::FullJid,
) -> Option<String> {
    let state = server.router.table.session_state(from)?;
    if let Some(hash) = cached_hash(&state) {
        return hash;
    }
    let hash = match server
        .store
        .vcard_photo_hash(&account_of(&from.to_bare()))
        .await
    {
        Ok(hash) => hash,
        Err(e) => {
            tracing::warn!(error = %e, "reading the avatar hash failed");
            return None;
        }
    };
    remember_hash(&state, hash.clone());
    hash
}

#[async_trait]
impl Hook for AvatarInPresence {
    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        let Event::PresenceOut { from, stanza, .. } = event else {
            return Flow::Continue;
        };
        // Broadcast available presence only; a client's own <x/> is left as it is.
        if stanza.to().is_some()
            || stanza.type_attr().is_some()
            || stanza.element().get_child("x", ns::VCARD_UPDATE).is_some()
        {
            return Flow::Continue;
        }
        if let Some(hash) = session_photo_hash(server, from).await {
            stanza.element_mut().push_child(
                Element::new("x", ns::VCARD_UPDATE)
                    .with_child(Element::new("photo", ns::VCARD_UPDATE).with_text(hash)),
            );
        }
        Flow::Continue
    }
}

impl Module for Vcard {
    const NAME: &'static str = "vcard";
    const XEPS: &'static [Xep] = &[xep(54, "1.2"), xep(153, "1.1")];
    type Config = NoConfig;

    fn register(_config: NoConfig, registry: &mut Registrar<'_>) {
        registry.iq(
            IqType::Get,
            Target::Account,
            ns::VCARD,
            "vCard",
            Arc::new(Get),
        );
        registry.iq(
            IqType::Set,
            Target::Account,
            ns::VCARD,
            "vCard",
            Arc::new(Set),
        );
        registry.disco_feature(Target::Host, ns::VCARD);
        registry.disco_feature(Target::Account, ns::VCARD);
        registry.hook(EventKind::PresenceOut, 0, Arc::new(AvatarInPresence));
    }
}
