//! An XMPP-over-WebSocket client (RFC 7395) for the tests: tokio-tungstenite (not ours)
//! sending `<open/>`, one element per text message, `<close/>`, and checks of the framing
//! of what the server sends.

use std::net::SocketAddr;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::{tls, WAIT};

pub const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
pub const OPEN: &str =
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";
pub const CLOSE: &str = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What the server sent, message by message.
#[derive(Debug, PartialEq)]
pub enum Got {
    Text(String),
    /// A close frame.
    Closed,
    /// The connection ended without one.
    Ended,
}

pub struct XmppWs {
    pub ws: WebSocketStream<Box<dyn Io>>,
    /// Every text message received, for the framing checks.
    pub seen: Vec<String>,
    pub pongs: Vec<Vec<u8>>,
}

/// Plain or TLS (pinned to the test server's certificate) to `addr`.
pub async fn transport(addr: SocketAddr, cert: Option<&Path>) -> Box<dyn Io> {
    let tcp = timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    match cert {
        None => Box::new(tcp),
        Some(cert) => {
            let connector = tokio_rustls::TlsConnector::from(tls::client_config(cert));
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let tls = timeout(WAIT, connector.connect(name, tcp))
                .await
                .expect("TLS in time")
                .expect("TLS handshake");
            Box::new(tls)
        }
    }
}

