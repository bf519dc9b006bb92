//! XEP-0045: Multi-User Chat payloads — the `<x xmlns='…/muc'/>` of a join presence (password,
//! history limits), affiliations and roles, the `<item/>` of `muc#user` and `muc#admin`, the
//! `<x xmlns='…/muc#user'/>` a room adds to what it sends (items, status codes, destroy), and
//! the `<destroy/>` of `muc#owner`, and the `<invite/>`/`<decline/>` of mediated invitations.
//! Read and written; no room logic here.

use crate::delay::parse_datetime;
use crate::ns;
use crate::xml::Element;

/// Why a MUC payload could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MucError {
    /// An `affiliation` that is none of owner, admin, member, none, outcast (§5.2).
    #[error("unknown affiliation {0:?}")]
    UnknownAffiliation(String),
    /// A `role` that is none of moderator, participant, visitor, none (§5.1).
    #[error("unknown role {0:?}")]
    UnknownRole(String),
    /// A history attribute that is not a non-negative number or a DateTime (§7.2.14).
    #[error("bad history attribute {0:?}")]
    BadHistory(String),
}

/// Status codes of `<status code='…'/>` (XEP-0045 §15.6.2), by the name of what they say.
pub mod status {
    /// Any occupant may see the user's full JID (a non-anonymous room).
    pub const NON_ANONYMOUS: u16 = 100;
    /// Configuration changed in a way not about privacy (sent in a message).
    pub const CONFIG_CHANGED: u16 = 104;
    /// The presence is the recipient's own.
    pub const SELF_PRESENCE: u16 = 110;
    /// The room now shows full JIDs to every occupant.
    pub const NOW_NON_ANONYMOUS: u16 = 172;
    /// The room now shows full JIDs to moderators only.
    pub const NOW_SEMI_ANONYMOUS: u16 = 173;
    /// A new room was created.
    pub const ROOM_CREATED: u16 = 201;
    /// The service assigned or modified the occupant's nickname.
    pub const NICK_ASSIGNED: u16 = 210;
    /// The user was banned.
    pub const BANNED: u16 = 301;
    /// The occupant's new nickname (in an unavailable presence).
    pub const NICK_CHANGED: u16 = 303;
    /// The occupant was kicked.
    pub const KICKED: u16 = 307;
    /// Removed because of an affiliation change (a members-only room).
    pub const REMOVED_AFFILIATION: u16 = 321;
    /// Removed because the room became members-only.
    pub const REMOVED_MEMBERS_ONLY: u16 = 322;
    /// Removed because the service is shutting down (system shutdown).
    pub const SYSTEM_SHUTDOWN: u16 = 332;
    /// Removed because of an error reply from the occupant's address.
    pub const REMOVED_ERROR: u16 = 333;
}

/// A long-lived association with a room (§5.2), highest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Affiliation {
    /// Banned.
    Outcast,
    /// No affiliation.
    None,
    /// A member.
    Member,
    /// A room administrator.
    Admin,
    /// A room owner.
    Owner,
}

impl Affiliation {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Affiliation::Owner => "owner",
            Affiliation::Admin => "admin",
            Affiliation::Member => "member",
            Affiliation::None => "none",
            Affiliation::Outcast => "outcast",
        }
    }

    /// The affiliation an attribute value names.
    pub fn parse(value: &str) -> Result<Affiliation, MucError> {
        Ok(match value {
            "owner" => Affiliation::Owner,
            "admin" => Affiliation::Admin,
            "member" => Affiliation::Member,
            "none" => Affiliation::None,
            "outcast" => Affiliation::Outcast,
            other => return Err(MucError::UnknownAffiliation(other.to_owned())),
        })
    }
}

/// A temporary position in a room, while present (§5.1), lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Not in the room.
    None,
    /// Present, without voice.
    Visitor,
    /// Present, with voice.
    Participant,
    /// Present, may kick and grant voice.
    Moderator,
}

impl Role {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Moderator => "moderator",
            Role::Participant => "participant",
            Role::Visitor => "visitor",
            Role::None => "none",
        }
    }

    /// The role an attribute value names.
    pub fn parse(value: &str) -> Result<Role, MucError> {
        Ok(match value {
            "moderator" => Role::Moderator,
            "participant" => Role::Participant,
            "visitor" => Role::Visitor,
            "none" => Role::None,
            other => return Err(MucError::UnknownRole(other.to_owned())),
        })
    }
}

