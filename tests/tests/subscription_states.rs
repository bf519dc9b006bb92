//! Every row of RFC 6121's subscription state tables (Appendix A.2
//! outbound, A.3 inbound) and the §3.4 pre-approval rows, end to end: two real clients on a
//! real server, each row on its own fresh pair of accounts (alice, and her contact bob).
//!
//! For each row the pair is brought into the row's state by client actions only, the state
//! is checked (alice's roster item, and bob's, whose `ask` is alice's "Pending In"), then
//! alice sends the row's stanza to bob (outbound rows) or bob sends it to alice (inbound
//! rows), and the test asserts alice's new state, the roster push alice's interested
//! resource got (or that it got none), the subscription stanzas each client was handed (or
//! that none was), the presence side effects §3.1.5 / §3.2.2 require, and finally — by
//! logging alice in again — whether a subscription request from bob is still pending.
//!
//! Both accounts live on one server, so what bob's client receives after alice's stanza is
//! the result of both tables: A.2 (alice's server routes it or not) then A.3 on bob's side
//! (bob's state is the mirror image of alice's: her "Pending Out" is his "Pending In"). The
//! expected values below are written out by hand from the RFC for that end-to-end view.
//!
//! Absence is asserted with a ping barrier (see im_support), not with timeouts.

mod im_support;

use std::sync::Arc;

use im_support::{item_for, presence_from, pushes, register, visible, Peer};
use jabberwock_tests::{TestConfig, TestServer};
use tokio::sync::Semaphore;

const PASSWORD: &str = "pw-secret";

/// Who sends the row's stanza.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dir {
    /// Alice sends it to bob (Appendix A.2 at alice's server, then A.3 at bob's).
    Out,
    /// Bob sends it to alice (A.2 at bob's server, then A.3 at alice's).
    In,
}
use Dir::{In, Out};

/// A presence side effect the RFC requires besides the subscription stanza.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Nothing,
    /// §3.1.5: the approver's server sends the approver's current presence to the new
    /// subscriber, after `subscribed`. (Alice approves, or alice's server auto-approves.)
    BobSeesAliceAvailable,
    AliceSeesBobAvailable,
    /// §3.2.2: a cancelled subscriber first gets unavailable from all the canceller's
    /// resources, then `unsubscribed`.
    BobSeesAliceUnavailable,
    AliceSeesBobUnavailable,
}
use Side::*;

const PUSH: bool = true;
const NO_PUSH: bool = false;
const SAME: &str = "(no state change)";

/// (direction, alice's state, presence type sent, alice's new state, push to alice,
/// subscription stanza alice's client gets, the one bob's client gets, side effect)
type Row = (
    Dir,
    &'static str,
    &'static str,
    &'static str,
    bool,
    Option<&'static str>,
    Option<&'static str>,
    Side,
);

