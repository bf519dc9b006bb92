//! The server's TLS identity: the configured certificate, or a self-signed
//! one generated on first start so that zero-config can still offer STARTTLS
//! and direct TLS.

use std::fs::{self, File};
use std::io::{BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use x509_cert::der::asn1::Utf8StringRef;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::Decode as _;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;

use crate::config::{io_reason, Config};

/// File names of the generated identity inside `data_dir`.
const GENERATED_CERT: &str = "cert.pem";
const GENERATED_KEY: &str = "key.pem";

/// How long a generated certificate is valid: a year, like Prosody's generated ones. A
/// bounded validity limits how long a stolen key stays useful.
const GENERATED_VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// A generated certificate that ends within this time is replaced (at start, and by the
/// daily check while running).
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Allowance for clients whose clock is a little behind ours.
const BACKDATE: Duration = Duration::from_secs(24 * 60 * 60);

/// ALPN protocol id for XMPP client connections (XEP-0368).
const ALPN_XMPP_CLIENT: &[u8] = b"xmpp-client";
/// ALPN protocol id of HTTP/1.1 (RFC 7301 §6), the only HTTP version the HTTPS listener
/// serves (no `h2`).
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// Where the certificate chain and private key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsIdentity {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// `true` only when this call generated a new self-signed certificate;
    /// `false` for a configured certificate and for one generated on an
    /// earlier start.
    pub generated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{}: {}", path.display(), io_reason(source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no PEM certificate found", .0.display())]
    NoCertificate(PathBuf),
    #[error("{}: no PEM private key (PKCS#8, RSA or SEC1) found", .0.display())]
    NoPrivateKey(PathBuf),
    /// The certificate and key were read but rustls refused them (e.g. the
    /// key does not belong to the certificate, or its type is unsupported).
    #[error("cannot use certificate {} with key {}: {source}", cert_path.display(), key_path.display())]
    InvalidIdentity {
        cert_path: PathBuf,
        key_path: PathBuf,
        source: rustls::Error,
    },
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TlsSetupError + '_ {
    move |source| TlsSetupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Loads the configured certificate, or when none is configured generates a
/// self-signed one for all configured host names (+ "localhost") on first
/// start into `<data_dir>/cert.pem` and `<data_dir>/key.pem` (key file mode
/// 0600 on unix) and reuses it on later starts.
///
/// A reused certificate is not regenerated when hosts are added; deleting the
/// two files makes the next start generate a new one.
pub fn ensure_identity(config: &Config) -> Result<TlsIdentity, TlsSetupError> {
    if let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) {
        // Config validation checked these too, but a Config can be built in
        // code; failing here names the file instead of failing in rustls.
        for path in [cert, key] {
            File::open(path).map_err(io_error(path))?;
        }
        return Ok(TlsIdentity {
            cert_path: cert.clone(),
            key_path: key.clone(),
            generated: false,
        });
    }

    let cert_path = config.data_dir.join(GENERATED_CERT);
    let key_path = config.data_dir.join(GENERATED_KEY);
    let cert_exists = cert_path.try_exists().map_err(io_error(&cert_path))?;
    let key_exists = key_path.try_exists().map_err(io_error(&key_path))?;

    if cert_exists && key_exists && !ends_soon(&cert_path)? {
        tracing::debug!(cert = %cert_path.display(), "reusing generated self-signed certificate");
        return Ok(TlsIdentity {
            cert_path,
            key_path,
            generated: false,
        });
    }
    if cert_exists && key_exists {
        // Ours (tls.cert is unset), so ours to replace; a configured one never is.
        tracing::info!(cert = %cert_path.display(), "the generated certificate ends within 30 days: generating a new one");
    } else if cert_exists {
        // We always write the key before the certificate, so a certificate
        // without a key was put there by someone else: don't overwrite it.
        return Err(TlsSetupError::Io {
            path: key_path,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "missing, but {} exists; restore the key, delete the certificate to generate a new pair, or set tls.cert and tls.key",
                    cert_path.display()
                ),
            ),
        });
    }
    // No certificate (a lone key.pem is a leftover of an interrupted first
    // start and is replaced).

    let names = certificate_names(config);
    let key_pair = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names.clone())?;
    let mut subject = rcgen::DistinguishedName::new();
    let common_name = names.first().map_or("localhost", String::as_str);
    subject.push(rcgen::DnType::CommonName, common_name);
    subject.push(rcgen::DnType::OrganizationName, "Jabberwock self-signed");
    params.distinguished_name = subject;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + GENERATED_VALIDITY;
    let cert = params.self_signed(&key_pair)?;

    // The private key lives here (and, by default, the database): a directory we create
    // is for this server's user only.
    let mut dirs = fs::DirBuilder::new();
    dirs.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
    dirs.create(&config.data_dir)
        .map_err(io_error(&config.data_dir))?;
    write_atomically(&key_path, key_pair.serialize_pem().as_bytes(), true)?;
    write_atomically(&cert_path, cert.pem().as_bytes(), false)?;

    tracing::info!(
        cert = %cert_path.display(),
        names = ?names,
        "generated a self-signed TLS certificate; clients will not trust it unless told to (set tls.cert and tls.key for a real one)"
    );
    Ok(TlsIdentity {
        cert_path,
        key_path,
        generated: true,
    })
}

