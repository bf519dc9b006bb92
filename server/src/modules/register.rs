//! XEP-0077: In-Band Registration, before authentication, on hosts whose config allows it.
//! Run by c2s negotiation (the client has no JID yet, so it can't go through the router).

use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, Stanza, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::StoreError;

use crate::accounts::{self, AccountError};
use crate::error::store_to_stanza_error;
use crate::server::Server;

/// Whether an un-authenticated stream's stanza is a registration request.
pub fn is_register_iq(stanza: &Stanza) -> bool {
    stanza
        .iq_payload()
        .is_some_and(|p| p.is("query", ns::REGISTER))
}

/// Answers a registration IQ on an unauthenticated stream for `host`.
pub async fn pre_auth(server: &Server, host: &str, iq: &Stanza) -> Element {
    match handle(server, host, iq).await {
        Ok(result) => iq.iq_result(result),
        Err(err) => iq.error_reply(&err),
    }
}

async fn handle(server: &Server, host: &str, iq: &Stanza) -> Result<Option<Element>, StanzaError> {
    if !server.host(host).is_some_and(|h| h.registration) {
        return Err(StanzaError::new(Condition::ServiceUnavailable));
    }
    let query = iq
        .iq_payload()
        .ok_or(StanzaError::new(Condition::BadRequest))?;
    match iq.iq_type() {
        // XEP-0077 §3.1: the fields we need.
        Some(IqType::Get) => Ok(Some(
            Element::new("query", ns::REGISTER)
                .with_child(
                    Element::new("instructions", ns::REGISTER)
                        .with_text("Choose a username and password for use with this service."),
                )
                .with_child(Element::new("username", ns::REGISTER))
                .with_child(Element::new("password", ns::REGISTER)),
        )),
        Some(IqType::Set) => {
            if query.get_child("remove", ns::REGISTER).is_some() {
                // Cancelling needs an account: only meaningful after authentication.
                return Err(StanzaError::new(Condition::NotAuthorized));
            }
            let field = |name| query.get_child(name, ns::REGISTER).map(|e| e.text());
            let (Some(username), Some(password)) = (field("username"), field("password")) else {
                return Err(StanzaError::new(Condition::NotAcceptable));
            };
            let id = accounts::local_account(&username, host).ok_or_else(|| {
                StanzaError::with_text(
                    Condition::NotAcceptable,
                    "The requested username is invalid.",
                )
            })?;
            match accounts::create(
                &server.store,
                &id,
                password,
                server.config.auth.scram_iterations,
            )
            .await
            {
                Ok(()) => {
                    tracing::info!(user = %id.username, host = %id.domain, "account registered in-band");
                    Ok(None)
                }
                Err(AccountError::Store(StoreError::AlreadyExists)) => {
                    Err(StanzaError::new(Condition::Conflict))
                }
                Err(AccountError::EmptyPassword) => Err(StanzaError::new(Condition::NotAcceptable)),
                Err(AccountError::Store(e)) => Err(store_to_stanza_error(e)),
                Err(_) => Err(StanzaError::new(Condition::NotAcceptable)),
            }
        }
        _ => Err(StanzaError::new(Condition::BadRequest)),
    }
}
