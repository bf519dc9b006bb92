//! XMPP wire format for Jabberwock, without any I/O.
//!
//! Callers feed bytes received from a peer into [`xml::reader::StreamReader`] and get
//! stream headers, stanzas (as [`xml::Element`] trees) and the stream close back; they
//! build replies as elements and serialise them with [`xml::Element::write_to`]. Nothing
//! here touches a socket, a clock or a task runtime, so every rule is testable offline.
//!
//! Errors are typed: peer faults become a [`stream::StreamError`] carrying the RFC 6120
//! §4.9.3 condition to send before closing, or a [`stanza::StanzaError`] (RFC 6120 §8.3)
//! to bounce to the sender.
//!
//! # Layout
//!
//! - [`ns`]: namespace URI constants.
//! - [`jid`]: re-export of the `jid` crate (RFC 7622) plus resource validation for binding.
//! - [`xml`]: the element tree, escaping and serialisation, and the incremental
//!   [`xml::reader`] (a byte scanner that frames units, then quick-xml parses each once).
//! - [`stream`]: stream headers (XMPP and Flash dialects), the server's header and close,
//!   stream errors.
//! - [`stanza`]: message / presence / iq wrapper, replies, stanza errors, and the shared
//!   stanza (one stanza for many recipients, serialised once per form).
//! - [`sasl`]: SASL negotiation elements (RFC 6120 §6.4).
//! - [`scram`]: the client's SCRAM messages (RFC 5802).
//! - [`bosh`]: the BOSH `<body/>` wrapper (XEP-0124, XEP-0206).
//! - [`policy`]: the Flash socket policy request and document.
//! - [`delay`]: XEP-0203 delay stamps (XEP-0082 date-times to and from Unix seconds).
//! - [`forms`]: XEP-0004 data forms.
//! - [`caps`]: XEP-0115 entity capabilities (the `<c/>` element, the verification string).
//! - [`rsm`]: XEP-0059 result set management.
//! - [`mam`]: XEP-0313 archive queries, results, preferences, and XEP-0359 stanza ids.
//! - [`muc`]: XEP-0045 multi-user chat payloads (join, items, status codes, destroy,
//!   invitations and declines).
//! - [`pubsub`]: XEP-0060 publish-subscribe requests, results, errors and event
//!   notifications (what XEP-0163 personal eventing answers); [`pubsub_authorization`]:
//!   the owner's approval of pending subscriptions and affiliation change messages.
//! - [`upload`]: XEP-0363 HTTP file upload slot requests, slots and the `file-too-large`
//!   condition.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bookmarks;
pub mod bosh;
pub mod caps;
pub mod commands;
/// XEP-0203 delay stamps.
pub mod delay;
pub mod dialback;
pub mod extdisco;
pub mod forms;
pub mod jid;
pub mod mam;
pub mod muc;
pub mod ns;
pub mod policy;
pub mod pubsub;
pub mod pubsub_authorization;
pub mod rsm;
pub mod sasl;
pub mod scram;
pub mod sm;
pub mod stanza;
pub mod stream;
pub mod upload;
pub mod xml;
