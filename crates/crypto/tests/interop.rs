//! The shared atproto interop vectors for cryptography.
//!
//! The vectors live outside the project, in `shared/interop-tests/crypto/`
//! beside the workspace (or wherever `ATPROTO_INTEROP_TESTS` points). A
//! missing folder is a failure, not a skip.

use data_encoding::{BASE64, BASE64_NOPAD};
use pds_crypto::{Algorithm, CryptoError, Keypair, PublicKey, verify_with_did_key};
use serde_json::Value;

fn load(name: &str) -> Vec<Value> {
    pds_interop_vectors::json_array(&format!("crypto/{name}"))
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("vector lacks string field {name}: {v}"))
}

/// The fixtures use standard base64, normally unpadded.
fn base64(s: &str) -> Vec<u8> {
    BASE64_NOPAD
        .decode(s.as_bytes())
        .or_else(|_| BASE64.decode(s.as_bytes()))
        .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"))
}

/// A deliberately simple base58btc decoder, independent of the crate's, for
/// the P-256 private keys in the W3C vectors.
fn base58(s: &str) -> Vec<u8> {
    const ALPHABET: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut value: Vec<u8> = Vec::new(); // big-endian
    for c in s.chars() {
        let digit = ALPHABET
            .find(c)
            .unwrap_or_else(|| panic!("bad base58 {s:?}")) as u32;
        let mut carry = digit;
        for byte in value.iter_mut().rev() {
            let x = u32::from(*byte) * 58 + carry;
            *byte = (x % 256) as u8;
            carry = x / 256;
        }
        while carry > 0 {
            value.insert(0, (carry % 256) as u8);
            carry /= 256;
        }
    }
    let zeros = s.chars().take_while(|&c| c == '1').count();
    let mut out = vec![0u8; zeros];
    out.extend(value);
    out
}

fn algorithm(v: &Value) -> Algorithm {
    let name = field(v, "algorithm");
    Algorithm::from_jwt_name(name).unwrap_or_else(|| panic!("unknown algorithm {name}"))
}

#[test]
fn signature_fixtures() {
    let vectors = load("signature-fixtures.json");
    let (mut valid, mut invalid) = (0, 0);
    for v in &vectors {
        let comment = field(v, "comment");
        let alg = algorithm(v);
        let did = field(v, "publicKeyDid");
        let msg = base64(field(v, "messageBase64"));
        let sig = base64(field(v, "signatureBase64"));
        let expect_valid = v["validSignature"].as_bool().expect("validSignature flag");

        let key = PublicKey::from_did_key(did).unwrap_or_else(|e| panic!("{comment}: {e}"));
        assert_eq!(key.algorithm(), alg, "{comment}");
        assert_eq!(
            key.did_key(),
            did,
            "{comment}: did:key must re-encode identically"
        );
        assert_eq!(PublicKey::from_multikey(&key.multikey()).unwrap(), key);

        // The fixture's publicKeyMultibase is the legacy bare-point form.
        let legacy = PublicKey::from_legacy_multibase(alg, field(v, "publicKeyMultibase"))
            .unwrap_or_else(|e| panic!("{comment}: {e}"));
        assert_eq!(legacy, key, "{comment}");

        let result = key.verify(&msg, &sig);
        assert_eq!(
            verify_with_did_key(did, &msg, &sig),
            result,
            "{comment}: verify_with_did_key must agree"
        );
        if expect_valid {
            assert_eq!(result, Ok(()), "{comment}");
            valid += 1;
        } else {
            assert!(result.is_err(), "{comment}: must be rejected");
            let tags: Vec<&str> = v["tags"]
                .as_array()
                .map_or(Vec::new(), |t| t.iter().filter_map(Value::as_str).collect());
            if tags.contains(&"high-s") {
                assert_eq!(result, Err(CryptoError::HighS), "{comment}");
            }
            if tags.contains(&"der-encoded") {
                assert!(
                    matches!(result, Err(CryptoError::InvalidSignatureLength(_))),
                    "{comment}: {result:?}"
                );
            }
            invalid += 1;
        }
    }
    assert!(
        valid >= 2 && invalid >= 4,
        "valid {valid}, invalid {invalid}"
    );
}

fn check_w3c_vectors(file: &str, alg: Algorithm) -> usize {
    let vectors = load(file);
    for v in &vectors {
        let private = if let Some(hex) = v["privateKeyBytesHex"].as_str() {
            Keypair::from_private_hex(alg, hex).unwrap()
        } else {
            let bytes = base58(field(v, "privateKeyBytesBase58"));
            Keypair::from_private_bytes(alg, &bytes).unwrap()
        };
        let did = field(v, "publicDidKey");
        assert_eq!(private.did_key(), did);
        let public = PublicKey::from_did_key(did).unwrap();
        assert_eq!(public, private.public_key());
        assert_eq!(public.did_key(), did);

        // Our signatures with these keys verify against the published did:key.
        let sig = private.sign(b"interop");
        verify_with_did_key(did, b"interop", &sig).unwrap();
    }
    vectors.len()
}

#[test]
fn w3c_did_key_k256() {
    assert!(check_w3c_vectors("w3c_didkey_K256.json", Algorithm::K256) >= 1);
}

#[test]
fn w3c_did_key_p256() {
    assert!(check_w3c_vectors("w3c_didkey_P256.json", Algorithm::P256) >= 1);
}
