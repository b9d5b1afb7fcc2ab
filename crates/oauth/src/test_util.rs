//! Test helpers: keys that sign JWSs the way JOSE libraries do, in either S
//! form.

use data_encoding::{BASE64URL_NOPAD, HEXUPPER};
use p256::ecdsa::signature::Signer;
use pds_crypto::{Algorithm, Keypair};
use serde_json::{Value, json};

pub(crate) enum SForm {
    Low,
    High,
}

pub(crate) enum TestKey {
    P256(p256::ecdsa::SigningKey),
    K256(k256::ecdsa::SigningKey),
}

const P256_ORDER: &str = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";
const K256_ORDER: &str = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141";

impl TestKey {
    pub(crate) fn generate(alg: Algorithm) -> TestKey {
        let secret = Keypair::generate(alg).private_bytes();
        match alg {
            Algorithm::P256 => TestKey::P256(p256::ecdsa::SigningKey::from_slice(&secret).unwrap()),
            Algorithm::K256 => TestKey::K256(k256::ecdsa::SigningKey::from_slice(&secret).unwrap()),
        }
    }

    pub(crate) fn alg(&self) -> Algorithm {
        match self {
            TestKey::P256(_) => Algorithm::P256,
            TestKey::K256(_) => Algorithm::K256,
        }
    }

    /// `{"kty":"EC","crv":..,"x":..,"y":..}`.
    pub(crate) fn public_jwk(&self) -> Value {
        let (crv, point) = match self {
            TestKey::P256(k) => (
                "P-256",
                k.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
            ),
            TestKey::K256(k) => (
                "secp256k1",
                k.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
            ),
        };
        assert_eq!(point.len(), 65);
        json!({
            "kty": "EC",
            "crv": crv,
            "x": BASE64URL_NOPAD.encode(&point[1..33]),
            "y": BASE64URL_NOPAD.encode(&point[33..]),
        })
    }

    /// The JWK with its private scalar `d` too.
    pub(crate) fn private_jwk(&self) -> Value {
        let d = match self {
            TestKey::P256(k) => k.to_bytes().to_vec(),
            TestKey::K256(k) => k.to_bytes().to_vec(),
        };
        let mut jwk = self.public_jwk();
        jwk["d"] = json!(BASE64URL_NOPAD.encode(&d));
        jwk
    }

    /// A 64-byte `r || s` signature over SHA-256 of `msg` in the S form asked.
    pub(crate) fn sign(&self, msg: &[u8], form: SForm) -> Vec<u8> {
        let (low, order) = match self {
            TestKey::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                (sig.normalize_s().to_bytes().to_vec(), P256_ORDER)
            }
            TestKey::K256(k) => {
                let sig: k256::ecdsa::Signature = k.sign(msg);
                (sig.normalize_s().to_bytes().to_vec(), K256_ORDER)
            }
        };
        match form {
            SForm::Low => low,
            SForm::High => {
                // s' = n - s, big-endian.
                let n = HEXUPPER.decode(order.as_bytes()).unwrap();
                let mut out = low.clone();
                let mut borrow = 0i16;
                for i in (0..32).rev() {
                    let mut d = i16::from(n[i]) - i16::from(low[32 + i]) - borrow;
                    borrow = i16::from(d < 0);
                    if d < 0 {
                        d += 256;
                    }
                    out[32 + i] = d as u8;
                }
                assert_eq!(borrow, 0);
                assert_ne!(out, low);
                out
            }
        }
    }

    /// A compact JWS of `header` and `claims`, signed with this key.
    pub(crate) fn sign_jws(&self, header: &Value, claims: &Value, form: SForm) -> String {
        let input = format!(
            "{}.{}",
            BASE64URL_NOPAD.encode(header.to_string().as_bytes()),
            BASE64URL_NOPAD.encode(claims.to_string().as_bytes())
        );
        let sig = self.sign(input.as_bytes(), form);
        format!("{input}.{}", BASE64URL_NOPAD.encode(&sig))
    }
}