/// Whether the first certificate in `cert_path` ends within [`RENEW_BEFORE`] (or has
/// ended). A file we can't read as a certificate is left to [`server_config`] to report.
pub fn ends_soon(cert_path: &Path) -> Result<bool, TlsSetupError> {
    let certs = load_certs(cert_path)?;
    let Some(not_after) = certs.first().and_then(|der| not_after(der)) else {
        tracing::warn!(cert = %cert_path.display(), "cannot read the certificate's validity; keeping it");
        return Ok(false);
    };
    Ok(not_after < SystemTime::now() + RENEW_BEFORE)
}

/// What an admin checks of the certificate in use: subject, SHA-256 fingerprint (as
/// clients show it, colon-separated hex) and end of validity, for the startup log.
pub struct CertificateSummary {
    pub subject: String,
    pub sha256: String,
    /// notAfter (RFC 5280 §4.1.2.5) as RFC 3339 text (UTC).
    pub not_after: String,
}

/// The [`CertificateSummary`] of the first certificate in `cert_path`; None when it can't
/// be read as one (the TLS setup reports that itself).
pub fn summary(cert_path: &Path) -> Option<CertificateSummary> {
    use sha2::Digest as _;
    use x509_cert::der::Decode as _;
    let certs = load_certs(cert_path).ok()?;
    let der = certs.first()?;
    let cert = x509_cert::Certificate::from_der(der.as_ref()).ok()?;
    let sha256 = sha2::Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let end = cert.tbs_certificate.validity.not_after.to_system_time();
    let not_after = time::OffsetDateTime::from(end)
        .format(&time::format_description::well_known::Rfc3339)
        .ok()?;
    Some(CertificateSummary {
        subject: cert.tbs_certificate.subject.to_string(),
        sha256,
        not_after,
    })
}

/// The notAfter of a DER certificate (RFC 5280 §4.1.2.5).
fn not_after(der: &CertificateDer<'_>) -> Option<SystemTime> {
    use x509_cert::der::Decode as _;
    let cert = x509_cert::Certificate::from_der(der.as_ref()).ok()?;
    Some(cert.tbs_certificate.validity.not_after.to_system_time())
}

