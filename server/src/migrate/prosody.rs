//! A Prosody data directory (its default "internal" file storage, 0.11–0.12):
//! `<host>/accounts/<user>.dat`, `roster/`, `vcard/`, `private/` (`.dat`, Lua tables)
//! and `offline/<user>.list` (Lua `item(…)` lines); mod_pep's `pep/<user>.dat` and
//! `pep_<node>/<user>.list`. Host and user names are
//! percent-encoded in the file names. Stanzas are kept as Prosody's "preserialized"
//! tables: `{ name = …; attr = { xmlns = … }; child or text; … }`.

use std::path::{Path, PathBuf};

use jabberwock_protocol::forms::{DataForm, Field, FormType};
use jabberwock_protocol::jid;
use jabberwock_protocol::ns;
use jabberwock_protocol::pubsub::NODE_CONFIG;
use jabberwock_protocol::xml::Element;
use jabberwock_storage::{RosterEntry, ScramCredential, ScramHash, Subscription};

use super::lua::{self, Value};
use super::{io_error, pie, Account, MigrateError, PepItem, PepNode, Secret};
use crate::modules::pubsub::config::{NodeConfig, Rules};

/// Whether `dir` looks like Prosody's data directory: a host folder with `accounts/`.
pub fn is_data_dir(dir: &Path) -> bool {
    host_dirs(dir).is_ok_and(|hosts| !hosts.is_empty())
}

fn host_dirs(dir: &Path) -> Result<Vec<PathBuf>, MigrateError> {
    let mut hosts: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_error(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("accounts").is_dir())
        .collect();
    hosts.sort();
    Ok(hosts)
}

pub fn read_data_dir(dir: &Path) -> Result<Vec<Account>, MigrateError> {
    let mut accounts = Vec::new();
    for host_dir in host_dirs(dir)? {
        let host = decode(&file_name(&host_dir));
        let accounts_dir = host_dir.join("accounts");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&accounts_dir)
            .map_err(io_error(&accounts_dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "dat"))
            .collect();
        files.sort();
        for file in files {
            let stem = file_name(&file.with_extension(""));
            accounts.push(read_user(&host_dir, &host, &stem)?);
        }
    }
    Ok(accounts)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Prosody's file-name encoding: `%xx` for every byte outside [a-z0-9_-] (lower-case hex).
