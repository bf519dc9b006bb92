//! The stream layer: turns an accepted socket into a [`connection::Connection`] that yields
//! stream events, whatever kind of client is on the other end (standard or Flash, TLS or
//! not), and answers by itself what isn't an XMPP stream (Flash policy requests).
//! Above it, only c2s negotiation looks at the negotiated `Dialect`, to pick the stream
//! features Flash clients can use; sessions, the router and modules never do.

pub mod accept;
pub mod connection;
pub mod detect;
pub mod permits;
pub mod prefixed;
pub mod tls;
pub mod transport;
pub mod websocket;
