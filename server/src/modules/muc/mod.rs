//! XEP-0045: Multi-User Chat, as a service beside each host (`conference.HOST`): rooms are
//! created by their first entrant and kept in memory, persistent ones in storage too
//! (persist.rs), and every stanza for them comes to [`MucService::receive`].
//!
//! **Design:** a room is data behind a `std` mutex (`room.rs`). A stanza is handled under
//! the room's lock without awaiting; the stanzas it causes go into the room's outbox, and
//! the task that finds the outbox idle routes it (`Router::route_from_service`) after
//! releasing the lock, until it is empty. So no lock is held across an await, and each
//! room's stanzas leave in the order the room made them, whichever sessions' tasks send
//! them. A change that storage must take first is written with the lock released, while
//! the room's turn (an async mutex each stanza takes while it is handled, and a stanza
//! that writes keeps until its change is in the room) holds the room's other stanzas
//! back (persist.rs).

mod admin;
mod archive;
mod declared;
mod disco;
mod history;
mod invite;
mod limits;
mod message;
mod occupant;
mod out;
mod owner;
mod persist;
mod presence;
mod register;
mod relay;
mod room;
mod settings;
mod voice;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use async_trait::async_trait;
use jabberwock_protocol::jid::{BareJid, FullJid, Jid};
use jabberwock_protocol::muc::{status, Affiliation, Join};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, Stanza, StanzaError, StanzaKind};
use jabberwock_protocol::xml::Element;
use serde::Deserialize;

use super::config::TableError;
use super::registry::Identity;
use super::{
    mam, xep, IqHandler, IqRequest, Module, Registrar, Service, ServiceDelivery, Target, Xep,
};
use crate::live::Snapshot;
use crate::server::Server;
use crate::StartError;
use admin::Actor;
use jabberwock_storage::ArchiveOwner;
use limits::Limits;
use out::ToSend;
use presence::Entry;
use relay::Relay;
use room::{Out, Room};

pub struct Muc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MucConfig {
    /// The service's domain on each host; `{host}` is the host's name.
    domain: String,
    /// Groupchat messages each room keeps for entrants (§7.2.14); 0 keeps none.
    history_length: usize,
    /// Occupants a room holds at most (0: no limit); owners and admins still enter (§7.2.10).
    max_occupants: usize,
    /// Messages each occupant may send per second on average (0: no limit)...
    messages_per_second: f64,
    /// ...after a burst of this many.
    message_burst: u32,
    /// Largest groupchat or private message, in bytes (0: no limit).
    max_message_bytes: usize,
    /// XEP-0313 §6: whether a new room archives its messages until its owner says
    /// otherwise (`muc#roomconfig_enablearchiving`); as Prosody's `muc_log_by_default`.
    archive_by_default: bool,
    /// Rooms that exist from the start (declared.rs).
    rooms: Vec<declared::DeclaredRoom>,
}

impl Default for MucConfig {
    fn default() -> MucConfig {
        let limits = Limits::default();
        MucConfig {
            domain: "conference.{host}".to_owned(),
            history_length: 20,
            max_occupants: limits.max_occupants,
            messages_per_second: limits.messages_per_second,
            message_burst: limits.message_burst,
            max_message_bytes: limits.max_message_bytes,
            archive_by_default: true,
            rooms: Vec::new(),
        }
    }
}

impl MucConfig {
    /// The service's domain on `host`.
    fn domain_of(&self, host: &str) -> String {
        self.domain.replace("{host}", host).to_lowercase()
    }

    /// Every room's limits unless it is declared with its own.
    fn limits(&self) -> Limits {
        Limits {
            max_occupants: self.max_occupants,
            messages_per_second: self.messages_per_second,
            message_burst: self.message_burst,
            max_message_bytes: self.max_message_bytes,
        }
    }
}

