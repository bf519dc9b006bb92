//! The core's counters: one process-wide set of atomics, indexed by small enums, so the
//! places that count need no handle and no lookup. [`CoreCollector`] writes them at a scrape.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use jabberwock_protocol::stanza::StanzaKind;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::histogram::Histogram;
use crate::stream::connection::ClientKind;

/// Every kind of client session, in the order of [`ClientKind`]'s variants (the index).
const CLIENT_KINDS: [ClientKind; 6] = [
    ClientKind::Tcp,
    ClientKind::Tls,
    ClientKind::Flash,
    ClientKind::Ruffle,
    ClientKind::WebSocket,
    ClientKind::Bosh,
];

/// How a client logged in: the SASL mechanisms we offer, XEP-0078, anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha1,
    ScramSha256,
    Anonymous,
    /// XEP-0078 `jabber:iq:auth` (Flash streams with `flash.legacy_auth`).
    LegacyAuth,
    Other,
}

impl Mechanism {
    const ALL: [Mechanism; 6] = [
        Mechanism::Plain,
        Mechanism::ScramSha1,
        Mechanism::ScramSha256,
        Mechanism::Anonymous,
        Mechanism::LegacyAuth,
        Mechanism::Other,
    ];

    /// The label for the mechanism the client named; names are case-sensitive (RFC 4422 §3.1).
    pub fn named(name: &str) -> Mechanism {
        match name {
            "PLAIN" => Mechanism::Plain,
            "SCRAM-SHA-1" => Mechanism::ScramSha1,
            "SCRAM-SHA-256" => Mechanism::ScramSha256,
            "ANONYMOUS" => Mechanism::Anonymous,
            LEGACY_AUTH => Mechanism::LegacyAuth,
            _ => Mechanism::Other,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::Anonymous => "ANONYMOUS",
            Mechanism::LegacyAuth => LEGACY_AUTH,
            Mechanism::Other => "other",
        }
    }
}

/// The mechanism label of XEP-0078 logins (the namespace of the protocol).
pub const LEGACY_AUTH: &str = "jabber:iq:auth";

/// The storage operations that are timed: those on the login and message paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageOp {
    /// An account's SCRAM credentials, read at login.
    Credentials,
    /// A login's roster and whether offline messages wait.
    PresenceRoster,
    /// A message kept for an offline account.
    OfflineStore,
    /// An account's offline messages, read when it comes online.
    OfflineLoad,
    /// Delivered offline messages deleted.
    OfflineDelete,
    /// A batch of messages appended to archives (XEP-0313), one transaction.
    ArchiveAppend,
}

impl StorageOp {
    const ALL: [StorageOp; 6] = [
        StorageOp::Credentials,
        StorageOp::PresenceRoster,
        StorageOp::OfflineStore,
        StorageOp::OfflineLoad,
        StorageOp::OfflineDelete,
        StorageOp::ArchiveAppend,
    ];

    fn label(self) -> &'static str {
        match self {
            StorageOp::Credentials => "credentials",
            StorageOp::PresenceRoster => "presence_roster",
            StorageOp::OfflineStore => "offline_store",
            StorageOp::OfflineLoad => "offline_load",
            StorageOp::OfflineDelete => "offline_delete",
            StorageOp::ArchiveAppend => "archive_append",
        }
    }
}

const STANZA_KINDS: [(StanzaKind, &str); 3] = [
    (StanzaKind::Message, "message"),
    (StanzaKind::Presence, "presence"),
    (StanzaKind::Iq, "iq"),
];

fn stanza_index(kind: StanzaKind) -> usize {
    match kind {
        StanzaKind::Message => 0,
        StanzaKind::Presence => 1,
        StanzaKind::Iq => 2,
    }
}

const fn counters<const N: usize>() -> [AtomicU64; N] {
    [const { AtomicU64::new(0) }; N]
}

/// Every counter of the core.
pub struct Core {
    sessions: [AtomicI64; CLIENT_KINDS.len()],
    sessions_opened: [AtomicU64; CLIENT_KINDS.len()],
    logins: [AtomicU64; Mechanism::ALL.len()],
    login_failures: [AtomicU64; Mechanism::ALL.len()],
    stanzas_in: [AtomicU64; STANZA_KINDS.len()],
    stanzas_out: [AtomicU64; STANZA_KINDS.len()],
    pub(super) routing: Histogram,
    storage: [Histogram; StorageOp::ALL.len()],
    storage_errors: [AtomicU64; StorageOp::ALL.len()],
}

