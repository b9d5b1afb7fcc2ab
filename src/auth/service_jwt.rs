//! Inter-service auth tokens, minted here for accounts ([`mint`], `getServiceAuth`) and
//! received from others: a JWT that whoever controls a DID signs with that DID's
//! `#atproto` key (ES256K or ES256) and sends as `Authorization: Bearer`, to show a server that
//! a request comes from that DID. Claims: `iss` the signer's DID, `aud` the DID of the server
//! it is meant for, `exp`, and `lxm` the one method it may be used for.
//!
//! Checked in two steps, so that a caller can look at the claims (is `iss` the DID the request
//! is about?) before anything is fetched for them: [`check_claims`] (shape, type, expiry,
//! audience, method; no I/O), then [`verify_signature`] against the key of the issuer's DID
//! document, fetched fresh (a key rotated a moment ago must work, and the old one must not).
//! Error names and messages are the reference's (`@atproto/xrpc-server`'s `verifyJwt`), all
//! 401, as clients match on them.

use std::sync::Arc;

use axum::http::StatusCode;
use pds_crypto::{CryptoError, Keypair, jws};
use pds_identity::{DidDocument, IdentityResolver};
use pds_syntax::Did;
use serde_json::{Map, Value};

use crate::api::ApiError;

/// Token types of session and proof-of-possession tokens: never service auth, whoever signed them.
const NOT_SERVICE_AUTH_TYPES: &[&str] = &["at+jwt", "refresh+jwt", "dpop+jwt"];

/// The claims of a service-auth token whose shape, expiry, audience and method were checked.
/// The signature is not checked yet: see [`verify_signature`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceJwtClaims {
    /// The signer: a DID, possibly with a `#service` fragment.
    pub iss: String,
    /// The method the token is bound to, if the signer bound it (older signers did not).
    pub lxm: Option<String>,
}

impl ServiceJwtClaims {
    /// The issuer's DID, without a `#service` fragment.
    pub fn issuer_did(&self) -> &str {
        self.iss.split('#').next().unwrap_or_default()
    }
}

/// Why a service-auth token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceJwtError {
    #[error("poorly formatted jwt")]
    BadJwt,
    #[error("Invalid jwt type \"{0}\"")]
    BadJwtType(String),
    #[error("jwt expired")]
    JwtExpired,
    #[error("jwt audience does not match service did")]
    BadJwtAudience,
    #[error("bad jwt lexicon method (\"lxm\"). must match: {0}")]
    BadJwtLexiconMethod(String),
    #[error("jwt iss is not a valid did")]
    BadJwtIss,
    /// No key to check the signature with (no usable `#atproto` key, or no document).
    #[error("could not verify jwt signature: {0}")]
    UnverifiableSignature(String),
    #[error("jwt signature does not match jwt issuer")]
    BadJwtSignature,
}

impl From<ServiceJwtError> for ApiError {
    fn from(e: ServiceJwtError) -> Self {
        use ServiceJwtError as E;
        let name = match e {
            E::BadJwt => "BadJwt",
            E::BadJwtType(_) => "BadJwtType",
            E::JwtExpired => "JwtExpired",
            E::BadJwtAudience => "BadJwtAudience",
            E::BadJwtLexiconMethod(_) => "BadJwtLexiconMethod",
            E::BadJwtIss => "BadJwtIss",
            E::UnverifiableSignature(_) | E::BadJwtSignature => "BadJwtSignature",
        };
        ApiError::new(StatusCode::UNAUTHORIZED, name, e.to_string())
    }
}

/// The header type of the tokens [`mint`] makes (as the reference's `createServiceJwt`): plain
/// `JWT`, which [`check_claims`] accepts and which no session token uses.
pub const SERVICE_JWT_TYP: &str = "JWT";

/// What a minted service-auth token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceJwtRequest<'a> {
    /// The account the token speaks for.
    pub iss: &'a str,
    /// The DID of the service it is meant for.
    pub aud: &'a str,
    /// The one method it may be used for; `None` for a method-less token.
    pub lxm: Option<&'a str>,
    /// Issued at, in seconds since the epoch.
    pub iat: i64,
    /// Expiry, in seconds since the epoch.
    pub exp: i64,
}

