//! Namespace URIs used on the wire.
//!
//! Kept as plain `&'static str` so they can be compared against [`crate::xml::Element::ns`]
//! without allocation.

/// Content namespace of client-to-server streams (RFC 6120 §4.8.2).
pub const CLIENT: &str = "jabber:client";
/// Content namespace of server-to-server streams (RFC 6120 §4.8.2).
pub const SERVER: &str = "jabber:server";
/// XEP-0220: Server Dialback elements (`db:result`, `db:verify`).
pub const DIALBACK: &str = "jabber:server:dialback";
/// XEP-0220 §2.1: the stream feature that says a server speaks dialback.
pub const DIALBACK_FEATURE: &str = "urn:xmpp:features:dialback";
/// The stream namespace, bound to the `stream` prefix (RFC 6120 §4.8.1).
pub const STREAM: &str = "http://etherx.jabber.org/streams";
/// RFC 7395 §3.3.1: the `<open/>` and `<close/>` framing elements of XMPP over WebSocket.
pub const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
/// The Flash XMLSocket stream namespace, bound to the `flash` prefix (legacy Jabber Inc.).
pub const FLASH: &str = "http://www.jabber.com/streams/flash";
/// Stream error conditions (RFC 6120 §4.9.3).
pub const STREAMS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// Stanza error conditions (RFC 6120 §8.3.3).
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// STARTTLS negotiation (RFC 6120 §5).
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// SASL negotiation (RFC 6120 §6).
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// Resource binding (RFC 6120 §7).
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// Session establishment (RFC 3921 §3, kept as optional by RFC 6121 appendix E).
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// XEP-0199: XMPP Ping.
pub const PING: &str = "urn:xmpp:ping";
/// XEP-0030: Service Discovery, info.
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// XEP-0030: Service Discovery, items.
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// XEP-0077: In-Band Registration.
pub const REGISTER: &str = "jabber:iq:register";
/// XEP-0077: In-Band Registration stream feature.
pub const REGISTER_FEATURE: &str = "http://jabber.org/features/iq-register";
/// XEP-0078: Non-SASL Authentication.
pub const IQ_AUTH: &str = "jabber:iq:auth";
/// XEP-0078: Non-SASL Authentication stream feature.
pub const IQ_AUTH_FEATURE: &str = "http://jabber.org/features/iq-auth";
/// The namespace permanently bound to the `xml` prefix (Namespaces in XML 1.0 §3).
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";
/// Roster management (RFC 6121 §2).
pub const ROSTER: &str = "jabber:iq:roster";
/// XEP-0237 roster versioning stream feature.
pub const ROSTER_VER: &str = "urn:xmpp:features:rosterver";
/// XEP-0203: Delayed Delivery.
pub const DELAY: &str = "urn:xmpp:delay";
/// XEP-0092: Software Version.
pub const VERSION: &str = "jabber:iq:version";
/// XEP-0004: Data Forms.
pub const DATA_FORMS: &str = "jabber:x:data";
/// XEP-0059: Result Set Management.
pub const RSM: &str = "http://jabber.org/protocol/rsm";

/// XEP-0202: Entity Time.
pub const TIME: &str = "urn:xmpp:time";

/// XEP-0012: Last Activity.
pub const LAST: &str = "jabber:iq:last";

/// XEP-0049: Private XML Storage.
pub const PRIVATE: &str = "jabber:iq:private";

/// XEP-0054: vcard-temp.
pub const VCARD: &str = "vcard-temp";

/// XEP-0153: vCard-Based Avatars (the presence element).
pub const VCARD_UPDATE: &str = "vcard-temp:x:update";

