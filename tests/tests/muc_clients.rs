//! Every kind of client in XEP-0045 rooms: xmpp-rs's tokio-xmpp (its own `xmpp-parsers` MUC
//! types) chats with slixmpp's xep_0045 and a raw client; the SWF widget
//! (tests/flash/FlashXmpp.hx) in Ruffle enters a room both ways Flash-era widgets did
//! (XEP-0045's `<x/>` and the groupchat 1.0 presence without it); and one room holds them all
//! at once — a standard TCP client, a raw Flash client (NUL-framed `<flash:stream>` on the
//! c2s port), the SWF in Ruffle, Converse.js over RFC 7395 WebSocket (the server's own chat
//! page, auto-joining through its `auto_join_rooms` setting), a raw BOSH client and
//! tokio-xmpp —, where each sees every other's join presence and groupchat message, and the
//! screenshots of the widget and of Converse show the room's messages. Needs `haxe`,
//! `chromium` (Debian), slixmpp and `npm ci` in tests/browser: tests/run installs them; a
//! missing tool fails the test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt as _;
use jabberwock_tests::bosh::{self, BoshClient};
use jabberwock_tests::browser::{start_with_chat_page, NodeRun};
use jabberwock_tests::flash_widget::{build_widget, proxy_url, spawn_widget, WidgetRun};
use jabberwock_tests::muc::{instant_room, log_in, occupant, slix, MUC_X, SERVICE};
use jabberwock_tests::xmpp_rs::Tokio;
use jabberwock_tests::{RawClient, TestServer};
use tokio_xmpp::jid::{FullJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::message::{Lang, Message, MessageType};
use tokio_xmpp::parsers::muc::user::{MucUser, Role, Status};
use tokio_xmpp::parsers::muc::Muc;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::{Event, Stanza};

/// A browser run's bound: Chromium, Ruffle's WASM or Converse's load, the room.
const BROWSER_DEADLINE: Duration = Duration::from_secs(80);

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The occupant presence or message from `room/nick` (XEP-0045 §7.2.3, §7.4), typed.
fn from_occupant(from: &Option<Jid>, room: &str, nick: &str) -> bool {
    from.as_ref().map(|j| j.to_string()) == Some(occupant(room, nick))
}

/// The MUC payload of an occupant's presence.
fn muc_user(presence: &Presence) -> Option<MucUser> {
    presence
        .payloads
        .iter()
        .find_map(|p| MucUser::try_from(p.clone()).ok())
}

/// A live groupchat message's body from `room/nick`, as tokio-xmpp parsed it.
fn groupchat_body(stanza: &Stanza, room: &str, nick: &str) -> Option<String> {
    match stanza {
        Stanza::Message(m)
            if m.type_ == MessageType::Groupchat && from_occupant(&m.from, room, nick) =>
        {
            m.get_best_body_cloned(vec![]).map(|(_, body)| body)
        }
        _ => None,
    }
}

#[tokio::test]
async fn tokio_xmpp_chats_in_a_room_with_slixmpp_and_a_raw_client() {
    let server = TestServer::start();
    server.wait_started();
    let mut users = log_in(&server, &["alice"]).await;
    let alice = &mut users[0];
    instant_room(alice, "tea", "Alice").await;
    let room = format!("tea@{SERVICE}");
    let mut bob = slix(&server, "bob").await;
    let joined = bob
        .command(&format!(
            r#"{{"cmd": "join", "room": "{room}", "nick": "Bob"}}"#
        ))
        .await;
    assert!(joined.contains("\"occupants\": [\"Alice\"]"), "{joined}");

    // tokio-xmpp enters with xmpp-parsers' own <x xmlns='…muc'/> (§7.2.2).
    server.add_user("carol@localhost", "pw-carol");
    let (mut carol, online) = Tokio::online(&server, "carol@localhost/tokio", "pw-carol").await;
    assert!(online.is_online(), "{online:?}");
    let me: FullJid = occupant("tea", "Carol").parse().expect("an occupant JID");
    carol
        .send(
            Presence::available()
                .with_to(me.clone())
                .with_payload(Muc::new()),
        )
        .await;
    // §7.2.3: the others' presence first, then its own with 110, then the subject.
    let own = carol
        .wait("its own occupant presence", |s| match s {
            Stanza::Presence(p) if from_occupant(&p.from, "tea", "Carol") => Some(p.clone()),
            _ => None,
        })
        .await;
    let own_user = muc_user(&own).expect("a muc#user payload");
    assert!(own_user.status.contains(&Status::SelfPresence), "{own:?}");
    assert_eq!(own_user.items[0].role, Role::Participant, "{own:?}");
    let at_own = carol
        .seen
        .iter()
        .position(|s| matches!(s, Stanza::Presence(p) if p == &own))
        .expect("its own presence was kept");
    for other in ["Alice", "Bob"] {
        let before = carol.seen[..at_own].iter().any(|s| {
            matches!(s, Stanza::Presence(p)
                if from_occupant(&p.from, "tea", other) && p.type_ == PresenceType::None)
        });
        assert!(before, "{other}'s presence did not come before carol's own");
    }
    carol
        .wait("the subject", |s| match s {
            Stanza::Message(m) if !m.subjects.is_empty() => Some(()),
            _ => None,
        })
        .await;
    // The others see it enter.
    alice
        .read_stanza_containing(&format!("from=\"{}\"", occupant("tea", "Carol")))
        .await;
    bob.expect_ever(&["\"event\": \"muc_presence\"", "\"nick\": \"Carol\""])
        .await;

    // tokio-xmpp speaks: both others get it from tea@…/Carol, type groupchat.
    let said = "tokio-xmpp in the room: héllo <&> ✓";
    let room_jid: Jid = room.parse().expect("the room JID");
    carol
        .send(Message::groupchat(room_jid.clone()).with_body(Lang(String::new()), said.into()))
        .await;
    let got = alice.read_stanza_containing("tokio-xmpp in the room").await;
    assert!(
        got.contains(&format!("from=\"{}\"", occupant("tea", "Carol")))
            && got.contains("type=\"groupchat\"")
            && got.contains(&format!("<body>{}</body>", escape(said))),
        "{got}"
    );
    bob.expect_ever(&[
        "\"event\": \"groupchat\"",
        "\"nick\": \"Carol\"",
        "tokio-xmpp in the room",
    ])
    .await;
    carol
        .wait("its own message back", |s| {
            groupchat_body(s, "tea", "Carol")
        })
        .await;

    // The raw client and slixmpp speak: tokio-xmpp gets each from its occupant JID.
    alice
        .send(format!(
            "<message type='groupchat' to='{room}'><body>raw to all</body></message>"
        ))
        .await;
    bob.command(&format!(
        r#"{{"cmd": "say", "room": "{room}", "body": "slixmpp to all"}}"#
    ))
    .await;
    for (nick, body) in [("Alice", "raw to all"), ("Bob", "slixmpp to all")] {
        let got = carol
            .wait(&format!("{nick}'s groupchat message"), |s| {
                groupchat_body(s, "tea", nick)
            })
            .await;
        assert_eq!(got, body);
    }

    // §7.14: it leaves; its own unavailable carries 110, the others see it go.
    carol
        .send(Presence::new(PresenceType::Unavailable).with_to(me))
        .await;
    let gone = carol
        .wait("its own unavailable presence", |s| match s {
            Stanza::Presence(p)
                if from_occupant(&p.from, "tea", "Carol")
                    && p.type_ == PresenceType::Unavailable =>
            {
                muc_user(p)
            }
            _ => None,
        })
        .await;
    assert!(gone.status.contains(&Status::SelfPresence), "{gone:?}");
    let left = alice.read_stanza_containing("type=\"unavailable\"").await;
    assert!(left.contains(&occupant("tea", "Carol")), "{left}");
    assert!(bob.quit().await, "bob's slixmpp reported failure");
}

/// The widget's steps as (variant, kind, text), and how the run ended.
async fn widget_steps(
    mut run: WidgetRun,
    mut on_step: impl AsyncFnMut(&str, &str, &str),
) -> (
    Vec<(String, String, String)>,
    std::process::ExitStatus,
    String,
) {
    let deadline = tokio::time::Instant::now() + BROWSER_DEADLINE;
    let mut steps = Vec::new();
    while let Some((variant, kind, text)) = run.next_step(deadline).await {
        on_step(&variant, &kind, &text).await;
        steps.push((variant, kind, text));
    }
    let (status, console) = run.finish().await;
    (steps, status, console)
}

/// Whether `steps` of `variant` hold each (kind, text part) in this order; the first one
/// missing otherwise.
fn in_order<'a>(
    steps: &[(String, String, String)],
    variant: &str,
    expected: &'a [(&'a str, String)],
) -> Result<(), (&'a str, &'a str)> {
    let mut at = 0;
    for (kind, needle) in expected {
        let found = steps[at..]
            .iter()
            .position(|(v, k, t)| v == variant && k == kind && t.contains(needle.as_str()));
        match found {
            Some(i) => at += i + 1,
            None => return Err((kind, needle)),
        }
    }
    Ok(())
}

