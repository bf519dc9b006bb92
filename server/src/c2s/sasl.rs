//! Running one SASL exchange (RFC 6120 §6.4) on a stream: PLAIN, SCRAM-SHA-1,
//! SCRAM-SHA-256, ANONYMOUS. Mechanism availability is decided by [`super::features`].

use ::sasl::common::scram::{ScramProvider, Sha1, Sha256};
use jabberwock_protocol::ns;
use jabberwock_protocol::sasl::{self, SaslFailure, SaslRequest};
use jabberwock_protocol::stream::StreamCondition;
use jabberwock_storage::{AccountId, ScramCredential, ScramHash};

use super::features::{ANONYMOUS, PLAIN, SCRAM_SHA_1, SCRAM_SHA_256};
use super::scram::{ScramError, ScramServer};
use crate::accounts::{self, account_id, local_account};
use crate::error::{store_to_stream_error, SessionEnd};
use crate::server::Server;
use crate::stream::connection::Connection;

/// Who authenticated.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub account: AccountId,
    /// A SASL ANONYMOUS guest: the account exists only for this session.
    pub guest: bool,
}

/// The end of one exchange: success (already answered with `<success/>`), or a failure
/// condition that the caller answers after counting it.
pub enum Outcome {
    Success(Authenticated),
    Failure(SaslFailure),
}

/// One exchange as the caller logs it: its outcome, and the username the client gave.
pub struct Attempt {
    pub outcome: Outcome,
    /// The authentication identity (RFC 4422 §2 authcid) the client sent, once decoded;
    /// `None` before that (an abort, a malformed first message, ANONYMOUS).
    pub authcid: Option<String>,
}

pub async fn exchange(
    server: &Server,
    conn: &mut Connection,
    host: &str,
    mechanism: &str,
    initial: Option<Vec<u8>>,
) -> Result<Attempt, SessionEnd> {
    let mut steps = Steps {
        conn,
        initial,
        authcid: None,
    };
    let outcome = match mechanism {
        PLAIN => plain(server, &mut steps, host).await,
        SCRAM_SHA_256 => scram::<Sha256>(server, &mut steps, host, ScramHash::Sha256).await,
        SCRAM_SHA_1 => scram::<Sha1>(server, &mut steps, host, ScramHash::Sha1).await,
        ANONYMOUS => {
            // The guest gets a real (credential-less) account for the visit, so rosters,
            // subscriptions and offline messages work; see [`super::guest`].
            let account = super::guest::create(server, host).await?;
            if let Err(e) = steps.conn.send(&sasl::success(&[])).await {
                super::guest::forget(server, &account).await;
                return Err(e.into());
            }
            Ok(Outcome::Success(Authenticated {
                account,
                guest: true,
            }))
        }
        _ => Ok(Outcome::Failure(SaslFailure::InvalidMechanism)),
    }?;
    Ok(Attempt {
        outcome,
        authcid: steps.authcid,
    })
}

/// The client's messages, one per call: the initial response first, then a `<response/>`
/// to each `<challenge/>` we send.
struct Steps<'a> {
    conn: &'a mut Connection,
    initial: Option<Vec<u8>>,
    /// Set by the mechanism once it has decoded the username.
    authcid: Option<String>,
}

enum Step {
    Data(Vec<u8>),
    Abort,
}

impl Steps<'_> {
    async fn first(&mut self) -> Result<Step, SessionEnd> {
        match self.initial.take() {
            Some(data) => Ok(Step::Data(data)),
            // RFC 6120 §6.4.2: no initial response means an empty challenge first.
            None => self.challenge(&[]).await,
        }
    }

    async fn challenge(&mut self, data: &[u8]) -> Result<Step, SessionEnd> {
        self.conn.send(&sasl::challenge(data)).await?;
        let element = super::next_element(self.conn).await?;
        if element.ns() != ns::SASL {
            // RFC 6120 §6.4.4 allows nothing but SASL elements during an exchange.
            return Err(SessionEnd::error(StreamCondition::NotAuthorized));
        }
        match sasl::parse_request(&element) {
            Ok(SaslRequest::Response(data)) => Ok(Step::Data(data)),
            Ok(SaslRequest::Abort) => Ok(Step::Abort),
            // A new <auth/> mid-exchange, or undecodable data: fails the exchange.
            Ok(SaslRequest::Auth { .. }) | Err(_) => Ok(Step::Data(Vec::new())),
        }
    }
}

