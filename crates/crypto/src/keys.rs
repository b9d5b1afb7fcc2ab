//! Key pairs, public keys, did:key / multikey encoding, and low-S ECDSA.

use std::fmt;

use k256::ecdsa::signature::{Signer, Verifier};
use zeroize::Zeroize;

use crate::{CryptoError, base58};

/// Multicodec `secp256k1-pub` (0xe7) as an unsigned varint.
const K256_MULTICODEC: [u8; 2] = [0xe7, 0x01];
/// Multicodec `p256-pub` (0x1200) as an unsigned varint.
const P256_MULTICODEC: [u8; 2] = [0x80, 0x24];
/// Prefix of every did:key string.
const DID_KEY_PREFIX: &str = "did:key:";
/// A compressed SEC1 point: parity byte plus 32-byte x coordinate.
const COMPRESSED_LEN: usize = 33;
/// Longest multibase string we agree to decode. A multikey is 2 + 33 bytes,
/// i.e. 48 base58 characters plus `z`; a legacy uncompressed point is 65
/// bytes (~89 characters). The cap keeps hostile input from making the
/// quadratic base58 decoder slow.
const MAX_MULTIBASE_LEN: usize = 128;

/// The two elliptic curves atproto signs with.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Algorithm {
    /// secp256k1 ("K-256"), JWT name `ES256K`.
    K256,
    /// NIST P-256 (secp256r1), JWT name `ES256`.
    P256,
}

impl Algorithm {
    /// The JOSE `alg` name: `ES256K` or `ES256`.
    pub fn jwt_name(&self) -> &'static str {
        match self {
            Algorithm::K256 => "ES256K",
            Algorithm::P256 => "ES256",
        }
    }

    /// Parses a JOSE `alg` name (`ES256K` or `ES256`).
    pub fn from_jwt_name(name: &str) -> Option<Algorithm> {
        match name {
            "ES256K" => Some(Algorithm::K256),
            "ES256" => Some(Algorithm::P256),
            _ => None,
        }
    }

    fn multicodec(self) -> [u8; 2] {
        match self {
            Algorithm::K256 => K256_MULTICODEC,
            Algorithm::P256 => P256_MULTICODEC,
        }
    }
}