impl XmppWs {
    /// Upgrades to `path` on `addr` offering `protocol` (None = no subprotocol header).
    pub async fn try_connect(
        addr: SocketAddr,
        cert: Option<&Path>,
        path: &str,
        protocol: Option<&'static str>,
    ) -> Result<XmppWs, WsError> {
        let io = transport(addr, cert).await;
        let scheme = if cert.is_some() { "wss" } else { "ws" };
        let url = format!("{scheme}://localhost:{}{path}", addr.port());
        let mut request = url.into_client_request().expect("request");
        if let Some(protocol) = protocol {
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
        }
        let (ws, response) = timeout(WAIT, tokio_tungstenite::client_async(request, io))
            .await
            .expect("WebSocket upgrade in time")?;
        // RFC 7395 §3.1: the server must name the subprotocol it speaks.
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap()),
            Some("xmpp"),
            "{response:?}"
        );
        Ok(XmppWs {
            ws,
            seen: Vec::new(),
            pongs: Vec::new(),
        })
    }

    pub async fn connect(addr: SocketAddr, cert: Option<&Path>) -> XmppWs {
        XmppWs::try_connect(addr, cert, "/xmpp-websocket", Some("xmpp"))
            .await
            .expect("WebSocket upgrade")
    }

    pub async fn send(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("send message");
    }

    pub async fn next(&mut self) -> Got {
        loop {
            let frame = timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("nothing within {WAIT:?}; seen {:#?}", self.seen));
            match frame {
                None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                    return Got::Ended
                }
                Some(Ok(Message::Text(text))) => {
                    let text = text.to_string();
                    self.seen.push(text.clone());
                    return Got::Text(text);
                }
                Some(Ok(Message::Binary(data))) => {
                    panic!("RFC 7395 §3.2: binary message from the server: {data:?}")
                }
                Some(Ok(Message::Pong(data))) => self.pongs.push(data.to_vec()),
                Some(Ok(Message::Close(_))) => return Got::Closed,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("WebSocket error: {e}"),
            }
        }
    }

    pub async fn recv(&mut self) -> String {
        match self.next().await {
            Got::Text(text) => text,
            other => panic!("expected a message, got {other:?}; seen {:#?}", self.seen),
        }
    }

    pub async fn recv_containing(&mut self, needle: &str) -> String {
        loop {
            let text = self.recv().await;
            if text.contains(needle) {
                return text;
            }
        }
    }

    /// After a close or an error: everything up to the end of the WebSocket.
    pub async fn rest_until_closed(&mut self) -> (Vec<String>, Got) {
        let mut texts = Vec::new();
        loop {
            match self.next().await {
                Got::Text(t) => texts.push(t),
                end => return (texts, end),
            }
        }
    }

    /// `<open/>`, our open and features; returns the features message.
    pub async fn open(&mut self) -> String {
        self.send(OPEN).await;
        let open = self.recv().await;
        assert_open(&open);
        let features = self.recv().await;
        assert!(
            features
                .starts_with("<stream:features xmlns:stream=\"http://etherx.jabber.org/streams\""),
            "{features}"
        );
        features
    }

    /// Open, SASL PLAIN, restart (a new `<open/>`, RFC 7395 §3.3.3), bind, initial presence.
    pub async fn login(&mut self, user: &str, password: &str, resource: &str) -> String {
        self.authenticate(user, password).await;
        self.send(&format!(
            "<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
        ))
        .await;
        let bound = self.recv_containing("id=\"bind1\"").await;
        let jid = bound
            .split("<jid>")
            .nth(1)
            .and_then(|r| r.split("</jid>").next())
            .unwrap_or_else(|| panic!("no jid: {bound}"))
            .to_owned();
        self.send("<presence xmlns='jabber:client'/>").await;
        self.recv_containing(&format!("from=\"{jid}\"")).await;
        jid
    }

    /// Open, SASL PLAIN, restart; returns the features after authentication.
    pub async fn authenticate(&mut self, user: &str, password: &str) -> String {
        let features = self.open().await;
        assert!(
            features.contains("<mechanism>PLAIN</mechanism>"),
            "{features}"
        );
        assert!(
            !features.contains("starttls"),
            "no STARTTLS inside a WebSocket: {features}"
        );
        let token = B64.encode(format!("\0{user}\0{password}"));
        self.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
        ))
        .await;
        let success = self.recv().await;
        assert_eq!(
            success,
            "<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>"
        );
        let features = self.open().await;
        assert!(
            features.contains("urn:ietf:params:xml:ns:xmpp-bind"),
            "{features}"
        );
        features
    }

    /// RFC 7395 §3.3.2 on everything received so far.
    pub fn assert_framing(&self) {
        assert!(!self.seen.is_empty());
        for message in &self.seen {
            assert_one_element(message);
            let first_tag = &message[..message.find('>').unwrap() + 1];
            if ["<message", "<presence", "<iq"].iter().any(|s| {
                message.starts_with(&format!("{s} ")) || message.starts_with(&format!("{s}>"))
            }) {
                assert!(
                    first_tag.contains("xmlns=\"jabber:client\""),
                    "a stanza without xmlns=\"jabber:client\": {message}"
                );
            }
            if message.starts_with("<stream:") {
                assert!(
                    first_tag.contains("xmlns:stream=\"http://etherx.jabber.org/streams\""),
                    "stream prefix not declared: {message}"
                );
            }
        }
    }
}

/// One complete element and nothing else: `<name …/>` or `<name …>…</name>`.
pub fn assert_one_element(message: &str) {
    assert!(
        message.starts_with('<') && !message.starts_with("<?"),
        "{message}"
    );
    let name: String = message[1..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
        .collect();
    let self_closed = message.ends_with("/>") && message.find('>') == Some(message.len() - 1);
    assert!(
        self_closed || message.ends_with(&format!("</{name}>")),
        "not one complete element: {message}"
    );
    // No second top-level element after the first one's end.
    if !self_closed {
        let close = format!("</{name}>");
        assert_eq!(
            message.find(&close),
            Some(message.len() - close.len()),
            "{message}"
        );
    }
}

pub fn assert_open(open: &str) {
    assert!(
        open.starts_with(&format!("<open xmlns=\"{FRAMING}\" id=\"")),
        "{open}"
    );
    for attr in ["from=\"localhost\"", "version=\"1.0\"", "xml:lang=\"en\""] {
        assert!(open.contains(attr), "{attr} missing: {open}");
    }
    assert!(open.ends_with("/>"), "{open}");
}
