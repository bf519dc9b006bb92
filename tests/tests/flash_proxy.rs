//! Ruffle's socket proxy endpoint. A Flash widget in Ruffle has no raw TCP:
//! its XMLSocket bytes travel in binary WebSocket frames, one frame per `send()`, each unit
//! NUL-terminated, and Ruffle drops text frames (docs/ruffle.md). The client here
//! is tokio-tungstenite (not ours) sending exactly those frames with the bytes of
//! docs/flash-protocol.md §2b-2d; a standard client on plain TCP is on the other side.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jabberwock_tests::raw::{xiff_plain_auth, FLASH_HEADER, STREAM_HEADER, XIFF_TERMINATED_HEADER};
use jabberwock_tests::{RawClient, TestConfig, TestServer, WAIT};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A Flash client as Ruffle runs it: units out as binary frames, units in split on NUL.
struct RuffleSocket {
    ws: Ws,
    /// Received bytes not yet returned as units.
    pending: Vec<u8>,
    /// Every data frame the server sent, as received.
    frames: Vec<Vec<u8>>,
    pongs: Vec<Vec<u8>>,
    /// The close frame, once it came.
    close: Option<Option<CloseCode>>,
    /// XMLSocket (units end in NUL both ways) rather than Flash's binary `Socket`.
    nul: bool,
}

impl RuffleSocket {
    async fn connect(server: &TestServer) -> RuffleSocket {
        let url = format!("ws://{}/flash", server.http.expect("HTTP listener"));
        let (ws, response) = timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("WebSocket upgrade in time")
            .expect("WebSocket upgrade");
        // Ruffle asks for no subprotocol, and none is chosen.
        assert!(
            response.headers().get("sec-websocket-protocol").is_none(),
            "{response:?}"
        );
        RuffleSocket {
            ws,
            pending: Vec::new(),
            frames: Vec::new(),
            pongs: Vec::new(),
            close: None,
            nul: true,
        }
    }

    /// Flash's binary `flash.net.Socket` (XIFF 3): bytes as they are, no NUL added.
    async fn connect_binary(server: &TestServer) -> RuffleSocket {
        let mut socket = RuffleSocket::connect(server).await;
        socket.nul = false;
        socket
    }

    /// Binary socket: reads until `needle` arrived; returns the text up to its end.
    async fn read_text_until(&mut self, needle: &str) -> String {
        loop {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            if let Some(at) = text.find(needle) {
                self.pending.drain(..at + needle.len());
                return text[..at + needle.len()].to_owned();
            }
            if self.next_frame().await.is_none() {
                panic!("closed while waiting for {needle:?}; pending {text:?}");
            }
        }
    }

    /// One XMLSocket send(): one binary frame.
    async fn send(&mut self, bytes: &str) {
        self.ws
            .send(Message::binary(bytes.as_bytes().to_vec()))
            .await
            .expect("send frame");
    }

    /// The next frame from the server; every data frame must be binary and carry whole
    /// NUL-terminated units (no NUL at all for a binary socket). `None` once the WebSocket is closed.
    async fn next_frame(&mut self) -> Option<()> {
        let frame = timeout(WAIT, self.ws.next()).await.unwrap_or_else(|_| {
            panic!(
                "no frame within {WAIT:?}; pending {:?}",
                String::from_utf8_lossy(&self.pending)
            )
        })?;
        match frame {
            Ok(Message::Binary(data)) => {
                assert!(
                    data.ends_with(b"\0") == self.nul,
                    "a frame must end with a whole unit: {:?}",
                    String::from_utf8_lossy(&data)
                );
                self.pending.extend_from_slice(&data);
                self.frames.push(data.to_vec());
            }
            Ok(Message::Text(text)) => {
                panic!("the server sent a text frame (Ruffle drops those): {text}")
            }
            Ok(Message::Pong(data)) => self.pongs.push(data.to_vec()),
            Ok(Message::Ping(_) | Message::Frame(_)) => {}
            Ok(Message::Close(frame)) => self.close = Some(frame.map(|f| f.code)),
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => return None,
            Err(e) => panic!("WebSocket error: {e}"),
        }
        Some(())
    }

    /// The next NUL-terminated unit, without its NUL.
    async fn read_unit(&mut self) -> String {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == 0) {
                let unit: Vec<u8> = self.pending.drain(..=end).collect();
                return String::from_utf8(unit[..end].to_vec()).expect("UTF-8 unit");
            }
            if self.next_frame().await.is_none() {
                panic!(
                    "closed while waiting for a unit; pending {:?}",
                    String::from_utf8_lossy(&self.pending)
                );
            }
        }
    }

    async fn read_unit_containing(&mut self, needle: &str) -> String {
        loop {
            let unit = self.read_unit().await;
            if unit.contains(needle) {
                return unit;
            }
        }
    }

    /// Reads frames until the server closes the WebSocket; returns the units left over.
    async fn read_to_close(&mut self) -> String {
        while self.next_frame().await.is_some() {}
        String::from_utf8(std::mem::take(&mut self.pending)).expect("UTF-8")
    }
}

