//! Incremental, sans-I/O reader for an XMPP stream: bytes in, events out.
//!
//! The caller [`StreamReader::feed`]s whatever the socket produced and then calls
//! [`StreamReader::next_event`] until it returns `Ok(None)`. Internally the
//! [`scanner`](super::scanner) frames the next complete unit while enforcing [`Limits`],
//! and only then is that unit parsed, once, into an [`Element`] ([`super::tree`]).
//!
//! ```
//! use jabberwock_protocol::xml::reader::{Event, Limits, StreamReader};
//!
//! let mut reader = StreamReader::new(Limits::default());
//! reader.feed(b"<stream:stream xmlns='jabber:client' \
//!     xmlns:stream='http://etherx.jabber.org/streams' version='1.0'><presence/>");
//! assert!(matches!(reader.next_event(), Ok(Some(Event::Header(_)))));
//! assert!(matches!(reader.next_event(), Ok(Some(Event::Stanza(el))) if el.name() == "presence"));
//! assert_eq!(reader.next_event(), Ok(None)); // need more bytes
//! ```
//!
//! Once an error has been returned the reader is dead: it keeps returning the same error
//! and drops further input (rustls-style), because after a stream error RFC 6120 §4.9.1.1
//! requires the stream to be closed anyway.

use super::element::Element;
use super::scanner::{Context, Scan, Scanner, UnitKind};
use super::scope::Scope;
use super::tree;
use crate::ns;
use crate::stream::{self, Dialect, StreamCondition, StreamError, StreamHeader};

/// Resource limits, checked while scanning so that over-limit input is never buffered whole.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest stanza in bytes (RFC 6120 §13.12 suggests servers set one; default 256 KiB).
    pub max_stanza_bytes: usize,
    /// Deepest element nesting within a stanza, the stanza itself being depth 1.
    pub max_depth: usize,
    /// Most attributes on one element, namespace declarations included.
    pub max_attributes: usize,
    /// Bytes allowed (declaration, whitespace and header) before the header is complete.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stanza_bytes: 262_144,
            max_depth: 32,
            max_attributes: 64,
            max_header_bytes: 4096,
        }
    }
}

/// What the peer sent.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// The stream header (also after a restart).
    Header(StreamHeader),
    /// A complete top-level element: a stanza or a negotiation element.
    Stanza(Element),
    /// `</stream:stream>` or `</flash:stream>`: the peer closed its stream (RFC 6120 §4.4).
    Close,
}

#[derive(Debug)]
enum State {
    /// Waiting for the header; counts bytes consumed against `max_header_bytes`.
    PreHeader { seen: usize, decl_seen: bool },
    /// Between or inside stanzas.
    Open,
    /// The peer closed its stream; later input is ignored.
    Closed,
    /// A stream error occurred; it is returned forever.
    Failed(StreamError),
}

/// Incremental reader for one direction of an XMPP (or Flash) stream.
#[derive(Debug)]
pub struct StreamReader {
    limits: Limits,
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already consumed; dropped lazily in `feed`.
    start: usize,
    scanner: Scanner,
    state: State,
    scope: Scope,
    dialect: Option<Dialect>,
    /// A standard header was read and nothing after it yet: a NUL arriving now still makes
    /// the stream a Flash one (see [`Self::header`]).
    nul_may_follow: bool,
    /// Qualified name of the stream root, which the close tag must repeat.
    root_name: String,
    /// The content namespace the header must declare (RFC 6120 §4.8.2).
    content: &'static str,
}

impl StreamReader {
    /// A reader expecting a stream header.
    pub fn new(limits: Limits) -> StreamReader {
        StreamReader {
            limits,
            buf: Vec::new(),
            start: 0,
            scanner: Scanner::new(),
            state: State::PreHeader {
                seen: 0,
                decl_seen: false,
            },
            scope: Scope::new(),
            dialect: None,
            nul_may_follow: false,
            root_name: String::new(),
            content: ns::CLIENT,
        }
    }

