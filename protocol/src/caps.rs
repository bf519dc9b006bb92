//! XEP-0115: Entity Capabilities. The `<c/>` element an entity puts in its presence (or, for
//! a server, in its stream features, §6.3), and the verification string (§5.1) that names a
//! disco#info result by a hash of it, so that a peer asks for the info once per `ver`.

use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::forms::{DataForm, FieldType, FORM_TYPE};
use crate::ns;
use crate::xml::Element;

/// Why a disco#info result has no verification string: §5.4 step 3 calls it ill-formed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CapsError {
    /// The element is not a `<query xmlns='http://jabber.org/protocol/disco#info'/>`.
    #[error("not a disco#info query")]
    NotDiscoInfo,
    /// An `<identity/>` without its `category` or `type`.
    #[error("an identity lacks its category or type")]
    IncompleteIdentity,
    /// A `<feature/>` without its `var`.
    #[error("a feature lacks its var")]
    IncompleteFeature,
    /// Two identities with the same category, type, language and name.
    #[error("identity {0} is listed twice")]
    DuplicateIdentity(String),
    /// Two features with the same `var`.
    #[error("feature {0} is listed twice")]
    DuplicateFeature(String),
    /// Two extension forms with the same `FORM_TYPE`.
    #[error("two extension forms have FORM_TYPE {0}")]
    DuplicateFormType(String),
    /// A `FORM_TYPE` field with values that differ.
    #[error("a FORM_TYPE field has more than one value")]
    AmbiguousFormType,
    /// An extension form that does not parse as a data form.
    #[error("an extension form is not a data form")]
    BadForm,
}

/// The only hash function this crate computes, named as in §5.1 step 8 (the IANA name).
pub const SHA_1: &str = "sha-1";

/// A `<c xmlns='http://jabber.org/protocol/caps'/>` (§4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caps {
    /// The hash function's IANA name; `None` in the legacy format (before version 1.4),
    /// whose `ver` is not a hash.
    pub hash: Option<String>,
    /// A URI naming the software (e.g. its home page).
    pub node: String,
    /// The verification string's hash, base64.
    pub ver: String,
}

impl Caps {
    /// Reads `<c/>`; `None` if it lacks `node` or `ver`, which §4 requires.
    pub fn parse(el: &Element) -> Option<Caps> {
        if !el.is("c", ns::CAPS) {
            return None;
        }
        Some(Caps {
            hash: el.attr("hash").map(str::to_owned),
            node: el.attr("node")?.to_owned(),
            ver: el.attr("ver")?.to_owned(),
        })
    }

    /// Writes `<c/>`.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("c", ns::CAPS);
        if let Some(hash) = &self.hash {
            el.set_attr("hash", hash.as_str());
        }
        el.with_attr("node", self.node.as_str())
            .with_attr("ver", self.ver.as_str())
    }

    /// The disco#info node under which the entity answers for this `ver` (§6.2).
    pub fn disco_node(&self) -> String {
        format!("{}#{}", self.node, self.ver)
    }
}

