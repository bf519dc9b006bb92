//! XEP-0280: Message Carbons (version 1.0.1). A resource that enabled carbons gets a copy of
//! the instant messages its account sends from its other resources (`<sent/>`, §8) and of
//! those the account receives on its other resources (`<received/>`, §7). A resource that
//! never asks (a Flash client, for one) never gets a copy.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::jid::{FullJid, Jid};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, StanzaError};
use jabberwock_protocol::xml::Element;

use super::{
    xep, Event, EventKind, Flow, Hook, IqHandler, IqRequest, Module, NoConfig, Registrar,
    SessionState, Target, Xep,
};
use crate::server::Server;

pub struct Carbons;

/// A session's carbons switch (§4, §5): off until its client enables it.
#[derive(Default)]
struct Enabled(AtomicBool);

fn is_enabled(state: &SessionState) -> bool {
    state
        .get::<Enabled>()
        .is_some_and(|e| e.0.load(Ordering::Relaxed))
}

/// `<enable/>` (true) or `<disable/>` (false).
struct Switch(bool, Arc<Sessions>);

/// How many sessions have carbons enabled: while none has, the hooks are inactive and the
/// router prepares nothing for them.
#[derive(Default)]
struct Sessions(AtomicUsize);

impl Sessions {
    fn any(&self) -> bool {
        self.0.load(Ordering::Relaxed) > 0
    }

