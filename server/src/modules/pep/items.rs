//! XEP-0060 §6.5: retrieving a node's items, as its access model allows.

use jabberwock_protocol::pubsub;
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::ItemsWanted;

use super::Ctx;
use crate::error::store_to_stanza_error;
use crate::modules::pubsub::config::NodeConfig;
use crate::modules::pubsub::payload::stored_payload;

/// All items (oldest first), the `max_items` newest (§6.5.7) or those of `ids` that exist,
/// in the order asked (§6.5.8).
pub(super) async fn retrieve(
    ctx: &Ctx<'_>,
    node: &str,
    max_items: Option<u64>,
    ids: &[String],
) -> Result<Option<Element>, StanzaError> {
    let wanted = if ids.is_empty() {
        ItemsWanted::Newest(max_items.unwrap_or(u64::MAX))
    } else {
        ItemsWanted::Ids(ids)
    };
    let found = ctx
        .server
        .store
        .pubsub_items(ctx.service(), node, wanted)
        .await
        .map_err(store_to_stanza_error)?
        // §6.5.9.11: no such node.
        .ok_or_else(|| StanzaError::new(Condition::ItemNotFound))?;
    let config = NodeConfig::from_stored(&found.config);
    if !ctx.is_owner() {
        config
            .may_read(&ctx.asker().await?)
            .map_err(|denied| denied.to_stanza_error())?;
    }
    let items = found
        .items
        .iter()
        .filter_map(|item| Some((item.id.clone(), Some(stored_payload(item)?))));
    Ok(Some(pubsub::items_result(node, items, None)))
}