    /// A reader for a server-to-server stream: its header must declare `jabber:server`
    /// (RFC 6120 §4.8.2), and its stanzas are read as `jabber:client` ones. RFC 6120 §4.8.3
    /// makes the two content namespaces carry the same stanzas, so the server handles one
    /// (and writes stanzas without a namespace, which the peer's `jabber:server` default
    /// binds again).
    pub fn for_servers(limits: Limits) -> StreamReader {
        StreamReader {
            content: ns::SERVER,
            ..StreamReader::new(limits)
        }
    }

    /// Appends bytes received from the peer.
    pub fn feed(&mut self, bytes: &[u8]) {
        if matches!(self.state, State::Failed(_) | State::Closed) {
            return;
        }
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// The next event, `Ok(None)` if more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, StreamError> {
        match &self.state {
            State::Failed(e) => return Err(e.clone()),
            State::Closed => return Ok(None),
            State::PreHeader { .. } | State::Open => {}
        }
        match self.step() {
            // Everything fed is consumed: give the buffer back rather than keep its capacity
            // until the connection goes idle (an idle session then holds no reader buffer).
            Ok(None) if self.start == self.buf.len() => {
                self.buf = Vec::new();
                self.start = 0;
                Ok(None)
            }
            Ok(event) => Ok(event),
            Err(e) => {
                self.buf = Vec::new();
                self.start = 0;
                self.state = State::Failed(e.clone());
                Err(e)
            }
        }
    }

    /// Stream restart after STARTTLS (RFC 6120 §5.4.3.3): the next thing expected is a new
    /// header, with a fresh namespace scope.
    ///
    /// Buffered bytes are discarded: anything sent after `<starttls/>` before the TLS
    /// handshake must not be trusted afterwards (§5.3.3; the STARTTLS command-injection
    /// class of bugs).
    pub fn restart(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
        self.restart_keeping_input();
    }

    /// Stream restart after SASL success (RFC 6120 §4.3.3, §6.4.6): like [`Self::restart`],
    /// but the bytes already received after the last event are kept and read as the new
    /// stream. SASL adds no security layer here, so nothing changes under them, and a client
    /// that pipelines its restart and bind behind `<auth/>` would otherwise hang.
    pub fn restart_keeping_input(&mut self) {
        self.scanner.reset();
        self.scope = Scope::new();
        self.root_name.clear();
        self.state = State::PreHeader {
            seen: 0,
            decl_seen: false,
        };
    }

    /// Bytes fed but not yet consumed.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Releases buffer capacity beyond what is buffered (for idle connections).
    pub fn shrink_to_fit(&mut self) {
        self.compact();
        self.buf.shrink_to_fit();
        self.scope.shrink_to_fit();
    }