#[derive(Clone)]
enum SecretInner {
    K256(k256::ecdsa::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

/// A private signing key on one of the two curves.
///
/// `Debug` shows the algorithm and the public did:key, never the secret.
/// The underlying key material is wiped when the value is dropped.
#[derive(Clone)]
pub struct Keypair {
    inner: SecretInner,
}

impl Keypair {
    /// Generates a fresh private key from operating-system randomness.
    ///
    /// # Panics
    /// If the operating system cannot supply random bytes; without entropy
    /// there is no safe way to continue.
    pub fn generate(alg: Algorithm) -> Keypair {
        let mut bytes = [0u8; 32];
        loop {
            getrandom::fill(&mut bytes).expect("operating system randomness unavailable");
            // A uniformly random 32-byte string is zero or >= the order with
            // probability < 2^-127 on either curve; just draw again.
            if let Ok(key) = Keypair::from_private_bytes(alg, &bytes) {
                bytes.zeroize();
                return key;
            }
        }
    }

    /// Loads a private key from its 32-byte big-endian scalar.
    pub fn from_private_bytes(alg: Algorithm, bytes: &[u8]) -> Result<Keypair, CryptoError> {
        if bytes.len() != 32 {
            return Err(CryptoError::InvalidPrivateKey("must be 32 bytes"));
        }
        let out_of_range =
            || CryptoError::InvalidPrivateKey("scalar is zero or not below the curve order");
        let inner = match alg {
            Algorithm::K256 => SecretInner::K256(
                k256::ecdsa::SigningKey::from_slice(bytes).map_err(|_| out_of_range())?,
            ),
            Algorithm::P256 => SecretInner::P256(
                p256::ecdsa::SigningKey::from_slice(bytes).map_err(|_| out_of_range())?,
            ),
        };
        Ok(Keypair { inner })
    }

    /// Loads a private key from 64 hex characters (either case).
    pub fn from_private_hex(alg: Algorithm, hex: &str) -> Result<Keypair, CryptoError> {
        let mut bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(hex.as_bytes())
            .map_err(|_| CryptoError::InvalidPrivateKey("not valid hex"))?;
        let result = Keypair::from_private_bytes(alg, &bytes);
        bytes.zeroize();
        result
    }

    /// The 32-byte big-endian private scalar. Handle with care.
    pub fn private_bytes(&self) -> [u8; 32] {
        let mut field = match &self.inner {
            SecretInner::K256(key) => key.to_bytes(),
            SecretInner::P256(key) => key.to_bytes(),
        };
        let mut out = [0u8; 32];
        out.copy_from_slice(&field);
        field.zeroize();
        out
    }

    /// Which curve this key is on.
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            SecretInner::K256(_) => Algorithm::K256,
            SecretInner::P256(_) => Algorithm::P256,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        let inner = match &self.inner {
            SecretInner::K256(key) => PublicInner::K256(*key.verifying_key()),
            SecretInner::P256(key) => PublicInner::P256(*key.verifying_key()),
        };
        PublicKey { inner }
    }

    /// The public key as `did:key:z...`.
    pub fn did_key(&self) -> String {
        self.public_key().did_key()
    }

    /// Signs `sha256(msg)` with deterministic (RFC 6979) ECDSA and returns
    /// the 64-byte compact `r || s` signature, always in low-S form.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        match &self.inner {
            SecretInner::K256(key) => {
                let sig: k256::ecdsa::Signature = key.sign(msg);
                out.copy_from_slice(&sig.normalize_s().to_bytes());
            }
            SecretInner::P256(key) => {
                let sig: p256::ecdsa::Signature = key.sign(msg);
                out.copy_from_slice(&sig.normalize_s().to_bytes());
            }
        }
        out
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("algorithm", &self.algorithm())
            .field("did_key", &self.did_key())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq)]
enum PublicInner {
    K256(k256::ecdsa::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

/// A public key on one of the two curves, as found in a did:key or a DID
/// document's `publicKeyMultibase`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    inner: PublicInner,
}

impl PublicKey {
    /// Parses `did:key:z...` (multicodec-prefixed, compressed point).
    pub fn from_did_key(did_key: &str) -> Result<PublicKey, CryptoError> {
        let multibase = did_key
            .strip_prefix(DID_KEY_PREFIX)
            .ok_or(CryptoError::InvalidMultikey("missing did:key: prefix"))?;
        PublicKey::from_multikey(multibase)
    }

    /// Parses a `Multikey` `publicKeyMultibase` value: `z` + base58btc of the
    /// multicodec varint followed by the 33-byte compressed point.
    pub fn from_multikey(multibase: &str) -> Result<PublicKey, CryptoError> {
        let bytes = decode_multibase(multibase)?;
        if bytes.len() < 2 {
            return Err(CryptoError::InvalidMultikey("too short"));
        }
        let (prefix, key) = bytes.split_at(2);
        let alg = if prefix == K256_MULTICODEC {
            Algorithm::K256
        } else if prefix == P256_MULTICODEC {
            Algorithm::P256
        } else {
            return Err(CryptoError::UnsupportedKeyType(prefix[0], prefix[1]));
        };
        PublicKey::from_compressed(alg, key)
    }

    /// Parses the legacy DID-document form (`EcdsaSecp256k1VerificationKey2019`
    /// / `EcdsaSecp256r1VerificationKey2019`): `z` + base58btc of a bare SEC1
    /// point, compressed or uncompressed, with no multicodec prefix; the curve
    /// comes from the verification method's type.
    pub fn from_legacy_multibase(
        alg: Algorithm,
        multibase: &str,
    ) -> Result<PublicKey, CryptoError> {
        let bytes = decode_multibase(multibase)?;
        PublicKey::from_sec1(alg, &bytes)
    }