    /// A session's switch went from `was` to `now`.
    fn switched(&self, was: bool, now: bool) {
        match (was, now) {
            (false, true) => {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
            (true, false) => {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

#[async_trait]
impl IqHandler for Switch {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        // §4.1, §5.1: a client switches its own session's carbons, nobody else's.
        if request.to.to_bare() != request.from.to_bare() {
            return Err(StanzaError::new(Condition::NotAllowed));
        }
        let state = request
            .server
            .router
            .table
            .session_state(request.from)
            .ok_or_else(|| StanzaError::new(Condition::NotAllowed))?;
        // §10.1: enabling twice (or disabling twice) is no error.
        let was = state
            .get_or_insert_with(Enabled::default)
            .0
            .swap(self.0, Ordering::Relaxed);
        self.1.switched(was, self.0);
        Ok(None)
    }
}

/// §6 "Messages Eligible for Carbons Delivery", the suggested rules: chat messages, and
/// normal ones with a body. Never a message marked `<private/>` (§9), one hinted
/// `<no-copy/>` (XEP-0334), one that is already a carbon, or a MUC message or private
/// message (they carry `<x xmlns='…muc#user'/>`, XEP-0045 §7.5). Errors would need the
/// server to remember what they answer, which §6 itself advises against.
fn eligible(message: &Element) -> bool {
    let instant = match message.attr("type").unwrap_or("normal") {
        "chat" => true,
        "normal" => message.get_child("body", ns::CLIENT).is_some(),
        _ => false,
    };
    instant
        && !message.children().any(|child| {
            child.is("private", ns::CARBONS)
                || child.is("sent", ns::CARBONS)
                || child.is("received", ns::CARBONS)
                || child.is("no-copy", ns::HINTS)
                || child.is("x", ns::MUC_USER)
        })
}

/// The copy of `original` for the resource `to` (§7, §8): from the account's bare JID, the
/// original's type kept, the original inside `<direction><forwarded/></direction>`
/// (XEP-0297).
fn carbon(direction: &str, original: &Element, bare: &str, to: &str) -> Element {
    let mut copy = Element::new("message", ns::CLIENT)
        .with_attr("from", bare)
        .with_attr("to", to);
    if let Some(kind) = original.attr("type") {
        copy.set_attr("type", kind);
    }
    copy.with_child(
        Element::new(direction, ns::CARBONS)
            .with_child(Element::new("forwarded", ns::FORWARD).with_child(original.clone())),
    )
}

/// §8: a message a client sends goes, as `<sent/>`, to its account's other carbons-enabled
/// resources.
struct Sent(Arc<Sessions>);

#[async_trait]
impl Hook for Sent {
    fn active(&self) -> bool {
        self.0.any()
    }

    fn quick(&self, server: &Server, event: &mut Event<'_>) -> Option<Flow> {
        let Event::MessageFromClient { from, stanza } = event else {
            return Some(Flow::Continue);
        };
        let message = stanza.element();
        if !eligible(message) {
            return Some(Flow::Continue);
        }
        // Nothing to build unless another resource of the sender asked for copies (the
        // usual case is that none did: a cheap look before parsing the recipient).
        let own = jabberwock_protocol::jid::bare_part(from.as_str());
        let wanted = server.router.table.any_resource(own, &|full, state| {
            full != from.as_str() && is_enabled(state)
        });
        if !wanted {
            return Some(Flow::Continue);
        }
        let bare = from.to_bare();
        // A message between resources of one account: the others see it as received (§7),
        // once; a `<sent/>` copy as well would show it twice.
        let to_own_account = stanza
            .to()
            .is_none_or(|to| Jid::new(to).is_ok_and(|to| to.to_bare() == bare));
        if to_own_account {
            return Some(Flow::Continue);
        }
        server
            .router
            .table
            .send_to_each(bare.as_str(), &|full, state| {
                (full != from.as_str() && is_enabled(state))
                    .then(|| carbon("sent", message, bare.as_str(), full))
            });
        Some(Flow::Continue)
    }

    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        self.quick(server, event).unwrap_or(Flow::Continue)
    }
}

/// §7: a message delivered to some resources of an account goes, as `<received/>`, to its
/// carbons-enabled resources that did not take it.
struct Received(Arc<Sessions>);

/// A session that ends with carbons enabled no longer counts.
struct Ended(Arc<Sessions>);

#[async_trait]
impl Hook for Ended {
    fn quick(&self, _server: &Server, event: &mut Event<'_>) -> Option<Flow> {
        if let Event::SessionEnded { state, .. } = event {
            if let Some(enabled) = state.get::<Enabled>() {
                self.0
                    .switched(enabled.0.swap(false, Ordering::Relaxed), false);
            }
        }
        Some(Flow::Continue)
    }

    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        self.quick(server, event).unwrap_or(Flow::Continue)
    }
}

#[async_trait]
impl Hook for Received {
    fn active(&self) -> bool {
        self.0.any()
    }

    fn quick(&self, server: &Server, event: &mut Event<'_>) -> Option<Flow> {
        let Event::MessageDelivered {
            to,
            resources,
            stanza,
        } = event
        else {
            return Some(Flow::Continue);
        };
        let message = stanza.element();
        if !eligible(message) {
            return Some(Flow::Continue);
        }
        // A message from one of the account's own resources: that one wrote it.
        let sender = stanza.from();
        let wanted = server.router.table.any_resource(
            jabberwock_protocol::jid::bare_part(to.as_str()),
            &|full, state| {
                sender != Some(full)
                    && is_enabled(state)
                    && !resources.iter().any(|r: &FullJid| r.as_str() == full)
            },
        );
        if !wanted {
            return Some(Flow::Continue);
        }
        let bare = to.to_bare();
        server
            .router
            .table
            .send_to_each(bare.as_str(), &|full, state| {
                let took = resources.iter().any(|r: &FullJid| r.as_str() == full);
                (!took && sender != Some(full) && is_enabled(state))
                    .then(|| carbon("received", message, bare.as_str(), full))
            });
        Some(Flow::Continue)
    }

    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        self.quick(server, event).unwrap_or(Flow::Continue)
    }
}

/// §9: the receiving server removes `<private/>` before the recipient gets the message.
/// Removed on the way out rather than on the way in, because whether the message is copied
/// (after delivery, [`Received`]) depends on it.
struct StripPrivate;

#[async_trait]
impl Hook for StripPrivate {
    fn quick(&self, _server: &Server, event: &mut Event<'_>) -> Option<Flow> {
        if let Event::StanzaToClient {
            jid,
            stanza: Some(stanza),
            ..
        } = event
        {
            // Looked at first: only a stanza that has one gets changed (a shared one then
            // becomes this session's own copy).
            let element = stanza.element();
            if element.name() == "message" && element.get_child("private", ns::CARBONS).is_some() {
                stanza
                    .to_mut(jid.as_str())
                    .remove_child("private", ns::CARBONS);
            }
        }
        Some(Flow::Continue)
    }

    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        self.quick(server, event).unwrap_or(Flow::Continue)
    }
}

