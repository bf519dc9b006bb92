//! RFC 6121 §3 / Appendix A: the presence-subscription state machine, as pure functions.
//!
//! The user's server keeps, for each contact, one [`State`]: the roster `subscription`
//! (none/to/from/both), the outbound request flag ("Pending Out", shown to clients as
//! `ask='subscribe'`), the inbound request flag ("Pending In", kept by the server, never shown
//! in the roster) and the §3.4 pre-approval flag (`approved='true'`).
//!
//! - [`outbound`]: the user SENDS one of the four subscription presence types (Appendix A.2).
//! - [`inbound`]: the user's server RECEIVES one addressed to the user (Appendix A.3).
//!
//! Both return the new state plus what to do with the stanza; storing, routing, roster pushes,
//! offline storage and the presence side effects (§3.1.5 current presence, §3.2.2 unavailable)
//! are the caller's.
//!
//! Where the RFC leaves room (see also the tests):
//! - Outbound `subscribe` and `unsubscribe` are routed in every state, changed or not
//!   (§3.1.2, §3.3.2): the two servers' views may have drifted apart, and the contact's server
//!   suppresses what it does not need (A.3.1, A.3.2). Prosody does the same.
//! - Outbound `subscribed` / `unsubscribed` are routed only when they change our state
//!   (A.2.3, A.2.4). A `subscribed` that changes nothing but the pre-approval flag (§3.4) is
//!   not routed; neither is an `unsubscribed` that only cancels a pre-approval.
//! - Inbound stanzas are delivered to the user only when they change the state (A.3), except
//!   an auto-approved `subscribe` (§3.1.3, §3.4), which the server answers itself.
//! - `push` means "a roster push is due": exactly when `subscription`, `ask` (pending_out) or
//!   `approved` changed. A change of pending_in alone is not a roster change (A.1).
//! - `approved` is only meaningful while the contact has no subscription from the user: it is
//!   dropped whenever `from` is granted (by the user or by auto-approval).

use jabberwock_storage::Subscription;

/// The subscription state of one user towards one contact, as the user's server keeps it
/// (RFC 6121 Appendix A.1 names: "None + Pending Out", "To + Pending In", ...), plus the
/// pre-approval flag of §3.4.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct State {
    pub subscription: Subscription,
    /// The user asked the contact for a subscription and has no answer yet (`ask='subscribe'`).
    pub pending_out: bool,
    /// The contact asked the user for a subscription and has no answer yet.
    pub pending_in: bool,
    /// The user pre-approved a future request from the contact (§3.4, `approved='true'`).
    pub approved: bool,
}

impl State {
    const fn new(subscription: Subscription, pending_out: bool, pending_in: bool) -> State {
        State {
            subscription,
            pending_out,
            pending_in,
            approved: false,
        }
    }

    /// All nine Appendix A states (approved = false), in the RFC's table order.
    pub fn all() -> [State; 9] {
        use Subscription::{Both, From, None, To};
        [
            State::new(None, false, false), // "None"
            State::new(None, true, false),  // "None + Pending Out"
            State::new(None, false, true),  // "None + Pending In"
            State::new(None, true, true),   // "None + Pending Out/In"
            State::new(To, false, false),   // "To"
            State::new(To, false, true),    // "To + Pending In"
            State::new(From, false, false), // "From"
            State::new(From, true, false),  // "From + Pending Out"
            State::new(Both, false, false), // "Both"
        ]
    }

    /// The RFC's name for it, e.g. "None + Pending Out/In", "To + Pending In" (for test output).
    ///
    /// A pre-approved state gets " (pre-approved)" appended; combinations the RFC does not list
    /// (e.g. "To + Pending Out") are named the same way, for diagnostics.
    pub fn name(&self) -> String {
        let base = match self.subscription {
            Subscription::None => "None",
            Subscription::To => "To",
            Subscription::From => "From",
            Subscription::Both => "Both",
        };
        let pending = match (self.pending_out, self.pending_in) {
            (false, false) => "",
            (true, false) => " + Pending Out",
            (false, true) => " + Pending In",
            (true, true) => " + Pending Out/In",
        };
        let approved = if self.approved { " (pre-approved)" } else { "" };
        format!("{base}{pending}{approved}")
    }

