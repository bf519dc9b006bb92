//! Service discovery of rooms (XEP-0045 §6.2 the service's rooms, §6.4 a room's info with
//! its features and the `muc#roominfo` form; §7.12's `x-roomuser-item` node is register.rs').

use jabberwock_protocol::forms::{DataForm, Field, FormType};
use jabberwock_protocol::ns;
use jabberwock_protocol::xml::Element;

use super::room::Room;
use super::settings::Whois;

/// The name a room shows: its configured name, else its node.
pub fn display_name(room: &Room) -> String {
    if room.settings.name.is_empty() {
        room.jid.node().map(|n| n.to_string()).unwrap_or_default()
    } else {
        room.settings.name.clone()
    }
}

/// Whether the service lists the room (§6.2: public rooms, once open).
pub fn is_listed(room: &Room) -> bool {
    room.settings.public && !room.locked && !room.destroyed
}

/// §6.4: the room's disco#info: identity, one feature per setting, and the room info form.
pub fn info(room: &Room) -> Element {
    let settings = &room.settings;
    let mut query = Element::new("query", ns::DISCO_INFO).with_child(
        Element::new("identity", ns::DISCO_INFO)
            .with_attr("category", "conference")
            .with_attr("type", "text")
            .with_attr("name", display_name(room)),
    );
    let pick = |on: bool, yes: &'static str, no: &'static str| if on { yes } else { no };
    let features = [
        ns::MUC,
        ns::DISCO_INFO,
        // XEP-0421 §3: occupant ids on everything from occupants.
        ns::OCCUPANT_ID,
        // §7.10: registering with the room (register.rs).
        ns::REGISTER,
        pick(settings.public, "muc_public", "muc_hidden"),
        pick(settings.members_only, "muc_membersonly", "muc_open"),
        pick(settings.persistent, "muc_persistent", "muc_temporary"),
        pick(settings.moderated, "muc_moderated", "muc_unmoderated"),
        pick(
            settings.whois == Whois::Anyone,
            "muc_nonanonymous",
            "muc_semianonymous",
        ),
        pick(
            settings.password.is_some(),
            "muc_passwordprotected",
            "muc_unsecured",
        ),
    ];
    // XEP-0313 §6.1 (and XEP-0359 §4): the room's archive, while it archives.
    let archive = [ns::MAM, ns::MAM_EXTENDED, ns::SID];
    let archive = if settings.archiving {
        &archive[..]
    } else {
        &[]
    };
    for feature in features.iter().chain(archive) {
        query.push_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", *feature));
    }
    let form = DataForm::new(FormType::Result)
        .with_form_type(ns::MUC_ROOMINFO)
        .with_field(
            Field::new("muc#roominfo_description").with_value(settings.description.as_str()),
        )
        .with_field(Field::new("muc#roominfo_subject").with_value(room.subject.text.as_str()))
        .with_field(
            Field::new("muc#roominfo_occupants").with_value(room.occupants.len().to_string()),
        )
        .with_field(Field::new("muc#roomconfig_roomname").with_value(display_name(room)));
    query.with_child(form.to_element())
}