/// Subject alternative names for the generated certificate: "localhost" and
/// every configured host, in order, without duplicates.
fn certificate_names(config: &Config) -> Vec<String> {
    let mut names = vec!["localhost".to_owned()];
    for host in config.hosts.keys() {
        // rcgen writes bare IP addresses as IP SANs; a bracketed IPv6
        // literal must lose its brackets to be recognised.
        let name = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        // DNS names in certificates are ASCII; an IDN host would need its
        // A-label, which we can't compute without an IDNA library. Leave it
        // out rather than fail zero-config setups.
        if !name.is_ascii() {
            tracing::warn!(host = %host, "host name is not ASCII; not included in the generated certificate");
            continue;
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

/// id-on-xmppAddr (RFC 6120 §13.7.1.4).
const XMPP_ADDR: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.8.5");
/// id-ce-subjectAltName (RFC 5280 §4.2.1.6).
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

/// Whether the certificate `der` names `domain` (RFC 6120 §13.7.1.2, RFC 6125): as a
/// DNS-ID, wildcards as RFC 6125 §6.4.3 allows them, or as an XmppAddr. Its chain is not
/// looked at: whether a peer's certificate is trusted is federation's question, whether
/// ours names a new host is the reload's.
pub fn names_domain(der: &CertificateDer<'_>, domain: &str) -> bool {
    let dns_id = webpki::EndEntityCert::try_from(der).is_ok_and(|cert| {
        rustls::pki_types::ServerName::try_from(domain)
            .is_ok_and(|name| cert.verify_is_valid_for_subject_name(&name).is_ok())
    });
    dns_id || has_xmpp_addr(der, domain)
}

/// Whether the certificate names `domain` in an XmppAddr subject alternative name (RFC
/// 6120 §13.7.1.4; compared without case, as domains are, and never as a wildcard).
fn has_xmpp_addr(der: &CertificateDer<'_>, domain: &str) -> bool {
    let Ok(cert) = x509_cert::Certificate::from_der(der.as_ref()) else {
        return false;
    };
    let extensions = cert.tbs_certificate.extensions.unwrap_or_default();
    let Some(san) = extensions.iter().find(|e| e.extn_id == SUBJECT_ALT_NAME) else {
        return false;
    };
    let Ok(names) = SubjectAltName::from_der(san.extn_value.as_bytes()) else {
        return false;
    };
    names.0.iter().any(|name| match name {
        GeneralName::OtherName(other) if other.type_id == XMPP_ADDR => other
            .value
            .decode_as::<Utf8StringRef<'_>>()
            .is_ok_and(|addr| addr.as_str().eq_ignore_ascii_case(domain)),
        _ => false,
    })
}

/// Writes `contents` to a temporary file next to `path` and renames it into
/// place, so an interrupted start never leaves a truncated PEM file behind.
fn write_atomically(path: &Path, contents: &[u8], private: bool) -> Result<(), TlsSetupError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);

    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;

    let mut file = options.open(&tmp).map_err(io_error(&tmp))?;
    // `mode` only applies when the file is created; a stale temporary file
    // from an earlier crash keeps its old mode, so set it explicitly.
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_error(&tmp))?;
    }
    file.write_all(contents).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_error(path))
}

/// rustls ServerConfig for TLS 1.2 and 1.3 only, with the ring provider, no
/// client auth, ALPN "xmpp-client" (XEP-0368).
pub fn server_config(identity: &TlsIdentity) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    renewable_server_config(identity).map(|(config, _)| config)
}

/// [`server_config`], with the handle that swaps its certificate ([`renew_daily`]).
pub fn renewable_server_config(
    identity: &TlsIdentity,
) -> Result<(Arc<rustls::ServerConfig>, Arc<CurrentCert>), TlsSetupError> {
    let current = Arc::new(CurrentCert(std::sync::RwLock::new(certified_key(
        identity,
    )?)));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(current.clone());
    config.alpn_protocols = vec![ALPN_XMPP_CLIENT.to_vec()];
    Ok((Arc::new(config), current))
}

/// The provider is chosen explicitly so nothing depends on a process-wide default having
/// been installed (and aws-lc-rs is never pulled in).
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The certificate and key of `identity`, checked to belong together.
fn certified_key(identity: &TlsIdentity) -> Result<Arc<CertifiedKey>, TlsSetupError> {
    let certs = load_certs(&identity.cert_path)?;
    let key = load_key(&identity.key_path)?;
    CertifiedKey::from_der(certs, key, &provider())
        .map(Arc::new)
        .map_err(|source| TlsSetupError::InvalidIdentity {
            cert_path: identity.cert_path.clone(),
            key_path: identity.key_path.clone(),
            source,
        })
}

/// The certificate every TLS handshake gets; replaced while running when the generated
/// one is renewed, so new connections get the new one without a restart.
#[derive(Debug)]
pub struct CurrentCert(std::sync::RwLock<Arc<CertifiedKey>>);

impl CurrentCert {
    fn set(&self, key: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = key;
    }

    /// Re-reads the certificate and key `config` names (or the generated pair in its
    /// `data_dir`) and serves them to new handshakes; open connections keep theirs. A pair
    /// that does not load is refused and the one in use stays.
    /// Returns the certificate file now served; `None`: there is none to read yet.
    pub fn reload(&self, config: &Config) -> Result<Option<PathBuf>, TlsSetupError> {
        let Some(identity) = identity_on_disk(config) else {
            return Ok(None);
        };
        let key = certified_key(&identity)?;
        self.set(key);
        Ok(Some(identity.cert_path))
    }
}

