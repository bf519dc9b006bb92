//! Whether a peer server's certificate proves its domain (RFC 6120 §13.7.2, RFC 7590 §3.2,
//! RFC 6125): a chain to a trusted root — the system's, plus `[modules.s2s] ca_file` — and
//! the domain as a DNS-ID or an XmppAddr (id-on-xmppAddr, RFC 6120 §13.7.1.4) in its
//! subject alternative names.
//!
//! The check runs after the TLS handshake, both ways, once the domain is known: an
//! incoming stream names it only in the header that follows TLS. So the handshake itself
//! takes any certificate (still checking its signatures), and the result only decides
//! between SASL EXTERNAL and dialback (XEP-0178, XEP-0220), or a refusal where policy
//! requires a valid certificate — as Prosody does, a certificate that fails is not fatal.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::tls::CurrentCert;

/// Why a certificate does not prove a domain (logged for the admin).
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("no certificate was presented")]
    Missing,
    #[error("the chain does not lead to a trusted root: {0}")]
    Untrusted(webpki::Error),
    #[error("the certificate is not for {0}")]
    WrongName(String),
    #[error("the certificate can't be read: {0}")]
    Malformed(String),
}

/// Why `ca_file` can't be used (a config error).
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("{0}")]
    Io(std::io::Error),
    #[error("no PEM certificate found")]
    Empty,
    #[error("a certificate is no usable trust anchor: {0}")]
    Anchor(webpki::Error),
}

/// The roots peer certificates are checked against.
pub struct Trust {
    anchors: Vec<TrustAnchor<'static>>,
}

impl Trust {
    /// The system's roots (rustls-native-certs: the OS store, on Debian `ca-certificates`,
    /// with whatever the admin added there) and the certificates of `ca_file`.
    pub fn load(ca_file: Option<&Path>) -> Result<Trust, CaFileError> {
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(%error, "could not read some of the system's root certificates");
        }
        let mut anchors: Vec<TrustAnchor<'static>> = native
            .certs
            .iter()
            .filter_map(|der| webpki::anchor_from_trusted_cert(der).ok())
            .map(|anchor| anchor.to_owned())
            .collect();
        if let Some(path) = ca_file {
            anchors.extend(read_ca_file(path)?);
        }
        Ok(Trust { anchors })
    }

    /// Whether `chain` (end entity first) proves `domain`.
    pub fn check(
        &self,
        chain: Option<&[CertificateDer<'_>]>,
        domain: &str,
    ) -> Result<(), CertificateError> {
        let Some((end_entity, intermediates)) = chain.and_then(|c| c.split_first()) else {
            return Err(CertificateError::Missing);
        };
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|e| CertificateError::Malformed(e.to_string()))?;
        let now = UnixTime::now();
        let verify = |usage| {
            cert.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.anchors,
                intermediates,
                now,
                usage,
                None,
                None,
            )
            .map(|_| ())
        };
        // A server's certificate, whichever side of TLS it is on: server authentication is
        // what CAs issue for a domain (several no longer add client authentication), and
        // the incoming side's peer is the TLS client, so either purpose is taken.
        verify(webpki::KeyUsage::server_auth())
            .or_else(|_| verify(webpki::KeyUsage::client_auth()))
            .map_err(CertificateError::Untrusted)?;
        if crate::tls::names_domain(end_entity, domain) {
            Ok(())
        } else {
            Err(CertificateError::WrongName(domain.to_owned()))
        }
    }
}

/// The certificates of a PEM file, as trust anchors.
pub fn read_ca_file(path: &Path) -> Result<Vec<TrustAnchor<'static>>, CaFileError> {
    let pem = std::fs::read(path).map_err(CaFileError::Io)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(CaFileError::Io)?;
    if certs.is_empty() {
        return Err(CaFileError::Empty);
    }
    certs
        .iter()
        .map(|der| {
            webpki::anchor_from_trusted_cert(der)
                .map(|a| a.to_owned())
                .map_err(CaFileError::Anchor)
        })
        .collect()
}

