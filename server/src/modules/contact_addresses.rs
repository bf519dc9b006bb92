//! XEP-0157: Contact Addresses for XMPP Services — whom to write to about abuse, security,
//! support, …: a `serverinfo` data form in the host's disco#info (XEP-0128), from
//! `[modules.contact_addresses]`. Nothing is shown until an address is configured.

use jabberwock_protocol::forms::{DataForm, Field, FormType};
use jabberwock_protocol::ns;
use serde::Deserialize;

use super::{xep, Module, Registrar, Target, Xep};

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

impl Module for ContactAddresses {
    const NAME: &'static str = "contact_addresses";
    const XEPS: &'static [Xep] = &[xep(157, "1.1.1")];
    type Config = AddressesConfig;

    fn register(config: AddressesConfig, registry: &mut Registrar<'_>) {
        let kinds = [
            ("abuse-addresses", config.abuse),
            ("admin-addresses", config.admin),
            ("feedback-addresses", config.feedback),
            ("sales-addresses", config.sales),
            ("security-addresses", config.security),
            ("status-addresses", config.status),
            ("support-addresses", config.support),
        ];
        if kinds.iter().all(|(_, uris)| uris.is_empty()) {
            return;
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
        registry.disco_extension(Target::Host, form.to_element());
    }
}
