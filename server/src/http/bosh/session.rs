//! One BOSH session (XEP-0124): the request/response bookkeeping around one XML stream.
//!
//! The stream itself runs in the same core as a TCP client's: the session owns the far end
//! of an in-memory pipe whose near end is the [`Connection`](crate::stream::connection)'s
//! transport ([`Transport::Memory`](crate::stream::transport::Transport)). What the client
//! POSTs is written into the pipe as stream bytes; what the core writes is read back by
//! [`Session::drive`] and parsed with the same [`StreamReader`] as client input, so every
//! stanza arrives here as an element, to be put in a `<body/>`:
//! - the core's stream header is not forwarded: its `id` and `from` become the `authid` and
//!   `from` of the session creation response (XEP-0206 §4);
//! - `<stream:features>` and stanzas are queued (`pending`) until a request can carry them;
//! - the core's `</stream:stream>` becomes `type='terminate'`, after a `<stream:error>` with
//!   `condition='remote-stream-error'`, its content copied into the body (XEP-0206,
//!   "remote-stream-error").
//!
//! Requests are processed strictly in `rid` order (§14.2); answers are cached for the window
//! of `requests` so a repeated `rid` gets the same answer again (§14.3).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use jabberwock_protocol::ns;
use jabberwock_protocol::xml::reader::{Event, Limits, StreamReader};
use jabberwock_protocol::xml::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::{oneshot, Notify};
use tokio::time::{sleep_until, timeout, timeout_at, Instant};

use super::body::{self, Condition, Request};

/// What a session was configured with at creation.
pub struct Params {
    pub sid: String,
    pub host: String,
    pub lang: String,
    pub wait: Duration,
    pub hold: usize,
    /// `requests` (§7.1): the most requests the client may have open, also the size of the
    /// `rid` window and of the answer cache.
    pub requests: u64,
    pub inactivity: Duration,
    pub max_pending: usize,
    /// The outbound reader's limits (what the core writes is parsed back).
    pub limits: Limits,
}

pub struct Session {
    pub params: Params,
    state: Mutex<State>,
    /// Woken when `next_rid` moves, when the core's header arrives, and at the end.
    changed: Notify,
    /// The client's direction of the pipe; `None` once shut (the core then reads EOF).
    input: tokio::sync::Mutex<Option<WriteHalf<DuplexStream>>>,
}

struct State {
    /// The `rid` the next request to be processed must carry.
    next_rid: u64,
    /// Requests being held, oldest first (at most `hold`).
    held: VecDeque<Held>,
    /// The last answers sent, by `rid`, for retransmission (§14.3).
    answered: VecDeque<(u64, Bytes)>,
    /// Serialised elements not yet sent.
    pending: Vec<u8>,
    /// Parses what the core writes.
    out: StreamReader,
    /// The core's stream id and `from`, once its first header was read.
    stream: Option<(String, String)>,
    /// A `<stream:error>` the core sent: it goes into the terminate body.
    stream_error: bool,
    /// Set once the session is over; every later answer is this terminate.
    end: Option<Option<Condition>>,
    /// When the client was last known to have no request open (§7.1 `inactivity`).
    idle_since: Option<Instant>,
    /// `requests`: how many answers are kept for retransmission.
    window: u64,
}

struct Held {
    rid: u64,
    tx: oneshot::Sender<Bytes>,
}

