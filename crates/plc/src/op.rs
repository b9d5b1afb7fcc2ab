//! did:plc operations: their JSON and DAG-CBOR forms, signing, signature
//! checks, CIDs and DID derivation.
//!
//! Three operation types exist. `plc_operation` creates (`prev: null`) or
//! updates a DID; `plc_tombstone` deactivates it for good; the legacy
//! `create` is a genesis-only format from 2022 that the directory still
//! serves for old DIDs, so it is read and verified but never built by a PDS.
//!
//! A signature covers the DAG-CBOR of the operation *without* its `sig`
//! field (not with `sig: null`); the CID and the DID cover the DAG-CBOR of
//! the operation *with* it. `prev` is a CID in its string form, not a CBOR
//! link.

use std::collections::BTreeMap;

use pds_crypto::{Keypair, PublicKey};
use pds_ipld::Cid;
use serde::de::{self, DeserializeOwned};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::PlcError;

/// `type` of a create or update operation.
pub const TYPE_OPERATION: &str = "plc_operation";
/// `type` of a tombstone.
pub const TYPE_TOMBSTONE: &str = "plc_tombstone";
/// `type` of the legacy genesis format.
pub const TYPE_LEGACY_CREATE: &str = "create";
/// The `verificationMethods` entry holding an account's repo signing key.
pub const ATPROTO_VERIFICATION_METHOD: &str = "atproto";
/// The `services` entry naming an account's PDS.
pub const ATPROTO_PDS_SERVICE: &str = "atproto_pds";
/// The `type` of the `atproto_pds` service.
pub const ATPROTO_PDS_TYPE: &str = "AtprotoPersonalDataServer";

/// A service entry: `{type, endpoint}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// e.g. `AtprotoPersonalDataServer`.
    #[serde(rename = "type")]
    pub kind: String,
    /// e.g. `https://pds.example.com`.
    pub endpoint: String,
}

/// The identity a `plc_operation` sets: everything of a DID's state except
/// the DID itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlcData {
    /// did:key strings, highest authority first. Not in the DID document.
    pub rotation_keys: Vec<String>,
    /// Name (without `#`) to did:key, e.g. `atproto`.
    pub verification_methods: BTreeMap<String, String>,
    /// URIs, e.g. `at://alice.example.com`.
    pub also_known_as: Vec<String>,
    /// Name (without `#`) to service, e.g. `atproto_pds`.
    pub services: BTreeMap<String, Service>,
}

impl PlcData {
    /// The usual atproto identity: one handle, one repo signing key
    /// (`signing_key`, a did:key), one PDS, and the given rotation keys.
    pub fn atproto(
        handle: &str,
        pds_endpoint: &str,
        signing_key: &str,
        rotation_keys: Vec<String>,
    ) -> PlcData {
        PlcData {
            rotation_keys,
            verification_methods: BTreeMap::from([(
                ATPROTO_VERIFICATION_METHOD.to_owned(),
                signing_key.to_owned(),
            )]),
            also_known_as: vec![format!("at://{handle}")],
            services: BTreeMap::from([(
                ATPROTO_PDS_SERVICE.to_owned(),
                Service {
                    kind: ATPROTO_PDS_TYPE.to_owned(),
                    endpoint: pds_endpoint.to_owned(),
                },
            )]),
        }
    }

    /// The handle: the first `alsoKnownAs` entry that is an `at://` URI,
    /// without the scheme.
    pub fn handle(&self) -> Option<&str> {
        self.also_known_as
            .iter()
            .find_map(|aka| aka.strip_prefix("at://"))
    }

    /// The `atproto_pds` service endpoint.
    pub fn pds_endpoint(&self) -> Option<&str> {
        self.services
            .get(ATPROTO_PDS_SERVICE)
            .map(|s| s.endpoint.as_str())
    }

    /// The `atproto` verification method (a did:key).
    pub fn signing_key(&self) -> Option<&str> {
        self.verification_methods
            .get(ATPROTO_VERIFICATION_METHOD)
            .map(String::as_str)
    }
}