fn upgrade_request(
    server: &TestServer,
    path: &str,
    origin: Option<&'static str>,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let url = format!("ws://{}{path}", server.http.expect("HTTP listener"));
    let mut request = url.into_client_request().expect("request");
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", HeaderValue::from_static(origin));
    }
    request
}

/// The HTTP status of a refused upgrade; panics if the upgrade went through.
async fn refused_status(
    server: &TestServer,
    path: &str,
    origin: Option<&'static str>,
) -> StatusCode {
    let request = upgrade_request(server, path, origin);
    match timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("answer in time")
    {
        Err(WsError::Http(response)) => response.status(),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("the upgrade to {path} with origin {origin:?} was accepted"),
    }
}

#[tokio::test]
async fn ruffle_client_logs_in_and_chats_with_a_tcp_client() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let (mut bob, bob_jid) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "builder", "tcp").await;

    let mut flash = RuffleSocket::connect(&server).await;
    // §2b: header, then the server's header and features as two units.
    flash.send(FLASH_HEADER).await;
    let header = flash.read_unit().await;
    assert!(
        header.starts_with("<?xml version='1.0' encoding='UTF-8'?><flash:stream ")
            && header.contains("xmlns:flash=\"http://www.jabber.com/streams/flash\"")
            && header.contains("from=\"localhost\""),
        "{header}"
    );
    let features = flash.read_unit().await;
    assert!(
        features.starts_with("<stream:features>")
            && features.contains(
                "<mechanisms xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"><mechanism>PLAIN</mechanism>"
            )
            && !features.contains("starttls"),
        "{features}"
    );

    // §2c: PLAIN as XIFF sends it (authzid = bare JID), this unit split across two frames.
    let auth = "<auth mechanism=\"PLAIN\" xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\">YWxpY2VAbG9jYWxob3N0AGFsaWNlAHdvbmRlcmxhbmQ=</auth>\0";
    let (first, second) = auth.split_at(30);
    flash.send(first).await;
    flash.send(second).await;
    assert_eq!(
        flash.read_unit().await,
        "<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>"
    );

    // The restart header and the bind request as two units in one frame.
    flash
        .send(&format!("{FLASH_HEADER}<iq type=\"set\" id=\"bind_1\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><resource>ruffle</resource></bind></iq>\0"))
        .await;
    let restart = flash.read_unit().await;
    assert!(
        restart.contains("<flash:stream ")
            && restart.contains("urn:ietf:params:xml:ns:xmpp-bind")
            && restart.ends_with("</stream:features>"),
        "{restart}"
    );
    let bound = flash.read_unit().await;
    assert!(
        bound.contains("id=\"bind_1\"") && bound.contains("<jid>alice@localhost/ruffle</jid>"),
        "{bound}"
    );

    // The session request in a text frame: its bytes are taken like a binary frame's.
    flash
        .ws
        .send(Message::text(
            "<iq type=\"set\" id=\"sess_1\"><session xmlns=\"urn:ietf:params:xml:ns:xmpp-session\"/></iq>\0",
        ))
        .await
        .expect("send text frame");
    let session = flash.read_unit_containing("id=\"sess_1\"").await;
    assert!(session.contains("type=\"result\""), "{session}");

    flash
        .send("<iq type=\"get\" id=\"roster_1\"><query xmlns=\"jabber:iq:roster\"/></iq>\0")
        .await;
    let roster = flash.read_unit_containing("id=\"roster_1\"").await;
    assert!(
        roster.contains("type=\"result\"") && roster.contains("jabber:iq:roster"),
        "{roster}"
    );

    // Initial presence comes back to its sender (RFC 6121 §4.2.2).
    flash.send("<presence/>\0").await;
    let echo = flash
        .read_unit_containing("from=\"alice@localhost/ruffle\"")
        .await;
    assert!(echo.starts_with("<presence"), "{echo}");

    // TCP -> Ruffle.
    bob.send(
        "<message type='chat' to='alice@localhost/ruffle' id='b1'><body>hello ruffle</body></message>",
    )
    .await;
    let message = flash.read_unit_containing("<message").await;
    assert!(
        message.contains(&format!("from=\"{bob_jid}\""))
            && message.contains("<body>hello ruffle</body>"),
        "{message}"
    );

    // Ruffle -> TCP (§2d).
    flash
        .send(&format!("<message type=\"chat\" to=\"{bob_jid}\" id=\"m_1\"><body>hi from the browser</body></message>\0"))
        .await;
    let received = bob.read_stanza_containing("hi from the browser").await;
    assert!(
        received.contains("from=\"alice@localhost/ruffle\""),
        "{received}"
    );

    // A WebSocket ping is answered with a pong carrying its payload.
    flash
        .ws
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("ping");
    while flash.pongs.is_empty() {
        assert!(flash.next_frame().await.is_some(), "closed before the pong");
    }
    assert_eq!(flash.pongs, [b"are you there".to_vec()]);

    // §2d close: our </flash:stream> is answered with the server's, then a close frame.
    flash.send("</flash:stream>\0").await;
    let tail = flash.read_to_close().await;
    assert!(tail.ends_with("</flash:stream>\0"), "{tail:?}");
    assert_eq!(flash.close, Some(Some(CloseCode::Normal)));
    // Every frame carried whole units and none was text (checked in next_frame); the
    // features after the restart came in the same frame as the header (one unit).
    assert!(
        flash
            .frames
            .iter()
            .any(|f| f.starts_with(b"<?xml") && f.ends_with(b"</stream:features>\0")),
        "{:?}",
        flash
            .frames
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect::<Vec<_>>()
    );
}

