//! Features as modules, in the shape of Prosody's `mod_*` and ejabberd's `gen_mod`: a module
//! declares what it is ([`Module`]: name, XEPs, dependencies, its `[modules.NAME]` table) and
//! at start registers, through one [`Registrar`], everything it adds: IQ handlers, disco
//! identities and features, stream features, nonza handlers and hooks on events. The core
//! (c2s, session, router, presence) fires the events and asks the [`Registry`]; it never
//! names a feature module. A new XEP is one file here plus one line in [`MODULES`].

pub mod commands;
pub mod config;
pub mod hooks;
pub mod hosts;
pub mod registry;
pub mod session_state;

mod adhoc;
mod admin_adhoc;
mod blocking;
pub mod caps;
mod carbons;
mod contact_addresses;
mod csi;
pub(crate) mod disco;
pub mod durability;
mod external_services;
mod last;
mod legacy_session;
mod mam;
mod muc;
mod offline;
mod pep;
mod ping;
mod presence;
mod private;
pub(crate) mod pubsub;
pub mod register;
mod roster;
mod s2s;
pub mod stream_management;
mod time;
mod upload;
pub(crate) mod vcard;
mod version;

use serde::de::DeserializeOwned;

pub use hooks::{Event, EventKind, Flow, Hook, OwnWrites};
pub use registry::{
    Backlog, DiscoExtension, DiscoItems, DiscoTarget, EmptyResult, FeatureContext, HttpRoutes,
    InfoNode, IqHandler, IqRequest, ModuleId, ModuleReload, Nonza, NonzaHandler, PlacedServices,
    PreAuthIq, PreAuthIqHandler, Registrar, Registry, ReloadRefused, Remote, Service,
    ServiceDelivery, ServiceEntry, Stage, StreamFeature, Target,
};
pub use session_state::{SessionFlag, SessionState};

/// A XEP a module implements and the version of it followed (ejabberd's `-protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Xep {
    pub number: u16,
    pub version: &'static str,
}

pub const fn xep(number: u16, version: &'static str) -> Xep {
    Xep { number, version }
}

/// What a module is. The associated items are read before any module runs (config
/// checking, the dependency order); [`Module::register`] runs once per server start.
pub trait Module: Send + Sync + 'static {
    /// The name used in `[modules.NAME]` and `modules_disabled`.
    const NAME: &'static str;
    /// The XEPs implemented, with the version followed.
    const XEPS: &'static [Xep];
    /// Modules that must be enabled wherever this one is.
    const DEPENDS: &'static [&'static str] = &[];
    /// Whether it runs when the config does not mention it (`[modules.NAME] enabled`).
    const ON_BY_DEFAULT: bool = true;
    /// Whether it serves HTTP routes ([`Registrar::http_routes`]): it may then be enabled
    /// only with an HTTP listener (`http.listen` or `http.tls_listen`), and its being on
    /// makes the HTTP listeners listen.
    const NEEDS_HTTP: bool = false;
    /// The keys of `[modules.NAME]` besides `enabled`; unknown keys are config errors.
    type Config: DeserializeOwned + Default;
    /// Checks what the config type alone cannot, knowing the hosts the module runs on (a
    /// name that must be on one of them, say); the error's path is below `modules.NAME`.
    fn check(_config: &Self::Config, _hosts: &[String]) -> Result<(), config::TableError> {
        Ok(())
    }
    /// Registers the module's handlers and hooks.
    fn register(config: Self::Config, registrar: &mut Registrar<'_>);
}

/// The config of a module that has no keys besides `enabled`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// A module as the module list holds it: its declarations and its functions, without the
/// generic type (see [`describe`]).
pub struct Descriptor {
    pub name: &'static str,
    pub xeps: &'static [Xep],
    pub depends: &'static [&'static str],
    /// Runs without `enabled = true` in its table.
    pub on_by_default: bool,
    /// Serves HTTP routes: needs an HTTP listener.
    pub needs_http: bool,
    /// Checks a `[modules.NAME]` table (without `enabled`) against the module's config type
    /// and [`Module::check`], given the hosts the module runs on.
    check: fn(toml::Table, &[String]) -> Result<(), config::TableError>,
    /// Registers the module with its config table (without `enabled`).
    register: fn(toml::Table, &mut Registrar<'_>),
}

/// The [`Descriptor`] of module `M`.
pub const fn describe<M: Module>() -> Descriptor {
    Descriptor {
        name: M::NAME,
        xeps: M::XEPS,
        depends: M::DEPENDS,
        on_by_default: M::ON_BY_DEFAULT,
        needs_http: M::NEEDS_HTTP,
        check: check_table::<M>,
        register: register_with::<M>,
    }
}

fn check_table<M: Module>(table: toml::Table, hosts: &[String]) -> Result<(), config::TableError> {
    M::check(&config::parse::<M::Config>(table)?, hosts)
}

fn register_with<M: Module>(table: toml::Table, registrar: &mut Registrar<'_>) {
    // Checked when the config was loaded (`config::check`), so this parses.
    let config = config::parse::<M::Config>(table).unwrap_or_default();
    M::register(config, registrar)
}

/// Every module the server can run, in the order their hooks of equal priority run.
pub const MODULES: &[Descriptor] = &[
    describe::<blocking::Blocking>(),
    describe::<caps::Caps>(),
    describe::<carbons::Carbons>(),
    describe::<csi::Csi>(),
    describe::<stream_management::StreamManagement>(),
    describe::<disco::Disco>(),
    describe::<legacy_session::LegacySession>(),
    describe::<offline::Offline>(),
    describe::<ping::Ping>(),
    describe::<presence::Presence>(),
    describe::<register::Register>(),
    describe::<roster::Roster>(),
    describe::<version::Version>(),
    describe::<time::Time>(),
    describe::<last::Last>(),
    describe::<contact_addresses::ContactAddresses>(),
    describe::<external_services::ExternalServices>(),
    describe::<private::Private>(),
    describe::<vcard::Vcard>(),
    describe::<mam::Mam>(),
    describe::<pep::Pep>(),
    describe::<muc::Muc>(),
    describe::<pubsub::Pubsub>(),
    describe::<upload::Upload>(),
    describe::<s2s::S2s>(),
    describe::<adhoc::AdHoc>(),
    describe::<admin_adhoc::AdminAdhoc>(),
];

/// The module named `name`.
pub fn find(name: &str) -> Option<&'static Descriptor> {
    MODULES.iter().find(|m| m.name == name)
}

/// A `<message/>` of `kind` (none: no `type`) with empty children of these names and
/// namespaces: what the modules' rules about messages are tested on.
#[cfg(test)]
pub(crate) fn test_message(
    kind: Option<&str>,
    children: &[(&str, &str)],
) -> jabberwock_protocol::xml::Element {
    use jabberwock_protocol::xml::Element;
    let mut message = Element::new("message", jabberwock_protocol::ns::CLIENT);
    if let Some(kind) = kind {
        message.set_attr("type", kind);
    }
    for (name, namespace) in children {
        message.push_child(Element::new(name, namespace));
    }
    message
}