/// An operation before it is signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnsignedOp {
    /// `plc_operation`: a genesis operation when `prev` is `None`, an update
    /// otherwise.
    Operation {
        /// The state this operation sets.
        data: PlcData,
        /// CID string of the operation this one follows.
        prev: Option<String>,
    },
    /// `plc_tombstone`: deactivates the DID.
    Tombstone {
        /// CID string of the operation this one follows.
        prev: String,
    },
    /// The legacy `create` genesis format. Only for reading old logs (and
    /// tests): new DIDs must use [`UnsignedOp::Operation`]; the directory
    /// refuses new legacy operations.
    LegacyCreate {
        /// did:key of the repo signing key (also the second rotation key).
        signing_key: String,
        /// did:key of the recovery key (the first rotation key).
        recovery_key: String,
        /// Bare handle, without `at://`.
        handle: String,
        /// PDS URL.
        service: String,
    },
}

impl UnsignedOp {
    /// A genesis `plc_operation`.
    pub fn genesis(data: PlcData) -> UnsignedOp {
        UnsignedOp::Operation { data, prev: None }
    }

    /// An update `plc_operation` following the operation with CID `prev`.
    pub fn update(data: PlcData, prev: &Cid) -> UnsignedOp {
        UnsignedOp::Operation {
            data,
            prev: Some(prev.to_string()),
        }
    }

    /// A tombstone following the operation with CID `prev`.
    pub fn tombstone(prev: &Cid) -> UnsignedOp {
        UnsignedOp::Tombstone {
            prev: prev.to_string(),
        }
    }

    /// The bytes a signature covers: DAG-CBOR without `sig`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        encode_cbor(self, None)
    }

    /// Signs with `key` (which must be one of the rotation keys allowed to
    /// sign this operation for it to be accepted).
    pub fn sign(self, key: &Keypair) -> SignedOp {
        let sig = key.sign(&self.signing_bytes());
        SignedOp {
            op: self,
            sig: data_encoding::BASE64URL_NOPAD.encode(&sig),
        }
    }

    /// The operation's `prev`, if any.
    pub fn prev(&self) -> Option<&str> {
        match self {
            UnsignedOp::Operation { prev, .. } => prev.as_deref(),
            UnsignedOp::Tombstone { prev } => Some(prev),
            UnsignedOp::LegacyCreate { .. } => None,
        }
    }

    /// The `type` field.
    pub fn type_name(&self) -> &'static str {
        match self {
            UnsignedOp::Operation { .. } => TYPE_OPERATION,
            UnsignedOp::Tombstone { .. } => TYPE_TOMBSTONE,
            UnsignedOp::LegacyCreate { .. } => TYPE_LEGACY_CREATE,
        }
    }
}

/// A signed operation, as submitted to and served by the directory.
///
/// Its JSON form (serde) is the directory's: `Deserialize` is strict
/// (unknown fields, a missing `prev` or a wrong `type` are errors) and
/// `Serialize` writes the fields in the order the public directory does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedOp {
    /// The signed content.
    pub op: UnsignedOp,
    /// base64url (no padding) of the 64-byte compact low-S ECDSA signature.
    pub sig: String,
}

