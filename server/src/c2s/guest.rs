//! SASL ANONYMOUS guests (RFC 4505). A guest gets a fresh, unguessable `guest-<hex>@host`
//! backed by a real account row without credentials, so rosters, subscriptions, presence
//! and offline messages work during the visit. Nobody can log in to it (no password matches
//! an account without credentials), and it is removed when the guest leaves:
//! - a bound session's end: [`remove`], from [`crate::session::run`] after the unavailable
//!   broadcast (contacts are told, the roster and offline messages go with the account);
//! - negotiation stopping before a resource is bound (error, timeout, shutdown): [`Guard`];
//! - a crash: [`remove_leftovers`] at start-up, before anyone can connect. Each guest row
//!   names the node that created it (`Server::node_id`, kept in `data_dir`), so a node
//!   restarted after its crash removes its own guests and never the live guests of another
//!   node sharing the database.

use std::sync::Arc;

use jabberwock_protocol::jid::BareJid;
use jabberwock_storage::{AccountId, Store, StoreError};

use crate::error::{store_to_stream_error, SessionEnd};
use crate::server::Server;

/// Creates the guest's account row on `host`, owned by this node.
pub async fn create(server: &Server, host: &str) -> Result<AccountId, SessionEnd> {
    loop {
        let n: u64 = rand::Rng::gen(&mut rand::thread_rng());
        let account = AccountId::new(format!("guest-{n:016x}"), host);
        match server.store.create_guest(&account, &server.node_id).await {
            Ok(()) => return Ok(account),
            // 64 random bits: a clash can only be a user who registered this very name.
            Err(StoreError::AlreadyExists) => continue,
            Err(e) => return Err(store_to_stream_error(e)),
        }
    }
}

/// Removes a guest row that never got a session (nothing but the row exists yet).
pub async fn forget(server: &Server, account: &AccountId) {
    if let Err(e) = server.store.remove_account(account).await {
        tracing::warn!(error = %e, user = %account.username, "could not remove a guest");
    }
}

/// Removes a guest whose session ended: its contacts learn the subscriptions are gone (RFC
/// 6121 §2.5 / XEP-0077 §3.2 account removal), then the account and all it owned go.
pub async fn remove(server: &Server, guest: &BareJid) {
    match crate::roster::remove_account(server, guest).await {
        Ok(_) => tracing::info!(%guest, "guest left; account removed"),
        Err(e) => tracing::warn!(error = %e, %guest, "could not remove a guest"),
    }
}

/// At start-up: guests this node left behind by a crash (those it owns, and untagged
/// credential-less accounts from before guests had owners; only guests are created
/// without credentials). Their contacts' rosters are updated as if they had left.
pub async fn remove_leftovers(server: &Server) {
    let leftovers = match server.store.guests_of(&server.node_id).await {
        Ok(accounts) => accounts,
        Err(e) => {
            tracing::warn!(error = %e, "could not list leftover guests");
            return;
        }
    };
    for account in &leftovers {
        match BareJid::new(&format!("{}@{}", account.username, account.domain)) {
            Ok(jid) => remove(server, &jid).await,
            Err(_) => forget(server, account).await,
        }
    }
    if !leftovers.is_empty() {
        tracing::info!(
            count = leftovers.len(),
            "removed guests left by an unclean stop"
        );
    }
}

/// Removes an armed guest row when dropped: negotiation ended (or its future was dropped by
/// the handshake timeout or shutdown) before a resource was bound.
pub struct Guard {
    store: Arc<dyn Store>,
    account: Option<AccountId>,
}

impl Guard {
    pub fn new(server: &Server) -> Self {
        Guard {
            store: server.store.clone(),
            account: None,
        }
    }

    pub fn arm(&mut self, account: AccountId) {
        self.account = Some(account);
    }

    /// The session took over: [`remove`] runs when it ends.
    pub fn disarm(&mut self) {
        self.account = None;
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(account) = self.account.take() else {
            return;
        };
        let store = self.store.clone();
        // Drop can't await: a task does it. Without a runtime (never in the server) the
        // start-up sweep catches the row.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                match store.remove_account(&account).await {
                    Ok(_) => tracing::info!(
                        user = %account.username,
                        "guest left before binding; account removed"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, user = %account.username, "could not remove a guest")
                    }
                }
            });
        }
    }
}
