//! XEP-0191: Blocking Command. The user's blocklist (§3.2), blocking and unblocking (§3.3,
//! §3.4, §3.5) with pushes to the resources that retrieved the list, and enforcement both
//! ways: nothing from a blocked entity reaches the user, nothing from the user reaches it,
//! whether it is on this server or another (the router hands the listeners what leaves for
//! other servers as it hands them what arrives).
//!
//! **Design: one read per login, not per stanza.** Every check runs on the routing path, so
//! an account with a bound session keeps its blocklist in memory ([`Blocklists`]), loaded
//! when a session binds, changed with each block/unblock, and dropped with the account's
//! last session. A message for an account with no session (kept offline, XEP-0160) reads the
//! store instead; presence for such an account reaches nobody, so it costs no read.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock, RwLock};

use async_trait::async_trait;
use jabberwock_protocol::jid::{BareJid, Jid};
use jabberwock_protocol::ns;
use jabberwock_protocol::stanza::{Condition, IqType, StanzaError};
use jabberwock_protocol::xml::Element;
use jabberwock_storage::{RosterEntry, Subscription};

use super::{
    xep, Event, EventKind, Flow, Hook, IqHandler, IqRequest, Module, NoConfig, Registrar,
    SessionFlag, Target, Xep,
};
use crate::accounts::account_of;
use crate::error::store_to_stanza_error;
use crate::server::Server;

pub struct Blocking;

/// Set on a resource that retrieved the blocklist: it gets pushes (§3.2).
static INTERESTED: SessionFlag = SessionFlag::new();

/// Blocking runs before other listeners: a blocked stanza is nobody else's business.
const PRIORITY: i32 = 100;

/// Locks that serialise, per account, a load of the list into the cache with the writes to
/// it, so a load that read the store before a write can't put back what the write changed.
/// Striped: a few locks shared by all accounts, none kept per account.
const STRIPES: usize = 16;

/// The blocklists of the accounts that have a bound session, by bare JID.
#[derive(Default)]
struct Blocklists {
    cache: RwLock<HashMap<String, Arc<HashSet<String>>>>,
    stripes: [tokio::sync::Mutex<()>; STRIPES],
}

/// Whether `list` blocks `jid`: XEP-0191 §6 takes XEP-0016 §2.1's matching, in which an
/// item matches the JIDs it names at its own level of detail: a full JID only itself, a
/// bare JID all its resources, `domain/resource` that resource of the domain, a domain
/// everything at it. Blocking has no allow items, so any match blocks.
fn blocks(list: &HashSet<String>, jid: &Jid) -> bool {
    if list.is_empty() {
        return false;
    }
    let domain = jid.domain().as_str();
    if list.contains(jid.as_str()) || list.contains(domain) {
        return true;
    }
    if jid.node().is_some() && list.contains(jid.to_bare().as_str()) {
        return true;
    }
    match jid.resource() {
        Some(resource) => list.contains(&format!("{domain}/{}", resource.as_str())),
        None => false,
    }
}

/// A list as the cache keeps it. Most accounts block nobody: they all share one empty set,
/// so an online account without a list costs the cache its key alone (a change to the
/// shared set copies it first, `Arc::make_mut`).
fn shared_list(items: Vec<String>) -> Arc<HashSet<String>> {
    static EMPTY: LazyLock<Arc<HashSet<String>>> = LazyLock::new(Arc::default);
    if items.is_empty() {
        EMPTY.clone()
    } else {
        Arc::new(items.into_iter().collect())
    }
}

/// When the list is needed for an account without a bound session.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Offline {
    /// Read the store (a message that would be kept offline).
    Read,
    /// Nothing reaches the account anyway (presence, IQs to a full JID).
    Skip,
}

impl Blocklists {
    fn stripe(&self, bare: &str) -> &tokio::sync::Mutex<()> {
        let mut hasher = DefaultHasher::new();
        bare.hash(&mut hasher);
        &self.stripes[hasher.finish() as usize % STRIPES]
    }

