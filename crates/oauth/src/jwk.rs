//! EC public JSON Web Keys (RFC 7517 / RFC 7518 §6.2) on the two curves
//! atproto OAuth uses, their RFC 7638 thumbprints, and compact-JWS
//! verification with them.
//!
//! Signatures are the JOSE form (RFC 7518 §3.4): 64 bytes, `r || s`, over
//! SHA-256 of the signing input. Both S forms are accepted: JOSE does not
//! require low-S, and WebCrypto signers do not normalise.

use data_encoding::BASE64URL_NOPAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use pds_crypto::Algorithm;

use crate::OAuthError;
use crate::jws;

fn bad(description: impl Into<String>) -> OAuthError {
    OAuthError::InvalidRequest(description.into())
}

/// RFC 7638 thumbprint of an EC public JWK: base64url (no padding) of
/// SHA-256 over `{"crv":..,"kty":"EC","x":..,"y":..}` (the required members in
/// lexicographic order, no whitespace). Other members (`kid`, `alg`, `use`, a
/// private `d`) do not take part.
pub fn thumbprint(jwk: &Value) -> Result<String, OAuthError> {
    let member = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("JWK is missing the string member \"{name}\"")))
    };
    let kty = member("kty")?;
    if kty != "EC" {
        return Err(bad(format!(
            "unsupported JWK kty \"{kty}\" (expected \"EC\")"
        )));
    }
    Ok(canonical_thumbprint(
        member("crv")?,
        member("x")?,
        member("y")?,
    ))
}

fn canonical_thumbprint(crv: &str, x: &str, y: &str) -> String {
    // serde_json writes strings as JSON string literals (quoted, escaped).
    let canonical = format!(
        "{{\"crv\":{},\"kty\":\"EC\",\"x\":{},\"y\":{}}}",
        Value::from(crv),
        Value::from(x),
        Value::from(y)
    );
    BASE64URL_NOPAD.encode(&Sha256::digest(canonical.as_bytes()))
}

#[derive(Clone, Debug)]
enum Key {
    P256(p256::ecdsa::VerifyingKey),
    K256(k256::ecdsa::VerifyingKey),
}

/// A public EC key read from a JWK: `crv` `P-256` (JWS `alg` `ES256`) or
/// `secp256k1` (`ES256K`).
#[derive(Clone, Debug)]
pub struct PublicJwk {
    key: Key,
    kid: Option<String>,
    thumbprint: String,
}

