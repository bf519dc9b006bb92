//! Federation with a server we did not write: Jabberwock serves `a.test`, Debian's Prosody
//! 0.12 `b.test`, each on its own loopback address; both find the other through the test's
//! nameserver (SRV for b.test, the A record for a.test). The same IM scenario runs twice
//! ([`federate_with`]): over XEP-0220 dialback after STARTTLS (Prosody's mod_dialback;
//! `s2s_secure_auth = false`, the certificates being self-signed), and over SASL EXTERNAL
//! (XEP-0178) with certificates a test CA issued, both sides trusting that CA and requiring
//! them (Prosody's `s2s_secure_auth = true`, our `require_valid_certificate` and no
//! dialback). slixmpp logs in on each side.

use jabberwock_tests::peer::{federate_with, Method, Peer};
use jabberwock_tests::prosody::Prosody;

#[tokio::test]
async fn prosody_and_jabberwock_users_subscribe_see_presence_chat_and_share_a_room() {
    federate_with(50, Method::Dialback, "b.test", |ip, dns, tls| {
        Prosody::start("b.test", ip, dns, tls, "")
    })
    .await;
}

#[tokio::test]
async fn prosody_and_jabberwock_federate_over_sasl_external_with_certificates_of_a_test_ca() {
    let (_a, prosody) = federate_with(51, Method::External, "b.test", |ip, dns, tls| {
        Prosody::start("b.test", ip, dns, tls, "")
    })
    .await;
    // Prosody's mod_saslauth logs its side of both directions.
    for needle in [
        "Accepting SASL EXTERNAL identity from a.test",
        "Accepting SASL EXTERNAL identity from conference.a.test",
        "SASL EXTERNAL with a.test succeeded",
        "SASL EXTERNAL with conference.a.test succeeded",
    ] {
        assert!(prosody.wait_log(needle), "no {needle:?} in Prosody's log");
    }
}
