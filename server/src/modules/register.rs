//! XEP-0077: In-Band Registration. Before authentication (on hosts whose config allows it)
//! a pre-authentication IQ handler and stream feature, since the client has no JID yet to
//! route from; after authentication IQ handlers: password change and account removal.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, Stanza, StanzaError};
use jabberwock_protocol::stream::{StreamCondition, StreamError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::StoreError;

use crate::accounts::{self, AccountError};
use crate::error::store_to_stanza_error;
use crate::server::Server;

use super::{
    xep, FeatureContext, IqHandler, IqRequest, Module, NoConfig, PreAuthIq, PreAuthIqHandler,
    Registrar, Stage, StreamFeature, Target, Xep,
};

/// Whether registration is offered on this stream: on for the host, on a stream where the
/// core offers a login at all (not before a required STARTTLS), and, over a Flash socket
/// without TLS, where the new password would cross the network in clear text, only where
/// the host allows it (`flash_registration`).
fn offered(ctx: &FeatureContext<'_>) -> bool {
    let Some(host) = ctx.server.host(ctx.host) else {
        return false;
    };
    let clear_flash = ctx.flash && !ctx.encrypted;
    host.registration && ctx.auth_offered && (!clear_flash || host.flash_registration)
}

/// XEP-0077 §4: the stream feature saying registration is possible here.
struct Feature;

impl StreamFeature for Feature {
    fn offer(&self, ctx: &FeatureContext<'_>) -> Option<Element> {
        offered(ctx).then(|| Element::new("register", ns::REGISTER_FEATURE))
    }
}

/// Registration before authentication: the client has no JID yet.
struct PreAuthRegistration;

#[async_trait]
impl PreAuthIqHandler for PreAuthRegistration {
    async fn handle(&self, iq: PreAuthIq<'_>) -> Option<Element> {
        let PreAuthIq { ctx, peer, stanza } = iq;
        let host = ctx.server.host(ctx.host)?;
        let refuse = |err: StanzaError| Some(stanza.error_reply(&err));
        // XEP-0077 §3.1: a host without in-band registration answers service-unavailable.
        if !host.registration {
            return refuse(StanzaError::new(Condition::ServiceUnavailable));
        }
        if offered(ctx) {
            return Some(match handle(ctx.server, ctx.host, peer, stanza).await {
                Ok(result) => stanza.iq_result(result),
                Err(err) => stanza.error_reply(&err),
            });
        }
        if ctx.flash {
            // Registration on, but not over a clear Flash socket (`flash_registration`):
            // XEP-0077 §3.1 answers an entity that may not register with not-allowed.
            return refuse(StanzaError::with_text(
                Condition::NotAllowed,
                "Registration over an unencrypted Flash connection is not allowed here",
            ));
        }
        // On, but not offered yet (TLS first): the stream is closed, not-authorized.
        None
    }
}

/// XEP-0077 §3.3 and §3.1: a new password the rules refuse is `not-acceptable`, saying why.
pub(crate) fn refused_password(err: AccountError) -> StanzaError {
    match err {
        AccountError::Store(e) => store_to_stanza_error(e),
        e @ (AccountError::EmptyPassword
        | AccountError::TooShort(_)
        | AccountError::BadCharacter) => {
            StanzaError::with_text(Condition::NotAcceptable, format!("Refused: {e}."))
        }
        _ => StanzaError::new(Condition::BadRequest),
    }
}

async fn handle(
    server: &Server,
    host: &str,
    peer: IpAddr,
    iq: &Stanza,
) -> Result<Option<Element>, StanzaError> {
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
            let live = server.live.get();
            let rules = &live.auth;
            accounts::check_new_password(&password, rules).map_err(refused_password)?;
            // One registration per address per `auth.registration_interval`, as ejabberd's
            // registration_timeout: resource-constraint (type wait), try again later.
            if !server.registrations.try_take(peer) {
                tracing::info!(%peer, %host, "registration refused: auth.registration_interval");
                return Err(StanzaError::with_text(
                    Condition::ResourceConstraint,
                    "Too many registrations from your address; try again later",
                ));
            }
            let created = accounts::create(&server.store, &id, password, rules).await;
            if created.is_err() {
                server.registrations.release(peer);
            }
            match created {
                Ok(()) => {
                    tracing::info!(user = %id.username, host = %id.domain, "account registered in-band");
                    Ok(None)
                }
                Err(AccountError::Store(StoreError::AlreadyExists)) => {
                    Err(StanzaError::new(Condition::Conflict))
                }
                Err(e) => Err(refused_password(e)),
            }
        }
        _ => Err(StanzaError::new(Condition::BadRequest)),
    }
}

