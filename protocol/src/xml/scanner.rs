//! Byte-level framing: finds where the next complete top-level unit ends.
//!
//! quick-xml cannot resume on partial input, so before anything is parsed this scanner
//! walks the buffered bytes once, keeping its state between calls, until a unit (XML
//! declaration, stream header, stanza or stream close) is complete. It enforces the
//! resource limits while it walks, so a peer cannot make us buffer an oversized or
//! overly deep stanza, and it refuses the constructs RFC 6120 §11.1 restricts (comments,
//! processing instructions, DTDs) as soon as their first bytes arrive, before any
//! entity-expansion tricks can be attempted.
//!
//! It does not check well-formedness beyond what framing needs; the parser does that once
//! the unit is complete. Framing does need end tags to match their start tags: counting
//! depth alone would take `<message><body>x</message>` for an unfinished stanza and wait
//! for ever instead of answering `not-well-formed` (RFC 6120 §4.9.3.13, XML 1.0 §3 GIMatch).

use crate::stream::{StreamCondition, StreamError};

/// What kind of top-level unit was framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnitKind {
    /// `<?xml …?>` before the stream header.
    Declaration,
    /// The stream header: a lone start tag (possibly self-closed).
    Header,
    /// A complete child of the stream element.
    Stanza,
    /// The end tag of the stream element.
    Close,
}

/// Result of one scanning step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The bytes seen so far do not complete a unit.
    NeedMore,
    /// This many leading bytes are ignorable (whitespace, NULs, BOM) and can be dropped.
    Skip(usize),
    /// A unit of this length starts at the first byte.
    Unit(UnitKind, usize),
}

/// Facts about the stream that change how bytes between units are treated.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Context {
    /// The stream header has been read: top-level start tags are stanzas.
    pub(crate) in_stream: bool,
    /// NUL bytes between units are terminators to skip (Flash, or not yet known).
    pub(crate) nul_ok: bool,
    /// Nothing has been consumed in this stream yet, so a UTF-8 BOM may appear.
    pub(crate) at_start: bool,
    /// An XML declaration is still acceptable here.
    pub(crate) decl_allowed: bool,
    /// Maximum bytes the unit may have.
    pub(crate) budget: usize,
    /// Maximum element nesting inside one stanza (the stanza itself is depth 1).
    pub(crate) max_depth: usize,
    /// Maximum attributes (including namespace declarations) on one tag.
    pub(crate) max_attributes: usize,
}

/// Lexical position inside a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lex {
    /// Character data inside an element.
    Text,
    /// Just after `<`: the next bytes decide what kind of markup this is.
    Open,
    /// Inside a start tag; `quote` is the open quote byte or 0, `slash` if the last byte
    /// outside quotes was `/` (so `>` closes an empty element).
    StartTag { quote: u8, slash: bool },
    /// Inside an end tag.
    EndTag,
    /// Inside `<![CDATA[`; counts the `]` seen just before.
    Cdata { brackets: u8 },
    /// Inside `<?xml`; `question` if the last byte was `?`.
    Decl { question: bool },
}

/// Resumable scanner state for the unit being framed.
#[derive(Debug)]
pub(crate) struct Scanner {
    started: bool,
    kind: Option<UnitKind>,
    pos: usize,
    lex: Lex,
    depth: usize,
    attrs: usize,
    /// Where the name of the tag being read starts in the unit, and where it ends once
    /// known (the first whitespace, `/` or `>` after it).
    tag_name: (usize, Option<usize>),
    /// Names of the elements open in this unit, as `(start, end)` offsets into it.
    open_names: Vec<(usize, usize)>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";
const CDATA: &[u8] = b"<![CDATA[";

fn nwf(text: &str) -> StreamError {
    StreamError::with_text(StreamCondition::NotWellFormed, text)
}

fn restricted(text: &str) -> StreamError {
    StreamError::with_text(StreamCondition::RestrictedXml, text)
}

fn policy(text: &str) -> StreamError {
    StreamError::with_text(StreamCondition::PolicyViolation, text)
}

/// How a prefix of the input compares with an expected byte string.
enum Prefix {
    Matches,
    Partial,
    Differs,
}

fn compare_prefix(input: &[u8], expected: &[u8]) -> Prefix {
    let n = input.len().min(expected.len());
    if input[..n] != expected[..n] {
        Prefix::Differs
    } else if n < expected.len() {
        Prefix::Partial
    } else {
        Prefix::Matches
    }
}

impl Scanner {
    pub(crate) fn new() -> Scanner {
        Scanner {
            started: false,
            kind: None,
            pos: 0,
            lex: Lex::Text,
            depth: 0,
            attrs: 0,
            tag_name: (0, None),
            open_names: Vec::new(),
        }
    }

    /// Forgets the unit in progress (stream restart).
    pub(crate) fn reset(&mut self) {
        *self = Scanner::new();
    }

