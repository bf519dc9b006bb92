//! `[modules.NAME]`: each module's own config table. The server's config keeps the tables as
//! TOML; each is checked against its module's config type when the file is loaded (unknown
//! keys and wrong types are errors naming file, key and line, like every other key) and
//! parsed again when the module registers. `enabled = false` switches a module off
//! everywhere; `hosts."…".modules_disabled` switches it off for one host.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_path_to_error::Segment;

use super::{find, MODULES};
use crate::config::HostConfig;

/// The `[modules.NAME]` tables as written, by module name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct ModuleTables(pub BTreeMap<String, toml::Table>);

// The tables hold TOML values, floats among them; a config is compared only in tests, where
// no NaN appears.
impl Eq for ModuleTables {}

/// A problem in a module's table: the key path below `modules.NAME` and what is wrong.
#[derive(Debug)]
pub struct TableError {
    pub path: Vec<String>,
    pub message: String,
}

/// Parses a module's table (without `enabled`) into its config type.
pub fn parse<C: DeserializeOwned>(table: toml::Table) -> Result<C, TableError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        // Segment by segment: a key may hold a dot (`domains."b.example"`).
        let mut path: Vec<String> = Vec::new();
        for segment in e.path().iter() {
            match segment {
                Segment::Seq { index } => match path.last_mut() {
                    Some(last) => last.push_str(&format!("[{index}]")),
                    None => path.push(format!("[{index}]")),
                },
                Segment::Map { key } => path.push(key.clone()),
                Segment::Enum { variant } => path.push(variant.clone()),
                Segment::Unknown => path.push("?".to_owned()),
            }
        }
        TableError {
            path,
            message: e.into_inner().message().to_owned(),
        }
    })
}

/// A config problem at a key path from the file's root.
#[derive(Debug)]
pub struct Problem {
    pub path: Vec<String>,
    pub message: String,
}

fn problem(path: &[&str], message: impl Into<String>) -> Problem {
    Problem {
        path: path.iter().map(|p| p.to_string()).collect(),
        message: message.into(),
    }
}

/// `enabled` taken out of a module's table, and the rest.
pub fn split_enabled(name: &str, table: &toml::Table) -> Result<(bool, toml::Table), Problem> {
    let mut rest = table.clone();
    let enabled = match rest.remove("enabled") {
        None => find(name).is_none_or(|m| m.on_by_default),
        Some(toml::Value::Boolean(b)) => b,
        Some(other) => {
            return Err(problem(
                &["modules", name, "enabled"],
                format!("expected a boolean, found {}", other.type_str()),
            ))
        }
    };
    Ok((enabled, rest))
}

fn known_names() -> String {
    MODULES
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether module `name` is switched on globally (without a table: its default).
pub fn enabled_globally(tables: &ModuleTables, name: &str) -> bool {
    match tables.0.get(name) {
        Some(table) => split_enabled(name, table).is_ok_and(|(enabled, _)| enabled),
        None => find(name).is_none_or(|m| m.on_by_default),
    }
}

/// Whether a module that serves HTTP routes is on (the HTTP listeners then listen).
pub fn any_needs_http(tables: &ModuleTables) -> bool {
    MODULES
        .iter()
        .any(|m| m.needs_http && enabled_globally(tables, m.name))
}

/// Checks the `[modules.…]` tables and the hosts' `modules_disabled` lists: known module
/// names, each table valid for its module, every enabled module's dependencies enabled
/// wherever it is, and an HTTP listener (`http_listening`) for a module serving HTTP.
pub fn check(
    tables: &ModuleTables,
    hosts: &BTreeMap<String, HostConfig>,
    http_listening: bool,
) -> Result<(), Problem> {
    for (name, table) in &tables.0 {
        let Some(module) = find(name) else {
            return Err(problem(
                &["modules", name],
                format!("unknown module `{name}` (known: {})", known_names()),
            ));
        };
        let (_, rest) = split_enabled(name, table)?;
        let running: Vec<String> = hosts
            .iter()
            .filter(|(_, config)| !config.modules_disabled.iter().any(|d| d == name))
            .map(|(host, _)| host.clone())
            .collect();
        (module.check)(rest, &running).map_err(|e| {
            let mut path = vec!["modules".to_owned(), name.clone()];
            path.extend(e.path);
            Problem {
                path,
                message: e.message,
            }
        })?;
    }
    for module in MODULES.iter().filter(|m| enabled_globally(tables, m.name)) {
        if module.needs_http && !http_listening {
            return Err(problem(
                &["modules", module.name, "enabled"],
                format!(
                    "module `{}` serves HTTP: set http.listen or http.tls_listen, or disable it",
                    module.name
                ),
            ));
        }
        for dep in module.depends {
            if !enabled_globally(tables, dep) {
                return Err(problem(
                    &["modules", dep, "enabled"],
                    format!(
                        "module `{}` needs `{dep}`: enable it or disable both",
                        module.name
                    ),
                ));
            }
        }
    }
    for (host, config) in hosts {
        for name in &config.modules_disabled {
            if find(name).is_none() {
                return Err(Problem {
                    path: vec![
                        "hosts".to_owned(),
                        host.clone(),
                        "modules_disabled".to_owned(),
                    ],
                    message: format!("unknown module `{name}` (known: {})", known_names()),
                });
            }
        }
        for module in MODULES {
            let on = |name: &str| {
                enabled_globally(tables, name) && !config.modules_disabled.iter().any(|d| d == name)
            };
            if !on(module.name) {
                continue;
            }
            if let Some(dep) = module.depends.iter().find(|d| !on(d)) {
                return Err(Problem {
                    path: vec![
                        "hosts".to_owned(),
                        host.clone(),
                        "modules_disabled".to_owned(),
                    ],
                    message: format!(
                        "module `{}` needs `{dep}`: disable both for this host",
                        module.name
                    ),
                });
            }
        }
    }
    Ok(())
}
