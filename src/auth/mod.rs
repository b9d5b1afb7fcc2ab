//! Session authentication: the access and refresh JWTs of `createSession`, and the extractors
//! handlers use to require them.
//!
//! Tokens are HS256 JWTs signed with the server's JWT secret, shaped as the reference PDS shapes
//! them so clients that inspect them behave the same: access tokens have `typ: at+jwt`, a scope
//! saying what kind of login made them (`com.atproto.access`, or `com.atproto.appPass` /
//! `com.atproto.appPassPrivileged` for app passwords), `sub` = the account DID, `aud` = this
//! server's DID, and expire after two hours; refresh tokens have `typ: refresh+jwt`, scope
//! `com.atproto.refresh`, a `jti` recorded in the database, and expire after 90 days. A refresh
//! token works once: refreshing consumes it, so a stolen one stops working when either party
//! uses it.
//!
//! Tokens other parties sign (inter-service auth, ES256K/ES256 with a DID's key) are checked in
//! [`service_jwt`]; the operator's admin credentials in [`admin`].

pub mod admin;
mod extract;
pub mod service_jwt;

pub use extract::{AccessAuth, RefreshAuth};

use pds_crypto::jws;
use serde_json::json;

/// How long an access token lives.
pub const ACCESS_TTL_SECS: i64 = 2 * 60 * 60;
/// How long a refresh token lives.
pub const REFRESH_TTL_SECS: i64 = 90 * 24 * 60 * 60;

const ACCESS_TYP: &str = "at+jwt";
const REFRESH_TYP: &str = "refresh+jwt";

/// What kind of login an access token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The account password: everything.
    Full,
    /// A privileged app password: everything but account management (and can use DMs).
    AppPassPrivileged,
    /// An ordinary app password: no account management, no DMs.
    AppPass,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Full => "com.atproto.access",
            Scope::AppPassPrivileged => "com.atproto.appPassPrivileged",
            Scope::AppPass => "com.atproto.appPass",
        }
    }

    fn parse(s: &str) -> Option<Scope> {
        match s {
            "com.atproto.access" => Some(Scope::Full),
            "com.atproto.appPassPrivileged" => Some(Scope::AppPassPrivileged),
            "com.atproto.appPass" => Some(Scope::AppPass),
            _ => None,
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid(&'static str),
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A random token id (128 bits, base32).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    data_encoding::BASE32_NOPAD.encode(&bytes).to_lowercase()
}

/// A fresh pair of session tokens.
pub struct SessionTokens {
    pub access_jwt: String,
    pub refresh_jwt: String,
    pub refresh_id: String,
    pub refresh_expires_at: i64,
}

/// Issues an access and a refresh token for `did`. The caller records `refresh_id`.
pub fn issue(secret: &[u8], service_did: &str, did: &str, scope: Scope) -> SessionTokens {
    let now = now_secs();
    let access = json!({
        "scope": scope.as_str(), "sub": did, "aud": service_did, "iat": now, "exp": now + ACCESS_TTL_SECS,
    });
    let refresh_id = random_id();
    let refresh_expires_at = now + REFRESH_TTL_SECS;
    let refresh = json!({
        "scope": "com.atproto.refresh", "sub": did, "aud": service_did, "jti": refresh_id,
        "iat": now, "exp": refresh_expires_at,
    });
    SessionTokens {
        access_jwt: jws::sign_hs256(secret, &access, Some(ACCESS_TYP)),
        refresh_jwt: jws::sign_hs256(secret, &refresh, Some(REFRESH_TYP)),
        refresh_id,
        refresh_expires_at,
    }
}

/// The verified claims of one of our tokens.
struct Claims {
    sub: String,
    scope: String,
    jti: Option<String>,
}

fn verify(secret: &[u8], service_did: &str, token: &str, typ: &str) -> Result<Claims, TokenError> {
    let (header, _) =
        jws::decode_unverified(token).map_err(|_| TokenError::Invalid("malformed token"))?;
    if header.get("typ").and_then(|t| t.as_str()) != Some(typ) {
        return Err(TokenError::Invalid("wrong token type"));
    }
    let claims =
        jws::verify_hs256(token, secret).map_err(|_| TokenError::Invalid("bad token signature"))?;
    let exp = claims
        .get("exp")
        .and_then(|e| e.as_i64())
        .ok_or(TokenError::Invalid("token has no expiry"))?;
    if exp <= now_secs() {
        return Err(TokenError::Expired);
    }
    if claims.get("aud").and_then(|a| a.as_str()) != Some(service_did) {
        return Err(TokenError::Invalid("token is for another service"));
    }
    let text = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    Ok(Claims {
        sub: text("sub").ok_or(TokenError::Invalid("token has no subject"))?,
        scope: text("scope").ok_or(TokenError::Invalid("token has no scope"))?,
        jti: text("jti"),
    })
}

/// Checks an access token: returns the account DID and the login's scope.
pub fn verify_access(
    secret: &[u8],
    service_did: &str,
    token: &str,
) -> Result<(String, Scope), TokenError> {
    let claims = verify(secret, service_did, token, ACCESS_TYP)?;
    let scope = Scope::parse(&claims.scope).ok_or(TokenError::Invalid("not an access token"))?;
    Ok((claims.sub, scope))
}

/// Checks a refresh token's signature and expiry: returns the DID and the token id. Whether it
/// is still live is the database's answer.
pub fn verify_refresh(
    secret: &[u8],
    service_did: &str,
    token: &str,
) -> Result<(String, String), TokenError> {
    let claims = verify(secret, service_did, token, REFRESH_TYP)?;
    if claims.scope != "com.atproto.refresh" {
        return Err(TokenError::Invalid("not a refresh token"));
    }
    let jti = claims
        .jti
        .ok_or(TokenError::Invalid("refresh token has no id"))?;
    Ok((claims.sub, jti))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test secret";
    const SERVICE: &str = "did:web:pds.test";

    #[test]
    fn tokens_verify_and_do_not_cross() {
        let t = issue(SECRET, SERVICE, "did:plc:abc", Scope::AppPass);
        assert_eq!(
            verify_access(SECRET, SERVICE, &t.access_jwt).unwrap(),
            ("did:plc:abc".into(), Scope::AppPass)
        );
        assert_eq!(
            verify_refresh(SECRET, SERVICE, &t.refresh_jwt).unwrap(),
            ("did:plc:abc".into(), t.refresh_id.clone())
        );
        // A refresh token is not an access token, and the other way round.
        assert!(verify_access(SECRET, SERVICE, &t.refresh_jwt).is_err());
        assert!(verify_refresh(SECRET, SERVICE, &t.access_jwt).is_err());
        // Another secret, another audience.
        assert!(verify_access(b"other", SERVICE, &t.access_jwt).is_err());
        assert!(verify_access(SECRET, "did:web:elsewhere", &t.access_jwt).is_err());
    }

    #[test]
    fn expired_tokens_say_so() {
        let claims = json!({"scope": "com.atproto.access", "sub": "did:plc:abc", "aud": SERVICE, "iat": 1, "exp": 2});
        let token = jws::sign_hs256(SECRET, &claims, Some(ACCESS_TYP));
        assert_eq!(
            verify_access(SECRET, SERVICE, &token),
            Err(TokenError::Expired)
        );
    }
}