impl SignedOp {
    /// Parses the JSON form of an operation.
    pub fn from_json(value: &Value) -> Result<SignedOp, PlcError> {
        let Value::Object(map) = value else {
            return Err(PlcError::InvalidOperation("not a JSON object".into()));
        };
        let kind = map
            .get("type")
            .ok_or_else(|| PlcError::InvalidOperation("missing field `type`".into()))?;
        match kind.as_str() {
            Some(TYPE_OPERATION) => {
                let op: OperationJson = parse_fields(value)?;
                Ok(SignedOp {
                    op: UnsignedOp::Operation {
                        data: PlcData {
                            rotation_keys: op.rotation_keys,
                            verification_methods: op.verification_methods,
                            also_known_as: op.also_known_as,
                            services: op.services,
                        },
                        prev: op.prev,
                    },
                    sig: op.sig,
                })
            }
            Some(TYPE_TOMBSTONE) => {
                let op: TombstoneJson = parse_fields(value)?;
                Ok(SignedOp {
                    op: UnsignedOp::Tombstone { prev: op.prev },
                    sig: op.sig,
                })
            }
            Some(TYPE_LEGACY_CREATE) => {
                let op: LegacyCreateJson = parse_fields(value)?;
                if op.prev.is_some() {
                    return Err(PlcError::InvalidOperation(
                        "a legacy create operation must have a null prev".into(),
                    ));
                }
                Ok(SignedOp {
                    op: UnsignedOp::LegacyCreate {
                        signing_key: op.signing_key,
                        recovery_key: op.recovery_key,
                        handle: op.handle,
                        service: op.service,
                    },
                    sig: op.sig,
                })
            }
            _ => Err(PlcError::InvalidOperation(format!(
                "unknown operation type {kind}"
            ))),
        }
    }

    /// Parses JSON bytes (a request body).
    pub fn from_json_bytes(bytes: &[u8]) -> Result<SignedOp, PlcError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| PlcError::InvalidOperation(format!("not JSON: {e}")))?;
        SignedOp::from_json(&value)
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("an operation is plain strings and maps")
    }

    /// The DAG-CBOR of the whole signed operation: what the CID and a
    /// genesis operation's DID hash.
    pub fn to_cbor(&self) -> Vec<u8> {
        encode_cbor(&self.op, Some(&self.sig))
    }

    /// The CID (v1, dag-cbor, sha2-256) of [`SignedOp::to_cbor`]: what the
    /// next operation's `prev` names.
    pub fn cid(&self) -> Cid {
        pds_ipld::cid_for_cbor(&self.to_cbor())
    }

    /// True for a genesis operation (`prev: null`, not a tombstone).
    pub fn is_genesis(&self) -> bool {
        self.op.prev().is_none()
    }

    /// True for a tombstone.
    pub fn is_tombstone(&self) -> bool {
        matches!(self.op, UnsignedOp::Tombstone { .. })
    }

    /// The operation's `prev`, if any.
    pub fn prev(&self) -> Option<&str> {
        self.op.prev()
    }

    /// The DID a genesis operation creates: `did:plc:` + the first 24
    /// characters of base32 (lower case, no padding) of sha256 of
    /// [`SignedOp::to_cbor`].
    pub fn did(&self) -> Result<String, PlcError> {
        if !self.is_genesis() {
            return Err(PlcError::InvalidOperation(
                "only a genesis operation (prev: null) derives a DID".into(),
            ));
        }
        Ok(did_for_genesis_bytes(&self.to_cbor()))
    }

    /// The state after this operation, with a legacy `create` converted to
    /// the `plc_operation` shape; `None` for a tombstone.
    pub fn data(&self) -> Option<PlcData> {
        match &self.op {
            UnsignedOp::Operation { data, .. } => Some(data.clone()),
            UnsignedOp::Tombstone { .. } => None,
            UnsignedOp::LegacyCreate {
                signing_key,
                recovery_key,
                handle,
                service,
            } => Some(PlcData::atproto(
                handle,
                service,
                signing_key,
                vec![recovery_key.clone(), signing_key.clone()],
            )),
        }
    }

    /// The rotation keys this operation hands control to (the keys that may
    /// sign the next one). A legacy `create` hands it to its recovery key,
    /// then its signing key; a tombstone to nobody.
    pub fn rotation_keys(&self) -> Vec<String> {
        match &self.op {
            UnsignedOp::Operation { data, .. } => data.rotation_keys.clone(),
            UnsignedOp::Tombstone { .. } => Vec::new(),
            UnsignedOp::LegacyCreate {
                signing_key,
                recovery_key,
                ..
            } => vec![recovery_key.clone(), signing_key.clone()],
        }
    }

    /// The signature bytes. Strict base64url: no padding, no line breaks,
    /// no stray bits in the last character.
    pub fn sig_bytes(&self) -> Result<Vec<u8>, PlcError> {
        data_encoding::BASE64URL_NOPAD
            .decode(self.sig.as_bytes())
            .map_err(|e| PlcError::InvalidSignature(format!("sig is not base64url: {e}")))
    }

    /// Verifies the signature against one did:key.
    pub fn verify(&self, did_key: &str) -> Result<(), PlcError> {
        let key = PublicKey::from_did_key(did_key)
            .map_err(|e| PlcError::InvalidOperation(format!("bad did:key {did_key}: {e}")))?;
        let sig = self.sig_bytes()?;
        key.verify(&self.op.signing_bytes(), &sig)
            .map_err(|e| PlcError::InvalidSignature(e.to_string()))
    }

    /// The index of the first of `keys` whose signature this is. A key that
    /// does not parse as a did:key is an error as soon as it is reached, as
    /// in the reference implementations.
    pub fn signer_index(&self, keys: &[String]) -> Result<usize, PlcError> {
        let sig = self.sig_bytes()?;
        let msg = self.op.signing_bytes();
        for (i, did_key) in keys.iter().enumerate() {
            let key = PublicKey::from_did_key(did_key).map_err(|e| {
                PlcError::InvalidOperation(format!("bad rotation key {did_key}: {e}"))
            })?;
            if key.verify(&msg, &sig).is_ok() {
                return Ok(i);
            }
        }
        Err(PlcError::InvalidSignature(if keys.is_empty() {
            "no rotation key may sign this operation".into()
        } else {
            "not signed by any allowed rotation key".into()
        }))
    }
}

