//! Accounts as the server sees them: turning a password into SCRAM credentials
//! (RFC 5802 §3) and checking a password against them. The password itself is never stored.
//!
//! Every password is prepared with the RFC 8265 OpaqueString profile before it is used
//! (§4.2: non-ASCII spaces become U+0020, then Unicode NFC), both when it is stored and
//! when it is checked, so the two Unicode spellings of one password (a composed or a
//! decomposed "é") are the same password. SCRAM clients do the same on their side
//! (RFC 5802 §2.2 asks for SASLprep; both give the same result for such inputs).

use std::borrow::Cow;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jabberwock_protocol::jid::{self, BareJid};
use jabberwock_storage::{AccountId, ScramCredential, ScramHash, Store, StoreError};
use precis_profiles::precis_core::profile::PrecisFastInvocation;
use precis_profiles::OpaqueString;
use rand::RngCore;
use sasl::common::scram::{ScramProvider, Sha1, Sha256};
use sasl::common::Password;

use crate::config::AuthConfig;

/// Salt length in bytes; RFC 5802 leaves it open, 16 random bytes is common practice.
const SALT_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid JID {0:?}: {1}")]
    InvalidJid(String, String),
    #[error("JID {0:?} has no user part")]
    NoUsername(String),
    #[error("{0} is not served by this server")]
    UnknownHost(String),
    #[error("the password is empty")]
    EmptyPassword,
    #[error("the password is shorter than {0} characters")]
    TooShort(usize),
    /// RFC 8265 §4.2: control characters and unassigned code points are not allowed.
    #[error("the password contains a character that is not allowed (RFC 8265 OpaqueString)")]
    BadCharacter,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parses and normalises (nodeprep) `user@domain` into the store's account key.
pub fn account_id(jid: &str) -> Result<AccountId, AccountError> {
    let bare =
        jid::parse_bare(jid).map_err(|e| AccountError::InvalidJid(jid.into(), e.to_string()))?;
    if bare.node().is_none() {
        return Err(AccountError::NoUsername(jid.into()));
    }
    Ok(account_of(&bare))
}

/// The store's account key for a bare JID that is already valid and normalised.
pub fn account_of(jid: &BareJid) -> AccountId {
    AccountId {
        username: jid.node().map(|n| n.to_string()).unwrap_or_default(),
        domain: jid.domain().to_string(),
    }
}

/// Whether `id` is a SASL ANONYMOUS guest's account: one without credentials
/// (`c2s/guest.rs`), which ends with its session.
pub async fn is_guest(
    store: &dyn jabberwock_storage::Store,
    id: &AccountId,
) -> Result<bool, jabberwock_storage::StoreError> {
    for hash in [
        jabberwock_storage::ScramHash::Sha256,
        jabberwock_storage::ScramHash::Sha1,
    ] {
        if store.credential(id, hash).await?.is_some() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Account key for a username given by a client on `host` (SASL authcid, XEP-0077).
pub fn local_account(username: &str, host: &str) -> Option<AccountId> {
    account_id(&format!("{username}@{host}"))
        .ok()
        .filter(|id| id.domain == host)
}

fn hmac<H: ScramProvider>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    H::hmac(data, key).unwrap_or_default()
}

fn credential_for<H: ScramProvider>(
    hash: ScramHash,
    password: &str,
    salt: Vec<u8>,
    iterations: u32,
) -> ScramCredential {
    let salted = salted_password::<H>(password, &salt, iterations);
    let client_key = hmac::<H>(&salted, b"Client Key");
    ScramCredential {
        hash,
        salt,
        iterations,
        stored_key: H::hash(&client_key),
        server_key: hmac::<H>(&salted, b"Server Key"),
    }
}

fn salted_password<H: ScramProvider>(password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    H::derive(&Password::Plain(password.to_owned()), salt, iterations).unwrap_or_default()
}

/// StoredKey and ServerKey for both hashes we offer, each with its own random salt.
/// CPU-heavy (PBKDF2): call from a blocking thread.
pub fn scram_credentials(password: &str, iterations: u32) -> Vec<ScramCredential> {
    let mut rng = rand::thread_rng();
    let mut salt = || {
        let mut s = vec![0u8; SALT_LEN];
        rng.fill_bytes(&mut s);
        s
    };
    vec![
        credential_for::<Sha1>(ScramHash::Sha1, password, salt(), iterations),
        credential_for::<Sha256>(ScramHash::Sha256, password, salt(), iterations),
    ]
}

/// `password` prepared and enforced with the RFC 8265 OpaqueString profile: what is
/// stored and what is compared. An empty or disallowed password is an error.
pub fn prepare_password(password: &str) -> Result<Cow<'_, str>, AccountError> {
    if password.is_empty() {
        return Err(AccountError::EmptyPassword);
    }
    OpaqueString::enforce(password).map_err(|_| AccountError::BadCharacter)
}

