//! A room's message archive (XEP-0313 §6, version 1.1.3) and its XEP-0359 stanza ids.
//!
//! What is archived: the groupchat messages the room sends to its occupants that are worth
//! keeping as an account's archive judges them (a body or an encrypted payload, XEP-0334
//! hints obeyed), while `muc#roomconfig_enablearchiving` is on. Not subject changes
//! without a body (as Prosody: the subject is the room's state, given to every entrant,
//! §7.2.15), never private messages or presence.
//!
//! **Design:** the id is drawn under the room's lock, where the message is made, and the
//! write is queued to the service's archive writer there too (`Out::archived_mut`, from
//! mod.rs, while the room's lock is held), so the writes of one room are queued in the
//! room's order, and the room's removal queues behind them. The message is the same for
//! every occupant, with its `<stanza-id/>`, in one shared stanza; the task that routes the
//! room's outbox waits for its write before sending it, outside every lock, so no room
//! waits for another's writes, and the room's own handling goes on meanwhile. A write that
//! fails sends the message to no one, and its sender gets the error.

use jabberwock_protocol::jid::BareJid;
use jabberwock_protocol::mam::{stanza_id, strip_stanza_ids};
use jabberwock_protocol::muc::Affiliation;
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::{ArchiveOwner, NewArchived};

use super::room::Room;
use crate::modules::mam::archive::{new_id, worth_keeping};
use crate::modules::mam::writer::{stored, Stored, Writer};
use crate::server::Server;

/// A groupchat message on its way to the room's archive.
pub struct Archived {
    /// The message as its sender sent it, for the error if it cannot be archived.
    original: Element,
    write: Write,
}

enum Write {
    /// Made under the room's lock, not yet queued.
    New(NewArchived),
    Queued(Stored),
    Refused(StanzaError),
}

/// XEP-0359 §3: a `<stanza-id/>` by the room that the sender put in was not the room's;
/// removed. Then, if the room archives `message` (sent by `nick`, as `original`), it
/// carries the id it gets in the archive, and the write to make is returned.
pub fn mark(
    room: &Room,
    nick: &str,
    message: &mut Element,
    original: &Element,
) -> Option<Archived> {
    strip_stanza_ids(message, &[room.jid.as_str()]);
    if !room.settings.archiving || !worth_keeping(message) {
        return None;
    }
    let id = new_id();
    let entry = NewArchived {
        owner: ArchiveOwner::Room(room.jid.to_string()),
        id: id.clone(),
        // `with` in a room's archive is the occupant's room JID (room@service/nick).
        with_jid: room.jid.to_string(),
        with_resource: nick.to_owned(),
        outgoing: false,
        // The writer stamps the batch.
        stamp: 0,
        // As the occupants get it, without the id (a query's result names it).
        stanza: message.to_xml_string(ns::CLIENT),
    };
    message.push_child(stanza_id(room.jid.as_str(), &id));
    Some(Archived {
        original: original.clone(),
        write: Write::New(entry),
    })
}

impl Archived {
    /// Queues the write (under the room's lock, which keeps the room's order).
    pub fn queue(&mut self, server: &Server, writer: &Writer) {
        let placeholder = Write::Refused(StanzaError::new(Condition::InternalServerError));
        self.write = match std::mem::replace(&mut self.write, placeholder) {
            Write::New(entry) => match writer.append_now(server, entry) {
                Ok(wait) => Write::Queued(wait),
                Err(err) => Write::Refused(err),
            },
            done => done,
        };
    }

    /// Waits until the archive has the message; else the sender's message and its error.
    pub async fn stored(self) -> Result<(), (Element, StanzaError)> {
        let outcome = match self.write {
            Write::Queued(wait) => stored(wait).await.map(drop),
            Write::Refused(err) => Err(err),
            // Never queued: a handler forgot; not sent unarchived.
            Write::New(_) => Err(StanzaError::new(Condition::InternalServerError)),
        };
        outcome.map_err(|err| (self.original, err))
    }
}

/// §6: the archive's access follows the room's. Nobody banned from the room reads it, nor,
/// in a members-only room, anybody who is not a member (as Prosody, `forbidden` both);
/// anyone else may, in the room or not, as anyone may enter an open room.
pub fn may_read(room: &Room, who: &BareJid) -> Result<(), StanzaError> {
    let affiliation = room.affiliation(who);
    let refused = affiliation == Affiliation::Outcast
        || (room.settings.members_only && affiliation == Affiliation::None);
    if refused {
        return Err(StanzaError::with_text(
            Condition::Forbidden,
            "the room's archive is for those who may enter it",
        ));
    }
    Ok(())
}
