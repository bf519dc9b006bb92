//! End-to-end test harness: starts the real `jabberwock` binary on ephemeral loopback
//! ports with a fresh data directory (SQLite file, generated certificate), and talks to it
//! with our raw byte-level client and with clients we did not write (slixmpp).
//!
//! - [`server`]: `TestServer`, the process under test, its config and its log.
//! - [`raw`]: `RawClient`, bytes in and out, standard or Flash framing, STARTTLS, direct TLS.
//! - [`muc`]: XEP-0045 helpers (logging users in, entering rooms).
//! - [`upload`]: XEP-0363 helpers (slot requests, PUTs); [`http`]: HTTP requests with
//!   hyper's client.
//! - [`metrics`]: `/metrics` scraped and parsed by Prometheus' Python client.
//! - [`postgres`]: `Scratch`, a PostgreSQL database of a test's own.
//! - [`tls`]: a client TLS config that trusts exactly the test server's certificate.
//! - [`slix`]: runs `tests/clients/slix_chat.py`, `slix_im.py` and `slix_devices.py` (slixmpp
//!   from PyPI).
//! - [`systemd`]: `systemd-analyze verify` of a unit file.
//! - [`browser`]: the node scripts driving headless Chromium, and the Converse.js page.
//! - [`flash_widget`]: the SWF test widget built with Haxe and run under Ruffle.
//! - [`xmpp_rs`]: xmpp-rs's tokio-xmpp client, logged in over STARTTLS.
//! - [`xmpp_ws`]: an XMPP-over-WebSocket (RFC 7395) client on tokio-tungstenite.
//! - [`s2s`]: federated test servers and a raw peer; [`dns`]: a nameserver for test names;
//!   [`prosody`] and [`ejabberd`]: Debian's Prosody and ejabberd as peers, privately
//!   ([`peer`]: what they share).

pub mod bosh;
pub mod browser;
pub mod dns;
pub mod ejabberd;
pub mod flash_widget;
pub mod http;
pub mod mam;
pub mod metrics;
pub mod muc;
pub mod peer;
pub mod postgres;
pub mod prosody;
pub mod raw;
pub mod relay;
pub mod s2s;
pub mod server;
pub mod slix;
pub mod systemd;
pub mod tls;
pub mod tmpfs;
pub mod upload;
pub mod xmpp_rs;
pub mod xmpp_ws;

pub use raw::RawClient;
pub use server::{TestConfig, TestServer};

use std::time::Duration;

/// Upper bound for any single wait in a test; nothing waits without one.
pub const WAIT: Duration = Duration::from_secs(15);