/// Whether `password` produces the stored key of `credential` (SASL PLAIN, XEP-0078),
/// after OpaqueString preparation; a password the profile refuses matches nothing.
/// CPU-heavy (PBKDF2): call from a blocking thread.
pub fn verify_password(password: &str, credential: &ScramCredential) -> bool {
    let Ok(password) = prepare_password(password) else {
        return false;
    };
    verify_prepared(&password, credential)
}

fn verify_prepared(password: &str, credential: &ScramCredential) -> bool {
    let candidate = match credential.hash {
        ScramHash::Sha1 => credential_for::<Sha1>(
            credential.hash,
            password,
            credential.salt.clone(),
            credential.iterations,
        ),
        ScramHash::Sha256 => credential_for::<Sha256>(
            credential.hash,
            password,
            credential.salt.clone(),
            credential.iterations,
        ),
    };
    constant_time_eq(&candidate.stored_key, &credential.stored_key)
}

/// Comparison whose time does not depend on where the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn create(
    store: &Arc<dyn Store>,
    id: &AccountId,
    password: String,
    rules: &AuthConfig,
) -> Result<(), AccountError> {
    let creds = credentials_for_new_password(password, rules).await?;
    store.create_account(id, &creds).await?;
    Ok(())
}

pub async fn set_password(
    store: &Arc<dyn Store>,
    id: &AccountId,
    password: String,
    rules: &AuthConfig,
) -> Result<(), AccountError> {
    let creds = credentials_for_new_password(password, rules).await?;
    store.set_credentials(id, &creds).await?;
    Ok(())
}

/// Checks a new password against the rules (OpaqueString, `auth.min_password_length`),
/// then runs PBKDF2 on its prepared form off the async threads.
async fn credentials_for_new_password(
    password: String,
    rules: &AuthConfig,
) -> Result<Vec<ScramCredential>, AccountError> {
    let password = check_new_password(&password, rules)?;
    Ok(derive_off_thread(password, rules.scram_iterations).await)
}

/// The prepared form of a new password, if it is acceptable.
pub fn check_new_password(password: &str, rules: &AuthConfig) -> Result<String, AccountError> {
    let prepared = prepare_password(password)?;
    // Counted in characters, as users count them (RFC 8265 §4.2 leaves length to the
    // application).
    if prepared.chars().count() < rules.min_password_length {
        return Err(AccountError::TooShort(rules.min_password_length));
    }
    Ok(prepared.into_owned())
}

/// A fresh random secret (32 bytes).
pub fn random_secret() -> Vec<u8> {
    let mut key = vec![0u8; DECOY_KEY_LEN];
    rand::thread_rng().fill_bytes(&mut key);
    key
}

