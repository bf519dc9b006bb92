//! Helpers for the XEP-0045 tests: raw clients logged in, entering rooms and reading what
//! entering brings (the occupants' presence, one's own, the history, the subject).

use crate::slix::SlixIm;
use crate::{RawClient, TestServer};

/// The MUC service of `localhost`.
pub const SERVICE: &str = "conference.localhost";

pub const DISCO_INFO: &str = "<query xmlns='http://jabber.org/protocol/disco#info'/>";
pub const DISCO_ITEMS: &str = "<query xmlns='http://jabber.org/protocol/disco#items'/>";

/// A `muc#user` status code as the server writes it.
pub fn status(code: u16) -> String {
    format!("<status code=\"{code}\"/>")
}

/// A groupchat message to `room` with `body`.
pub fn groupchat(room: &str, body: &str) -> String {
    format!("<message type='groupchat' to='{room}@{SERVICE}'><body>{body}</body></message>")
}

/// slixmpp's xep_0045 client (`tests/clients/slix_muc.py`) as `user`, created with password
/// `pw-USER`, logged in and available.
pub async fn slix(server: &TestServer, user: &str) -> SlixIm {
    let password = format!("pw-{user}");
    server.add_user(&format!("{user}@localhost"), &password);
    let jid = format!("{user}@localhost/slix");
    SlixIm::available(server, "slix_muc.py", &jid, &password).await
}

/// Has slixmpp's client `client` enter `room` (a room JID) as `nick`; returns the command's
/// answer (the statuses and the others' nicknames, or the refusal's condition).
pub async fn slix_join(client: &mut SlixIm, room: &str, nick: &str) -> String {
    client
        .command(&format!(
            r#"{{"cmd": "join", "room": "{room}", "nick": "{nick}"}}"#
        ))
        .await
}

/// The names slixmpp's client finds for `room`'s `x-roomuser-item` node (XEP-0045 §7.12):
/// the command's answer, with `"names"`.
pub async fn slix_reserved_nick(client: &mut SlixIm, room: &str) -> String {
    client
        .command(&format!(r#"{{"cmd": "reserved_nick", "room": "{room}"}}"#))
        .await
}

/// The JIDs slixmpp's client gets for `room`'s list of `affiliation` (§9.5): the command's
/// answer, with `"jids"`.
pub async fn slix_affiliations(client: &mut SlixIm, room: &str, affiliation: &str) -> String {
    client
        .command(&format!(
            r#"{{"cmd": "affiliations", "room": "{room}", "affiliation": "{affiliation}"}}"#
        ))
        .await
}

/// Creates each user (password `pw-NAME`) and logs it in over STARTTLS as `NAME@localhost/desk`,
/// available.
pub async fn log_in(server: &TestServer, names: &[&str]) -> Vec<RawClient> {
    for name in names {
        server.add_user(&format!("{name}@localhost"), &format!("pw-{name}"));
    }
    log_in_again(server, names).await
}

/// Logs in users [`log_in`] created (after a restart, say), the same way.
pub async fn log_in_again(server: &TestServer, names: &[&str]) -> Vec<RawClient> {
    let mut clients = Vec::new();
    for name in names {
        let (client, _) = RawClient::login_standard(
            server.c2s,
            &server.cert_path(),
            name,
            &format!("pw-{name}"),
            "desk",
        )
        .await;
        clients.push(client);
    }
    clients
}

/// `room@conference.localhost`.
pub fn room_jid(room: &str) -> String {
    format!("{room}@{SERVICE}")
}

/// `room@conference.localhost/nick`.
pub fn occupant(room: &str, nick: &str) -> String {
    format!("{room}@{SERVICE}/{nick}")
}

/// Sends a join presence to `room` as `nick` with `x` as its MUC payload (`None`: a
/// groupchat 1.0 join, no `<x/>`); `sep` ends the unit ("\0" for Flash).
pub async fn send_join(client: &mut RawClient, room: &str, nick: &str, x: Option<&str>, sep: &str) {
    let to = occupant(room, nick);
    let presence = match x {
        Some(x) => format!("<presence to='{to}'>{x}</presence>{sep}"),
        None => format!("<presence to='{to}'/>{sep}"),
    };
    client.send(presence).await;
}

/// The plain MUC payload of a join.
pub const MUC_X: &str = "<x xmlns='http://jabber.org/protocol/muc'/>";

/// Every stanza up to and including the room's subject message, which ends a successful
/// entry (XEP-0045 §7.2.15).
pub async fn until_subject(client: &mut RawClient) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let stanza = client.read_stanza().await;
        let done = stanza.starts_with("<message") && stanza.contains("<subject");
        got.push(stanza);
        if done {
            return got;
        }
    }
}

