//! XEP-0313: Message Archive Management (version 1.1.3) for accounts, with XEP-0359 stanza
//! ids (version 0.7.0). Every account keeps an archive of the messages it sends and
//! receives (`archive.rs` decides which, and marks them with their id), written by a
//! task that commits many at once (`writer.rs`; expiry and the per-account limit run
//! there too); clients page through it (`query.rs`) and choose what is kept (`prefs.rs`).
//!
//! The rule the hooks keep (docs/archive.md): a message is in its archives before the
//! server acknowledges it. A client's message goes on at once and its writes are handed
//! to the sender's session (`modules::durability`), which answers the client's XEP-0198
//! `<r/>` only once they are durable; any other message waits for its commit. While the
//! writer fails (a full disk), every hook waits, so that a message that cannot be stored
//! is refused rather than delivered.

// The MUC service's room archives (XEP-0313 §6) use the same rules, query and writer.
pub(super) mod archive;
mod prefs;
pub(super) mod query;
pub(super) mod writer;

use std::sync::Arc;

use jabberwock_protocol::mam::{DefaultRule, Prefs};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::IqType;
use serde::Deserialize;

use super::{xep, EventKind, Module, Registrar, Target, Xep};
use crate::live::Snapshot;

pub struct Mam;

/// The default of an account that never set its preferences (XEP-0313 §6).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DefaultPolicy {
    /// Every message, as Prosody's `default_archive_policy`.
    #[default]
    Always,
    Never,
    /// Messages with a JID in the account's roster.
    Roster,
}

impl DefaultPolicy {
    fn rule(self) -> DefaultRule {
        match self {
            DefaultPolicy::Always => DefaultRule::Always,
            DefaultPolicy::Never => DefaultRule::Never,
            DefaultPolicy::Roster => DefaultRule::Roster,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MamConfig {
    /// Preferences of an account that never set them: "always" (default), "never" or
    /// "roster".
    pub default: DefaultPolicy,
    /// Messages older than this many days are removed (0: kept forever, the default).
    pub retention_days: u32,
    /// An account's oldest messages beyond this many are removed (0: no limit, the default).
    pub max_messages_per_user: u64,
}

impl Default for MamConfig {
    fn default() -> Self {
        MamConfig {
            default: DefaultPolicy::Always,
            retention_days: 0,
            max_messages_per_user: 0,
        }
    }
}

/// Retention runs from the start, whether or not anyone sends a message; a clean stop
/// writes what the sessions queued and did not wait for.
struct Lifetime(Arc<State>);

#[async_trait::async_trait]
impl super::registry::Lifetime for Lifetime {
    async fn start(&self, server: &crate::server::Server) {
        self.0.writer.start(server);
    }

    async fn stop(&self, _server: &crate::server::Server) {
        self.0.writer.drain().await;
    }
}

/// What the module's hooks and handlers share.
struct State {
    /// The preferences of an account that never set them (`[modules.mam] default`), which
    /// a reload may change.
    default: Snapshot<Prefs>,
    writer: writer::Writer,
    prefs: prefs::Cache,
}

impl MamConfig {
    fn default_prefs(&self) -> Prefs {
        Prefs {
            default: self.default.rule(),
            always: Vec::new(),
            never: Vec::new(),
        }
    }
}

impl Module for Mam {
    const NAME: &'static str = "mam";
    const XEPS: &'static [Xep] = &[xep(313, "1.1.3"), xep(359, "0.7.0")];
    type Config = MamConfig;

    fn register(config: MamConfig, registry: &mut Registrar<'_>) {
        let state = Arc::new(State {
            writer: writer::Writer::new(&config),
            prefs: prefs::Cache::default(),
            default: Snapshot::new(config.default_prefs()),
        });
        // The next message archived (or not) follows the new default, the next retention
        // run the new limits.
        let reloaded = state.clone();
        registry.on_reload(
            &["default", "retention_days", "max_messages_per_user"],
            move |config: MamConfig| {
                reloaded.default.set(config.default_prefs());
                reloaded.writer.set_retention(&config);
                Ok(())
            },
        );
        // §4, §6: asked of the account's own bare JID (or with no `to`).
        let query = Arc::new(query::Query(state.clone()));
        registry.iq(
            IqType::Set,
            Target::Account,
            ns::MAM,
            "query",
            query.clone(),
        );
        registry.iq(IqType::Get, Target::Account, ns::MAM, "query", query);
        let prefs = Arc::new(prefs::Handler(state.clone()));
        registry.iq(
            IqType::Get,
            Target::Account,
            ns::MAM,
            "prefs",
            prefs.clone(),
        );
        registry.iq(IqType::Set, Target::Account, ns::MAM, "prefs", prefs);
        // Both XEPs' discovery: the account's own disco#info says so.
        for feature in [ns::MAM, ns::MAM_EXTENDED, ns::SID] {
            registry.disco_feature(Target::Account, feature);
        }
        // After the modules that may refuse a message (blocking, at 100), before carbons
        // (-100) copies it: the sent copy then carries the sender's archive id, which the
        // second hook, after carbons, removes before the message leaves.
        registry.hook(
            EventKind::MessageFromClient,
            -50,
            Arc::new(archive::Sent(state.clone())),
        );
        registry.hook(
            EventKind::MessageFromClient,
            -200,
            Arc::new(archive::SentIdOff),
        );
        registry.hook(
            EventKind::MessageAccepted,
            0,
            Arc::new(archive::Received(state.clone())),
        );
        registry.hook(
            EventKind::AccountDeleted,
            0,
            Arc::new(prefs::Forget(state.clone())),
        );
        registry.lifetime(Arc::new(Lifetime(state)));
    }
}
