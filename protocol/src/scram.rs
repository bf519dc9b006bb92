//! SCRAM messages from the client (RFC 5802 §7, RFC 7677), wire format only.
//!
//! The server's side of the exchange (nonces, proof check against the stored keys) lives in
//! the server crate; this module only splits the client's two messages into their parts.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Why a client's SCRAM message was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScramParseError {
    /// Not a message of the RFC 5802 §7 grammar (→ `malformed-request`).
    #[error("malformed SCRAM message")]
    Malformed,
    /// `p=`: the client wants channel binding, which is not offered (no -PLUS mechanism).
    #[error("channel binding requested but not offered")]
    ChannelBinding,
}

/// A client-first-message (RFC 5802 §7: `gs2-header client-first-message-bare`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientFirst<'a> {
    /// Everything before the bare message, both commas included (`n,,`, `y,a=…,`).
    pub gs2_header: &'a str,
    /// The authorization identity, `=2C`/`=3D` decoded, when the client asked for one.
    pub authzid: Option<String>,
    /// The authentication identity, `=2C`/`=3D` decoded; never empty.
    pub username: String,
    /// The client's nonce; never empty.
    pub nonce: &'a str,
    /// The client-first-message-bare, which the AuthMessage repeats (§3).
    pub bare: &'a str,
}

/// Parses a client-first-message.
pub fn parse_client_first(msg: &[u8]) -> Result<ClientFirst<'_>, ScramParseError> {
    let msg = std::str::from_utf8(msg).map_err(|_| ScramParseError::Malformed)?;
    let mut parts = msg.splitn(3, ',');
    let cbind = parts.next().ok_or(ScramParseError::Malformed)?;
    let authzid = parts.next().ok_or(ScramParseError::Malformed)?;
    let bare = parts.next().ok_or(ScramParseError::Malformed)?;
    match cbind {
        // "y": the client could bind but thinks we can't, which is true (no -PLUS offered).
        "n" | "y" => {}
        c if c.starts_with("p=") => return Err(ScramParseError::ChannelBinding),
        _ => return Err(ScramParseError::Malformed),
    }
    let authzid = match authzid {
        "" => None,
        a => Some(decode_saslname(
            a.strip_prefix("a=").ok_or(ScramParseError::Malformed)?,
        )?),
    };
    let mut fields = bare.split(',');
    let username = next_attribute(&mut fields, "n=")?;
    let nonce = next_attribute(&mut fields, "r=")?;
    Ok(ClientFirst {
        gs2_header: &msg[..msg.len() - bare.len()],
        authzid,
        username: decode_saslname(username)?,
        nonce,
        bare,
    })
}

/// A client-final-message (RFC 5802 §7), split but not checked against the exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientFinal<'a> {
    /// client-final-message-without-proof, which the AuthMessage repeats (§3).
    pub without_proof: &'a str,
    /// `c=`: the base64 of the GS2 header (and binding data, which we never offer).
    pub channel_binding: &'a str,
    /// `r=`: the client's nonce followed by ours.
    pub nonce: &'a str,
    /// `p=`: the base64 ClientProof, decoded by [`ClientFinal::proof`].
    pub proof_base64: &'a str,
}

impl ClientFinal<'_> {
    /// The decoded ClientProof.
    pub fn proof(&self) -> Result<Vec<u8>, ScramParseError> {
        STANDARD
            .decode(self.proof_base64)
            .map_err(|_| ScramParseError::Malformed)
    }
}

/// Parses a client-final-message.
pub fn parse_client_final(msg: &[u8]) -> Result<ClientFinal<'_>, ScramParseError> {
    let msg = std::str::from_utf8(msg).map_err(|_| ScramParseError::Malformed)?;
    let (without_proof, proof_base64) = msg.rsplit_once(",p=").ok_or(ScramParseError::Malformed)?;
    let mut fields = without_proof.split(',');
    let channel_binding = next_attribute(&mut fields, "c=")?;
    let nonce = next_attribute(&mut fields, "r=")?;
    Ok(ClientFinal {
        without_proof,
        channel_binding,
        nonce,
        proof_base64,
    })
}

/// `saslname` decoding (RFC 5802 §5.1): `=2C` is `,` and `=3D` is `=`; any other `=` is
/// malformed, and so is an empty name.
pub fn decode_saslname(s: &str) -> Result<String, ScramParseError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramParseError::Malformed),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramParseError::Malformed);
    }
    Ok(out)
}

/// The value of the next `k=value` attribute, which must be `key` and non-empty
/// (RFC 5802 §5.1 fixes the order of the attributes we read).
fn next_attribute<'a>(
    fields: &mut impl Iterator<Item = &'a str>,
    key: &str,
) -> Result<&'a str, ScramParseError> {
    fields
        .next()
        .and_then(|f| f.strip_prefix(key))
        .filter(|value| !value.is_empty())
        .ok_or(ScramParseError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_first_forms() {
        let first = parse_client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(first.gs2_header, "n,,");
        assert_eq!(first.username, "user");
        assert_eq!(first.nonce, "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(first.bare, "n=user,r=rOprNGfwEbeRWgbNEkqO");
        let first = parse_client_first(b"y,a=adm=2Cin,n=a=3Db,r=x,e=ext").unwrap();
        assert_eq!(first.authzid.as_deref(), Some("adm,in"));
        assert_eq!(first.username, "a=b");
        assert_eq!(
            parse_client_first(b"p=tls-unique,,n=u,r=x"),
            Err(ScramParseError::ChannelBinding)
        );
        for bad in [
            &b"n,,r=x"[..],
            b"n,,n=,r=x",
            b"n,,n=u",
            b"q,,n=u,r=x",
            b"n,b,n=u,r=x",
        ] {
            assert_eq!(parse_client_first(bad), Err(ScramParseError::Malformed));
        }
    }

    #[test]
    fn client_final_forms() {
        let last = parse_client_final(b"c=biws,r=abcdef,p=dGVzdA==").unwrap();
        assert_eq!(last.without_proof, "c=biws,r=abcdef");
        assert_eq!((last.channel_binding, last.nonce), ("biws", "abcdef"));
        assert_eq!(last.proof(), Ok(b"test".to_vec()));
        let last = parse_client_final(b"c=biws,r=abc,p=!!").unwrap();
        assert_eq!(last.proof(), Err(ScramParseError::Malformed));
        for bad in [
            &b"c=biws,r=abc"[..],
            b"r=abc,c=biws,p=AA==",
            b"c=biws,p=AA==",
        ] {
            assert_eq!(parse_client_final(bad), Err(ScramParseError::Malformed));
        }
    }

    #[test]
    fn saslname_escapes() {
        assert_eq!(decode_saslname("a=2Cb=3Dc").as_deref(), Ok("a,b=c"));
        assert!(decode_saslname("a=4").is_err());
        assert!(decode_saslname("").is_err());
    }
}
