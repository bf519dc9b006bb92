//! The server's own chat page (`http.chat_path`), i.e. Converse.js from
//! the npm package (tests/browser/node_modules/converse.js, served by the server itself from
//! `http.chat_assets`), in headless Debian Chromium driven by playwright-core through
//! tests/browser/web_chat.mjs, loaded over https:// from the HTTPS listener. alice logs in
//! over RFC 7395 WebSocket (`wss://…/xmpp-websocket`), bob over BOSH (`https://…/http-bind`),
//! both through Converse's login form. They see each other's
//! presence and exchange messages with each other, with carol on a standard TCP client
//! (STARTTLS) and with dave on a Flash XMLSocket client (NUL framing), and the test keeps
//! a screenshot of each chat page. No IQ Converse sends at login gets service-unavailable,
//! but for its PEP reads (no PEP yet).
//! Needs `chromium` (Debian) and `npm ci` in tests/browser:
//! .ci/run installs them; a missing tool fails the test.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use jabberwock_tests::browser::{start_with_chat_page, NodeRun};
use jabberwock_tests::{RawClient, TestServer};

/// The whole browser run: Chromium start, Converse's load and login, the chat.
const BROWSER_DEADLINE: Duration = Duration::from_secs(120);
const PASSWORD: &str = "looking-glass";
const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Makes every two of [`USERS`] mutual contacts (subscription both, RFC 6121 §3.1), from
/// standard TCP sessions that then log out.
async fn befriend_everyone(server: &TestServer) {
    let mut clients = Vec::new();
    for user in USERS {
        let (client, _) =
            RawClient::login_standard(server.c2s, &server.cert_path(), user, PASSWORD, "setup")
                .await;
        clients.push(client);
    }
    for i in 0..USERS.len() {
        for (j, &y) in USERS.iter().enumerate().skip(i + 1) {
            let x = USERS[i];
            let (left, right) = clients.split_at_mut(j);
            let (cx, cy) = (&mut left[i], &mut right[0]);
            cx.send(format!("<presence to='{y}@localhost' type='subscribe'/>"))
                .await;
            presence_from(cy, &format!("{x}@localhost"), "subscribe").await;
            cy.send(format!(
                "<presence to='{x}@localhost' type='subscribed'/><presence to='{x}@localhost' type='subscribe'/>"
            ))
            .await;
            presence_from(cx, &format!("{y}@localhost"), "subscribe").await;
            cx.send(format!("<presence to='{y}@localhost' type='subscribed'/>"))
                .await;
            // Delivered once y's roster has taken it in (RFC 6121 §3.1.6).
            presence_from(cy, &format!("{x}@localhost"), "subscribed").await;
        }
    }
    for mut client in clients {
        client.send("</stream:stream>").await;
        client.read_to_close().await;
    }
}

/// Waits for a presence stanza of `kind` from the bare JID `from`.
async fn presence_from(client: &mut RawClient, from: &str, kind: &str) -> String {
    let (from, kind) = (format!("from=\"{from}\""), format!("type=\"{kind}\""));
    loop {
        let stanza = client.read_stanza_containing("<presence").await;
        if stanza.contains(&from) && stanza.contains(&kind) {
            return stanza;
        }
    }
}

/// The next message with a body from `from` (bare JID) to a raw client; Converse's chat
/// state notifications (XEP-0085, no body) are skipped.
async fn message_from(client: &mut RawClient, from: &str) -> String {
    let needle = format!("from=\"{from}/");
    loop {
        let stanza = client.read_stanza_containing("<message").await;
        if stanza.contains(&needle) && stanza.contains("<body>") {
            return stanza;
        }
    }
}