/// XIFF 3's self-closed standard header from an XMLSocket in Ruffle: an open stream, served
/// as Flash (NUL-terminated units) since that is all the widget can read; the restart
/// header is self-closed too.
#[tokio::test]
async fn a_self_closed_standard_header_through_ruffle_opens_the_stream() {
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    server.add_user("bob@localhost", "builder");
    let (mut bob, bob_jid) =
        RawClient::login_standard(server.c2s, &server.cert_path(), "bob", "builder", "tcp").await;

    let mut flash = RuffleSocket::connect(&server).await;
    flash.send(&format!("{XIFF_TERMINATED_HEADER}\0")).await;
    // Our header comes back as a NUL-terminated unit of its own; its root may be either
    // (XIFF reads both): on a Flash socket the NULs are framing whatever the header said.
    let header = flash.read_unit().await;
    assert!(
        header.contains("<flash:stream ") || header.contains("<stream:stream "),
        "{header}"
    );
    let features = flash.read_unit().await;
    assert!(
        features.contains("<mechanism>PLAIN</mechanism>") && !features.contains("starttls"),
        "{features}"
    );
    flash
        .send(&format!("{}\0", xiff_plain_auth("alice", "wonderland")))
        .await;
    assert_eq!(
        flash.read_unit().await,
        "<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>"
    );
    flash.send(&format!("{XIFF_TERMINATED_HEADER}\0")).await;
    let restart = flash.read_unit().await;
    assert!(restart.ends_with("</stream:features>"), "{restart}");
    flash
        .send("<iq type=\"set\" id=\"bind_1\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><resource>xiff3</resource></bind></iq>\0")
        .await;
    let bound = flash.read_unit().await;
    assert!(
        bound.contains("<jid>alice@localhost/xiff3</jid>"),
        "{bound}"
    );

    flash
        .send(&format!("<message type=\"chat\" to=\"{bob_jid}\" id=\"m_1\"><body>terminated but open</body></message>\0"))
        .await;
    let received = bob.read_stanza_containing("terminated but open").await;
    assert!(
        received.contains("from=\"alice@localhost/xiff3\""),
        "{received}"
    );

    // Our close names the root our header opened, NUL-terminated like every unit.
    flash.send("</stream:stream>\0").await;
    let tail = flash.read_to_close().await;
    let root = if header.contains("<flash:stream ") {
        "flash"
    } else {
        "stream"
    };
    assert!(tail.ends_with(&format!("</{root}:stream>\0")), "{tail:?}");
}

