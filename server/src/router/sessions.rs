//! What the router and the modules ask of the sessions they deliver to: one interface, so
//! that this process's table ([`super::SessionTable`]) is one implementation of it and a
//! cluster's (resources on other nodes too, reached over a bus) can be another.
//!
//! Nothing here assumes a resource lives in this process:
//! - delivery answers "taken" or hands the stanza back; taken means handed to whoever holds
//!   the resource (this process's inbox, or another node's), and what happens to it there
//!   (the slow-client policy, re-routing what a session never wrote) is that holder's;
//! - counts and the `took` lists name resources wherever they are;
//! - module state ([`SessionState`]) lives with its session: only a resource of this
//!   process has one, so `session_state` is `None` and `send_to_each`/`any_resource` see
//!   only the local resources' state for the others (a cluster would run them on each node).
//!
//! Binding is always of a session of this process: its inbox is local by nature.

use std::sync::Arc;

use jabberwock_protocol::jid::FullJid;
use jabberwock_protocol::stanza::SharedStanza;
use jabberwock_protocol::stream::StreamError;
use jabberwock_protocol::xml::Element;

use super::table::InboxSender;
use crate::modules::SessionState;

/// Picks or builds per resource, given its full JID and module state.
pub type PerResource<'a, T> = &'a dyn Fn(&str, &SessionState) -> T;

pub trait Sessions: Send + Sync {
    /// Binds a full JID to a session's inbox. An existing session with the same full JID is
    /// told to close with `replaced` (the newest login wins, as in Prosody). A new resource
    /// when the account already has `max` is refused: `false`, nothing changed.
    fn bind(
        &self,
        jid: &FullJid,
        session_id: u64,
        tx: InboxSender,
        state: Arc<SessionState>,
        replaced: StreamError,
        max: usize,
    ) -> bool;

    /// Removes a session's entry, unless a newer session already took the JID over.
    fn unbind(&self, jid: &FullJid, session_id: u64);

    /// Records broadcast presence: `Some((priority, presence))` when available, `None` when
    /// unavailable. Returns the priority it had before (`None`: it was unavailable).
    fn set_presence(&self, jid: &FullJid, presence: Option<(i8, Element)>) -> Option<i8>;

    /// Whether `jid` is still bound to the session `session_id` (not replaced since).
    fn is_bound_by(&self, jid: &FullJid, session_id: u64) -> bool;

    /// How many resources of `bare` are bound.
    fn resource_count(&self, bare: &str) -> usize;

    /// Whether `jid` is bound and has sent available presence.
    fn is_available(&self, jid: &FullJid) -> bool;

    /// Gives `element` to the session bound to `jid`; back when it can't take it (not bound,
    /// ending, or its inbox overflowed).
    fn send_to_full(&self, jid: &FullJid, element: Element) -> Result<(), Element>;

    /// [`Self::send_to_full`] for a stanza shared by many recipients, which the session
    /// writes with `jid` as its `to`; false when it can't take it (as above).
    fn send_shared_to_full(&self, jid: &FullJid, stanza: &Arc<SharedStanza>) -> bool;

    /// The state modules keep for the session bound to `jid`, if it is one of this process.
    fn session_state(&self, jid: &FullJid) -> Option<Arc<SessionState>>;

    /// Offers each bound resource of `bare` (available or not) what `make` returns for it;
    /// returns how many took something.
    fn send_to_each(&self, bare: &str, make: PerResource<'_, Option<Element>>) -> usize;

    /// Whether some bound resource of `bare` is one `pick` selects (a cheap test before
    /// building anything for them).
    fn any_resource(&self, bare: &str, pick: PerResource<'_, bool>) -> bool;

    /// RFC 6121 §8.5.2.1.1: the available resources sharing the highest non-negative
    /// priority. `took`, when given, learns which took it.
    fn send_to_most_available(
        &self,
        bare: &str,
        element: &Element,
        took: Option<&mut Vec<FullJid>>,
    ) -> usize;

    /// Every available resource, or only those with non-negative priority.
    fn send_to_available(
        &self,
        bare: &str,
        element: &Element,
        non_negative_only: bool,
        took: Option<&mut Vec<FullJid>>,
    ) -> usize;

    /// Every available resource of `except`'s account but `except` (a session's own copy,
    /// which it writes itself).
    fn send_to_other_available(&self, except: &FullJid, element: &Element) -> usize;

    /// The last presence of each available resource of `bare`, with its full JID.
    fn available_presences(&self, bare: &str) -> Vec<(String, Arc<Element>)>;

    /// Tells every session of `bare` to close with `error` (e.g. the account was deleted).
    fn close_all(&self, bare: &str, error: &StreamError);

    /// Tells the session bound to `jid` to close with `error`; false when none is.
    fn close_session(&self, jid: &FullJid, error: &StreamError) -> bool;

    /// The full JIDs of every bound session of accounts on `domain`, sorted.
    fn online_sessions(&self, domain: &str) -> Vec<FullJid>;
}