/// TLS for outgoing streams: the handshake takes any certificate (checked against the
/// domain afterwards, [`Trust::check`]) and presents ours, so the peer can offer us SASL
/// EXTERNAL.
/// XEP-0368 §4: the ALPN protocol of server-to-server TLS.
pub const ALPN: &[u8] = b"xmpp-server";

pub fn client_config(
    certificate: Option<Arc<CurrentCert>>,
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)));
    let config = match certificate {
        Some(current) => builder.with_client_cert_resolver(current),
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// TLS for incoming streams: the c2s certificate, and the peer's asked for but optional
/// (RFC 6120 §13.7.2.1: without one, dialback still may authenticate it).
pub fn server_config(
    c2s: &rustls::ServerConfig,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(Arc::new(AnyCertificate(provider)))
        .with_cert_resolver(c2s.cert_resolver.clone());
    // COMPAT: Prosody offers ALPN `xmpp-server` in its STARTTLS handshakes too, and rustls
    // refuses an offer with nothing in common with a configured list (RFC 7301 §3.2); the
    // c2s config says `xmpp-client` (XEP-0368), so s2s names its own.
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// Takes any certificate in the handshake, still checking the handshake's signatures with
/// it; whether it proves a domain is [`Trust::check`]'s to say.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

/// The handshake signature checks both verifier traits ask for, the same either way:
/// with the provider's algorithms.
macro_rules! signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.0.signature_verification_algorithms;
            rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.0.signature_verification_algorithms;
            rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    };
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    signature_checks!();
}

impl ClientCertVerifier for AnyCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    signature_checks!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA, and a certificate it signs with the given subject alternative names.
    fn ca() -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        (params.self_signed(&key).unwrap(), key)
    }

    fn leaf(
        sans: Vec<rcgen::SanType>,
        ca: &(rcgen::Certificate, rcgen::KeyPair),
    ) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        params.signed_by(&key, &ca.0, &ca.1).unwrap().der().clone()
    }

    fn trusting(ca: &(rcgen::Certificate, rcgen::KeyPair)) -> Trust {
        let anchor = webpki::anchor_from_trusted_cert(ca.0.der())
            .unwrap()
            .to_owned();
        Trust {
            anchors: vec![anchor],
        }
    }

    fn dns(name: &str) -> rcgen::SanType {
        rcgen::SanType::DnsName(name.try_into().unwrap())
    }

    #[test]
    fn a_dns_id_proves_its_domain_only() {
        let ca = ca();
        let cert = leaf(vec![dns("a.test")], &ca);
        let trust = trusting(&ca);
        assert!(trust
            .check(Some(std::slice::from_ref(&cert)), "a.test")
            .is_ok());
        assert!(matches!(
            trust.check(Some(&[cert]), "b.test"),
            Err(CertificateError::WrongName(_))
        ));
    }

    #[test]
    fn an_xmpp_addr_proves_its_domain() {
        let ca = ca();
        let xmpp_addr = rcgen::SanType::OtherName((
            vec![1, 3, 6, 1, 5, 5, 7, 8, 5],
            rcgen::OtherNameValue::Utf8String("a.test".into()),
        ));
        let cert = leaf(vec![xmpp_addr], &ca);
        let trust = trusting(&ca);
        assert!(trust
            .check(Some(std::slice::from_ref(&cert)), "A.test")
            .is_ok());
        assert!(trust.check(Some(&[cert]), "b.test").is_err());
    }

    #[test]
    fn another_ca_or_no_certificate_proves_nothing() {
        let (ours, theirs) = (ca(), ca());
        let cert = leaf(vec![dns("a.test")], &theirs);
        assert!(matches!(
            trusting(&ours).check(Some(&[cert]), "a.test"),
            Err(CertificateError::Untrusted(_))
        ));
        assert!(matches!(
            trusting(&ours).check(None, "a.test"),
            Err(CertificateError::Missing)
        ));
    }
}