    fn cached(&self, bare: &str) -> Option<Arc<HashSet<String>>> {
        self.cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(bare)
            .cloned()
    }

    /// Whether `bare`'s list is in memory and empty: nothing to check (the usual case, and
    /// a look that allocates nothing).
    fn known_empty(&self, bare: &str) -> bool {
        self.cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(bare)
            .is_some_and(|list| list.is_empty())
    }

    fn drop_entry(&self, bare: &str) {
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(bare);
    }

    /// Loads `bare`'s list into the cache unless it is there.
    async fn load(&self, server: &Server, bare: &BareJid) -> Option<Arc<HashSet<String>>> {
        let _guard = self.stripe(bare.as_str()).lock().await;
        if let Some(list) = self.cached(bare.as_str()) {
            return Some(list);
        }
        match server.store.blocklist(&account_of(bare)).await {
            Ok(items) => {
                let list = shared_list(items);
                self.cache
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(bare.to_string(), list.clone());
                Some(list)
            }
            Err(e) => {
                tracing::error!(error = %e, %bare, "blocklist read failed");
                None
            }
        }
    }

    /// The list of `bare`, one of our accounts: from memory when a session of it is bound
    /// (loaded again if a session's end raced a new login), else as `offline` says.
    async fn list(
        &self,
        server: &Server,
        bare: &BareJid,
        offline: Offline,
    ) -> Option<Arc<HashSet<String>>> {
        if let Some(list) = self.cached(bare.as_str()) {
            return Some(list);
        }
        if server.router.table.resource_count(bare.as_str()) > 0 {
            return self.load(server, bare).await;
        }
        if offline == Offline::Skip {
            return None;
        }
        match server.store.blocklist(&account_of(bare)).await {
            Ok(items) => Some(shared_list(items)),
            Err(e) => {
                tracing::error!(error = %e, %bare, "blocklist read failed");
                None
            }
        }
    }

    /// Whether our account `owner` blocks `jid`.
    async fn owner_blocks(
        &self,
        server: &Server,
        owner: &BareJid,
        jid: &Jid,
        offline: Offline,
    ) -> bool {
        self.list(server, owner, offline)
            .await
            .is_some_and(|list| blocks(&list, jid))
    }

    /// Applies a change the store made to a cached list (a list not cached is read fresh
    /// at the next login).
    fn update(&self, bare: &str, change: impl FnOnce(&mut HashSet<String>)) {
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = cache.get_mut(bare) {
            change(Arc::make_mut(list));
        }
    }
}

/// §3.3: what a user's stanza to an entity it blocks is refused with.
fn blocked_error() -> StanzaError {
    StanzaError::new(Condition::NotAcceptable)
        .with_app(Element::new("blocked", ns::BLOCKING_ERRORS))
}

/// The items of a `<block/>` or `<unblock/>`, normalised (§3.3: a JID that does not parse
/// is jid-malformed).
fn items(payload: &Element) -> Result<Vec<Jid>, StanzaError> {
    payload
        .children()
        .filter(|c| c.is("item", ns::BLOCKING))
        .map(|item| {
            item.attr("jid")
                .and_then(|j| Jid::new(j).ok())
                .ok_or_else(|| StanzaError::new(Condition::JidMalformed))
        })
        .collect()
}

fn item_element(jid: &str) -> Element {
    Element::new("item", ns::BLOCKING).with_attr("jid", jid)
}

/// Only the user manages the user's blocklist: the IQ has no `to` (or the user's own bare
/// JID).
fn check_owner(request: &IqRequest<'_>) -> Result<BareJid, StanzaError> {
    let owner = request.from.to_bare();
    if request.to.to_bare() == owner {
        Ok(owner)
    } else {
        Err(StanzaError::new(Condition::Forbidden))
    }
}

