//! Resource binding (RFC 6120 §7).

use jabberwock_protocol::jid::{self, FullJid};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, Stanza, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::AccountId;

/// Whether a stanza is the bind request.
pub fn is_bind_iq(stanza: &Stanza) -> bool {
    stanza.iq_type() == Some(IqType::Set)
        && stanza.iq_payload().is_some_and(|p| p.is("bind", ns::BIND))
}

/// The full JID to bind: the client's resource when it asked for a valid one, ours when it
/// asked for none (RFC 6120 §7.6). An unusable resource is `bad-request` (§7.7.2.1).
pub fn full_jid(account: &AccountId, request: &Stanza) -> Result<FullJid, StanzaError> {
    let asked = request
        .iq_payload()
        .and_then(|bind| bind.get_child("resource", ns::BIND))
        .map(|r| r.text())
        .filter(|r| !r.is_empty());
    let resource = match asked {
        Some(r) => jid::parse_resource(&r).map_err(|_| StanzaError::new(Condition::BadRequest))?,
        None => generated_resource(),
    };
    FullJid::new(&format!(
        "{}@{}/{}",
        account.username, account.domain, resource
    ))
    .map_err(|_| StanzaError::new(Condition::BadRequest))
}

pub fn result(request: &Stanza, jid: &FullJid) -> Element {
    request
        .iq_result(Some(Element::new("bind", ns::BIND).with_child(
            Element::new("jid", ns::BIND).with_text(jid.to_string()),
        )))
}

fn generated_resource() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("jw-{n:016x}")
}
