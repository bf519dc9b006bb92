//! XEP-0198: Stream Management (version 1.6.1). Acknowledgements and resumption wrap every
//! stanza a session reads and writes, so the protocol itself runs in the session layer
//! (`session/acks.rs`, `session/resume.rs`); this module offers the stream feature after
//! authentication and sets the session layer's limits (`[modules.stream_management]`),
//! which a reload replaces: a session takes them when it enables stream management (the
//! resumption wait) and when its stream starts or resumes (the rest). Without it,
//! `<enable/>` and `<resume/>` are refused with `feature-not-implemented`.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::config::TableError;
use super::{xep, FeatureContext, Module, Registrar, Stage, StreamFeature, Xep};
use crate::live::Snapshot;

pub struct StreamManagement;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmConfig {
    /// Seconds a resumable session waits for its client after the stream is lost, when the
    /// client names no `max` (default 300, as ejabberd).
    resume_timeout: u32,
    /// The longest wait a client may ask for with `max` (default 600, as Prosody's).
    max_resume_timeout: u32,
    /// Seconds an `<r/>` of ours may wait for the client's `<a/>` before the stream counts
    /// as lost (default 30): a connection cut without a FIN or RST looks alive to TCP.
    ack_timeout: u32,
    /// Stanzas kept for the client, sent and unacknowledged or arrived while it was away,
    /// before the session is ended with `policy-violation` and they are handed back as
    /// undeliverable (default 1000).
    max_unacked: usize,
}

impl Default for SmConfig {
    fn default() -> Self {
        SmConfig {
            resume_timeout: 300,
            max_resume_timeout: 600,
            ack_timeout: 30,
            max_unacked: 1000,
        }
    }
}

/// What the session layer reads (see [`SmConfig`]).
#[derive(Clone, Debug)]
pub struct SmSettings {
    pub resume_timeout: u32,
    pub max_resume_timeout: u32,
    pub ack_timeout: Duration,
    pub max_unacked: usize,
}

impl From<&SmConfig> for SmSettings {
    fn from(config: &SmConfig) -> SmSettings {
        SmSettings {
            resume_timeout: config.resume_timeout,
            max_resume_timeout: config.max_resume_timeout,
            ack_timeout: Duration::from_secs(config.ack_timeout.into()),
            max_unacked: config.max_unacked,
        }
    }
}

impl SmSettings {
    /// The wait for a session that asked for `max` seconds (§3: the server may offer less).
    pub fn resume_timeout(&self, max: Option<u32>) -> u32 {
        max.unwrap_or(self.resume_timeout)
            .min(self.max_resume_timeout)
    }
}

/// Offered after authentication on every stream (§3): a resumed session may arrive on any
/// kind of connection.
struct Feature;

impl StreamFeature for Feature {
    fn offer(&self, _ctx: &FeatureContext<'_>) -> Option<jabberwock_protocol::xml::Element> {
        Some(jabberwock_protocol::sm::feature())
    }
}

fn at_least_one(key: &str, value: u64) -> Result<(), TableError> {
    if value == 0 {
        return Err(TableError {
            path: vec![key.to_owned()],
            message: "must be at least 1".to_owned(),
        });
    }
    Ok(())
}

impl Module for StreamManagement {
    const NAME: &'static str = "stream_management";
    const XEPS: &'static [Xep] = &[xep(198, "1.6.1")];
    type Config = SmConfig;

    fn check(config: &SmConfig, _hosts: &[String]) -> Result<(), TableError> {
        at_least_one("ack_timeout", config.ack_timeout.into())?;
        at_least_one("max_unacked", config.max_unacked as u64)?;
        if config.resume_timeout > config.max_resume_timeout {
            return Err(TableError {
                path: vec!["resume_timeout".to_owned()],
                message: format!(
                    "{} is more than max_resume_timeout ({})",
                    config.resume_timeout, config.max_resume_timeout
                ),
            });
        }
        Ok(())
    }

    fn register(config: SmConfig, registrar: &mut Registrar<'_>) {
        registrar.stream_feature(Stage::PostAuth, Arc::new(Feature));
        let settings = Arc::new(Snapshot::new(SmSettings::from(&config)));
        let reloaded = settings.clone();
        registrar.on_reload(
            &[
                "resume_timeout",
                "max_resume_timeout",
                "ack_timeout",
                "max_unacked",
            ],
            move |config: SmConfig| {
                reloaded.set(SmSettings::from(&config));
                Ok(())
            },
        );
        registrar.stream_management(settings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_at_most_the_servers_longest_wait() {
        let settings = SmSettings {
            resume_timeout: 300,
            max_resume_timeout: 600,
            ack_timeout: Duration::from_secs(30),
            max_unacked: 1000,
        };
        assert_eq!(settings.resume_timeout(None), 300);
        assert_eq!(settings.resume_timeout(Some(60)), 60);
        assert_eq!(settings.resume_timeout(Some(3600)), 600);
    }
}