/// Signs a service-auth token with `key` (the account's repo signing key, which its DID document
/// publishes as `#atproto`, so the receiving service checks it as [`verify_signature`] does).
/// Claims as the reference's: `iat`, `iss`, `aud`, `exp`, `lxm` (left out when `None`) and a
/// random `jti`, so two tokens minted in the same second differ.
pub fn mint(key: &Keypair, request: &ServiceJwtRequest<'_>) -> String {
    let mut claims = Map::new();
    claims.insert("iat".into(), request.iat.into());
    claims.insert("iss".into(), request.iss.into());
    claims.insert("aud".into(), request.aud.into());
    claims.insert("exp".into(), request.exp.into());
    if let Some(lxm) = request.lxm {
        claims.insert("lxm".into(), lxm.into());
    }
    claims.insert("jti".into(), random_jti().into());
    jws::sign_es(key, &Value::Object(claims), Some(SERVICE_JWT_TYP))
}

/// 128 random bits, hex (the reference's `jti` has this shape).
fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    data_encoding::HEXLOWER.encode(&bytes)
}

/// How long a minted token lives unless the account asks otherwise (as the reference).
pub const DEFAULT_LIFETIME_SECS: i64 = 60;
/// The longest lifetime a token bound to a method may have.
pub const MAX_LIFETIME_SECS: i64 = 60 * 60;
/// The longest lifetime a method-less token may have: it is good for any method.
pub const MAX_METHODLESS_LIFETIME_SECS: i64 = 60;

/// Account management that must be called directly by the account holder, never by another
/// service on its behalf: no token is minted for these (the reference's `PROTECTED_METHODS`).
pub const PROTECTED_METHODS: &[&str] = &[
    "com.atproto.admin.sendEmail",
    "com.atproto.identity.requestPlcOperationSignature",
    "com.atproto.identity.signPlcOperation",
    "com.atproto.identity.updateHandle",
    "com.atproto.server.activateAccount",
    "com.atproto.server.confirmEmail",
    "com.atproto.server.createAppPassword",
    "com.atproto.server.deactivateAccount",
    "com.atproto.server.getAccountInviteCodes",
    "com.atproto.server.getSession",
    "com.atproto.server.listAppPasswords",
    "com.atproto.server.requestAccountDelete",
    "com.atproto.server.requestEmailConfirmation",
    "com.atproto.server.requestEmailUpdate",
    "com.atproto.server.revokeAppPassword",
    "com.atproto.server.updateEmail",
];

/// Methods a plain app password may not get a token for: direct messages and creating an
/// account elsewhere (which is how an account is moved away), as the reference's
/// `PRIVILEGED_METHODS`. A full session or a privileged app password may.
pub const PRIVILEGED_METHODS: &[&str] = &[
    "chat.bsky.actor.deleteAccount",
    "chat.bsky.actor.exportAccountData",
    "chat.bsky.convo.deleteMessageForSelf",
    "chat.bsky.convo.getConvo",
    "chat.bsky.convo.getConvoForMembers",
    "chat.bsky.convo.getLog",
    "chat.bsky.convo.getMessages",
    "chat.bsky.convo.leaveConvo",
    "chat.bsky.convo.listConvos",
    "chat.bsky.convo.muteConvo",
    "chat.bsky.convo.sendMessage",
    "chat.bsky.convo.sendMessageBatch",
    "chat.bsky.convo.unmuteConvo",
    "chat.bsky.convo.updateRead",
    "com.atproto.server.createAccount",
];

/// Whether a token for `lxm` (or a request forwarded for it) needs a full session or a
/// privileged app password: the reference's [`PRIVILEGED_METHODS`], and every other
/// `chat.bsky.*` method too (direct messages are only for sessions allowed to read them).
pub fn requires_privileged_session(lxm: &str) -> bool {
    PRIVILEGED_METHODS.contains(&lxm) || lxm.starts_with("chat.bsky.")
}

/// Why an account's request for a token is refused (400, the reference's names and messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintRefusal {
    #[error("expiration is in past")]
    ExpirationInPast,
    #[error("cannot request a token with an expiration more than an hour in the future")]
    ExpirationTooFar,
    #[error(
        "cannot request a method-less token with an expiration more than a minute in the future"
    )]
    MethodlessExpirationTooFar,
    #[error("cannot request a service auth token for the following protected method: {0}")]
    ProtectedMethod(String),
    #[error("insufficient access to request a service auth token for the following method: {0}")]
    InsufficientAccess(String),
}