#[tokio::test]
async fn origin_allow_list_and_paths() {
    let server = TestServer::start_with(
        TestConfig::default().flash("websocket_origins = [\"http://good.example\"]"),
    );
    assert_eq!(
        refused_status(&server, "/flash", Some("http://evil.example")).await,
        StatusCode::FORBIDDEN
    );
    // A client that sends no Origin is refused once a list is configured.
    assert_eq!(
        refused_status(&server, "/flash", None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        refused_status(&server, "/elsewhere", Some("http://good.example")).await,
        StatusCode::NOT_FOUND
    );

    let request = upgrade_request(&server, "/flash", Some("http://good.example"));
    let (ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("upgrade in time")
        .expect("allowed origin is upgraded");
    let mut flash = RuffleSocket {
        ws,
        pending: Vec::new(),
        frames: Vec::new(),
        pongs: Vec::new(),
        close: None,
        nul: true,
    };
    flash.send(FLASH_HEADER).await;
    let header = flash.read_unit().await;
    assert!(header.contains("<flash:stream "), "{header}");
}

#[tokio::test]
async fn the_connection_cap_covers_websockets() {
    let server = TestServer::start_with(TestConfig::default().c2s("max_connections = 1"));
    // One TCP client takes the only permit...
    let mut tcp = RawClient::connect(server.c2s).await;
    tcp.send(FLASH_HEADER).await;
    tcp.read_unit().await;
    // ...so the WebSocket is refused before the upgrade.
    assert_eq!(
        refused_status(&server, "/flash", None).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    drop(tcp);
    // Once it is gone, the WebSocket gets in (the permit is released as the task ends).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let request = upgrade_request(&server, "/flash", None);
        match tokio_tungstenite::connect_async(request).await {
            Ok(_) => break,
            Err(WsError::Http(r)) if r.status() == StatusCode::SERVICE_UNAVAILABLE => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the permit never came back"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test]
async fn sigterm_closes_websocket_streams_and_exits_0() {
    let mut server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");
    let mut flash = RuffleSocket::connect(&server).await;
    flash.send(FLASH_HEADER).await;
    flash.read_unit().await;
    flash.read_unit().await;

    // Blocking the runtime here would stall the client, so terminate from a thread.
    let waiter = std::thread::spawn(move || {
        let status = server.terminate();
        (status, server.log_text())
    });
    let tail = flash.read_to_close().await;
    assert!(
        tail.contains("<system-shutdown xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>")
            && tail.ends_with("</flash:stream>\0"),
        "{tail:?}"
    );
    assert_eq!(flash.close, Some(Some(CloseCode::Normal)));
    let (status, log) = waiter.join().expect("terminate thread");
    assert!(status.success(), "{status}:\n{log}");
    assert!(!log.contains("did not close in time"), "{log}");
}

#[tokio::test]
async fn an_empty_websocket_path_turns_the_endpoint_off() {
    // The other HTTP endpoints off too, so /flash was the last one.
    let server = TestServer::start_with(
        TestConfig::default()
            .flash("websocket_path = \"\"")
            .section("http", "websocket_path = \"\"")
            .section("http", "bosh_path = \"\"")
            .section("http", "chat_path = \"\""),
    );
    server.wait_started();
    assert_eq!(server.http, None, "{}", server.log_text());
    assert!(
        server.log_text().contains("no HTTP endpoint enabled"),
        "{}",
        server.log_text()
    );
}

/// SASL PLAIN for `user` with `password` (no authzid).
fn plain_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
    format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
}

const BIND: &str = "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>xiff</resource></bind></iq>";

#[tokio::test]
async fn a_standard_header_through_the_flash_socket_gets_the_flash_policy() {
    // c2s.require_encryption is on (the default): on TCP this header is offered STARTTLS
    // only, which a Flash socket cannot do.
    let server = TestServer::start();
    server.add_user("alice@localhost", "wonderland");

    // XIFF 3 over Flash's binary socket: the standard header, no NUL either way.
    let mut xiff = RuffleSocket::connect_binary(&server).await;
    xiff.send(STREAM_HEADER).await;
    let features = xiff.read_text_until("</stream:features>").await;
    assert!(features.contains("<stream:stream "), "{features}");
    assert!(!features.contains("<required"), "{features}");
    assert!(
        features.contains(
            "<mechanisms xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"><mechanism>PLAIN</mechanism>"
        ),
        "the [flash] mechanisms, PLAIN first: {features}"
    );
    xiff.send(&plain_auth("alice", "wonderland")).await;
    xiff.read_text_until("<success").await;
    xiff.send(STREAM_HEADER).await;
    xiff.read_text_until("</stream:features>").await;
    xiff.send(BIND).await;
    let bound = xiff.read_text_until("</iq>").await;
    assert!(bound.contains("<jid>alice@localhost/xiff</jid>"), "{bound}");

    // The same header from an XMLSocket widget, a NUL after every unit: its NULs are
    // accepted, and ours come back, or XMLSocket would deliver nothing.
    let mut widget = RuffleSocket::connect(&server).await;
    widget.send(&format!("{STREAM_HEADER}\0")).await;
    let header = widget.read_unit().await;
    assert!(header.contains("<stream:stream "), "{header}");
    let features = widget.read_unit().await;
    assert!(
        features.contains("<mechanism>PLAIN</mechanism>"),
        "{features}"
    );
    widget
        .send(&format!("{}\0", plain_auth("alice", "wonderland")))
        .await;
    let success = widget.read_unit().await;
    assert!(success.starts_with("<success"), "{success}");
    widget.send(&format!("{STREAM_HEADER}\0")).await;
    widget.read_unit_containing("<bind").await;
    widget.send("</stream:stream>\0").await;
    let rest = widget.read_to_close().await;
    assert!(rest.ends_with("</stream:stream>\0"), "{rest:?}");
}
