//! SCRAM server side (RFC 5802, RFC 7677) verifying against StoredKey/ServerKey only.
//!
//! Why not `sasl::server::mechanisms::Scram`: it needs the SaltedPassword (which we refuse to
//! store), looks credentials up synchronously (ours live behind an async store), and rejects
//! the `n,,` GS2 header that clients without channel binding send. We keep the `sasl` crate's
//! hash primitives (`ScramProvider`) and nonce generator, and do the message flow here.

use std::marker::PhantomData;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use jabberwock_protocol::scram::{self, ScramParseError};
use jabberwock_storage::ScramCredential;
use sasl::common::scram::{generate_nonce, ScramProvider};

use crate::accounts::constant_time_eq;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message")]
    Malformed,
    #[error("channel binding requested but not offered")]
    ChannelBinding,
    #[error("proof does not match")]
    BadProof,
    #[error("out of order")]
    OutOfOrder,
}

impl From<ScramParseError> for ScramError {
    fn from(e: ScramParseError) -> Self {
        match e {
            ScramParseError::Malformed => ScramError::Malformed,
            ScramParseError::ChannelBinding => ScramError::ChannelBinding,
        }
    }
}

/// What the client-first-message told us (RFC 5802 §5.1).
pub struct ClientFirst {
    /// The authentication identity, `=2C`/`=3D` decoded.
    pub username: String,
    /// Authorization identity, when the client asked for one.
    pub authzid: Option<String>,
}

enum State {
    Start,
    GotClientFirst {
        gs2_header: String,
        client_first_bare: String,
        client_nonce: String,
    },
    SentServerFirst {
        gs2_header: String,
        auth_prefix: String,
        nonce: String,
        credential: ScramCredential,
    },
    Done,
}

pub struct ScramServer<H: ScramProvider> {
    state: State,
    _hash: PhantomData<H>,
}

impl<H: ScramProvider> Default for ScramServer<H> {
    fn default() -> Self {
        ScramServer {
            state: State::Start,
            _hash: PhantomData,
        }
    }
}

impl<H: ScramProvider> ScramServer<H> {
    /// Step 1: parse client-first-message.
    pub fn client_first(&mut self, msg: &[u8]) -> Result<ClientFirst, ScramError> {
        if !matches!(self.state, State::Start) {
            return Err(ScramError::OutOfOrder);
        }
        let first = scram::parse_client_first(msg)?;
        self.state = State::GotClientFirst {
            gs2_header: first.gs2_header.to_owned(),
            client_first_bare: first.bare.to_owned(),
            client_nonce: first.nonce.to_owned(),
        };
        Ok(ClientFirst {
            username: first.username,
            authzid: first.authzid,
        })
    }

    /// Step 2: server-first-message, built from the stored (or decoy) credential.
    pub fn server_first(&mut self, credential: ScramCredential) -> Result<Vec<u8>, ScramError> {
        let State::GotClientFirst {
            gs2_header,
            client_first_bare,
            client_nonce,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(ScramError::OutOfOrder);
        };
        let server_nonce = generate_nonce().map_err(|_| ScramError::Malformed)?;
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        self.state = State::SentServerFirst {
            gs2_header,
            auth_prefix: format!("{client_first_bare},{server_first}"),
            nonce,
            credential,
        };
        Ok(server_first.into_bytes())
    }

    /// Step 3: check client-final-message; returns server-final-message (`v=…`).
    pub fn client_final(&mut self, msg: &[u8]) -> Result<Vec<u8>, ScramError> {
        let State::SentServerFirst {
            gs2_header,
            auth_prefix,
            nonce,
            credential,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(ScramError::OutOfOrder);
        };
        let last = scram::parse_client_final(msg)?;
        // RFC 5802 §5.1: c= must be the GS2 header we saw (no binding data: we offer no -PLUS).
        if B64.decode(last.channel_binding).ok().as_deref() != Some(gs2_header.as_bytes())
            || last.nonce != nonce
        {
            return Err(ScramError::BadProof);
        }
        let proof = last.proof()?;
        let without_proof = last.without_proof;
        let auth_message = format!("{auth_prefix},{without_proof}");
        let client_signature = H::hmac(auth_message.as_bytes(), &credential.stored_key)
            .map_err(|_| ScramError::BadProof)?;
        if proof.len() != client_signature.len() {
            return Err(ScramError::BadProof);
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        if !constant_time_eq(&H::hash(&client_key), &credential.stored_key) {
            return Err(ScramError::BadProof);
        }
        let server_signature = H::hmac(auth_message.as_bytes(), &credential.server_key)
            .map_err(|_| ScramError::BadProof)?;
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jabberwock_storage::ScramHash;
    use sasl::common::scram::Sha256;

    /// RFC 7677 §3's example exchange, with our server nonce spliced in.
    #[test]
    fn rfc7677_exchange_with_stored_keys_only() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let cred = crate::accounts::scram_credentials("pencil", 4096)
            .into_iter()
            .find(|c| c.hash == ScramHash::Sha256)
            .unwrap();
        // Re-derive with the RFC's salt so the client side below can be computed.
        let salted =
            Sha256::derive(&sasl::common::Password::Plain("pencil".into()), &salt, 4096).unwrap();
        let client_key = Sha256::hmac(b"Client Key", &salted).unwrap();
        let cred = ScramCredential {
            salt: salt.clone(),
            stored_key: Sha256::hash(&client_key),
            server_key: Sha256::hmac(b"Server Key", &salted).unwrap(),
            ..cred
        };
        let mut server = ScramServer::<Sha256>::default();
        let first = server
            .client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
            .unwrap();
        assert_eq!(first.username, "user");
        let sf = String::from_utf8(server.server_first(cred).unwrap()).unwrap();
        let nonce = sf
            .strip_prefix("r=")
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_owned();
        assert!(nonce.starts_with("rOprNGfwEbeRWgbNEkqO"));
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("n=user,r=rOprNGfwEbeRWgbNEkqO,{sf},{without_proof}");
        let sig = Sha256::hmac(auth.as_bytes(), &Sha256::hash(&client_key)).unwrap();
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let final_msg = format!("{without_proof},p={}", B64.encode(&proof));
        let v = server.client_final(final_msg.as_bytes()).unwrap();
        assert!(v.starts_with(b"v="));
    }

    #[test]
    fn wrong_proof_and_malformed_messages_fail() {
        let mut server = ScramServer::<Sha256>::default();
        assert_eq!(
            server.client_first(b"p=tls-unique,,n=u,r=x").err(),
            Some(ScramError::ChannelBinding)
        );
        let mut server = ScramServer::<Sha256>::default();
        assert_eq!(
            server.client_first(b"n,,r=x").err(),
            Some(ScramError::Malformed)
        );
        let mut server = ScramServer::<Sha256>::default();
        server.client_first(b"n,,n=a=2Cb,r=abc").unwrap();
        let cred = crate::accounts::scram_credentials("pw", 4096)
            .pop()
            .unwrap();
        let sf = String::from_utf8(server.server_first(cred).unwrap()).unwrap();
        let nonce = sf
            .strip_prefix("r=")
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_owned();
        let bad = format!("c=biws,r={nonce},p={}", B64.encode([0u8; 32]));
        assert_eq!(
            server.client_final(bad.as_bytes()).err(),
            Some(ScramError::BadProof)
        );
    }
}