/// How much discussion history an entrant asks for (§7.2.14); every limit given applies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryLimits {
    /// At most this many characters of history, counting the complete stanzas' XML.
    pub maxchars: Option<usize>,
    /// At most this many messages.
    pub maxstanzas: Option<usize>,
    /// Only messages of the last this many seconds.
    pub seconds: Option<u64>,
    /// Only messages since this time (Unix seconds).
    pub since: Option<i64>,
}

/// The `<x xmlns='http://jabber.org/protocol/muc'/>` of a join presence (§7.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Join {
    /// `<password/>` (§7.2.5).
    pub password: Option<String>,
    /// `<history/>` (§7.2.14).
    pub history: HistoryLimits,
}

impl Join {
    /// The join payload of a presence, if it has one (a groupchat 1.0 join has none).
    pub fn from_presence(presence: &Element) -> Option<Result<Join, MucError>> {
        presence.get_child("x", ns::MUC).map(Join::parse)
    }

    /// Reads `<x xmlns='http://jabber.org/protocol/muc'/>`.
    pub fn parse(x: &Element) -> Result<Join, MucError> {
        let mut join = Join {
            password: x.get_child("password", ns::MUC).map(Element::text),
            ..Join::default()
        };
        if let Some(history) = x.get_child("history", ns::MUC) {
            let number = |name: &str| -> Result<Option<u64>, MucError> {
                history
                    .attr(name)
                    .map(|v| {
                        v.trim()
                            .parse::<u64>()
                            .map_err(|_| MucError::BadHistory(v.to_owned()))
                    })
                    .transpose()
            };
            join.history.maxchars = number("maxchars")?.map(saturating_usize);
            join.history.maxstanzas = number("maxstanzas")?.map(saturating_usize);
            join.history.seconds = number("seconds")?;
            join.history.since = history
                .attr("since")
                .map(|v| parse_datetime(v).map_err(|_| MucError::BadHistory(v.to_owned())))
                .transpose()?;
        }
        Ok(join)
    }

    /// Writes the element (what a client sends).
    pub fn to_element(&self) -> Element {
        let mut x = Element::new("x", ns::MUC);
        let limits = &self.history;
        if limits != &HistoryLimits::default() {
            let mut history = Element::new("history", ns::MUC);
            if let Some(n) = limits.maxchars {
                history.set_attr("maxchars", n.to_string());
            }
            if let Some(n) = limits.maxstanzas {
                history.set_attr("maxstanzas", n.to_string());
            }
            if let Some(n) = limits.seconds {
                history.set_attr("seconds", n.to_string());
            }
            if let Some(since) = limits.since {
                history.set_attr("since", crate::delay::datetime(since));
            }
            x.push_child(history);
        }
        if let Some(password) = &self.password {
            x.push_child(Element::new("password", ns::MUC).with_text(password.as_str()));
        }
        x
    }
}

fn saturating_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// An `<item/>` of `muc#user` (what a room says about an occupant) or `muc#admin` (a change
/// or a list entry, §9, §10).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Item {
    /// `affiliation`.
    pub affiliation: Option<Affiliation>,
    /// `role`.
    pub role: Option<Role>,
    /// `jid`: a real JID.
    pub jid: Option<String>,
    /// `nick`.
    pub nick: Option<String>,
    /// `<actor nick='…'/>`: who made the change.
    pub actor: Option<String>,
    /// `<reason/>`.
    pub reason: Option<String>,
}

impl Item {
    /// Reads an `<item/>` of namespace `ns` (its children must be in it too).
    pub fn parse(el: &Element) -> Result<Item, MucError> {
        let ns = el.ns();
        Ok(Item {
            affiliation: el.attr("affiliation").map(Affiliation::parse).transpose()?,
            role: el.attr("role").map(Role::parse).transpose()?,
            jid: el.attr("jid").map(str::to_owned),
            nick: el.attr("nick").map(str::to_owned),
            actor: el
                .get_child("actor", ns)
                .and_then(|a| a.attr("nick"))
                .map(str::to_owned),
            reason: el.get_child("reason", ns).map(Element::text),
        })
    }

    /// Writes the `<item/>` in namespace `ns` (`muc#user` or `muc#admin`).
    pub fn to_element(&self, ns: &str) -> Element {
        let mut el = Element::new("item", ns);
        if let Some(affiliation) = self.affiliation {
            el.set_attr("affiliation", affiliation.as_str());
        }
        if let Some(jid) = &self.jid {
            el.set_attr("jid", jid.as_str());
        }
        if let Some(nick) = &self.nick {
            el.set_attr("nick", nick.as_str());
        }
        if let Some(role) = self.role {
            el.set_attr("role", role.as_str());
        }
        if let Some(actor) = &self.actor {
            el.push_child(Element::new("actor", ns).with_attr("nick", actor.as_str()));
        }
        if let Some(reason) = &self.reason {
            el.push_child(Element::new("reason", ns).with_text(reason.as_str()));
        }
        el
    }
}

