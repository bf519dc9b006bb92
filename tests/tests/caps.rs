//! XEP-0115 Entity Capabilities end to end: the server's `<c/>` stream feature, before and
//! after authentication, whose `ver` is the hash of the host's disco#info — checked by
//! slixmpp's own xep_0115 plugin (which asks for `NODE#VER` and hashes the answer) and by
//! the protocol crate's hash of the info fetched with raw bytes —, `NODE#VER` answered
//! with the same info, an unknown `ver` not, and a host with a module switched off having
//! its own `ver`.

use jabberwock_protocol::caps;
use jabberwock_protocol::xml::{parse_stanza, Element};
use jabberwock_tests::raw::STREAM_HEADER;
use jabberwock_tests::slix::SlixIm;
use jabberwock_tests::{RawClient, TestConfig, TestServer};

fn started(config: TestConfig) -> TestServer {
    let server = TestServer::start_with(config);
    server.wait_started();
    server.add_user("alice@localhost", "pw-alice");
    server
}

/// The `<c/>` of a features element (or of any text holding one), parsed.
fn caps_in(features: &str) -> caps::Caps {
    let start = features
        .find("<c xmlns=\"http://jabber.org/protocol/caps\"")
        .unwrap_or_else(|| panic!("no caps feature: {features}"));
    let end = start + features[start..].find("/>").expect("an empty <c/>") + 2;
    let el = parse_stanza(&features.as_bytes()[start..end]).expect("a well-formed <c/>");
    caps::Caps::parse(&el).expect("<c/> with node and ver")
}

fn header(host: &str) -> String {
    STREAM_HEADER.replace("to='localhost'", &format!("to='{host}'"))
}

/// The pre-authentication features of a stream to `host`: in clear, and once STARTTLS is
/// done.
async fn features_before_auth(server: &TestServer, host: &str) -> (String, String) {
    let mut client = RawClient::connect(server.c2s).await;
    client.send(header(host)).await;
    let clear = client.read_until("</stream:features>").await;
    client.starttls(&server.cert_path()).await;
    client.send(header(host)).await;
    (clear, client.read_until("</stream:features>").await)
}

/// A disco#info query to the server, `node` if given; returns the whole answer.
async fn disco_info(client: &mut RawClient, id: &str, node: Option<&str>) -> String {
    let node = node.map_or(String::new(), |n| format!(" node='{n}'"));
    client
        .send(format!(
            "<iq type='get' id='{id}' to='localhost'>\
             <query xmlns='http://jabber.org/protocol/disco#info'{node}/></iq>"
        ))
        .await;
    client.read_stanza_containing(&format!("id=\"{id}\"")).await
}

/// The `<query/>` of a disco#info result.
fn query_of(answer: &str) -> Element {
    let iq = parse_stanza(answer.as_bytes()).expect("a well-formed answer");
    assert_eq!(iq.attr("type"), Some("result"), "{answer}");
    iq.get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap_or_else(|| panic!("no query: {answer}"))
        .clone()
}

