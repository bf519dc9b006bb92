//! A WebSocket under a stream, in one of two modes.
//!
//! XMPP over WebSocket (RFC 7395, [`WsStream::xmpp`]): the connection reads whole messages
//! ([`WsStream::next_message`], parsed by `Connection` with the protocol crate's
//! `FrameReader`) and writes one text message per flush, each holding one element.
//!
//! Byte pipe ([`WsStream::new`]), for Ruffle's socket proxy: Ruffle has no raw TCP, so a
//! Flash widget's `XMLSocket` travels as binary WebSocket frames carrying exactly the bytes
//! it would have sent over TCP (docs/ruffle.md).
//!
//! Reading: each binary frame's payload is the next bytes of the stream (a text frame's bytes
//! are taken too); pings are answered by the WebSocket library; a close frame is end of file.
//! Writing: bytes written up to a flush go out as ONE binary frame (Ruffle drops text frames).
//! [`super::connection::Connection`] flushes after every unit, so each NUL-terminated unit is
//! one frame, as Ruffle expects. Shutdown sends a close frame and waits (briefly) for the
//! peer's, so the closing handshake completes (RFC 6455 §7.1.1).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// How long shutdown waits for the peer to answer our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// RFC 6455 §7.4.1: normal closure.
const NORMAL_CLOSURE: u16 = 1000;

pub struct WsStream {
    socket: WebSocket,
    /// What is left of the last frame read.
    incoming: Bytes,
    /// Bytes written since the last flush: the next frame.
    outgoing: Vec<u8>,
    eof: bool,
    closing: Option<Closing>,
    /// RFC 7395: text messages out, messages (not bytes) in.
    xmpp: bool,
    /// The HTTP connection under it is TLS (or counts as such, `http.loopback_is_encrypted`).
    secure: bool,
}

enum Closing {
    /// Our close frame is queued; flushing it.
    Sending(Pin<Box<Sleep>>),
    /// Sent; reading until the peer's close frame (or the end of the connection).
    Draining(Pin<Box<Sleep>>),
    Done,
}

impl WsStream {
    pub fn new(socket: WebSocket) -> Self {
        WsStream {
            socket,
            incoming: Bytes::new(),
            outgoing: Vec::new(),
            eof: false,
            closing: None,
            xmpp: false,
            secure: false,
        }
    }

    /// An RFC 7395 stream: text messages, one element each. `secure` when it counts as an
    /// encrypted stream (wss://, or loopback with `http.loopback_is_encrypted`).
    pub fn xmpp(socket: WebSocket, secure: bool) -> Self {
        WsStream {
            xmpp: true,
            secure,
            ..WsStream::new(socket)
        }
    }

    /// Whether this carries RFC 7395 framed messages rather than a byte stream.
    pub fn is_xmpp(&self) -> bool {
        self.xmpp
    }

    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The next data message (RFC 7395 §3.2: text; a binary one is taken as its bytes and
    /// left to the XML parser to judge), `None` at the peer's close frame or the end of the
    /// connection. Pings are answered by the WebSocket library while it reads. Cancel-safe:
    /// a message is either returned or still in the socket.
    pub async fn next_message(&mut self) -> io::Result<Option<Bytes>> {
        if self.eof {
            return Ok(None);
        }
        loop {
            let next = std::future::poll_fn(|cx| Pin::new(&mut self.socket).poll_next(cx)).await;
            match next {
                Some(Ok(Message::Text(text))) => return Ok(Some(Bytes::from(text))),
                Some(Ok(Message::Binary(data))) => return Ok(Some(data)),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => {
                    self.eof = true;
                    return Ok(None);
                }
                Some(Err(e)) => return Err(io::Error::other(e)),
            }
        }
    }

    /// Sends what was written since the last flush as one binary frame.
    fn poll_send_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.outgoing.is_empty() {
            ready!(Pin::new(&mut self.socket).poll_ready(cx)).map_err(io::Error::other)?;
            let frame = std::mem::take(&mut self.outgoing);
            let message = if self.xmpp {
                // Connection writes whole serialised elements: always UTF-8.
                let text = String::from_utf8(frame).map_err(io::Error::other)?;
                Message::Text(text.into())
            } else {
                Message::Binary(Bytes::from(frame))
            };
            Pin::new(&mut self.socket)
                .start_send(message)
                .map_err(io::Error::other)?;
        }
        Pin::new(&mut self.socket)
            .poll_flush(cx)
            .map_err(io::Error::other)
    }
}

impl AsyncRead for WsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.incoming.is_empty() {
                let n = this.incoming.len().min(buf.remaining());
                buf.put_slice(&this.incoming.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.socket).poll_next(cx)) {
                // An empty frame carries nothing; returning zero bytes would mean end of file.
                Some(Ok(Message::Binary(data))) => this.incoming = data,
                Some(Ok(Message::Text(text))) => this.incoming = Bytes::from(text),
                // The library queues the pong itself and sends it on the next read or write.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => this.eof = true,
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
            }
        }
    }
}

impl AsyncWrite for WsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.closing.is_some() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        this.outgoing.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_send_pending(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.closing {
                None => {
                    // Whatever was written last goes out before the close frame.
                    ready!(this.poll_send_pending(cx))?;
                    ready!(Pin::new(&mut this.socket).poll_ready(cx)).map_err(io::Error::other)?;
                    let close = Message::Close(Some(CloseFrame {
                        code: NORMAL_CLOSURE,
                        reason: "".into(),
                    }));
                    // An error here means the connection is already closed: nothing to wait for.
                    let queued = Pin::new(&mut this.socket).start_send(close).is_ok();
                    this.closing = Some(if queued {
                        Closing::Sending(Box::pin(tokio::time::sleep(CLOSE_WAIT)))
                    } else {
                        Closing::Done
                    });
                }
                Some(Closing::Sending(timer)) => {
                    if timer.as_mut().poll(cx).is_ready() {
                        this.closing = Some(Closing::Done);
                        continue;
                    }
                    let flushed = ready!(Pin::new(&mut this.socket).poll_flush(cx));
                    let timer = match this.closing.take() {
                        Some(Closing::Sending(timer)) => timer,
                        _ => unreachable!("state checked above"),
                    };
                    this.closing = Some(match flushed {
                        Ok(()) if !this.eof => Closing::Draining(timer),
                        _ => Closing::Done,
                    });
                }
                Some(Closing::Draining(timer)) => {
                    if timer.as_mut().poll(cx).is_ready() {
                        this.closing = Some(Closing::Done);
                        continue;
                    }
                    // Data after our close frame is discarded; the peer's close frame (or
                    // the end of the connection) completes the handshake.
                    match ready!(Pin::new(&mut this.socket).poll_next(cx)) {
                        Some(Ok(Message::Close(_)) | Err(_)) | None => {
                            this.closing = Some(Closing::Done)
                        }
                        Some(Ok(_)) => {}
                    }
                }
                Some(Closing::Done) => return Poll::Ready(Ok(())),
            }
        }
    }
}
