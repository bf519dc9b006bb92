//! Flash socket policy (flash-protocol.md §5): the probe Flash Player sends before it
//! allows an XMLSocket connection, and the cross-domain policy document answering it.

use crate::xml::writer::write_attr;

/// The request, without the NUL terminator the player appends.
pub const REQUEST: &[u8] = b"<policy-file-request/>";

/// One `<allow-access-from/>` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRule {
    /// Origin domain of the SWF: `*`, `*.example.com` or an exact host.
    pub domain: String,
    /// Ports the SWF may connect to: a port, a comma list, ranges `a-b`, or `*`.
    pub to_ports: String,
}

/// The policy document, without the trailing NUL (the server appends it, as to every write
/// to a Flash peer).
///
/// No DOCTYPE is sent: the player does not need it, and it keeps our own output free of
/// the construct our reader refuses.
pub fn policy_document(rules: &[PolicyRule], site_control: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"<?xml version=\"1.0\"?><cross-domain-policy>");
    if let Some(sc) = site_control {
        // Only meaningful in a master policy (port 843), harmless elsewhere.
        out.extend_from_slice(b"<site-control");
        write_attr(&mut out, "permitted-cross-domain-policies", sc);
        out.extend_from_slice(b"/>");
    }
    for rule in rules {
        out.extend_from_slice(b"<allow-access-from");
        write_attr(&mut out, "domain", &rule.domain);
        write_attr(&mut out, "to-ports", &rule.to_ports);
        out.extend_from_slice(b"/>");
    }
    out.extend_from_slice(b"</cross-domain-policy>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_22_bytes() {
        assert_eq!(REQUEST.len(), 22);
    }

    #[test]
    fn document_bytes() {
        let rules = [PolicyRule {
            domain: "*".into(),
            to_ports: "5222".into(),
        }];
        assert_eq!(
            String::from_utf8(policy_document(&rules, Some("master-only"))).unwrap_or_default(),
            concat!(
                r#"<?xml version="1.0"?><cross-domain-policy>"#,
                r#"<site-control permitted-cross-domain-policies="master-only"/>"#,
                r#"<allow-access-from domain="*" to-ports="5222"/></cross-domain-policy>"#
            )
        );
        let two = [
            PolicyRule {
                domain: "*.example.com".into(),
                to_ports: "5222,5223".into(),
            },
            PolicyRule {
                domain: "a\"b".into(),
                to_ports: "*".into(),
            },
        ];
        assert_eq!(
            String::from_utf8(policy_document(&two, None)).unwrap_or_default(),
            concat!(
                r#"<?xml version="1.0"?><cross-domain-policy>"#,
                r#"<allow-access-from domain="*.example.com" to-ports="5222,5223"/>"#,
                r#"<allow-access-from domain="a&quot;b" to-ports="*"/></cross-domain-policy>"#
            )
        );
    }
}