/// SASL PLAIN (RFC 4616): `authzid NUL authcid NUL passwd`, checked against StoredKey.
async fn plain(server: &Server, steps: &mut Steps<'_>, host: &str) -> Result<Outcome, SessionEnd> {
    let data = match steps.first().await? {
        Step::Data(data) => data,
        Step::Abort => return Ok(Outcome::Failure(SaslFailure::Aborted)),
    };
    let mut fields = data.split(|b| *b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Ok(Outcome::Failure(SaslFailure::MalformedRequest));
    };
    let (Ok(authzid), Ok(authcid), Ok(password)) = (
        std::str::from_utf8(authzid),
        std::str::from_utf8(authcid),
        std::str::from_utf8(password),
    ) else {
        return Ok(Outcome::Failure(SaslFailure::MalformedRequest));
    };
    steps.authcid = Some(authcid.to_owned());
    let Some(account) = local_account(authcid, host) else {
        return Ok(Outcome::Failure(SaslFailure::NotAuthorized));
    };
    // COMPAT: XIFF sends the bare JID as authzid; accept it when it names the same account.
    if !authzid.is_empty() && account_id(authzid).ok().as_ref() != Some(&account) {
        return Ok(Outcome::Failure(SaslFailure::InvalidAuthzid));
    }
    if password_matches(server, &account, password).await? {
        steps.conn.send(&sasl::success(&[])).await?;
        Ok(Outcome::Success(Authenticated {
            account,
            guest: false,
        }))
    } else {
        Ok(Outcome::Failure(SaslFailure::NotAuthorized))
    }
}

/// Whether `password` is `account`'s, checked against its stored SCRAM-SHA-256 key (else
/// SCRAM-SHA-1). Used by SASL PLAIN and XEP-0078. An account without credentials (unknown,
/// or a guest) never matches.
pub(super) async fn password_matches(
    server: &Server,
    account: &AccountId,
    password: &str,
) -> Result<bool, SessionEnd> {
    let (credential, sha1_only) = match credential(server, account, ScramHash::Sha256).await {
        Ok(Some(c)) => (Some(c), false),
        Ok(None) => (
            credential(server, account, ScramHash::Sha1)
                .await
                .map_err(store_to_stream_error)?,
            true,
        ),
        Err(e) => return Err(store_to_stream_error(e)),
    };
    // Unknown users cost the same PBKDF2 work as known ones, so timing doesn't tell them apart.
    let known = credential.is_some();
    let credential = credential.unwrap_or_else(|| decoy(account, ScramHash::Sha256, server));
    let owned = password.to_owned();
    let ok = tokio::task::spawn_blocking(move || accounts::verify_password(&owned, &credential))
        .await
        .unwrap_or(false);
    if ok && known && sha1_only {
        add_sha256_keys(server, account, password).await;
    }
    Ok(ok && known)
}

/// An account that has only SCRAM-SHA-1 keys (imported from Prosody, which keeps no
/// others) logged in with its password: keys for both hashes are derived from it and
/// stored, so that clients that use SCRAM-SHA-256 (RFC 7677) log in from now on. A failure
/// only costs the account SCRAM-SHA-256 until next time.
async fn add_sha256_keys(server: &Server, account: &AccountId, password: &str) {
    let Ok(prepared) = accounts::prepare_password(password) else {
        return;
    };
    let prepared = prepared.into_owned();
    let iterations = server.live.get().auth.scram_iterations;
    let derived =
        tokio::task::spawn_blocking(move || accounts::scram_credentials(&prepared, iterations));
    let Ok(credentials) = derived.await else {
        return;
    };
    match server.store.set_credentials(account, &credentials).await {
        Ok(()) => tracing::info!(
            user = %account.username,
            domain = %account.domain,
            "SCRAM-SHA-256 keys derived at a password login (the account had SCRAM-SHA-1 only)"
        ),
        Err(e) => tracing::warn!(
            user = %account.username,
            error = %e,
            "SCRAM-SHA-256 keys not stored"
        ),
    }
}