/// One room and what it has to send.
struct Slot {
    room: Room,
    /// Stanzas made under the lock, routed in order by whoever drains.
    outbox: VecDeque<ToSend>,
    /// A task is routing the outbox.
    draining: bool,
    /// The service no longer lists this slot (the room was destroyed or emptied): a task
    /// that took it before then looks again.
    forgotten: bool,
    /// Taken by each stanza for the room, and held by one whose change is being stored
    /// (persist.rs) until the change is in the room: the others wait their turn.
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl Slot {
    fn new(room: Room) -> Slot {
        Slot {
            room,
            outbox: VecDeque::new(),
            draining: false,
            forgotten: false,
            turn: Arc::default(),
        }
    }
}

/// Every room of every host's service, by bare room JID, and their number on `/metrics`.
#[derive(Default)]
struct Rooms {
    map: Mutex<HashMap<String, Arc<Mutex<Slot>>>>,
    count: crate::metrics::Gauge,
    /// Service domains being let go (their host removed): no room is made there. Read
    /// only when a room is made, under the map's lock.
    closed: Mutex<HashSet<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Rooms {
    /// The room's slot, created if `create` (then also saying so) unless its domain is
    /// being let go.
    fn get(&self, jid: &BareJid, create: Option<usize>) -> Option<(Arc<Mutex<Slot>>, bool)> {
        let mut map = lock(&self.map);
        if let Some(slot) = map.get(jid.as_str()) {
            return Some((slot.clone(), false));
        }
        let history_length = create?;
        if lock(&self.closed).contains(jid.domain().as_str()) {
            return None;
        }
        let slot = Arc::new(Mutex::new(Slot::new(Room::new(
            jid.clone(),
            history_length,
        ))));
        map.insert(jid.to_string(), slot.clone());
        self.count.set(map.len() as i64);
        Some((slot, true))
    }

    /// Lists a room loaded from storage (at start, before anyone can enter).
    fn insert(&self, room: Room) {
        let jid = room.jid.to_string();
        let mut map = lock(&self.map);
        map.insert(jid, Arc::new(Mutex::new(Slot::new(room))));
        self.count.set(map.len() as i64);
    }

    /// Forgets a room that is gone (destroyed, or temporary and left empty).
    fn remove(&self, jid: &str) {
        let mut map = lock(&self.map);
        map.remove(jid);
        self.count.set(map.len() as i64);
    }

    /// A reload's limits in every room there is: the service's, with a declared room's own
    /// over them (§7.2.10: who is in a room now stays; the next to enter is counted). New
    /// rooms take them when they are made.
    fn apply_limits(&self, config: &MucConfig) {
        let slots: Vec<Arc<Mutex<Slot>>> = lock(&self.map).values().cloned().collect();
        for slot in slots {
            let room = &mut lock(&slot).room;
            room.limits = declared::limits_of(config, &room.jid);
        }
    }

    /// Every slot whose room is on `domain` (the map's lock is not held while a room's is).
    fn on_domain(&self, domain: &str) -> Vec<Arc<Mutex<Slot>>> {
        let suffix = format!("@{domain}");
        lock(&self.map)
            .iter()
            .filter(|(jid, _)| jid.ends_with(&suffix))
            .map(|(_, slot)| slot.clone())
            .collect()
    }

    /// No room is made on `domain` from now on; its rooms, to let go.
    fn close(&self, domain: &str) -> Vec<Arc<Mutex<Slot>>> {
        lock(&self.closed).insert(domain.to_owned());
        self.on_domain(domain)
    }

    /// Rooms are made on `domain` again (its service starts).
    fn open(&self, domain: &str) {
        lock(&self.closed).remove(domain);
    }
}

pub struct MucService {
    /// `[modules.muc]`: the domain, history length and limits of every room, and the rooms
    /// declared there, made at start over what storage kept (declared.rs). A reload
    /// replaces them but for the domain and the declared rooms, placed once at start.
    config: Arc<Snapshot<MucConfig>>,
    rooms: Arc<Rooms>,
    /// XEP-0421: the key occupant ids are made with (`occupant::occupant_id`), kept in
    /// `data_dir` and read at start.
    id_secret: OnceLock<Vec<u8>>,
    /// XEP-0313 §6: appends the rooms' archived messages, and removes the archive of a
    /// room that is gone, in the order the rooms queue them (archive.rs). A writer of
    /// its own, apart from the accounts' (whose retention runs over every archive).
    archive: mam::writer::Writer,
}

/// The error reply to `stanza`; a presence error carries the MUC `<x/>` before the
/// `<error/>`, as §7.2's examples do (clients match join errors by it).
fn error_reply(stanza: &Stanza, err: &StanzaError) -> Element {
    let mut reply = stanza.error_reply(err);
    if stanza.kind() == StanzaKind::Presence {
        reply.remove_child("error", ns::CLIENT);
        reply.push_child(Element::new("x", ns::MUC));
        reply.push_child(err.to_element());
    }
    reply
}

fn reply(stanza: &Stanza, result: Result<Out, StanzaError>) -> Out {
    match result {
        Ok(out) => out,
        Err(err) => vec![error_reply(stanza, &err)].into(),
    }
}

async fn route(server: &Server, out: impl Into<Out>) {
    let out: Out = out.into();
    for to_send in out {
        match to_send {
            ToSend::One(element) => match Stanza::from_element(element) {
                Ok(stanza) => server.router.route_from_service(server, stanza).await,
                Err(e) => {
                    tracing::error!(error = %e, "the room made something that is no stanza")
                }
            },
            // Serialised once for every occupant rather than copied for each.
            ToSend::Many(stanza, recipients) => {
                let router = &server.router;
                router
                    .route_shared_from_service(server, stanza, &recipients)
                    .await
            }
            // XEP-0313 §6: sent once the room's archive has it, else refused to its sender.
            ToSend::Archived(archived, stanza, recipients) => match archived.stored().await {
                Ok(()) => {
                    let router = &server.router;
                    router
                        .route_shared_from_service(server, stanza, &recipients)
                        .await
                }
                Err((original, err)) => match Stanza::from_element(original) {
                    Ok(original) => {
                        let reply = Stanza::from_element(error_reply(&original, &err));
                        if let Ok(reply) = reply {
                            server.router.route_from_service(server, reply).await
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "an archived message is no stanza"),
                },
            },
        }
    }
}

/// Routes the slot's outbox until it is empty, for the task that set `draining`.
async fn drain(server: &Server, slot: &Mutex<Slot>) {
    loop {
        let batch: Out = {
            let mut guard = lock(slot);
            if guard.outbox.is_empty() {
                guard.draining = false;
                return;
            }
            guard.outbox.drain(..).collect()
        };
        route(server, batch).await;
    }
}

impl MucService {
    /// Runs `handle` on the room at `jid` under its lock (creating the room when
    /// `create`), queues what it returns and, unless another task already does, routes the
    /// room's outbox. `None` when there is no such room.
    async fn in_room(
        &self,
        server: &Server,
        jid: &BareJid,
        create: bool,
        handle: impl FnMut(&mut Room, bool) -> Out,
    ) -> Option<()> {
        self.handle_in_room(server, jid, create, None, handle).await
    }

    /// [`Self::in_room`] for `stanza`, which may change what storage keeps of a persistent
    /// room: then the change is stored before anything it caused is sent (persist.rs).
    async fn in_room_saved(
        &self,
        server: &Server,
        jid: &BareJid,
        stanza: &Stanza,
        handle: impl FnMut(&mut Room, bool) -> Out,
    ) -> Option<()> {
        let saved = persist::may_change(stanza).then_some(stanza);
        self.handle_in_room(server, jid, false, saved, handle).await
    }

    async fn handle_in_room(
        &self,
        server: &Server,
        jid: &BareJid,
        create: bool,
        saved: Option<&Stanza>,
        mut handle: impl FnMut(&mut Room, bool) -> Out,
    ) -> Option<()> {
        let create = create.then(|| self.config.get().history_length);
        let slot = loop {
            let (slot, created) = self.rooms.get(jid, create)?;
            let turn = lock(&slot).turn.clone();
            let _turn = turn.lock_owned().await;
            let (out, pending) = {
                let mut guard = lock(&slot);
                if guard.forgotten {
                    // Emptied or destroyed since it was looked up: look again.
                    continue;
                }
                match saved {
                    None => (handle(&mut guard.room, created), None),
                    Some(stanza) => {
                        let mut next = guard.room.clone();
                        let out = handle(&mut next, created);
                        match persist::write_for(&guard.room, &next) {
                            None => {
                                guard.room = next;
                                (out, None)
                            }
                            Some(write) => (out, Some((stanza, next, write))),
                        }
                    }
                }
            };
            // The room's lock is released for the write; its turn is still ours.
            let out = match pending {
                None => out,
                Some((stanza, next, write)) => match persist::apply(server, write).await {
                    Ok(()) => {
                        lock(&slot).room = next;
                        out
                    }
                    Err(err) => vec![error_reply(stanza, &err)].into(),
                },
            };
            let mut out = out;
            let mut guard = lock(&slot);
            // Queued under the room's lock: the room's writes keep its order (archive.rs).
            for archived in out.archived_mut() {
                archived.queue(server, &self.archive);
            }
            guard.outbox.extend(out);
            if guard.room.is_gone() {
                guard.forgotten = true;
                // XEP-0313 §6: the archive goes with the room, after its last messages.
                self.archive.forget_room(server, jid.to_string());
                self.rooms.remove(jid.as_str());
            }
            if guard.draining || guard.outbox.is_empty() {
                return Some(());
            }
            guard.draining = true;
            drop(guard);
            break slot;
        };
        drain(server, &slot).await;
        Some(())
    }

    /// XEP-0421: the occupant id key read at start; a process that never started the
    /// service (a unit test) draws one.
    fn id_secret(&self) -> &[u8] {
        self.id_secret.get_or_init(crate::accounts::random_secret)
    }

    /// An IQ request to an occupant's room JID: passed on to the occupant (relay.rs), or a
    /// vCard request answered for the occupant's account.
    async fn iq_to_occupant(
        &self,
        server: &Server,
        from: &Jid,
        to: &Jid,
        nick: &str,
        stanza: &Stanza,
    ) {
        let Ok(full) = from.try_as_full() else {
            let err = StanzaError::new(Condition::NotAcceptable);
            return route(server, vec![error_reply(stanza, &err)]).await;
        };
        let now = Instant::now();
        let mut for_account = None;
        let found = self
            .in_room(
                server,
                &to.to_bare(),
                false,
                |room, _| match relay::request(room, full, nick, stanza.element(), now) {
                    Ok(Relay::Sent(out)) => out,
                    Ok(Relay::Account { asker, account }) => {
                        for_account = Some((asker, account));
                        Out::new()
                    }
                    Err(err) => vec![error_reply(stanza, &err)].into(),
                },
            )
            .await;
        if found.is_none() {
            // No room: nobody is in it to ask.
            let err = StanzaError::new(Condition::NotAcceptable);
            return route(server, vec![error_reply(stanza, &err)]).await;
        }
        if let Some((asker, account)) = for_account {
            self.ask_account(server, stanza, &asker, account).await;
        }
    }

    /// A vCard request to an occupant, answered as the server answers one to the occupant's
    /// bare JID (Prosody and ejabberd send it there: clients seldom answer for their
    /// account), by the handler registered for accounts, with the asker's room JID as the
    /// requester; the answer comes from the occupant's room JID.
    async fn ask_account(
        &self,
        server: &Server,
        stanza: &Stanza,
        asker: &FullJid,
        account: BareJid,
    ) {
        let (Some(iq_type), Some(payload)) = (stanza.iq_type(), stanza.iq_payload()) else {
            return;
        };
        let handler = server.modules.iq_handler(
            account.domain().as_str(),
            iq_type,
            Target::Account,
            payload.ns(),
            payload.name(),
        );
        let reply = match handler {
            Some(handler) => {
                let to = Jid::from(account);
                let request = IqRequest {
                    server,
                    from: asker,
                    to: &to,
                    stanza,
                    payload,
                };
                match handler.handle(request).await {
                    Ok(result) => stanza.iq_result(result),
                    Err(err) => error_reply(stanza, &err),
                }
            }
            // Not an account of ours, or vCards are off for its host.
            None => error_reply(stanza, &StanzaError::new(Condition::ServiceUnavailable)),
        };
        route(server, vec![reply]).await;
    }

    /// An IQ answer to one of a room's JIDs: passed back if it answers a request the room
    /// passed on (relay.rs), dropped otherwise (the room asks nothing else).
    async fn iq_answer(&self, server: &Server, from: &Jid, to: &Jid, stanza: &Stanza) {
        if to.resource().is_none() {
            return;
        }
        let now = Instant::now();
        self.in_room(server, &to.to_bare(), false, |room, _| {
            relay::answer(room, from, stanza.element(), now)
        })
        .await;
    }

    /// A stanza for the service's own domain that no registered handler took.
    async fn to_domain(&self, server: &Server, stanza: &Stanza) {
        let asks = match stanza.kind() {
            StanzaKind::Iq => matches!(stanza.iq_type(), Some(IqType::Get | IqType::Set)),
            StanzaKind::Message => !stanza.is_error(),
            StanzaKind::Presence => false,
        };
        if asks {
            let err = StanzaError::new(Condition::ServiceUnavailable);
            route(server, vec![error_reply(stanza, &err)]).await;
        }
    }

    async fn presence(&self, server: &Server, from: &Jid, to: &Jid, stanza: &Stanza) {
        let (Ok(full), Some(nick)) = (from.try_as_full(), to.resource()) else {
            // §7.2.1: entering needs a nickname.
            if stanza.type_attr().is_none() {
                let err = StanzaError::with_text(Condition::JidMalformed, "no nickname");
                route(server, vec![error_reply(stanza, &err)]).await;
            }
            return;
        };
        let room_jid = to.to_bare();
        let nick = nick.as_str();
        let occupant_id = occupant::occupant_id(self.id_secret(), &room_jid, &full.to_bare());
        match stanza.type_attr() {
            None => {
                let join = match Join::from_presence(stanza.element()).transpose() {
                    Ok(join) => join,
                    Err(e) => {
                        let err = StanzaError::with_text(Condition::BadRequest, e.to_string());
                        return route(server, vec![error_reply(stanza, &err)]).await;
                    }
                };
                let now = super::time::now_unix();
                let made = self
                    .in_room(server, &room_jid, true, |room, created| {
                        if let Some(index) = room.by_jid(full) {
                            return reply(
                                stanza,
                                presence::update(room, index, nick, stanza.element()),
                            );
                        }
                        if created {
                            // §10.1.1: the creator owns the room, which stays locked until
                            // configured; a groupchat 1.0 client can't configure, so its room
                            // is an instant one (§7.1.1).
                            room.set_affiliation(full.to_bare().as_str(), Affiliation::Owner);
                            room.locked = join.is_some();
                            // Read under the room's lock: a reload either sees the room and
                            // sets its limits after, or is seen here.
                            let config = self.config.get();
                            room.limits = config.limits();
                            room.settings.archiving = config.archive_by_default;
                        }
                        let entry = Entry {
                            from: full,
                            nick,
                            join: join.clone(),
                            presence: stanza.element(),
                            created,
                            occupant_id: occupant_id.clone(),
                            now,
                        };
                        reply(stanza, presence::enter(room, entry))
                    })
                    .await;
                if made.is_none() {
                    // The service is letting its domain go (its host removed).
                    let err = StanzaError::new(Condition::ServiceUnavailable);
                    route(server, vec![error_reply(stanza, &err)]).await;
                }
            }
            Some("unavailable") => {
                self.in_room(server, &room_jid, false, |room, _| {
                    match room.by_jid(full) {
                        Some(index) => presence::leave(room, index, full, stanza.element()),
                        None => Out::new(),
                    }
                })
                .await;
            }
            // Subscriptions and probes mean nothing to a room.
            Some(_) => {}
        }
    }

    async fn message(&self, server: &Server, from: &Jid, to: &Jid, stanza: &Stanza) {
        let Ok(full) = from.try_as_full() else {
            return;
        };
        let now = super::time::now_unix();
        let element = stanza.element();
        let found = match to.resource() {
            Some(nick) => {
                let nick = nick.as_str();
                self.in_room(server, &to.to_bare(), false, |room, _| {
                    reply(stanza, message::private(room, full, nick, element))
                })
                .await
            }
            None if stanza.type_attr() == Some("groupchat") => {
                self.in_room_saved(server, &to.to_bare(), stanza, |room, _| {
                    reply(stanza, message::groupchat(room, full, element, now))
                })
                .await
            }
            None => {
                // §8.6: a voice request, or a moderator's answer to one.
                if let Some(form) = voice::form_of(element) {
                    self.in_room(server, &to.to_bare(), false, |room, _| {
                        reply(stanza, voice::receive(room, full, element, &form))
                    })
                    .await
                } else {
                    let Some(x) = element.get_child("x", ns::MUC_USER) else {
                        let err = StanzaError::with_text(
                            Condition::BadRequest,
                            "messages to a room are of type groupchat",
                        );
                        return route(server, vec![error_reply(stanza, &err)]).await;
                    };
                    // §7.8.2: invitations and declines.
                    self.in_room_saved(server, &to.to_bare(), stanza, |room, _| {
                        reply(stanza, invite::receive(room, full, element, x))
                    })
                    .await
                }
            }
        };
        if found.is_none() {
            let err = StanzaError::new(Condition::ItemNotFound);
            route(server, vec![error_reply(stanza, &err)]).await;
        }
    }

    async fn iq(&self, server: &Server, from: &Jid, to: &Jid, stanza: &Stanza) {
        let (Some(iq_type @ (IqType::Get | IqType::Set)), Some(payload)) =
            (stanza.iq_type(), stanza.iq_payload())
        else {
            return;
        };
        if let Some(nick) = to.resource() {
            return self
                .iq_to_occupant(server, from, to, nick.as_str(), stanza)
                .await;
        }
        if payload.is("query", ns::MAM) {
            return self.archive_query(server, from, to, stanza, payload).await;
        }
        let found = self
            .in_room_saved(server, &to.to_bare(), stanza, |room, _| {
                let actor = Actor::of(room, from);
                let answer = room_iq(room, &actor, iq_type, payload);
                match answer {
                    Ok((result, mut out)) => {
                        out.insert(0, stanza.iq_result(result));
                        out
                    }
                    Err(err) => vec![error_reply(stanza, &err)].into(),
                }
            })
            .await;
        if found.is_none() {
            let err = StanzaError::new(Condition::ItemNotFound);
            route(server, vec![error_reply(stanza, &err)]).await;
        }
    }
}

impl MucService {
    /// XEP-0313 §6: a query of the room's archive, answered outside the room's lock (the
    /// room is only looked at, for who may read it), by the query code accounts use.
    async fn archive_query(
        &self,
        server: &Server,
        from: &Jid,
        to: &Jid,
        stanza: &Stanza,
        payload: &Element,
    ) {
        let room_jid = to.to_bare();
        let allowed = match from.try_as_full() {
            Err(_) => Err(StanzaError::new(Condition::NotAcceptable)),
            Ok(asker) => match self.rooms.get(&room_jid, None) {
                Some((slot, _)) => {
                    let slot = lock(&slot);
                    if slot.forgotten {
                        Err(StanzaError::new(Condition::ItemNotFound))
                    } else {
                        archive::may_read(&slot.room, &asker.to_bare()).map(|()| asker)
                    }
                }
                None => Err(StanzaError::new(Condition::ItemNotFound)),
            },
        };
        let answer = match allowed {
            Ok(asker) => {
                let owner = ArchiveOwner::Room(room_jid.to_string());
                let kind = stanza.iq_type();
                mam::query::answer(server, &owner, &room_jid, asker, kind, payload).await
            }
            Err(err) => Err(err),
        };
        let reply = match answer {
            Ok(result) => stanza.iq_result(result),
            Err(err) => error_reply(stanza, &err),
        };
        route(server, vec![reply]).await;
    }
}

/// An IQ to a room's bare JID: its answer's payload and what else it makes the room send.
fn room_iq(
    room: &mut Room,
    actor: &Actor,
    iq_type: IqType,
    payload: &Element,
) -> Result<(Option<Element>, Out), StanzaError> {
    match (iq_type, payload.ns(), payload.name()) {
        (IqType::Get, ns::DISCO_INFO, "query") if payload.attr("node").is_none() => {
            Ok((Some(disco::info(room)), Out::new()))
        }
        // §7.12: the requester's reserved nickname, asked before entering or after.
        (IqType::Get, ns::DISCO_INFO, "query")
            if payload.attr("node") == Some(register::RESERVED_NICK_NODE) =>
        {
            Ok((Some(register::reserved_nick_info(room, actor)), Out::new()))
        }
        // XEP-0030 §3.2 (Example 10): a node the room does not have.
        (IqType::Get, ns::DISCO_INFO, "query") => Err(StanzaError::new(Condition::ItemNotFound)),
        // §6.5: occupants are not listed to anyone.
        (IqType::Get, ns::DISCO_ITEMS, "query") => {
            Ok((Some(Element::new("query", ns::DISCO_ITEMS)), Out::new()))
        }
        (IqType::Get, ns::MUC_OWNER, "query") => Ok((Some(owner::form(room, actor)?), Out::new())),
        (IqType::Set, ns::MUC_OWNER, "query") => Ok((None, owner::set(room, actor, payload)?)),
        (IqType::Get, ns::MUC_ADMIN, "query") => {
            Ok((Some(admin::list(room, actor, payload)?), Out::new()))
        }
        (IqType::Set, ns::MUC_ADMIN, "query") => Ok((None, admin::change(room, actor, payload)?)),
        // §7.10: registering with the room.
        (IqType::Get, ns::REGISTER, "query") => Ok((Some(register::get(room, actor)?), Out::new())),
        (IqType::Set, ns::REGISTER, "query") => Ok((None, register::set(room, actor, payload)?)),
        _ => Err(StanzaError::new(Condition::ServiceUnavailable)),
    }
}

#[async_trait]
impl Service for MucService {
    fn domain(&self, host: &str) -> Option<String> {
        Some(self.config.get().domain_of(host))
    }

    fn name(&self) -> Option<&'static str> {
        Some("Chatrooms")
    }

    /// XEP-0421's key, once, and the host's persistent rooms, listed as they were left:
    /// configured, empty, open to their first entrant.
    async fn start(&self, server: &Server, host: &str, domain: &str) -> Result<(), StartError> {
        self.rooms.open(domain);
        if self.id_secret.get().is_none() {
            let key = crate::accounts::kept_secret(
                &server.config.data_dir,
                persist::OCCUPANT_ID_KEY_FILE,
            )
            .map_err(StartError::OccupantIdSecret)?;
            // Only this task starts services: nothing set it since.
            let _ = self.id_secret.set(key);
        }
        let stored = server
            .store
            .muc_rooms(host)
            .await
            .map_err(|source| StartError::Storage {
                url: server.config.storage_url(),
                source,
            })?;
        let suffix = format!("@{domain}");
        let config = self.config.get();
        for room in stored {
            if !room.jid.ends_with(&suffix) {
                // Stored under another `[modules.muc] domain`: kept, but not served here.
                tracing::warn!(room = %room.jid, %domain, "a stored room is not on this service's domain: not loaded");
                continue;
            }
            let jid = room.jid.clone();
            match persist::room_from(room, config.history_length, config.archive_by_default) {
                Ok(mut room) => {
                    room.limits = config.limits();
                    self.rooms.insert(room)
                }
                Err(e) => {
                    tracing::error!(room = %jid, error = %e, "a stored room could not be loaded")
                }
            }
        }
        // Then the declared rooms, over what storage kept: the config wins for what it says.
        declared::create(&config, host, domain, &self.rooms);
        // XEP-0313 §6: an archive whose room is gone (a temporary room when the server
        // stopped) goes, so that a new room of the same name starts with none.
        match server.store.room_archives(domain).await {
            Ok(archived) => {
                for room in archived {
                    let known =
                        BareJid::new(&room).is_ok_and(|jid| self.rooms.get(&jid, None).is_some());
                    if !known {
                        self.archive.forget_room(server, room);
                    }
                }
            }
            Err(e) => tracing::error!(%domain, error = %e, "room archives not listed"),
        }
        Ok(())
    }

    /// The host is gone: every room of the domain leaves memory, its occupants told as for
    /// a service shutting down (an unavailable presence with status 332, XEP-0045
    /// §15.6.2); storage keeps the persistent ones and their archives, which the host's
    /// return loads again (`start`); a temporary room's archive goes. A change of a room
    /// being stored lands first (the room's turn).
    async fn stop(&self, server: &Server, _host: &str, domain: &str) {
        let notice = room::Notice {
            unavailable: true,
            codes: &[status::SYSTEM_SHUTDOWN],
            ..room::Notice::default()
        };
        for slot in self.rooms.close(domain) {
            let turn = lock(&slot).turn.clone();
            let _turn = turn.lock_owned().await;
            {
                let mut guard = lock(&slot);
                if guard.forgotten {
                    continue;
                }
                guard.forgotten = true;
                self.rooms.remove(guard.room.jid.as_str());
                let out = guard.room.remove_everyone(&notice);
                guard.outbox.extend(out);
                if !guard.room.settings.persistent {
                    // XEP-0313 §6: a temporary room's archive goes with it, now rather
                    // than when the host comes back (`start`), which it may never do.
                    self.archive.forget_room(server, guard.room.jid.to_string());
                }
                if guard.draining {
                    // The task routing the outbox sends these too.
                    continue;
                }
                guard.draining = true;
            }
            drain(server, &slot).await;
        }
    }

    async fn receive(&self, delivery: ServiceDelivery<'_>) {
        let ServiceDelivery {
            server,
            from,
            to,
            stanza,
            ..
        } = delivery;
        if to.node().is_none() {
            return self.to_domain(server, &stanza).await;
        }
        if stanza.kind() == StanzaKind::Iq
            && matches!(stanza.iq_type(), Some(IqType::Result | IqType::Error))
        {
            // An answer to a relayed request, not a sign that its sender is gone.
            return self.iq_answer(server, &from, &to, &stanza).await;
        }
        if stanza.is_error() {
            // An occupant's address answered the room with an error: it is gone.
            if let Ok(full) = from.try_as_full() {
                self.in_room(server, &to.to_bare(), false, |room, _| {
                    presence::remove_on_error(room, full)
                })
                .await;
            }
            return;
        }
        match stanza.kind() {
            StanzaKind::Presence => self.presence(server, &from, &to, &stanza).await,
            StanzaKind::Message => self.message(server, &from, &to, &stanza).await,
            StanzaKind::Iq => self.iq(server, &from, &to, &stanza).await,
        }
    }
}

/// §6.2: the service's disco#items, its public rooms.
struct ServiceItems(Arc<Rooms>);

#[async_trait]
impl IqHandler for ServiceItems {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        if request.payload.attr("node").is_some() {
            return Err(StanzaError::new(Condition::ItemNotFound));
        }
        let mut items: Vec<(String, String)> = self
            .0
            .on_domain(request.to.domain().as_str())
            .iter()
            .filter_map(|slot| {
                let slot = lock(slot);
                (!slot.forgotten && disco::is_listed(&slot.room))
                    .then(|| (slot.room.jid.to_string(), disco::display_name(&slot.room)))
            })
            .collect();
        items.sort();
        let mut query = Element::new("query", ns::DISCO_ITEMS);
        for (jid, name) in items {
            query.push_child(
                Element::new("item", ns::DISCO_ITEMS)
                    .with_attr("jid", jid)
                    .with_attr("name", name),
            );
        }
        Ok(Some(query))
    }
}

impl Module for Muc {
    const NAME: &'static str = "muc";
    const XEPS: &'static [Xep] = &[xep(45, "1.35"), xep(421, "1.0.1")];
    type Config = MucConfig;

