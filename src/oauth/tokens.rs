//! OAuth access tokens: short-lived JWTs bound to the client's DPoP key (`cnf.jkt`) and naming
//! the grant they came from (`sid`), so that ending the grant ends them too.
//!
//! They are HS256 under a key derived from the server's JWT secret (only this server reads
//! them; a derived key keeps them from ever passing as a password session's token, which uses
//! the secret itself). Refresh tokens are not JWTs: random strings, stored hashed.

use pds_crypto::jws;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth::TokenError;

const ACCESS_TYP: &str = "at+jwt";

/// The key OAuth access tokens are signed with, derived from the JWT secret.
pub fn derive_key(jwt_secret: &str, purpose: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"pds oauth key\0");
    hash.update(purpose.as_bytes());
    hash.update(b"\0");
    hash.update(jwt_secret.as_bytes());
    hash.finalize().into()
}

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    pub did: String,
    pub grant_id: String,
    pub client_id: String,
    pub scope: String,
    pub jkt: String,
    pub exp: i64,
}

/// Issues an access token.
pub fn issue_access(
    key: &[u8; 32],
    issuer: &str,
    audience: &str,
    claims: &AccessClaims,
    now: i64,
) -> String {
    let body = json!({
        "iss": issuer,
        "aud": audience,
        "sub": claims.did,
        "client_id": claims.client_id,
        "scope": claims.scope,
        "cnf": {"jkt": claims.jkt},
        "sid": claims.grant_id,
        "jti": crate::auth::random_id(),
        "iat": now,
        "exp": claims.exp,
    });
    jws::sign_hs256(key, &body, Some(ACCESS_TYP))
}

/// Checks an access token's type, signature, expiry and audience; whether its grant is still
/// live is the database's answer.
pub fn verify_access(
    key: &[u8; 32],
    audience: &str,
    token: &str,
    now: i64,
) -> Result<AccessClaims, TokenError> {
    let (header, _) =
        jws::decode_unverified(token).map_err(|_| TokenError::Invalid("malformed token"))?;
    if header.get("typ").and_then(Value::as_str) != Some(ACCESS_TYP) {
        return Err(TokenError::Invalid("wrong token type"));
    }
    let claims =
        jws::verify_hs256(token, key).map_err(|_| TokenError::Invalid("bad token signature"))?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(TokenError::Invalid("token has no expiry"))?;
    if exp <= now {
        return Err(TokenError::Expired);
    }
    if claims.get("aud").and_then(Value::as_str) != Some(audience) {
        return Err(TokenError::Invalid("token is for another service"));
    }
    let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(AccessClaims {
        did: text("sub").ok_or(TokenError::Invalid("token has no subject"))?,
        grant_id: text("sid").ok_or(TokenError::Invalid("token has no session"))?,
        client_id: text("client_id").ok_or(TokenError::Invalid("token has no client"))?,
        scope: text("scope").ok_or(TokenError::Invalid("token has no scope"))?,
        jkt: claims
            .pointer("/cnf/jkt")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(TokenError::Invalid("token is not bound to a key"))?,
        exp,
    })
}

/// Whether a token claims to be bound to a key (`cnf`), without checking anything: to tell a
/// client that sent an OAuth token as a bearer token what it did wrong.
pub fn looks_dpop_bound(token: &str) -> bool {
    jws::decode_unverified(token).is_ok_and(|(_, claims)| claims.get("cnf").is_some())
}

/// A random secret token (256 bits, base64url): refresh tokens, codes, request ids.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    format!("{prefix}{}", data_encoding::BASE64URL_NOPAD.encode(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessClaims {
        AccessClaims {
            did: "did:plc:a".into(),
            grant_id: "g".into(),
            client_id: "http://localhost".into(),
            scope: "atproto transition:generic".into(),
            jkt: "thumb".into(),
            exp: 200,
        }
    }

    #[test]
    fn access_tokens_verify_and_expire() {
        let key = derive_key("secret", "access");
        let token = issue_access(&key, "https://pds", "did:web:pds", &claims(), 100);
        assert_eq!(
            verify_access(&key, "did:web:pds", &token, 150).unwrap(),
            claims()
        );
        assert_eq!(
            verify_access(&key, "did:web:pds", &token, 200),
            Err(TokenError::Expired)
        );
        assert!(verify_access(&key, "did:web:other", &token, 150).is_err());
        assert!(verify_access(&derive_key("other", "access"), "did:web:pds", &token, 150).is_err());
        // Never a password session's token: those are signed with the secret itself.
        assert!(crate::auth::verify_access(b"secret", "did:web:pds", &token).is_err());
    }
}