/// The certificate and key `config` would be served with, if they exist already: the
/// configured pair, or the generated one in `data_dir`. Nothing is created.
fn identity_on_disk(config: &Config) -> Option<TlsIdentity> {
    if let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) {
        return Some(TlsIdentity {
            cert_path: cert.clone(),
            key_path: key.clone(),
            generated: false,
        });
    }
    let cert_path = config.data_dir.join(GENERATED_CERT);
    let key_path = config.data_dir.join(GENERATED_KEY);
    (cert_path.exists() && key_path.exists()).then_some(TlsIdentity {
        cert_path,
        key_path,
        generated: false,
    })
}

/// `jabberwock check`: whether the certificate and key `config` names (or the generated
/// pair already in `data_dir`) load and belong together, without writing anything. `None`:
/// there is none yet (one is generated at the first start); else the certificate file.
pub fn check(config: &Config) -> Result<Option<PathBuf>, TlsSetupError> {
    let Some(identity) = identity_on_disk(config) else {
        return Ok(None);
    };
    certified_key(&identity)?;
    Ok(Some(identity.cert_path))
}

impl CurrentCert {
    /// The certificate served now (the first of its chain).
    pub fn end_entity(&self) -> Option<CertificateDer<'static>> {
        let key = self.0.read().unwrap_or_else(|p| p.into_inner()).clone();
        key.cert.first().cloned()
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// The same certificate when we are the TLS client: an outgoing server-to-server stream
/// presents it so the peer can check our domain (XEP-0178, `modules/s2s/`).
impl rustls::client::ResolvesClientCert for CurrentCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// While the server runs on a generated certificate, checks it once a day and replaces it
/// ([`ensure_identity`] regenerates it) when it ends within [`RENEW_BEFORE`]. The new one
/// names the hosts in force then, those a reload added included.
pub async fn renew_daily(server: Arc<crate::server::Server>, current: Arc<CurrentCert>) {
    const DAY: Duration = Duration::from_secs(24 * 60 * 60);
    loop {
        tokio::time::sleep(DAY).await;
        let mut config = server.config.clone();
        config.hosts = server
            .hosts()
            .into_iter()
            .filter_map(|host| {
                let settings = server.host(&host)?;
                Some((host, (*settings).clone()))
            })
            .collect();
        // Key generation and file writes: off the async threads.
        let renewed = tokio::task::spawn_blocking(move || {
            let identity = ensure_identity(&config)?;
            match identity.generated {
                true => certified_key(&identity).map(Some),
                false => Ok(None),
            }
        })
        .await;
        match renewed {
            Ok(Ok(Some(key))) => {
                current.set(key);
                tracing::info!("now serving the renewed self-signed certificate");
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "renewing the generated certificate failed"),
            Err(e) => tracing::warn!(error = %e, "renewing the generated certificate failed"),
        }
    }
}

/// The HTTPS listener's config: the c2s one with ALPN `http/1.1` instead of `xmpp-client`.
/// A browser offers `h2` and `http/1.1` only, and rustls refuses a handshake whose ALPN
/// offer has nothing in common with ours (RFC 7301 §3.2, `no_application_protocol`).
pub fn https_config(c2s: &rustls::ServerConfig) -> Arc<rustls::ServerConfig> {
    let mut config = c2s.clone();
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Arc::new(config)
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let file = File::open(path).map_err(io_error(path))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_error(path))?;
    if certs.is_empty() {
        return Err(TlsSetupError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    let file = File::open(path).map_err(io_error(path))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .map_err(io_error(path))?
        .ok_or_else(|| TlsSetupError::NoPrivateKey(path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_in(dir: &Path) -> Config {
        let mut config = Config {
            data_dir: dir.join("data"),
            ..Config::default()
        };
        config.hosts.insert(
            "example.org".to_owned(),
            crate::config::HostConfig::default(),
        );
        config
    }

    #[test]
    fn generates_once_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());

        let first = ensure_identity(&config).unwrap();
        assert!(first.generated);
        assert_eq!(first.cert_path, config.data_dir.join("cert.pem"));
        assert_eq!(first.key_path, config.data_dir.join("key.pem"));
        let cert = fs::read(&first.cert_path).unwrap();
        let key = fs::read(&first.key_path).unwrap();
        assert!(cert.starts_with(b"-----BEGIN CERTIFICATE-----"));

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&first.key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let second = ensure_identity(&config).unwrap();
        assert!(!second.generated);
        assert_eq!(
            (&second.cert_path, &second.key_path),
            (&first.cert_path, &first.key_path)
        );
        assert_eq!(fs::read(&second.cert_path).unwrap(), cert);
        assert_eq!(fs::read(&second.key_path).unwrap(), key);
        assert!(!config.data_dir.join("cert.pem.tmp").exists());
    }

    #[test]
    fn server_config_from_generated_files() {
        let dir = tempfile::tempdir().unwrap();
        let identity = ensure_identity(&config_in(dir.path())).unwrap();
        let server = server_config(&identity).unwrap();
        assert_eq!(server.alpn_protocols, vec![b"xmpp-client".to_vec()]);
        let https = https_config(&server);
        assert_eq!(https.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn generated_certificate_names_all_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        config
            .hosts
            .insert("[::1]".to_owned(), crate::config::HostConfig::default());
        config.hosts.insert(
            "bücher.example".to_owned(),
            crate::config::HostConfig::default(),
        );
        assert_eq!(
            certificate_names(&config),
            ["localhost", "::1", "example.org"]
        );
        ensure_identity(&config).unwrap();
    }

    #[test]
    fn configured_identity_is_used_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let generated = ensure_identity(&config_in(dir.path())).unwrap();
        let mut config = Config {
            data_dir: dir.path().join("elsewhere"),
            ..Config::default()
        };
        config.tls.cert = Some(generated.cert_path.clone());
        config.tls.key = Some(generated.key_path.clone());
        let identity = ensure_identity(&config).unwrap();
        assert!(!identity.generated);
        assert_eq!(identity.cert_path, generated.cert_path);
        assert!(
            !config.data_dir.exists(),
            "nothing generated for a configured certificate"
        );
        server_config(&identity).unwrap();
    }

    #[test]
    fn missing_configured_file_names_it() {
        let mut config = Config::default();
        config.tls.cert = Some(PathBuf::from("/nonexistent/cert.pem"));
        config.tls.key = Some(PathBuf::from("/nonexistent/key.pem"));
        let err = ensure_identity(&config).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/nonexistent/cert.pem: No such file or directory"
        );
    }

    #[test]
    fn lone_key_is_replaced_but_lone_cert_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        fs::create_dir_all(&config.data_dir).unwrap();
        fs::write(config.data_dir.join("key.pem"), "stale").unwrap();
        assert!(ensure_identity(&config).unwrap().generated);

        fs::remove_file(config.data_dir.join("key.pem")).unwrap();
        let err = ensure_identity(&config).unwrap_err();
        assert!(err.to_string().contains("key.pem: missing"), "{err}");
        assert!(config.data_dir.join("cert.pem").exists());
    }