impl Module for Carbons {
    const NAME: &'static str = "carbons";
    const XEPS: &'static [Xep] = &[xep(280, "1.0.1")];
    type Config = NoConfig;

    fn register(_config: NoConfig, registry: &mut Registrar<'_>) {
        let sessions = Arc::new(Sessions::default());
        // §4, §5: addressed to the account (no `to`, or the own bare JID).
        registry.iq(
            IqType::Set,
            Target::Account,
            ns::CARBONS,
            "enable",
            Arc::new(Switch(true, sessions.clone())),
        );
        registry.iq(
            IqType::Set,
            Target::Account,
            ns::CARBONS,
            "disable",
            Arc::new(Switch(false, sessions.clone())),
        );
        // §3: a client asks its server. Not on the account: contacts who may see its disco
        // have no use for it.
        registry.disco_feature(Target::Host, ns::CARBONS);
        // After the modules that may stop a message (blocking): a refused message is not
        // copied.
        registry.hook(
            EventKind::MessageFromClient,
            -100,
            Arc::new(Sent(sessions.clone())),
        );
        registry.hook(
            EventKind::MessageDelivered,
            0,
            Arc::new(Received(sessions.clone())),
        );
        registry.hook(EventKind::SessionEnded, 0, Arc::new(Ended(sessions)));
        registry.hook(EventKind::StanzaToClient, 0, Arc::new(StripPrivate));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::test_message as message;

    #[test]
    fn chat_and_normal_with_a_body_are_copied() {
        assert!(eligible(&message(Some("chat"), &[])));
        assert!(eligible(&message(Some("normal"), &[("body", ns::CLIENT)])));
        assert!(eligible(&message(None, &[("body", ns::CLIENT)])));
        assert!(!eligible(&message(None, &[])));
        assert!(!eligible(&message(
            Some("headline"),
            &[("body", ns::CLIENT)]
        )));
        assert!(!eligible(&message(
            Some("groupchat"),
            &[("body", ns::CLIENT)]
        )));
        assert!(!eligible(&message(Some("error"), &[("body", ns::CLIENT)])));
    }

    #[test]
    fn private_no_copy_muc_and_carbons_are_not_copied() {
        for marker in [
            ("private", ns::CARBONS),
            ("no-copy", ns::HINTS),
            ("x", ns::MUC_USER),
            ("sent", ns::CARBONS),
            ("received", ns::CARBONS),
        ] {
            let m = message(Some("chat"), &[("body", ns::CLIENT), marker]);
            assert!(!eligible(&m), "{marker:?}");
        }
    }

    #[test]
    fn a_carbon_wraps_the_original_from_the_bare_jid() {
        let original = message(Some("chat"), &[("body", ns::CLIENT)]);
        let copy = carbon("sent", &original, "a@x", "a@x/laptop");
        assert_eq!(copy.attr("from"), Some("a@x"));
        assert_eq!(copy.attr("to"), Some("a@x/laptop"));
        assert_eq!(copy.attr("type"), Some("chat"));
        let inner = copy
            .get_child("sent", ns::CARBONS)
            .and_then(|s| s.get_child("forwarded", ns::FORWARD))
            .and_then(|f| f.get_child("message", ns::CLIENT));
        assert_eq!(inner, Some(&original));
    }
}