#[rustfmt::skip]
const ROWS: &[Row] = &[
    // A.2.1 alice sends subscribe. Bob's client sees it only where A.3.1 says deliver for
    // bob's (mirror) state; where alice is already subscribed, bob's server answers
    // `subscribed` itself and alice's server drops that answer (A.3.3: no state change).
    (Out, "None",                  "subscribe", "None + Pending Out",    PUSH,    None, Some("subscribe"), Nothing),
    (Out, "None + Pending Out",    "subscribe", SAME,                    NO_PUSH, None, None,              Nothing),
    (Out, "None + Pending In",     "subscribe", "None + Pending Out/In", PUSH,    None, Some("subscribe"), Nothing),
    (Out, "None + Pending Out/In", "subscribe", SAME,                    NO_PUSH, None, None,              Nothing),
    (Out, "To",                    "subscribe", SAME,                    NO_PUSH, None, None,              Nothing),
    (Out, "To + Pending In",       "subscribe", SAME,                    NO_PUSH, None, None,              Nothing),
    (Out, "From",                  "subscribe", "From + Pending Out",    PUSH,    None, Some("subscribe"), Nothing),
    (Out, "From + Pending Out",    "subscribe", SAME,                    NO_PUSH, None, None,              Nothing),
    (Out, "Both",                  "subscribe", SAME,                    NO_PUSH, None, None,              Nothing),
    // A.2.2 alice sends unsubscribe.
    (Out, "None",                  "unsubscribe", SAME,                  NO_PUSH, None, None,                Nothing),
    (Out, "None + Pending Out",    "unsubscribe", "None",                PUSH,    None, Some("unsubscribe"), Nothing),
    (Out, "None + Pending In",     "unsubscribe", SAME,                  NO_PUSH, None, None,                Nothing),
    (Out, "None + Pending Out/In", "unsubscribe", "None + Pending In",   PUSH,    None, Some("unsubscribe"), Nothing),
    (Out, "To",                    "unsubscribe", "None",                PUSH,    None, Some("unsubscribe"), Nothing),
    (Out, "To + Pending In",       "unsubscribe", "None + Pending In",   PUSH,    None, Some("unsubscribe"), Nothing),
    (Out, "From",                  "unsubscribe", SAME,                  NO_PUSH, None, None,                Nothing),
    (Out, "From + Pending Out",    "unsubscribe", "From",                PUSH,    None, Some("unsubscribe"), Nothing),
    (Out, "Both",                  "unsubscribe", "From",                PUSH,    None, Some("unsubscribe"), Nothing),
    // A.2.3 alice sends subscribed. With no request to answer (None, None + Pending Out,
    // To) the table says "no state change, not routed"; §3.4 makes it a pre-approval,
    // pushed with approved='true'.
    (Out, "None",                  "subscribed", "None (pre-approved)",               PUSH,    None, None,               Nothing),
    (Out, "None + Pending Out",    "subscribed", "None + Pending Out (pre-approved)", PUSH,    None, None,               Nothing),
    (Out, "None + Pending In",     "subscribed", "From",                              PUSH,    None, Some("subscribed"), BobSeesAliceAvailable),
    (Out, "None + Pending Out/In", "subscribed", "From + Pending Out",                PUSH,    None, Some("subscribed"), BobSeesAliceAvailable),
    (Out, "To",                    "subscribed", "To (pre-approved)",                 PUSH,    None, None,               Nothing),
    (Out, "To + Pending In",       "subscribed", "Both",                              PUSH,    None, Some("subscribed"), BobSeesAliceAvailable),
    (Out, "From",                  "subscribed", SAME,                                NO_PUSH, None, None,               Nothing),
    (Out, "From + Pending Out",    "subscribed", SAME,                                NO_PUSH, None, None,               Nothing),
    (Out, "Both",                  "subscribed", SAME,                                NO_PUSH, None, None,               Nothing),
    // A.2.4 alice sends unsubscribed. Refusing a request changes nothing alice's roster
    // shows (Pending In is not in the roster), so no push there.
    (Out, "None",                  "unsubscribed", SAME,                 NO_PUSH, None, None,                 Nothing),
    (Out, "None + Pending Out",    "unsubscribed", SAME,                 NO_PUSH, None, None,                 Nothing),
    (Out, "None + Pending In",     "unsubscribed", "None",               NO_PUSH, None, Some("unsubscribed"), Nothing),
    (Out, "None + Pending Out/In", "unsubscribed", "None + Pending Out", NO_PUSH, None, Some("unsubscribed"), Nothing),
    (Out, "To",                    "unsubscribed", SAME,                 NO_PUSH, None, None,                 Nothing),
    (Out, "To + Pending In",       "unsubscribed", "To",                 NO_PUSH, None, Some("unsubscribed"), Nothing),
    (Out, "From",                  "unsubscribed", "None",               PUSH,    None, Some("unsubscribed"), BobSeesAliceUnavailable),
    (Out, "From + Pending Out",    "unsubscribed", "None + Pending Out", PUSH,    None, Some("unsubscribed"), BobSeesAliceUnavailable),
    (Out, "Both",                  "unsubscribed", "To",                 PUSH,    None, Some("unsubscribed"), BobSeesAliceUnavailable),

    // A.3.1 bob sends subscribe. Delivered to alice only when new; where alice already
    // grants `from`, her server answers `subscribed` itself, which bob's server drops
    // (bob is already subscribed: A.3.3 no state change), so neither client sees a stanza.
    (In, "None",                  "subscribe", "None + Pending In",     NO_PUSH, Some("subscribe"), None, Nothing),
    (In, "None + Pending Out",    "subscribe", "None + Pending Out/In", NO_PUSH, Some("subscribe"), None, Nothing),
    (In, "None + Pending In",     "subscribe", SAME,                    NO_PUSH, None,              None, Nothing),
    (In, "None + Pending Out/In", "subscribe", SAME,                    NO_PUSH, None,              None, Nothing),
    (In, "To",                    "subscribe", "To + Pending In",       NO_PUSH, Some("subscribe"), None, Nothing),
    (In, "To + Pending In",       "subscribe", SAME,                    NO_PUSH, None,              None, Nothing),
    (In, "From",                  "subscribe", SAME,                    NO_PUSH, None,              None, Nothing),
    (In, "From + Pending Out",    "subscribe", SAME,                    NO_PUSH, None,              None, Nothing),
    (In, "Both",                  "subscribe", SAME,                    NO_PUSH, None,              None, Nothing),
    // A.3.2 bob sends unsubscribe.
    (In, "None",                  "unsubscribe", SAME,                 NO_PUSH, None,                None, Nothing),
    (In, "None + Pending Out",    "unsubscribe", SAME,                 NO_PUSH, None,                None, Nothing),
    (In, "None + Pending In",     "unsubscribe", "None",               NO_PUSH, Some("unsubscribe"), None, Nothing),
    (In, "None + Pending Out/In", "unsubscribe", "None + Pending Out", NO_PUSH, Some("unsubscribe"), None, Nothing),
    (In, "To",                    "unsubscribe", SAME,                 NO_PUSH, None,                None, Nothing),
    (In, "To + Pending In",       "unsubscribe", "To",                 NO_PUSH, Some("unsubscribe"), None, Nothing),
    (In, "From",                  "unsubscribe", "None",               PUSH,    Some("unsubscribe"), None, Nothing),
    (In, "From + Pending Out",    "unsubscribe", "None + Pending Out", PUSH,    Some("unsubscribe"), None, Nothing),
    (In, "Both",                  "unsubscribe", "To",                 PUSH,    Some("unsubscribe"), None, Nothing),
    // A.3.3 bob sends subscribed. Only an answer to alice's open request reaches her;
    // otherwise bob's own server (A.2.3) keeps it as bob's pre-approval or drops it.
    (In, "None",                  "subscribed", SAME,              NO_PUSH, None,               None, Nothing),
    (In, "None + Pending Out",    "subscribed", "To",              PUSH,    Some("subscribed"), None, AliceSeesBobAvailable),
    (In, "None + Pending In",     "subscribed", SAME,              NO_PUSH, None,               None, Nothing),
    (In, "None + Pending Out/In", "subscribed", "To + Pending In", PUSH,    Some("subscribed"), None, AliceSeesBobAvailable),
    (In, "To",                    "subscribed", SAME,              NO_PUSH, None,               None, Nothing),
    (In, "To + Pending In",       "subscribed", SAME,              NO_PUSH, None,               None, Nothing),
    (In, "From",                  "subscribed", SAME,              NO_PUSH, None,               None, Nothing),
    (In, "From + Pending Out",    "subscribed", "Both",            PUSH,    Some("subscribed"), None, AliceSeesBobAvailable),
    (In, "Both",                  "subscribed", SAME,              NO_PUSH, None,               None, Nothing),
    // A.3.4 bob sends unsubscribed.
    (In, "None",                  "unsubscribed", SAME,                NO_PUSH, None,                 None, Nothing),
    (In, "None + Pending Out",    "unsubscribed", "None",              PUSH,    Some("unsubscribed"), None, Nothing),
    (In, "None + Pending In",     "unsubscribed", SAME,                NO_PUSH, None,                 None, Nothing),
    (In, "None + Pending Out/In", "unsubscribed", "None + Pending In", PUSH,    Some("unsubscribed"), None, Nothing),
    (In, "To",                    "unsubscribed", "None",              PUSH,    Some("unsubscribed"), None, AliceSeesBobUnavailable),
    (In, "To + Pending In",       "unsubscribed", "None + Pending In", PUSH,    Some("unsubscribed"), None, AliceSeesBobUnavailable),
    (In, "From",                  "unsubscribed", SAME,                NO_PUSH, None,                 None, Nothing),
    (In, "From + Pending Out",    "unsubscribed", "From",              PUSH,    Some("unsubscribed"), None, Nothing),
    (In, "Both",                  "unsubscribed", "From",              PUSH,    Some("unsubscribed"), None, AliceSeesBobUnavailable),

    // §3.4 pre-approval: alice sent `subscribed` with no request to answer.
    // Bob's request is approved on the spot: `from` granted, the flag used up, bob gets
    // `subscribed` (and alice's presence, §3.1.5), alice gets a push and no request.
    (In,  "None (pre-approved)",               "subscribe", "From",               PUSH, None, Some("subscribed"), BobSeesAliceAvailable),
    (In,  "None + Pending Out (pre-approved)", "subscribe", "From + Pending Out", PUSH, None, Some("subscribed"), BobSeesAliceAvailable),
    (In,  "To (pre-approved)",                 "subscribe", "Both",               PUSH, None, Some("subscribed"), BobSeesAliceAvailable),
    // §3.2.2 item 2: unsubscribed cancels the pre-approval; nothing is routed.
    (Out, "None (pre-approved)",               "unsubscribed", "None",               PUSH, None, None, Nothing),
    (Out, "None + Pending Out (pre-approved)", "unsubscribed", "None + Pending Out", PUSH, None, None, Nothing),
    (Out, "To (pre-approved)",                 "unsubscribed", "To",                 PUSH, None, None, Nothing),
    // A second pre-approval changes nothing.
    (Out, "None (pre-approved)",               "subscribed", SAME, NO_PUSH, None, None, Nothing),
    (Out, "None + Pending Out (pre-approved)", "subscribed", SAME, NO_PUSH, None, None, Nothing),
    (Out, "To (pre-approved)",                 "subscribed", SAME, NO_PUSH, None, None, Nothing),
];