impl Serialize for SignedOp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Repr::new(&self.op, Some(&self.sig)).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SignedOp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SignedOp, D::Error> {
        let value = Value::deserialize(deserializer)?;
        SignedOp::from_json(&value).map_err(de::Error::custom)
    }
}

/// `did:plc:` + base32 (lower, no padding) of sha256(`signed_cbor`), cut to
/// 24 characters.
pub fn did_for_genesis_bytes(signed_cbor: &[u8]) -> String {
    let hash = pds_ipld::sha256(signed_cbor);
    let b32 = data_encoding::BASE32_NOPAD
        .encode(&hash)
        .to_ascii_lowercase();
    format!("did:plc:{}", &b32[..24])
}

/// Whether `did` has the did:plc shape: `did:plc:` and 24 characters of the
/// base32 alphabet (`a-z`, `2-7`).
pub fn is_plc_did(did: &str) -> bool {
    did.strip_prefix("did:plc:").is_some_and(|id| {
        id.len() == 24
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
    })
}

fn encode_cbor(op: &UnsignedOp, sig: Option<&str>) -> Vec<u8> {
    // Strings, arrays and maps with string keys always encode.
    pds_ipld::to_cbor(&Repr::new(op, sig)).expect("an operation is plain strings and maps")
}

fn parse_fields<T: DeserializeOwned>(value: &Value) -> Result<T, PlcError> {
    T::deserialize(value).map_err(|e| PlcError::InvalidOperation(e.to_string()))
}

/// A map written with its keys in the order DAG-CBOR sorts them (shorter
/// first, then bytewise), which is also the order the public directory's
/// JSON uses. The CBOR encoder sorts again anyway.
struct LengthFirst<'a, V>(&'a BTreeMap<String, V>);