/// `<destroy jid='…'><reason/></destroy>` (§10.9): in `muc#owner` from the owner, in
/// `muc#user` to the occupants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Destroy {
    /// An alternate venue.
    pub jid: Option<String>,
    /// Why.
    pub reason: Option<String>,
}

impl Destroy {
    /// Reads a `<destroy/>` (its `<reason/>` in the same namespace).
    pub fn parse(el: &Element) -> Destroy {
        Destroy {
            jid: el.attr("jid").map(str::to_owned),
            reason: el.get_child("reason", el.ns()).map(Element::text),
        }
    }

    /// Writes the element in namespace `ns`.
    pub fn to_element(&self, ns: &str) -> Element {
        let mut el = Element::new("destroy", ns);
        if let Some(jid) = &self.jid {
            el.set_attr("jid", jid.as_str());
        }
        if let Some(reason) = &self.reason {
            el.push_child(Element::new("reason", ns).with_text(reason.as_str()));
        }
        el
    }
}

/// `<x xmlns='http://jabber.org/protocol/muc#user'/>` as a room sends it (§15.6.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserX {
    /// The occupant's items.
    pub items: Vec<Item>,
    /// Status codes, in the order written.
    pub statuses: Vec<u16>,
    /// The room is being destroyed.
    pub destroy: Option<Destroy>,
}

impl UserX {
    /// Reads the element (what a client receives).
    pub fn parse(x: &Element) -> Result<UserX, MucError> {
        let mut user = UserX::default();
        for child in x.children().filter(|c| c.ns() == ns::MUC_USER) {
            match child.name() {
                "item" => user.items.push(Item::parse(child)?),
                "status" => {
                    if let Some(code) = child.attr("code").and_then(|c| c.parse().ok()) {
                        user.statuses.push(code);
                    }
                }
                "destroy" => user.destroy = Some(Destroy::parse(child)),
                _ => {}
            }
        }
        Ok(user)
    }

    /// Writes the element: destroy, items, then status codes (the order of the §15.6.2
    /// schema's examples).
    pub fn to_element(&self) -> Element {
        let mut x = Element::new("x", ns::MUC_USER);
        if let Some(destroy) = &self.destroy {
            x.push_child(destroy.to_element(ns::MUC_USER));
        }
        for item in &self.items {
            x.push_child(item.to_element(ns::MUC_USER));
        }
        for code in &self.statuses {
            x.push_child(Element::new("status", ns::MUC_USER).with_attr("code", code.to_string()));
        }
        x
    }
}

/// Which half of a mediated invitation (§7.8.2) an element is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitationKind {
    /// `<invite/>`: from an occupant to the room (`to` the invitee), or from the room to the
    /// invitee (`from` the inviter).
    Invite,
    /// `<decline/>`: from the invitee to the room (`to` the inviter), or from the room to the
    /// inviter (`from` the invitee).
    Decline,
}

/// An `<invite/>` or `<decline/>` of `muc#user` (§7.8.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    /// Invite or decline.
    pub kind: InvitationKind,
    /// `to`: whom the room is to send it to.
    pub to: Option<String>,
    /// `from`: whom the room sends it for.
    pub from: Option<String>,
    /// `<reason/>`.
    pub reason: Option<String>,
    /// `<continue/>` (§7.9): the invitation carries a one-to-one chat on in the room.
    pub continues: Option<Continue>,
}

/// An invitation's `<continue/>` (XEP-0045 §7.9), naming the one-to-one chat's thread if
/// the inviter gave it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Continue {
    /// `thread`.
    pub thread: Option<String>,
}

impl Invitation {
    /// An invitation or decline with no addresses yet.
    pub fn new(kind: InvitationKind) -> Invitation {
        Invitation {
            kind,
            to: None,
            from: None,
            reason: None,
            continues: None,
        }
    }

    /// Every `<invite/>` and `<decline/>` of a `muc#user` `<x/>`, in order (§7.8.2: one
    /// message may invite several).
    pub fn all(x: &Element) -> Vec<Invitation> {
        x.children().filter_map(Invitation::parse).collect()
    }