#[tokio::test]
async fn converse_over_websocket_and_bosh_chats_with_each_other_tcp_and_flash() {
    let server = start_with_chat_page();
    for user in USERS {
        server.add_user(&format!("{user}@localhost"), PASSWORD);
    }
    befriend_everyone(&server).await;
    // The HTTPS listener, as a deployment serves the page: https://, wss:// and BOSH over
    // https (Chromium offers ALPN h2 and http/1.1, and the self-signed certificate is
    // accepted by --ignore-certificate-errors).
    let http = server.listening("https").expect("the HTTPS listener");

    // carol on TCP, dave on Flash: online before the browsers come, so Converse's probes
    // find them.
    let (mut carol, _) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "carol", PASSWORD, "tcp").await;
    let (mut dave, _) = RawClient::login_flash(server.c2s, "dave", PASSWORD, "flash").await;

    // Kept after the run (target/tmp/web-chat-*.png), to look at.
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for name in ["web-chat-alice-websocket.png", "web-chat-bob-bosh.png"] {
        let _ = std::fs::remove_file(shots.join(name));
    }
    let https = format!("https://{http}");
    let mut browser = NodeRun::spawn(
        "web_chat.mjs",
        &[
            "--base".as_ref(),
            https.as_ref(),
            "--chat-path".as_ref(),
            "/chat".as_ref(),
            "--domain".as_ref(),
            "localhost".as_ref(),
            "--ws-user".as_ref(),
            "alice".as_ref(),
            "--ws-pass".as_ref(),
            PASSWORD.as_ref(),
            "--bosh-user".as_ref(),
            "bob".as_ref(),
            "--bosh-pass".as_ref(),
            PASSWORD.as_ref(),
            "--peers".as_ref(),
            "carol@localhost,dave@localhost".as_ref(),
            "--screenshot-dir".as_ref(),
            shots.as_os_str(),
            "--timeout".as_ref(),
            "90".as_ref(),
        ],
    );

    let to_browser = |from: &str, to: &str, transport: &str| {
        format!("{from} to {to} over {transport}: héllo <&> ✓")
    };
    let mut events: Vec<serde_json::Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + BROWSER_DEADLINE;
    while let Some(event) = browser.next_json(deadline).await {
        if event["kind"] == "ready" {
            // Both browser users are online and see everyone: TCP and Flash write to them.
            for to in ["alice", "bob"] {
                let body = escape(&to_browser("carol", to, "tcp"));
                carol
                    .send(format!(
                        "<message type='chat' to='{to}@localhost' id='c-{to}'><body>{body}</body></message>"
                    ))
                    .await;
                let body = escape(&to_browser("dave", to, "flash"));
                dave.send(format!(
                    "<message type=\"chat\" to=\"{to}@localhost\" id=\"d-{to}\"><body>{body}</body></message>\0"
                ))
                .await;
            }
        }
        events.push(event);
    }
    let (status, console) = browser.finish().await;
    let transcript = events
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let context = format!(
        "events:\n{transcript}\nbrowser console:\n{console}\nserver log:\n{}",
        server.log_text()
    );
    assert!(
        status.success(),
        "the browser run failed ({status})\n{context}"
    );

    let find = |who: &str, kind: &str| -> Vec<&serde_json::Value> {
        events
            .iter()
            .filter(|e| e["who"] == who && e["kind"] == kind)
            .collect()
    };
    // The chat page, served by us, and each user on the transport asked for.
    for who in ["alice", "bob"] {
        let page = find(who, "page");
        assert_eq!(page.len(), 1, "{context}");
        assert_eq!(page[0]["status"], 200, "{context}");
        assert_eq!(page[0]["title"], "Chat on localhost", "{context}");
    }
    let service = |who| {
        find(who, "connected")[0]["service"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        service("alice"),
        format!("wss://{http}/xmpp-websocket"),
        "{context}"
    );
    assert_eq!(
        service("bob"),
        format!("https://{http}/http-bind"),
        "{context}"
    );

    // Presence: each sees the other browser user and the TCP and Flash users online.
    let online = |who: &str| -> BTreeMap<String, String> {
        find(who, "presence")
            .iter()
            .map(|e| {
                (
                    e["from"].as_str().unwrap_or_default().to_owned(),
                    e["show"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    for (who, other) in [("alice", "bob"), ("bob", "alice")] {
        let seen = online(who);
        for peer in [other, "carol", "dave"] {
            assert_eq!(
                seen.get(&format!("{peer}@localhost")).map(String::as_str),
                Some("online"),
                "{who} did not see {peer} online\n{context}"
            );
        }
    }

    // Converse's login asks the server what it supports and for the account's data
    // (disco, roster, vCards, carbons, the blocklist): every request is answered, none
    // with service-unavailable, which is what an IQ no module handles gets (RFC 6120
    // §8.4). Its disco#info of the server must be among them, or nothing was captured.
    // The exception is PEP (XEP-0163): Converse reads its contacts' and its own pubsub
    // nodes whether or not the account's disco#info shows a pep identity, and without
    // PEP service-unavailable is the right answer to them.
    for who in ["alice", "bob"] {
        let iqs = find(who, "iq");
        assert!(
            iqs.iter().any(|e| e["to"] == "localhost"
                && e["payload"] == "http://jabber.org/protocol/disco#info query"
                && e["answer"] == "result"),
            "{who}'s disco#info of the server is not among its requests: {iqs:#?}\n{context}"
        );
        for asked in [
            "jabber:iq:roster query",
            "vcard-temp vCard",
            "urn:xmpp:carbons:2 enable",
            "urn:xmpp:blocking blocklist",
        ] {
            assert!(
                iqs.iter()
                    .any(|e| e["payload"] == asked && e["answer"] == "result"),
                "{who} did not ask for {asked}, or got no result: {iqs:#?}\n{context}"
            );
        }
        let unanswered: Vec<_> = iqs
            .iter()
            .filter(|e| e["condition"] == "service-unavailable")
            .filter(|e| e["payload"] != "http://jabber.org/protocol/pubsub pubsub")
            .collect();
        assert!(
            unanswered.is_empty(),
            "{who}'s requests got service-unavailable: {unanswered:#?}\n{context}"
        );
    }

    // What each browser user received, from whom, intact.
    let received = |who: &str| -> BTreeMap<String, String> {
        find(who, "message")
            .iter()
            .map(|e| {
                let from = e["from"].as_str().unwrap_or_default();
                (
                    from.split('/').next().unwrap_or_default().to_owned(),
                    e["body"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    for (who, transport, other, other_transport) in [
        ("alice", "websocket", "bob", "bosh"),
        ("bob", "bosh", "alice", "websocket"),
    ] {
        let got = received(who);
        let expect = [
            (
                other,
                to_browser(other, &format!("{who}@localhost"), other_transport),
            ),
            ("carol", to_browser("carol", who, "tcp")),
            ("dave", to_browser("dave", who, "flash")),
        ];
        for (from, body) in expect {
            assert_eq!(
                got.get(&format!("{from}@localhost")),
                Some(&body),
                "{who} ({transport}) got the wrong message from {from}\n{context}"
            );
        }
    }

    // What the TCP and Flash clients received from the browsers.
    for (client, name) in [(&mut carol, "carol"), (&mut dave, "dave")] {
        for (from, transport) in [("alice", "websocket"), ("bob", "bosh")] {
            let stanza = message_from(client, &format!("{from}@localhost")).await;
            let body = escape(&to_browser(from, &format!("{name}@localhost"), transport));
            assert!(
                stanza.contains(&format!("<body>{body}</body>")),
                "{name} got {stanza}, expected the body {body}"
            );
            assert!(
                stanza.contains(&format!("to=\"{name}@localhost")),
                "{stanza}"
            );
        }
    }

    // The screenshots exist and are PNGs.
    for name in ["web-chat-alice-websocket.png", "web-chat-bob-bosh.png"] {
        let png = std::fs::read(shots.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is not a PNG");
    }
}
