//! xmpp-rs's tokio-xmpp, a client we did not write, logged in over STARTTLS with the test
//! server's pinned certificate, keeping every stanza it received.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use sasl::common::ChannelBinding;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_xmpp::connect::ServerConnector;
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::roster::{Ask, Roster, Subscription};
use tokio_xmpp::parsers::starttls;
use tokio_xmpp::xmlstream::{
    initiate_stream, PendingFeaturesRecv, ReadError, StreamHeader, Timeouts, XmppStream,
    XmppStreamElement,
};
use tokio_xmpp::{Client, Event, IqRequest, IqResponse, Stanza};

use crate::{TestServer, WAIT};

const ROSTER_NS: &str = "jabber:iq:roster";

/// STARTTLS for tokio-xmpp with our pinned certificate. tokio-xmpp's own STARTTLS connector
/// builds its rustls config from the system (or webpki) roots, where the test server's
/// self-signed certificate can't be put per test; its `ServerConnector` trait is public, so
/// this one does the same steps as tokio-xmpp's (stream, `<starttls/>`, `<proceed/>`, TLS,
/// new stream) with a config that trusts exactly our certificate. Everything after it (SASL,
/// bind, stanzas) is tokio-xmpp's own code.
#[derive(Clone, Debug)]
pub struct PinnedStartTls {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

fn io_error(e: impl std::fmt::Display) -> tokio_xmpp::Error {
    tokio_xmpp::Error::Io(std::io::Error::other(e.to_string()))
}

impl ServerConnector for PinnedStartTls {
    type Stream = BufStream<tokio_rustls::client::TlsStream<TcpStream>>;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<Self::Stream>, ChannelBinding), tokio_xmpp::Error> {
        let header = || StreamHeader {
            to: Some(Cow::Owned(jid.domain().to_string())),
            from: None,
            id: None,
        };
        let tcp = BufStream::new(TcpStream::connect(self.addr).await?);
        let pending = initiate_stream(tcp, ns, header(), timeouts).await?;
        let (features, mut stream): (_, XmppStream<_>) = pending.recv_features().await?;
        if !features.can_starttls() {
            return Err(io_error("no STARTTLS offered"));
        }
        stream
            .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
                starttls::Request,
            )))
            .await?;
        loop {
            match stream
                .next()
                .await
                .map(|e| e.and_then(|e| e.into_read_error()))
            {
                Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => break,
                Some(Ok(_)) | Some(Err(ReadError::SoftTimeout)) => {}
                other => return Err(io_error(format!("no <proceed/>: {other:?}"))),
            }
        }
        let tcp = stream.into_inner().into_inner();
        let name =
            rustls::pki_types::ServerName::try_from(jid.domain().to_string()).map_err(io_error)?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await?;
        // What tokio-xmpp's own connector reports: tls-exporter on TLS 1.3. The server offers
        // no -PLUS mechanism, so tokio-xmpp then skips SCRAM and authenticates with PLAIN
        // (over TLS); with `None` it would pick SCRAM-SHA-256.
        let binding = match tls.get_ref().1.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => ChannelBinding::TlsExporter(
                tls.get_ref()
                    .1
                    .export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None)
                    .map_err(io_error)?,
            ),
            _ => ChannelBinding::None,
        };
        let pending = initiate_stream(BufStream::new(tls), ns, header(), timeouts).await?;
        Ok((pending, binding))
    }
}

/// A tokio-xmpp client and every stanza it received, answering roster pushes (§2.1.6).
pub struct Tokio {
    pub client: Client,
    /// Every stanza received so far, in order.
    pub seen: Vec<Stanza>,
}

impl Tokio {
    /// Connects and waits until tokio-xmpp reports the session online.
    pub async fn online(server: &TestServer, jid: &str, password: &str) -> (Tokio, Event) {
        let tls = crate::tls::client_config(&server.cert_path());
        let connector = PinnedStartTls {
            addr: server.c2s,
            tls,
        };
        let jid: FullJid = jid.parse().expect("full JID");
        let mut client =
            Client::new_with_connector(jid, password.to_owned(), connector, Timeouts::default());
        let online = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("tokio-xmpp did not come online in time")
            .expect("tokio-xmpp stream ended");
        (
            Tokio {
                client,
                seen: Vec::new(),
            },
            online,
        )
    }

    pub async fn send(&mut self, stanza: impl Into<Stanza>) {
        self.client
            .send_stanza(stanza.into())
            .await
            .expect("tokio-xmpp send");
    }

    /// Roster get through tokio-xmpp's IQ tracker; the `<query/>` of the result.
    pub async fn roster(&mut self) -> Roster {
        let query = Roster {
            ver: None,
            items: Vec::new(),
        };
        let token = self
            .client
            .send_iq(None, IqRequest::Get(Element::from(query)))
            .await;
        // The worker hands responses to the token only while the client is polled.
        let response = tokio::time::timeout(WAIT, async {
            tokio::pin!(token);
            loop {
                tokio::select! {
                    response = &mut token => break response,
                    event = self.client.next() => {
                        if let Some(Event::Stanza(stanza)) = event {
                            self.keep(stanza).await;
                        }
                    }
                }
            }
        })
        .await
        .expect("no roster result in time")
        .expect("roster get failed");
        match response {
            IqResponse::Result(Some(payload)) => Roster::try_from(payload).expect("a roster"),
            other => panic!("roster get answered with {other:?}"),
        }
    }

    pub async fn keep(&mut self, stanza: Stanza) {
        if let Stanza::Iq(Iq::Set { id, payload, .. }) = &stanza {
            if payload.is("query", ROSTER_NS) {
                let result = Iq::Result {
                    from: None,
                    to: None,
                    id: id.clone(),
                    payload: None,
                };
                self.send(result).await;
            }
        }
        self.seen.push(stanza);
    }

    /// The first stanza at or after index `from` of `seen` that `pick` accepts, reading more
    /// until it arrives.
    pub async fn wait_from<T>(
        &mut self,
        from: usize,
        what: &str,
        pick: impl Fn(&Stanza) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut next = from;
        loop {
            while next < self.seen.len() {
                if let Some(found) = pick(&self.seen[next]) {
                    return found;
                }
                next += 1;
            }
            match tokio::time::timeout_at(deadline, self.client.next()).await {
                Ok(Some(Event::Stanza(stanza))) => self.keep(stanza).await,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => panic!(
                    "tokio-xmpp never received {what}; it received:\n{:#?}",
                    self.seen
                ),
            }
        }
    }

    pub async fn wait<T>(&mut self, what: &str, pick: impl Fn(&Stanza) -> Option<T>) -> T {
        self.wait_from(0, what, pick).await
    }

    /// The item for `contact` in a roster push satisfying `pick`.
    pub async fn push(
        &mut self,
        contact: &BareJid,
        what: &str,
        pick: impl Fn(&Subscription, &Ask) -> bool,
    ) {
        self.wait(what, |s| match s {
            Stanza::Iq(Iq::Set { payload, .. }) => Roster::try_from(payload.clone())
                .ok()?
                .items
                .into_iter()
                .find(|i| &i.jid == contact && pick(&i.subscription, &i.ask)),
            _ => None,
        })
        .await;
    }
}
