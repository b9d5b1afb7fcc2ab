//! Checking a DPoP proof (RFC 9449 §4.3) against the request it came with.
//!
//! The checker is stateless: the server nonce and `jti` replay are the
//! caller's to check, with the values [`verify`] returns.

use data_encoding::BASE64URL_NOPAD;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::jwk::PublicJwk;
use crate::{CLOCK_SKEW_SECS, OAuthError, jws};

/// The `typ` header of a DPoP proof (RFC 9449 §4.2).
pub const DPOP_JWT_TYP: &str = "dpop+jwt";

/// The signing algorithms accepted for proofs (`ES256` is mandatory in
/// atproto; `ES256K` is the other atproto curve).
pub const SUPPORTED_ALGS: [&str; 2] = ["ES256", "ES256K"];

/// The longest `jti` accepted.
pub const MAX_JTI_LEN: usize = 256;

/// The longest `nonce` claim accepted.
pub const MAX_NONCE_LEN: usize = 256;

/// What the proof must match: the request it arrived with.
pub struct DpopCheck<'a> {
    /// The request's HTTP method, e.g. `"POST"` (compared exactly).
    pub method: &'a str,
    /// The request's full external URL. `htu` is compared with it ignoring
    /// query and fragment, after normalisation (scheme and host case, default
    /// ports, empty path as `/`).
    pub url: &'a str,
    /// At a resource server, the access token presented with the proof: the
    /// proof must then carry `ath` = base64url(SHA-256(token)). When `None`,
    /// any `ath` is ignored.
    pub access_token: Option<&'a str>,
    /// Unix seconds.
    pub now: i64,
    /// `iat` must be within `[now - max_age_secs, now + CLOCK_SKEW_SECS]`.
    pub max_age_secs: i64,
}

/// A proof that passed [`verify`].
#[derive(Debug, Clone)]
pub struct DpopProof {
    /// RFC 7638 thumbprint of the proof's key (the `cnf.jkt` to bind to).
    pub jkt: String,
    /// The proof's unique id, for the caller's replay check.
    pub jti: String,
    /// When the proof says it was made (unix seconds).
    pub iat: i64,
    /// The server nonce the proof carries, for the caller to check.
    pub nonce: Option<String>,
}

fn invalid(description: impl Into<String>) -> OAuthError {
    OAuthError::InvalidDpopProof(description.into())
}

/// base64url (no padding) of SHA-256 of the access token: the `ath` claim.
pub fn access_token_hash(access_token: &str) -> String {
    BASE64URL_NOPAD.encode(&Sha256::digest(access_token.as_bytes()))
}