/// §3.3 and §3.4: a push of `command` (`block` or `unblock`) with `jids` to every resource
/// of `owner` that retrieved the blocklist.
fn push(server: &Server, owner: &BareJid, command: &str, jids: &[String]) {
    let mut payload = Element::new(command, ns::BLOCKING);
    for jid in jids {
        payload.push_child(item_element(jid));
    }
    server
        .router
        .table
        .send_to_each(owner.as_str(), &|full, state| {
            state.is_set(&INTERESTED).then(|| {
                Element::new("iq", ns::CLIENT)
                    .with_attr("type", "set")
                    .with_attr("id", format!("{command}-push"))
                    .with_attr("to", full)
                    .with_child(payload.clone())
            })
        });
}

/// The roster contacts whose subscription `pick` selects that `item` blocks, each as the
/// JID presence goes to: a full-JID item names one resource of a contact, the others are
/// the contact's bare JID.
fn contacts_blocked_by(
    entries: &[RosterEntry],
    item: &str,
    pick: impl Fn(Subscription) -> bool,
) -> Vec<Jid> {
    let Ok(item_jid) = Jid::new(item) else {
        return Vec::new();
    };
    let one: HashSet<String> = HashSet::from([item.to_owned()]);
    entries
        .iter()
        .filter(|e| pick(e.subscription))
        .filter_map(|e| BareJid::new(&e.contact).ok())
        .filter_map(|contact| {
            if item_jid.node().is_some() && item_jid.resource().is_some() {
                (item_jid.to_bare() == contact).then(|| item_jid.clone())
            } else {
                blocks(&one, &Jid::from(contact.clone())).then(|| Jid::from(contact))
            }
        })
        .collect()
}

fn shares_with(s: Subscription) -> bool {
    matches!(s, Subscription::From | Subscription::Both)
}

fn subscribed_to(s: Subscription) -> bool {
    matches!(s, Subscription::To | Subscription::Both)
}

struct GetList(Arc<Blocklists>);
struct Block(Arc<Blocklists>);
struct Unblock(Arc<Blocklists>);

#[async_trait]
impl IqHandler for GetList {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let owner = check_owner(&request)?;
        let server = request.server;
        // §3.2: from now on this resource hears of changes.
        if let Some(state) = server.router.table.session_state(request.from) {
            state.set(&INTERESTED);
        }
        // The cached copy when there is one (sorted, like the store's).
        let items = match self.0.cached(owner.as_str()) {
            Some(list) => {
                let mut items: Vec<String> = list.iter().cloned().collect();
                items.sort_unstable();
                items
            }
            None => server
                .store
                .blocklist(&account_of(&owner))
                .await
                .map_err(store_to_stanza_error)?,
        };
        let mut list = Element::new("blocklist", ns::BLOCKING);
        for jid in &items {
            list.push_child(item_element(jid));
        }
        Ok(Some(list))
    }
}

#[async_trait]
impl IqHandler for Block {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let owner = check_owner(&request)?;
        let jids = items(request.payload)?;
        // §3.3: a block without items is bad-request.
        if jids.is_empty() {
            return Err(StanzaError::new(Condition::BadRequest));
        }
        let server = request.server;
        let jids: Vec<String> = jids.iter().map(|j| j.to_string()).collect();
        let added = {
            let _guard = self.0.stripe(owner.as_str()).lock().await;
            let added = server
                .store
                .block(&account_of(&owner), &jids)
                .await
                .map_err(store_to_stanza_error)?;
            self.0
                .update(owner.as_str(), |list| list.extend(added.iter().cloned()));
            added
        };
        if added.is_empty() {
            return Ok(None);
        }
        push(server, &owner, "block", &added);
        go_unavailable(server, &owner, &added).await;
        Ok(None)
    }
}

/// §3.3: blocked contacts that saw the user's presence see each available resource go
/// unavailable.
async fn go_unavailable(server: &Server, owner: &BareJid, blocked: &[String]) {
    let resources = server.router.table.available_presences(owner.as_str());
    if resources.is_empty() {
        return;
    }
    let entries = match server.store.roster(&account_of(owner)).await {
        Ok((_, entries)) => entries,
        Err(e) => return tracing::error!(error = %e, "roster read failed"),
    };
    for item in blocked {
        for contact in contacts_blocked_by(&entries, item, shares_with) {
            for (full, _) in &resources {
                let presence = Element::new("presence", ns::CLIENT)
                    .with_attr("type", "unavailable")
                    .with_attr("from", full.as_str())
                    .with_attr("to", contact.as_str());
                server
                    .router
                    .deliver_presence(server, &contact, presence)
                    .await;
            }
        }
    }
}

