//! XEP-0078 Non-SASL Authentication (`jabber:iq:auth`) for Flash-era clients that predate
//! SASL (XIFF 2.0, pre-XMPP-1.0 streams), on Flash streams with `flash.legacy_auth` only
//! (docs/flash-protocol.md §4, §7).
//!
//! Only the plaintext `<password>` method: `<digest>` is SHA-1(stream id ‖ password), which
//! needs the stored password, and we store only SCRAM keys (RFC 5802 §3). A `set` that
//! succeeds authenticates *and* binds the resource, like RFC 6120 bind (a resource already
//! in use is taken over, its old session closed with `conflict`), and the session starts
//! without a stream restart. A `set` with only a resource is XIFF 2.0's anonymous login: a
//! guest on hosts with `anonymous = true`.

use jabberwock_protocol::jid::{self, FullJid};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, Stanza, StanzaError};
use jabberwock_protocol::stream::StreamCondition;
use jabberwock_protocol::xml::Element;

use super::features::{Offer, ANONYMOUS};
use super::{bind_in_router, confirm_bind, guest, Bound};
use crate::accounts::local_account;
use crate::error::SessionEnd;
use crate::server::Server;
use crate::stream::connection::Connection;

/// A `get` or `set` iq carrying a `jabber:iq:auth` query.
pub fn is_auth_iq(stanza: &Stanza) -> bool {
    stanza
        .iq_payload()
        .is_some_and(|p| p.is("query", ns::IQ_AUTH))
}

/// Answers one `jabber:iq:auth` iq before authentication. `Ok(Some(_))` when a `set`
/// authenticated and bound; `failures` is the stream's SASL failure count, shared so the
/// two ways in have one limit (`c2s.max_auth_failures`).
pub async fn handle(
    server: &Server,
    conn: &mut Connection,
    host: &str,
    offer: &Offer,
    stanza: &Stanza,
    failures: &mut u32,
    session_id: u64,
) -> Result<Option<Bound>, SessionEnd> {
    if !offer.iq_auth {
        // XEP-0078 §3.1: a server without jabber:iq:auth answers service-unavailable; the
        // stream stays open, so SASL may follow.
        conn.send(&stanza.error_reply(&StanzaError::new(Condition::ServiceUnavailable)))
            .await?;
        return Ok(None);
    }
    let Some(query) = stanza.iq_payload() else {
        return Ok(None);
    };
    let field = |name| {
        query
            .get_child(name, ns::IQ_AUTH)
            .map(|e| e.text().trim().to_owned())
    };
    if stanza.iq_type() == Some(IqType::Get) {
        // §3.1: the fields a `set` needs; the username is echoed whether or not it exists
        // (no account probing). No <digest/>: we could not check it.
        let fields = Element::new("query", ns::IQ_AUTH)
            .with_child(
                Element::new("username", ns::IQ_AUTH)
                    .with_text(field("username").unwrap_or_default()),
            )
            .with_child(Element::new("password", ns::IQ_AUTH))
            .with_child(Element::new("resource", ns::IQ_AUTH));
        conn.send(&stanza.iq_result(Some(fields))).await?;
        return Ok(None);
    }
    let present = |value: Option<String>| value.filter(|v| !v.is_empty());
    let (username, password, resource) = (
        present(field("username")),
        // A password is taken as sent: surrounding spaces may be part of it.
        query
            .get_child("password", ns::IQ_AUTH)
            .map(|e| e.text())
            .filter(|p| !p.is_empty()),
        present(field("resource")),
    );
    // COMPAT: XIFF 2.0's anonymous login is a `set` with a resource and nothing else
    // (flash-protocol.md §4); where the host takes guests it logs one in, as SASL
    // ANONYMOUS does. Elsewhere a missing username stays a missing field (406).
    if let (None, None, Some(resource)) = (&username, &password, &resource) {
        if offer.allows(ANONYMOUS) && query.get_child("digest", ns::IQ_AUTH).is_none() {
            return guest(server, conn, host, stanza, resource, session_id).await;
        }
    }
    let (Some(username), Some(resource)) = (username, resource) else {
        // §3.2: a required field is missing: 406 not-acceptable.
        return reply(
            conn,
            stanza,
            not_acceptable("Username and resource are required"),
        )
        .await;
    };
    let Some(password) = password else {
        let text = if query.get_child("digest", ns::IQ_AUTH).is_some() {
            "Digest authentication is not supported; send <password/>"
        } else {
            "A password is required"
        };
        return reply(conn, stanza, not_acceptable(text)).await;
    };
    let Ok(resource) = jid::parse_resource(&resource) else {
        return reply(conn, stanza, not_acceptable("This resource is not allowed")).await;
    };
    let account = local_account(&username, host);
    let authenticated = match &account {
        Some(account) => super::sasl::password_matches(server, account, &password).await?,
        None => false,
    };
    let full = account
        .as_ref()
        .and_then(|a| FullJid::new(&format!("{}@{}/{}", a.username, a.domain, resource)).ok());
    let (true, Some(full)) = (authenticated, full) else {
        // §3.2: 401 not-authorized, counted and throttled like a SASL failure.
        *failures += 1;
        crate::metrics::login_failed(crate::metrics::core::LEGACY_AUTH);
        tokio::time::sleep(server.throttle.failure(conn.peer.ip())).await;
        tracing::info!(
            user = %username,
            %host,
            ip = %conn.peer.ip(),
            mechanism = "jabber:iq:auth",
            "authentication failed"
        );
        reply(
            conn,
            stanza,
            (StanzaError::new(Condition::NotAuthorized), "401"),
        )
        .await?;
        if *failures >= server.live.get().c2s.max_auth_failures {
            return Err(SessionEnd::error_text(
                StreamCondition::NotAuthorized,
                "Too many failed authentication attempts",
            ));
        }
        return Ok(None);
    };
    server.throttle.success(conn.peer.ip());
    crate::metrics::login(crate::metrics::core::LEGACY_AUTH);
    tracing::info!(
        jid = %full,
        ip = %conn.peer.ip(),
        mechanism = "jabber:iq:auth",
        "authenticated"
    );
    let bound = match bind_in_router(server, full, session_id, false) {
        Ok(bound) => bound,
        // XEP-0086 maps resource-constraint to the legacy code 500.
        Err(err) => return reply(conn, stanza, (err, "500")).await,
    };
    confirm_bind(server, conn, bound, &stanza.iq_result(None))
        .await
        .map(Some)
}

