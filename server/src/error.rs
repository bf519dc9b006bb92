//! How a session ends, and the one place internal failures become XMPP conditions.

use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::stream::{StreamCondition, StreamError};
use jabberwock_storage::StoreError;

use crate::stream::connection::ReadError;

/// Why a client's stream is ending; decides what we write before closing.
#[derive(Debug)]
pub enum SessionEnd {
    /// We close with this stream error (RFC 6120 §4.9).
    Error(StreamError),
    /// The client sent its closing tag; we answer with ours.
    ClientClosed,
    /// We close the stream without an error element (e.g. after a TLS `<failure/>`).
    Closed,
    /// The socket is gone; nothing can be written.
    Disconnected,
    /// The session went on on another stream (XEP-0198 resumption); this stream ends with
    /// the error if there is one, and must not unbind the session.
    HandedOver(Option<StreamError>),
}

impl SessionEnd {
    pub fn error(condition: StreamCondition) -> Self {
        SessionEnd::Error(StreamError::new(condition))
    }

    pub fn error_text(condition: StreamCondition, text: &str) -> Self {
        SessionEnd::Error(StreamError::with_text(condition, text))
    }
}

impl From<ReadError> for SessionEnd {
    fn from(err: ReadError) -> Self {
        match err {
            ReadError::Stream(e) => SessionEnd::Error(e),
            ReadError::Disconnected | ReadError::Io(_) => SessionEnd::Disconnected,
        }
    }
}

impl From<StreamError> for SessionEnd {
    fn from(err: StreamError) -> Self {
        SessionEnd::Error(err)
    }
}

impl From<std::io::Error> for SessionEnd {
    fn from(_: std::io::Error) -> Self {
        SessionEnd::Disconnected
    }
}

/// Storage failures are our fault, never the client's: log them and answer
/// `internal-server-error` (RFC 6120 §8.3.3.6) without details.
pub fn store_to_stanza_error(err: StoreError) -> StanzaError {
    if let StoreError::NotFound = err {
        // No stored account behind the session (removed while the session ran): nothing to keep.
        return StanzaError::with_text(Condition::NotAllowed, "This account stores nothing");
    }
    tracing::error!(error = %err, "storage failure");
    if err.is_out_of_space() {
        // RFC 6120 §8.3.3.18: the server lacks the resources for now (type `wait`: the
        // client may retry once the operator freed space).
        return StanzaError::new(Condition::ResourceConstraint);
    }
    StanzaError::new(Condition::InternalServerError)
}

pub fn store_to_stream_error(err: StoreError) -> SessionEnd {
    tracing::error!(error = %err, "storage failure");
    SessionEnd::error(StreamCondition::InternalServerError)
}
