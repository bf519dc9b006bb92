//! The owner's use cases (XEP-0045 §10): the configuration form (§10.1.2 instant room,
//! §10.1.3 reserved room, §10.2 changes) and destroying the room (§10.9).

use jabberwock_protocol::forms::{DataForm, FormType};
use jabberwock_protocol::muc::{status, Affiliation, Destroy};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::xml::Element;

use super::admin::Actor;
use super::room::{Notice, Out, Room};
use super::settings::Whois;

fn owners_only(actor: &Actor) -> Result<(), StanzaError> {
    // §10: only owners configure or destroy a room.
    if actor.affiliation != Affiliation::Owner {
        return Err(StanzaError::with_text(
            Condition::Forbidden,
            "only owners may do this",
        ));
    }
    Ok(())
}

/// §10.1.3, §10.2: the configuration form.
pub fn form(room: &Room, actor: &Actor) -> Result<Element, StanzaError> {
    owners_only(actor)?;
    let form = room.settings.form(room.jid.as_str());
    Ok(Element::new("query", ns::MUC_OWNER).with_child(form.to_element()))
}

/// A `muc#owner` set: a submitted form (an empty one makes an instant room, §10.1.2), a
/// cancelled one (§10.1.3: a new room is then destroyed), or `<destroy/>` (§10.9).
pub fn set(room: &mut Room, actor: &Actor, query: &Element) -> Result<Out, StanzaError> {
    owners_only(actor)?;
    if let Some(destroy) = query.get_child("destroy", ns::MUC_OWNER) {
        return Ok(destroy_room(room, &Destroy::parse(destroy)));
    }
    let Some(x) = query.get_child("x", ns::DATA_FORMS) else {
        return Err(StanzaError::with_text(
            Condition::BadRequest,
            "a form or a destroy request",
        ));
    };
    let form = DataForm::parse(x)
        .map_err(|e| StanzaError::with_text(Condition::BadRequest, e.to_string()))?;
    match form.form_type {
        FormType::Cancel if room.locked => Ok(destroy_room(room, &Destroy::default())),
        FormType::Cancel => Ok(Out::new()),
        FormType::Submit => submit(room, &form),
        _ => Err(StanzaError::with_text(
            Condition::BadRequest,
            "a submit or cancel form",
        )),
    }
}

fn submit(room: &mut Room, form: &DataForm) -> Result<Out, StanzaError> {
    let changed = room.settings.apply(form)?;
    let mut out = Out::new();
    // §10.1.1: configured, the room opens.
    if room.locked {
        room.locked = false;
        return Ok(out);
    }
    // §9.4 (status 322): a room that became members-only loses its non-members.
    if changed.members_only {
        while let Some(index) = room
            .occupants
            .iter()
            .position(|o| room.affiliation(&o.jid.to_bare()) < Affiliation::Member)
        {
            room.occupants[index].payload.clear();
            let notice = Notice {
                codes: &[status::REMOVED_MEMBERS_ONLY],
                ..Notice::default()
            };
            room.remove(index, &notice, &mut out);
        }
    }
    // §10.2.1: occupants are told the configuration changed, and how privacy did.
    let mut codes = vec![status::CONFIG_CHANGED];
    match changed.whois {
        Some(Whois::Anyone) => codes.push(status::NOW_NON_ANONYMOUS),
        Some(Whois::Moderators) => codes.push(status::NOW_SEMI_ANONYMOUS),
        None => {}
    }
    room.notify(&codes, &mut out);
    Ok(out)
}

/// §10.9: every occupant gets its own unavailable presence with the destroy notice
/// (alternate venue, reason); the service forgets the room.
pub fn destroy_room(room: &mut Room, destroy: &Destroy) -> Out {
    let notice = Notice {
        unavailable: true,
        destroy: Some(destroy),
        ..Notice::default()
    };
    // Affiliations go with the room (the items say none, §10.9's example).
    room.affiliations.clear();
    let out = room.remove_everyone(&notice);
    room.destroyed = true;
    out
}