/// Alice's side of a state: roster subscription, ask (Pending Out), Pending In, approved.
#[derive(Clone, Copy, Debug, PartialEq)]
struct St {
    sub: &'static str,
    ask: bool,
    pending_in: bool,
    approved: bool,
}

/// The Appendix A.1 states (and the §3.4 pre-approved ones), by name.
fn state(name: &str) -> St {
    let st = |sub, ask, pending_in, approved| St {
        sub,
        ask,
        pending_in,
        approved,
    };
    match name {
        "None" => st("none", false, false, false),
        "None + Pending Out" => st("none", true, false, false),
        "None + Pending In" => st("none", false, true, false),
        "None + Pending Out/In" => st("none", true, true, false),
        "To" => st("to", false, false, false),
        "To + Pending In" => st("to", false, true, false),
        "From" => st("from", false, false, false),
        "From + Pending Out" => st("from", true, false, false),
        "Both" => st("both", false, false, false),
        "None (pre-approved)" => st("none", false, false, true),
        "None + Pending Out (pre-approved)" => st("none", true, false, true),
        "To (pre-approved)" => st("to", false, false, true),
        other => panic!("no state {other:?}"),
    }
}

/// Bob's roster item for alice mirrors alice's state: her `to` is his `from`, her Pending In
/// is his `ask`.
fn mirror(st: St) -> (String, bool) {
    let sub = match st.sub {
        "to" => "from",
        "from" => "to",
        s => s,
    };
    (sub.to_owned(), st.pending_in)
}