#[async_trait]
impl IqHandler for Unblock {
    async fn handle(&self, request: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let owner = check_owner(&request)?;
        let jids = items(request.payload)?;
        let server = request.server;
        let account = account_of(&owner);
        let all = jids.is_empty();
        let removed = {
            let _guard = self.0.stripe(owner.as_str()).lock().await;
            // §3.5: an unblock without items unblocks everything.
            let removed = if all {
                server.store.unblock_all(&account).await
            } else {
                let jids: Vec<String> = jids.iter().map(|j| j.to_string()).collect();
                server.store.unblock(&account, &jids).await
            }
            .map_err(store_to_stanza_error)?;
            self.0.update(owner.as_str(), |list| {
                for jid in &removed {
                    list.remove(jid);
                }
            });
            removed
        };
        if removed.is_empty() {
            return Ok(None);
        }
        // §3.5: unblocking all is pushed as an empty <unblock/>.
        push(server, &owner, "unblock", if all { &[] } else { &removed });
        come_back(server, &owner, &removed).await;
        Ok(None)
    }
}

/// §3.4: unblocked contacts the user shares presence with get its current presence again,
/// and the user's resources the contacts' presence, as if the block had never been: a
/// local contact's from this server's table, another server's by a probe from the user's
/// bare JID (RFC 6121 §4.3.1), which that server answers to the user's resources.
async fn come_back(server: &Server, owner: &BareJid, unblocked: &[String]) {
    let entries = match server.store.roster(&account_of(owner)).await {
        Ok((_, entries)) => entries,
        Err(e) => return tracing::error!(error = %e, "roster read failed"),
    };
    let user = Jid::from(owner.clone());
    for item in unblocked {
        for contact in contacts_blocked_by(&entries, item, shares_with) {
            crate::roster::share_presence(server, owner, &contact.to_bare()).await;
        }
        for contact in contacts_blocked_by(&entries, item, subscribed_to) {
            let domain = contact.domain().as_str();
            if !server.serves(domain) && !server.modules.is_service(domain) {
                let probe = Element::new("presence", ns::CLIENT)
                    .with_attr("type", "probe")
                    .with_attr("from", owner.as_str())
                    .with_attr("to", contact.to_bare().as_str());
                let to = Jid::from(contact.to_bare());
                server.router.deliver_presence(server, &to, probe).await;
                continue;
            }
            for (full, presence) in server
                .router
                .table
                .available_presences(contact.to_bare().as_str())
            {
                let mut copy = (*presence).clone();
                copy.set_attr("from", full.as_str());
                copy.set_attr("to", owner.as_str());
                server.router.deliver_presence(server, &user, copy).await;
            }
        }
    }
}

/// Keeps the cache: loaded at a login, dropped with the last session or the account.
struct Lifecycle(Arc<Blocklists>);

#[async_trait]
impl Hook for Lifecycle {
    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        match event {
            Event::SessionBound { jid, .. } => {
                self.0.load(server, &jid.to_bare()).await;
            }
            Event::SessionEnded {
                jid, last: true, ..
            } => self.0.drop_entry(jid.to_bare().as_str()),
            Event::AccountDeleted { account } => self.0.drop_entry(account.as_str()),
            _ => {}
        }
        Flow::Continue
    }
}

/// The stanza's sender as a JID, from the `from` attribute the server stamped.
fn sender(element: &Element) -> Option<Jid> {
    element.attr("from").and_then(|f| Jid::new(f).ok())
}

fn is_local(server: &Server, jid: &Jid) -> bool {
    jid.node().is_some() && server.serves(jid.domain().as_str())
}

