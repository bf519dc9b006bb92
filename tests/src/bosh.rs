//! A BOSH (XEP-0124/0206) client for the tests: hyper's HTTP/1.1 client (one connection per
//! request, so requests can be open at the same time, as a browser's are), plus helpers
//! for the `<body/>` wrapper and a full login.

use std::net::SocketAddr;

use base64::Engine;

use crate::WAIT;

/// The httpbind namespace.
pub const NS: &str = "http://jabber.org/protocol/httpbind";

/// An HTTP answer: status, `Content-Type`, body text.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// POSTs `body` to `http://addr{path}` on a fresh connection; every step under [`WAIT`]
/// (a held request may take up to its `wait`, which tests keep below that).
pub async fn post(addr: SocketAddr, path: &str, body: impl Into<Vec<u8>>) -> Answer {
    request(addr, "POST", path, body.into()).await
}

/// Any method, for the odd cases (GET, OPTIONS).
pub async fn request(addr: SocketAddr, method: &str, path: &str, body: Vec<u8>) -> Answer {
    let headers = [("content-type", "text/xml; charset=utf-8")];
    let reply = crate::http::request(addr, method, path, &headers, body).await;
    Answer {
        status: reply.status,
        content_type: reply.header("content-type").unwrap_or_default().to_owned(),
        body: String::from_utf8_lossy(&reply.body).into_owned(),
    }
}

/// The value of attribute `name` in the first tag of `xml` (either quote style).
pub fn attr(xml: &str, name: &str) -> Option<String> {
    let tag_end = xml.find('>')?;
    let tag = &xml[..tag_end];
    for quote in ['"', '\''] {
        let needle = format!(" {name}={quote}");
        if let Some(at) = tag.find(&needle) {
            let rest = &tag[at + needle.len()..];
            return rest.split(quote).next().map(str::to_owned);
        }
    }
    None
}

/// The stanzas inside the `<body/>` wrappers of `answers` (one or more answers' text).
pub fn payloads(answers: &str) -> Vec<String> {
    crate::raw::elements(answers)
        .iter()
        .flat_map(|body| match (body.find('>'), body.rfind("</body>")) {
            (Some(open), Some(close)) if !body[..=open].ends_with("/>") => {
                crate::raw::elements(&body[open + 1..close])
            }
            _ => Vec::new(),
        })
        .collect()
}

/// One BOSH session as a client sees it.
pub struct BoshClient {
    pub addr: SocketAddr,
    pub path: String,
    pub host: String,
    pub sid: String,
    /// The `rid` the next request will carry.
    pub rid: u64,
    /// Everything received so far and not yet consumed by [`BoshClient::read_until`].
    pub inbox: String,
}

impl BoshClient {
    /// Session creation (XEP-0124 §7.1, XEP-0206 §4) with `wait` seconds; returns the
    /// client and the creation response.
    pub async fn create(
        addr: SocketAddr,
        path: &str,
        host: &str,
        wait: u64,
    ) -> (BoshClient, Answer) {
        let rid = 1_000_000 + u64::from(rand_u16());
        let answer = post(
            addr,
            path,
            format!(
                "<body content='text/xml; charset=utf-8' hold='1' rid='{rid}' to='{host}' ver='1.6' wait='{wait}' xml:lang='en' xmpp:version='1.0' xmlns='{NS}' xmlns:xmpp='urn:xmpp:xbosh'/>"
            ),
        )
        .await;
        let sid = attr(&answer.body, "sid")
            .unwrap_or_else(|| panic!("no sid in the creation response: {answer:?}"));
        let client = BoshClient {
            addr,
            path: path.to_owned(),
            host: host.to_owned(),
            sid,
            rid: rid + 1,
            inbox: answer.body.clone(),
        };
        (client, answer)
    }

    /// The next request's `<body/>`, with extra attributes and payload; takes the next rid.
    pub fn next_body(&mut self, attrs: &str, payload: &str) -> String {
        let rid = self.rid;
        self.rid += 1;
        format!(
            "<body rid='{rid}' sid='{}' xmlns='{NS}' xmlns:xmpp='urn:xmpp:xbosh'{attrs}>{payload}</body>",
            self.sid
        )
    }

    /// Sends the payload with the next rid and returns the answer (also added to `inbox`).
    pub async fn send(&mut self, payload: &str) -> Answer {
        let body = self.next_body("", payload);
        let answer = post(self.addr, &self.path, body).await;
        self.inbox.push_str(&answer.body);
        answer
    }

    /// Polls (empty requests) until the collected answers contain `needle`; returns and
    /// consumes everything collected up to the end of the answer holding it.
    pub async fn read_until(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(at) = self.inbox.find(needle) {
                let end = self.inbox[at..]
                    .find("</body>")
                    .map_or(self.inbox.len(), |e| at + e + "</body>".len());
                return self.inbox.drain(..end).collect();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "BOSH: nothing with {needle:?} arrived; got {:?}",
                self.inbox
            );
            self.send("").await;
        }
    }

    /// Creation, SASL PLAIN, restart, bind, initial presence (its echo awaited). `wait` is
    /// the session's hold time. Returns the client and its full JID.
    pub async fn login(
        addr: SocketAddr,
        path: &str,
        host: &str,
        user: &str,
        password: &str,
        resource: &str,
        wait: u64,
    ) -> (BoshClient, String) {
        let (mut c, _) = BoshClient::create(addr, path, host, wait).await;
        let features = c.read_until("</stream:features>").await;
        assert!(
            features.contains("<mechanism>PLAIN</mechanism>"),
            "PLAIN not offered over BOSH: {features}"
        );
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        c.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
        ))
        .await;
        c.read_until("<success").await;
        let body = c.next_body(
            &format!(" to='{host}' xml:lang='en' xmpp:restart='true'"),
            "",
        );
        let restarted = post(addr, path, body).await;
        c.inbox.push_str(&restarted.body);
        let features = c.read_until("</stream:features>").await;
        assert!(
            features.contains("urn:ietf:params:xml:ns:xmpp-bind"),
            "no bind feature after the restart: {features}"
        );
        c.send(&format!(
            "<iq type='set' id='bind1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
        ))
        .await;
        let result = c.read_until("</iq>").await;
        let jid = result
            .split("<jid>")
            .nth(1)
            .and_then(|r| r.split("</jid>").next())
            .unwrap_or_else(|| panic!("no jid in the bind result: {result}"))
            .to_owned();
        c.send("<presence xmlns='jabber:client'/>").await;
        c.read_until(&format!("from=\"{jid}\"")).await;
        (c, jid)
    }
}

fn rand_u16() -> u16 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u16)
        .unwrap_or(7)
}