    /// The dialect of the last header read, if any.
    pub fn dialect(&self) -> Option<Dialect> {
        self.dialect.clone()
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    fn context(&self) -> Context {
        let (in_stream, at_start, decl_allowed, budget) = match &self.state {
            State::PreHeader { seen, decl_seen } => (
                false,
                *seen == 0,
                !decl_seen,
                self.limits.max_header_bytes.saturating_sub(*seen),
            ),
            _ => (true, false, false, self.limits.max_stanza_bytes),
        };
        Context {
            in_stream,
            // Before the header we cannot know the dialect yet, and a Flash client's first
            // unit already ends in NUL, so NULs are tolerated until the header says XMPP.
            nul_ok: !in_stream || self.dialect == Some(Dialect::Flash) || self.nul_may_follow,
            at_start,
            decl_allowed,
            budget,
            max_depth: self.limits.max_depth,
            max_attributes: self.limits.max_attributes,
        }
    }

    fn step(&mut self) -> Result<Option<Event>, StreamError> {
        loop {
            let ctx = self.context();
            let scan = self.scanner.scan(&self.buf[self.start..], &ctx)?;
            let (kind, len) = match scan {
                Scan::NeedMore => return Ok(None),
                Scan::Skip(n) => {
                    if self.nul_may_follow && self.buf[self.start..self.start + n].contains(&0) {
                        // The NUL came in a later read than the header: the same Flash
                        // stream, noticed late. `dialect()` says so from now on.
                        self.dialect = Some(Dialect::Flash);
                        self.nul_may_follow = false;
                    }
                    self.consume(n)?;
                    continue;
                }
                Scan::Unit(kind, len) => (kind, len),
            };
            self.nul_may_follow = false;
            let unit_start = self.start;
            self.consume(len)?;
            let unit = &self.buf[unit_start..unit_start + len];
            match kind {
                UnitKind::Declaration => {
                    tree::check_declaration(unit)?;
                    if let State::PreHeader { decl_seen, .. } = &mut self.state {
                        *decl_seen = true;
                    }
                }
                UnitKind::Header => return self.header(unit_start, len).map(Some),
                UnitKind::Stanza => {
                    let el = tree::parse_element(unit, &mut self.scope)?;
                    return Ok(Some(Event::Stanza(el)));
                }
                UnitKind::Close => {
                    self.check_close(unit)?;
                    self.state = State::Closed;
                    return Ok(Some(Event::Close));
                }
            }
        }
    }

    /// Marks `n` bytes consumed, charging them to the header budget before the header.
    fn consume(&mut self, n: usize) -> Result<(), StreamError> {
        self.start += n;
        if let State::PreHeader { seen, .. } = &mut self.state {
            *seen += n;
            if *seen > self.limits.max_header_bytes {
                return Err(StreamError::with_text(
                    StreamCondition::PolicyViolation,
                    "stream header too large",
                ));
            }
        }
        Ok(())
    }

    fn header(&mut self, at: usize, len: usize) -> Result<Event, StreamError> {
        let tag = tree::parse_start_tag(&self.buf[at..at + len])?;
        let (mut header, mut scope) = stream::from_start_tag(&tag, self.content)?;
        if self.content == ns::SERVER {
            // Read as jabber:client from here on (see `for_servers`).
            scope.push_declarations(&[("xmlns".to_owned(), ns::CLIENT.to_owned())])?;
        }
        // COMPAT: a standard header sent over Flash's XMLSocket arrives NUL-terminated, and
        // such a client sees nothing we send until a NUL: serve it as a Flash stream, as
        // jabberd2 did for any NUL in the first read (flash-protocol.md §3). Its restart
        // header keeps that framing, whatever bytes have arrived with it. The NUL usually
        // comes in the same read (XMLSocket sends both in one write); should TCP split them,
        // the header is reported as standard and the NUL, when it comes, turns the stream
        // Flash ([`Self::dialect`]), so the framing never depends on how bytes were cut.
        if header.dialect == Dialect::Xmpp
            && (self.nul_follows() || self.dialect == Some(Dialect::Flash))
        {
            header.dialect = Dialect::Flash;
        }
        self.nul_may_follow = header.dialect == Dialect::Xmpp;
        self.scope = scope;
        self.root_name = tag.name;
        self.dialect = Some(header.dialect.clone());
        // COMPAT: a self-closed header (`<stream:stream …/>`, `<flash:stream …/>`) opens the
        // stream: XIFF's "terminated" stream types and jadc2s-era widgets self-close it to
        // appease their parser, then send stanzas, as Openfire let them.
        self.state = State::Open;
        Ok(Event::Header(header))
    }

    /// Whether the first byte after what was just consumed, past whitespace, is a NUL.
    fn nul_follows(&self) -> bool {
        self.buf[self.start..]
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            == Some(&0)
    }

    /// The close tag must name the stream root exactly as the header did (XML 1.0 §3 GIMatch).
    fn check_close(&self, unit: &[u8]) -> Result<(), StreamError> {
        let name = unit
            .get(2..unit.len().saturating_sub(1))
            .unwrap_or_default()
            .trim_ascii_end();
        if name == self.root_name.as_bytes() {
            Ok(())
        } else {
            Err(StreamError::with_text(
                StreamCondition::NotWellFormed,
                "end tag does not match the stream header",
            ))
        }
    }
}

#[cfg(test)]
mod tests;
