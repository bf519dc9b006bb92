//! What other stores keep in step with PEP: XEP-0398 (an XEP-0084 avatar is the vCard's
//! PHOTO, `avatar.rs`) and XEP-0411 (XEP-0402 bookmarks are XEP-0048 bookmarks in private
//! storage, `bookmarks.rs`).
//!
//! No loop: a change the account makes through one protocol is written to the other store
//! by the server, and what the server writes fires nothing — the vCard and private storage
//! are written straight to the store (the `AccountDataStored` event comes only from the
//! account's own IQs), and the server's own publishes do not come back here
//! ([`node_changed`] is called by the account's requests only).

use async_trait::async_trait;
use jabberwock_protocol::forms::{DataForm, Field, FormType};
use jabberwock_protocol::jid::BareJid;
use jabberwock_protocol::ns;
use jabberwock_protocol::pubsub::{PublishedItem, PUBLISH_OPTIONS};
use jabberwock_protocol::xml::Element;

use super::publish::{store_item, Options};
use super::{avatar, bookmarks, PepConfig, Settings};
use crate::modules::{Event, Flow, Hook};
use crate::server::Server;

/// After the account changed `node` (a publish, with the item's id and payload, or a
/// retraction, purge or delete): the other store follows, if its module runs for the host.
pub(super) async fn node_changed(
    server: &Server,
    owner: &BareJid,
    node: &str,
    published: Option<(&str, Option<&Element>)>,
) {
    let host = owner.domain().as_str();
    if node == ns::AVATAR_METADATA && server.modules.is_enabled(host, "vcard") {
        if let Some((_, payload)) = published {
            avatar::metadata_published(server, owner, payload).await;
        }
    } else if node == ns::BOOKMARKS2 && server.modules.is_enabled(host, "private") {
        bookmarks::to_private(server, owner).await;
    }
}

/// The account stored a vCard or an element of private storage.
pub(super) struct Stored(pub Settings);

#[async_trait]
impl Hook for Stored {
    fn quick(&self, _server: &Server, event: &mut Event<'_>) -> Option<Flow> {
        match event {
            Event::AccountDataStored { element, .. }
                if element.is("vCard", ns::VCARD)
                    || element.is("storage", ns::BOOKMARKS_STORAGE) =>
            {
                None
            }
            _ => Some(Flow::Continue),
        }
    }

    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        let Event::AccountDataStored { owner, element } = event else {
            return Flow::Continue;
        };
        let settings = self.0.get();
        if element.is("vCard", ns::VCARD) {
            avatar::vcard_stored(server, &settings, owner, element).await;
        } else {
            bookmarks::from_private(server, &settings, owner, element).await;
        }
        Flow::Continue
    }
}

/// A publish by the server on the account's behalf, its node made with `options` when
/// missing; a failure is logged (the account's own request, which caused it, succeeded).
pub(super) async fn publish(
    server: &Server,
    settings: &PepConfig,
    owner: &BareJid,
    node: &str,
    id: &str,
    payload: Element,
    options: &DataForm,
) -> bool {
    let item = PublishedItem {
        id: Some(id.to_owned()),
        payloads: vec![payload],
    };
    match store_item(
        server,
        settings,
        owner,
        node,
        item,
        Options::ForNewNode(options),
    )
    .await
    {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(%owner, node, error = ?e.condition, "converted item not published");
            false
        }
    }
}

/// A publish-options form with these fields.
pub(super) fn publish_options(fields: &[(&str, &str)]) -> DataForm {
    let mut form = DataForm::new(FormType::Submit).with_form_type(PUBLISH_OPTIONS);
    for (var, value) in fields {
        form = form.with_field(Field::new(*var).with_value(*value));
    }
    form
}
