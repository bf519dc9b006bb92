//! XEP-0157: Contact Addresses for XMPP Services — whom to write to about abuse, security,
//! support, …: a `serverinfo` data form in the host's disco#info (XEP-0128), from
//! `[modules.contact_addresses]`. Nothing is shown until an address is configured. A
//! reload's addresses show in the next disco#info (and so in the host's XEP-0115 `ver`).

use std::sync::Arc;

use jabberwock_protocol::forms::{DataForm, Field, FormType};
use jabberwock_protocol::ns;
use jabberwock_protocol::xml::Element;
use serde::Deserialize;

use super::{xep, DiscoExtension, Module, Registrar, Target, Xep};
use crate::live::Snapshot;

pub struct ContactAddresses;

/// Each key a list of URIs (`mailto:`, `xmpp:`, `https:`), as XEP-0157 §3 wants them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AddressesConfig {
    abuse: Vec<String>,
    admin: Vec<String>,
    feedback: Vec<String>,
    sales: Vec<String>,
    security: Vec<String>,
    status: Vec<String>,
    support: Vec<String>,
}

/// The `serverinfo` form of the addresses in force, `None` when none is configured.
fn form_of(config: &AddressesConfig) -> Option<Element> {
    let kinds = [
        ("abuse-addresses", &config.abuse),
        ("admin-addresses", &config.admin),
        ("feedback-addresses", &config.feedback),
        ("sales-addresses", &config.sales),
        ("security-addresses", &config.security),
        ("status-addresses", &config.status),
        ("support-addresses", &config.support),
    ];
    if kinds.iter().all(|(_, uris)| uris.is_empty()) {
        return None;
    }
    let mut form = DataForm::new(FormType::Result).with_form_type(ns::SERVERINFO);
    for (var, uris) in kinds {
        if uris.is_empty() {
            continue;
        }
        let mut field = Field::new(var);
        for uri in uris {
            field = field.with_value(uri);
        }
        form = form.with_field(field);
    }
    Some(form.to_element())
}

/// The form in force, made once per start or reload.
struct Addresses(Snapshot<Option<Element>>);

impl DiscoExtension for Addresses {
    fn form(&self) -> Option<Element> {
        (*self.0.get()).clone()
    }
}

impl Module for ContactAddresses {
    const NAME: &'static str = "contact_addresses";
    const XEPS: &'static [Xep] = &[xep(157, "1.1.1")];
    type Config = AddressesConfig;

    fn register(config: AddressesConfig, registry: &mut Registrar<'_>) {
        let addresses = Arc::new(Addresses(Snapshot::new(form_of(&config))));
        let reloaded = addresses.clone();
        registry.on_reload(
            &[
                "abuse", "admin", "feedback", "sales", "security", "status", "support",
            ],
            move |config: AddressesConfig| {
                reloaded.0.set(form_of(&config));
                Ok(())
            },
        );
        registry.disco_extension(Target::Host, addresses);
    }
}
