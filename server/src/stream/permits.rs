//! The slots an open client connection takes under the connection caps: one of the
//! server's connection permits (`c2s.max_connections`) and one of its address's
//! (`c2s.max_connections_per_ip`).
//!
//! They belong to the [`Connection`](super::connection::Connection), not to the task that
//! serves it: a session whose stream is lost can wait minutes for its client without any
//! connection (XEP-0198 §5), and it must not keep a NATed address or the server from
//! taking new connections meanwhile. So they go with the connection: when it is closed,
//! released or dropped.

use tokio::sync::OwnedSemaphorePermit;

use crate::per_ip::IpPermit;

/// One connection's place under both caps; dropping it gives both back.
#[must_use]
#[derive(Debug)]
pub struct ConnectionPermits {
    connection: OwnedSemaphorePermit,
    address: IpPermit,
}

impl ConnectionPermits {
    pub fn new(connection: OwnedSemaphorePermit, address: IpPermit) -> ConnectionPermits {
        ConnectionPermits {
            connection,
            address,
        }
    }

    /// For an HTTP connection on a c2s port, the two apart: its place under
    /// `c2s.max_connections` goes on to a stream it is upgraded to, as on the HTTP
    /// listeners, while the address's stays with the HTTP connection (each stream over HTTP
    /// takes its own, for the forwarded address behind a trusted proxy, `http::ip_permit`).
    pub fn split(self) -> (OwnedSemaphorePermit, IpPermit) {
        (self.connection, self.address)
    }
}
