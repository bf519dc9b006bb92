//! Accounts as the server sees them: turning a password into SCRAM credentials
//! (RFC 5802 §3) and checking a password against them. The password itself is never stored.

use std::sync::Arc;

use jabberwock_protocol::jid::{self, BareJid};
use jabberwock_storage::{AccountId, ScramCredential, ScramHash, Store, StoreError};
use rand::RngCore;
use sasl::common::scram::{ScramProvider, Sha1, Sha256};
use sasl::common::Password;

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

/// Whether `password` produces the stored key of `credential` (SASL PLAIN).
/// CPU-heavy (PBKDF2): call from a blocking thread.
pub fn verify_password(password: &str, credential: &ScramCredential) -> bool {
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
    iterations: u32,
) -> Result<(), AccountError> {
    let creds = credentials_for_new_password(password, iterations).await?;
    store.create_account(id, &creds).await?;
    Ok(())
}

pub async fn set_password(
    store: &Arc<dyn Store>,
    id: &AccountId,
    password: String,
    iterations: u32,
) -> Result<(), AccountError> {
    let creds = credentials_for_new_password(password, iterations).await?;
    store.set_credentials(id, &creds).await?;
    Ok(())
}

/// Refuses an empty password, then runs PBKDF2 off the async threads.
async fn credentials_for_new_password(
    password: String,
    iterations: u32,
) -> Result<Vec<ScramCredential>, AccountError> {
    if password.is_empty() {
        return Err(AccountError::EmptyPassword);
    }
    Ok(derive_off_thread(password, iterations).await)
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
