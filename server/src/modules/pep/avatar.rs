//! XEP-0398: User Avatar to vCard-Based Avatars Conversion. An XEP-0084 avatar the account
//! publishes becomes its vCard's PHOTO (so a vcard-temp client sees it, and XEP-0153 hashes
//! go into its presence, `vcard.rs`), and a PHOTO it sets through vcard-temp is published
//! as XEP-0084 data and metadata. Both name the image by the hex SHA-1 of its bytes, which
//! is how a change already made is recognised and not made again.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jabberwock_protocol::jid::BareJid;
use jabberwock_protocol::ns;
use jabberwock_protocol::xml::{parse_stanza, Element};
use jabberwock_storage::ItemsWanted;
use sha1::{Digest, Sha1};

use super::convert::{publish, publish_options};
use super::PepConfig;
use crate::accounts::account_of;
use crate::modules::pubsub::payload::stored_payload;
use crate::modules::vcard::{photo_hash, store_vcard};
use crate::server::Server;

/// The account's stored vCard, or an empty one.
async fn stored_vcard(server: &Server, owner: &BareJid) -> Option<Element> {
    match server.store.vcard(&account_of(owner)).await {
        Ok(stored) => Some(
            stored
                .and_then(|v| parse_stanza(v.xml.as_bytes()).ok())
                .unwrap_or_else(|| Element::new("vCard", ns::VCARD)),
        ),
        Err(e) => {
            tracing::warn!(%owner, error = %e, "reading the vCard for the avatar failed");
            None
        }
    }
}

/// The payload of item `id` of the account's `node`.
async fn item(server: &Server, owner: &BareJid, node: &str, id: &str) -> Option<Element> {
    let ids = [id.to_owned()];
    let found = server
        .store
        .pubsub_items(owner.as_str(), node, ItemsWanted::Ids(&ids))
        .await
        .ok()??;
    found.items.first().and_then(stored_payload)
}

/// XEP-0398 §3 (PEP to vCard): the metadata the account published names the avatar (the
/// `<info/>` without a `url`, whose bytes are in the data node); the vCard's PHOTO becomes
/// that image, or goes when the metadata is empty (XEP-0084 §4.5, avatar switched off).
pub(super) async fn metadata_published(
    server: &Server,
    owner: &BareJid,
    metadata: Option<&Element>,
) {
    let info = metadata.and_then(|m| {
        m.children()
            .find(|c| c.is("info", ns::AVATAR_METADATA) && c.attr("url").is_none())
    });
    let Some(mut vcard) = stored_vcard(server, owner).await else {
        return;
    };
    let current = photo_hash(&vcard);
    let photo = match info {
        None if current.is_none() => return,
        None => None,
        Some(info) => {
            let Some(id) = info.attr("id") else {
                return;
            };
            if current.as_deref() == Some(id) {
                return;
            }
            let Some(data) = item(server, owner, ns::AVATAR_DATA, id).await else {
                tracing::debug!(%owner, id, "avatar metadata without its data: vCard kept");
                return;
            };
            let kind = info.attr("type").unwrap_or("image/png").to_owned();
            Some((kind, data.text()))
        }
    };
    vcard.remove_child("PHOTO", ns::VCARD);
    if let Some((kind, binval)) = photo {
        vcard.push_child(
            Element::new("PHOTO", ns::VCARD)
                .with_child(Element::new("TYPE", ns::VCARD).with_text(kind))
                .with_child(Element::new("BINVAL", ns::VCARD).with_text(binval)),
        );
    }
    if let Err(e) = store_vcard(server, owner, &vcard).await {
        tracing::warn!(%owner, error = %e, "the avatar could not go into the vCard");
    }
}

/// The id of the avatar the account's metadata names now, if any (`Some(None)`: metadata
/// saying there is none).
async fn current_avatar(server: &Server, owner: &BareJid) -> Option<Option<String>> {
    let found = server
        .store
        .pubsub_items(owner.as_str(), ns::AVATAR_METADATA, ItemsWanted::Newest(1))
        .await
        .ok()??;
    let metadata = found.items.first().and_then(stored_payload)?;
    Some(
        metadata
            .get_child("info", ns::AVATAR_METADATA)
            .and_then(|i| i.attr("id"))
            .map(str::to_owned),
    )
}

/// XEP-0398 §4 (vCard to PEP): the PHOTO the account set is published as XEP-0084 data
/// and then metadata (§4.1: data first, so whoever reads the metadata finds the data); a
/// vCard without PHOTO switches a published avatar off. Nodes made for it are open, as
/// the vCard is readable by anyone (XEP-0054).
pub(super) async fn vcard_stored(
    server: &Server,
    settings: &PepConfig,
    owner: &BareJid,
    vcard: &Element,
) {
    let current = current_avatar(server, owner).await;
    let photo = vcard.get_child("PHOTO", ns::VCARD).and_then(|photo| {
        let binval: String = photo
            .get_child("BINVAL", ns::VCARD)?
            .text()
            .split_whitespace()
            .collect();
        let bytes = B64.decode(&binval).ok()?;
        let kind = photo
            .get_child("TYPE", ns::VCARD)
            .map(|t| t.text().trim().to_owned())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "image/png".to_owned());
        Some((bytes, binval, kind))
    });
    let options = publish_options(&[("pubsub#access_model", "open")]);
    let Some((bytes, binval, kind)) = photo else {
        // Nothing published, or already switched off: nothing to do.
        if matches!(current, Some(Some(_))) {
            let empty = Element::new("metadata", ns::AVATAR_METADATA);
            publish(
                server,
                settings,
                owner,
                ns::AVATAR_METADATA,
                "current",
                empty,
                &options,
            )
            .await;
        }
        return;
    };
    let id: String = Sha1::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if current.flatten().as_deref() == Some(id.as_str()) {
        return;
    }
    let data = Element::new("data", ns::AVATAR_DATA).with_text(binval);
    if !publish(
        server,
        settings,
        owner,
        ns::AVATAR_DATA,
        &id,
        data,
        &options,
    )
    .await
    {
        return;
    }
    let metadata = Element::new("metadata", ns::AVATAR_METADATA).with_child(
        Element::new("info", ns::AVATAR_METADATA)
            .with_attr("id", &id)
            .with_attr("bytes", bytes.len().to_string())
            .with_attr("type", kind),
    );
    publish(
        server,
        settings,
        owner,
        ns::AVATAR_METADATA,
        &id,
        metadata,
        &options,
    )
    .await;
}