/// A guest (see [`super::guest`]) logged in and bound by an anonymous `set`.
async fn guest(
    server: &Server,
    conn: &mut Connection,
    host: &str,
    stanza: &Stanza,
    resource: &str,
    session_id: u64,
) -> Result<Option<Bound>, SessionEnd> {
    let Ok(resource) = jid::parse_resource(resource) else {
        return reply(conn, stanza, not_acceptable("This resource is not allowed")).await;
    };
    let account = guest::create(server, host).await?;
    let full = FullJid::new(&format!(
        "{}@{}/{}",
        account.username, account.domain, resource
    ));
    let Ok(full) = full else {
        guest::forget(server, &account).await;
        return reply(conn, stanza, not_acceptable("This resource is not allowed")).await;
    };
    tracing::info!(jid = %full, ip = %conn.peer.ip(), "guest authenticated (jabber:iq:auth)");
    let bound = match bind_in_router(server, full, session_id, true) {
        Ok(bound) => bound,
        Err(err) => {
            guest::forget(server, &account).await;
            return reply(conn, stanza, (err, "500")).await;
        }
    };
    match confirm_bind(server, conn, bound, &stanza.iq_result(None)).await {
        Ok(bound) => Ok(Some(bound)),
        Err(e) => {
            guest::forget(server, &account).await;
            Err(e)
        }
    }
}

fn not_acceptable(text: &str) -> (StanzaError, &'static str) {
    (
        StanzaError::with_text(Condition::NotAcceptable, text),
        "406",
    )
}

/// An error reply carrying the legacy `code` too (XEP-0086), which XEP-0078's examples show
/// and clients of its era read.
async fn reply(
    conn: &mut Connection,
    stanza: &Stanza,
    (err, code): (StanzaError, &'static str),
) -> Result<Option<Bound>, SessionEnd> {
    let mut reply = stanza.error_reply(&err);
    if let Some(error) = reply.get_child_mut("error", ns::CLIENT) {
        error.set_attr("code", code);
    }
    conn.send(&reply).await?;
    Ok(None)
}