impl From<MintRefusal> for ApiError {
    fn from(e: MintRefusal) -> Self {
        let name = match e {
            MintRefusal::ExpirationInPast
            | MintRefusal::ExpirationTooFar
            | MintRefusal::MethodlessExpirationTooFar => "BadExpiration",
            MintRefusal::ProtectedMethod(_) | MintRefusal::InsufficientAccess(_) => {
                "InvalidRequest"
            }
        };
        ApiError::new(StatusCode::BAD_REQUEST, name, e.to_string())
    }
}

/// The expiry of a token an account asks for at `now` (seconds): `exp` if it is within the
/// allowed lifetime (an hour when bound to a method, a minute otherwise), else the default
/// minute; and whether the session may have a token for `lxm` at all (`privileged`: a full
/// session or a privileged app password).
pub fn check_mint_request(
    exp: Option<i64>,
    lxm: Option<&str>,
    privileged: bool,
    now: i64,
) -> Result<i64, MintRefusal> {
    let exp = match exp {
        None => now + DEFAULT_LIFETIME_SECS,
        Some(exp) => {
            let lifetime = exp - now;
            if lifetime < 0 {
                return Err(MintRefusal::ExpirationInPast);
            }
            if lifetime > MAX_LIFETIME_SECS {
                return Err(MintRefusal::ExpirationTooFar);
            }
            if lxm.is_none() && lifetime > MAX_METHODLESS_LIFETIME_SECS {
                return Err(MintRefusal::MethodlessExpirationTooFar);
            }
            exp
        }
    };
    if let Some(lxm) = lxm {
        // An NSID's authority is case-insensitive: `COM.ATPROTO.server.updateEmail` is still
        // account management, and a service may well accept it as such.
        let normalized = normalized_nsid(lxm);
        if PROTECTED_METHODS.contains(&normalized.as_str()) {
            return Err(MintRefusal::ProtectedMethod(lxm.to_owned()));
        }
        if !privileged && requires_privileged_session(&normalized) {
            return Err(MintRefusal::InsufficientAccess(lxm.to_owned()));
        }
    }
    Ok(exp)
}

/// `nsid` with its authority (every segment but the name) in lower case, as NSIDs compare.
pub fn normalized_nsid(nsid: &str) -> String {
    match nsid.rsplit_once('.') {
        Some((authority, name)) => format!("{}.{name}", authority.to_ascii_lowercase()),
        None => nsid.to_owned(),
    }
}

/// Checks everything about `token` but its signature: it is a JWT, not a session token, not
/// expired at `now` (seconds), meant for `service_did`, and, if it names a method, meant for
/// `lxm`. A token without `lxm` is accepted, as older signers leave it out.
pub fn check_claims(
    token: &str,
    service_did: &str,
    lxm: &str,
    now: i64,
) -> Result<ServiceJwtClaims, ServiceJwtError> {
    let (header, claims) = jws::decode_unverified(token).map_err(|_| ServiceJwtError::BadJwt)?;
    if let Some(typ) = header.get("typ").and_then(Value::as_str)
        && NOT_SERVICE_AUTH_TYPES.contains(&typ)
    {
        return Err(ServiceJwtError::BadJwtType(typ.to_owned()));
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .ok_or(ServiceJwtError::BadJwt)?;
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(ServiceJwtError::BadJwt)?;
    if (now as f64) > exp {
        return Err(ServiceJwtError::JwtExpired);
    }
    if claims.get("aud").and_then(Value::as_str) != Some(service_did) {
        return Err(ServiceJwtError::BadJwtAudience);
    }
    let token_lxm = match claims.get("lxm") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) if m == lxm => Some(m.clone()),
        Some(_) => return Err(ServiceJwtError::BadJwtLexiconMethod(lxm.to_owned())),
    };
    let claims = ServiceJwtClaims {
        iss: iss.to_owned(),
        lxm: token_lxm,
    };
    let fragment_ok = match claims.iss.split_once('#') {
        Some((_, fragment)) => !fragment.is_empty() && !fragment.contains('#'),
        None => true,
    };
    if !fragment_ok || Did::new(claims.issuer_did()).is_err() {
        return Err(ServiceJwtError::BadJwtIss);
    }
    Ok(claims)
}

