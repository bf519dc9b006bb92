//! Federation with Debian's ejabberd 23.01: Jabberwock serves `a.test`, ejabberd `c.test`,
//! each on its own loopback address; both find the other through the test's nameserver
//! (SRV for c.test, the A record for a.test). The same IM scenario as with Prosody
//! ([`federate_with`]) runs twice: over XEP-0220 dialback after STARTTLS (ejabberd's
//! mod_s2s_dialback, the certificates being self-signed), and over SASL EXTERNAL
//! (XEP-0178) with certificates a test CA issued, both sides trusting that CA (ejabberd's
//! `ca_file`) and ejabberd without its dialback module. slixmpp logs in on each side.

use jabberwock_tests::ejabberd::Ejabberd;
use jabberwock_tests::peer::{federate_with, Method, Peer};

#[tokio::test]
async fn ejabberd_and_jabberwock_users_subscribe_see_presence_chat_and_share_a_room() {
    federate_with_ejabberd(65, Method::Dialback, "dialback").await;
}

#[tokio::test]
async fn ejabberd_and_jabberwock_federate_over_sasl_external_with_certificates_of_a_test_ca() {
    federate_with_ejabberd(66, Method::External, "EXTERNAL").await;
}

/// [`federate_with`] ejabberd serving c.test on 127.0.`net`.2; then ejabberd's log must
/// agree: every stream it accepted from us and opened to us, for a.test and for
/// conference.a.test, authenticated by `mechanism` (its name for `method`).
async fn federate_with_ejabberd(net: u8, method: Method, mechanism: &str) {
    let (_a, ejabberd) = federate_with(net, method, "c.test", |ip, dns, tls| {
        Ejabberd::start("c.test", ip, dns, tls)
    })
    .await;
    for ours in ["a.test", "conference.a.test"] {
        for needle in [
            format!("Accepted inbound s2s {mechanism} authentication {ours} -> c.test"),
            format!("Accepted outbound s2s {mechanism} authentication c.test -> {ours}"),
        ] {
            assert!(
                ejabberd.wait_log(&needle),
                "no {needle:?} in ejabberd's log"
            );
        }
    }
}
