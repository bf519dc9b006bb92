//! Orderly shutdown (mini-redis style): one signal that every task watches, and a tracker
//! that lets `main` wait until every session has closed its stream.

use tokio::sync::watch;

/// A handle each connection task holds to learn that the server is stopping.
#[derive(Clone)]
pub struct ShutdownSignal {
    rx: watch::Receiver<bool>,
}

impl ShutdownSignal {
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown has been requested.
    pub async fn triggered(&mut self) {
        // An error means the sender is gone, which also means we are stopping.
        let _ = self.rx.wait_for(|stopping| *stopping).await;
    }
}

/// Owned by the top level: triggers the shutdown.
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Shutdown {
    pub fn new() -> Self {
        let (tx, _) = watch::channel(false);
        Shutdown { tx }
    }

    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal {
            rx: self.tx.subscribe(),
        }
    }

    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

/// SIGTERM and SIGINT (Ctrl-C), caught from the moment [`Termination::install`] returns:
/// installed before the server says it started, so a signal sent as soon as it did ends it
/// gracefully instead of by the default disposition (killed, nothing closed).
pub struct Termination {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Termination {
    pub fn install() -> Termination {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = signal(SignalKind::terminate())
                .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)))
                .ok();
            Termination { signals }
        }
        #[cfg(not(unix))]
        Termination {}
    }

    /// Resolves when one of the signals arrives.
    pub async fn requested(self) {
        #[cfg(unix)]
        if let Some((mut term, mut int)) = self.signals {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