pub static CORE: Core = Core {
    sessions: [const { AtomicI64::new(0) }; CLIENT_KINDS.len()],
    sessions_opened: counters(),
    logins: counters(),
    login_failures: counters(),
    stanzas_in: counters(),
    stanzas_out: counters(),
    routing: Histogram::new(),
    storage: [const { Histogram::new() }; StorageOp::ALL.len()],
    storage_errors: counters(),
};

impl Core {
    pub(super) fn session_started(&self, kind: ClientKind) {
        self.sessions[kind as usize].fetch_add(1, Relaxed);
        self.sessions_opened[kind as usize].fetch_add(1, Relaxed);
    }

    pub(super) fn session_ended(&self, kind: ClientKind) {
        self.sessions[kind as usize].fetch_sub(1, Relaxed);
    }

    pub(super) fn login(&self, mechanism: Mechanism, succeeded: bool) {
        let counters = if succeeded {
            &self.logins
        } else {
            &self.login_failures
        };
        counters[mechanism as usize].fetch_add(1, Relaxed);
    }

    pub(super) fn stanza_in(&self, kind: StanzaKind) {
        self.stanzas_in[stanza_index(kind)].fetch_add(1, Relaxed);
    }

    pub(super) fn stanza_out(&self, kind: StanzaKind) {
        self.stanzas_out[stanza_index(kind)].fetch_add(1, Relaxed);
    }

    pub(super) fn storage_done(&self, op: StorageOp, elapsed: Duration, failed: bool) {
        self.storage[op as usize].observe(elapsed);
        if failed {
            self.storage_errors[op as usize].fetch_add(1, Relaxed);
        }
    }
}

/// Writes [`CORE`] at each scrape.
#[derive(Debug)]
pub struct CoreCollector;

/// One counter family: a value per label.
fn counter_family<'a>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: impl Iterator<Item = (&'a str, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, count) in values {
        let labels = [(label, value)];
        metric
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
    }
    Ok(())
}

impl Collector for CoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let core = &CORE;
        let kinds = || CLIENT_KINDS.iter().map(|k| k.as_str());
        let mut sessions = encoder.encode_descriptor(
            "sessions",
            "Bound client sessions, by what carries them.",
            None,
            MetricType::Gauge,
        )?;
        for (kind, count) in kinds().zip(&core.sessions) {
            let labels = [("kind", kind)];
            sessions
                .encode_family(&labels)?
                .encode_gauge(&count.load(Relaxed))?;
        }
        let load = |counters: &'static [AtomicU64]| counters.iter().map(|c| c.load(Relaxed));
        counter_family(
            &mut encoder,
            "sessions_opened",
            "Client sessions bound since start, by what carries them.",
            "kind",
            kinds().zip(load(&core.sessions_opened)),
        )?;
        let mechanisms = || Mechanism::ALL.iter().map(|m| m.label());
        counter_family(
            &mut encoder,
            "logins",
            "Successful logins, by SASL mechanism (jabber:iq:auth for XEP-0078).",
            "mechanism",
            mechanisms().zip(load(&core.logins)),
        )?;
        counter_family(
            &mut encoder,
            "login_failures",
            "Failed logins, by SASL mechanism (other: a mechanism not offered or none).",
            "mechanism",
            mechanisms().zip(load(&core.login_failures)),
        )?;
        let types = || STANZA_KINDS.iter().map(|(_, name)| *name);
        counter_family(
            &mut encoder,
            "stanzas_in",
            "Stanzas received from clients, by type.",
            "type",
            types().zip(load(&core.stanzas_in)),
        )?;
        counter_family(
            &mut encoder,
            "stanzas_out",
            "Stanzas written to clients, by type.",
            "type",
            types().zip(load(&core.stanzas_out)),
        )?;
        core.routing.encode(encoder.encode_descriptor(
            "routing",
            "Time to route a client's message or IQ (hooks, delivery or offline storage).",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?)?;
        let mut storage = encoder.encode_descriptor(
            "storage",
            "Time of storage operations on the login and message paths, by operation.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (op, histogram) in StorageOp::ALL.iter().zip(&core.storage) {
            let labels = [("operation", op.label())];
            histogram.encode(storage.encode_family(&labels)?)?;
        }
        counter_family(
            &mut encoder,
            "storage_errors",
            "Storage operations that failed, by operation.",
            "operation",
            StorageOp::ALL
                .iter()
                .map(|op| op.label())
                .zip(load(&core.storage_errors)),
        )?;
        Ok(())
    }
}