impl<V: Serialize> Serialize for LengthFirst<'_, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entries: Vec<_> = self.0.iter().collect();
        entries.sort_by(|a, b| (a.0.len(), a.0).cmp(&(b.0.len(), b.0)));
        let mut map = serializer.serialize_map(Some(entries.len()))?;
        for (k, v) in entries {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The three wire shapes, borrowed. Fields are declared in length-first
/// order: the JSON then matches the directory's, and the CBOR encoder's own
/// canonical sort is a no-op.
#[derive(Serialize)]
#[serde(untagged)]
enum Repr<'a> {
    Operation {
        #[serde(skip_serializing_if = "Option::is_none")]
        sig: Option<&'a str>,
        prev: Option<&'a str>,
        #[serde(rename = "type")]
        kind: &'static str,
        services: LengthFirst<'a, Service>,
        #[serde(rename = "alsoKnownAs")]
        also_known_as: &'a [String],
        #[serde(rename = "rotationKeys")]
        rotation_keys: &'a [String],
        #[serde(rename = "verificationMethods")]
        verification_methods: LengthFirst<'a, String>,
    },
    Tombstone {
        #[serde(skip_serializing_if = "Option::is_none")]
        sig: Option<&'a str>,
        prev: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
    },
    LegacyCreate {
        #[serde(skip_serializing_if = "Option::is_none")]
        sig: Option<&'a str>,
        prev: Option<&'a str>,
        #[serde(rename = "type")]
        kind: &'static str,
        handle: &'a str,
        service: &'a str,
        #[serde(rename = "signingKey")]
        signing_key: &'a str,
        #[serde(rename = "recoveryKey")]
        recovery_key: &'a str,
    },
}

impl<'a> Repr<'a> {
    fn new(op: &'a UnsignedOp, sig: Option<&'a str>) -> Repr<'a> {
        match op {
            UnsignedOp::Operation { data, prev } => Repr::Operation {
                sig,
                prev: prev.as_deref(),
                kind: TYPE_OPERATION,
                services: LengthFirst(&data.services),
                also_known_as: &data.also_known_as,
                rotation_keys: &data.rotation_keys,
                verification_methods: LengthFirst(&data.verification_methods),
            },
            UnsignedOp::Tombstone { prev } => Repr::Tombstone {
                sig,
                prev,
                kind: TYPE_TOMBSTONE,
            },
            UnsignedOp::LegacyCreate {
                signing_key,
                recovery_key,
                handle,
                service,
            } => Repr::LegacyCreate {
                sig,
                prev: None,
                kind: TYPE_LEGACY_CREATE,
                handle,
                service,
                signing_key,
                recovery_key,
            },
        }
    }
}