    /// Parses a 33-byte compressed SEC1 point (`0x02`/`0x03` + x).
    pub fn from_compressed(alg: Algorithm, bytes: &[u8]) -> Result<PublicKey, CryptoError> {
        if bytes.len() != COMPRESSED_LEN || !matches!(bytes[0], 0x02 | 0x03) {
            return Err(CryptoError::InvalidPublicKey(
                "expected a 33-byte compressed point",
            ));
        }
        PublicKey::from_sec1(alg, bytes)
    }

    fn from_sec1(alg: Algorithm, bytes: &[u8]) -> Result<PublicKey, CryptoError> {
        let invalid = |_| CryptoError::InvalidPublicKey("not a point on the curve");
        let inner = match alg {
            Algorithm::K256 => PublicInner::K256(
                k256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(invalid)?,
            ),
            Algorithm::P256 => PublicInner::P256(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(invalid)?,
            ),
        };
        Ok(PublicKey { inner })
    }

    /// Which curve this key is on.
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            PublicInner::K256(_) => Algorithm::K256,
            PublicInner::P256(_) => Algorithm::P256,
        }
    }

    /// `did:key:` followed by [`PublicKey::multikey`].
    pub fn did_key(&self) -> String {
        format!("{DID_KEY_PREFIX}{}", self.multikey())
    }

    /// The `Multikey` multibase string (`z...`) for a DID document's
    /// `publicKeyMultibase`.
    pub fn multikey(&self) -> String {
        let mut bytes = Vec::with_capacity(2 + COMPRESSED_LEN);
        bytes.extend_from_slice(&self.algorithm().multicodec());
        bytes.extend_from_slice(&self.compressed_bytes());
        format!("z{}", base58::encode(&bytes))
    }

    /// The 33-byte compressed SEC1 point.
    pub fn compressed_bytes(&self) -> Vec<u8> {
        match &self.inner {
            PublicInner::K256(key) => key.to_sec1_point(true).as_bytes().to_vec(),
            PublicInner::P256(key) => key.to_sec1_point(true).as_bytes().to_vec(),
        }
    }

    /// Verifies a 64-byte compact `r || s` signature over `sha256(msg)`.
    ///
    /// Rejects anything that is not exactly 64 bytes (so DER never passes),
    /// and rejects high-S signatures on both curves.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        if sig.len() != 64 {
            return Err(CryptoError::InvalidSignatureLength(sig.len()));
        }
        match &self.inner {
            PublicInner::K256(key) => {
                let sig = k256::ecdsa::Signature::from_slice(sig)
                    .map_err(|_| CryptoError::BadSignature)?;
                if sig.normalize_s() != sig {
                    return Err(CryptoError::HighS);
                }
                key.verify(msg, &sig).map_err(|_| CryptoError::BadSignature)
            }
            PublicInner::P256(key) => {
                let sig = p256::ecdsa::Signature::from_slice(sig)
                    .map_err(|_| CryptoError::BadSignature)?;
                if sig.normalize_s() != sig {
                    return Err(CryptoError::HighS);
                }
                key.verify(msg, &sig).map_err(|_| CryptoError::BadSignature)
            }
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicKey").field(&self.did_key()).finish()
    }
}

/// Parses `did_key` and verifies `sig` over `msg` with it.
pub fn verify_with_did_key(did_key: &str, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    PublicKey::from_did_key(did_key)?.verify(msg, sig)
}

