//! Inter-service auth tokens received: a JWT that whoever controls a DID signs with that DID's
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
use pds_crypto::{CryptoError, jws};
use pds_identity::{DidDocument, IdentityResolver};
use pds_syntax::Did;
use serde_json::Value;

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