/// XEP-0077 after authentication: password change (§3.3) and cancelling the account (§3.2).
pub struct Register;

struct Registered;
struct Change;

#[async_trait]
impl IqHandler for Registered {
    /// §3.1: a registered entity is told so, with its username.
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        own_account(&request)?;
        not_a_guest(&request).await?;
        let username = request
            .from
            .node()
            .map(|n| n.to_string())
            .unwrap_or_default();
        Ok(Some(
            Element::new("query", ns::REGISTER)
                .with_child(Element::new("registered", ns::REGISTER))
                .with_child(Element::new("username", ns::REGISTER).with_text(username)),
        ))
    }
}

#[async_trait]
impl IqHandler for Change {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        own_account(&request)?;
        not_a_guest(&request).await?;
        let server = request.server;
        let owner = request.from.to_bare();
        let query = request.payload;
        if query.get_child("remove", ns::REGISTER).is_some() {
            crate::roster::remove_account(server, &owner)
                .await
                .map_err(store_to_stanza_error)?;
            tracing::info!(account = %owner, "account removed in-band");
            // §3.2: the account is gone, and so are its sessions (after this result).
            // The result goes into the inbox ahead of the close: a session stops at the
            // close, so the router's own copy of the result, queued behind it, is never
            // written.
            server
                .router
                .reply(request.from, request.stanza.iq_result(None));
            let err = StreamError::with_text(StreamCondition::NotAuthorized, "Account removed");
            server.router.table.close_all(owner.as_str(), &err);
            return Ok(None);
        }
        let field = |name| query.get_child(name, ns::REGISTER).map(|e| e.text());
        let (Some(username), Some(password)) = (field("username"), field("password")) else {
            return Err(StanzaError::new(Condition::BadRequest));
        };
        let id = crate::accounts::account_of(&owner);
        // §3.3: the username must be the account's own.
        if accounts::local_account(&username, &id.domain).as_ref() != Some(&id) {
            return Err(StanzaError::new(Condition::NotAuthorized));
        }
        accounts::set_password(&server.store, &id, password, &server.live.get().auth)
            .await
            .map(|()| None)
            .map_err(refused_password)
    }
}

/// Guests (SASL ANONYMOUS) have no account to manage; nor may anyone manage another's.
fn own_account(request: &IqRequest<'_>) -> Result<(), StanzaError> {
    let to_self = request.to.node().is_none() || request.to.to_bare() == request.from.to_bare();
    if to_self {
        Ok(())
    } else {
        Err(StanzaError::new(Condition::Forbidden))
    }
}

/// A SASL ANONYMOUS guest's account has no credentials and ends with its session: setting
/// a password would turn it into a permanent account, so XEP-0077 is closed to it
/// (not-allowed, as XEP-0077 §3.1 answers an entity that may not register).
async fn not_a_guest(request: &IqRequest<'_>) -> Result<(), StanzaError> {
    let id = crate::accounts::account_of(&request.from.to_bare());
    if !accounts::is_guest(request.server.store.as_ref(), &id)
        .await
        .map_err(store_to_stanza_error)?
    {
        return Ok(());
    }
    Err(StanzaError::with_text(
        Condition::NotAllowed,
        "Guest accounts can't be registered or changed",
    ))
}

impl Module for Register {
    const NAME: &'static str = "register";
    const XEPS: &'static [Xep] = &[xep(77, "2.4")];
    type Config = NoConfig;

    fn register(_config: NoConfig, registry: &mut Registrar<'_>) {
        for target in [Target::Host, Target::Account] {
            registry.iq(
                IqType::Get,
                target,
                ns::REGISTER,
                "query",
                Arc::new(Registered),
            );
            registry.iq(IqType::Set, target, ns::REGISTER, "query", Arc::new(Change));
        }
        registry.pre_auth_iq(ns::REGISTER, "query", Arc::new(PreAuthRegistration));
        registry.stream_feature(Stage::PreAuth, Arc::new(Feature));
    }
}