    /// The user is subscribed to the contact's presence (`to` or `both`).
    fn has_to(&self) -> bool {
        matches!(self.subscription, Subscription::To | Subscription::Both)
    }

    /// The contact is subscribed to the user's presence (`from` or `both`).
    fn has_from(&self) -> bool {
        matches!(self.subscription, Subscription::From | Subscription::Both)
    }

    fn set_directions(&mut self, to: bool, from: bool) {
        self.subscription = match (to, from) {
            (false, false) => Subscription::None,
            (true, false) => Subscription::To,
            (false, true) => Subscription::From,
            (true, true) => Subscription::Both,
        };
    }

    fn set_to(&mut self, to: bool) {
        self.set_directions(to, self.has_from());
    }

    fn set_from(&mut self, from: bool) {
        self.set_directions(self.has_to(), from);
    }

    /// What a client sees of this state in its roster: subscription, ask, approved.
    fn visible(&self) -> (Subscription, bool, bool) {
        (self.subscription, self.pending_out, self.approved)
    }
}

/// The four subscription presence types (RFC 6121 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
}

impl Kind {
    /// The kind for a presence `type` attribute; `None` for every other type (probe,
    /// unavailable, error, or no type at all).
    pub fn from_presence_type(t: &str) -> Option<Kind> {
        match t {
            "subscribe" => Some(Kind::Subscribe),
            "subscribed" => Some(Kind::Subscribed),
            "unsubscribe" => Some(Kind::Unsubscribe),
            "unsubscribed" => Some(Kind::Unsubscribed),
            _ => None,
        }
    }

    /// The presence `type` attribute value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Subscribe => "subscribe",
            Kind::Subscribed => "subscribed",
            Kind::Unsubscribe => "unsubscribe",
            Kind::Unsubscribed => "unsubscribed",
        }
    }
}

/// What the user's server does when the user SENDS `kind` to the contact (Appendix A.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outbound {
    /// The new state.
    pub state: State,
    /// Route the stanza to the contact.
    pub route: bool,
    /// Roster push to the user's interested resources (a visible roster change: subscription,
    /// ask, approved).
    pub push: bool,
}

/// The user sends `kind` to the contact (Appendix A.2).
pub fn outbound(state: State, kind: Kind) -> Outbound {
    let mut new = state;
    let route = match kind {
        // §3.1.2, A.2.1: ask, unless already subscribed to the contact. Always routed.
        Kind::Subscribe => {
            if !new.has_to() {
                new.pending_out = true;
            }
            true
        }
        // §3.3.2, A.2.2: give up the subscription to the contact and any request for it.
        // Always routed.
        Kind::Unsubscribe => {
            new.set_to(false);
            new.pending_out = false;
            true
        }
        // §3.1.5, A.2.3: answers a pending request with `from`; §3.4: with no request to
        // answer, records a pre-approval instead (not routed); already `from`: nothing to do.
        Kind::Subscribed => {
            if new.has_from() {
                false
            } else if new.pending_in {
                new.set_from(true);
                new.pending_in = false;
                new.approved = false;
                true
            } else {
                new.approved = true;
                false
            }
        }
        // §3.2.2, A.2.4: refuses a pending request or cancels the contact's subscription;
        // either way also cancels a pre-approval (§3.4, A.2.4 note). Routed only when the
        // contact had something to lose.
        Kind::Unsubscribed => {
            let route = new.has_from() || new.pending_in;
            new.set_from(false);
            new.pending_in = false;
            new.approved = false;
            route
        }
    };
    Outbound {
        state: new,
        route,
        push: new.visible() != state.visible(),
    }
}

/// What the user's server does when it RECEIVES `kind` from the contact (Appendix A.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inbound {
    /// The new state.
    pub state: State,
    /// Deliver the stanza to the user (or keep it for the next login when offline, for
    /// subscribe).
    pub deliver: bool,
    /// Roster push (visible change).
    pub push: bool,
    /// A stanza the user's server sends back to the contact on the user's behalf (e.g.
    /// `subscribed` when already subscribed-from, or when pre-approved — §3.1.3, §3.4).
    pub auto_reply: Option<Kind>,
}