/// Client actions that lead from "None" to `name`: (alice acts?, presence type).
fn setup(name: &str) -> &'static [(bool, &'static str)] {
    const A: bool = true;
    const B: bool = false;
    match name {
        "None" => &[],
        "None + Pending Out" => &[(A, "subscribe")],
        "None + Pending In" => &[(B, "subscribe")],
        "None + Pending Out/In" => &[(A, "subscribe"), (B, "subscribe")],
        "To" => &[(A, "subscribe"), (B, "subscribed")],
        "To + Pending In" => &[(A, "subscribe"), (B, "subscribed"), (B, "subscribe")],
        "From" => &[(B, "subscribe"), (A, "subscribed")],
        "From + Pending Out" => &[(B, "subscribe"), (A, "subscribed"), (A, "subscribe")],
        "Both" => &[
            (A, "subscribe"),
            (B, "subscribed"),
            (B, "subscribe"),
            (A, "subscribed"),
        ],
        "None (pre-approved)" => &[(A, "subscribed")],
        "None + Pending Out (pre-approved)" => &[(A, "subscribe"), (A, "subscribed")],
        "To (pre-approved)" => &[(A, "subscribe"), (B, "subscribed"), (A, "subscribed")],
        other => panic!("no setup for {other:?}"),
    }
}

fn presence(to: &str, kind: &str) -> String {
    format!("<presence to='{to}' type='{kind}'/>")
}

/// Subscription stanzas (the four types) among `stanzas` from `from_bare`.
fn subscription_stanzas(stanzas: &[String], from_bare: &str) -> Vec<String> {
    presence_from(stanzas, from_bare)
        .into_iter()
        .filter_map(|s| im_support::attr(s, "type"))
        .filter(|t| {
            ["subscribe", "subscribed", "unsubscribe", "unsubscribed"].contains(&t.as_str())
        })
        .collect()
}