/// Enters `room` (with the MUC payload) and returns what entering brought.
pub async fn enter(client: &mut RawClient, room: &str, nick: &str) -> Vec<String> {
    send_join(client, room, nick, Some(MUC_X), "").await;
    until_subject(client).await
}

/// Creates `room` with `owner` as `nick` and makes it an instant room (§10.1.2: an empty
/// submitted form), so others may enter.
pub async fn instant_room(owner: &mut RawClient, room: &str, nick: &str) -> Vec<String> {
    instant_room_at(owner, &room_jid(room), nick).await
}

/// [`instant_room`] for a room of any service: `room` is the room's bare JID.
pub async fn instant_room_at(owner: &mut RawClient, room: &str, nick: &str) -> Vec<String> {
    owner
        .send(format!("<presence to='{room}/{nick}'>{MUC_X}</presence>"))
        .await;
    let entered = until_subject(owner).await;
    owner
        .send(format!(
            "<iq type='set' id='instant-{room}' to='{room}'>\
             <query xmlns='http://jabber.org/protocol/muc#owner'>\
             <x xmlns='jabber:x:data' type='submit'/></query></iq>"
        ))
        .await;
    let answer = owner
        .read_stanza_containing(&format!("id=\"instant-{room}\""))
        .await;
    assert!(answer.contains("type=\"result\""), "{answer}");
    entered
}

/// The room's JID and a submitted configuration form with these fields.
fn config_form(room: &str, fields: &[(&str, &str)]) -> (String, String) {
    let fields: String = fields
        .iter()
        .map(|(var, value)| {
            format!("<field var='muc#roomconfig_{var}'><value>{value}</value></field>")
        })
        .collect();
    (
        format!("{room}@{SERVICE}"),
        format!(
            "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
             {fields}</x></query>"
        ),
    )
}

/// Submits the configuration form (`config_form`) as `owner`; asserts it was accepted.
pub async fn configure(owner: &mut RawClient, room: &str, id: &str, fields: &[(&str, &str)]) {
    let (to, payload) = config_form(room, fields);
    let answer = iq(owner, id, "set", &to, &payload).await;
    assert!(answer.contains("type=\"result\""), "{answer}");
}

/// A `muc#admin` query holding `item`.
pub fn admin_item(item: &str) -> String {
    format!("<query xmlns='http://jabber.org/protocol/muc#admin'>{item}</query>")
}

/// An IQ to `to` with `payload`; returns the answer.
pub async fn iq(client: &mut RawClient, id: &str, kind: &str, to: &str, payload: &str) -> String {
    client
        .send(format!(
            "<iq type='{kind}' id='{id}' to='{to}'>{payload}</iq>"
        ))
        .await;
    client.read_stanza_containing(&format!("id=\"{id}\"")).await
}

/// A mediated invitation (XEP-0045 §7.8.2) to `room` for `invitee`, as an occupant sends it.
pub fn invitation(room: &str, id: &str, invitee: &str, reason: &str) -> String {
    format!(
        "<message to='{room}@{SERVICE}' id='{id}'><x xmlns='http://jabber.org/protocol/muc#user'>\
         <invite to='{invitee}'><reason>{reason}</reason></invite></x></message>"
    )
}

/// The id of the XEP-0421 `<occupant-id/>` in a stanza the room sent, asserting there is
/// exactly one.
pub fn occupant_id(stanza: &str) -> String {
    const TAG: &str = "<occupant-id xmlns=\"urn:xmpp:occupant-id:0\" id=\"";
    assert_eq!(stanza.matches("<occupant-id").count(), 1, "{stanza}");
    let start = stanza.find(TAG).unwrap_or_else(|| panic!("{stanza}")) + TAG.len();
    let len = stanza[start..]
        .find('"')
        .unwrap_or_else(|| panic!("{stanza}"));
    stanza[start..start + len].to_owned()
}