/// Checks `token`'s signature against the `#atproto` key of its issuer's DID document, fetched
/// now. Returns that document, so a caller that needs it does not fetch it again.
pub async fn verify_signature(
    resolver: &IdentityResolver,
    token: &str,
    claims: &ServiceJwtClaims,
) -> Result<Arc<DidDocument>, ServiceJwtError> {
    let did = Did::new(claims.issuer_did()).map_err(|_| ServiceJwtError::BadJwtIss)?;
    let doc = resolver.refresh_did(&did).await.map_err(|e| {
        // The issuer is whoever sent the token: what the fetch ran into stays in the log.
        tracing::debug!(%did, error = %e, "service auth: issuer's DID document unavailable");
        ServiceJwtError::UnverifiableSignature(format!(
            "the DID document of {did} could not be resolved"
        ))
    })?;
    let key = doc.signing_key().ok_or_else(|| {
        ServiceJwtError::UnverifiableSignature(format!(
            "the DID document of {did} has no usable #atproto key"
        ))
    })?;
    match jws::verify_es(token, key) {
        Ok(_) => Ok(doc),
        Err(CryptoError::BadSignature | CryptoError::HighS) => {
            Err(ServiceJwtError::BadJwtSignature)
        }
        Err(e) => Err(ServiceJwtError::UnverifiableSignature(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pds_crypto::{Algorithm, Keypair};
    use serde_json::json;

    const SERVICE: &str = "did:web:pds.test";
    const LXM: &str = "com.atproto.server.createAccount";
    const NOW: i64 = 1_700_000_000;

    fn token(claims: Value, typ: Option<&str>) -> String {
        jws::sign_es(&Keypair::generate(Algorithm::K256), &claims, typ)
    }

    fn check(claims: Value) -> Result<ServiceJwtClaims, ServiceJwtError> {
        check_claims(&token(claims, Some("JWT")), SERVICE, LXM, NOW)
    }

    #[test]
    fn minted_tokens_pass_the_receiving_checks() {
        let key = Keypair::generate(Algorithm::K256);
        let request = ServiceJwtRequest {
            iss: "did:plc:alice",
            aud: SERVICE,
            lxm: Some(LXM),
            iat: NOW,
            exp: NOW + 60,
        };
        let token = mint(&key, &request);
        let claims = check_claims(&token, SERVICE, LXM, NOW).unwrap();
        assert_eq!(claims.iss, "did:plc:alice");
        assert_eq!(claims.lxm.as_deref(), Some(LXM));
        let verified = jws::verify_es(&token, &key.public_key()).unwrap();
        assert_eq!(verified["exp"], json!(NOW + 60));
        assert_eq!(verified["jti"].as_str().unwrap().len(), 32);
        let (header, _) = jws::decode_unverified(&token).unwrap();
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["alg"], "ES256K");
        // Method-less: no lxm claim at all; and each token has its own jti.
        let bare = mint(
            &key,
            &ServiceJwtRequest {
                lxm: None,
                ..request
            },
        );
        let (_, bare_claims) = jws::decode_unverified(&bare).unwrap();
        assert!(bare_claims.get("lxm").is_none());
        assert_ne!(bare_claims["jti"], verified["jti"]);
        assert_eq!(
            check_claims(&token, SERVICE, LXM, NOW + 61),
            Err(ServiceJwtError::JwtExpired)
        );
    }

    #[test]
    fn mint_requests_within_the_reference_limits() {
        let mint_exp = |exp, lxm, privileged| check_mint_request(exp, lxm, privileged, NOW);
        assert_eq!(mint_exp(None, None, false), Ok(NOW + 60));
        assert_eq!(mint_exp(Some(NOW + 3600), Some(LXM), true), Ok(NOW + 3600));
        assert_eq!(
            mint_exp(Some(NOW + 3601), Some(LXM), true),
            Err(MintRefusal::ExpirationTooFar)
        );
        assert_eq!(
            mint_exp(Some(NOW + 61), None, true),
            Err(MintRefusal::MethodlessExpirationTooFar)
        );
        assert_eq!(
            mint_exp(Some(NOW - 1), None, true),
            Err(MintRefusal::ExpirationInPast)
        );
        assert_eq!(
            mint_exp(None, Some("com.atproto.server.updateEmail"), true),
            Err(MintRefusal::ProtectedMethod(
                "com.atproto.server.updateEmail".into()
            ))
        );
        assert_eq!(
            mint_exp(None, Some(LXM), false),
            Err(MintRefusal::InsufficientAccess(LXM.into()))
        );
        assert_eq!(
            mint_exp(None, Some("app.bsky.feed.getTimeline"), false),
            Ok(NOW + 60)
        );
        // Whatever the case of the authority.
        assert_eq!(
            mint_exp(None, Some("COM.ATPROTO.server.updateEmail"), true),
            Err(MintRefusal::ProtectedMethod(
                "COM.ATPROTO.server.updateEmail".into()
            ))
        );
        assert_eq!(
            mint_exp(None, Some("CHAT.Bsky.convo.getMessages"), false),
            Err(MintRefusal::InsufficientAccess(
                "CHAT.Bsky.convo.getMessages".into()
            ))
        );
        // Every chat method, not only those the reference lists.
        assert_eq!(
            mint_exp(None, Some("chat.bsky.convo.getConvoAvailability"), false),
            Err(MintRefusal::InsufficientAccess(
                "chat.bsky.convo.getConvoAvailability".into()
            ))
        );
        let api: ApiError = MintRefusal::ExpirationTooFar.into();
        assert_eq!((api.status().as_u16(), api.name()), (400, "BadExpiration"));
    }

    #[test]
    fn good_claims_pass() {
        let ok = check(
            json!({"iss": "did:web:alice.test", "aud": SERVICE, "exp": NOW + 60, "lxm": LXM}),
        )
        .unwrap();
        assert_eq!(ok.iss, "did:web:alice.test");
        assert_eq!(ok.lxm.as_deref(), Some(LXM));
        // No lxm (older signers), and an iss with a service fragment.
        let ok =
            check(json!({"iss": "did:web:alice.test#atproto_labeler", "aud": SERVICE, "exp": NOW}))
                .unwrap();
        assert_eq!(ok.lxm, None);
        assert_eq!(ok.issuer_did(), "did:web:alice.test");
    }

    #[test]
    fn bad_claims_are_refused_with_the_reference_names() {
        let base =
            json!({"iss": "did:web:alice.test", "aud": SERVICE, "exp": NOW + 60, "lxm": LXM});
        let with = |key: &str, value: Value| {
            let mut claims = base.clone();
            claims[key] = value;
            check(claims)
        };
        assert_eq!(
            with("exp", json!(NOW - 1)),
            Err(ServiceJwtError::JwtExpired)
        );
        assert_eq!(with("exp", json!("soon")), Err(ServiceJwtError::BadJwt));
        assert_eq!(with("iss", json!(7)), Err(ServiceJwtError::BadJwt));
        assert_eq!(
            with("aud", json!("did:web:elsewhere.test")),
            Err(ServiceJwtError::BadJwtAudience)
        );
        let wrong_method = with("lxm", json!("com.atproto.repo.createRecord")).unwrap_err();
        assert_eq!(
            wrong_method.to_string(),
            "bad jwt lexicon method (\"lxm\"). must match: com.atproto.server.createAccount"
        );
        assert_eq!(
            with("iss", json!("not a did")),
            Err(ServiceJwtError::BadJwtIss)
        );
        assert_eq!(
            with("iss", json!("did:web:alice.test#")),
            Err(ServiceJwtError::BadJwtIss)
        );
        // Session tokens are never service auth, and garbage is not a JWT.
        assert_eq!(
            check_claims(&token(base.clone(), Some("at+jwt")), SERVICE, LXM, NOW),
            Err(ServiceJwtError::BadJwtType("at+jwt".into()))
        );
        assert_eq!(
            check_claims("abc.def", SERVICE, LXM, NOW),
            Err(ServiceJwtError::BadJwt)
        );
        let api: ApiError = ServiceJwtError::JwtExpired.into();
        assert_eq!((api.status().as_u16(), api.name()), (401, "JwtExpired"));
    }
}
