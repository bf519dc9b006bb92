//! XEP-0313 §4 queries: a page of the account's archive, filtered by the form and paged by
//! XEP-0059, sent as one `<message/>` per archived message to the session that asked,
//! then the IQ result with `<fin/>`. A `type='get'` query answers with the form.
//!
//! The result messages go through the asking session's inbox before the handler returns,
//! and the router puts the IQ result behind them in the same inbox, so the client reads
//! every result before the `<fin/>`. The session cannot drain its inbox while its own IQ
//! is being answered, so a page is capped at [`MAX_PAGE`], well below the inbox's depth.

use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::jid::{BareJid, FullJid, Jid};
use jabberwock_protocol::mam::{fin, query_form, result, MamError, MamQuery};
use jabberwock_protocol::ns;
use jabberwock_protocol::rsm::{Before, SetResult};
use jabberwock_protocol::stanza::{Condition, IqType, Stanza, StanzaError};
use jabberwock_protocol::xml::{parse_stanza, Element};
use jabberwock_storage::{ArchiveOwner, ArchiveQuery, StoreError};

use crate::accounts::account_of;
use crate::error::store_to_stanza_error;
use crate::modules::{IqHandler, IqRequest};
use crate::server::Server;

use super::State;

/// Messages in a page when the client names no `<max/>`.
const DEFAULT_MAX: usize = 50;

/// The most messages in a page (a larger `<max/>` gets this many; `complete` tells the
/// client there is more). Below the session inbox's 256 with room to spare for what
/// arrives for the session meanwhile.
const MAX_PAGE: usize = 100;

pub(super) struct Query(pub(super) Arc<State>);

fn bad_query(error: MamError) -> StanzaError {
    let condition = match error {
        MamError::UnsupportedField(_) => Condition::FeatureNotImplemented,
        _ => Condition::BadRequest,
    };
    StanzaError::with_text(condition, error.to_string())
}

/// The store's query for a client's: RSM `<after/>`/`<before/>` page within what the
/// form's fields select (the RSM ids take the place of after-id/before-id when both are
/// given); `from_end` for `<before/>`, empty or not.
fn archive_query(query: &MamQuery, max: usize) -> Result<ArchiveQuery, StanzaError> {
    let (with_jid, with_resource) = match &query.with {
        Some(with) => {
            let jid = Jid::new(with).map_err(|_| StanzaError::new(Condition::JidMalformed))?;
            let resource = jid.resource().map(|r| r.as_str().to_owned());
            (Some(jid.to_bare().to_string()), resource)
        }
        None => (None, None),
    };
    let set = query.set.clone().unwrap_or_default();
    let before = match &set.before {
        Some(Before::Uid(id)) => Some(id.clone()),
        _ => query.before_id.clone(),
    };
    Ok(ArchiveQuery {
        with_jid,
        with_resource,
        start: query.start,
        end: query.end,
        after: set.after.clone().or_else(|| query.after_id.clone()),
        before,
        ids: query.ids.clone(),
        from_end: set.before.is_some(),
        // One more than the page: whether it exists says whether the page is complete.
        limit: max + 1,
    })
}

#[async_trait]
impl IqHandler for Query {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let owner = request.to.to_bare();
        // A user archive answers its own account only (§3.4: other entities have no
        // access to it).
        if owner != request.from.to_bare() {
            return Err(StanzaError::new(Condition::Forbidden));
        }
        let archive = ArchiveOwner::Account(account_of(&owner));
        let server = request.server;
        let kind = request.stanza.iq_type();
        // What was sent before the query is in the page, written or not when it was sent.
        if kind == Some(IqType::Set) {
            self.0.writer.flush(server).await;
        }
        answer(
            server,
            &archive,
            &owner,
            request.from,
            kind,
            request.payload,
        )
        .await
    }
}

/// A query (`payload`, of IQ type `kind`) to the archive of `archive`, whose bare JID is
/// `owner`, from `asker`, who was let in: a `get` is answered with the form; for a `set`
/// each message of the page goes to `asker` from `owner`, and the answer is the `<fin/>`.
/// An account's queries and a room's (XEP-0313 §6) come here alike.
pub(crate) async fn answer(
    server: &Server,
    archive: &ArchiveOwner,
    owner: &BareJid,
    asker: &FullJid,
    kind: Option<IqType>,
    payload: &Element,
) -> Result<Option<Element>, StanzaError> {
    if kind == Some(IqType::Get) {
        return Ok(Some(query_form()));
    }
    let query = MamQuery::parse(payload).map_err(bad_query)?;
    let set = query.set.clone().unwrap_or_default();
    if set.index.is_some() {
        // XEP-0059 §2.6 paging by index is optional, and not offered here.
        return Err(StanzaError::new(Condition::FeatureNotImplemented));
    }
    let max = set.max.unwrap_or(DEFAULT_MAX).min(MAX_PAGE);
    let wanted = archive_query(&query, max)?;
    let mut page = server
        .store
        .archive_query(archive, &wanted)
        .await
        .map_err(|e| match e {
            // An after/before id the archive does not hold.
            StoreError::UnknownArchiveId => StanzaError::new(Condition::ItemNotFound),
            e => store_to_stanza_error(e),
        })?;
    // The extra message, if there was one, belongs to the next page (the one before,
    // when paging from the end).
    let more = page.len() > max;
    if more {
        if wanted.from_end {
            page.remove(0);
        } else {
            page.truncate(max);
        }
    }
    let mut results = Vec::with_capacity(page.len());
    for archived in &page {
        let Ok(original) = parse_stanza(archived.stanza.as_bytes()) else {
            tracing::warn!(id = %archived.id, "skipping an unreadable archived message");
            continue;
        };
        let wrapped = result(
            query.queryid.as_deref(),
            &archived.id,
            archived.stamp,
            original,
        );
        results.push(
            Element::new("message", ns::CLIENT)
                .with_attr("from", owner.as_str())
                .with_attr("to", asker.as_str())
                .with_child(wrapped),
        );
    }
    if query.flip_page {
        results.reverse();
    }
    // Straight to a local session's inbox, ahead of the IQ result; an asker on another
    // server (a room's archive, over federation) gets them routed, in the same order.
    let local = server.serves(asker.domain().as_str());
    for message in results {
        if local {
            server.router.reply(asker, message);
        } else if let Ok(stanza) = Stanza::from_element(message) {
            server.router.route_from_service(server, stanza).await;
        }
    }
    let set = SetResult {
        first: page.first().map(|m| (m.id.clone(), None)),
        last: page.last().map(|m| m.id.clone()),
        count: None,
    };
    // Complete: nothing further in the direction of paging.
    Ok(Some(fin(!more, &set)))
}
