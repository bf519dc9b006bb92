//! A room's configuration (XEP-0045 §10.2) and the `muc#roomconfig` form that shows and
//! changes it (§15.5.3). Plain data, which persist.rs stores for persistent rooms.

use jabberwock_protocol::forms::{DataForm, Field, FieldType, FormType};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, StanzaError};
use serde::{Deserialize, Serialize};

/// Who sees occupants' real JIDs (`muc#roomconfig_whois`, §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Whois {
    /// Semi-anonymous: moderators only.
    Moderators,
    /// Non-anonymous: every occupant.
    Anyone,
}

/// Stored as JSON for persistent rooms (persist.rs): a field added later is read as its
/// default from rooms stored before it existed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub name: String,
    pub description: String,
    /// Kept when the last occupant leaves, and across restarts (persist.rs).
    pub persistent: bool,
    /// Listed in the service's disco#items.
    pub public: bool,
    pub members_only: bool,
    /// Only participants and moderators speak; others enter as visitors.
    pub moderated: bool,
    /// The room secret, if it is password-protected.
    pub password: Option<String>,
    pub whois: Whois,
    /// Participants may change the subject (moderators always may).
    pub change_subject: bool,
    /// At most this many occupants (owners and admins may still enter).
    pub max_users: Option<usize>,
    /// §7.8.2, §10.2 `allowinvites`: members may invite others to a members-only room
    /// (admins and owners always may; in an open room any occupant with voice may).
    pub allow_invites: bool,
    /// XEP-0313 §6, `muc#roomconfig_enablearchiving`: the room keeps its groupchat
    /// messages in its archive (a new room takes `[modules.muc] archive_by_default`).
    pub archiving: bool,
}

impl Default for Settings {
    /// Prosody's defaults: public, open, unmoderated, semi-anonymous, temporary, only
    /// moderators change the subject, only admins and owners invite to members-only rooms.
    fn default() -> Settings {
        Settings {
            name: String::new(),
            description: String::new(),
            persistent: false,
            public: true,
            members_only: false,
            moderated: false,
            password: None,
            whois: Whois::Moderators,
            change_subject: false,
            max_users: None,
            allow_invites: false,
            // Prosody's `muc_log_by_default`.
            archiving: true,
        }
    }
}

const FIELD_NAME: &str = "muc#roomconfig_roomname";
const FIELD_DESC: &str = "muc#roomconfig_roomdesc";
const FIELD_PERSISTENT: &str = "muc#roomconfig_persistentroom";
const FIELD_PUBLIC: &str = "muc#roomconfig_publicroom";
const FIELD_MEMBERS_ONLY: &str = "muc#roomconfig_membersonly";
const FIELD_MODERATED: &str = "muc#roomconfig_moderatedroom";
const FIELD_PASSWORD_PROTECTED: &str = "muc#roomconfig_passwordprotectedroom";
const FIELD_SECRET: &str = "muc#roomconfig_roomsecret";
const FIELD_WHOIS: &str = "muc#roomconfig_whois";
const FIELD_CHANGE_SUBJECT: &str = "muc#roomconfig_changesubject";
const FIELD_MAX_USERS: &str = "muc#roomconfig_maxusers";
const FIELD_ALLOW_INVITES: &str = "muc#roomconfig_allowinvites";
const FIELD_ARCHIVING: &str = "muc#roomconfig_enablearchiving";

/// What a submitted form changed that occupants are told about (§10.2.1).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changed {
    /// The new `whois`, when it changed (status 172 or 173).
    pub whois: Option<Whois>,
    /// The room just became members-only (§9.4: non-members leave, status 322).
    pub members_only: bool,
}

fn boolean(field: &str, value: bool) -> Field {
    Field::new(field)
        .with_type(FieldType::Boolean)
        .with_value(if value { "1" } else { "0" })
}

/// XEP-0004 §3.3: a boolean is "0"/"false" or "1"/"true".
fn parse_boolean(value: &str) -> Result<bool, StanzaError> {
    match value.trim() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(bad_value(value)),
    }
}

fn bad_value(value: &str) -> StanzaError {
    StanzaError::with_text(Condition::NotAcceptable, format!("bad value {value:?}"))
}