/// Checks a DPoP proof: header `typ` `dpop+jwt`, `alg` `ES256`/`ES256K`, a
/// public `jwk` (no private part) that verifies the signature; claims `htm`
/// equal to the method, `htu` matching the URL, `iat` in the window, a `jti`
/// of 1..=[`MAX_JTI_LEN`] characters, `ath` when an access token is given, and
/// `nonce` (when present) a string. Does not check the nonce's value nor
/// `jti` replay; returns them.
pub fn verify(proof: &str, check: &DpopCheck<'_>) -> Result<DpopProof, OAuthError> {
    let parts = jws::split(proof).map_err(invalid)?;
    let header = &parts.header;

    match header.get("typ").and_then(Value::as_str) {
        Some(typ) if typ.eq_ignore_ascii_case(DPOP_JWT_TYP) => {}
        Some(typ) => {
            return Err(invalid(format!(
                "DPoP proof typ \"{typ}\" is not \"dpop+jwt\""
            )));
        }
        None => return Err(invalid("DPoP proof has no typ header")),
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("DPoP proof has no alg header"))?;
    if !SUPPORTED_ALGS.contains(&alg) {
        return Err(invalid(format!("unsupported DPoP proof alg \"{alg}\"")));
    }
    let jwk = header
        .get("jwk")
        .ok_or_else(|| invalid("DPoP proof has no jwk header"))?;
    let key = PublicJwk::parse(jwk).map_err(|e| e.retag(OAuthError::InvalidDpopProof))?;
    // Header alg vs key, signature, crit: all in verify_jws.
    let (_, claims) = key
        .verify_jws(proof)
        .map_err(|e| e.retag(OAuthError::InvalidDpopProof))?;

    let string_claim = |name: &str| -> Result<Option<&str>, OAuthError> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(format!(
                "DPoP proof claim \"{name}\" is not a string"
            ))),
        }
    };

    let htm = string_claim("htm")?.ok_or_else(|| invalid("DPoP proof has no htm"))?;
    if htm != check.method {
        return Err(invalid(format!(
            "DPoP proof htm \"{htm}\" does not match the request method \"{}\"",
            check.method
        )));
    }

    let htu = string_claim("htu")?.ok_or_else(|| invalid("DPoP proof has no htu"))?;
    let request_url = normalize_htu(check.url).ok_or_else(|| {
        OAuthError::InvalidRequest("the request URL is not an http(s) URL".into())
    })?;
    let claimed =
        normalize_htu(htu).ok_or_else(|| invalid("DPoP proof htu is not an http(s) URL"))?;
    if claimed != request_url {
        return Err(invalid("DPoP proof htu does not match the request URL"));
    }

    let iat = claims
        .get("iat")
        .and_then(numeric_date)
        .ok_or_else(|| invalid("DPoP proof has no numeric iat"))?;
    if iat > check.now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(invalid("DPoP proof iat is in the future"));
    }
    if iat < check.now.saturating_sub(check.max_age_secs) {
        return Err(invalid("DPoP proof is too old"));
    }
    if let Some(exp) = claims.get("exp") {
        match numeric_date(exp) {
            Some(exp) if exp > check.now.saturating_sub(CLOCK_SKEW_SECS) => {}
            _ => return Err(invalid("DPoP proof has expired")),
        }
    }

    let jti = string_claim("jti")?.ok_or_else(|| invalid("DPoP proof has no jti"))?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(invalid(format!(
            "DPoP proof jti must be 1 to {MAX_JTI_LEN} characters"
        )));
    }

    if let Some(token) = check.access_token {
        let ath = string_claim("ath")?
            .ok_or_else(|| invalid("DPoP proof has no ath for the access token"))?;
        let expected = access_token_hash(token);
        if !bool::from(ath.as_bytes().ct_eq(expected.as_bytes())) {
            return Err(invalid("DPoP proof ath does not match the access token"));
        }
    }

    let nonce = string_claim("nonce")?;
    if nonce.is_some_and(|n| n.is_empty() || n.len() > MAX_NONCE_LEN) {
        return Err(invalid("DPoP proof nonce has a bad length"));
    }

    Ok(DpopProof {
        jkt: key.thumbprint(),
        jti: jti.to_owned(),
        iat,
        nonce: nonce.map(str::to_owned),
    })
}

/// A JWT NumericDate (RFC 7519 §2): seconds, possibly fractional.
pub(crate) fn numeric_date(value: &Value) -> Option<i64> {
    if let Some(i) = value.as_i64() {
        return Some(i);
    }
    let f = value.as_f64()?;
    // `as` saturates; bound first so nonsense stays nonsense.
    (f.is_finite() && f.abs() < 1e15).then(|| f.floor() as i64)
}

