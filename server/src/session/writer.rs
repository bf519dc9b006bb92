//! The session's writes to its client. Every stanza goes through [`ClientWriter`], so
//! XEP-0198 (when the client enabled it) counts it and keeps it until acknowledged; the
//! offline backlog writes through it too.

use jabberwock_protocol::jid::FullJid;
use jabberwock_protocol::ns;
use jabberwock_protocol::xml::Element;

use super::acks::Acks;
use crate::router::Outgoing;
use crate::stream::connection::Connection;

pub struct ClientWriter<'a> {
    conn: &'a mut Connection,
    jid: &'a FullJid,
    acks: Option<&'a mut Acks>,
}

/// XEP-0198 §4 counts stanzas only (RFC 6120 §8: message, presence, iq), not nonzas such as
/// `<a/>` or a CSI answer.
fn is_stanza(element: &Element) -> bool {
    element.ns() == ns::CLIENT && matches!(element.name(), "message" | "presence" | "iq")
}

impl<'a> ClientWriter<'a> {
    pub fn new(conn: &'a mut Connection, jid: &'a FullJid, acks: Option<&'a mut Acks>) -> Self {
        ClientWriter { conn, jid, acks }
    }

    /// Writes one stanza (a shared one with this session's JID as its `to`) and keeps it.
    /// Kept even when the write fails: the client never acknowledged it, so it is sent
    /// again on resumption or handed back as undeliverable.
    pub async fn send(&mut self, stanza: Outgoing) -> std::io::Result<()> {
        let written = self.write(&stanza).await;
        self.keep(stanza);
        written
    }

    /// Writes one stanza without keeping it yet (see [`ClientWriter::keep`]).
    pub async fn write(&mut self, stanza: &Outgoing) -> std::io::Result<()> {
        crate::metrics::stanza_out(stanza.element());
        match stanza {
            Outgoing::Own(element) => self.conn.send(element).await,
            Outgoing::Shared(shared) => self.conn.send_shared(shared, self.jid.as_str()).await,
        }
    }

    /// Counts a written stanza and keeps it until acknowledged (XEP-0198 §4), if the
    /// client enabled acknowledgements.
    pub fn keep(&mut self, stanza: Outgoing) {
        if let Some(acks) = self.acks.as_deref_mut() {
            if is_stanza(stanza.element()) {
                acks.sent(stanza);
            }
        }
    }

    pub async fn element(&mut self, element: Element) -> std::io::Result<()> {
        self.send(Outgoing::own(element)).await
    }
}