/// Position of the first presence from `from_bare` (bare or one of its resources) that
/// satisfies `pred`.
fn position(stanzas: &[String], from_bare: &str, pred: impl Fn(&str) -> bool) -> Option<usize> {
    stanzas.iter().position(|s| {
        s.starts_with("<presence")
            && im_support::attr(s, "from")
                .is_some_and(|f| f == from_bare || f.starts_with(&format!("{from_bare}/")))
            && pred(s)
    })
}

fn is_type(s: &str, kind: Option<&str>) -> bool {
    im_support::attr(s, "type").as_deref() == kind
}

struct Ctx {
    addr: std::net::SocketAddr,
    cert: std::path::PathBuf,
}

/// Checks alice's roster item and bob's item for alice against `st`.
async fn check_state(row: &str, when: &str, alice: &mut Peer, bob: &mut Peer, st: St) {
    let (roster, _) = alice.roster().await;
    let item = item_for(&roster, &bob.bare);
    assert_eq!(
        visible(item.as_deref()),
        (st.sub.to_owned(), st.ask, st.approved),
        "[{row}] {when}: alice's item for bob (subscription, ask, approved) in {roster}"
    );
    let (roster, _) = bob.roster().await;
    let item = item_for(&roster, &alice.bare);
    let (sub, ask, _) = visible(item.as_deref());
    assert_eq!(
        (sub, ask),
        mirror(st),
        "[{row}] {when}: bob's item for alice (subscription, ask = alice's Pending In) in {roster}"
    );
}