fn decode(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = (bytes[i] == b'%')
            .then(|| std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match byte {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn malformed(file: &Path, element: &str, reason: impl Into<String>) -> MigrateError {
    MigrateError::Malformed {
        file: file.to_owned(),
        element: element.to_owned(),
        reason: reason.into(),
    }
}

/// The `.dat` (or `.list`) file of `store` for `user`, if there is one.
fn read_store(
    host_dir: &Path,
    store: &str,
    user: &str,
    ext: &str,
) -> Result<Option<(PathBuf, String)>, MigrateError> {
    let path = host_dir.join(store).join(format!("{user}.{ext}"));
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((path, text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(&path)(e)),
    }
}

fn parse_dat(
    host_dir: &Path,
    store: &str,
    user: &str,
) -> Result<Option<(PathBuf, Value)>, MigrateError> {
    match read_store(host_dir, store, user, "dat")? {
        Some((path, text)) => {
            let value = lua::parse_return(&text)
                .map_err(|e| malformed(&path, "Lua table", e.to_string()))?;
            Ok(Some((path, value)))
        }
        None => Ok(None),
    }
}

fn read_user(host_dir: &Path, host: &str, stem: &str) -> Result<Account, MigrateError> {
    let username = decode(stem);
    let (path, fields) = parse_dat(host_dir, "accounts", stem)?
        .ok_or_else(|| malformed(host_dir, "accounts", format!("{stem}.dat vanished")))?;
    let secret = read_secret(&fields).map_err(|reason| malformed(&path, "account", reason))?;
    let mut account = Account {
        origin: path.display().to_string(),
        username,
        host: host.to_owned(),
        secret,
        ..Account::default()
    };
    if let Some((path, roster)) = parse_dat(host_dir, "roster", stem)? {
        account.roster =
            read_roster(&roster).map_err(|reason| malformed(&path, "roster", reason))?;
    }
    if let Some((path, vcard)) = parse_dat(host_dir, "vcard", stem)? {
        let vcard = element(&vcard, ns::CLIENT)
            .ok_or_else(|| malformed(&path, "vCard", "not a stanza table"))?;
        account.vcard = Some(vcard);
    }
    if let Some((path, private)) = parse_dat(host_dir, "private", stem)? {
        for (key, value) in private.entries() {
            let el = element(value, ns::CLIENT)
                .ok_or_else(|| malformed(&path, &format!("{key:?}"), "not a stanza table"))?;
            account.private.push(el);
        }
    }
    if let Some((path, text)) = read_store(host_dir, "offline", stem, "list")? {
        let items = lua::parse_items(&text).map_err(|e| malformed(&path, "item", e.to_string()))?;
        for item in items {
            let mut message = element(&item, ns::CLIENT)
                .ok_or_else(|| malformed(&path, "item", "not a stanza table"))?;
            // Prosody's own bookkeeping, not part of the message.
            message.remove_attr("stamp");
            account.offline.push(message);
        }
    }
    read_pep(host_dir, stem, &mut account)?;
    Ok(account)
}

/// mod_pep's stores: `pep/<user>.dat` maps each node to `{ name; config = { access_model =
/// …; max_items = …; … }; affiliations; subscribers }` (or `true`, from before 0.11), and
/// `pep_<node>/<user>.list` (the node percent-encoded) holds its items, oldest first: each
/// the payload's stanza table with `key` (the item id) and `with` (the publisher) beside
/// it.
fn read_pep(host_dir: &Path, stem: &str, account: &mut Account) -> Result<(), MigrateError> {
    if let Some((path, nodes)) = parse_dat(host_dir, "pep", stem)? {
        for (key, data) in nodes.entries() {
            let Some(name) = key.as_str() else { continue };
            let mut config = NodeConfig::default();
            if let Some(stored) = data.get("config") {
                config
                    .apply(
                        &config_form(stored),
                        NODE_CONFIG,
                        Rules::pep(pie::ANY_MAX_ITEMS),
                    )
                    .map_err(|e| malformed(&path, &format!("node {name:?}"), e.to_string()))?;
            }
            account.pep.push(PepNode {
                node: name.to_owned(),
                config,
                items: Vec::new(),
            });
        }
    }
    let mut stores: Vec<String> = std::fs::read_dir(host_dir)
        .map_err(io_error(host_dir))?
        .filter_map(|e| e.ok().map(|e| file_name(&e.path())))
        .filter(|n| n.starts_with("pep_"))
        .collect();
    stores.sort();
    for store in stores {
        let Some((path, text)) = read_store(host_dir, &store, stem, "list")? else {
            continue;
        };
        let name = decode(&store["pep_".len()..]);
        let items = lua::parse_items(&text).map_err(|e| malformed(&path, "item", e.to_string()))?;
        let node = PepNode::named(&mut account.pep, &name);
        for item in items {
            let id = item
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed(&path, "item", "no key"))?;
            let mut payload = element(&item, ns::CLIENT)
                .ok_or_else(|| malformed(&path, "item", "not a stanza table"))?;
            // Prosody's own bookkeeping, not part of the payload.
            payload.remove_attr("stamp");
            node.items.push(PepItem {
                id: id.to_owned(),
                publisher: item.get("with").and_then(Value::as_str).map(str::to_owned),
                payload: Some(payload),
            });
        }
    }
    Ok(())
}

/// Prosody's stored node configuration as the `pubsub#node_config` form it stands for: a
/// key `k` is the field `pubsub#k`.
fn config_form(stored: &Value) -> DataForm {
    let mut form = DataForm::new(FormType::Submit).with_form_type(NODE_CONFIG);
    for (key, value) in stored.entries() {
        let Some(key) = key.as_str() else { continue };
        let mut field = Field::new(format!("pubsub#{key}"));
        match value {
            Value::Str(s) => field = field.with_value(s.as_str()),
            Value::Bool(b) => field = field.with_value(if *b { "1" } else { "0" }),
            Value::Number(n) => field = field.with_value(format!("{n}")),
            Value::Table(_) => {
                for v in value.array().filter_map(Value::as_str) {
                    field = field.with_value(v);
                }
            }
            Value::Nil => continue,
        }
        form = form.with_field(field);
    }
    form
}

/// `internal_hashed`: hex `stored_key`/`server_key`, the salt as text, `iteration_count`
/// (SHA-1 unless the keys are SHA-256's length); `internal_plain`: `password`.
fn read_secret(fields: &Value) -> Result<Secret, String> {
    if let Some(stored) = fields.get("stored_key").and_then(Value::as_str) {
        let hex = |name: &str, s: &str| -> Result<Vec<u8>, String> {
            (0..s.len())
                .step_by(2)
                .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| format!("{name} is not hex"))
        };
        let stored_key = hex("stored_key", stored)?;
        let server_key = hex(
            "server_key",
            fields
                .get("server_key")
                .and_then(Value::as_str)
                .ok_or("no server_key")?,
        )?;
        let salt = fields
            .get("salt")
            .and_then(Value::as_str)
            .ok_or("no salt")?;
        let iterations = fields
            .get("iteration_count")
            .and_then(Value::as_number)
            .ok_or("no iteration_count")?;
        let hash = match stored_key.len() {
            20 => ScramHash::Sha1,
            32 => ScramHash::Sha256,
            n => return Err(format!("stored_key of {n} bytes")),
        };
        return Ok(Secret::Scram(vec![ScramCredential {
            hash,
            salt: salt.as_bytes().to_vec(),
            iterations: iterations as u32,
            stored_key,
            server_key,
        }]));
    }
    Ok(match fields.get("password").and_then(Value::as_str) {
        Some(password) => Secret::Plain(password.to_owned()),
        None => Secret::None,
    })
}

/// `{ [false] = { version = …; pending = {…} }; ["jid"] = { subscription = …; ask = …;
/// name = …; groups = { ["Group"] = true } } }`.
fn read_roster(roster: &Value) -> Result<Vec<RosterEntry>, String> {
    let mut entries = Vec::new();
    for (key, item) in roster.entries() {
        let Some(raw) = key.as_str() else {
            continue; // [false]: Prosody's version and pending requests
        };
        let contact = jid::parse_bare(raw)
            .map_err(|e| format!("contact {raw:?}: {e}"))?
            .to_string();
        let subscription = match item.get("subscription").and_then(Value::as_str) {
            None => Subscription::None,
            Some(s) => Subscription::from_name(s)
                .ok_or_else(|| format!("contact {raw:?}: subscription {s:?}"))?,
        };
        let mut groups: Vec<String> = item
            .get("groups")
            .map(|g| {
                g.entries()
                    .iter()
                    .filter_map(|(k, _)| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        groups.sort();
        entries.push(RosterEntry {
            contact,
            name: item.get("name").and_then(Value::as_str).map(str::to_owned),
            groups,
            subscription,
            pending_out: item.get("ask").and_then(Value::as_str) == Some("subscribe"),
            in_roster: true,
            ..RosterEntry::default()
        });
    }
    Ok(entries)
}

/// A preserialized stanza table as an element; children without `xmlns` are in their
/// parent's namespace.
fn element(value: &Value, parent_ns: &str) -> Option<Element> {
    let name = value.get("name")?.as_str()?;
    let attrs = value.get("attr");
    let ns = attrs
        .and_then(|a| a.get("xmlns"))
        .and_then(Value::as_str)
        .unwrap_or(parent_ns);
    let mut el = Element::new(name, ns);
    for (key, val) in attrs.map(Value::entries).unwrap_or_default() {
        let (Some(key), Some(val)) = (key.as_str(), val.as_str()) else {
            continue;
        };
        match key {
            "xmlns" => {}
            "http://www.w3.org/XML/1998/namespace\u{1}lang" => el.set_attr("xml:lang", val),
            // Other namespaced attributes (`ns\1name`) have no place in our tree.
            _ if key.contains('\u{1}') => {}
            _ => el.set_attr(key, val),
        }
    }
    for child in value.array() {
        match child {
            Value::Str(text) => el.push_text(text.clone()),
            Value::Table(_) => el.push_child(element(child, ns)?),
            _ => {}
        }
    }
    Some(el)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_file_names() {
        assert_eq!(decode("example%2eorg"), "example.org");
        assert_eq!(decode("caf%c3%a9"), "café");
        assert_eq!(decode("100%"), "100%");
    }

    #[test]
    fn reads_a_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("example%2eorg");
        for store in ["accounts", "roster", "vcard", "offline"] {
            std::fs::create_dir_all(host.join(store)).unwrap();
        }
        std::fs::write(
            host.join("accounts/alice.dat"),
            "return {\n\t[\"server_key\"] = \"d7fe4c904c348c51934324fa74d6bba38ae34994\";\n\
             \t[\"salt\"] = \"84e42a27\";\n\t[\"stored_key\"] = \"e62e8e8ff513624e46c77c68db682d9b12a1566b\";\n\
             \t[\"iteration_count\"] = 10000;\n};\n",
        )
        .unwrap();
        std::fs::write(
            host.join("roster/alice.dat"),
            "return {\n\t[false] = { [\"version\"] = 3; [\"pending\"] = {}; };\n\
             \t[\"bob@example.org\"] = { [\"subscription\"] = \"both\"; [\"name\"] = \"Bob\"; \
             [\"groups\"] = { [\"Friends\"] = true; }; };\n};\n",
        )
        .unwrap();
        std::fs::write(
            host.join("vcard/alice.dat"),
            "return { [\"name\"] = \"vCard\"; [\"attr\"] = { [\"xmlns\"] = \"vcard-temp\"; }; \
             [1] = { [\"name\"] = \"FN\"; [\"attr\"] = {}; [1] = \"Alice\"; }; };\n",
        )
        .unwrap();
        std::fs::write(
            host.join("offline/alice.list"),
            "item({ [\"name\"] = \"message\"; [\"attr\"] = { [\"to\"] = \"alice@example.org\"; \
             [\"stamp\"] = \"2026-01-01T00:00:00Z\"; }; [1] = { [\"name\"] = \"body\"; [\"attr\"] = {}; \
             [1] = \"hi\"; }; [\"when\"] = 1.7e9; [\"key\"] = \"k1\"; });\n",
        )
        .unwrap();
        assert!(is_data_dir(dir.path()));
        let accounts = read_data_dir(dir.path()).unwrap();
        let a = &accounts[0];
        assert_eq!(
            (a.username.as_str(), a.host.as_str()),
            ("alice", "example.org")
        );
        match &a.secret {
            Secret::Scram(c) => {
                assert_eq!(c[0].hash, ScramHash::Sha1);
                assert_eq!(c[0].salt, b"84e42a27");
                assert_eq!(c[0].iterations, 10000);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(a.roster[0].contact, "bob@example.org");
        assert_eq!(a.roster[0].groups, ["Friends"]);
        let vcard = a.vcard.as_ref().unwrap();
        assert!(vcard.is("vCard", ns::VCARD));
        assert_eq!(vcard.get_child("FN", ns::VCARD).unwrap().text(), "Alice");
        let message = &a.offline[0];
        assert!(message.is("message", ns::CLIENT) && message.attr("stamp").is_none());
        assert_eq!(message.get_child("body", ns::CLIENT).unwrap().text(), "hi");
    }
}