/// A field that must be present but may be `null`. (serde lets a plain
/// `Option` field be absent; a `deserialize_with` field must be present.)
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OperationJson {
    #[serde(rename = "type")]
    _kind: String,
    #[serde(rename = "rotationKeys")]
    rotation_keys: Vec<String>,
    #[serde(rename = "verificationMethods")]
    verification_methods: BTreeMap<String, String>,
    #[serde(rename = "alsoKnownAs")]
    also_known_as: Vec<String>,
    services: BTreeMap<String, Service>,
    #[serde(deserialize_with = "nullable")]
    prev: Option<String>,
    sig: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TombstoneJson {
    #[serde(rename = "type")]
    _kind: String,
    prev: String,
    sig: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyCreateJson {
    #[serde(rename = "type")]
    _kind: String,
    #[serde(rename = "signingKey")]
    signing_key: String,
    #[serde(rename = "recoveryKey")]
    recovery_key: String,
    handle: String,
    service: String,
    #[serde(deserialize_with = "nullable")]
    prev: Option<String>,
    sig: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use pds_crypto::Algorithm;
    use serde_json::json;

    fn data(key: &Keypair) -> PlcData {
        PlcData::atproto(
            "alice.test",
            "https://pds.example.com",
            &Keypair::generate(Algorithm::K256).did_key(),
            vec![key.did_key()],
        )
    }

    /// The published genesis operation of did:plc:z72i7hdynmk6r22z27h6tvur
    /// (bsky.app), from the did:plc interop vectors.
    fn bsky_genesis() -> Value {
        json!({
            "sig": "9NuYV7AqwHVTc0YuWzNV3CJafsSZWH7qCxHRUIP2xWlB-YexXC1OaYAnUayiCXLVzRQ8WBXIqF-SvZdNalwcjA",
            "prev": null,
            "type": "plc_operation",
            "services": {
                "atproto_pds": {"type": "AtprotoPersonalDataServer", "endpoint": "https://bsky.social"}
            },
            "alsoKnownAs": ["at://bluesky-team.bsky.social"],
            "rotationKeys": [
                "did:key:zQ3shhCGUqDKjStzuDxPkTxN6ujddP4RkEKJJouJGRRkaLGbg",
                "did:key:zQ3shpKnbdPx3g3CmPf5cRVTPe1HtSwVn5ish3wSnDPQCbLJK"
            ],
            "verificationMethods": {
                "atproto": "did:key:zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"
            }
        })
    }

    #[test]
    fn known_answer_bsky_app_genesis() {
        let op = SignedOp::from_json(&bsky_genesis()).unwrap();
        assert_eq!(op.did().unwrap(), "did:plc:z72i7hdynmk6r22z27h6tvur");
        assert_eq!(
            op.cid().to_string(),
            "bafyreigp6shzy6dlcxuowwoxz7u5nemdrkad2my5zwzpwilcnhih7bw6zm"
        );
        // Signed by the second rotation key.
        assert_eq!(op.signer_index(&op.rotation_keys()).unwrap(), 1);
        // The JSON round trips, in the directory's field order.
        assert_eq!(op.to_json(), bsky_genesis());
        let text = serde_json::to_string(&op).unwrap();
        assert!(text.starts_with(r#"{"sig":"9NuY"#), "{text}");
        assert!(text.ends_with(r#"pribSF"}}"#), "{text}");
    }

    #[test]
    fn known_answer_legacy_create() {
        let op = SignedOp::from_json(&json!({
            "sig": "7QTzqO1BcL3eDzP4P_YBxMmv5U4brHzAItkM9w5o8gZA7ElZkrVYEwsfQCfk5EoWLk58Z1y6fyNP9x1pthJnlw",
            "prev": null,
            "type": "create",
            "handle": "dan.bsky.social",
            "service": "https://bsky.social",
            "signingKey": "did:key:zQ3shP5TBe1sQfSttXty15FAEHV1DZgcxRZNxvEWnPfLFwLxJ",
            "recoveryKey": "did:key:zQ3shhCGUqDKjStzuDxPkTxN6ujddP4RkEKJJouJGRRkaLGbg"
        }))
        .unwrap();
        assert_eq!(op.did().unwrap(), "did:plc:yk4dd2qkboz2yv6tpubpc6co");
        assert_eq!(
            op.cid().to_string(),
            "bafyreigcxay6ucqlwowfpu35alyxqtv3c4vsj7gmdtmnidsnqs6nblyarq"
        );
        assert!(op.signer_index(&op.rotation_keys()).is_ok());
        let data = op.data().unwrap();
        assert_eq!(data.handle(), Some("dan.bsky.social"));
        assert_eq!(data.pds_endpoint(), Some("https://bsky.social"));
        assert_eq!(
            data.rotation_keys,
            [
                "did:key:zQ3shhCGUqDKjStzuDxPkTxN6ujddP4RkEKJJouJGRRkaLGbg",
                "did:key:zQ3shP5TBe1sQfSttXty15FAEHV1DZgcxRZNxvEWnPfLFwLxJ"
            ]
        );
    }

    #[test]
    fn sign_verify_and_derive_round_trip() {
        for alg in [Algorithm::K256, Algorithm::P256] {
            let rotation = Keypair::generate(alg);
            let op = UnsignedOp::genesis(data(&rotation)).sign(&rotation);
            assert_eq!(op.sig_bytes().unwrap().len(), 64);
            assert_eq!(op.sig.len(), 86);
            op.verify(&rotation.did_key()).unwrap();
            assert_eq!(op.signer_index(&[rotation.did_key()]).unwrap(), 0);
            let did = op.did().unwrap();
            assert!(is_plc_did(&did), "{did}");
            // The DID is the hash of the signed bytes; the signature covers
            // the bytes without `sig`.
            assert_eq!(did, did_for_genesis_bytes(&op.to_cbor()));
            assert_ne!(op.to_cbor(), op.op.signing_bytes());
            // JSON round trip keeps every byte that is hashed.
            let back = SignedOp::from_json(&op.to_json()).unwrap();
            assert_eq!(back, op);
            assert_eq!(back.cid(), op.cid());

            let update = UnsignedOp::update(data(&rotation), &op.cid()).sign(&rotation);
            assert_eq!(update.prev(), Some(op.cid().to_string().as_str()));
            assert!(update.did().is_err());
            update.verify(&rotation.did_key()).unwrap();
            let tomb = UnsignedOp::tombstone(&update.cid()).sign(&rotation);
            assert!(tomb.is_tombstone() && !tomb.is_genesis());
            assert!(tomb.data().is_none());
            assert!(tomb.rotation_keys().is_empty());
            assert_eq!(SignedOp::from_json(&tomb.to_json()).unwrap(), tomb);
        }
    }

    #[test]
    fn unsigned_cbor_omits_sig_and_has_null_prev() {
        let key = Keypair::generate(Algorithm::K256);
        let op = UnsignedOp::genesis(data(&key));
        let value: Value = pds_ipld::cbor_to_json(&op.signing_bytes()).unwrap();
        assert!(value.get("sig").is_none());
        assert_eq!(value["prev"], Value::Null);
        assert_eq!(value["type"], "plc_operation");
        let signed = op.sign(&key);
        let value: Value = pds_ipld::cbor_to_json(&signed.to_cbor()).unwrap();
        assert_eq!(value["sig"], signed.sig.as_str());
        // The bytes decode under the strict canonical decoder.
        let _: pds_ipld::Ipld = pds_ipld::from_cbor(&signed.to_cbor()).unwrap();
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let key = Keypair::generate(Algorithm::K256);
        let mut op = UnsignedOp::genesis(data(&key)).sign(&key);
        if let UnsignedOp::Operation { data, .. } = &mut op.op {
            data.also_known_as = vec!["at://mallory.test".into()];
        }
        assert!(matches!(
            op.verify(&key.did_key()),
            Err(PlcError::InvalidSignature(_))
        ));
        let other = Keypair::generate(Algorithm::K256);
        let op = UnsignedOp::genesis(data(&key)).sign(&other);
        assert!(op.signer_index(&[key.did_key()]).is_err());
        assert_eq!(
            op.signer_index(&[key.did_key(), other.did_key()]).unwrap(),
            1
        );
        assert!(op.signer_index(&[]).is_err());
        assert!(matches!(
            op.signer_index(&["did:key:zBogus".into(), other.did_key()]),
            Err(PlcError::InvalidOperation(_))
        ));
    }

    #[test]
    fn strict_base64url_signatures() {
        let key = Keypair::generate(Algorithm::K256);
        let op = UnsignedOp::genesis(data(&key)).sign(&key);
        let variants = [
            format!("{}==", op.sig),
            format!("{}\n", op.sig),
            format!("{}\n{}", &op.sig[..40], &op.sig[40..]),
            op.sig.replace('-', "+").replace('_', "/") + "A",
            String::new(),
        ];
        for sig in variants {
            let bad = SignedOp {
                op: op.op.clone(),
                sig,
            };
            assert!(bad.verify(&key.did_key()).is_err(), "{:?}", bad.sig);
        }
        // Non-zero stray bits in the last character.
        let last = op.sig.chars().last().unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let pos = alphabet.find(last).unwrap();
        let flipped = alphabet.as_bytes()[pos ^ 1] as char;
        let bad = SignedOp {
            op: op.op.clone(),
            sig: format!("{}{flipped}", &op.sig[..op.sig.len() - 1]),
        };
        assert!(bad.sig_bytes().is_err());
    }

    #[test]
    fn high_s_and_der_signatures_are_rejected() {
        // secp256k1 group order.
        let n = data_encoding::HEXUPPER
            .decode(b"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141")
            .unwrap();
        let key = Keypair::generate(Algorithm::K256);
        let op = UnsignedOp::genesis(data(&key)).sign(&key);
        let sig = op.sig_bytes().unwrap();
        // s' = n - s
        let mut high = sig.clone();
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let mut d = i16::from(n[i]) - i16::from(sig[32 + i]) - borrow;
            borrow = i16::from(d < 0);
            if d < 0 {
                d += 256;
            }
            high[32 + i] = d as u8;
        }
        let bad = SignedOp {
            op: op.op.clone(),
            sig: data_encoding::BASE64URL_NOPAD.encode(&high),
        };
        assert!(matches!(
            bad.verify(&key.did_key()),
            Err(PlcError::InvalidSignature(_))
        ));
        // A DER-shaped signature (0x30 len 0x02 ...) is not 64 bytes.
        let mut der = vec![0x30, 0x44, 0x02, 0x20];
        der.extend_from_slice(&sig[..32]);
        der.extend_from_slice(&[0x02, 0x20]);
        der.extend_from_slice(&sig[32..]);
        let bad = SignedOp {
            op: op.op.clone(),
            sig: data_encoding::BASE64URL_NOPAD.encode(&der),
        };
        assert!(bad.verify(&key.did_key()).is_err());
    }

    #[test]
    fn strict_json_parsing() {
        let good = bsky_genesis();
        let mut extra = good.clone();
        extra["extra"] = json!(1);
        let mut no_prev = good.clone();
        no_prev.as_object_mut().unwrap().remove("prev");
        let mut no_sig = good.clone();
        no_sig.as_object_mut().unwrap().remove("sig");
        let mut bad_type = good.clone();
        bad_type["type"] = json!("plc_op");
        let mut number_prev = good.clone();
        number_prev["prev"] = json!(5);
        let mut extra_service_field = good.clone();
        extra_service_field["services"]["atproto_pds"]["x"] = json!("y");
        let mut key_not_string = good.clone();
        key_not_string["rotationKeys"] = json!([1]);
        for bad in [
            extra,
            no_prev,
            no_sig,
            bad_type,
            number_prev,
            extra_service_field,
            key_not_string,
            json!([]),
            json!({}),
            json!({"type": "plc_tombstone", "prev": null, "sig": "x"}),
            json!({"type": "plc_tombstone", "sig": "x"}),
            json!({"type": "create", "prev": "bafy", "sig": "x", "handle": "a", "service": "b",
                   "signingKey": "c", "recoveryKey": "d"}),
        ] {
            assert!(
                matches!(
                    SignedOp::from_json(&bad),
                    Err(PlcError::InvalidOperation(_))
                ),
                "{bad}"
            );
        }
        assert!(SignedOp::from_json_bytes(b"{not json").is_err());
    }

    #[test]
    fn plc_did_shape() {
        assert!(is_plc_did("did:plc:z72i7hdynmk6r22z27h6tvur"));
        assert!(!is_plc_did("did:plc:z72i7hdynmk6r22z27h6tvu"));
        assert!(!is_plc_did("did:plc:z72i7hdynmk6r22z27h6tvur1"));
        assert!(!is_plc_did("did:plc:Z72i7hdynmk6r22z27h6tvur"));
        assert!(!is_plc_did("did:plc:072i7hdynmk6r22z27h6tvur"));
        assert!(!is_plc_did("did:web:z72i7hdynmk6r22z27h6tvur"));
    }

    #[test]
    fn atproto_accessors() {
        let d = PlcData::atproto("bob.test", "http://127.0.0.1:1", "did:key:zQ3s", vec![]);
        assert_eq!(d.handle(), Some("bob.test"));
        assert_eq!(d.pds_endpoint(), Some("http://127.0.0.1:1"));
        assert_eq!(d.signing_key(), Some("did:key:zQ3s"));
        assert_eq!(PlcData::default().handle(), None);
    }
}
