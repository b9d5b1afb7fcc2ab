//! Confidential-client authentication with a JWT client assertion
//! (`private_key_jwt`, RFC 7523 §2.2 and §3, as the atproto profile uses it).

use serde_json::Value;

use crate::dpop::numeric_date;
use crate::jwk::PublicJwk;
use crate::{CLOCK_SKEW_SECS, OAuthError, jws};

/// The `client_assertion_type` of a JWT client assertion.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The assertion signing algorithm of the atproto profile.
pub const ASSERTION_ALG: &str = "ES256";

/// An assertion whose `iat` is older than this is refused, whatever its `exp`.
pub const MAX_ASSERTION_AGE_SECS: i64 = 300;

/// The longest `jti` accepted.
pub const MAX_JTI_LEN: usize = 256;

/// A client assertion that passed [`verify_assertion`].
#[derive(Debug, Clone)]
pub struct ClientAssertion {
    /// For the caller's replay check (until `exp`).
    pub jti: String,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// The `kid` of the key that verified it (the key's, else the header's).
    pub kid: Option<String>,
    /// RFC 7638 thumbprint of that key, to bind the session to it.
    pub key_thumbprint: String,
}

fn invalid(description: impl Into<String>) -> OAuthError {
    OAuthError::InvalidClient(description.into())
}

/// Verifies a `private_key_jwt` client assertion.
///
/// - header `alg` `ES256`; the key is taken from `jwks` (`{"keys": [...]}`)
///   by the header's `kid`, or, without a `kid`, the only `ES256` key there;
/// - `iss` and `sub` both equal `client_id`;
/// - `aud` equal to `issuer`, or an array containing it;
/// - `exp` after `now`; `iat` present, at most [`CLOCK_SKEW_SECS`] ahead and
///   at most [`MAX_ASSERTION_AGE_SECS`] old; `nbf`, if present, reached;
/// - `jti` of 1..=[`MAX_JTI_LEN`] characters (replay is the caller's check).
///
/// Every failure is `invalid_client`.
pub fn verify_assertion(
    assertion: &str,
    client_id: &str,
    issuer: &str,
    jwks: &Value,
    now: i64,
) -> Result<ClientAssertion, OAuthError> {
    let parts = jws::split(assertion).map_err(invalid)?;
    let header = &parts.header;
    match header.get("alg").and_then(Value::as_str) {
        Some(ASSERTION_ALG) => {}
        Some(alg) => {
            return Err(invalid(format!(
                "client assertion alg \"{alg}\" is not supported (use {ASSERTION_ALG})"
            )));
        }
        None => return Err(invalid("client assertion has no alg header")),
    }
    let header_kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(invalid("client assertion kid is not a string")),
    };
    let key = select_key(jwks, header_kid)?;
    let (_, claims) = key
        .verify_jws(assertion)
        .map_err(|e| e.retag(OAuthError::InvalidClient))?;

    let string_claim = |name: &str| claims.get(name).and_then(Value::as_str);
    if string_claim("iss") != Some(client_id) {
        return Err(invalid("client assertion iss is not the client_id"));
    }
    if string_claim("sub") != Some(client_id) {
        return Err(invalid("client assertion sub is not the client_id"));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == issuer,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(issuer)),
        _ => false,
    };
    if !audience_ok {
        return Err(invalid(
            "client assertion aud is not this authorization server",
        ));
    }

    let exp = claims
        .get("exp")
        .and_then(numeric_date)
        .ok_or_else(|| invalid("client assertion has no numeric exp"))?;
    if exp <= now {
        return Err(invalid("client assertion has expired"));
    }
    let iat = claims
        .get("iat")
        .and_then(numeric_date)
        .ok_or_else(|| invalid("client assertion has no numeric iat"))?;
    if iat > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(invalid("client assertion iat is in the future"));
    }
    if iat < now.saturating_sub(MAX_ASSERTION_AGE_SECS) {
        return Err(invalid("client assertion is too old"));
    }
    if let Some(nbf) = claims.get("nbf") {
        match numeric_date(nbf) {
            Some(nbf) if nbf <= now.saturating_add(CLOCK_SKEW_SECS) => {}
            _ => return Err(invalid("client assertion is not yet valid (nbf)")),
        }
    }
    let jti = string_claim("jti").ok_or_else(|| invalid("client assertion has no jti"))?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(invalid(format!(
            "client assertion jti must be 1 to {MAX_JTI_LEN} characters"
        )));
    }

    Ok(ClientAssertion {
        jti: jti.to_owned(),
        exp,
        kid: key.kid().or(header_kid).map(str::to_owned),
        key_thumbprint: key.thumbprint(),
    })
}