    /// Reads an `<invite/>` or `<decline/>` of `muc#user`; `None` for any other element.
    pub fn parse(el: &Element) -> Option<Invitation> {
        let kind = match (el.ns(), el.name()) {
            (ns::MUC_USER, "invite") => InvitationKind::Invite,
            (ns::MUC_USER, "decline") => InvitationKind::Decline,
            _ => return None,
        };
        Some(Invitation {
            kind,
            to: el.attr("to").map(str::to_owned),
            from: el.attr("from").map(str::to_owned),
            reason: el.get_child("reason", ns::MUC_USER).map(Element::text),
            continues: el.get_child("continue", ns::MUC_USER).map(|c| Continue {
                thread: c.attr("thread").map(str::to_owned),
            }),
        })
    }

    /// Writes the element, in `muc#user`.
    pub fn to_element(&self) -> Element {
        let name = match self.kind {
            InvitationKind::Invite => "invite",
            InvitationKind::Decline => "decline",
        };
        let mut el = Element::new(name, ns::MUC_USER);
        if let Some(from) = &self.from {
            el.set_attr("from", from.as_str());
        }
        if let Some(to) = &self.to {
            el.set_attr("to", to.as_str());
        }
        if let Some(reason) = &self.reason {
            el.push_child(Element::new("reason", ns::MUC_USER).with_text(reason.as_str()));
        }
        if let Some(continues) = &self.continues {
            let mut c = Element::new("continue", ns::MUC_USER);
            if let Some(thread) = &continues.thread {
                c.set_attr("thread", thread.as_str());
            }
            el.push_child(c);
        }
        el
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_stanza;

    fn element(xml: &str) -> Element {
        parse_stanza(xml.as_bytes()).unwrap()
    }

    #[test]
    fn join_with_password_and_every_history_limit() {
        // §7.2.5 and §7.2.14's examples, in one element.
        let presence = element(concat!(
            "<presence xmlns='jabber:client' to='coven@chat.shakespeare.lit/thirdwitch'>",
            "<x xmlns='http://jabber.org/protocol/muc'>",
            "<history maxchars='65000' maxstanzas='20' seconds='180' since='1970-01-01T00:00:10Z'/>",
            "<password>cauldronburn</password></x></presence>"
        ));
        let join = Join::from_presence(&presence).unwrap().unwrap();
        assert_eq!(join.password.as_deref(), Some("cauldronburn"));
        assert_eq!(
            join.history,
            HistoryLimits {
                maxchars: Some(65000),
                maxstanzas: Some(20),
                seconds: Some(180),
                since: Some(10),
            }
        );
        assert_eq!(Join::parse(&join.to_element()).unwrap(), join);
    }

    #[test]
    fn groupchat_1_0_join_has_no_payload_and_bad_limits_are_refused() {
        let old = element("<presence xmlns='jabber:client' to='room@muc.example/nick'/>");
        assert!(Join::from_presence(&old).is_none());
        let bad =
            element("<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='-1'/></x>");
        assert_eq!(
            Join::parse(&bad),
            Err(MucError::BadHistory("-1".to_owned()))
        );
        let bad =
            element("<x xmlns='http://jabber.org/protocol/muc'><history since='yesterday'/></x>");
        assert!(Join::parse(&bad).is_err());
    }

    #[test]
    fn affiliations_and_roles_order_and_names() {
        assert!(Affiliation::Owner > Affiliation::Admin);
        assert!(Affiliation::Member > Affiliation::None);
        assert!(Affiliation::None > Affiliation::Outcast);
        assert!(Role::Moderator > Role::Participant && Role::Participant > Role::Visitor);
        for a in ["owner", "admin", "member", "none", "outcast"] {
            assert_eq!(Affiliation::parse(a).unwrap().as_str(), a);
        }
        for r in ["moderator", "participant", "visitor", "none"] {
            assert_eq!(Role::parse(r).unwrap().as_str(), r);
        }
        assert_eq!(
            Affiliation::parse("king"),
            Err(MucError::UnknownAffiliation("king".to_owned()))
        );
        assert!(Role::parse("").is_err());
    }

    #[test]
    fn user_x_as_a_kick_notification() {
        // §8.2's example: the kicked occupant's own unavailable presence.
        let x = UserX {
            items: vec![Item {
                affiliation: Some(Affiliation::None),
                role: Some(Role::None),
                actor: Some("thirdwitch".to_owned()),
                reason: Some("Avaunt, you cullion!".to_owned()),
                ..Item::default()
            }],
            statuses: vec![status::KICKED, status::SELF_PRESENCE],
            destroy: None,
        };
        let xml = x.to_element().to_string();
        assert_eq!(
            xml,
            concat!(
                r#"<x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="none">"#,
                r#"<actor nick="thirdwitch"/><reason>Avaunt, you cullion!</reason></item>"#,
                r#"<status code="307"/><status code="110"/></x>"#
            )
        );
        assert_eq!(UserX::parse(&element(&xml)).unwrap(), x);
    }

    #[test]
    fn admin_item_and_destroy() {
        let item = element(concat!(
            "<item xmlns='http://jabber.org/protocol/muc#admin' affiliation='outcast' ",
            "jid='earlofcambridge@shakespeare.lit'><reason>Treason</reason></item>"
        ));
        let item = Item::parse(&item).unwrap();
        assert_eq!(item.affiliation, Some(Affiliation::Outcast));
        assert_eq!(item.jid.as_deref(), Some("earlofcambridge@shakespeare.lit"));
        assert_eq!(item.reason.as_deref(), Some("Treason"));
        assert_eq!(item.role, None);

        let destroy = element(concat!(
            "<destroy xmlns='http://jabber.org/protocol/muc#owner' jid='coven@chat.shakespeare.lit'>",
            "<reason>Macbeth doth come.</reason></destroy>"
        ));
        let destroy = Destroy::parse(&destroy);
        assert_eq!(destroy.jid.as_deref(), Some("coven@chat.shakespeare.lit"));
        assert_eq!(destroy.reason.as_deref(), Some("Macbeth doth come."));
        let user = destroy.to_element(ns::MUC_USER);
        assert_eq!(Destroy::parse(&user), destroy);
    }

    #[test]
    fn invitations_and_declines() {
        // §7.8.2's examples: an occupant invites two, the invitee declines.
        let x = element(concat!(
            "<x xmlns='http://jabber.org/protocol/muc#user'>",
            "<invite to='hecate@shakespeare.lit'><reason>Hey Hecate</reason></invite>",
            "<invite to='wiccarocks@shakespeare.lit/laptop'/><status code='110'/></x>"
        ));
        let all = Invitation::all(&x);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].kind, InvitationKind::Invite);
        assert_eq!(all[0].to.as_deref(), Some("hecate@shakespeare.lit"));
        assert_eq!(all[0].reason.as_deref(), Some("Hey Hecate"));
        assert_eq!(all[1].reason, None);