impl PublicJwk {
    /// Parses an EC public JWK. Refuses a JWK with a private part (`d`), a
    /// `kty` other than `EC`, a curve other than `P-256` / `secp256k1`, an
    /// `alg` that does not fit the curve, a `use` other than `sig`,
    /// coordinates that are not 32 bytes of unpadded base64url, and points
    /// not on the curve.
    pub fn parse(jwk: &Value) -> Result<PublicJwk, OAuthError> {
        let Some(object) = jwk.as_object() else {
            return Err(bad("JWK is not a JSON object"));
        };
        if object.contains_key("d") {
            return Err(bad(
                "JWK holds a private key (\"d\"); only public keys are allowed",
            ));
        }
        let str_member = |name: &str| -> Result<Option<&str>, OAuthError> {
            match object.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(bad(format!("JWK member \"{name}\" is not a string"))),
            }
        };
        let kty = str_member("kty")?.ok_or_else(|| bad("JWK has no \"kty\""))?;
        if kty != "EC" {
            return Err(bad(format!(
                "unsupported JWK kty \"{kty}\" (expected \"EC\")"
            )));
        }
        let crv = str_member("crv")?.ok_or_else(|| bad("JWK has no \"crv\""))?;
        let algorithm = match crv {
            "P-256" => Algorithm::P256,
            "secp256k1" => Algorithm::K256,
            other => return Err(bad(format!("unsupported JWK curve \"{other}\""))),
        };
        if let Some(alg) = str_member("alg")?
            && alg != algorithm.jwt_name()
        {
            return Err(bad(format!(
                "JWK alg \"{alg}\" does not match its curve \"{crv}\""
            )));
        }
        if let Some(use_) = str_member("use")?
            && use_ != "sig"
        {
            return Err(bad(format!("JWK use \"{use_}\" is not \"sig\"")));
        }
        let x_b64 = str_member("x")?.ok_or_else(|| bad("JWK has no \"x\""))?;
        let y_b64 = str_member("y")?.ok_or_else(|| bad("JWK has no \"y\""))?;
        let coordinate = |name: &str, value: &str| -> Result<Vec<u8>, OAuthError> {
            match BASE64URL_NOPAD.decode(value.as_bytes()) {
                Ok(bytes) if bytes.len() == 32 => Ok(bytes),
                _ => Err(bad(format!(
                    "JWK \"{name}\" is not 32 bytes of unpadded base64url"
                ))),
            }
        };
        let mut sec1 = Vec::with_capacity(65);
        sec1.push(0x04);
        sec1.extend_from_slice(&coordinate("x", x_b64)?);
        sec1.extend_from_slice(&coordinate("y", y_b64)?);
        let not_on_curve = |_| bad("JWK coordinates are not a point on the curve");
        let key = match algorithm {
            Algorithm::P256 => {
                Key::P256(p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(not_on_curve)?)
            }
            Algorithm::K256 => {
                Key::K256(k256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(not_on_curve)?)
            }
        };
        let kid = str_member("kid")?.map(str::to_owned);
        Ok(PublicJwk {
            key,
            kid,
            thumbprint: canonical_thumbprint(crv, x_b64, y_b64),
        })
    }

    /// The RFC 7638 thumbprint (see [`thumbprint`]).
    pub fn thumbprint(&self) -> String {
        self.thumbprint.clone()
    }

    /// The JWK's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The JWS `alg` this key verifies: `"ES256"` or `"ES256K"`.
    pub fn alg(&self) -> &'static str {
        self.algorithm().jwt_name()
    }

    /// The curve, as `pds-crypto` names it.
    pub fn algorithm(&self) -> Algorithm {
        match self.key {
            Key::P256(_) => Algorithm::P256,
            Key::K256(_) => Algorithm::K256,
        }
    }

    /// Verifies a 64-byte `r || s` ECDSA signature over SHA-256 of `msg`,
    /// high-S accepted.
    pub fn verify_signature(&self, msg: &[u8], sig: &[u8]) -> Result<(), OAuthError> {
        use p256::ecdsa::signature::Verifier;
        let bad_sig = || bad("bad JWS signature");
        if sig.len() != 64 {
            return Err(bad(format!(
                "JWS signature is {} bytes (expected 64, r || s)",
                sig.len()
            )));
        }
        match &self.key {
            Key::P256(key) => {
                let sig = p256::ecdsa::Signature::from_slice(sig).map_err(|_| bad_sig())?;
                key.verify(msg, &sig.normalize_s()).map_err(|_| bad_sig())
            }
            Key::K256(key) => {
                // k256 refuses high-S when verifying; its low-S twin is the
                // same signature in JOSE's eyes.
                let sig = k256::ecdsa::Signature::from_slice(sig).map_err(|_| bad_sig())?;
                key.verify(msg, &sig.normalize_s()).map_err(|_| bad_sig())
            }
        }
    }

    /// Verifies a compact JWS with this key and returns `(header, claims)`,
    /// both JSON objects. The header's `alg` must equal [`PublicJwk::alg`];
    /// a `crit` header is refused (no extensions are understood). Nothing in
    /// the claims is checked.
    pub fn verify_jws(&self, token: &str) -> Result<(Value, Value), OAuthError> {
        let parts = jws::split(token).map_err(bad)?;
        match parts.header.get("alg") {
            Some(Value::String(alg)) if alg == self.alg() => {}
            Some(Value::String(alg)) => {
                return Err(bad(format!(
                    "JWS alg \"{alg}\" does not match the key (\"{}\")",
                    self.alg()
                )));
            }
            _ => return Err(bad("JWS header has no string \"alg\"")),
        }
        if parts.header.get("crit").is_some() {
            return Err(bad("JWS header \"crit\" extensions are not supported"));
        }
        self.verify_signature(parts.signing_input.as_bytes(), &parts.signature)?;
        Ok((parts.header, parts.claims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use serde_json::json;

    #[test]
    fn thumbprint_is_sha256_of_the_canonical_members() {
        for alg in [Algorithm::P256, Algorithm::K256] {
            let key = TestKey::generate(alg);
            let mut jwk = key.public_jwk();
            jwk["kid"] = json!("k1");
            jwk["alg"] = json!(alg.jwt_name());
            // Built independently: the canonical string, by hand.
            let canonical = format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                jwk["crv"].as_str().unwrap(),
                jwk["x"].as_str().unwrap(),
                jwk["y"].as_str().unwrap()
            );
            let expected = BASE64URL_NOPAD.encode(&Sha256::digest(canonical.as_bytes()));
            assert_eq!(thumbprint(&jwk).unwrap(), expected);
            assert_eq!(PublicJwk::parse(&jwk).unwrap().thumbprint(), expected);
            assert_eq!(expected.len(), 43);
        }
    }

    #[test]
    fn thumbprint_refuses_non_ec() {
        assert!(thumbprint(&json!({"kty":"RSA","n":"x","e":"AQAB"})).is_err());
        assert!(thumbprint(&json!({"kty":"EC","crv":"P-256","x":"a"})).is_err());
    }

    #[test]
    fn parse_accepts_both_curves() {
        let key = TestKey::generate(Algorithm::P256);
        let mut jwk = key.public_jwk();
        jwk["kid"] = json!("abc");
        jwk["use"] = json!("sig");
        let parsed = PublicJwk::parse(&jwk).unwrap();
        assert_eq!(parsed.alg(), "ES256");
        assert_eq!(parsed.kid(), Some("abc"));
        let key = TestKey::generate(Algorithm::K256);
        let parsed = PublicJwk::parse(&key.public_jwk()).unwrap();
        assert_eq!(parsed.alg(), "ES256K");
        assert_eq!(parsed.kid(), None);
    }

    #[test]
    fn parse_refuses_bad_jwks() {
        let key = TestKey::generate(Algorithm::P256);
        let good = key.public_jwk();
        let with = |name: &str, value: Value| {
            let mut jwk = good.clone();
            jwk[name] = value;
            jwk
        };
        let without = |name: &str| {
            let mut jwk = good.clone();
            jwk.as_object_mut().unwrap().remove(name);
            jwk
        };
        let cases = [
            with("d", json!(BASE64URL_NOPAD.encode(&[1u8; 32]))),
            with("kty", json!("RSA")),
            with("kty", json!("OKP")),
            with("crv", json!("P-384")),
            with("crv", json!("secp256k1")), // P-256 coordinates, not on k1
            with("alg", json!("ES256K")),
            with("use", json!("enc")),
            with("x", json!("AAAA")),
            with("x", json!(BASE64URL_NOPAD.encode(&[0u8; 32]))),
            with("y", json!(format!("{}=", good["y"].as_str().unwrap()))),
            with("kid", json!(5)),
            without("x"),
            without("crv"),
            without("kty"),
            json!("not an object"),
        ];
        for jwk in cases {
            assert!(PublicJwk::parse(&jwk).is_err(), "{jwk}");
        }
    }

    #[test]
    fn verify_jws_both_s_forms_and_refusals() {
        for alg in [Algorithm::P256, Algorithm::K256] {
            let key = TestKey::generate(alg);
            let jwk = PublicJwk::parse(&key.public_jwk()).unwrap();
            let header = json!({"alg": alg.jwt_name(), "typ": "JWT"});
            let claims = json!({"hello": "world"});
            let low = key.sign_jws(&header, &claims, SForm::Low);
            let high = key.sign_jws(&header, &claims, SForm::High);
            assert_ne!(low, high);
            let (h, c) = jwk.verify_jws(&low).unwrap();
            assert_eq!(h, header);
            assert_eq!(c, claims);
            jwk.verify_jws(&high).unwrap();

            // Another key's signature.
            let other = TestKey::generate(alg);
            assert!(
                jwk.verify_jws(&other.sign_jws(&header, &claims, SForm::Low))
                    .is_err()
            );
            // Tampered payload.
            let mut parts: Vec<&str> = low.split('.').collect();
            let forged = BASE64URL_NOPAD.encode(br#"{"hello":"there"}"#);
            parts[1] = &forged;
            assert!(jwk.verify_jws(&parts.join(".")).is_err());
            // Wrong alg in the header, "none", crit.
            let other_alg = if alg == Algorithm::P256 {
                "ES256K"
            } else {
                "ES256"
            };
            for h in [
                json!({"alg": other_alg}),
                json!({"alg": "none"}),
                json!({}),
                json!({"alg": alg.jwt_name(), "crit": ["b64"], "b64": false}),
            ] {
                assert!(
                    jwk.verify_jws(&key.sign_jws(&h, &claims, SForm::Low))
                        .is_err(),
                    "{h}"
                );
            }
            // A DER or truncated signature.
            let (input, _) = low.rsplit_once('.').unwrap();
            let short = format!("{input}.{}", BASE64URL_NOPAD.encode(&[1u8; 63]));
            assert!(jwk.verify_jws(&short).is_err());
        }
    }
}