    /// Scans `buf` (the unconsumed bytes, unit start first) from where the last call stopped.
    pub(crate) fn scan(&mut self, buf: &[u8], ctx: &Context) -> Result<Scan, StreamError> {
        if !self.started {
            match skip_ignorable(buf, ctx)? {
                None => return Ok(Scan::NeedMore),
                Some(0) => {}
                Some(skipped) => return Ok(Scan::Skip(skipped)),
            }
            match buf.first() {
                None => return Ok(Scan::NeedMore),
                Some(b'<') => self.begin(ctx)?,
                // XMPP allows only whitespace as character data at stream level.
                Some(_) => return Err(nwf("text outside of a stanza")),
            }
        }
        self.advance(buf, ctx)
    }

    fn begin(&mut self, ctx: &Context) -> Result<(), StreamError> {
        if ctx.budget == 0 {
            return Err(policy("stream header too large"));
        }
        *self = Scanner {
            started: true,
            pos: 1,
            lex: Lex::Open,
            ..Scanner::new()
        };
        Ok(())
    }

    fn finish(&mut self, kind: UnitKind) -> Scan {
        let len = self.pos;
        self.reset();
        Scan::Unit(kind, len)
    }

    fn advance(&mut self, buf: &[u8], ctx: &Context) -> Result<Scan, StreamError> {
        while let Some(&b) = buf.get(self.pos) {
            if self.pos >= ctx.budget {
                return Err(policy(if ctx.in_stream {
                    "stanza too large"
                } else {
                    "stream header too large"
                }));
            }
            if self.lex == Lex::Open {
                match self.open(buf, ctx)? {
                    true => continue,
                    false => return Ok(Scan::NeedMore),
                }
            }
            // Control characters are never legal XML (XML 1.0 §2.2); NUL included, since a
            // Flash terminator inside a unit means the unit was cut short.
            if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') {
                return Err(nwf("control character in XML"));
            }
            self.pos += 1;
            if let Some(kind) = self.byte(b, buf, ctx)? {
                return Ok(self.finish(kind));
            }
        }
        Ok(Scan::NeedMore)
    }

    /// Handles one byte (already counted in `pos`); returns the kind if the unit is complete.
    fn byte(&mut self, b: u8, buf: &[u8], ctx: &Context) -> Result<Option<UnitKind>, StreamError> {
        match self.lex {
            Lex::Text => {
                if b == b'<' {
                    self.lex = Lex::Open;
                }
            }
            Lex::StartTag { quote, slash } => return self.start_tag(b, quote, slash, ctx),
            Lex::EndTag => match b {
                b'>' => return self.end_tag(buf),
                b'<' => return Err(nwf("'<' inside an end tag")),
                _ => {}
            },
            Lex::Cdata { brackets } => {
                self.lex = match b {
                    b']' => Lex::Cdata {
                        brackets: (brackets + 1).min(2),
                    },
                    b'>' if brackets == 2 => Lex::Text,
                    _ => Lex::Cdata { brackets: 0 },
                };
            }
            Lex::Decl { question } => {
                if b == b'>' && question {
                    return Ok(Some(UnitKind::Declaration));
                }
                self.lex = Lex::Decl {
                    question: b == b'?',
                };
            }
            Lex::Open => {}
        }
        Ok(None)
    }