/// The key to verify with: by `kid`, or the only `ES256` key.
fn select_key(jwks: &Value, kid: Option<&str>) -> Result<PublicJwk, OAuthError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("the client's jwks has no \"keys\" array"))?;
    match kid {
        Some(kid) => {
            let jwk = keys
                .iter()
                .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
                .ok_or_else(|| {
                    invalid(format!("no key with kid \"{kid}\" in the client's jwks"))
                })?;
            let key = PublicJwk::parse(jwk).map_err(|e| e.retag(OAuthError::InvalidClient))?;
            if key.alg() != ASSERTION_ALG {
                return Err(invalid(format!(
                    "key \"{kid}\" is not an {ASSERTION_ALG} key"
                )));
            }
            Ok(key)
        }
        None => {
            let mut usable = keys
                .iter()
                .filter_map(|k| PublicJwk::parse(k).ok())
                .filter(|k| k.alg() == ASSERTION_ALG);
            match (usable.next(), usable.next()) {
                (Some(key), None) => Ok(key),
                (None, _) => Err(invalid(format!(
                    "the client's jwks has no {ASSERTION_ALG} key"
                ))),
                (Some(_), Some(_)) => Err(invalid(
                    "client assertion has no kid and the client's jwks has several keys",
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use pds_crypto::Algorithm;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const CLIENT: &str = "https://app.example.com/client-metadata.json";
    const ISSUER: &str = "https://pds.example.com";

    fn keyed(key: &TestKey, kid: &str) -> Value {
        let mut jwk = key.public_jwk();
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!("ES256");
        jwk["use"] = json!("sig");
        jwk
    }

    fn claims() -> Value {
        json!({
            "iss": CLIENT, "sub": CLIENT, "aud": ISSUER,
            "iat": NOW, "exp": NOW + 60, "jti": "assert-1",
        })
    }

    fn sign(key: &TestKey, kid: Option<&str>, claims: &Value, form: SForm) -> String {
        let mut header = json!({"alg": "ES256", "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        key.sign_jws(&header, claims, form)
    }

    #[test]
    fn good_assertion_by_kid_both_s_forms() {
        let k1 = TestKey::generate(Algorithm::P256);
        let k2 = TestKey::generate(Algorithm::P256);
        let jwks = json!({"keys": [keyed(&k1, "one"), keyed(&k2, "two")]});
        for form in [SForm::Low, SForm::High] {
            let token = sign(&k2, Some("two"), &claims(), form);
            let got = verify_assertion(&token, CLIENT, ISSUER, &jwks, NOW).unwrap();
            assert_eq!(got.jti, "assert-1");
            assert_eq!(got.exp, NOW + 60);
            assert_eq!(got.kid.as_deref(), Some("two"));
            assert_eq!(
                got.key_thumbprint,
                crate::jwk::thumbprint(&k2.public_jwk()).unwrap()
            );
        }
        // Signed by k1 but naming k2.
        let token = sign(&k1, Some("two"), &claims(), SForm::Low);
        let err = verify_assertion(&token, CLIENT, ISSUER, &jwks, NOW).unwrap_err();
        assert_eq!(err.code(), "invalid_client");
        // Unknown kid.
        let token = sign(&k1, Some("three"), &claims(), SForm::Low);
        assert!(verify_assertion(&token, CLIENT, ISSUER, &jwks, NOW).is_err());
    }

    #[test]
    fn without_kid_the_only_key() {
        let k1 = TestKey::generate(Algorithm::P256);
        let k1_other_curve = TestKey::generate(Algorithm::K256);
        let jwks = json!({"keys": [k1.public_jwk(), k1_other_curve.public_jwk()]});
        let token = sign(&k1, None, &claims(), SForm::Low);
        let got = verify_assertion(&token, CLIENT, ISSUER, &jwks, NOW).unwrap();
        assert_eq!(got.kid, None);
        // Two ES256 keys and no kid: ambiguous.
        let k2 = TestKey::generate(Algorithm::P256);
        let jwks = json!({"keys": [k1.public_jwk(), k2.public_jwk()]});
        assert!(verify_assertion(&token, CLIENT, ISSUER, &jwks, NOW).is_err());
        // No keys at all, or no keys array.
        assert!(verify_assertion(&token, CLIENT, ISSUER, &json!({"keys": []}), NOW).is_err());
        assert!(verify_assertion(&token, CLIENT, ISSUER, &json!({}), NOW).is_err());
    }

    #[test]
    fn es256k_and_other_algs_are_refused() {
        let k = TestKey::generate(Algorithm::K256);
        let mut jwk = k.public_jwk();
        jwk["kid"] = json!("k");
        let jwks = json!({"keys": [jwk]});
        let token = k.sign_jws(&json!({"alg": "ES256K", "kid": "k"}), &claims(), SForm::Low);
        assert!(verify_assertion(&token, CLIENT, ISSUER, &jwks, NOW).is_err());
        // ES256 header naming a secp256k1 key.
        let token = k.sign_jws(&json!({"alg": "ES256", "kid": "k"}), &claims(), SForm::Low);
        assert!(verify_assertion(&token, CLIENT, ISSUER, &jwks, NOW).is_err());
        for alg in ["none", "HS256", "RS256"] {
            let token = k.sign_jws(&json!({"alg": alg, "kid": "k"}), &claims(), SForm::Low);
            assert!(verify_assertion(&token, CLIENT, ISSUER, &jwks, NOW).is_err());
        }
    }

    #[test]
    fn claims_are_checked() {
        let key = TestKey::generate(Algorithm::P256);
        let jwks = json!({"keys": [keyed(&key, "k")]});
        let cases: Vec<(&str, Value, bool)> = vec![
            ("aud", json!([ISSUER, "https://other.example"]), true),
            ("aud", json!(["https://other.example"]), false),
            ("aud", json!("https://other.example"), false),
            ("aud", json!(format!("{ISSUER}/oauth/token")), false),
            ("aud", Value::Null, false),
            ("iss", json!("https://evil.example/client.json"), false),
            ("iss", Value::Null, false),
            ("sub", json!("did:plc:abc"), false),
            ("exp", json!(NOW), false),
            ("exp", json!(NOW - 1), false),
            ("exp", Value::Null, false),
            ("iat", json!(NOW - MAX_ASSERTION_AGE_SECS), true),
            ("iat", json!(NOW - MAX_ASSERTION_AGE_SECS - 1), false),
            ("iat", json!(NOW + CLOCK_SKEW_SECS), true),
            ("iat", json!(NOW + CLOCK_SKEW_SECS + 1), false),
            ("iat", Value::Null, false),
            ("nbf", json!(NOW), true),
            ("nbf", json!(NOW + 3600), false),
            ("jti", json!(""), false),
            ("jti", json!("j".repeat(MAX_JTI_LEN + 1)), false),
            ("jti", Value::Null, false),
        ];
        for (name, value, ok) in cases {
            let mut c = claims();
            if value.is_null() {
                c.as_object_mut().unwrap().remove(name);
            } else {
                c[name] = value.clone();
            }
            let token = sign(&key, Some("k"), &c, SForm::Low);
            let result = verify_assertion(&token, CLIENT, ISSUER, &jwks, NOW);
            assert_eq!(result.is_ok(), ok, "{name}: {value} -> {result:?}");
            if let Err(e) = result {
                assert_eq!(e.code(), "invalid_client");
            }
        }
    }

    #[test]
    fn private_key_in_jwks_is_refused() {
        let key = TestKey::generate(Algorithm::P256);
        let mut jwk = key.private_jwk();
        jwk["kid"] = json!("k");
        let token = sign(&key, Some("k"), &claims(), SForm::Low);
        let jwks = json!({"keys": [jwk]});
        assert!(verify_assertion(&token, CLIENT, ISSUER, &jwks, NOW).is_err());
    }
}