/// §5.1 steps 1–7: the verification string of a disco#info `<query/>`. Character data goes
/// in as it is (no XML escaping), each item followed by `<`, which XML character data can
/// never hold unescaped: items cannot run into one another.
pub fn verification_string(info: &Element) -> Result<String, CapsError> {
    if !info.is("query", ns::DISCO_INFO) {
        return Err(CapsError::NotDiscoInfo);
    }
    let mut s = String::new();

    // Steps 2–3: identities sorted by category, then type, then xml:lang (then name, which
    // only duplicates, rejected below, would share).
    let mut identities = Vec::new();
    for el in info.children().filter(|c| c.is("identity", ns::DISCO_INFO)) {
        let (Some(category), Some(kind)) = (el.attr("category"), el.attr("type")) else {
            return Err(CapsError::IncompleteIdentity);
        };
        let lang = el.attr("xml:lang").unwrap_or("");
        let name = el.attr("name").unwrap_or("");
        identities.push([category, kind, lang, name]);
    }
    identities.sort_unstable();
    if let Some(twice) = identities.windows(2).find(|w| w[0] == w[1]) {
        return Err(CapsError::DuplicateIdentity(twice[0].join("/")));
    }
    for identity in &identities {
        s.push_str(&identity.join("/"));
        s.push('<');
    }

    // Steps 4–5: features sorted.
    let mut features = Vec::new();
    for el in info.children().filter(|c| c.is("feature", ns::DISCO_INFO)) {
        features.push(el.attr("var").ok_or(CapsError::IncompleteFeature)?);
    }
    features.sort_unstable();
    if let Some(twice) = features.windows(2).find(|w| w[0] == w[1]) {
        return Err(CapsError::DuplicateFeature(twice[0].to_owned()));
    }
    for feature in features {
        s.push_str(feature);
        s.push('<');
    }

    // Step 6: XEP-0128 forms sorted by FORM_TYPE; in each, the fields other than FORM_TYPE
    // sorted by var, each followed by its values sorted.
    let mut forms = Vec::new();
    for el in info.children().filter(|c| c.is("x", ns::DATA_FORMS)) {
        let form = DataForm::parse(el).map_err(|_| CapsError::BadForm)?;
        let Some(field) = form.field(FORM_TYPE) else {
            // XEP-0128 §3: a form without FORM_TYPE has no meaning here; left out.
            continue;
        };
        // §5.4 step 3.5: a FORM_TYPE that is not hidden: the form is ignored.
        if field.field_type != Some(FieldType::Hidden) {
            continue;
        }
        let form_type = field.value().unwrap_or("").to_owned();
        if field.values.iter().any(|v| *v != form_type) {
            return Err(CapsError::AmbiguousFormType);
        }
        forms.push((form_type, form));
    }
    forms.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if let Some(twice) = forms.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(CapsError::DuplicateFormType(twice[0].0.clone()));
    }
    for (form_type, form) in &forms {
        s.push_str(form_type);
        s.push('<');
        let mut fields: Vec<_> = form
            .fields
            .iter()
            .filter_map(|f| Some((f.var.as_deref()?, f)))
            .filter(|(var, _)| *var != FORM_TYPE)
            .collect();
        fields.sort_by(|a, b| a.0.cmp(b.0));
        for (var, field) in fields {
            s.push_str(var);
            s.push('<');
            let mut values: Vec<&str> = field.values.iter().map(String::as_str).collect();
            values.sort_unstable();
            for value in values {
                s.push_str(value);
                s.push('<');
            }
        }
    }
    Ok(s)
}

