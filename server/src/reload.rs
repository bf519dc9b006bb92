//! Reloading the config while the server runs, on SIGHUP or `jabberwock reload` (the
//! admin socket): the file is re-read, `log.level` applied, the TLS certificate and key
//! re-read and served to new connections (open ones keep theirs), and every other change
//! named as needing a restart. A config that no longer loads, or a certificate that does
//! not, is refused with the usual message and what runs stays. SIGHUP never ends the
//! server (its default disposition would).

use std::sync::{Arc, Mutex};

use crate::admin::wire::ReloadReport;
use crate::config::Config;
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
}

impl Reloader {
    pub fn new(
        running: Config,
        log: Option<LogReload>,
        certificate: Option<Arc<CurrentCert>>,
    ) -> Reloader {
        Reloader {
            running: Mutex::new(running),
            log,
            certificate,
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
                tracing::error!("reload: config not reloaded, the running one stays: {e}");
                report
                    .refused
                    .push(format!("config not reloaded, the running one stays: {e}"));
                return report;
            }
        };
        self.apply_log_level(&mut running, &new, &mut report);
        self.apply_certificate(&mut running, &new, &mut report);
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

/// The top-level keys and sections whose values differ (those a reload does not apply).
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
    differs("c2s", running.c2s == new.c2s);
    differs("flash", running.flash == new.flash);
    differs("http", running.http == new.http);
    differs("auth", running.auth == new.auth);
    differs("roster", running.roster == new.roster);
    differs("offline", running.offline == new.offline);
    differs("modules", running.modules == new.modules);
    differs("hosts", running.hosts == new.hosts);
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