/// Whether `jid` (as a stanza's `from` gives it) is one of our accounts.
fn is_local_account(server: &Server, jid: &str) -> bool {
    Jid::new(jid).is_ok_and(|jid| is_local(server, &jid))
}

/// Enforcement (§3.3): what the user sends to a blocked entity is refused with
/// `not-acceptable` + `<blocked/>`; what a blocked entity sends the user is dropped, the
/// sender of a message or IQ request told `service-unavailable` (the user appears
/// offline), presence dropped silently.
struct Enforce(Arc<Blocklists>);

impl Enforce {
    /// Our account `owner` sent something to `to`: blocked?
    async fn outbound_blocked(&self, server: &Server, owner: &BareJid, to: &Jid) -> bool {
        self.0.owner_blocks(server, owner, to, Offline::Skip).await
    }
}

#[async_trait]
impl Hook for Enforce {
    /// Nothing to enforce for accounts whose list is in memory and empty (the usual case).
    /// Another server's entity (an IQ on its way out) has no list here.
    fn quick(&self, server: &Server, event: &mut Event<'_>) -> Option<Flow> {
        use jabberwock_protocol::jid::bare_part;
        let empty = |jid: &str| self.0.known_empty(bare_part(jid));
        let nothing = match event {
            Event::MessageFromClient { from, .. } => empty(from.as_str()),
            // A message the server sends on an account's behalf (no sending session: a
            // PEP notification) is the account's own too: its list counts as well.
            Event::MessageIn {
                from: None,
                to,
                stanza,
            } => {
                empty(to.as_str())
                    && stanza
                        .from()
                        .is_none_or(|f| !is_local_account(server, f) || empty(f))
            }
            Event::MessageIn { to, .. } => empty(to.as_str()),
            Event::IqIn { from, to, .. } => {
                empty(from.as_str()) && (!is_local(server, to) || empty(to.as_str()))
            }
            // Every presence copy, for our accounts and other servers' entities alike:
            // nothing to look at when neither side's list can block it.
            Event::PresenceIn { to, presence } => {
                presence.attr("from").is_some_and(empty)
                    && (!is_local(server, to) || empty(to.as_str()))
            }
            _ => false,
        };
        nothing.then_some(Flow::Continue)
    }

