//! The virtual hosts in force and what the registry placed for each: its settings
//! (`[hosts."…"]`), the modules on for it (a mask of [`super::ModuleId`] bits) and its
//! services' domains. A reload builds a new [`HostTable`] and swaps it in whole
//! ([`LiveHosts::set`]), so a lookup sees the hosts before or after a reload, never half of
//! one.
//!
//! Cost on the routing path: a lookup takes the read side of one `RwLock` (uncontended: an
//! atomic compare-exchange and a release) and reads a `HashMap`; nothing is cloned but the
//! `Arc` of a host's settings when a caller asks for them ([`HostTable::host`]). The one
//! per-stanza question that used no lookup before, whether every host runs the same
//! modules, is an `AtomicBool` kept beside the table.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::registry::ServiceEntry;
use super::MODULES;
use crate::config::HostConfig;
use crate::live::Snapshot;

/// One host as the registry placed it.
pub(super) struct HostEntry {
    pub config: Arc<HostConfig>,
    /// The modules on for this host, one bit per module index in [`MODULES`].
    pub mask: u64,
}

/// The hosts, their module masks and every service domain, as of one config.
#[derive(Default)]
pub struct HostTable {
    /// By domain, lowercased without a trailing dot (as `Config` normalised them).
    pub(super) hosts: HashMap<String, HostEntry>,
    /// Every service domain of every host.
    pub(super) services: HashMap<String, Arc<ServiceEntry>>,
    /// Every host runs exactly the global modules (the usual case): no per-host lookup.
    pub(super) uniform: bool,
}

impl HostTable {
    /// The entry of host `domain`, matched as `Config::host` matches: exactly, else
    /// case-insensitively and ignoring one trailing dot (RFC 7622 §3.2).
    pub(super) fn entry(&self, domain: &str) -> Option<&HostEntry> {
        crate::config::find_host(domain, |d| self.hosts.get(d))
    }

    pub fn host(&self, domain: &str) -> Option<Arc<HostConfig>> {
        self.entry(domain).map(|e| e.config.clone())
    }

    /// The host names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.hosts.keys().cloned().collect();
        names.sort();
        names
    }
}

/// The table in force, swapped whole by a reload.
#[derive(Default)]
pub struct LiveHosts {
    table: Snapshot<HostTable>,
    /// `table.uniform`, readable without the lock (hooks fire per stanza).
    uniform: AtomicBool,
    /// How many tables were set: what a module caching something per host (XEP-0115's
    /// `ver`) compares to know its cache is of the hosts in force.
    generation: AtomicU64,
    /// Told after each table is set, for what runs on behalf of a host and waits (a
    /// server-to-server stream, either way) to see whether its host is still in force.
    changed: tokio::sync::watch::Sender<()>,
}

impl LiveHosts {
    /// Answers `read` from the table in force (see [`Snapshot::read`]).
    pub fn read<R>(&self, read: impl FnOnce(&HostTable) -> R) -> R {
        self.table.read(read)
    }

    /// The table in force, to keep (a reload compares it with the next).
    pub fn get(&self) -> Arc<HostTable> {
        self.table.get()
    }

    pub fn set(&self, table: HostTable) {
        let uniform = table.uniform;
        self.table.set(table);
        self.uniform.store(uniform, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.changed.send_replace(());
    }

    /// Wakes (`changed()`) after each table set from now on.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<()> {
        self.changed.subscribe()
    }

    pub fn uniform(&self) -> bool {
        self.uniform.load(Ordering::Acquire)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// The modules on for a host: those on globally (`global`) less its `modules_disabled`.
pub fn host_mask(global: u64, host: &HostConfig) -> u64 {
    MODULES
        .iter()
        .enumerate()
        .filter(|(_, module)| host.modules_disabled.iter().any(|d| d == module.name))
        .fold(global, |mask, (index, _)| mask & !(1u64 << index))
}

/// How two configs' `[hosts]` differ: hosts added, removed, and those whose table changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HostsDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl HostsDiff {
    pub fn between(
        old: &BTreeMap<String, HostConfig>,
        new: &BTreeMap<String, HostConfig>,
    ) -> HostsDiff {
        let mut diff = HostsDiff::default();
        for (name, config) in new {
            match old.get(name) {
                None => diff.added.push(name.clone()),
                Some(before) if before != config => diff.changed.push(name.clone()),
                Some(_) => {}
            }
        }
        diff.removed = old
            .keys()
            .filter(|name| !new.contains_key(*name))
            .cloned()
            .collect();
        diff
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(name: &str) -> usize {
        MODULES.iter().position(|m| m.name == name).unwrap()
    }

    #[test]
    fn a_host_mask_is_the_global_one_less_its_disabled_modules() {
        let global = (1u64 << index("vcard")) | (1u64 << index("ping"));
        assert_eq!(host_mask(global, &HostConfig::default()), global);
        let host = HostConfig {
            modules_disabled: vec!["vcard".into(), "muc".into()],
            ..HostConfig::default()
        };
        // A module off for the host goes; one not on globally stays off.
        assert_eq!(host_mask(global, &host), 1u64 << index("ping"));
    }

    #[test]
    fn the_diff_names_added_removed_and_changed_hosts() {
        let plain = HostConfig::default();
        let open = HostConfig {
            registration: true,
            ..HostConfig::default()
        };
        let old: BTreeMap<String, HostConfig> = [
            ("a.example".to_owned(), plain.clone()),
            ("b.example".to_owned(), plain.clone()),
            ("c.example".to_owned(), plain.clone()),
        ]
        .into();
        let new: BTreeMap<String, HostConfig> = [
            ("a.example".to_owned(), plain.clone()),
            ("c.example".to_owned(), open),
            ("d.example".to_owned(), plain),
        ]
        .into();
        let diff = HostsDiff::between(&old, &new);
        assert_eq!(
            diff,
            HostsDiff {
                added: vec!["d.example".into()],
                removed: vec!["b.example".into()],
                changed: vec!["c.example".into()],
            }
        );
        assert!(HostsDiff::between(&new, &new).is_empty());
    }

    #[test]
    fn a_host_is_found_as_config_finds_it() {
        let mut table = HostTable::default();
        table.hosts.insert(
            "example.com".into(),
            HostEntry {
                config: Arc::new(HostConfig::default()),
                mask: 0,
            },
        );
        assert!(table.host("example.com").is_some());
        assert!(table.host("EXAMPLE.com.").is_some());
        assert!(table.host("example.org").is_none());
    }
}
