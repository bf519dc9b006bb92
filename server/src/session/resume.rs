//! XEP-0198 §5 resumption: the table of resumable sessions by the id their `<enabled/>`
//! gave, and the hand-over of a session from the task that holds it (waiting for its
//! client, or still serving a stream the client has abandoned) to the task of the new
//! stream that resumes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use jabberwock_protocol::jid::bare_part;
use jabberwock_protocol::stanza::Condition;
use rand::RngCore;
use tokio::sync::{mpsc, oneshot};

use crate::c2s::Bound;

/// How long a resuming stream waits for the session's task to hand it over (it may be in the
/// middle of a write to the old stream).
const HANDOVER_WAIT: Duration = Duration::from_secs(10);

/// A new stream's request for a session: the account it authenticated as and the client's
/// count of handled stanzas; the answer is the session, or the `<failed/>` condition.
pub struct Takeover {
    pub account: String,
    pub h: u32,
    pub reply: oneshot::Sender<Result<Bound, Condition>>,
}

type Waiting = Arc<Mutex<HashMap<String, mpsc::Sender<Takeover>>>>;

/// Resumable sessions by resumption id.
#[derive(Default)]
pub struct Resumptions {
    waiting: Waiting,
}

/// A session's place in [`Resumptions`]: its id, and where takeovers arrive. Dropping it
/// (the session ended) makes the id unknown.
pub struct Registration {
    pub id: String,
    pub takeovers: mpsc::Receiver<Takeover>,
    waiting: Waiting,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.waiting).remove(&self.id);
    }
}

fn lock(waiting: &Waiting) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<Takeover>>> {
    waiting.lock().unwrap_or_else(|p| p.into_inner())
}

impl Resumptions {
    /// A new resumable session: an unguessable id (128 random bits; §5 leaves the form to
    /// the server, and knowing the id is half of what it takes to steal a session).
    pub fn register(&self) -> Registration {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        // One slot: a second takeover waits until the first is answered.
        let (tx, takeovers) = mpsc::channel(1);
        lock(&self.waiting).insert(id.clone(), tx);
        Registration {
            id,
            takeovers,
            waiting: self.waiting.clone(),
        }
    }

    /// Takes over the session `previd` for `account`'s new stream (§5). An id that is
    /// unknown, expired or another account's is `item-not-found` alike, so that ids can't
    /// be probed.
    pub async fn take(&self, account: &str, previd: &str, h: u32) -> Result<Bound, Condition> {
        let Some(tx) = lock(&self.waiting).get(previd).cloned() else {
            return Err(Condition::ItemNotFound);
        };
        let (reply, answer) = oneshot::channel();
        let takeover = Takeover {
            account: bare_part(account).to_owned(),
            h,
            reply,
        };
        let asked = async {
            tx.send(takeover).await.ok()?;
            answer.await.ok()
        };
        match tokio::time::timeout(HANDOVER_WAIT, asked).await {
            Ok(Some(result)) => result,
            // The session ended meanwhile.
            Ok(None) => Err(Condition::ItemNotFound),
            Err(_) => {
                tracing::warn!("a session did not answer its resumption in time");
                Err(Condition::InternalServerError)
            }
        }
    }
}
