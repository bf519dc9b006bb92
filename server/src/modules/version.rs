//! XEP-0092: Software Version — the server's name and version; its operating system only
//! when the admin allows it (`[modules.version] show_os`), since it helps an attacker more
//! than a user.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{IqType, StanzaError};
use jabberwock_protocol::xml::Element;
use serde::Deserialize;

use super::{xep, IqHandler, IqRequest, Module, Registrar, Target, Xep};

pub struct Version;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VersionConfig {
    /// Answer with the operating system too (default false).
    show_os: bool,
}

struct Answer {
    /// A reload may change it: the next answer shows it or not.
    show_os: AtomicBool,
}

#[async_trait]
impl IqHandler for Answer {
    async fn handle(&self, _request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let text = |name: &str, value: &str| Element::new(name, ns::VERSION).with_text(value);
        let mut query = Element::new("query", ns::VERSION)
            .with_child(text("name", "Jabberwock"))
            .with_child(text("version", env!("CARGO_PKG_VERSION")));
        if self.show_os.load(Ordering::Relaxed) {
            query.push_child(text("os", std::env::consts::OS));
        }
        Ok(Some(query))
    }
}

impl Module for Version {
    const NAME: &'static str = "version";
    const XEPS: &'static [Xep] = &[xep(92, "1.1")];
    type Config = VersionConfig;

    fn register(config: VersionConfig, registry: &mut Registrar<'_>) {
        let answer = Arc::new(Answer {
            show_os: AtomicBool::new(config.show_os),
        });
        let reloaded = answer.clone();
        registry.on_reload(&["show_os"], move |config: VersionConfig| {
            reloaded.show_os.store(config.show_os, Ordering::Relaxed);
            Ok(())
        });
        registry.iq(IqType::Get, Target::Host, ns::VERSION, "query", answer);
        registry.disco_feature(Target::Host, ns::VERSION);
    }
}
