//! Reloading the config while the server runs, on SIGHUP or `jabberwock reload` (the
//! admin socket): the file is re-read, `log.level` applied, the TLS certificate and key
//! re-read and served to new connections (open ones keep theirs), the limits swapped
//! (`live.rs`), modules given their new options where they can take them, the virtual hosts
//! added, removed or changed (`modules/hosts.rs`), and every other change named as needing
//! a restart. A config that no longer loads, or a certificate that does
//! not, is refused with the usual message and what runs stays. SIGHUP never ends the
//! server (its default disposition would).

use std::sync::{Arc, Mutex};

use jabberwock_protocol::stream::{StreamCondition, StreamError};

use crate::admin::wire::ReloadReport;
use crate::config::{C2sConfig, Config, HttpConfig};
use crate::live::Live;
use crate::modules::config::split_enabled;
use crate::modules::hosts::HostsDiff;
use crate::server::Server;
use crate::tls::CurrentCert;

/// Applies a new `log.level` to the running logger (the binary owns the logger); `Err`
/// says why it was not applied.
pub type LogReload = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The config in force and what applies a new one; shared by SIGHUP and the admin socket,
/// one reload at a time.
pub struct Reloader {
    /// The config in force: as loaded at start (before listeners' port 0 became real
    /// ports), with what reloads applied since.
    running: Mutex<Config>,
    log: Option<LogReload>,
    certificate: Option<Arc<CurrentCert>>,
    /// What the limits and the modules' options are applied to.
    server: Arc<Server>,
    /// The runtime the server's tasks run on: a new host's services start there.
    runtime: tokio::runtime::Handle,
}

