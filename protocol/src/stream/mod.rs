//! Stream-level framing: headers in both dialects, the close tag, stream errors.
//!
//! Layout: `header.rs` (reading and writing `<stream:stream>` / `<flash:stream>`),
//! `error.rs` (RFC 6120 §4.9 stream errors), `framing.rs` (RFC 7395 WebSocket messages).

mod error;
pub mod framing;
mod header;

pub use error::{StreamCondition, StreamError};
pub(crate) use header::from_start_tag;
pub use header::{s2s_header, server_header, stream_close, Dialect, StreamHeader};
