//! XEP-0220 §2.2–§2.3 from the receiving server's side: asking the authoritative server
//! (found like any peer) whether a key it was offered is genuine, over a stream of its
//! own; and answering such a question about our own keys.

use jabberwock_protocol::dialback::{self, Dialback, Kind, Outcome};

use super::outbound::{self, Opened};
use super::Shared;
use crate::server::Server;

/// Whether `key`, offered on our stream `stream_id` by a server claiming `originating` to
/// our `receiving`, is `originating`'s: `<db:verify/>` to its authoritative server.
pub async fn verify(
    shared: &Shared,
    server: &Server,
    receiving: &str,
    originating: &str,
    stream_id: &str,
    key: &str,
) -> Result<bool, outbound::OpenError> {
    let Opened { mut conn, .. } = outbound::open(shared, server, receiving, originating).await?;
    let question = Dialback::request(Kind::Verify, receiving, originating, Some(stream_id), key);
    conn.send(&question.to_element()).await?;
    let valid = loop {
        let el = outbound::next_element(&mut conn).await?;
        let Ok(answer) = Dialback::parse(&el) else {
            continue;
        };
        if answer.kind == Kind::Verify && answer.id.as_deref() == Some(stream_id) {
            break answer.outcome == Some(Outcome::Valid);
        }
    };
    conn.close(None, receiving).await;
    Ok(valid)
}

/// Our answer as the authoritative server to `question` (a `<db:verify/>` from the
/// receiving server): valid only if the key is the one we made for that stream.
pub fn answer(shared: &Shared, question: &Dialback) -> Dialback {
    let valid = match (&question.key, &question.id) {
        (Some(key), Some(id)) => {
            dialback::key_matches(key, shared.secret(), &question.from, &question.to, id)
        }
        _ => false,
    };
    question.answer(if valid {
        Outcome::Valid
    } else {
        Outcome::Invalid
    })
}