/// The account's stored SCRAM keys for `hash`, timed (`crate::metrics`).
async fn credential(
    server: &Server,
    account: &AccountId,
    hash: ScramHash,
) -> Result<Option<ScramCredential>, jabberwock_storage::StoreError> {
    let read = server.store.credential(account, hash);
    crate::metrics::storage(crate::metrics::StorageOp::Credentials, read).await
}

/// SCRAM (RFC 5802 / RFC 7677) without channel binding.
async fn scram<H: ScramProvider>(
    server: &Server,
    steps: &mut Steps<'_>,
    host: &str,
    hash: ScramHash,
) -> Result<Outcome, SessionEnd> {
    let mut scram = ScramServer::<H>::default();
    let first = match steps.first().await? {
        Step::Data(data) => data,
        Step::Abort => return Ok(Outcome::Failure(SaslFailure::Aborted)),
    };
    let client_first = match scram.client_first(&first) {
        Ok(cf) => cf,
        Err(_) => return Ok(Outcome::Failure(SaslFailure::MalformedRequest)),
    };
    steps.authcid = Some(client_first.username.clone());
    let account = local_account(&client_first.username, host);
    if let (Some(authzid), Some(account)) = (&client_first.authzid, &account) {
        if account_id(authzid).ok().as_ref() != Some(account) {
            return Ok(Outcome::Failure(SaslFailure::InvalidAuthzid));
        }
    }
    let stored = match &account {
        Some(account) => credential(server, account, hash)
            .await
            .map_err(store_to_stream_error)?,
        None => None,
    };
    let known = stored.is_some();
    // An unknown user gets a well-formed challenge too (RFC 5802 §9 suggests not revealing
    // which usernames exist); its proof can never match.
    let fallback = AccountId {
        username: client_first.username.clone(),
        domain: host.to_owned(),
    };
    let credential =
        stored.unwrap_or_else(|| decoy(account.as_ref().unwrap_or(&fallback), hash, server));
    let server_first = match scram.server_first(credential) {
        Ok(sf) => sf,
        Err(_) => return Ok(Outcome::Failure(SaslFailure::TemporaryAuthFailure)),
    };
    let client_final = match steps.challenge(&server_first).await? {
        Step::Data(data) => data,
        Step::Abort => return Ok(Outcome::Failure(SaslFailure::Aborted)),
    };
    match (scram.client_final(&client_final), account) {
        (Ok(server_final), Some(account)) if known => {
            // RFC 6120 §6.3.10: the server-final-message rides on <success/>.
            steps.conn.send(&sasl::success(&server_final)).await?;
            Ok(Outcome::Success(Authenticated {
                account,
                guest: false,
            }))
        }
        (Err(ScramError::Malformed), _) => Ok(Outcome::Failure(SaslFailure::MalformedRequest)),
        _ => Ok(Outcome::Failure(SaslFailure::NotAuthorized)),
    }
}

/// A credential that matches no password, stable per username so repeated probes look alike.
/// Its salt is HMAC-SHA-256 of the name under the server's secret (`Server::decoy_key`,
/// kept in `data_dir`): stable across restarts like a real account's, and not computable
/// by a prober, who could otherwise tell a decoy salt from a stored (random) one.
fn decoy(account: &AccountId, hash: ScramHash, server: &Server) -> ScramCredential {
    let name = format!("{}\0{}", account.username, account.domain);
    // HMAC takes keys of any length: this cannot fail.
    let mac = Sha256::hmac(name.as_bytes(), &server.decoy_key).unwrap_or_default();
    let salt = mac.get(..16).unwrap_or(&mac).to_vec();
    let len = match hash {
        ScramHash::Sha1 => 20,
        ScramHash::Sha256 => 32,
    };
    ScramCredential {
        hash,
        salt,
        iterations: server.live.get().auth.scram_iterations,
        // No key hashes to all zeros, so no proof can match.
        stored_key: vec![0; len],
        server_key: vec![0; len],
    }
}