impl Reloader {
    /// Called on the server's runtime (it is kept to start services on).
    pub fn new(running: Config, log: Option<LogReload>, server: Arc<Server>) -> Reloader {
        Reloader {
            running: Mutex::new(running),
            log,
            certificate: server.certificate.clone(),
            server,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// One reload; what it did is logged and returned. systemd hears of it, so
    /// `systemctl reload` returns when it is done.
    pub fn reload(&self) -> ReloadReport {
        crate::systemd::notify(crate::systemd::RELOADING);
        let report = self.reload_config();
        crate::systemd::notify(crate::systemd::READY);
        report
    }

    fn reload_config(&self) -> ReloadReport {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let mut report = ReloadReport::default();
        let Some(path) = running.source.clone() else {
            report
                .refused
                .push("no config file to re-read (started without --config)".into());
            tracing::info!("reload: no config file to re-read (started without --config)");
            return report;
        };
        let new = match Config::load(&path) {
            Ok(new) => new,
            Err(e) => {
                refuse(
                    &mut report,
                    format!("config not reloaded, the running one stays: {e}"),
                );
                return report;
            }
        };
        self.apply_log_level(&mut running, &new, &mut report);
        self.apply_certificate(&mut running, &new, &mut report);
        self.apply_limits(&mut running, &new, &mut report);
        self.apply_module_options(&mut running, &new, &mut report);
        self.apply_hosts(&mut running, &new, &mut report);
        // Everything else is in force only after a restart: say which, so the admin is not
        // left guessing which edit took effect.
        report.needs_restart = changed_sections(&running, &new);
        if report.needs_restart.is_empty() {
            tracing::info!(file = %path.display(), "reload: config re-read");
        } else {
            tracing::warn!(
                file = %path.display(),
                keys = %report.needs_restart.join(", "),
                "reload: other changes in the config need a restart to take effect"
            );
        }
        report
    }

    fn apply_log_level(&self, running: &mut Config, new: &Config, report: &mut ReloadReport) {
        if new.log.level == running.log.level {
            return;
        }
        match self.log.as_ref().map(|apply| apply(&new.log.level)) {
            Some(Ok(())) => {
                tracing::info!(level = %new.log.level, "reload: log.level applied");
                report
                    .applied
                    .push(format!("log.level = \"{}\"", new.log.level));
                running.log.level = new.log.level.clone();
            }
            Some(Err(why)) => {
                tracing::warn!(level = %new.log.level, "reload: log.level not applied: {why}");
                report.refused.push(format!("log.level: {why}"));
            }
            None => {
                tracing::warn!("reload: log.level cannot change in this process");
                report
                    .refused
                    .push("log.level: cannot change in this process".into());
            }
        }
    }

    /// The certificate is re-read even when `[tls]` did not change: renewing one in place
    /// (same paths, new files) is the usual case.
    fn apply_certificate(&self, running: &mut Config, new: &Config, report: &mut ReloadReport) {
        let Some(current) = &self.certificate else {
            return;
        };
        match current.reload(new) {
            Ok(Some(cert)) => {
                let described = match crate::tls::summary(&cert) {
                    Some(s) => format!(
                        "{} ({}, SHA-256 {}, until {})",
                        cert.display(),
                        s.subject,
                        s.sha256,
                        s.not_after
                    ),
                    None => cert.display().to_string(),
                };
                tracing::info!(certificate = %described, "reload: certificate served to new connections");
                report.applied.push(format!("tls: certificate {described}"));
                running.tls = new.tls.clone();
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!("reload: certificate not replaced, the one in use stays: {e}");
                report.refused.push(format!(
                    "tls: certificate not replaced, the one in use stays: {e}"
                ));
            }
        }
    }
}

impl Reloader {
    /// The limits of `[c2s]`, `[auth]`, `[roster]`, `[offline]` and `[http]`: a new
    /// snapshot for what starts from now on; open connections keep the one they started
    /// with. Their keys bound at start stay as they are, for `changed_sections` to name.
    fn apply_limits(&self, running: &mut Config, new: &Config, report: &mut ReloadReport) {
        let server = &self.server;
        let old = server.live.get();
        let mut live = Live::from_config(new);
        keep_bound_c2s(&mut live.c2s, &old.c2s);
        keep_bound_http(&mut live.http, &old.http);
        let mut applied = Vec::new();
        let mut changed = |key: &str, value: String| {
            tracing::info!(key, %value, "reload: applied");
            applied.push(format!("{key} = {value}"));
        };
        macro_rules! keys {
            ($section:ident: $($field:ident),+) => {$(
                if old.$section.$field != live.$section.$field {
                    changed(
                        concat!(stringify!($section), ".", stringify!($field)),
                        format!("{:?}", live.$section.$field),
                    );
                }
            )+};
        }
        keys!(c2s: require_encryption, allow_plain_without_tls, handshake_timeout, idle_timeout,
            max_stanza_bytes, max_depth, max_attributes, max_header_bytes, max_connections,
            max_auth_failures, max_sessions_per_account, max_connections_per_ip, per_ip_exempt);
        // Named as in the file, in milliseconds.
        if old.c2s.auth_failure_delay != live.c2s.auth_failure_delay {
            changed(
                "c2s.auth_failure_delay_ms",
                live.c2s.auth_failure_delay.as_millis().to_string(),
            );
        }
        keys!(auth: scram_iterations, min_password_length, registration_interval);
        keys!(roster: max_items);
        keys!(offline: max_messages);
        keys!(http: bosh_max_wait, bosh_inactivity, bosh_max_pending_bytes, header_timeout,
            allowed_origins, trusted_proxies, max_request_bytes, max_requests_per_second);
        if applied.is_empty() {
            return;
        }
        server.connections.resize(live.c2s.max_connections);
        server.per_ip.update(&live);
        server.registrations.update(&live);
        server.throttle.set_per_failure(live.c2s.auth_failure_delay);
        let mut c2s = live.c2s.clone();
        keep_bound_c2s(&mut c2s, &running.c2s);
        running.c2s = c2s;
        let mut http = live.http.clone();
        keep_bound_http(&mut http, &running.http);
        running.http = http;
        running.auth = live.auth.clone();
        running.roster = live.roster.clone();
        running.offline = live.offline.clone();
        server.live.set(live);
        report.applied.extend(applied);
    }

    /// Each module whose `[modules.NAME]` options changed takes them if it can
    /// (`Registrar::on_reload`); switching one on or off, a module without a way to take
    /// new options, or a key it binds at start, needs a restart.
    fn apply_module_options(&self, running: &mut Config, new: &Config, report: &mut ReloadReport) {
        for outcome in self.server.modules.reload(&running.modules, &new.modules) {
            match outcome.result {
                Ok(in_force) => {
                    tracing::info!(module = outcome.name, "reload: module options applied");
                    report
                        .applied
                        .push(format!("modules.{}: options applied", outcome.name));
                    // Keys bound at start keep their running values here, for
                    // `changed_sections` to name.
                    match in_force {
                        Some(table) => {
                            running.modules.0.insert(outcome.name.to_owned(), table);
                        }
                        None => {
                            running.modules.0.remove(outcome.name);
                        }
                    }
                }
                Err(crate::modules::ReloadRefused::Restart) => {}
                Err(crate::modules::ReloadRefused::Invalid(why)) => {
                    tracing::warn!(
                        module = outcome.name,
                        "reload: module options refused: {why}"
                    );
                    report
                        .refused
                        .push(format!("modules.{}: {why}", outcome.name));
                }
            }
        }
    }
}

impl Reloader {
    /// `[hosts]`: the new table is served from now on (`Registry::set_hosts`): an added
    /// host's modules and services placed and started as at start, a removed one's streams
    /// refused as `host-unknown` and its sessions ended with `host-gone` (RFC 6120
    /// §4.9.3.6), a changed one's settings read by the next request. Storage keeps every
    /// host's data. A service that does not start refuses the whole change.
    fn apply_hosts(&self, running: &mut Config, new: &Config, report: &mut ReloadReport) {
        let diff = HostsDiff::between(&running.hosts, &new.hosts);
        if diff.is_empty() {
            return;
        }
        let server = &self.server;
        let placed = match self
            .runtime
            .block_on(server.modules.set_hosts(server, &new.hosts))
        {
            Ok(placed) => placed,
            Err(e) => {
                refuse(
                    report,
                    format!("hosts: not changed, the running ones stay: {e}"),
                );
                return;
            }
        };
        let ended = end_sessions_of(server, &diff.removed);
        for host in &diff.added {
            tracing::info!(%host, "reload: host added");
            report.applied.push(format!("hosts: added {host}"));
            if let Some(warning) = self.uncovered(host, running.tls.cert.is_some()) {
                tracing::warn!(%host, "reload: {warning}");
                report.warnings.push(warning);
            }
        }
        for host in &diff.removed {
            tracing::info!(%host, "reload: host removed");
            report.applied.push(format!("hosts: removed {host}"));
        }
        if ended > 0 {
            tracing::info!(
                sessions = ended,
                "reload: the removed hosts' sessions ended with host-gone"
            );
        }
        for host in &diff.changed {
            tracing::info!(%host, "reload: host settings applied");
            report.applied.push(format!("hosts: changed {host}"));
        }
        if !placed.started.is_empty() || !placed.stopped.is_empty() {
            tracing::info!(
                started = %placed.started.join(","),
                stopped = %placed.stopped.join(","),
                "reload: service domains"
            );
        }
        running.hosts = new.hosts.clone();
    }

    /// A warning when the certificate served does not name `host`: clients checking it
    /// (RFC 6120 §13.7.2.1) would refuse TLS with it. A generated one, like at start, is not
    /// made again for a new host.
    fn uncovered(&self, host: &str, configured: bool) -> Option<String> {
        let current = self.certificate.as_ref()?;
        let cert = current.end_entity()?;
        if crate::tls::names_domain(&cert, host) {
            return None;
        }
        let which = match configured {
            true => "tls.cert",
            false => "the generated one: remove cert.pem and key.pem from data_dir and restart to have one made for every host",
        };
        Some(format!(
            "hosts: the certificate served ({which}) does not name {host}: clients that check it will refuse TLS"
        ))
    }
}

/// Logs `why` as an error and reports it refused.
fn refuse(report: &mut ReloadReport, why: String) {
    tracing::error!("reload: {why}");
    report.refused.push(why);
}

/// Ends every session of the hosts `removed` with `host-gone`; how many were told.
fn end_sessions_of(server: &Server, removed: &[String]) -> usize {
    if removed.is_empty() {
        return 0;
    }
    let mut gone = Vec::new();
    server.router.table.for_each(&mut |jid, _| {
        if removed.iter().any(|h| h == jid.domain().as_str()) {
            gone.push(jid.clone());
        }
    });
    let error = StreamError::new(StreamCondition::HostGone);
    gone.iter()
        .filter(|jid| server.router.table.close(jid, error.clone()))
        .count()
}

/// `[c2s]` keys bound at start: the listeners.
fn keep_bound_c2s(c2s: &mut C2sConfig, from: &C2sConfig) {
    c2s.listen = from.listen.clone();
    c2s.direct_tls_listen = from.direct_tls_listen.clone();
}

/// `[http]` keys bound at start: the listeners, the routes and what is built on them. The
/// others (BOSH's and the connections' timeouts, the safety layers' allow-lists and
/// limits) are live.
fn keep_bound_http(http: &mut HttpConfig, from: &HttpConfig) {
    let live = http.clone();
    *http = HttpConfig {
        bosh_max_wait: live.bosh_max_wait,
        bosh_inactivity: live.bosh_inactivity,
        bosh_max_pending_bytes: live.bosh_max_pending_bytes,
        header_timeout: live.header_timeout,
        allowed_origins: live.allowed_origins,
        trusted_proxies: live.trusted_proxies,
        max_request_bytes: live.max_request_bytes,
        max_requests_per_second: live.max_requests_per_second,
        ..from.clone()
    };
}

/// The top-level keys and sections whose values differ (those a reload does not apply).
/// For `[c2s]` and `[http]`, whose limits a reload applies, the keys left.
fn changed_sections(running: &Config, new: &Config) -> Vec<String> {
    let mut changed = Vec::new();
    let mut differs = |name: &str, same: bool| {
        if !same {
            changed.push(name.to_owned());
        }
    };
    differs("data_dir", running.data_dir == new.data_dir);
    differs("log", running.log == new.log);
    differs("storage", running.storage == new.storage);
    differs("tls", running.tls == new.tls);
    differs("c2s.listen", running.c2s.listen == new.c2s.listen);
    differs(
        "c2s.direct_tls_listen",
        running.c2s.direct_tls_listen == new.c2s.direct_tls_listen,
    );
    differs("flash", running.flash == new.flash);
    let http = http_keys_changed(&running.http, &new.http);
    for key in &http {
        differs(&format!("http.{key}"), false);
    }
    // A key added to `[http]` and not yet named above still shows.
    differs("http", !http.is_empty() || running.http == new.http);
    differs("auth", running.auth == new.auth);
    differs("roster", running.roster == new.roster);
    differs("offline", running.offline == new.offline);
    differs("metrics", running.metrics == new.metrics);
    for key in module_tables_changed(running, new) {
        differs(&format!("modules.{key}"), false);
    }
    changed
}

/// The `[http]` keys that differ, by name.
fn http_keys_changed(running: &HttpConfig, new: &HttpConfig) -> Vec<&'static str> {
    let mut changed = Vec::new();
    macro_rules! keys {
        ($($field:ident),+) => {$(
            if running.$field != new.$field {
                changed.push(stringify!($field));
            }
        )+};
    }
    keys!(
        listen,
        tls_listen,
        websocket_path,
        websocket_see_other_uri,
        public_url,
        loopback_is_encrypted,
        bosh_path,
        bosh_max_wait,
        bosh_inactivity,
        bosh_max_pending_bytes,
        allowed_origins,
        trusted_proxies,
        max_request_bytes,
        max_requests_per_second,
        chat_path,
        chat_assets,
        header_timeout
    );
    changed
}

/// What differs in the `[modules.NAME]` tables: each key (`muc.domain`) of a module that
/// stays on (or off), the module's name (`muc`) of one switched on or off.
fn module_tables_changed(running: &Config, new: &Config) -> Vec<String> {
    use std::collections::BTreeSet;
    let names: BTreeSet<&str> = running
        .modules
        .0
        .keys()
        .chain(new.modules.0.keys())
        .map(String::as_str)
        .collect();
    let mut changed = Vec::new();
    for name in names {
        let (before, after) = (running.modules.0.get(name), new.modules.0.get(name));
        if before == after {
            continue;
        }
        let none = toml::Table::new();
        let split = |t: Option<&toml::Table>| split_enabled(name, t.unwrap_or(&none)).ok();
        match (split(before), split(after)) {
            (Some((on, old)), Some((still, new))) if on == still => {
                let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
                for key in keys.into_iter().filter(|k| old.get(*k) != new.get(*k)) {
                    changed.push(format!("{name}.{key}"));
                }
            }
            _ => changed.push(name.to_owned()),
        }
    }
    changed
}

/// SIGHUP, caught from the moment [`Hangup::install`] returns (before the server says it
/// started, like SIGTERM in `shutdown.rs`).
pub struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    pub fn install() -> Hangup {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Hangup {
                signal: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        Hangup {}
    }

    /// Reloads at every SIGHUP, for as long as the server runs.
    pub async fn serve(self, reloader: Arc<Reloader>) {
        #[cfg(unix)]
        if let Some(mut signal) = self.signal {
            while signal.recv().await.is_some() {
                let reloader = reloader.clone();
                // Files are read: off the async threads.
                let _ = tokio::task::spawn_blocking(move || reloader.reload()).await;
            }
        }
        #[cfg(not(unix))]
        let _ = reloader;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_toml_str(text, None).unwrap()
    }

    #[test]
    fn module_options_left_for_a_restart_are_named_by_key() {
        let running = config("[modules.muc]\ndomain = \"chat.{host}\"\n");
        let new = config(
            "[modules.muc]\ndomain = \"rooms.{host}\"\nmax_occupants = 2\n\
             [modules.upload]\nenabled = true\n",
        );
        assert_eq!(
            changed_sections(&running, &new),
            [
                "modules.muc.domain",
                "modules.muc.max_occupants",
                "modules.upload"
            ]
        );
    }
}