impl Session {
    pub fn new(params: Params, first_rid: u64, input: WriteHalf<DuplexStream>) -> Arc<Session> {
        let out = StreamReader::new(params.limits.clone());
        let window = params.requests;
        Arc::new(Session {
            params,
            state: Mutex::new(State {
                next_rid: first_rid.wrapping_add(1),
                held: VecDeque::new(),
                answered: VecDeque::new(),
                pending: Vec::new(),
                out,
                stream: None,
                stream_error: false,
                end: None,
                idle_since: None,
                window,
            }),
            changed: Notify::new(),
            input: tokio::sync::Mutex::new(Some(input)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session creation response (§7.1, XEP-0206 §4): waits until the core has opened
    /// its stream (and, normally in the same write, sent its features).
    pub async fn creation_response(&self, rid: u64, ver: &str, deadline: Instant) -> Bytes {
        let ready =
            |st: &State| st.end.is_some() || (st.stream.is_some() && !st.pending.is_empty());
        let _ = timeout_at(deadline, self.wait_for(ready)).await;
        let mut st = self.lock();
        let bytes = match (st.end, st.stream.clone()) {
            (None, Some((id, from))) => {
                let p = &self.params;
                let (wait, hold, requests, inactivity) = (
                    p.wait.as_secs().to_string(),
                    p.hold.to_string(),
                    p.requests.to_string(),
                    p.inactivity.as_secs().to_string(),
                );
                let attrs = [
                    ("sid", p.sid.as_str()),
                    ("wait", wait.as_str()),
                    ("hold", hold.as_str()),
                    ("requests", requests.as_str()),
                    ("inactivity", inactivity.as_str()),
                    // We never ask a client to slow down its polling.
                    ("polling", "0"),
                    ("ver", ver),
                    ("from", from.as_str()),
                    ("authid", id.as_str()),
                    ("xml:lang", p.lang.as_str()),
                    ("xmlns:xmpp", body::NS_XBOSH),
                    ("xmpp:version", "1.0"),
                    // XEP-0206 §5: we implement stream restarts.
                    ("xmpp:restartlogic", "true"),
                ];
                let payload = std::mem::take(&mut st.pending);
                Bytes::from(body::response(&attrs, &payload))
            }
            (None, None) => {
                // The core never answered in time: treat as its failure.
                st.finish(Some(Condition::InternalServerError));
                st.terminate_body()
            }
            (Some(_), _) => st.terminate_body(),
        };
        st.cache(rid, bytes.clone());
        st.idle_since = Some(Instant::now());
        bytes
    }

    /// Handles one request of an existing session and returns the answer's bytes.
    pub async fn request(&self, req: Request, rid: u64) -> Bytes {
        enum Next {
            Process,
            Rehold(oneshot::Receiver<Bytes>),
            Reject(Bytes),
        }
        let next = {
            let mut st = self.lock();
            st.idle_since = None;
            if let Some(bytes) = st.cached(rid) {
                // §14.3: a repeated rid gets the answer it got before.
                st.idle_since = st.held.is_empty().then(Instant::now);
                return bytes;
            }
            if st.end.is_some() {
                return st.terminate_body();
            }
            if let Some(pos) = st.held.iter().position(|h| h.rid == rid) {
                // The connection that carried this rid broke while held: the repeat takes
                // its place (the old sender is dropped, nobody listens there any more).
                let (tx, rx) = oneshot::channel();
                st.held[pos] = Held { rid, tx };
                Next::Rehold(rx)
            } else if rid < st.next_rid || rid - st.next_rid >= self.params.requests {
                // §14.3: outside the window.
                tracing::info!(sid = %self.params.sid, rid, expected = st.next_rid, "BOSH rid out of window");
                st.finish(Some(Condition::ItemNotFound));
                Next::Reject(st.terminate_body())
            } else {
                Next::Process
            }
        };
        let rx = match next {
            Next::Reject(bytes) => {
                self.changed.notify_waiters();
                self.shut_input().await;
                return bytes;
            }
            Next::Rehold(rx) => rx,
            Next::Process => {
                // §14.2: requests are processed in rid order; a later one waits for the gap.
                let turn = |st: &State| st.next_rid == rid || st.end.is_some();
                if timeout(self.params.wait, self.wait_for(turn))
                    .await
                    .is_err()
                {
                    let bytes = {
                        let mut st = self.lock();
                        st.finish(Some(Condition::ItemNotFound));
                        st.terminate_body()
                    };
                    self.changed.notify_waiters();
                    self.shut_input().await;
                    return bytes;
                }
                if self.lock().end.is_some() {
                    return self.lock().terminate_body();
                }
                self.process(&req).await;
                {
                    let mut st = self.lock();
                    st.next_rid = rid + 1;
                }
                self.changed.notify_waiters();
                let mut st = self.lock();
                if st.end.is_some() || !st.pending.is_empty() {
                    let bytes = st.next_body();
                    st.cache(rid, bytes.clone());
                    st.idle_since = st.held.is_empty().then(Instant::now);
                    return bytes;
                }
                let (tx, rx) = oneshot::channel();
                st.held.push_back(Held { rid, tx });
                // §11: beyond `hold`, the oldest held request is answered (empty) now.
                while st.held.len() > self.params.hold {
                    st.answer_oldest();
                }
                rx
            }
        };
        self.hold(rid, rx).await
    }

    /// Waits for a held request's answer, or answers it empty after `wait` (§7.1).
    async fn hold(&self, rid: u64, mut rx: oneshot::Receiver<Bytes>) -> Bytes {
        if let Ok(Ok(bytes)) = timeout(self.params.wait, &mut rx).await {
            return bytes;
        }
        let mut st = self.lock();
        if let Ok(bytes) = rx.try_recv() {
            return bytes;
        }
        if let Some(pos) = st.held.iter().position(|h| h.rid == rid) {
            st.held.remove(pos);
            let bytes = st.next_body();
            st.cache(rid, bytes.clone());
            if st.held.is_empty() {
                st.idle_since = Some(Instant::now());
            }
            return bytes;
        }
        // Replaced by a retransmission of the same rid: this connection is dead anyway.
        st.cached(rid).unwrap_or_else(|| st.terminate_body())
    }

    /// Writes a request's content into the stream: the stanzas, then a restart header
    /// (XEP-0206 §5) or the stream close of a terminate (§13). An empty request becomes a
    /// whitespace keepalive, so the core's idle timer sees a client that is still there.
    async fn process(&self, req: &Request) {
        let mut bytes = Vec::new();
        for element in &req.payload {
            element.write_to(&mut bytes, ns::CLIENT);
        }
        if req.restart {
            // The core's next header opens a new stream: the reader starts over with it.
            self.lock().out.restart();
            bytes.extend_from_slice(&stream_header(&self.params.host, &self.params.lang));
        }
        if req.terminate {
            bytes.extend_from_slice(b"</stream:stream>");
        }
        if bytes.is_empty() {
            if self.lock().stream.is_none() {
                return;
            }
            bytes.push(b' ');
        }
        let mut input = self.input.lock().await;
        if let Some(pipe) = input.as_mut() {
            if pipe.write_all(&bytes).await.is_err() {
                *input = None;
            }
        }
    }

    /// Shuts the client's direction: the core reads end-of-stream and ends the session as a
    /// lost connection (unavailable presence goes out, as for a dropped TCP client).
    async fn shut_input(&self) {
        if let Some(mut pipe) = self.input.lock().await.take() {
            let _ = pipe.shutdown().await;
        }
    }

    /// Waits until `ready` holds (checked under the lock after every change).
    async fn wait_for(&self, ready: impl Fn(&State) -> bool) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if ready(&self.lock()) {
                return;
            }
            changed.await;
        }
    }

    /// Runs for the life of the session: reads what the core writes, answers held requests
    /// with it, and ends the session after `inactivity` seconds without a request (§7.1).
    /// Returns once the core has closed its end of the pipe.
    pub async fn drive(&self, mut output: ReadHalf<DuplexStream>) {
        let mut buf = vec![0u8; 8192];
        loop {
            let idle_deadline = {
                let st = self.lock();
                match (st.end, st.idle_since) {
                    (None, Some(since)) => since + self.params.inactivity,
                    _ => Instant::now() + self.params.inactivity,
                }
            };
            tokio::select! {
                read = output.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if self.on_output(&buf[..n]) {
                            self.shut_input().await;
                        }
                    }
                },
                _ = sleep_until(idle_deadline) => {
                    let expired = {
                        let mut st = self.lock();
                        // A held request whose HTTP connection is gone holds nothing open.
                        st.held.retain(|h| !h.tx.is_closed());
                        if st.held.is_empty() && st.idle_since.is_none() {
                            st.idle_since = Some(Instant::now());
                        }
                        let expired = st.end.is_none()
                            && st.idle_since.is_some_and(|s| s + self.params.inactivity <= Instant::now());
                        if expired {
                            // Nobody is there to read a terminate; it is only for a late request.
                            st.finish(None);
                        }
                        expired
                    };
                    if expired {
                        tracing::info!(sid = %self.params.sid, "BOSH session inactive, closing");
                        self.changed.notify_waiters();
                        self.shut_input().await;
                    }
                }
            }
        }
        // The core is gone: whoever is still waiting learns the session is over.
        let mut st = self.lock();
        if st.end.is_none() {
            let condition = st.stream_error.then_some(Condition::RemoteStreamError);
            st.finish(condition);
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// Takes bytes the core wrote. Returns true if the session must end now (the client's
    /// direction is then shut by the caller).
    fn on_output(&self, bytes: &[u8]) -> bool {
        let mut st = self.lock();
        if st.end.is_some() {
            // Ended: what the core still writes while it notices is dropped.
            return false;
        }
        st.out.feed(bytes);
        let mut header_seen = false;
        let mut shut = false;
        loop {
            match st.out.next_event() {
                Ok(Some(Event::Header(header))) => {
                    if st.stream.is_none() {
                        st.stream = Some((
                            header.id.unwrap_or_default(),
                            header.from.unwrap_or_else(|| self.params.host.clone()),
                        ));
                    }
                    header_seen = true;
                }
                Ok(Some(Event::Stanza(element))) => {
                    if element.is("error", ns::STREAM) {
                        // XEP-0206 "remote-stream-error": the body carries the content of
                        // the <stream:error/>, not the element itself.
                        st.stream_error = true;
                        for child in element.children() {
                            body::write_payload(&mut st.pending, child);
                        }
                        continue;
                    }
                    let element = without_starttls(element);
                    body::write_payload(&mut st.pending, &element);
                }
                Ok(Some(Event::Close)) => {
                    let condition = st.stream_error.then_some(Condition::RemoteStreamError);
                    st.finish(condition);
                    break;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(sid = %self.params.sid, error = %e, "BOSH: unreadable output from the core");
                    st.pending.clear();
                    st.finish(Some(Condition::InternalServerError));
                    shut = true;
                    break;
                }
            }
        }
        if st.end.is_none() && st.pending.len() > self.params.max_pending {
            // Bounded memory per session: a client that stops collecting is cut off.
            tracing::info!(sid = %self.params.sid, pending = st.pending.len(), "BOSH session over http.bosh_max_pending_bytes");
            st.pending.clear();
            st.finish(Some(Condition::PolicyViolation));
            shut = true;
        }
        let ended = st.end.is_some();
        if !ended && !st.pending.is_empty() && !st.held.is_empty() {
            st.answer_oldest();
        }
        drop(st);
        if ended || header_seen {
            self.changed.notify_waiters();
        }
        shut
    }
}

impl State {
    fn cached(&self, rid: u64) -> Option<Bytes> {
        self.answered
            .iter()
            .find(|(r, _)| *r == rid)
            .map(|(_, b)| b.clone())
    }

    fn cache(&mut self, rid: u64, bytes: Bytes) {
        self.answered.push_back((rid, bytes));
        while self.answered.len() as u64 > self.window {
            self.answered.pop_front();
        }
    }

    /// Ends the session: every held request gets the terminate body now.
    fn finish(&mut self, condition: Option<Condition>) {
        if self.end.is_none() {
            self.end = Some(condition);
        }
        while !self.held.is_empty() {
            self.answer_oldest();
        }
    }

    /// The terminate body, with what was still pending.
    fn terminate_body(&mut self) -> Bytes {
        let condition = self.end.flatten();
        let payload = std::mem::take(&mut self.pending);
        Bytes::from(body::terminate(condition, &payload))
    }

    /// The next answer: everything pending, or the terminate body once ended.
    fn next_body(&mut self) -> Bytes {
        if self.end.is_some() {
            return self.terminate_body();
        }
        let payload = std::mem::take(&mut self.pending);
        Bytes::from(body::response(&[], &payload))
    }

    fn answer_oldest(&mut self) {
        let Some(held) = self.held.pop_front() else {
            return;
        };
        let bytes = self.next_body();
        self.cache(held.rid, bytes.clone());
        let _ = held.tx.send(bytes);
        if self.held.is_empty() {
            self.idle_since = Some(Instant::now());
        }
    }
}

/// XEP-0206 §4: no STARTTLS over BOSH, TLS is the HTTP layer's. The core offers it on an
/// unencrypted stream as it would to TCP; it is taken out of the features here (without it
/// and with `c2s.require_encryption`, nothing is left to negotiate, as for RFC 7395).
fn without_starttls(features: Element) -> Element {
    if !features.is("features", ns::STREAM) || features.get_child("starttls", ns::TLS).is_none() {
        return features;
    }
    let mut out = Element::new("features", ns::STREAM);
    for (name, value) in features.attrs() {
        out.set_attr(name, value);
    }
    for child in features.children() {
        if !child.is("starttls", ns::TLS) {
            out.push_child(child.clone());
        }
    }
    out
}

/// The stream header the client would have sent (XEP-0206 §4, §5: the connection manager
/// opens the stream on the client's behalf). `host` is a hosted domain and `lang` a checked
/// language tag, so neither needs escaping.
pub fn stream_header(host: &str, lang: &str) -> Vec<u8> {
    format!(
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{host}' version='1.0' xml:lang='{lang}'>"
    )
    .into_bytes()
}