/// XEP-0157: the FORM_TYPE of contact addresses in disco#info.
pub const SERVERINFO: &str = "http://jabber.org/network/serverinfo";
/// XEP-0191: Blocking Command.
pub const BLOCKING: &str = "urn:xmpp:blocking";
/// XEP-0191: the application-specific error condition for a stanza to a blocked entity.
pub const BLOCKING_ERRORS: &str = "urn:xmpp:blocking:errors";
/// XEP-0280: Message Carbons.
pub const CARBONS: &str = "urn:xmpp:carbons:2";
/// XEP-0297: Stanza Forwarding.
pub const FORWARD: &str = "urn:xmpp:forward:0";
/// XEP-0334: Message Processing Hints.
pub const HINTS: &str = "urn:xmpp:hints";
/// XEP-0045: Multi-User Chat, the user namespace (marks messages from or to a room's occupants).
pub const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
/// XEP-0352: Client State Indication.
pub const CSI: &str = "urn:xmpp:csi:0";
/// XEP-0115: Entity Capabilities.
pub const CAPS: &str = "http://jabber.org/protocol/caps";
/// XEP-0045: Multi-User Chat, the base namespace (the `<x/>` of a join presence, the
/// service's and rooms' disco feature).
pub const MUC: &str = "http://jabber.org/protocol/muc";
/// XEP-0045: Multi-User Chat, the admin namespace (roles and affiliations, §8, §9).
pub const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
/// XEP-0045: Multi-User Chat, the owner namespace (configuration and destruction, §10).
pub const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
/// XEP-0045: the FORM_TYPE of the room configuration form (§15.5.3).
pub const MUC_ROOMCONFIG: &str = "http://jabber.org/protocol/muc#roomconfig";
/// XEP-0045: the FORM_TYPE of extended room information in disco#info (§15.5.4).
pub const MUC_ROOMINFO: &str = "http://jabber.org/protocol/muc#roominfo";
/// XEP-0045: the FORM_TYPE of the form for registering with a room (§7.10, §15.5.1).
pub const MUC_REGISTER: &str = "http://jabber.org/protocol/muc#register";
/// XEP-0421: Occupant identifiers for semi-anonymous MUCs.
pub const OCCUPANT_ID: &str = "urn:xmpp:occupant-id:0";
/// XEP-0198: Stream Management (its elements and its stream feature).
pub const SM: &str = "urn:xmpp:sm:3";
/// XEP-0313: Message Archive Management.
pub const MAM: &str = "urn:xmpp:mam:2";
/// XEP-0313: the extended query fields (before-id, after-id, ids) and `<flip-page/>`.
pub const MAM_EXTENDED: &str = "urn:xmpp:mam:2#extended";
/// XEP-0359: Unique and Stable Stanza IDs.
pub const SID: &str = "urn:xmpp:sid:0";
/// XEP-0060: Publish-Subscribe, an entity's use cases (publish, retract, items).
pub const PUBSUB: &str = "http://jabber.org/protocol/pubsub";
/// XEP-0060: Publish-Subscribe, the owner's use cases (configure, purge, delete).
pub const PUBSUB_OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
/// XEP-0060: Publish-Subscribe event notifications.
pub const PUBSUB_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
/// XEP-0060: the application-specific error conditions of Publish-Subscribe.
pub const PUBSUB_ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";
/// XEP-0363: HTTP File Upload.
pub const HTTP_UPLOAD: &str = "urn:xmpp:http:upload:0";
/// XEP-0215: External Service Discovery.
pub const EXTDISCO: &str = "urn:xmpp:extdisco:2";
/// XEP-0084: User Avatar, the image data node.
pub const AVATAR_DATA: &str = "urn:xmpp:avatar:data";
/// XEP-0084: User Avatar, the metadata node.
pub const AVATAR_METADATA: &str = "urn:xmpp:avatar:metadata";
/// XEP-0398: the feature of a server that converts between XEP-0084 and XEP-0153 avatars.
pub const PEP_VCARD_CONVERSION: &str = "urn:xmpp:pep-vcard-conversion:0";
/// XEP-0048: Bookmarks, as kept in private XML storage (XEP-0049).
pub const BOOKMARKS_STORAGE: &str = "storage:bookmarks";
/// XEP-0402: PEP Native Bookmarks.
pub const BOOKMARKS2: &str = "urn:xmpp:bookmarks:1";
/// XEP-0411: the feature of a server that keeps XEP-0048 and XEP-0402 bookmarks in step.
pub const BOOKMARKS_CONVERSION: &str = "urn:xmpp:bookmarks-conversion:0";
/// XEP-0402 §5.3: the feature of a server that keeps XEP-0402 bookmarks and XEP-0048
/// bookmarks in private XML storage (XEP-0049) as one list.
pub const BOOKMARKS2_COMPAT: &str = "urn:xmpp:bookmarks:1#compat";
/// XEP-0050: Ad-Hoc Commands.
pub const COMMANDS: &str = "http://jabber.org/protocol/commands";
