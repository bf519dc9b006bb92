//! XEP-0060 §8.7: the `get-pending` ad-hoc command (XEP-0050) on the service's domain. An
//! owner picks one of its nodes with subscriptions waiting for approval and is sent the §8.6
//! form of each again, to answer as the first time (`authorize.rs`). Anyone may run it;
//! someone who owns no node is refused `forbidden`, as is a node of someone else.

use async_trait::async_trait;
use jabberwock_protocol::commands::CommandCondition;
use jabberwock_protocol::forms::{DataForm, Field, FieldType, FormType};
use jabberwock_protocol::jid::BareJid;
use jabberwock_protocol::pubsub::Affiliation;
use jabberwock_protocol::pubsub_authorization::SUBSCRIBE_AUTHORIZATION;
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_storage::StoredSubscription;

use super::node::Node;
use super::{authorize, Ctx, Settings};
use crate::error::store_to_stanza_error;
use crate::modules::commands::{AdHocCommand, CommandCall, Step};

/// The command's node (§8.7, registered in §12.3 of XEP-0060).
pub(super) const GET_PENDING: &str = "http://jabber.org/protocol/pubsub#get-pending";

pub(super) struct GetPending(pub Settings);

/// The nodes the asker owns, each with its pending subscriptions (possibly none).
async fn owned(ctx: &Ctx<'_>) -> Result<Vec<(Node, Vec<StoredSubscription>)>, StanzaError> {
    let asker = ctx.asker();
    let stored = ctx
        .server
        .store
        .pubsub_nodes(ctx.service)
        .await
        .map_err(store_to_stanza_error)?;
    let mut owned = Vec::new();
    for stored in stored {
        // A node deleted meanwhile is simply not listed.
        let Ok(node) = Node::load(ctx, &stored.node).await else {
            continue;
        };
        if node.affiliation(ctx, &asker) != Affiliation::Owner {
            continue;
        }
        let pending = pending_of(ctx, &node).await?;
        owned.push((node, pending));
    }
    Ok(owned)
}

async fn pending_of(ctx: &Ctx<'_>, node: &Node) -> Result<Vec<StoredSubscription>, StanzaError> {
    let mut all = node.subscriptions(ctx).await?;
    all.retain(|s| s.pending);
    Ok(all)
}

/// §8.7: the nodes to pick from, in the §8.6 form's FORM_TYPE.
fn node_form(nodes: &[String]) -> DataForm {
    let mut field = Field::new("pubsub#node")
        .with_type(FieldType::ListSingle)
        .with_label("Node ID")
        .required();
    for node in nodes {
        field = field.with_option(None, node.as_str());
    }
    DataForm::new(FormType::Form)
        .with_form_type(SUBSCRIBE_AUTHORIZATION)
        .with_field(field)
}

#[async_trait]
impl AdHocCommand for GetPending {
    fn node(&self) -> &'static str {
        GET_PENDING
    }

    fn name(&self) -> &'static str {
        "Get pending subscription requests"
    }

    /// Who owns what is read when it runs (§8.7: `forbidden` then).
    fn allowed(&self, _asker: &BareJid, _domain: &str) -> bool {
        true
    }

    async fn step(
        &self,
        call: &CommandCall<'_>,
        stage: usize,
        form: Option<&DataForm>,
    ) -> Result<Step, StanzaError> {
        let settings = self.0.get();
        let ctx = Ctx {
            server: call.server,
            settings: &settings,
            service: call.host,
            from: call.from,
        };
        if stage == 0 {
            let owned = owned(&ctx).await?;
            if owned.is_empty() {
                return Err(StanzaError::with_text(
                    Condition::Forbidden,
                    "you own no node of this service",
                ));
            }
            let nodes: Vec<String> = owned
                .into_iter()
                .filter(|(_, pending)| !pending.is_empty())
                .map(|(node, _)| node.name)
                .collect();
            if nodes.is_empty() {
                return Ok(Step::done("No subscription request is pending."));
            }
            return Ok(Step::Form {
                form: node_form(&nodes),
                last: true,
            });
        }
        let name = form
            .and_then(|f| f.value("pubsub#node"))
            .filter(|n| !n.is_empty())
            .ok_or_else(|| CommandCondition::BadPayload.to_stanza_error())?;
        let node = Node::load(&ctx, name).await?;
        node.require_owner(&ctx)?;
        let pending = pending_of(&ctx, &node).await?;
        // §8.7: the §8.6 form of each, to the owner's resource that asked.
        let to = ctx.from.to_string();
        for subscription in &pending {
            authorize::ask(&ctx, &node, subscription, &to).await;
        }
        Ok(Step::done(format!(
            "{} pending subscription request(s) of {name} sent again.",
            pending.len()
        )))
    }
}