    fn start_tag(
        &mut self,
        b: u8,
        quote: u8,
        slash: bool,
        ctx: &Context,
    ) -> Result<Option<UnitKind>, StreamError> {
        if self.tag_name.1.is_none() && matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>') {
            self.tag_name.1 = Some(self.pos - 1);
        }
        if quote != 0 {
            let quote = if b == quote { 0 } else { quote };
            self.lex = Lex::StartTag {
                quote,
                slash: false,
            };
            return Ok(None);
        }
        match b {
            b'"' | b'\'' => {
                self.lex = Lex::StartTag {
                    quote: b,
                    slash: false,
                }
            }
            b'=' => {
                // Every attribute (namespace declarations included) has exactly one '='
                // outside quotes, so this counts attributes without tokenising names.
                self.attrs += 1;
                if self.attrs > ctx.max_attributes {
                    return Err(policy("too many attributes"));
                }
                self.lex = Lex::StartTag {
                    quote: 0,
                    slash: false,
                };
            }
            b'<' => return Err(nwf("'<' inside a tag")),
            b'>' => return self.tag_closed(slash, ctx),
            _ => {
                self.lex = Lex::StartTag {
                    quote: 0,
                    slash: b == b'/',
                }
            }
        }
        Ok(None)
    }

    fn tag_closed(&mut self, empty: bool, ctx: &Context) -> Result<Option<UnitKind>, StreamError> {
        self.attrs = 0;
        self.lex = Lex::Text;
        // The header is complete at its first '>': its children are the stanzas.
        if self.kind == Some(UnitKind::Header) {
            return Ok(Some(UnitKind::Header));
        }
        if empty {
            return Ok((self.depth == 0).then_some(UnitKind::Stanza));
        }
        self.depth += 1;
        if self.depth > ctx.max_depth {
            return Err(policy("elements nested too deeply"));
        }
        let (start, end) = self.tag_name;
        self.open_names.push((start, end.unwrap_or(self.pos - 1)));
        Ok(None)
    }

    /// An end tag is complete (its `>` is at `pos - 1`): it must name the innermost open
    /// element. The stream's own close tag is checked by the reader, which knows the root.
    fn end_tag(&mut self, buf: &[u8]) -> Result<Option<UnitKind>, StreamError> {
        self.lex = Lex::Text;
        if self.kind == Some(UnitKind::Close) {
            return Ok(Some(UnitKind::Close));
        }
        // XML 1.0 §3.1: ETag ::= '</' Name S? '>'.
        let name = buf
            .get(self.tag_name.0..self.pos - 1)
            .unwrap_or_default()
            .trim_ascii_end();
        let open = self.open_names.pop().and_then(|(s, e)| buf.get(s..e));
        if open != Some(name) {
            return Err(nwf("end tag does not match its start tag"));
        }
        self.depth = self.depth.saturating_sub(1);
        Ok((self.depth == 0).then_some(UnitKind::Stanza))
    }

    /// Decides what follows a `<` at `pos`. Returns false if more bytes are needed; `pos`
    /// is only advanced once the decision is made, so the lookahead is re-read next time.
    fn open(&mut self, buf: &[u8], ctx: &Context) -> Result<bool, StreamError> {
        let Some(&b) = buf.get(self.pos) else {
            return Ok(false);
        };
        let top_level = self.kind.is_none();
        match b {
            b'/' if top_level && !ctx.in_stream => Err(nwf("end tag before the stream header")),
            b'/' => {
                if top_level {
                    self.kind = Some(UnitKind::Close);
                }
                self.lex = Lex::EndTag;
                self.pos += 1;
                self.tag_name = (self.pos, None);
                Ok(true)
            }
            b'?' if top_level && ctx.decl_allowed => self.open_declaration(buf),
            b'?' => Err(restricted("processing instructions are not allowed")),
            b'!' => self.open_bang(buf, top_level),
            _ => {
                if top_level {
                    self.kind = Some(if ctx.in_stream {
                        UnitKind::Stanza
                    } else {
                        UnitKind::Header
                    });
                }
                self.lex = Lex::StartTag {
                    quote: 0,
                    slash: false,
                };
                self.tag_name = (self.pos, None);
                Ok(true)
            }
        }
    }

    /// `<?xml` followed by whitespace is the declaration; any other `<?` is a PI.
    fn open_declaration(&mut self, buf: &[u8]) -> Result<bool, StreamError> {
        let start = self.pos - 1;
        let rest = &buf[start..];
        match compare_prefix(rest, b"<?xml") {
            Prefix::Partial => return Ok(false),
            Prefix::Differs => return Err(restricted("processing instructions are not allowed")),
            Prefix::Matches => {}
        }
        match rest.get(5) {
            None => Ok(false),
            Some(b' ' | b'\t' | b'\r' | b'\n') => {
                self.kind = Some(UnitKind::Declaration);
                self.lex = Lex::Decl { question: false };
                self.pos = start + 6;
                Ok(true)
            }
            Some(_) => Err(restricted("processing instructions are not allowed")),
        }
    }

    /// `<!`: CDATA inside a stanza; comments and DTD declarations are restricted XML.
    fn open_bang(&mut self, buf: &[u8], top_level: bool) -> Result<bool, StreamError> {
        let start = self.pos - 1;
        let rest = &buf[start..];
        match rest.get(2) {
            None => Ok(false),
            Some(b'[') if top_level => Err(nwf("character data outside of a stanza")),
            Some(b'[') => match compare_prefix(rest, CDATA) {
                Prefix::Partial => Ok(false),
                Prefix::Differs => Err(nwf("invalid markup")),
                Prefix::Matches => {
                    self.lex = Lex::Cdata { brackets: 0 };
                    self.pos = start + CDATA.len();
                    Ok(true)
                }
            },
            // RFC 6120 §11.1: comments and DTDs (<!DOCTYPE, <!ENTITY, …) are forbidden;
            // refusing them here is what stops entity-expansion attacks.
            Some(_) => Err(restricted("comments and DTDs are not allowed")),
        }
    }
}

/// Counts leading bytes that carry nothing between units; `None` if a possible BOM is
/// still incomplete.
fn skip_ignorable(buf: &[u8], ctx: &Context) -> Result<Option<usize>, StreamError> {
    let mut i = 0;
    if ctx.at_start && !buf.is_empty() {
        match compare_prefix(buf, BOM) {
            Prefix::Matches => i = BOM.len(),
            // Wait for the rest before deciding: 0xEF cannot start anything else valid.
            Prefix::Partial => return Ok(None),
            Prefix::Differs => {}
        }
    }
    while let Some(&b) = buf.get(i) {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            // Flash XMLSocket terminates every unit with NUL (flash-protocol.md §1).
            0 if ctx.nul_ok => i += 1,
            0 => return Err(nwf("NUL byte in an XMPP stream")),
            _ => break,
        }
    }
    Ok(Some(i))
}