impl Settings {
    /// The configuration form with the current values (§10.2, Example 165).
    pub fn form(&self, room: &str) -> DataForm {
        let mut max_users = Field::new(FIELD_MAX_USERS)
            .with_type(FieldType::ListSingle)
            .with_label("Maximum number of occupants")
            .with_value(self.max_users.map_or("none".to_owned(), |n| n.to_string()));
        for n in ["10", "20", "30", "50", "100"] {
            max_users = max_users.with_option(None, n);
        }
        max_users = max_users.with_option(Some("No limit"), "none");
        DataForm::new(FormType::Form)
            .with_form_type(ns::MUC_ROOMCONFIG)
            .with_title(format!("Configuration for {room}"))
            .with_field(
                Field::new(FIELD_NAME)
                    .with_type(FieldType::TextSingle)
                    .with_label("Room name")
                    .with_value(self.name.as_str()),
            )
            .with_field(
                Field::new(FIELD_DESC)
                    .with_type(FieldType::TextSingle)
                    .with_label("Description")
                    .with_value(self.description.as_str()),
            )
            .with_field(boolean(FIELD_PERSISTENT, self.persistent).with_label("Persistent"))
            .with_field(boolean(FIELD_PUBLIC, self.public).with_label("Listed publicly"))
            .with_field(boolean(FIELD_MEMBERS_ONLY, self.members_only).with_label("Members only"))
            .with_field(boolean(FIELD_MODERATED, self.moderated).with_label("Moderated"))
            .with_field(
                boolean(FIELD_PASSWORD_PROTECTED, self.password.is_some())
                    .with_label("Password required"),
            )
            .with_field(
                Field::new(FIELD_SECRET)
                    .with_type(FieldType::TextPrivate)
                    .with_label("Password")
                    .with_value(self.password.clone().unwrap_or_default()),
            )
            .with_field(
                Field::new(FIELD_WHOIS)
                    .with_type(FieldType::ListSingle)
                    .with_label("Who may see real JIDs")
                    .with_value(match self.whois {
                        Whois::Moderators => "moderators",
                        Whois::Anyone => "anyone",
                    })
                    .with_option(Some("Moderators only"), "moderators")
                    .with_option(Some("Anyone"), "anyone"),
            )
            .with_field(
                boolean(FIELD_CHANGE_SUBJECT, self.change_subject)
                    .with_label("Participants may change the subject"),
            )
            .with_field(max_users)
            .with_field(
                boolean(FIELD_ALLOW_INVITES, self.allow_invites)
                    .with_label("Members may invite others to a members-only room"),
            )
            .with_field(boolean(FIELD_ARCHIVING, self.archiving).with_label("Archive messages"))
    }