/// The user's server receives `kind` from the contact, addressed to the user (Appendix A.3).
pub fn inbound(state: State, kind: Kind) -> Inbound {
    let mut new = state;
    let mut auto_reply = None;
    let deliver = match kind {
        // §3.1.3, A.3.1.
        Kind::Subscribe => {
            if new.has_from() {
                // Already granted: confirm again on the user's behalf, bother nobody.
                auto_reply = Some(Kind::Subscribed);
                false
            } else if new.approved {
                // §3.4: the user said yes in advance; the pre-approval is used up.
                new.set_from(true);
                new.pending_in = false;
                new.approved = false;
                auto_reply = Some(Kind::Subscribed);
                false
            } else if new.pending_in {
                // Duplicate of a request the user already has.
                false
            } else {
                new.pending_in = true;
                true
            }
        }
        // §3.1.6, A.3.3: only an answer to our own open request counts.
        Kind::Subscribed => {
            if new.pending_out && !new.has_to() {
                new.set_to(true);
                new.pending_out = false;
                true
            } else {
                false
            }
        }
        // §3.3.3, A.3.2: the contact drops its subscription to the user, or its request.
        Kind::Unsubscribe => {
            let changed = new.has_from() || new.pending_in;
            new.set_from(false);
            new.pending_in = false;
            changed
        }
        // §3.2.3, A.3.4: the contact revokes the user's subscription, or refuses the request.
        Kind::Unsubscribed => {
            let changed = new.has_to() || new.pending_out;
            new.set_to(false);
            new.pending_out = false;
            changed
        }
    };
    Inbound {
        state: new,
        deliver,
        push: new.visible() != state.visible(),
        auto_reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use Kind::{Subscribe, Subscribed, Unsubscribe, Unsubscribed};

    const Y: bool = true;
    const N: bool = false;
    /// The RFC tables' "no state change".
    const SAME: &str = "no state change";

    /// (kind, existing state, new state, route, push)
    type OutRow = (Kind, &'static str, &'static str, bool, bool);
    /// (kind, existing state, new state, deliver, push, auto-reply)
    type InRow = (Kind, &'static str, &'static str, bool, bool, Option<Kind>);

    #[rustfmt::skip]
    const OUTBOUND: &[OutRow] = &[
        // A.2.1 (§3.1.2) outbound subscribe: always routed.
        //          existing state            new state                 route push
        (Subscribe, "None",                   "None + Pending Out",     Y,    Y),
        (Subscribe, "None + Pending Out",     SAME,                     Y,    N),
        (Subscribe, "None + Pending In",      "None + Pending Out/In",  Y,    Y),
        (Subscribe, "None + Pending Out/In",  SAME,                     Y,    N),
        (Subscribe, "To",                     SAME,                     Y,    N),
        (Subscribe, "To + Pending In",        SAME,                     Y,    N),
        (Subscribe, "From",                   "From + Pending Out",     Y,    Y),
        (Subscribe, "From + Pending Out",     SAME,                     Y,    N),
        (Subscribe, "Both",                   SAME,                     Y,    N),
        // A.2.2 (§3.3.2) outbound unsubscribe: always routed.
        (Unsubscribe, "None",                   SAME,                   Y,    N),
        (Unsubscribe, "None + Pending Out",     "None",                 Y,    Y),
        (Unsubscribe, "None + Pending In",      SAME,                   Y,    N),
        (Unsubscribe, "None + Pending Out/In",  "None + Pending In",    Y,    Y),
        (Unsubscribe, "To",                     "None",                 Y,    Y),
        (Unsubscribe, "To + Pending In",        "None + Pending In",    Y,    Y),
        (Unsubscribe, "From",                   SAME,                   Y,    N),
        (Unsubscribe, "From + Pending Out",     "From",                 Y,    Y),
        (Unsubscribe, "Both",                   "From",                 Y,    Y),
        // A.2.3 (§3.1.5, §3.4) outbound subscribed: routed only when it grants `from`;
        // without a request to answer it becomes a pre-approval.
        (Subscribed, "None",                   "None (pre-approved)",               N, Y),
        (Subscribed, "None + Pending Out",     "None + Pending Out (pre-approved)", N, Y),
        (Subscribed, "None + Pending In",      "From",                              Y, Y),
        (Subscribed, "None + Pending Out/In",  "From + Pending Out",                Y, Y),
        (Subscribed, "To",                     "To (pre-approved)",                 N, Y),
        (Subscribed, "To + Pending In",        "Both",                              Y, Y),
        (Subscribed, "From",                   SAME,                                N, N),
        (Subscribed, "From + Pending Out",     SAME,                                N, N),
        (Subscribed, "Both",                   SAME,                                N, N),
        // A.2.4 (§3.2.2) outbound unsubscribed: routed only when it refuses or cancels.
        // A refused request (pending in) is not a roster change, hence no push.
        (Unsubscribed, "None",                   SAME,                  N,    N),
        (Unsubscribed, "None + Pending Out",     SAME,                  N,    N),
        (Unsubscribed, "None + Pending In",      "None",                Y,    N),
        (Unsubscribed, "None + Pending Out/In",  "None + Pending Out",  Y,    N),
        (Unsubscribed, "To",                     SAME,                  N,    N),
        (Unsubscribed, "To + Pending In",        "To",                  Y,    N),
        (Unsubscribed, "From",                   "None",                Y,    Y),
        (Unsubscribed, "From + Pending Out",     "None + Pending Out",  Y,    Y),
        (Unsubscribed, "Both",                   "To",                  Y,    Y),
    ];

    const REPLY: Option<Kind> = Some(Subscribed);

    #[rustfmt::skip]
    const INBOUND: &[InRow] = &[
        // A.3.1 (§3.1.3) inbound subscribe: delivered only when new; already granted ->
        // the server answers `subscribed` itself.
        //          existing state            new state                 deliver push reply
        (Subscribe, "None",                   "None + Pending In",      Y,      N,   None),
        (Subscribe, "None + Pending Out",     "None + Pending Out/In",  Y,      N,   None),
        (Subscribe, "None + Pending In",      SAME,                     N,      N,   None),
        (Subscribe, "None + Pending Out/In",  SAME,                     N,      N,   None),
        (Subscribe, "To",                     "To + Pending In",        Y,      N,   None),
        (Subscribe, "To + Pending In",        SAME,                     N,      N,   None),
        (Subscribe, "From",                   SAME,                     N,      N,   REPLY),
        (Subscribe, "From + Pending Out",     SAME,                     N,      N,   REPLY),
        (Subscribe, "Both",                   SAME,                     N,      N,   REPLY),
        // A.3.2 (§3.3.3) inbound unsubscribe.
        (Unsubscribe, "None",                   SAME,                   N,      N,   None),
        (Unsubscribe, "None + Pending Out",     SAME,                   N,      N,   None),
        (Unsubscribe, "None + Pending In",      "None",                 Y,      N,   None),
        (Unsubscribe, "None + Pending Out/In",  "None + Pending Out",   Y,      N,   None),
        (Unsubscribe, "To",                     SAME,                   N,      N,   None),
        (Unsubscribe, "To + Pending In",        "To",                   Y,      N,   None),
        (Unsubscribe, "From",                   "None",                 Y,      Y,   None),
        (Unsubscribe, "From + Pending Out",     "None + Pending Out",   Y,      Y,   None),
        (Unsubscribe, "Both",                   "To",                   Y,      Y,   None),
        // A.3.3 (§3.1.6) inbound subscribed: only answers our open request.
        (Subscribed, "None",                   SAME,                    N,      N,   None),
        (Subscribed, "None + Pending Out",     "To",                    Y,      Y,   None),
        (Subscribed, "None + Pending In",      SAME,                    N,      N,   None),
        (Subscribed, "None + Pending Out/In",  "To + Pending In",       Y,      Y,   None),
        (Subscribed, "To",                     SAME,                    N,      N,   None),
        (Subscribed, "To + Pending In",        SAME,                    N,      N,   None),
        (Subscribed, "From",                   SAME,                    N,      N,   None),
        (Subscribed, "From + Pending Out",     "Both",                  Y,      Y,   None),
        (Subscribed, "Both",                   SAME,                    N,      N,   None),
        // A.3.4 (§3.2.3) inbound unsubscribed.
        (Unsubscribed, "None",                   SAME,                  N,      N,   None),
        (Unsubscribed, "None + Pending Out",     "None",                Y,      Y,   None),
        (Unsubscribed, "None + Pending In",      SAME,                  N,      N,   None),
        (Unsubscribed, "None + Pending Out/In",  "None + Pending In",   Y,      Y,   None),
        (Unsubscribed, "To",                     "None",                Y,      Y,   None),
        (Unsubscribed, "To + Pending In",        "None + Pending In",   Y,      Y,   None),
        (Unsubscribed, "From",                   SAME,                  N,      N,   None),
        (Unsubscribed, "From + Pending Out",     "From",                Y,      Y,   None),
        (Unsubscribed, "Both",                   "From",                Y,      Y,   None),
    ];

    /// §3.4 pre-approval rows: states the user can pre-approve in (no `from`, no request).
    #[rustfmt::skip]
    const PRE_APPROVED_OUTBOUND: &[OutRow] = &[
        // Outbound unsubscribed cancels the pre-approval: pushed, not routed (A.2.4 note).
        (Unsubscribed, "None (pre-approved)",               "None",               N, Y),
        (Unsubscribed, "None + Pending Out (pre-approved)", "None + Pending Out", N, Y),
        (Unsubscribed, "To (pre-approved)",                 "To",                 N, Y),
        // A second pre-approval changes nothing.
        (Subscribed,   "None (pre-approved)",               SAME,                 N, N),
        (Subscribed,   "None + Pending Out (pre-approved)", SAME,                 N, N),
        (Subscribed,   "To (pre-approved)",                 SAME,                 N, N),
    ];

    #[rustfmt::skip]
    const PRE_APPROVED_INBOUND: &[InRow] = &[
        // Inbound subscribe is approved on the spot: `from` granted, flag used up, the server
        // answers `subscribed`, the user gets a push instead of the request.
        (Subscribe, "None (pre-approved)",               "From",               N, Y, REPLY),
        (Subscribe, "None + Pending Out (pre-approved)", "From + Pending Out", N, Y, REPLY),
        (Subscribe, "To (pre-approved)",                 "Both",               N, Y, REPLY),
    ];

    /// Every state the tables may name: the nine of A.1, each with and without pre-approval.
    fn every_state() -> Vec<State> {
        State::all()
            .into_iter()
            .flat_map(|s| [s, pre_approved(s)])
            .collect()
    }

    fn pre_approved(s: State) -> State {
        State {
            approved: true,
            ..s
        }
    }

    fn state(name: &str) -> State {
        every_state()
            .into_iter()
            .find(|s| s.name() == name)
            .unwrap_or_else(|| panic!("no state is named {name:?}"))
    }

    fn expected(existing: &str, new: &str) -> State {
        state(if new == SAME { existing } else { new })
    }

    fn check_outbound(rows: &[OutRow]) {
        for &(kind, existing, new, route, push) in rows {
            let row = format!("outbound {} in {existing:?}", kind.as_str());
            let got = outbound(state(existing), kind);
            let want = expected(existing, new);
            assert_eq!(
                got.state,
                want,
                "{row}: new state {} ≠ {}",
                got.state.name(),
                want.name()
            );
            assert_eq!(got.route, route, "{row}: route");
            assert_eq!(got.push, push, "{row}: push");
        }
    }

    fn check_inbound(rows: &[InRow]) {
        for &(kind, existing, new, deliver, push, reply) in rows {
            let row = format!("inbound {} in {existing:?}", kind.as_str());
            let got = inbound(state(existing), kind);
            let want = expected(existing, new);
            assert_eq!(
                got.state,
                want,
                "{row}: new state {} ≠ {}",
                got.state.name(),
                want.name()
            );
            assert_eq!(got.deliver, deliver, "{row}: deliver");
            assert_eq!(got.push, push, "{row}: push");
            assert_eq!(got.auto_reply, reply, "{row}: auto_reply");
        }
    }

    /// Each table holds every (kind, Appendix A state) pair exactly once.
    fn assert_complete<'a>(table: &str, rows: impl Iterator<Item = (Kind, &'a str)>) {
        let mut seen = HashSet::new();
        for (kind, existing) in rows {
            assert!(
                seen.insert((kind, existing)),
                "{table}: {existing:?} × {kind:?} twice"
            );
        }
        for kind in [Subscribe, Subscribed, Unsubscribe, Unsubscribed] {
            for s in State::all() {
                let name = s.name();
                assert!(
                    seen.contains(&(kind, name.as_str())),
                    "{table}: {name:?} × {kind:?} missing"
                );
            }
        }
        assert_eq!(
            seen.len(),
            36,
            "{table}: only Appendix A states belong here"
        );
    }

    #[test]
    fn outbound_follows_appendix_a2() {
        assert_complete("OUTBOUND", OUTBOUND.iter().map(|r| (r.0, r.1)));
        check_outbound(OUTBOUND);
    }

    #[test]
    fn inbound_follows_appendix_a3() {
        assert_complete("INBOUND", INBOUND.iter().map(|r| (r.0, r.1)));
        check_inbound(INBOUND);
    }

    #[test]
    fn pre_approval_section_3_4() {
        check_outbound(PRE_APPROVED_OUTBOUND);
        check_inbound(PRE_APPROVED_INBOUND);
    }

    #[test]
    fn all_is_appendix_a1_in_order() {
        let names: Vec<String> = State::all().iter().map(State::name).collect();
        assert_eq!(
            names,
            [
                "None",
                "None + Pending Out",
                "None + Pending In",
                "None + Pending Out/In",
                "To",
                "To + Pending In",
                "From",
                "From + Pending Out",
                "Both",
            ]
        );
        assert_eq!(State::default(), State::all()[0]);
    }

    #[test]
    fn kind_round_trips_presence_types() {
        for kind in [Subscribe, Subscribed, Unsubscribe, Unsubscribed] {
            assert_eq!(Kind::from_presence_type(kind.as_str()), Some(kind));
        }
        for other in [
            "",
            "probe",
            "unavailable",
            "error",
            "Subscribe",
            "subscribe ",
        ] {
            assert_eq!(Kind::from_presence_type(other), None, "{other:?}");
        }
    }

    /// Over all states × kinds × approved, both directions.
    #[test]
    fn properties() {
        for before in every_state() {
            for kind in [Subscribe, Subscribed, Unsubscribe, Unsubscribed] {
                let row = format!("{} in {:?}", kind.as_str(), before.name());
                let visible_changed = |after: State| {
                    after.subscription != before.subscription
                        || after.pending_out != before.pending_out
                        || after.approved != before.approved
                };

                let out = outbound(before, kind);
                assert_eq!(out.push, visible_changed(out.state), "outbound {row}: push");
                if matches!(kind, Subscribe | Unsubscribe) {
                    assert_eq!(
                        out.state.pending_in, before.pending_in,
                        "outbound {row}: pending_in"
                    );
                    assert!(out.route, "outbound {row}: (un)subscribe is always routed");
                }

                let inb = inbound(before, kind);
                assert_eq!(inb.push, visible_changed(inb.state), "inbound {row}: push");
                if matches!(kind, Subscribe | Unsubscribe) {
                    assert_eq!(
                        inb.state.pending_out, before.pending_out,
                        "inbound {row}: pending_out"
                    );
                }
                if inb.auto_reply.is_some() {
                    assert_eq!(kind, Subscribe, "inbound {row}: only subscribe is answered");
                    assert!(
                        !inb.deliver,
                        "inbound {row}: answered requests are not delivered"
                    );
                }
                if inb.deliver || inb.push {
                    assert_ne!(
                        inb.state, before,
                        "inbound {row}: delivered without a change"
                    );
                }
            }
        }
    }

    /// Starting from no relationship, the functions only ever reach the nine Appendix A
    /// states and their three pre-approved variants (§3.4: no `from`, no pending request).
    #[test]
    fn reachable_states_stay_canonical() {
        let mut seen = HashSet::from([State::default()]);
        let mut todo = vec![State::default()];
        while let Some(s) = todo.pop() {
            for kind in [Subscribe, Subscribed, Unsubscribe, Unsubscribed] {
                for next in [outbound(s, kind).state, inbound(s, kind).state] {
                    if seen.insert(next) {
                        todo.push(next);
                    }
                }
            }
        }
        let mut want: HashSet<State> = State::all().into_iter().collect();
        for name in ["None", "None + Pending Out", "To"] {
            want.insert(pre_approved(state(name)));
        }
        let mut names: Vec<String> = seen.iter().map(State::name).collect();
        names.sort();
        assert_eq!(seen, want, "reached: {names:?}");
    }
}