/// The widget's measurement of its room panel (flash_widget.mjs, chromium.mjs's ink): text lines and
/// dark pixels.
fn panel_ink(steps: &[(String, String, String)], variant: &str) -> (u64, u64) {
    let text = steps
        .iter()
        .find(|(v, k, _)| v == variant && k == "ink")
        .map(|(_, _, t)| t.as_str())
        .unwrap_or_else(|| panic!("no ink measurement of {variant}'s screenshot"));
    let ink: serde_json::Value = serde_json::from_str(text).expect("an ink measurement");
    assert_eq!(
        (ink["width"].as_u64(), ink["height"].as_u64()),
        (Some(800), Some(600)),
        "the screenshot is the 800x600 stage: {text}"
    );
    (
        ink["rows"].as_u64().unwrap_or_default(),
        ink["dark"].as_u64().unwrap_or_default(),
    )
}

#[tokio::test]
async fn the_swf_in_ruffle_enters_a_room_both_ways_and_chats_with_a_tcp_occupant() {
    let server = TestServer::start();
    server.wait_started();
    let swf = build_widget(server.dir.path());
    server.add_user("alice@localhost", "wonderland");
    let mut users = log_in(&server, &["tcp"]).await;
    let tcp = &mut users[0];
    instant_room(tcp, "lobby", "Tcp").await;
    let room = format!("lobby@{SERVICE}");

    // One page after the other in one browser: XEP-0045's join over XMLSocket with the
    // flash header, then groupchat 1.0's over the binary socket with the standard one.
    let variants = serde_json::json!([
        {"name": "muc", "resource": "muc", "nick": "WidgetMuc", "join": "muc",
         "header": "flash", "nul": "1", "body": "héllo ☃ from WidgetMuc"},
        {"name": "plain", "resource": "plain", "nick": "WidgetPlain", "join": "plain",
         "header": "standard", "nul": "0", "body": "héllo ☃ from WidgetPlain"},
    ])
    .to_string();
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("muc-widget.png");
    let port = server.c2s.port().to_string();
    let proxy = proxy_url(&server);
    let run = spawn_widget(
        &swf,
        &screenshot,
        &[
            "--proxy-url",
            &proxy,
            "--port",
            &port,
            "--user",
            "alice",
            "--pass",
            "wonderland",
            "--room",
            &room,
            "--nick",
            "Widget",
            "--occupants",
            "Tcp",
            "--variants",
            &variants,
            "--timeout",
            "35",
        ],
    );
    // The TCP occupant answers each widget once it has its message.
    let mut seen_by_tcp: BTreeMap<String, (Vec<String>, String)> = BTreeMap::new();
    let (steps, status, console) = widget_steps(run, async |variant: &str, kind: &str, _: &str| {
        if kind != "sent" {
            return;
        }
        let nick = if variant == "muc" { "WidgetMuc" } else { "WidgetPlain" };
        let mut before = Vec::new();
        let from = format!("from=\"{}\"", occupant("lobby", nick));
        let message = loop {
            let stanza = tcp.read_stanza().await;
            if stanza.starts_with("<message") && stanza.contains(&from) {
                break stanza;
            }
            before.push(stanza);
        };
        tcp.send(format!(
            "<message type='groupchat' to='{room}'><body>hello {nick}, from TCP &lt;&amp;&gt;</body></message>"
        ))
        .await;
        seen_by_tcp.insert(nick.to_owned(), (before, message));
    })
    .await;
    let transcript = |variant: &str| {
        steps
            .iter()
            .filter(|(v, k, _)| v == variant && k != "in")
            .map(|(_, k, t)| format!("[{k}] {t}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let context = format!(
        "muc:\n{}\nplain:\n{}\nbrowser console:\n{console}\nserver log:\n{}",
        transcript("muc"),
        transcript("plain"),
        server.log_text()
    );
    assert!(
        status.success(),
        "the widget run failed ({status})\n{context}"
    );

    for (variant, nick, x) in [("muc", "WidgetMuc", true), ("plain", "WidgetPlain", false)] {
        let expected = [
            ("bound", format!("alice@localhost/{variant}")),
            ("joining", format!("{room} as {nick}")),
            ("occupant", "Tcp joined (moderator)".to_owned()),
            ("joined", format!("{room}/{nick} as participant")),
            ("sent", format!("héllo ☃ from {nick}")),
            ("groupchat", format!("Tcp: hello {nick}, from TCP <&>")),
            ("received", format!("from Tcp in {room}")),
        ];
        if let Err((kind, needle)) = in_order(&steps, variant, &expected) {
            panic!("{variant}: no [{kind}] step containing {needle:?} in order\n{context}");
        }
        assert!(
            !steps.iter().any(|(v, k, _)| v == variant && k == "error"),
            "{variant}: the widget reported an error\n{context}"
        );
        // What went out: with <x xmlns='…muc'/> or without it.
        let join = steps
            .iter()
            .find(|(v, k, t)| {
                v == variant && k == "out" && t.starts_with("<presence") && t.contains(nick)
            })
            .map(|(_, _, t)| t.clone())
            .unwrap_or_else(|| panic!("{variant}: no join presence went out\n{context}"));
        assert_eq!(
            join.contains(MUC_X.replace('\'', "\"").as_str()),
            x,
            "{join}"
        );

        // The TCP occupant saw it enter, then its message from lobby@…/nick, groupchat.
        let (before, message) = seen_by_tcp
            .get(nick)
            .unwrap_or_else(|| panic!("{variant}: the widget never spoke\n{context}"));
        assert!(
            before.iter().any(|s| s.starts_with("<presence")
                && s.contains(&format!("from=\"{}\"", occupant("lobby", nick)))
                && !s.contains("type=")),
            "{variant}: no join presence reached the TCP occupant: {before:?}"
        );
        assert!(
            message.contains(&format!("from=\"{}\"", occupant("lobby", nick)))
                && message.contains("type=\"groupchat\"")
                && message.contains(&format!("<body>héllo ☃ from {nick}</body>")),
            "{message}"
        );

        // The screenshot's room panel has the room's lines drawn: its heading, the
        // occupants, the entry, its own message and Tcp's (and, for the second widget, the
        // first one's visit as history), not an empty panel.
        let (rows, dark) = panel_ink(&steps, variant);
        assert!(
            rows >= 5 && dark > 1_000,
            "{variant}: the room panel shows {rows} text lines, {dark} dark pixels\n{context}"
        );
    }
}

/// One occupant the test drives itself, whatever carries its stanzas: it enters, speaks once
/// every other nick is there, and is done once each of them has spoken.
trait Occupant {
    /// Sends the room's join presence as `nick`.
    async fn join(&mut self, room: &str, nick: &str);
    async fn say(&mut self, room: &str, body: &str);
    /// The stanzas that arrived within `wait` (maybe none), as text.
    async fn poll(&mut self, wait: Duration) -> Vec<String>;
}

/// A raw client on the c2s port: standard (STARTTLS, entering with the MUC payload), or
/// Flash (a NUL after every unit, entering the groupchat 1.0 way, §7.1.1).
struct Raw {
    client: RawClient,
    flash: bool,
}
/// A BOSH client polling its session; what an answer carried waits in `inbox`.
struct Bosh {
    client: BoshClient,
    inbox: Vec<String>,
}

impl Occupant for Raw {
    async fn join(&mut self, room: &str, nick: &str) {
        let presence = if self.flash {
            format!("<presence to='{room}/{nick}'/>\0")
        } else {
            format!("<presence to='{room}/{nick}'>{MUC_X}</presence>")
        };
        self.client.send(presence).await;
    }
    async fn say(&mut self, room: &str, body: &str) {
        let end = if self.flash { "\0" } else { "" };
        self.client
            .send(format!(
                "<message type='groupchat' to='{room}'><body>{}</body></message>{end}",
                escape(body)
            ))
            .await;
    }
    async fn poll(&mut self, wait: Duration) -> Vec<String> {
        self.client
            .read_stanza_within(wait)
            .await
            .into_iter()
            .collect()
    }
}

impl Occupant for Bosh {
    async fn join(&mut self, room: &str, nick: &str) {
        let answer = self
            .client
            .send(&format!(
                "<presence xmlns='jabber:client' to='{room}/{nick}'>{MUC_X}</presence>"
            ))
            .await;
        self.inbox.extend(bosh::payloads(&answer.body));
    }
    async fn say(&mut self, room: &str, body: &str) {
        let answer = self
            .client
            .send(&format!(
                "<message xmlns='jabber:client' type='groupchat' to='{room}'><body>{}</body></message>",
                escape(body)
            ))
            .await;
        self.inbox.extend(bosh::payloads(&answer.body));
    }
    async fn poll(&mut self, _: Duration) -> Vec<String> {
        if self.inbox.is_empty() {
            // Held by the server up to the session's `wait`.
            let answer = self.client.send("").await;
            self.inbox.extend(bosh::payloads(&answer.body));
        }
        std::mem::take(&mut self.inbox)
    }
}

impl Occupant for Tokio {
    async fn join(&mut self, room: &str, nick: &str) {
        let me: FullJid = format!("{room}/{nick}").parse().expect("an occupant JID");
        self.send(Presence::available().with_to(me).with_payload(Muc::new()))
            .await;
    }
    async fn say(&mut self, room: &str, body: &str) {
        let room: Jid = room.parse().expect("the room JID");
        self.send(Message::groupchat(room).with_body(Lang(String::new()), body.into()))
            .await;
    }
    async fn poll(&mut self, wait: Duration) -> Vec<String> {
        match tokio::time::timeout(wait, self.client.next()).await {
            Ok(Some(Event::Stanza(stanza))) => {
                let text = match &stanza {
                    Stanza::Message(m) => String::from(&Element::from(m.clone())),
                    Stanza::Presence(p) => String::from(&Element::from(p.clone())),
                    Stanza::Iq(_) => String::new(),
                };
                self.keep(stanza).await;
                vec![text]
            }
            _ => Vec::new(),
        }
    }
}

/// What one occupant saw: the nicks whose join presence reached it, each nick's live
/// message (its stanza), and whether it finished.
#[derive(Debug, Default)]
struct Seen {
    joined: BTreeSet<String>,
    said: BTreeMap<String, String>,
    sent: bool,
    entered: bool,
}

/// The value of attribute `name` in the first tag of `xml` (either quote style).
fn attr<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let tag = &xml[..xml.find('>').unwrap_or(xml.len())];
    for quote in ['"', '\''] {
        let needle = format!(" {name}={quote}");
        if let Some(at) = tag.find(&needle) {
            return tag[at + needle.len()..].split(quote).next();
        }
    }
    None
}

/// Runs `o` as `nick` in `room` until it has heard every one of `others` (or the deadline);
/// gives it back still in the room.
async fn occupy<O: Occupant>(
    mut o: O,
    room: &str,
    nick: &str,
    others: &[&str],
    body: &str,
    entered: bool,
) -> (Seen, O) {
    let mut seen = Seen {
        entered,
        ..Seen::default()
    };
    if !entered {
        o.join(room, nick).await;
    }
    let deadline = tokio::time::Instant::now() + BROWSER_DEADLINE;
    while tokio::time::Instant::now() < deadline
        && !others.iter().all(|n| seen.said.contains_key(*n))
    {
        for stanza in o.poll(Duration::from_millis(500)).await {
            let Some(who) = attr(&stanza, "from")
                .and_then(|f| f.strip_prefix(room))
                .and_then(|f| f.strip_prefix('/'))
            else {
                continue;
            };
            let kind = attr(&stanza, "type");
            if stanza.starts_with("<presence") && kind.is_none() {
                if who == nick {
                    seen.entered = true;
                } else {
                    seen.joined.insert(who.to_owned());
                }
            }
            if stanza.starts_with("<message")
                && kind == Some("groupchat")
                && stanza.contains("<body")
                && !stanza.contains("<delay")
                && who != nick
            {
                seen.said.insert(who.to_owned(), stanza.clone());
            }
        }
        if seen.entered && !seen.sent && others.iter().all(|n| seen.joined.contains(*n)) {
            o.say(room, body).await;
            seen.sent = true;
        }
    }
    (seen, o)
}

fn body_of(nick: &str) -> String {
    format!("{nick} to all: héllo <&> ✓")
}

#[tokio::test]
async fn every_kind_of_client_shares_one_room() {
    let server = start_with_chat_page();
    let swf = build_widget(server.dir.path());
    let https = server.listening("https").expect("the HTTPS listener");
    let http = server.http.expect("the HTTP listener");
    let room = format!("all@{SERVICE}");
    const NICKS: [&str; 6] = ["Tcp", "Xiff", "Swf", "Converse", "Bosh", "Rust"];
    let others = |nick: &str| -> Vec<&'static str> {
        NICKS.iter().copied().filter(|n| *n != nick).collect()
    };
    for user in ["xiff", "swf", "converse", "bosh", "rust"] {
        server.add_user(&format!("{user}@localhost"), &format!("pw-{user}"));
    }

    // The TCP client makes the room (an instant one), so the others find it open.
    let mut tcp = log_in(&server, &["tcp"]).await.remove(0);
    instant_room(&mut tcp, "all", "Tcp").await;
    let (xiff, _) = RawClient::login_flash(server.c2s, "xiff", "pw-xiff", "xiff").await;
    let (bosh, _) =
        BoshClient::login(http, "/http-bind", "localhost", "bosh", "pw-bosh", "web", 1).await;
    let (rust, _) = Tokio::online(&server, "rust@localhost/tokio", "pw-rust").await;

    // The browsers: the SWF in Ruffle through the /flash endpoint, Converse over wss://.
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let widget_shot = shots.join("muc-all-swf.png");
    let converse_shot = shots.join("muc-all-converse.png");
    for shot in [&widget_shot, &converse_shot] {
        let _ = std::fs::remove_file(shot);
    }
    let port = server.c2s.port().to_string();
    let proxy = proxy_url(&server);
    let swf_others = others("Swf").join(",");
    let swf_body = body_of("Swf");
    let widget = spawn_widget(
        &swf,
        &widget_shot,
        &[
            "--proxy-url",
            &proxy,
            "--port",
            &port,
            "--user",
            "swf",
            "--pass",
            "pw-swf",
            "--resource",
            "ruffle",
            "--room",
            &room,
            "--nick",
            "Swf",
            "--join",
            "muc",
            "--occupants",
            &swf_others,
            "--body",
            &swf_body,
            "--timeout",
            "70",
        ],
    );
    let (base, converse_others, converse_body) = (
        format!("https://{https}"),
        others("Converse").join(","),
        body_of("Converse"),
    );
    let mut converse_run = NodeRun::converse(
        "converse_room.mjs",
        &base,
        "converse",
        &[
            "--transport".as_ref(),
            "websocket".as_ref(),
            "--room".as_ref(),
            room.as_ref(),
            "--nick".as_ref(),
            "Converse".as_ref(),
            "--occupants".as_ref(),
            converse_others.as_ref(),
            "--body".as_ref(),
            converse_body.as_ref(),
            "--screenshot".as_ref(),
            converse_shot.as_os_str(),
            "--timeout".as_ref(),
            "70".as_ref(),
        ],
    );
    let converse_events = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + BROWSER_DEADLINE + Duration::from_secs(10);
        let mut events = Vec::new();
        while let Some(event) = converse_run.next_json(deadline).await {
            events.push(event);
        }
        (events, converse_run.finish().await)
    });

    // Everyone at once: the test's own occupants beside the browsers.
    let (room_ref, tcp_others, xiff_others, bosh_others, rust_others) = (
        room.as_str(),
        others("Tcp"),
        others("Xiff"),
        others("Bosh"),
        others("Rust"),
    );
    let (tcp_body, xiff_body, bosh_body, rust_body) = (
        body_of("Tcp"),
        body_of("Xiff"),
        body_of("Bosh"),
        body_of("Rust"),
    );
    // Each stays in the room (held here) until the browsers are done.
    let (((tcp_seen, _tcp), (xiff_seen, _xiff), (bosh_seen, _bosh), (rust_seen, _rust)), widget) = tokio::join!(
        async {
            tokio::join!(
                occupy(
                    Raw {
                        client: tcp,
                        flash: false
                    },
                    room_ref,
                    "Tcp",
                    &tcp_others,
                    &tcp_body,
                    true
                ),
                occupy(
                    Raw {
                        client: xiff,
                        flash: true
                    },
                    room_ref,
                    "Xiff",
                    &xiff_others,
                    &xiff_body,
                    false
                ),
                occupy(
                    Bosh {
                        client: bosh,
                        inbox: Vec::new()
                    },
                    room_ref,
                    "Bosh",
                    &bosh_others,
                    &bosh_body,
                    false
                ),
                occupy(rust, room_ref, "Rust", &rust_others, &rust_body, false),
            )
        },
        widget_steps(widget, async |_: &str, _: &str, _: &str| {}),
    );
    let (steps, widget_status, widget_console) = widget;
    let (events, (converse_status, converse_console)) =
        converse_events.await.expect("Converse's events");

    let widget_transcript = steps
        .iter()
        .filter(|(_, k, _)| k != "in")
        .map(|(_, k, t)| format!("[{k}] {t}"))
        .collect::<Vec<_>>()
        .join("\n");
    let converse_transcript = events
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let context = format!(
        "tcp: {tcp_seen:?}\nxiff: {xiff_seen:?}\nbosh: {bosh_seen:?}\nrust: {rust_seen:?}\n\
         widget:\n{widget_transcript}\nwidget console:\n{widget_console}\n\
         converse:\n{converse_transcript}\nconverse console:\n{converse_console}\n\
         server log:\n{}",
        server.log_text()
    );

    // The test's own occupants: every other's join and live message, from room/nick.
    for (nick, seen) in [
        ("Tcp", &tcp_seen),
        ("Xiff", &xiff_seen),
        ("Bosh", &bosh_seen),
        ("Rust", &rust_seen),
    ] {
        assert!(seen.entered && seen.sent, "{nick} never spoke\n{context}");
        for other in others(nick) {
            assert!(
                seen.joined.contains(other),
                "{nick} did not see {other} enter\n{context}"
            );
            let message = seen
                .said
                .get(other)
                .unwrap_or_else(|| panic!("{nick} did not hear {other}\n{context}"));
            assert!(
                message.contains(&format!(">{}</body>", escape(&body_of(other)))),
                "{nick} got {message}"
            );
        }
    }

    // The SWF in Ruffle: its log and its screenshot.
    assert!(
        widget_status.success(),
        "the widget run failed ({widget_status})\n{context}"
    );
    assert!(
        !steps.iter().any(|(_, k, _)| k == "error"),
        "the widget reported an error\n{context}"
    );
    for other in others("Swf") {
        let entered = format!("{other} joined (");
        let heard = format!("{other}: {}", body_of(other));
        for (kind, needle) in [("occupant", &entered), ("groupchat", &heard)] {
            assert!(
                steps
                    .iter()
                    .any(|(_, k, t)| k == kind && t.starts_with(needle.as_str())),
                "the widget has no [{kind}] {needle}\n{context}"
            );
        }
    }
    // Its panel: heading, occupants, its entry, five others entering and six messages (only
    // nine lines without the messages, as no one leaves before hearing everyone).
    let (rows, dark) = panel_ink(&steps, "widget");
    assert!(
        rows >= 14 && dark > 2_000,
        "the widget's room panel shows {rows} text lines, {dark} dark pixels\n{context}"
    );
    assert!(
        server
            .log_text()
            .lines()
            .any(|l| l.contains("flash-websocket")
                && l.contains("resource bound jid=swf@localhost/ruffle")),
        "the widget's session was not a flash-websocket one\n{context}"
    );

    // Converse: entered over wss://, its models and its view, and its screenshot.
    assert!(
        converse_status.success(),
        "the Converse run failed ({converse_status})\n{context}"
    );
    let of_kind = |kind: &str| -> Vec<&serde_json::Value> {
        events.iter().filter(|e| e["kind"] == kind).collect()
    };
    let entered = of_kind("entered");
    assert_eq!(entered.len(), 1, "{context}");
    assert_eq!(
        entered[0]["service"],
        format!("wss://{https}/xmpp-websocket"),
        "{context}"
    );
    let occupants: BTreeSet<&str> = of_kind("occupant")
        .iter()
        .filter_map(|e| e["nick"].as_str())
        .collect();
    let heard: BTreeMap<&str, &str> = of_kind("groupchat")
        .iter()
        .filter(|e| e["delayed"] == false && e["type"] == "groupchat")
        .filter_map(|e| Some((e["nick"].as_str()?, e["body"].as_str()?)))
        .collect();
    let dom = of_kind("dom");
    let dom = dom
        .first()
        .unwrap_or_else(|| panic!("no DOM reading\n{context}"));
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (dom_occupants, dom_messages) = (strings(&dom["occupants"]), strings(&dom["messages"]));
    let shown = of_kind("shown");
    for other in others("Converse") {
        let body = body_of(other);
        assert!(
            occupants.contains(other),
            "Converse has no occupant {other}\n{context}"
        );
        assert_eq!(
            heard.get(other),
            Some(&body.as_str()),
            "Converse did not hear {other}\n{context}"
        );
        assert!(
            dom_occupants.iter().any(|n| n == other),
            "Converse's occupant list does not show {other}: {dom_occupants:?}\n{context}"
        );
        assert!(
            dom_messages.iter().any(|m| m == &body),
            "Converse's room view does not show {body:?}: {dom_messages:?}\n{context}"
        );
        // In the screenshot, the message's box holds drawn text.
        assert!(
            shown
                .iter()
                .any(|e| e["text"] == body.as_str() && e["dark"].as_u64().unwrap_or(0) > 50),
            "{body:?} is not drawn in Converse's screenshot: {shown:?}\n{context}"
        );
    }
    let png = std::fs::read(&converse_shot).expect("Converse's screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
}