    /// Applies a submitted form (§10.2): fields left out keep their value; unknown fields
    /// are ignored; a value that makes no sense refuses the whole form (not-acceptable)
    /// and changes nothing.
    pub fn apply(&mut self, form: &DataForm) -> Result<Changed, StanzaError> {
        if form
            .form_type_field()
            .is_some_and(|t| t != ns::MUC_ROOMCONFIG)
        {
            return Err(StanzaError::with_text(
                Condition::BadRequest,
                "not a muc#roomconfig form",
            ));
        }
        let mut next = self.clone();
        let flag = |var: &str, slot: &mut bool| -> Result<(), StanzaError> {
            if let Some(v) = form.value(var) {
                *slot = parse_boolean(v)?;
            }
            Ok(())
        };
        if let Some(v) = form.value(FIELD_NAME) {
            next.name = v.to_owned();
        }
        if let Some(v) = form.value(FIELD_DESC) {
            next.description = v.to_owned();
        }
        flag(FIELD_PERSISTENT, &mut next.persistent)?;
        flag(FIELD_PUBLIC, &mut next.public)?;
        flag(FIELD_MEMBERS_ONLY, &mut next.members_only)?;
        flag(FIELD_MODERATED, &mut next.moderated)?;
        flag(FIELD_CHANGE_SUBJECT, &mut next.change_subject)?;
        flag(FIELD_ALLOW_INVITES, &mut next.allow_invites)?;
        flag(FIELD_ARCHIVING, &mut next.archiving)?;
        let mut protected = next.password.is_some();
        flag(FIELD_PASSWORD_PROTECTED, &mut protected)?;
        let secret = form.value(FIELD_SECRET).map(str::to_owned);
        next.password = match (protected, secret) {
            (false, _) => None,
            (true, Some(secret)) if !secret.is_empty() => Some(secret),
            (true, _) if next.password.is_some() => next.password.clone(),
            // §10.2: a password-protected room needs a password.
            (true, _) => {
                return Err(StanzaError::with_text(
                    Condition::NotAcceptable,
                    "a password-protected room needs a password",
                ))
            }
        };
        if let Some(v) = form.value(FIELD_WHOIS) {
            next.whois = match v {
                "moderators" => Whois::Moderators,
                "anyone" => Whois::Anyone,
                other => return Err(bad_value(other)),
            };
        }
        if let Some(v) = form.value(FIELD_MAX_USERS) {
            next.max_users = match v.trim() {
                "none" | "" | "0" => None,
                n => Some(n.parse::<usize>().map_err(|_| bad_value(n))?),
            };
        }
        let changed = Changed {
            whois: (next.whois != self.whois).then_some(next.whois),
            members_only: next.members_only && !self.members_only,
        };
        *self = next;
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit(fields: &[(&str, &str)]) -> DataForm {
        let mut form = DataForm::new(FormType::Submit).with_form_type(ns::MUC_ROOMCONFIG);
        for (var, value) in fields {
            form = form.with_field(Field::new(*var).with_value(*value));
        }
        form
    }

    #[test]
    fn the_form_shows_the_settings_and_a_submitted_form_changes_them() {
        let mut settings = Settings::default();
        let form = settings.form("room@muc.example");
        assert_eq!(form.form_type_field(), Some(ns::MUC_ROOMCONFIG));
        assert_eq!(form.value(FIELD_PUBLIC), Some("1"));
        assert_eq!(form.value(FIELD_WHOIS), Some("moderators"));
        assert_eq!(form.value(FIELD_MAX_USERS), Some("none"));
        assert_eq!(form.value(FIELD_ALLOW_INVITES), Some("0"));
        assert_eq!(form.value(FIELD_ARCHIVING), Some("1"));

        let changed = settings
            .apply(&submit(&[
                (FIELD_NAME, "The Coven"),
                (FIELD_MEMBERS_ONLY, "true"),
                (FIELD_PASSWORD_PROTECTED, "1"),
                (FIELD_SECRET, "cauldron"),
                (FIELD_WHOIS, "anyone"),
                (FIELD_MAX_USERS, "20"),
                (FIELD_ALLOW_INVITES, "1"),
                (FIELD_ARCHIVING, "0"),
            ]))
            .unwrap();
        assert_eq!(
            changed,
            Changed {
                whois: Some(Whois::Anyone),
                members_only: true
            }
        );
        assert_eq!(settings.name, "The Coven");
        assert!(settings.members_only && settings.public);
        assert_eq!(settings.password.as_deref(), Some("cauldron"));
        assert_eq!(settings.max_users, Some(20));
        assert!(settings.allow_invites);
        assert!(!settings.archiving);

        // Fields left out keep their values; switching protection off drops the secret.
        settings
            .apply(&submit(&[(FIELD_PASSWORD_PROTECTED, "0")]))
            .unwrap();
        assert_eq!(settings.password, None);
        assert_eq!(settings.name, "The Coven");
        // The empty form of an instant room (§10.1.2) changes nothing.
        let before = settings.clone();
        assert_eq!(
            settings.apply(&DataForm::new(FormType::Submit)).unwrap(),
            Changed::default()
        );
        assert_eq!(settings, before);
    }

    #[test]
    fn a_bad_value_changes_nothing() {
        let mut settings = Settings::default();
        for fields in [
            &[(FIELD_NAME, "x"), (FIELD_PUBLIC, "maybe")][..],
            &[(FIELD_MAX_USERS, "many")],
            &[(FIELD_WHOIS, "nobody")],
            &[(FIELD_ALLOW_INVITES, "sometimes")],
            &[(FIELD_ARCHIVING, "perhaps")],
            &[(FIELD_PASSWORD_PROTECTED, "1")],
        ] {
            let err = settings.apply(&submit(fields)).unwrap_err();
            assert_eq!(err.condition, Condition::NotAcceptable);
        }
        assert_eq!(settings, Settings::default());
    }
}