    #[test]
    fn garbage_pem_gives_no_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let identity = ensure_identity(&config_in(dir.path())).unwrap();
        let garbage = dir.path().join("garbage.pem");
        fs::write(&garbage, "this is not a certificate\n").unwrap();
        let bad = TlsIdentity {
            cert_path: garbage.clone(),
            ..identity.clone()
        };
        match server_config(&bad) {
            Err(TlsSetupError::NoCertificate(path)) => assert_eq!(path, garbage),
            other => panic!("expected NoCertificate, got {other:?}"),
        }
        let err = server_config(&bad).unwrap_err().to_string();
        assert!(err.contains("garbage.pem"), "{err}");

        let bad = TlsIdentity {
            key_path: identity.cert_path.clone(),
            ..identity
        };
        match server_config(&bad) {
            Err(TlsSetupError::NoPrivateKey(path)) => assert_eq!(path, bad.key_path),
            other => panic!("expected NoPrivateKey, got {other:?}"),
        }
    }

    #[test]
    fn mismatched_key_names_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = ensure_identity(&config_in(&dir.path().join("a"))).unwrap();
        let b = ensure_identity(&config_in(&dir.path().join("b"))).unwrap();
        let mixed = TlsIdentity {
            key_path: b.key_path.clone(),
            ..a
        };
        let err = server_config(&mixed).unwrap_err();
        assert!(
            matches!(err, TlsSetupError::InvalidIdentity { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("a/data/cert.pem") && text.contains("b/data/key.pem"),
            "{text}"
        );
    }
}
