//! SIGHUP: re-read the config file and apply what can change while the server runs. Today
//! that is `log.level`; every other change is named in the log as needing a restart. A
//! config that no longer loads is refused with the usual file/key/line message and the
//! running config stays. SIGHUP never ends the server (its default disposition would).

use std::sync::Arc;

use crate::config::Config;

/// Applies a new `log.level` to the running logger (the binary owns the logger); `Err`
/// says why it was not applied.
pub type LogReload = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

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

    /// Re-reads the config at every SIGHUP, for as long as the server runs. `running` is
    /// the config as loaded at start (before listeners' port 0 became real ports).
    pub async fn serve(self, running: Config, log: Option<LogReload>) {
        #[cfg(unix)]
        if let Some(mut signal) = self.signal {
            let mut running = running;
            while signal.recv().await.is_some() {
                running = reload(running, log.as_ref());
            }
        }
        #[cfg(not(unix))]
        let _ = (running, log);
    }
}

/// One reload: the config re-read from its file, `log.level` applied, the rest compared.
/// Returns the config that is now in force.
fn reload(running: Config, log: Option<&LogReload>) -> Config {
    let Some(path) = running.source.clone() else {
        tracing::info!("SIGHUP: no config file to re-read (started without --config)");
        return running;
    };
    let new = match Config::load(&path) {
        Ok(new) => new,
        Err(e) => {
            tracing::error!("SIGHUP: config not reloaded, the running one stays: {e}");
            return running;
        }
    };
    let mut in_force = running;
    if new.log.level != in_force.log.level {
        match log.map(|apply| apply(&new.log.level)) {
            Some(Ok(())) => {
                tracing::info!(level = %new.log.level, "SIGHUP: log.level applied");
                in_force.log = new.log.clone();
            }
            Some(Err(why)) => {
                tracing::warn!(level = %new.log.level, "SIGHUP: log.level not applied: {why}")
            }
            None => tracing::warn!("SIGHUP: log.level cannot change in this process"),
        }
    }
    // Everything else in force only after a restart: say so, so the admin is not left
    // guessing which edit took effect.
    let mut rest = new;
    rest.log = in_force.log.clone();
    if rest != in_force {
        tracing::warn!(file = %path.display(), "SIGHUP: other changes in the config need a restart to take effect");
    } else {
        tracing::info!(file = %path.display(), "SIGHUP: config re-read");
    }
    in_force
}