/// §5.1 steps 8–9: the SHA-1 of a verification string (its UTF-8 bytes), base64 (RFC 4648
/// §4, with padding): the `ver` attribute.
pub fn sha1_ver(verification_string: &str) -> String {
    let digest = Sha1::digest(verification_string.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// The SHA-1 `ver` of a disco#info `<query/>`.
pub fn ver(info: &Element) -> Result<String, CapsError> {
    verification_string(info).map(|s| sha1_ver(&s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_stanza;

    fn element(xml: &str) -> Element {
        parse_stanza(xml.as_bytes()).unwrap()
    }

    /// §5.2, the simple example: one identity, four features.
    const SIMPLE: &str = concat!(
        "<query xmlns='http://jabber.org/protocol/disco#info'>",
        "<identity category='client' name='Exodus 0.9.1' type='pc'/>",
        "<feature var='http://jabber.org/protocol/caps'/>",
        "<feature var='http://jabber.org/protocol/disco#info'/>",
        "<feature var='http://jabber.org/protocol/disco#items'/>",
        "<feature var='http://jabber.org/protocol/muc'/>",
        "</query>"
    );

    /// §5.3, the complex example: identities in two languages (listed out of order), a
    /// software information form (fields out of order, a field with two values).
    const COMPLEX: &str = concat!(
        "<query xmlns='http://jabber.org/protocol/disco#info'>",
        "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>",
        "<identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>",
        "<feature var='http://jabber.org/protocol/caps'/>",
        "<feature var='http://jabber.org/protocol/disco#info'/>",
        "<feature var='http://jabber.org/protocol/disco#items'/>",
        "<feature var='http://jabber.org/protocol/muc'/>",
        "<x xmlns='jabber:x:data' type='result'>",
        "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>",
        "<field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>",
        "<field var='os'><value>Mac</value></field>",
        "<field var='os_version'><value>10.5.1</value></field>",
        "<field var='software'><value>Psi</value></field>",
        "<field var='software_version'><value>0.11</value></field>",
        "</x>",
        "</query>"
    );

    #[test]
    fn simple_example() {
        let info = element(SIMPLE);
        assert_eq!(
            verification_string(&info).unwrap(),
            "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<\
             http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<\
             http://jabber.org/protocol/muc<"
        );
        assert_eq!(ver(&info).unwrap(), "QgayPKawpkPSDYmwT/WM94uAlu0=");
    }

    #[test]
    fn complex_example() {
        let info = element(COMPLEX);
        assert_eq!(
            verification_string(&info).unwrap(),
            "client/pc/el/Ψ 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<\
             http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<\
             http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<\
             ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<\
             software_version<0.11<"
        );
        assert_eq!(ver(&info).unwrap(), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
    }

    #[test]
    fn order_on_the_wire_does_not_matter() {
        let shuffled = element(concat!(
            "<query xmlns='http://jabber.org/protocol/disco#info'>",
            "<feature var='http://jabber.org/protocol/muc'/>",
            "<feature var='http://jabber.org/protocol/disco#items'/>",
            "<identity category='client' name='Exodus 0.9.1' type='pc'/>",
            "<feature var='http://jabber.org/protocol/caps'/>",
            "<feature var='http://jabber.org/protocol/disco#info'/>",
            "</query>"
        ));
        assert_eq!(ver(&shuffled).unwrap(), ver(&element(SIMPLE)).unwrap());
    }

    #[test]
    fn character_data_is_not_escaped() {
        let info = element(concat!(
            "<query xmlns='http://jabber.org/protocol/disco#info'>",
            "<identity category='client' name='A &amp; B &lt;3' type='pc'/>",
            "</query>"
        ));
        assert_eq!(verification_string(&info).unwrap(), "client/pc//A & B <3<");
    }

    #[test]
    fn ill_formed_results_have_no_ver() {
        let twice = element(concat!(
            "<query xmlns='http://jabber.org/protocol/disco#info'>",
            "<feature var='urn:a'/><feature var='urn:a'/>",
            "</query>"
        ));
        assert_eq!(
            ver(&twice),
            Err(CapsError::DuplicateFeature("urn:a".into()))
        );
        let identities = element(concat!(
            "<query xmlns='http://jabber.org/protocol/disco#info'>",
            "<identity category='client' type='pc'/><identity category='client' type='pc'/>",
            "</query>"
        ));
        assert!(matches!(
            ver(&identities),
            Err(CapsError::DuplicateIdentity(_))
        ));
        let forms = element(concat!(
            "<query xmlns='http://jabber.org/protocol/disco#info'>",
            "<x xmlns='jabber:x:data' type='result'>",
            "<field var='FORM_TYPE' type='hidden'><value>urn:f</value></field></x>",
            "<x xmlns='jabber:x:data' type='result'>",
            "<field var='FORM_TYPE' type='hidden'><value>urn:f</value></field></x>",
            "</query>"
        ));
        assert_eq!(
            ver(&forms),
            Err(CapsError::DuplicateFormType("urn:f".into()))
        );
        assert_eq!(
            ver(&element("<query xmlns='jabber:iq:roster'/>")),
            Err(CapsError::NotDiscoInfo)
        );
    }

    #[test]
    fn a_form_type_that_is_not_hidden_leaves_the_form_out() {
        let info = element(concat!(
            "<query xmlns='http://jabber.org/protocol/disco#info'>",
            "<feature var='urn:a'/>",
            "<x xmlns='jabber:x:data' type='result'>",
            "<field var='FORM_TYPE'><value>urn:f</value></field>",
            "<field var='x'><value>1</value></field></x>",
            "</query>"
        ));
        assert_eq!(verification_string(&info).unwrap(), "urn:a<");
    }

    #[test]
    fn caps_element_round_trips() {
        let el = element(
            "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' \
             node='https://example.org/client' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>",
        );
        let caps = Caps::parse(&el).unwrap();
        assert_eq!(caps.hash.as_deref(), Some(SHA_1));
        assert_eq!(
            caps.disco_node(),
            "https://example.org/client#QgayPKawpkPSDYmwT/WM94uAlu0="
        );
        assert_eq!(Caps::parse(&caps.to_element()), Some(caps));
        let without_ver =
            element("<c xmlns='http://jabber.org/protocol/caps' node='https://example.org/c'/>");
        assert_eq!(Caps::parse(&without_ver), None);
    }
}