#[tokio::test]
async fn the_caps_feature_hashes_the_hosts_disco_info_and_node_ver_is_answered() {
    let server = started(TestConfig::default());
    // §6.3: offered before authentication and after; but not in clear where TLS is
    // mandatory-to-negotiate (the default), which is offered alone (RFC 6120 §5.3.1).
    let (clear, secured) = features_before_auth(&server, "localhost").await;
    assert!(
        !clear.contains("http://jabber.org/protocol/caps"),
        "{clear}"
    );
    let (mut alice, after_auth) =
        RawClient::login_standard_features(server.c2s, &server.cert_path(), "alice", "pw-alice")
            .await;
    let offered = caps_in(&after_auth);
    assert_eq!(caps_in(&secured), offered);
    assert_eq!(offered.hash.as_deref(), Some(caps::SHA_1));
    alice.bind_only("desk", "").await;

    // The ver is the hash of exactly what disco#info answers.
    let info = query_of(&disco_info(&mut alice, "d1", None).await);
    assert!(
        info.children()
            .any(|f| f.attr("var") == Some("urn:xmpp:ping")),
        "{info:?}"
    );
    assert_eq!(caps::ver(&info).unwrap(), offered.ver);

    // §6.2: NODE#VER is the same info, the node echoed.
    let node = offered.disco_node();
    let answer = disco_info(&mut alice, "d2", Some(&node)).await;
    let by_node = query_of(&answer);
    assert_eq!(by_node.attr("node"), Some(node.as_str()), "{answer}");
    assert_eq!(caps::ver(&by_node).unwrap(), offered.ver);
    assert_eq!(
        by_node.children().collect::<Vec<_>>(),
        info.children().collect::<Vec<_>>()
    );

    // A ver that is not ours (an older one, say) names nothing.
    let stale = format!("{}#QgayPKawpkPSDYmwT/WM94uAlu0=", offered.node);
    let answer = disco_info(&mut alice, "d3", Some(&stale)).await;
    assert!(
        answer.contains("type=\"error\"") && answer.contains("<item-not-found"),
        "{answer}"
    );
}

#[tokio::test]
async fn slixmpp_verifies_the_servers_caps_with_its_own_plugin() {
    let server = started(TestConfig::default());
    let offered = caps_in(&features_before_auth(&server, "localhost").await.1);
    let mut alice = SlixIm::spawn_script(
        "slix_caps.py",
        "alice@localhost/slix",
        "pw-alice",
        server.c2s.port(),
        &server.cert_path(),
    );
    alice.expect_all(&["session_start"]).await;
    let line = alice.expect_ever(&["\"server_caps\""]).await;
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    // What slixmpp read from the stream feature is what we offer, and its own hash of the
    // NODE#VER answer is that ver.
    assert_eq!(event["ver"], offered.ver.as_str(), "{line}");
    assert_eq!(event["node"], offered.node.as_str(), "{line}");
    assert_eq!(event["hash"], "sha-1", "{line}");
    assert_eq!(event["computed"], offered.ver.as_str(), "{line}");
    assert_eq!(
        event["echoed_node"],
        offered.disco_node().as_str(),
        "{line}"
    );
    let features = event["features"].as_array().expect("features");
    assert!(features.iter().any(|f| f == "urn:xmpp:ping"), "{line}");

    // The plugin's <c/> rides on the presence the server takes in (kept on the session);
    // the command returns once the server has reflected that presence to alice.
    alice.command(r#"{"cmd": "available"}"#).await;
    let wrong = format!(
        "{{\"cmd\": \"disco_node\", \"to\": \"localhost\", \"node\": \"{}#nope\"}}",
        offered.node
    );
    alice.command(&wrong).await;
    assert!(
        alice.seen(&["\"iq_error\"", "item-not-found"]),
        "{:?}",
        alice.events
    );
    assert!(alice.quit().await);
}

#[tokio::test]
async fn a_module_switched_off_for_a_host_changes_its_ver() {
    let server =
        started(TestConfig::default().host("quiet.localhost", "modules_disabled = [\"ping\"]"));
    let full = caps_in(&features_before_auth(&server, "localhost").await.1);
    let quiet = caps_in(&features_before_auth(&server, "quiet.localhost").await.1);
    assert_eq!(quiet.node, full.node);
    assert_ne!(quiet.ver, full.ver);

    // The quiet host's ver is localhost's info without ping's feature, hashed.
    let (mut alice, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "alice", "pw-alice", "desk")
            .await;
    let info = query_of(&disco_info(&mut alice, "d1", None).await);
    let mut without_ping = Element::new("query", "http://jabber.org/protocol/disco#info");
    for child in info.children() {
        if child.attr("var") != Some("urn:xmpp:ping") {
            without_ping.push_child(child.clone());
        }
    }
    assert_eq!(caps::ver(&info).unwrap(), full.ver);
    assert_eq!(caps::ver(&without_ping).unwrap(), quiet.ver);
}