async fn run_row(ctx: Arc<Ctx>, index: usize, r: Row) {
    let (dir, before_name, kind, after_name, push, alice_gets, bob_gets, side) = r;
    let row = format!("{dir:?} {kind} in {before_name:?}");
    let (a, b) = (format!("alice{index}"), format!("bob{index}"));
    tokio::join!(
        register(ctx.addr, &ctx.cert, &a, PASSWORD),
        register(ctx.addr, &ctx.cert, &b, PASSWORD)
    );
    let (mut alice, mut bob) = tokio::join!(
        Peer::login(ctx.addr, &ctx.cert, &a, PASSWORD, "res"),
        Peer::login(ctx.addr, &ctx.cert, &b, PASSWORD, "res")
    );
    // Both ask for the roster: their resources are interested and get pushes.
    alice.roster().await;
    bob.roster().await;

    for &(alice_acts, step) in setup(before_name) {
        let (actor, other) = if alice_acts {
            (&mut alice, &mut bob)
        } else {
            (&mut bob, &mut alice)
        };
        let to = other.bare.clone();
        actor.send(presence(&to, step)).await;
        actor.sync().await;
        other.sync().await;
    }
    let before = state(before_name);
    check_state(&row, "before", &mut alice, &mut bob, before).await;

    // The row's stanza.
    let (to_alice, to_bob) = match dir {
        Out => {
            let to = bob.bare.clone();
            alice.send(presence(&to, kind)).await;
            let a = alice.sync().await;
            (a, bob.sync().await)
        }
        In => {
            let to = alice.bare.clone();
            bob.send(presence(&to, kind)).await;
            let b = bob.sync().await;
            (alice.sync().await, b)
        }
    };
    let after = if after_name == SAME {
        before
    } else {
        state(after_name)
    };

    // The roster push alice's interested resource got, with the new item.
    let alice_pushes = pushes(&to_alice);
    if push {
        assert_eq!(
            alice_pushes.len(),
            1,
            "[{row}] alice should get exactly one roster push: {to_alice:?}"
        );
        let item = item_for(alice_pushes[0], &bob.bare);
        assert_eq!(
            visible(item.as_deref()),
            (after.sub.to_owned(), after.ask, after.approved),
            "[{row}] pushed item (subscription, ask, approved): {}",
            alice_pushes[0]
        );
    } else {
        assert!(
            alice_pushes.is_empty(),
            "[{row}] alice should get no roster push: {alice_pushes:?}"
        );
    }

    // The subscription stanzas each client was handed.
    let want = |k: Option<&str>| k.map(str::to_owned).into_iter().collect::<Vec<_>>();
    assert_eq!(
        subscription_stanzas(&to_alice, &bob.bare),
        want(alice_gets),
        "[{row}] subscription stanzas delivered to alice: {to_alice:?}"
    );
    assert_eq!(
        subscription_stanzas(&to_bob, &alice.bare),
        want(bob_gets),
        "[{row}] subscription stanzas delivered to bob: {to_bob:?}"
    );

    // Presence side effects, in the RFC's order.
    let check_side = |stanzas: &[String], from: &str, kind: &str, available: bool| {
        let sub = position(stanzas, from, |s| is_type(s, Some(kind)));
        let pres = position(stanzas, from, |s| {
            is_type(s, if available { None } else { Some("unavailable") })
        });
        match (sub, pres) {
            (Some(sub), Some(pres)) if available => assert!(
                pres > sub,
                "[{row}] §3.1.5: presence after `subscribed`: {stanzas:?}"
            ),
            (Some(sub), Some(pres)) => assert!(
                pres < sub,
                "[{row}] §3.2.2: unavailable before `unsubscribed`: {stanzas:?}"
            ),
            _ => panic!(
                "[{row}] expected {} presence from {from}: {stanzas:?}",
                if available {
                    "available"
                } else {
                    "unavailable"
                }
            ),
        }
    };
    match side {
        Nothing => {}
        BobSeesAliceAvailable => check_side(&to_bob, &alice.bare, "subscribed", true),
        AliceSeesBobAvailable => check_side(&to_alice, &bob.bare, "subscribed", true),
        BobSeesAliceUnavailable => check_side(&to_bob, &alice.bare, "unsubscribed", false),
        AliceSeesBobUnavailable => check_side(&to_alice, &bob.bare, "unsubscribed", false),
    }
    // Nobody is told the other went offline unless a subscription was cancelled.
    if kind == "subscribe" || kind == "subscribed" {
        for (stanzas, from, who) in [
            (&to_alice, &bob.bare, "alice"),
            (&to_bob, &alice.bare, "bob"),
        ] {
            assert_eq!(
                position(stanzas, from, |s| is_type(s, Some("unavailable"))),
                None,
                "[{row}] {who} got an unavailable presence: {stanzas:?}"
            );
        }
    }

    check_state(&row, "after", &mut alice, &mut bob, after).await;

    // Alice's own server's view of Pending In: a request still pending is handed to her
    // next resource at its initial presence (§3.1.3); an answered or withdrawn one is not.
    let mut again = Peer::login(ctx.addr, &ctx.cert, &a, PASSWORD, "again").await;
    let at_login = again.sync().await;
    let requests: Vec<_> = subscription_stanzas(&at_login, &bob.bare);
    assert_eq!(
        requests,
        want(after.pending_in.then_some("subscribe")),
        "[{row}] request from bob re-delivered at alice's next login: {at_login:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_the_subscription_tables_end_to_end() {
    let server = TestServer::start_with(
        TestConfig::default()
            .c2s("handshake_timeout = 10")
            .host("localhost", "registration = true"),
    );
    let ctx = Arc::new(Ctx {
        addr: server.c2s,
        cert: server.cert_path(),
    });
    // Rows run concurrently on one server, each with its own accounts.
    let limit = Arc::new(Semaphore::new(12));
    let mut rows = tokio::task::JoinSet::new();
    for (index, &row) in ROWS.iter().enumerate() {
        let (ctx, limit) = (ctx.clone(), limit.clone());
        rows.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            run_row(ctx, index, row).await;
        });
    }
    let mut failures = Vec::new();
    while let Some(result) = rows.join_next().await {
        if let Err(e) = result {
            failures.push(match e.try_into_panic() {
                Ok(p) => p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
                Err(e) => e.to_string(),
            });
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        ROWS.len(),
        failures.join("\n")
    );
}

/// The table covers each (direction, kind, Appendix A state) exactly once, plus the
/// pre-approval rows.
#[test]
fn the_table_is_complete() {
    let names = [
        "None",
        "None + Pending Out",
        "None + Pending In",
        "None + Pending Out/In",
        "To",
        "To + Pending In",
        "From",
        "From + Pending Out",
        "Both",
    ];
    for dir in [Out, In] {
        for kind in ["subscribe", "subscribed", "unsubscribe", "unsubscribed"] {
            for name in names {
                let n = ROWS
                    .iter()
                    .filter(|r| r.0 == dir && r.2 == kind && r.1 == name)
                    .count();
                assert_eq!(n, 1, "{dir:?} {kind} in {name:?}");
            }
        }
    }
    assert_eq!(ROWS.len(), 72 + 9);
    for r in ROWS {
        state(r.1);
        setup(r.1);
        if r.3 != SAME {
            state(r.3);
        }
    }
}
