//! Regression: two users asking each other for a subscription at the same moment. Each
//! account's roster entry is read, changed and written back by whichever stanza gets
//! there; unless the read and the write are one storage transaction, the contact's incoming
//! request and the user's own outgoing one could overwrite each other and a pending request
//! was lost, so the pair never reached `both` (found by the load generator's presence
//! scenario). The storage tests race two stores on one database the same way.

mod im_support;

use im_support::{item_for, register, visible, Peer};
use jabberwock_tests::{TestConfig, TestServer};

const PAIRS: usize = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_mutual_subscriptions_reach_both() {
    let server =
        TestServer::start_with(TestConfig::default().host("localhost", "registration = true"));
    let cert = server.cert_path();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..PAIRS {
        let (addr, cert) = (server.c2s, cert.clone());
        tasks.spawn(async move {
            let (a, b) = (format!("racea{i}"), format!("raceb{i}"));
            register(addr, &cert, &a, "pw-race").await;
            register(addr, &cert, &b, "pw-race").await;
            let mut alice = Peer::login(addr, &cert, &a, "pw-race", "r").await;
            let mut bob = Peer::login(addr, &cert, &b, "pw-race", "r").await;
            let (alice_bare, bob_bare) = (alice.bare.clone(), bob.bare.clone());
            // Both requests leave before either side reads anything.
            let ask_bob = format!("<presence to='{bob_bare}' type='subscribe'/>");
            let ask_alice = format!("<presence to='{alice_bare}' type='subscribe'/>");
            tokio::join!(alice.send(&ask_bob), bob.send(&ask_alice));
            alice.sync().await;
            bob.sync().await;
            // Each approves the other's request; both pending requests must still exist.
            let ok_bob = format!("<presence to='{bob_bare}' type='subscribed'/>");
            let ok_alice = format!("<presence to='{alice_bare}' type='subscribed'/>");
            tokio::join!(alice.send(&ok_bob), bob.send(&ok_alice));
            alice.sync().await;
            bob.sync().await;
            let (roster_a, _) = alice.roster().await;
            let (roster_b, _) = bob.roster().await;
            (
                i,
                visible(item_for(&roster_a, &bob_bare).as_deref()),
                visible(item_for(&roster_b, &alice_bare).as_deref()),
            )
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (i, a, b) = done.expect("pair task");
        assert_eq!(
            a,
            ("both".to_owned(), false, false),
            "pair {i}: alice's item for bob"
        );
        assert_eq!(
            b,
            ("both".to_owned(), false, false),
            "pair {i}: bob's item for alice"
        );
    }
}