        let decline = element(concat!(
            "<decline xmlns='http://jabber.org/protocol/muc#user' to='crone1@shakespeare.lit'>",
            "<reason>Sorry, I'm too busy right now.</reason></decline>"
        ));
        let decline = Invitation::parse(&decline).unwrap();
        assert_eq!(decline.kind, InvitationKind::Decline);
        assert_eq!(decline.to.as_deref(), Some("crone1@shakespeare.lit"));
        // What the room sends on: from the invitee, in the same shape.
        let forwarded = Invitation {
            to: None,
            from: Some("hecate@shakespeare.lit".to_owned()),
            ..decline
        };
        assert_eq!(
            forwarded.to_element().to_string(),
            concat!(
                r#"<decline xmlns="http://jabber.org/protocol/muc#user" from="hecate@shakespeare.lit">"#,
                r#"<reason>Sorry, I'm too busy right now.</reason></decline>"#
            )
        );
        assert_eq!(Invitation::parse(&forwarded.to_element()), Some(forwarded));
        // §7.9: an invitation continuing a one-to-one chat keeps its <continue/> and thread.
        let continued = element(concat!(
            "<invite xmlns='http://jabber.org/protocol/muc#user' to='wiccarocks@shakespeare.lit/laptop'>",
            "<reason>This coven needs both.</reason><continue thread='e0ffe42b28561960c6b12b944a092794b9683a38'/></invite>"
        ));
        let continued = Invitation::parse(&continued).unwrap();
        assert_eq!(
            continued.continues,
            Some(Continue {
                thread: Some("e0ffe42b28561960c6b12b944a092794b9683a38".to_owned())
            })
        );
        let bare_continue =
            element("<invite xmlns='http://jabber.org/protocol/muc#user'><continue/></invite>");
        let bare_continue = Invitation::parse(&bare_continue).unwrap();
        assert_eq!(bare_continue.continues, Some(Continue::default()));
        assert_eq!(
            bare_continue.to_element().to_string(),
            r#"<invite xmlns="http://jabber.org/protocol/muc#user"><continue/></invite>"#
        );
        assert_eq!(Invitation::parse(&continued.to_element()), Some(continued));
        assert_eq!(all[0].continues, None);
        assert_eq!(
            Invitation::parse(&element(
                "<status xmlns='http://jabber.org/protocol/muc#user'/>"
            )),
            None
        );
    }
}