    fn check(config: &MucConfig, hosts: &[String]) -> Result<(), TableError> {
        if !(config.messages_per_second >= 0.0 && config.messages_per_second.is_finite()) {
            return Err(TableError {
                path: vec!["messages_per_second".to_owned()],
                message: "must be 0 (no limit) or more".to_owned(),
            });
        }
        declared::check(config, hosts)
    }

    fn register(config: MucConfig, registry: &mut Registrar<'_>) {
        let count = registry.gauge("rooms", "Chat rooms that exist, persistent or not.");
        let rooms = Arc::new(Rooms {
            count,
            ..Rooms::default()
        });
        let config = Arc::new(Snapshot::new(config));
        let (reloaded, in_rooms) = (config.clone(), rooms.clone());
        registry.on_reload(
            &[
                "history_length",
                "max_occupants",
                "messages_per_second",
                "message_burst",
                "max_message_bytes",
                "archive_by_default",
            ],
            move |config: MucConfig| {
                reloaded.set(config);
                in_rooms.apply_limits(&reloaded.get());
                Ok(())
            },
        );
        registry.service(Arc::new(MucService {
            config,
            rooms: rooms.clone(),
            id_secret: OnceLock::new(),
            // Retention is the account archives' writer's, over every archive.
            archive: mam::writer::Writer::without_retention(),
        }));
        // §6.1: the service is a text conference service that speaks MUC.
        registry.disco_identity(
            Target::Service,
            Identity {
                category: "conference",
                kind: "text",
                name: Some("Chatrooms"),
            },
        );
        registry.disco_feature(Target::Service, ns::MUC);
        registry.iq(
            IqType::Get,
            Target::Service,
            ns::DISCO_ITEMS,
            "query",
            Arc::new(ServiceItems(rooms)),
        );
    }
}
