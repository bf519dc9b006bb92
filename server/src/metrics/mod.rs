//! What the server counts, for Prometheus (`/metrics`, docs/metrics.md). The core — c2s,
//! session, router — calls the small functions here, one line at each place; the counting is
//! process-wide atomics (no lock, no allocation per stanza) read only when someone scrapes.
//! Modules count their own things through the module API ([`crate::modules::Registrar::counter`]
//! and [`crate::modules::Registrar::gauge`]). [`http`] serves the text; [`core`] holds the
//! core's counters, [`histogram`] the lock-free histogram, [`process`] memory and descriptors.

pub mod core;
pub mod histogram;
pub mod http;
pub mod process;

use std::time::Instant;

use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::StanzaKind;
use jabberwock_protocol::xml::Element;

use crate::stream::connection::{ClientKind, Connection};

use self::core::CORE;
pub use self::core::{Mechanism, StorageOp};

/// A bound session, counted in `jabberwock_sessions{kind}` while this lives.
pub struct LiveSession(ClientKind);

impl Drop for LiveSession {
    fn drop(&mut self) {
        CORE.session_ended(self.0);
    }
}

/// Counts a session bound on `conn` until the returned guard is dropped.
pub fn session_started(conn: &Connection) -> LiveSession {
    let kind = conn.client_kind();
    CORE.session_started(kind);
    LiveSession(kind)
}

/// A SASL (or XEP-0078) login that succeeded with `mechanism`.
pub fn login(mechanism: &str) {
    CORE.login(Mechanism::named(mechanism), true);
}

/// A login that failed with `mechanism` (one we do not know counts as `other`).
pub fn login_failed(mechanism: &str) {
    CORE.login(Mechanism::named(mechanism), false);
}

/// A stanza read from a client.
pub fn stanza_in(kind: StanzaKind) {
    CORE.stanza_in(kind);
}

/// A unit written to a client; only stanzas count (RFC 6120 §8), not nonzas.
pub fn stanza_out(element: &Element) {
    if element.ns() != ns::CLIENT {
        return;
    }
    let kind = match element.name() {
        "message" => StanzaKind::Message,
        "presence" => StanzaKind::Presence,
        "iq" => StanzaKind::Iq,
        _ => return,
    };
    CORE.stanza_out(kind);
}

/// Measures one routing of a client's stanza, until dropped.
pub struct RoutingTimer(Instant);

impl Drop for RoutingTimer {
    fn drop(&mut self) {
        CORE.routing.observe(self.0.elapsed());
    }
}

/// Starts timing a routing (`jabberwock_routing_seconds`).
pub fn routing() -> RoutingTimer {
    RoutingTimer(Instant::now())
}

/// Runs one storage operation, timing it (`jabberwock_storage_seconds{operation}`) and
/// counting it when it fails (`jabberwock_storage_errors_total{operation}`). Expected
/// outcomes a caller handles (no such account, an unknown archive id) are not failures.
pub async fn storage<T>(
    op: StorageOp,
    work: impl std::future::Future<Output = Result<T, jabberwock_storage::StoreError>>,
) -> Result<T, jabberwock_storage::StoreError> {
    use jabberwock_storage::StoreError;
    let started = Instant::now();
    let result = work.await;
    let failed = matches!(
        &result,
        Err(e) if !matches!(e, StoreError::NotFound | StoreError::AlreadyExists | StoreError::UnknownArchiveId)
    );
    CORE.storage_done(op, started.elapsed(), failed);
    result
}

/// Everything a scrape shows: the process, the core ([`CORE`]) and what modules registered,
/// the last two under `jabberwock_`. Built once with the module registry.
#[derive(Debug)]
pub struct Registry(prometheus_client::registry::Registry);

/// The prefix of every series but the `process_*` ones.
const PREFIX: &str = "jabberwock";

impl Default for Registry {
    fn default() -> Self {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(process::ProcessCollector));
        registry
            .sub_registry_with_prefix(PREFIX)
            .register_collector(Box::new(core::CoreCollector));
        Registry(registry)
    }
}

impl Registry {
    /// A counter of `module`, shown as `jabberwock_MODULE_NAME_total`.
    pub fn counter(&mut self, module: &str, name: &str, help: &str) -> Counter {
        let counter = Counter::default();
        self.module(module)
            .register(name, sentence(help), counter.clone());
        counter
    }

    /// A gauge of `module`, shown as `jabberwock_MODULE_NAME`.
    pub fn gauge(&mut self, module: &str, name: &str, help: &str) -> Gauge {
        let gauge = Gauge::default();
        self.module(module)
            .register(name, sentence(help), gauge.clone());
        gauge
    }

    fn module(&mut self, module: &str) -> &mut prometheus_client::registry::Registry {
        self.0
            .sub_registry_with_prefix(format!("{PREFIX}_{module}"))
    }

    /// The text a scrape gets: OpenMetrics 1.0 when `openmetrics`, else Prometheus' text
    /// format 0.0.4 (what a scraper that does not ask for OpenMetrics expects).
    pub fn render(&self, openmetrics: bool) -> String {
        let mut text = String::with_capacity(16 * 1024);
        let written = if openmetrics {
            prometheus_client::encoding::text::encode(&mut text, &self.0)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.0)
        };
        // Writing to a String fails only if an encoder does: say so rather than half a page.
        if let Err(e) = written {
            tracing::error!(error = %e, "encoding the metrics failed");
            text.clear();
        }
        text
    }
}

/// `help` without its final full stop, which the registry adds.
fn sentence(help: &str) -> &str {
    help.strip_suffix('.').unwrap_or(help)
}

/// A module's counter ([`crate::modules::Registrar::counter`]): an atomic, cheap to clone.
pub type Counter = prometheus_client::metrics::counter::Counter;
/// A module's gauge ([`crate::modules::Registrar::gauge`]).
pub type Gauge = prometheus_client::metrics::gauge::Gauge;