    async fn on(&self, server: &Server, event: &mut Event<'_>) -> Flow {
        match event {
            Event::MessageFromClient { from, stanza } => {
                if self
                    .0
                    .known_empty(jabberwock_protocol::jid::bare_part(from.as_str()))
                {
                    return Flow::Continue;
                }
                let Some(to) = stanza.to().and_then(|t| Jid::new(t).ok()) else {
                    return Flow::Continue;
                };
                if self.outbound_blocked(server, &from.to_bare(), &to).await {
                    return Flow::Refuse(blocked_error());
                }
                Flow::Continue
            }
            Event::MessageIn { from, to, stanza } => {
                // The owner's list, for a message sent on its behalf (§3.3: nothing reaches
                // a blocked contact from the user, XEP-0163 §4.3.3 for notifications).
                if from.is_none() {
                    if let Some(owner) = sender(stanza.element())
                        .filter(|s| s.node().is_some() && is_local(server, s))
                    {
                        // Read from the store when the owner is offline (a contact's login
                        // is owed the owner's last items then).
                        let blocked = self
                            .0
                            .owner_blocks(server, &owner.to_bare(), to, Offline::Read)
                            .await;
                        if blocked {
                            return Flow::Handled;
                        }
                    }
                    // Sent on the account's behalf to another server's entity (a PEP
                    // notification): that server keeps the recipient's list.
                    if !is_local(server, to) {
                        return Flow::Continue;
                    }
                }
                if self
                    .0
                    .known_empty(jabberwock_protocol::jid::bare_part(to.as_str()))
                {
                    return Flow::Continue;
                }
                let sender = match from {
                    Some(from) => Some(Jid::from((*from).clone())),
                    None => sender(stanza.element()),
                };
                let Some(sender) = sender else {
                    return Flow::Continue;
                };
                // Kept offline when nobody is online: the store decides then.
                if self
                    .0
                    .owner_blocks(server, &to.to_bare(), &sender, Offline::Read)
                    .await
                {
                    return if stanza.is_error() {
                        Flow::Handled
                    } else {
                        Flow::Refuse(StanzaError::new(Condition::ServiceUnavailable))
                    };
                }
                Flow::Continue
            }
            Event::IqIn { from, to, stanza } => {
                let local = is_local(server, to);
                if self
                    .0
                    .known_empty(jabberwock_protocol::jid::bare_part(from.as_str()))
                    && (!local
                        || self
                            .0
                            .known_empty(jabberwock_protocol::jid::bare_part(to.as_str())))
                {
                    return Flow::Continue;
                }
                let request = matches!(stanza.iq_type(), Some(IqType::Get | IqType::Set));
                let sender = Jid::from((*from).clone());
                let recipient = (*to).clone();
                // §3.5: the server answers an IQ to a bare JID for the account (its vCard,
                // last activity), online or not; one to a full JID reaches a session only.
                let offline = if to.try_as_full().is_ok() {
                    Offline::Skip
                } else {
                    Offline::Read
                };
                // The recipient's list, if it is ours (an IQ for another server's entity,
                // on its way out, is only the sender's business).
                if local
                    && self
                        .0
                        .owner_blocks(server, &to.to_bare(), &sender, offline)
                        .await
                {
                    // Results and errors are dropped silently.
                    return if request {
                        Flow::Refuse(StanzaError::new(Condition::ServiceUnavailable))
                    } else {
                        Flow::Handled
                    };
                }
                if self
                    .outbound_blocked(server, &from.to_bare(), &recipient)
                    .await
                {
                    return if request {
                        Flow::Refuse(blocked_error())
                    } else {
                        Flow::Handled
                    };
                }
                Flow::Continue
            }
            Event::PresenceOut { from, stanza, .. } => {
                // Broadcasts are filtered per recipient (PresenceIn); directed presence,
                // subscription requests and probes are stopped here.
                let Some(to) = stanza.to().and_then(|t| Jid::new(t).ok()) else {
                    return Flow::Continue;
                };
                if self.outbound_blocked(server, &from.to_bare(), &to).await {
                    return Flow::Refuse(blocked_error());
                }
                // A subscription request for a user who is offline is kept for the next
                // login: the store decides then.
                let sender = Jid::from((*from).clone());
                if is_local(server, &to)
                    && self
                        .0
                        .owner_blocks(server, &to.to_bare(), &sender, Offline::Read)
                        .await
                {
                    return Flow::Handled;
                }
                Flow::Continue
            }
            Event::PresenceIn { to, presence } => {
                let Some(sender) = sender(presence) else {
                    return Flow::Continue;
                };
                // For one of our accounts (presence for another server's entity is on its
                // way out: only the sender's list counts).
                if is_local(server, to)
                    && self
                        .0
                        .owner_blocks(server, &to.to_bare(), &sender, Offline::Skip)
                        .await
                {
                    return Flow::Handled;
                }
                // The user's broadcast, probe answer or probe to a contact it blocks, on
                // this server or another; its unavailable still goes (§3.3: the contact
                // sees the user go offline, and stays with that).
                if is_local(server, &sender)
                    && presence.attr("type") != Some("unavailable")
                    && self.outbound_blocked(server, &sender.to_bare(), to).await
                {
                    return Flow::Handled;
                }
                Flow::Continue
            }
            _ => Flow::Continue,
        }
    }
}

impl Module for Blocking {
    const NAME: &'static str = "blocking";
    const XEPS: &'static [Xep] = &[xep(191, "1.3")];
    type Config = NoConfig;