/// An http(s) URL without query, fragment or userinfo, normalised by the
/// WHATWG parser (scheme and host lowercased, default port dropped, empty
/// path as `/`, dot segments resolved).
fn normalize_htu(raw: &str) -> Option<String> {
    let mut url = url::Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    url.set_username("").ok()?;
    url.set_password(None).ok()?;
    Some(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use pds_crypto::Algorithm;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const URL: &str = "https://pds.example.com/oauth/token";

    fn check(access_token: Option<&str>) -> DpopCheck<'_> {
        DpopCheck {
            method: "POST",
            url: URL,
            access_token,
            now: NOW,
            max_age_secs: 60,
        }
    }

    fn header(key: &TestKey) -> Value {
        json!({"typ": "dpop+jwt", "alg": key.alg().jwt_name(), "jwk": key.public_jwk()})
    }

    fn claims() -> Value {
        json!({"jti": "abc-123", "htm": "POST", "htu": URL, "iat": NOW})
    }

    fn proof(key: &TestKey, header: &Value, claims: &Value) -> String {
        key.sign_jws(header, claims, SForm::Low)
    }

    #[test]
    fn good_proofs_on_both_curves_and_both_s_forms() {
        for alg in [Algorithm::P256, Algorithm::K256] {
            let key = TestKey::generate(alg);
            for form in [SForm::Low, SForm::High] {
                let token = key.sign_jws(&header(&key), &claims(), form);
                let got = verify(&token, &check(None)).unwrap();
                assert_eq!(got.jti, "abc-123");
                assert_eq!(got.iat, NOW);
                assert_eq!(got.nonce, None);
                assert_eq!(got.jkt, crate::jwk::thumbprint(&key.public_jwk()).unwrap());
            }
        }
    }

    #[test]
    fn high_s_p256_passes() {
        // JOSE signers (WebCrypto) produce high-S about half the time.
        let key = TestKey::generate(Algorithm::P256);
        let token = key.sign_jws(&header(&key), &claims(), SForm::High);
        let sig = BASE64URL_NOPAD
            .decode(token.rsplit('.').next().unwrap().as_bytes())
            .unwrap();
        let parsed = p256::ecdsa::Signature::from_slice(&sig).unwrap();
        assert_ne!(
            parsed.normalize_s(),
            parsed,
            "the test signature must be high-S"
        );
        verify(&token, &check(None)).unwrap();
    }

    #[test]
    fn nonce_and_ath_are_returned_and_checked() {
        let key = TestKey::generate(Algorithm::P256);
        let mut c = claims();
        c["nonce"] = json!("server-nonce");
        c["ath"] = json!(access_token_hash("the-token"));
        let token = proof(&key, &header(&key), &c);
        let got = verify(&token, &check(Some("the-token"))).unwrap();
        assert_eq!(got.nonce.as_deref(), Some("server-nonce"));
        // No access token: ath ignored.
        verify(&token, &check(None)).unwrap();
        // Wrong token.
        let err = verify(&token, &check(Some("other-token"))).unwrap_err();
        assert_eq!(err.code(), "invalid_dpop_proof");
        // Missing ath when a token is presented.
        let token = proof(&key, &header(&key), &claims());
        assert!(verify(&token, &check(Some("the-token"))).is_err());
    }

    #[test]
    fn ath_is_sha256_of_the_token() {
        let expected = BASE64URL_NOPAD.encode(&Sha256::digest(b"abc"));
        assert_eq!(access_token_hash("abc"), expected);
    }

    #[test]
    fn htu_normalisation() {
        let key = TestKey::generate(Algorithm::P256);
        for (htu, url, ok) in [
            (URL, "https://pds.example.com/oauth/token?x=1", true),
            ("https://PDS.Example.COM/oauth/token", URL, true),
            ("HTTPS://pds.example.com:443/oauth/token", URL, true),
            ("https://pds.example.com/oauth/token#frag", URL, true),
            ("https://pds.example.com/oauth/token?a=b", URL, true),
            (
                "http://localhost:2583/xrpc/x",
                "http://localhost:2583/xrpc/x",
                true,
            ),
            ("http://localhost:80/", "http://localhost", true),
            ("https://pds.example.com/oauth/par", URL, false),
            ("http://pds.example.com/oauth/token", URL, false),
            ("https://pds.example.com:8443/oauth/token", URL, false),
            ("https://other.example.com/oauth/token", URL, false),
            ("https://pds.example.com/OAUTH/token", URL, false),
            ("/oauth/token", URL, false),
            ("not a url", URL, false),
        ] {
            let mut c = claims();
            c["htu"] = json!(htu);
            let token = proof(&key, &header(&key), &c);
            let check = DpopCheck { url, ..check(None) };
            assert_eq!(verify(&token, &check).is_ok(), ok, "{htu} vs {url}");
        }
    }

    #[test]
    fn wrong_htm() {
        let key = TestKey::generate(Algorithm::P256);
        for htm in [json!("GET"), json!("post"), json!(1)] {
            let mut c = claims();
            c["htm"] = htm;
            let token = proof(&key, &header(&key), &c);
            assert_eq!(
                verify(&token, &check(None)).unwrap_err().code(),
                "invalid_dpop_proof"
            );
        }
    }

    #[test]
    fn iat_window() {
        let key = TestKey::generate(Algorithm::P256);
        for (iat, ok) in [
            (json!(NOW), true),
            (json!(NOW - 60), true),
            (json!(NOW - 61), false), // expired
            (json!(NOW + CLOCK_SKEW_SECS), true),
            (json!(NOW + CLOCK_SKEW_SECS + 1), false),
            (json!(NOW as f64 + 0.5), true),
            (json!("1700000000"), false),
            (Value::Null, false),
        ] {
            let mut c = claims();
            c["iat"] = iat.clone();
            let token = proof(&key, &header(&key), &c);
            assert_eq!(verify(&token, &check(None)).is_ok(), ok, "{iat}");
        }
        let mut c = claims();
        c["exp"] = json!(NOW - 100);
        assert!(verify(&proof(&key, &header(&key), &c), &check(None)).is_err());
    }

    #[test]
    fn jti_bounds() {
        let key = TestKey::generate(Algorithm::P256);
        for (jti, ok) in [
            (json!("x"), true),
            (json!("x".repeat(MAX_JTI_LEN)), true),
            (json!("x".repeat(MAX_JTI_LEN + 1)), false),
            (json!(""), false),
            (json!(12), false),
        ] {
            let mut c = claims();
            c["jti"] = jti;
            assert_eq!(
                verify(&proof(&key, &header(&key), &c), &check(None)).is_ok(),
                ok
            );
        }
        let mut c = claims();
        c.as_object_mut().unwrap().remove("jti");
        assert!(verify(&proof(&key, &header(&key), &c), &check(None)).is_err());
    }

    #[test]
    fn private_jwk_in_header_is_refused() {
        let key = TestKey::generate(Algorithm::P256);
        let mut h = header(&key);
        h["jwk"] = key.private_jwk();
        let err = verify(&proof(&key, &h, &claims()), &check(None)).unwrap_err();
        assert_eq!(err.code(), "invalid_dpop_proof");
        assert!(err.to_string().contains("private"), "{err}");
    }

    #[test]
    fn bad_signature_is_refused() {
        let key = TestKey::generate(Algorithm::P256);
        let other = TestKey::generate(Algorithm::P256);
        // Header names `key`, signed by `other`.
        let token = proof(&other, &header(&key), &claims());
        assert_eq!(
            verify(&token, &check(None)).unwrap_err().code(),
            "invalid_dpop_proof"
        );
        // Flipped signature bit.
        let token = proof(&key, &header(&key), &claims());
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig = BASE64URL_NOPAD.decode(sig.as_bytes()).unwrap();
        sig[10] ^= 1;
        let token = format!("{input}.{}", BASE64URL_NOPAD.encode(&sig));
        assert!(verify(&token, &check(None)).is_err());
        assert!(verify("garbage", &check(None)).is_err());
    }

    #[test]
    fn wrong_typ_and_alg_are_refused() {
        let key = TestKey::generate(Algorithm::P256);
        for (name, value) in [
            ("typ", json!("jwt")),
            ("typ", json!("JWT")),
            ("typ", Value::Null),
            ("alg", json!("ES256K")), // does not fit the P-256 key
            ("alg", json!("HS256")),
            ("alg", json!("none")),
            ("alg", json!("RS256")),
            ("jwk", Value::Null),
            ("jwk", json!({"kty": "oct", "k": "c2VjcmV0"})),
        ] {
            let mut h = header(&key);
            if value.is_null() {
                h.as_object_mut().unwrap().remove(name);
            } else {
                h[name] = value.clone();
            }
            let err = verify(&proof(&key, &h, &claims()), &check(None)).unwrap_err();
            assert_eq!(err.code(), "invalid_dpop_proof", "{name}: {value}");
        }
        // typ is a media type: case-insensitive.
        let mut h = header(&key);
        h["typ"] = json!("DPoP+JWT");
        verify(&proof(&key, &h, &claims()), &check(None)).unwrap();
    }

    #[test]
    fn nonce_must_be_a_string() {
        let key = TestKey::generate(Algorithm::P256);
        let mut c = claims();
        c["nonce"] = json!(5);
        assert!(verify(&proof(&key, &header(&key), &c), &check(None)).is_err());
    }
}