/// File name, inside `data_dir`, of the secret behind decoy SCRAM salts.
const DECOY_KEY_FILE: &str = "decoy-salt.key";
const DECOY_KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
#[error("{}: {}", path.display(), crate::config::io_reason(source))]
pub struct SecretError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// The server's decoy-salt secret: read from `<data_dir>/decoy-salt.key`, or created there
/// (random, mode 0600) on first start. It keeps the salts shown for unknown users stable
/// across restarts and unpredictable to anyone without the file.
pub fn decoy_key(data_dir: &Path) -> Result<Vec<u8>, SecretError> {
    kept_secret(data_dir, DECOY_KEY_FILE)
}

/// A 32-byte secret kept in `<data_dir>/<file>`: read, or created there (random, mode
/// 0600) on first start, so what it keys stays the same across restarts.
pub fn kept_secret(data_dir: &Path, file: &str) -> Result<Vec<u8>, SecretError> {
    let path = data_dir.join(file);
    let err = |source| SecretError {
        path: path.clone(),
        source,
    };
    match std::fs::read(&path) {
        Ok(key) if key.len() == DECOY_KEY_LEN => return Ok(key),
        Ok(_) => {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("expected {DECOY_KEY_LEN} bytes; delete the file to make a new one"),
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    std::fs::create_dir_all(data_dir).map_err(err)?;
    let key = random_secret();
    let mut options = std::fs::OpenOptions::new();
    // create_new: two processes starting at once can't both write one.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(err)?;
    file.write_all(&key).map_err(err)?;
    file.sync_all().map_err(err)?;
    Ok(key)
}

async fn derive_off_thread(password: String, iterations: u32) -> Vec<ScramCredential> {
    match tokio::task::spawn_blocking(move || scram_credentials(&password, iterations)).await {
        Ok(creds) => creds,
        // Only a panic inside PBKDF2 could land here; there is no sane way on.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7677_test_vector_sha256() {
        // RFC 7677 §3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, i=4096.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = b64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let cred = credential_for::<Sha256>(ScramHash::Sha256, "pencil", salt, 4096);
        // ServerSignature in the RFC is computed from this ServerKey; check StoredKey via PLAIN.
        assert!(verify_password("pencil", &cred));
        assert!(!verify_password("pencil2", &cred));
        assert_eq!(cred.stored_key.len(), 32);
    }

    #[test]
    fn credentials_hold_no_password() {
        let creds = scram_credentials("correct horse", 4096);
        assert_eq!(creds.len(), 2);
        for c in &creds {
            assert!(verify_password("correct horse", c));
            let hay = [&c.salt[..], &c.stored_key[..], &c.server_key[..]].concat();
            assert!(!hay.windows(7).any(|w| w == b"correct"));
        }
        assert_ne!(creds[0].salt, creds[1].salt);
    }

    #[test]
    fn passwords_are_prepared_with_opaque_string() {
        let creds = scram_credentials(&prepare_password("caf\u{e9}\u{a0}1").unwrap(), 4096);
        // Decomposed "é" and a no-break space are the same password (RFC 8265 §4.2).
        assert!(verify_password("cafe\u{301} 1", &creds[1]));
        assert!(!verify_password("cafe 1", &creds[1]));
        assert!(matches!(
            prepare_password("a\u{7}b"),
            Err(AccountError::BadCharacter)
        ));
        let rules = AuthConfig::default();
        assert!(matches!(
            check_new_password("abc", &rules),
            Err(AccountError::TooShort(4))
        ));
        assert_eq!(
            check_new_password("e\u{301}tat", &rules).unwrap(),
            "\u{e9}tat"
        );
    }

    #[test]
    fn account_ids_are_normalised() {
        let id = account_id("Alice@LocalHost").unwrap();
        assert_eq!(
            (id.username.as_str(), id.domain.as_str()),
            ("alice", "localhost")
        );
        assert!(matches!(
            account_id("localhost"),
            Err(AccountError::NoUsername(_))
        ));
        assert!(account_id("a@b@c").is_err());
        assert!(local_account("bob", "localhost").is_some());
        assert!(local_account("bob@evil", "localhost").is_none());
    }
}