fn decode_multibase(multibase: &str) -> Result<Vec<u8>, CryptoError> {
    if multibase.len() > MAX_MULTIBASE_LEN {
        return Err(CryptoError::InvalidMultikey("too long"));
    }
    let encoded = multibase
        .strip_prefix('z')
        .ok_or(CryptoError::InvalidMultikey(
            "multibase must be base58btc ('z')",
        ))?;
    base58::decode(encoded).ok_or(CryptoError::InvalidMultikey("invalid base58btc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALGS: [Algorithm; 2] = [Algorithm::K256, Algorithm::P256];

    /// Group orders, big-endian, written out independently of the curve crates.
    fn order(alg: Algorithm) -> [u8; 32] {
        let hex = match alg {
            Algorithm::K256 => "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141",
            Algorithm::P256 => "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551",
        };
        data_encoding::HEXUPPER
            .decode(hex.as_bytes())
            .unwrap()
            .try_into()
            .unwrap()
    }

    /// `a - b` on 32-byte big-endian integers (a >= b).
    fn sub(a: &[u8; 32], b: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
            borrow = i16::from(d < 0);
            if d < 0 {
                d += 256;
            }
            out[i] = d as u8;
        }
        assert_eq!(borrow, 0);
        out
    }

    /// True when the s half of a compact signature is <= n/2.
    fn is_low_s(alg: Algorithm, sig: &[u8; 64]) -> bool {
        // s <= n - s  <=>  s <= n/2
        let s = &sig[32..];
        let n_minus_s = sub(&order(alg), s);
        s <= &n_minus_s[..]
    }

    fn high_s_twin(alg: Algorithm, sig: &[u8; 64]) -> [u8; 64] {
        let mut twin = *sig;
        twin[32..].copy_from_slice(&sub(&order(alg), &sig[32..]));
        twin
    }

    #[test]
    fn jwt_names() {
        assert_eq!(Algorithm::K256.jwt_name(), "ES256K");
        assert_eq!(Algorithm::P256.jwt_name(), "ES256");
        for alg in ALGS {
            assert_eq!(Algorithm::from_jwt_name(alg.jwt_name()), Some(alg));
        }
        assert_eq!(Algorithm::from_jwt_name("HS256"), None);
    }

    #[test]
    fn sign_verify_round_trip() {
        for alg in ALGS {
            let key = Keypair::generate(alg);
            assert_eq!(key.algorithm(), alg);
            let public = key.public_key();
            assert_eq!(public.algorithm(), alg);
            let sig = key.sign(b"hello atproto");
            public.verify(b"hello atproto", &sig).unwrap();
            verify_with_did_key(&key.did_key(), b"hello atproto", &sig).unwrap();
            assert_eq!(
                public.verify(b"hello atproto!", &sig),
                Err(CryptoError::BadSignature)
            );
            let other = Keypair::generate(alg).public_key();
            assert_eq!(
                other.verify(b"hello atproto", &sig),
                Err(CryptoError::BadSignature)
            );
            // Deterministic nonces: same key and message, same signature.
            assert_eq!(key.sign(b"hello atproto"), sig);
        }
    }

    #[test]
    fn signatures_are_always_low_s() {
        for alg in ALGS {
            let key = Keypair::generate(alg);
            let mut high_before_normalising = 0;
            for i in 0u32..500 {
                let msg = format!("message number {i}");
                let sig = key.sign(msg.as_bytes());
                assert!(is_low_s(alg, &sig), "{alg:?} produced high-S for {msg}");
                key.public_key().verify(msg.as_bytes(), &sig).unwrap();
                // Count how often the raw ECDSA output needed flipping, to make
                // sure this test actually exercises normalisation.
                let raw_high = match &key.inner {
                    SecretInner::K256(k) => {
                        let raw: k256::ecdsa::Signature = k.sign(msg.as_bytes());
                        raw.normalize_s() != raw
                    }
                    SecretInner::P256(k) => {
                        let raw: p256::ecdsa::Signature = k.sign(msg.as_bytes());
                        raw.normalize_s() != raw
                    }
                };
                high_before_normalising += usize::from(raw_high);
            }
            // k256's signer already normalises; p256's does not.
            if alg == Algorithm::P256 {
                assert!(high_before_normalising > 100, "{high_before_normalising}");
            }
        }
    }

    #[test]
    fn high_s_twin_of_our_signature_is_rejected() {
        for alg in ALGS {
            let key = Keypair::generate(alg);
            let public = key.public_key();
            for i in 0u8..20 {
                let msg = [i; 10];
                let sig = key.sign(&msg);
                public.verify(&msg, &sig).unwrap();
                let twin = high_s_twin(alg, &sig);
                assert!(!is_low_s(alg, &twin));
                assert_eq!(
                    public.verify(&msg, &twin),
                    Err(CryptoError::HighS),
                    "{alg:?}"
                );
            }
        }
    }

    #[test]
    fn wrong_length_signatures_are_rejected() {
        for alg in ALGS {
            let key = Keypair::generate(alg);
            let sig = key.sign(b"m");
            let public = key.public_key();
            assert_eq!(
                public.verify(b"m", &sig[..63]),
                Err(CryptoError::InvalidSignatureLength(63))
            );
            let mut long = sig.to_vec();
            long.push(0);
            assert_eq!(
                public.verify(b"m", &long),
                Err(CryptoError::InvalidSignatureLength(65))
            );
            assert_eq!(
                public.verify(b"m", &[]),
                Err(CryptoError::InvalidSignatureLength(0))
            );
            assert_eq!(
                public.verify(b"m", &[0u8; 64]),
                Err(CryptoError::BadSignature)
            );
        }
    }

    /// RFC 6979 appendix A.2.5, P-256 with SHA-256, message "sample". The
    /// RFC's s is high, so ours must be n - s.
    #[test]
    fn rfc6979_p256_sample_vector() {
        let key = Keypair::from_private_hex(
            Algorithm::P256,
            "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721",
        )
        .unwrap();
        let r = "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716";
        let s = "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8";
        let s = data_encoding::HEXUPPER.decode(s.as_bytes()).unwrap();
        let sig = key.sign(b"sample");
        assert_eq!(data_encoding::HEXUPPER.encode(&sig[..32]), r);
        assert_eq!(sig[32..], sub(&order(Algorithm::P256), &s));
    }

    #[test]
    fn private_key_round_trip_and_validation() {
        for alg in ALGS {
            let key = Keypair::generate(alg);
            let bytes = key.private_bytes();
            let again = Keypair::from_private_bytes(alg, &bytes).unwrap();
            assert_eq!(again.did_key(), key.did_key());
            let hex = data_encoding::HEXLOWER.encode(&bytes);
            assert_eq!(
                Keypair::from_private_hex(alg, &hex)
                    .unwrap()
                    .private_bytes(),
                bytes
            );
            let upper = hex.to_uppercase();
            assert_eq!(
                Keypair::from_private_hex(alg, &upper)
                    .unwrap()
                    .private_bytes(),
                bytes
            );

            assert!(Keypair::from_private_bytes(alg, &[0u8; 32]).is_err());
            assert!(Keypair::from_private_bytes(alg, &order(alg)).is_err());
            assert!(Keypair::from_private_bytes(alg, &[0xff; 32]).is_err());
            assert!(Keypair::from_private_bytes(alg, &bytes[..31]).is_err());
            assert!(Keypair::from_private_hex(alg, "zz").is_err());
            assert!(Keypair::from_private_hex(alg, &hex[..62]).is_err());
        }
    }

    #[test]
    fn debug_does_not_leak_the_secret() {
        for alg in ALGS {
            let key = Keypair::generate(alg);
            let shown = format!("{key:?} {key:#?}");
            let hex = data_encoding::HEXLOWER.encode(&key.private_bytes());
            assert!(!shown.to_lowercase().contains(&hex));
            assert!(!shown.contains(&format!("{:?}", key.private_bytes())));
            assert!(shown.contains(&key.did_key()));
        }
    }

    #[test]
    fn did_key_round_trip() {
        for alg in ALGS {
            let public = Keypair::generate(alg).public_key();
            let did = public.did_key();
            let prefix = match alg {
                Algorithm::K256 => "did:key:zQ3s",
                Algorithm::P256 => "did:key:zDna",
            };
            assert!(did.starts_with(prefix), "{did}");
            assert_eq!(PublicKey::from_did_key(&did).unwrap(), public);
            assert_eq!(did, format!("did:key:{}", public.multikey()));
            assert_eq!(
                PublicKey::from_multikey(&public.multikey()).unwrap(),
                public
            );
            let compressed = public.compressed_bytes();
            assert_eq!(compressed.len(), 33);
            assert_eq!(
                PublicKey::from_compressed(alg, &compressed).unwrap(),
                public
            );
            let legacy = format!("z{}", base58::encode(&compressed));
            assert_eq!(
                PublicKey::from_legacy_multibase(alg, &legacy).unwrap(),
                public
            );
            let shown = format!("{public:?}");
            assert!(shown.contains(&did));
        }
    }

    #[test]
    fn bad_did_keys_are_rejected() {
        let good = Keypair::generate(Algorithm::K256).did_key();
        let multibase = good.strip_prefix("did:key:").unwrap();
        assert!(PublicKey::from_did_key(multibase).is_err());
        assert!(PublicKey::from_did_key("did:key:").is_err());
        assert!(PublicKey::from_did_key("did:key:z").is_err());
        assert!(PublicKey::from_multikey(&multibase.replacen('z', "f", 1)).is_err());
        assert!(PublicKey::from_multikey(&format!("{multibase}0")).is_err());
        assert!(PublicKey::from_multikey(&"z2".repeat(100)).is_err());

        let public = PublicKey::from_multikey(multibase).unwrap();
        let mut bytes = vec![0xed, 0x01]; // ed25519-pub: not an atproto key type
        bytes.extend(public.compressed_bytes());
        assert_eq!(
            PublicKey::from_multikey(&format!("z{}", base58::encode(&bytes))),
            Err(CryptoError::UnsupportedKeyType(0xed, 0x01))
        );
        // Right prefix, truncated point.
        let mut short = K256_MULTICODEC.to_vec();
        short.extend(&public.compressed_bytes()[..32]);
        assert!(PublicKey::from_multikey(&format!("z{}", base58::encode(&short))).is_err());
        // A secp256k1 point labelled as P-256 is (almost surely) not on P-256,
        // and in any case is not the same key.
        let mut relabelled = P256_MULTICODEC.to_vec();
        relabelled.extend(public.compressed_bytes());
        if let Ok(other) = PublicKey::from_multikey(&format!("z{}", base58::encode(&relabelled))) {
            assert_ne!(other, public);
        }
        // Uncompressed points are not accepted where compressed ones are required.
        assert!(PublicKey::from_compressed(Algorithm::K256, &[0x04; 33]).is_err());
        assert!(PublicKey::from_compressed(Algorithm::K256, &[0x02; 34]).is_err());
    }

    /// A rough throughput figure; run with
    /// `cargo test --release -p pds-crypto -- --ignored --nocapture signing_rate`.
    #[test]
    #[ignore = "measurement, not a check"]
    fn signing_rate() {
        for alg in ALGS {
            let key = Keypair::generate(alg);
            let public = key.public_key();
            let msgs: Vec<[u8; 32]> = (0u32..10_000)
                .map(|i| {
                    let mut m = [0u8; 32];
                    m[..4].copy_from_slice(&i.to_be_bytes());
                    m
                })
                .collect();
            let start = std::time::Instant::now();
            let sigs: Vec<[u8; 64]> = msgs.iter().map(|m| key.sign(m)).collect();
            let sign = start.elapsed();
            let start = std::time::Instant::now();
            for (m, s) in msgs.iter().zip(&sigs) {
                public.verify(m, s).unwrap();
            }
            let verify = start.elapsed();
            println!(
                "{alg:?}: sign 10k in {sign:?} ({:.0}/s), verify 10k in {verify:?} ({:.0}/s)",
                10_000.0 / sign.as_secs_f64(),
                10_000.0 / verify.as_secs_f64()
            );
        }
    }
}
