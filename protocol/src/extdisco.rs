//! XEP-0215: External Service Discovery (`urn:xmpp:extdisco:2`): the `<services/>` and
//! `<credentials/>` requests a client sends to its server, and the `<service/>` elements
//! that answer them.

use crate::ns;
use crate::xml::Element;

/// What a client asks its server (XEP-0215 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// §3.1/§3.2: every service, or only those of one `type`.
    Services {
        /// The `type` asked for (`stun`, `turn`, …), if any.
        kind: Option<String>,
    },
    /// §3.3: credentials for one service, named by its host, its type and maybe its port.
    Credentials {
        /// The service's host.
        host: String,
        /// The service's type.
        kind: String,
        /// The service's port, when the client named it.
        port: Option<u16>,
    },
}

/// Why a request can't be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    /// Neither `<services/>` nor `<credentials/>` of this namespace.
    #[error("not an external service discovery request")]
    NotExtdisco,
    /// §3.3: `<credentials/>` needs one `<service/>` with `host` and `type`.
    #[error("a credentials request names one service by host and type")]
    ServiceRequired,
}

impl Request {
    /// Reads the IQ payload `el`.
    pub fn parse(el: &Element) -> Result<Request, RequestError> {
        if el.is("services", ns::EXTDISCO) {
            return Ok(Request::Services {
                kind: el.attr("type").filter(|t| !t.is_empty()).map(str::to_owned),
            });
        }
        if !el.is("credentials", ns::EXTDISCO) {
            return Err(RequestError::NotExtdisco);
        }
        let service = el
            .get_child("service", ns::EXTDISCO)
            .ok_or(RequestError::ServiceRequired)?;
        let host = service.attr("host").filter(|h| !h.is_empty());
        let kind = service.attr("type").filter(|t| !t.is_empty());
        let (Some(host), Some(kind)) = (host, kind) else {
            return Err(RequestError::ServiceRequired);
        };
        Ok(Request::Credentials {
            host: host.to_owned(),
            kind: kind.to_owned(),
            port: service.attr("port").and_then(|p| p.parse().ok()),
        })
    }
}

/// Time-limited credentials for a restricted service (§3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name to give the service.
    pub username: String,
    /// The password to give the service.
    pub password: String,
    /// When they stop working, as an XEP-0082 DateTime.
    pub expires: String,
}

/// One `<service/>` (§4): what it is and where, and, when restricted, maybe credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// `stun`, `turn`, `turns`, …
    pub kind: String,
    /// A host name or IP address.
    pub host: String,
    /// The port, when known.
    pub port: Option<u16>,
    /// `udp` or `tcp`, when it matters.
    pub transport: Option<String>,
    /// A name for people.
    pub name: Option<String>,
    /// The service needs credentials.
    pub restricted: bool,
    /// The credentials, when the answer carries them.
    pub credentials: Option<Credentials>,
}

impl Service {
    /// The `<service/>` element.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("service", ns::EXTDISCO)
            .with_attr("type", &self.kind)
            .with_attr("host", &self.host);
        if let Some(port) = self.port {
            el.set_attr("port", port.to_string());
        }
        if let Some(transport) = &self.transport {
            el.set_attr("transport", transport);
        }
        if let Some(name) = &self.name {
            el.set_attr("name", name);
        }
        if self.restricted {
            el.set_attr("restricted", "1");
        }
        if let Some(c) = &self.credentials {
            el.set_attr("username", &c.username);
            el.set_attr("password", &c.password);
            el.set_attr("expires", &c.expires);
        }
        el
    }
}

/// The answer to `<services/>`: the services, with the `type` asked for echoed (§3.2).
pub fn services_result(kind: Option<&str>, services: &[Service]) -> Element {
    let mut el = Element::new("services", ns::EXTDISCO);
    if let Some(kind) = kind {
        el.set_attr("type", kind);
    }
    for service in services {
        el.push_child(service.to_element());
    }
    el
}

/// The answer to `<credentials/>` (§3.3).
pub fn credentials_result(service: &Service) -> Element {
    Element::new("credentials", ns::EXTDISCO).with_child(service.to_element())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_stanza;

    #[test]
    fn requests_are_read() {
        let all = parse_stanza(b"<services xmlns='urn:xmpp:extdisco:2'/>").unwrap();
        assert_eq!(Request::parse(&all), Ok(Request::Services { kind: None }));
        let turn = parse_stanza(b"<services xmlns='urn:xmpp:extdisco:2' type='turn'/>").unwrap();
        assert_eq!(
            Request::parse(&turn),
            Ok(Request::Services {
                kind: Some("turn".into())
            })
        );
        let creds = parse_stanza(
            b"<credentials xmlns='urn:xmpp:extdisco:2'>\
              <service host='turn.example.org' type='turn' port='3478'/></credentials>",
        )
        .unwrap();
        assert_eq!(
            Request::parse(&creds),
            Ok(Request::Credentials {
                host: "turn.example.org".into(),
                kind: "turn".into(),
                port: Some(3478),
            })
        );
        let bare = parse_stanza(b"<credentials xmlns='urn:xmpp:extdisco:2'/>").unwrap();
        assert_eq!(Request::parse(&bare), Err(RequestError::ServiceRequired));
    }

    #[test]
    fn a_restricted_service_carries_its_credentials() {
        let service = Service {
            kind: "turn".into(),
            host: "turn.example.org".into(),
            port: Some(3478),
            transport: Some("udp".into()),
            name: None,
            restricted: true,
            credentials: Some(Credentials {
                username: "1700000000:alice@example.org".into(),
                password: "c2VjcmV0".into(),
                expires: "2023-11-14T22:13:20Z".into(),
            }),
        };
        let el = services_result(Some("turn"), std::slice::from_ref(&service));
        assert_eq!(el.attr("type"), Some("turn"));
        let child = el.get_child("service", ns::EXTDISCO).unwrap();
        assert_eq!(child.attr("restricted"), Some("1"));
        assert_eq!(child.attr("port"), Some("3478"));
        assert_eq!(child.attr("username"), Some("1700000000:alice@example.org"));
        assert_eq!(child.attr("expires"), Some("2023-11-14T22:13:20Z"));
        assert!(child.attr("name").is_none());
    }
}