    fn register(_config: NoConfig, registry: &mut Registrar<'_>) {
        let lists = Arc::new(Blocklists::default());
        registry.iq(
            IqType::Get,
            Target::Account,
            ns::BLOCKING,
            "blocklist",
            Arc::new(GetList(lists.clone())),
        );
        registry.iq(
            IqType::Set,
            Target::Account,
            ns::BLOCKING,
            "block",
            Arc::new(Block(lists.clone())),
        );
        registry.iq(
            IqType::Set,
            Target::Account,
            ns::BLOCKING,
            "unblock",
            Arc::new(Unblock(lists.clone())),
        );
        // §3.1: the server says so; the account's bare JID too, since it answers for it.
        registry.disco_feature(Target::Host, ns::BLOCKING);
        registry.disco_feature(Target::Account, ns::BLOCKING);

        let lifecycle = Arc::new(Lifecycle(lists.clone()));
        for kind in [
            EventKind::SessionBound,
            EventKind::SessionEnded,
            EventKind::AccountDeleted,
        ] {
            registry.hook(kind, PRIORITY, lifecycle.clone());
        }
        let enforce = Arc::new(Enforce(lists));
        for kind in [
            EventKind::MessageFromClient,
            EventKind::MessageIn,
            EventKind::IqIn,
            EventKind::PresenceOut,
            EventKind::PresenceIn,
        ] {
            registry.hook(kind, PRIORITY, enforce.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> HashSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn jid(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    #[test]
    fn items_match_at_their_own_level() {
        // A bare JID: every resource of it, not its domain's others.
        let bare = list(&["bob@example.org"]);
        assert!(blocks(&bare, &jid("bob@example.org")));
        assert!(blocks(&bare, &jid("bob@example.org/phone")));
        assert!(!blocks(&bare, &jid("carol@example.org")));
        // A full JID: that resource alone.
        let full = list(&["bob@example.org/phone"]);
        assert!(blocks(&full, &jid("bob@example.org/phone")));
        assert!(!blocks(&full, &jid("bob@example.org/desk")));
        assert!(!blocks(&full, &jid("bob@example.org")));
        // A domain: everyone there, and the domain itself.
        let domain = list(&["example.org"]);
        assert!(blocks(&domain, &jid("carol@example.org/x")));
        assert!(blocks(&domain, &jid("example.org")));
        assert!(!blocks(&domain, &jid("bob@example.com")));
        // domain/resource: that resource of the domain.
        let service = list(&["example.org/bot"]);
        assert!(blocks(&service, &jid("example.org/bot")));
        assert!(!blocks(&service, &jid("example.org")));
        assert!(!blocks(&list(&[]), &jid("bob@example.org")));
    }

    #[test]
    fn bad_items_are_jid_malformed() {
        let block = Element::new("block", ns::BLOCKING)
            .with_child(item_element("bob@example.org"))
            .with_child(Element::new("item", ns::BLOCKING));
        assert_eq!(
            items(&block).unwrap_err().condition,
            Condition::JidMalformed
        );
        let block = Element::new("block", ns::BLOCKING).with_child(item_element("@@"));
        assert_eq!(
            items(&block).unwrap_err().condition,
            Condition::JidMalformed
        );
        // Normalised, so the stored text compares byte for byte.
        let block = Element::new("block", ns::BLOCKING).with_child(item_element("Bob@Example.ORG"));
        assert_eq!(items(&block).unwrap()[0].as_str(), "bob@example.org");
    }

    #[test]
    fn full_jid_items_name_one_resource_of_a_contact() {
        let entry = |contact: &str| RosterEntry {
            contact: contact.to_owned(),
            subscription: Subscription::Both,
            ..RosterEntry::default()
        };
        let entries = vec![entry("bob@example.org"), entry("carol@example.com")];
        let hit = contacts_blocked_by(&entries, "bob@example.org/phone", shares_with);
        assert_eq!(hit, vec![jid("bob@example.org/phone")]);
        let hit = contacts_blocked_by(&entries, "example.com", shares_with);
        assert_eq!(hit, vec![jid("carol@example.com")]);
        assert!(contacts_blocked_by(&entries, "example.com", subscribed_to).len() == 1);
        assert!(contacts_blocked_by(&entries, "dave@example.net", shares_with).is_empty());
    }
}
