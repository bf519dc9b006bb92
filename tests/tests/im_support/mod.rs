//! Shared by the IM tests (subscription_states.rs, im_privacy.rs): a logged-in client with
//! a ping barrier, roster get, and readers for the stanzas it collected.
//!
//! The barrier works because a session handles its client's stanzas one at a time, to the
//! end (presence processing, roster updates, routing to the contact and the contact's
//! server's answers all happen before the next stanza is read), and each session's inbox
//! is a FIFO: once the actor's ping is answered, everything its earlier stanzas caused is
//! queued; once an observer's own ping is answered, everything queued for it was read.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;

use jabberwock_tests::raw::RawClient;

/// Creates `user@localhost` by XEP-0077 in-band registration over STARTTLS (the host needs
/// `registration = true`).
pub async fn register(addr: SocketAddr, cert: &Path, user: &str, password: &str) {
    let (mut c, _features) = RawClient::starttls_stream(addr, cert).await;
    c.send(format!(
        "<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>{user}</username><password>{password}</password></query></iq>"
    ))
    .await;
    let reply = c.read_stanza_containing("id=\"reg1\"").await;
    assert!(
        reply.contains("type=\"result\""),
        "registration of {user} failed: {reply}"
    );
}

pub struct Peer {
    pub c: RawClient,
    /// Full JID, e.g. `alice@localhost/res`.
    pub jid: String,
    /// Bare JID.
    pub bare: String,
    n: u32,
}

impl Peer {
    /// Standard login (STARTTLS, PLAIN, bind, initial presence).
    pub async fn login(
        addr: SocketAddr,
        cert: &Path,
        user: &str,
        password: &str,
        res: &str,
    ) -> Peer {
        let (c, jid) = RawClient::login_standard(addr, cert, user, password, res).await;
        let bare = jid.split('/').next().unwrap().to_owned();
        Peer { c, jid, bare, n: 0 }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.n += 1;
        format!("{prefix}-{}", self.n)
    }

    /// Sends `iq` (with `{id}` replaced by a fresh id) and reads until its answer; returns
    /// the answer and the stanzas that came before it.
    pub async fn iq(&mut self, iq: &str) -> (String, Vec<String>) {
        let id = self.next_id("iq");
        self.c.send(iq.replace("{id}", &id)).await;
        let needle = format!("id=\"{id}\"");
        let mut before = Vec::new();
        loop {
            let stanza = self.c.read_stanza().await;
            if stanza.starts_with("<iq") && stanza.contains(&needle) {
                return (stanza, before);
            }
            before.push(stanza);
        }
    }

    /// The ping barrier: everything delivered to this session before the pong.
    pub async fn sync(&mut self) -> Vec<String> {
        let (pong, before) = self
            .iq("<iq type='get' id='{id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
            .await;
        assert!(
            pong.contains("type=\"result\""),
            "{}: ping: {pong}",
            self.jid
        );
        before
    }

    /// Roster get; returns the result and what came before it.
    pub async fn roster(&mut self) -> (String, Vec<String>) {
        let (result, before) = self
            .iq("<iq type='get' id='{id}'><query xmlns='jabber:iq:roster'/></iq>")
            .await;
        assert!(
            result.contains("type=\"result\""),
            "{}: roster get: {result}",
            self.jid
        );
        (result, before)
    }

    pub async fn send(&mut self, data: impl AsRef<[u8]>) {
        self.c.send(data).await;
    }
}

/// The value of attribute `name` of the first tag of `xml`.
pub fn attr(xml: &str, name: &str) -> Option<String> {
    let tag = &xml[..xml.find('>').map_or(xml.len(), |i| i + 1)];
    for quote in ['"', '\''] {
        let key = format!(" {name}={quote}");
        if let Some(start) = tag.find(&key) {
            let rest = &tag[start + key.len()..];
            return rest.find(quote).map(|end| rest[..end].to_owned());
        }
    }
    None
}

/// The `<item .../>` start tag for `jid` in a roster result or push, if any.
pub fn item_for(stanza: &str, jid: &str) -> Option<String> {
    stanza.match_indices("<item").find_map(|(i, _)| {
        let rest = &stanza[i..];
        let tag = &rest[..rest.find('>').map_or(rest.len(), |e| e + 1)];
        (attr(tag, "jid").as_deref() == Some(jid)).then(|| tag.to_owned())
    })
}

/// What a client sees of an item: (subscription, ask='subscribe', approved='true'); an
/// absent item reads as ("none", false, false).
pub fn visible(item: Option<&str>) -> (String, bool, bool) {
    match item {
        None => ("none".into(), false, false),
        Some(tag) => (
            attr(tag, "subscription").unwrap_or_else(|| "none".into()),
            attr(tag, "ask").as_deref() == Some("subscribe"),
            attr(tag, "approved").as_deref() == Some("true"),
        ),
    }
}

/// Roster pushes (`<iq type='set'>` with a jabber:iq:roster query) among `stanzas`.
pub fn pushes(stanzas: &[String]) -> Vec<&String> {
    stanzas
        .iter()
        .filter(|s| {
            s.starts_with("<iq")
                && attr(s, "type").as_deref() == Some("set")
                && s.contains("jabber:iq:roster")
        })
        .collect()
}

/// Presence stanzas whose `from` is `from_bare` or one of its resources.
pub fn presence_from<'a>(stanzas: &'a [String], from_bare: &str) -> Vec<&'a String> {
    stanzas
        .iter()
        .filter(|s| s.starts_with("<presence"))
        .filter(|s| {
            attr(s, "from")
                .is_some_and(|f| f == from_bare || f.starts_with(&format!("{from_bare}/")))
        })
        .collect()
}
