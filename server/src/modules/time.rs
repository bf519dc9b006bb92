//! XEP-0202: Entity Time — the server's clock, in UTC (the server keeps no time zone).

use std::sync::Arc;

use async_trait::async_trait;
use jabberwock_protocol::delay::datetime;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{IqType, StanzaError};
use jabberwock_protocol::xml::Element;

use super::{xep, IqHandler, IqRequest, Module, NoConfig, Registrar, Target, Xep};

pub struct Time;

struct Answer;

/// Seconds since the Unix epoch, by the system clock.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[async_trait]
impl IqHandler for Answer {
    async fn handle(&self, _request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        // XEP-0202 §3: <tzo/> is the offset from UTC, <utc/> a XEP-0082 DateTime in UTC.
        Ok(Some(
            Element::new("time", ns::TIME)
                .with_child(Element::new("tzo", ns::TIME).with_text("+00:00"))
                .with_child(Element::new("utc", ns::TIME).with_text(datetime(now_unix()))),
        ))
    }
}

impl Module for Time {
    const NAME: &'static str = "time";
    const XEPS: &'static [Xep] = &[xep(202, "2.0")];
    type Config = NoConfig;

    fn register(_config: NoConfig, registry: &mut Registrar<'_>) {
        registry.iq(
            IqType::Get,
            Target::Host,
            ns::TIME,
            "time",
            Arc::new(Answer),
        );
        registry.disco_feature(Target::Host, ns::TIME);
    }
}
