//! DID documents: the parts atproto reads from them.

use pds_crypto::{Algorithm, PublicKey};
use pds_syntax::{Did, Handle};
use serde_json::Value;

use crate::IdentityError;

/// A verification method entry (`verificationMethod[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationMethod {
    /// `id`, absolute (`did:plc:...#atproto`) or relative (`#atproto`).
    pub id: String,
    /// `type`: `Multikey`, or a legacy `EcdsaSecp256k1VerificationKey2019` /
    /// `EcdsaSecp256r1VerificationKey2019`.
    pub kind: String,
    /// `controller`.
    pub controller: String,
    /// `publicKeyMultibase`, if present.
    pub public_key_multibase: Option<String>,
}

/// A service entry (`service[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// `id`, absolute (`did:web:api.bsky.app#bsky_appview`) or relative
    /// (`#atproto_pds`).
    pub id: String,
    /// `type` (the first one, if the document gives a list).
    pub kind: String,
    /// `serviceEndpoint` when it is a string (atproto only uses strings;
    /// DID-core maps and lists are kept out).
    pub endpoint: Option<String>,
}

/// A parsed DID document.
///
/// Construction checks the shape the reference implementation checks (`id`
/// a DID; `alsoKnownAs` strings; verification methods and services objects
/// with string `id`/`type`/`controller`) and that `id` is the DID that was
/// asked for. The atproto signing key is parsed once, here. The original
/// JSON is kept for endpoints that return the document verbatim.
#[derive(Debug, Clone)]
pub struct DidDocument {
    id: Did,
    also_known_as: Vec<String>,
    verification_methods: Vec<VerificationMethod>,
    services: Vec<Service>,
    signing_key: Option<PublicKey>,
    raw: Value,
}

/// The verification method id of the atproto signing key.
const ATPROTO_KEY: &str = "atproto";
/// The service id and type of the account's PDS.
const PDS_SERVICE: &str = "atproto_pds";
const PDS_TYPE: &str = "AtprotoPersonalDataServer";

fn invalid(msg: impl Into<String>) -> IdentityError {
    IdentityError::InvalidDocument(msg.into())
}

fn str_field<'a>(
    obj: &'a serde_json::Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<&'a str, IdentityError> {
    obj.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what} without a string \"{key}\"")))
}

fn array<'a>(
    doc: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Result<&'a [Value], IdentityError> {
    match doc.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(invalid(format!("\"{key}\" is not an array"))),
    }
}

impl DidDocument {
    /// Parses a DID document that was fetched for `expected`.
    ///
    /// Fails with [`IdentityError::InvalidDocument`] on a bad shape and
    /// [`IdentityError::DidMismatch`] if `id` is another DID.
    pub fn parse(expected: &Did, bytes: &[u8]) -> Result<DidDocument, IdentityError> {
        let raw: Value =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
        DidDocument::from_json(expected, raw)
    }

    /// Like [`parse`](DidDocument::parse), from JSON already parsed.
    pub fn from_json(expected: &Did, raw: Value) -> Result<DidDocument, IdentityError> {
        let obj = raw
            .as_object()
            .ok_or_else(|| invalid("not a JSON object"))?;
        let id_text = str_field(obj, "id", "document")?;
        if id_text != expected.as_str() {
            return Err(IdentityError::DidMismatch {
                expected: expected.to_string(),
                found: id_text.to_owned(),
            });
        }
        let id = expected.clone();

        let also_known_as = array(obj, "alsoKnownAs")?
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid("alsoKnownAs entry is not a string"))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let verification_methods = array(obj, "verificationMethod")?
            .iter()
            .map(|v| {
                let m = v
                    .as_object()
                    .ok_or_else(|| invalid("verificationMethod entry is not an object"))?;
                let public_key_multibase = match m.get("publicKeyMultibase") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(_) => return Err(invalid("publicKeyMultibase is not a string")),
                };
                Ok(VerificationMethod {
                    id: str_field(m, "id", "verificationMethod")?.to_owned(),
                    kind: str_field(m, "type", "verificationMethod")?.to_owned(),
                    controller: str_field(m, "controller", "verificationMethod")?.to_owned(),
                    public_key_multibase,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let services = array(obj, "service")?
            .iter()
            .map(|v| {
                let s = v
                    .as_object()
                    .ok_or_else(|| invalid("service entry is not an object"))?;
                let kind = match s.get("type") {
                    Some(Value::String(t)) => t.clone(),
                    Some(Value::Array(ts)) => ts
                        .first()
                        .and_then(Value::as_str)
                        .ok_or_else(|| invalid("service type list without a string"))?
                        .to_owned(),
                    _ => return Err(invalid("service without a \"type\"")),
                };
                let endpoint = match s.get("serviceEndpoint") {
                    Some(Value::String(e)) => Some(e.clone()),
                    Some(Value::Object(_) | Value::Array(_)) => None,
                    _ => return Err(invalid("service without a \"serviceEndpoint\"")),
                };
                Ok(Service {
                    id: str_field(s, "id", "service")?.to_owned(),
                    kind,
                    endpoint,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let mut doc = DidDocument {
            id,
            also_known_as,
            verification_methods,
            services,
            signing_key: None,
            raw,
        };
        doc.signing_key = doc.parse_signing_key();
        Ok(doc)
    }

    /// Whether an `id` (absolute or relative) names `fragment` in this
    /// document.
    fn id_matches(&self, id: &str, fragment: &str) -> bool {
        let Some((base, frag)) = id.split_once('#') else {
            return false;
        };
        frag == fragment && (base.is_empty() || base == self.id.as_str())
    }

    fn parse_signing_key(&self) -> Option<PublicKey> {
        let method = self.verification_method(ATPROTO_KEY)?;
        let multibase = method.public_key_multibase.as_deref()?;
        let parsed = match method.kind.as_str() {
            "Multikey" => PublicKey::from_multikey(multibase),
            "EcdsaSecp256k1VerificationKey2019" => {
                PublicKey::from_legacy_multibase(Algorithm::K256, multibase)
            }
            "EcdsaSecp256r1VerificationKey2019" => {
                PublicKey::from_legacy_multibase(Algorithm::P256, multibase)
            }
            other => {
                tracing::debug!(did = %self.id, kind = other, "unsupported atproto key type");
                return None;
            }
        };
        parsed
            .inspect_err(|e| tracing::debug!(did = %self.id, error = %e, "unusable atproto key"))
            .ok()
    }

    /// The DID (the document's `id`, equal to the DID resolved).
    pub fn id(&self) -> &Did {
        &self.id
    }

    /// `alsoKnownAs`, as given.
    pub fn also_known_as(&self) -> &[String] {
        &self.also_known_as
    }

    /// The account's handle: the first `alsoKnownAs` entry that is
    /// `at://<valid handle>`. The atproto DID spec makes the first valid one
    /// the handle and says later ones are ignored, so this, not "any entry",
    /// is what bidirectional verification compares against.
    pub fn handle(&self) -> Option<Handle> {
        self.also_known_as
            .iter()
            .filter_map(|aka| aka.strip_prefix("at://"))
            .find_map(|h| Handle::new(h).ok())
    }

    /// Whether `handle` is this document's handle (ASCII case-insensitive).
    pub fn claims_handle(&self, handle: &Handle) -> bool {
        self.handle().is_some_and(|h| h == *handle)
    }

    /// All verification methods.
    pub fn verification_methods(&self) -> &[VerificationMethod] {
        &self.verification_methods
    }

    /// The verification method with id `#<fragment>` (relative or prefixed
    /// by this DID). `fragment` may be given with or without the `#`.
    pub fn verification_method(&self, fragment: &str) -> Option<&VerificationMethod> {
        let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
        self.verification_methods
            .iter()
            .find(|m| self.id_matches(&m.id, fragment))
    }

    /// The atproto signing key (`#atproto`), if present and parseable
    /// (`Multikey`, or the legacy secp256k1/P-256 2019 types).
    pub fn signing_key(&self) -> Option<&PublicKey> {
        self.signing_key.as_ref()
    }

    /// All services.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// The service with id `#<fragment>` (relative or prefixed by this DID),
    /// as named by an `atproto-proxy: <did>#<fragment>` header.
    pub fn service(&self, fragment: &str) -> Option<&Service> {
        let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
        self.services
            .iter()
            .find(|s| self.id_matches(&s.id, fragment))
    }

    /// The endpoint of service `#<fragment>` if it has type `kind` and a
    /// string endpoint that is an http(s) URL.
    pub fn service_endpoint(&self, fragment: &str, kind: &str) -> Option<&str> {
        let service = self.service(fragment)?;
        if service.kind != kind {
            return None;
        }
        let endpoint = service.endpoint.as_deref()?;
        let url = reqwest::Url::parse(endpoint).ok()?;
        (matches!(url.scheme(), "http" | "https") && url.host_str().is_some()).then_some(endpoint)
    }

    /// The account's PDS: service `#atproto_pds` of type
    /// `AtprotoPersonalDataServer`.
    pub fn pds_endpoint(&self) -> Option<&str> {
        self.service_endpoint(PDS_SERVICE, PDS_TYPE)
    }

    /// The document as it was received.
    pub fn raw(&self) -> &Value {
        &self.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pds_crypto::Keypair;
    use serde_json::json;

    fn did() -> Did {
        Did::new("did:plc:ewvi7nxzyoun6zhxrhs64oiz").unwrap()
    }

    #[test]
    fn full_document() {
        let key = Keypair::generate(Algorithm::K256).public_key();
        let doc = json!({
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
            "alsoKnownAs": ["https://example.com", "at://Alice.Test", "at://bob.test"],
            "verificationMethod": [{
                "id": "did:plc:ewvi7nxzyoun6zhxrhs64oiz#atproto",
                "type": "Multikey",
                "controller": "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
                "publicKeyMultibase": key.multikey(),
            }],
            "service": [
                {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://pds.example.com"},
                {"id": "did:plc:ewvi7nxzyoun6zhxrhs64oiz#atproto_labeler", "type": "AtprotoLabeler", "serviceEndpoint": "https://labeler.example.com"},
                {"id": "did:plc:other#x", "type": "X", "serviceEndpoint": "https://x.example.com"},
                {"id": "#map", "type": "Y", "serviceEndpoint": {"origins": []}},
            ],
        });
        let doc = DidDocument::from_json(&did(), doc).unwrap();
        assert_eq!(doc.handle().unwrap().as_str(), "Alice.Test");
        assert!(doc.claims_handle(&Handle::new("alice.test").unwrap()));
        assert!(!doc.claims_handle(&Handle::new("bob.test").unwrap()));
        assert_eq!(doc.signing_key(), Some(&key));
        assert_eq!(doc.pds_endpoint(), Some("https://pds.example.com"));
        assert_eq!(
            doc.service("#atproto_labeler").unwrap().endpoint.as_deref(),
            Some("https://labeler.example.com")
        );
        assert_eq!(
            doc.service_endpoint("atproto_labeler", "AtprotoLabeler"),
            Some("https://labeler.example.com")
        );
        assert!(doc.service_endpoint("atproto_labeler", "Other").is_none());
        // Another DID's fragment is not ours.
        assert!(doc.service("x").is_none());
        assert!(doc.service("map").unwrap().endpoint.is_none());
    }

    #[test]
    fn legacy_key_types() {
        for (alg, kind) in [
            (Algorithm::K256, "EcdsaSecp256k1VerificationKey2019"),
            (Algorithm::P256, "EcdsaSecp256r1VerificationKey2019"),
        ] {
            let key = Keypair::generate(alg).public_key();
            // Legacy form: multibase of the bare compressed point.
            let legacy = format!("z{}", bs58(&key.compressed_bytes()));
            let doc = json!({
                "id": did().as_str(),
                "verificationMethod": [{
                    "id": "#atproto", "type": kind, "controller": did().as_str(),
                    "publicKeyMultibase": legacy,
                }],
            });
            let doc = DidDocument::from_json(&did(), doc).unwrap();
            assert_eq!(doc.signing_key(), Some(&key), "{kind}");
        }
    }

    /// Minimal base58btc encoder for the legacy-key test.
    fn bs58(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        let mut digits: Vec<u8> = Vec::new();
        for &b in bytes {
            let mut carry = b as u32;
            for d in digits.iter_mut() {
                carry += (*d as u32) << 8;
                *d = (carry % 58) as u8;
                carry /= 58;
            }
            while carry > 0 {
                digits.push((carry % 58) as u8);
                carry /= 58;
            }
        }
        let zeros = bytes.iter().take_while(|&&b| b == 0).count();
        std::iter::repeat_n('1', zeros)
            .chain(digits.iter().rev().map(|&d| ALPHABET[d as usize] as char))
            .collect()
    }

    #[test]
    fn minimal_document_has_no_key_or_pds() {
        let doc = DidDocument::from_json(&did(), json!({"id": did().as_str()})).unwrap();
        assert!(doc.handle().is_none());
        assert!(doc.signing_key().is_none());
        assert!(doc.pds_endpoint().is_none());
    }

    #[test]
    fn bad_key_or_endpoint_is_absent_not_fatal() {
        let doc = json!({
            "id": did().as_str(),
            "alsoKnownAs": ["at://not a handle", "at://ok.test"],
            "verificationMethod": [{"id": "#atproto", "type": "Multikey", "controller": did().as_str(), "publicKeyMultibase": "zNotAKey"}],
            "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "ftp://pds.example.com"}],
        });
        let doc = DidDocument::from_json(&did(), doc).unwrap();
        assert!(doc.signing_key().is_none());
        assert!(doc.pds_endpoint().is_none());
        // The first *valid* at:// entry is the handle.
        assert_eq!(doc.handle().unwrap().as_str(), "ok.test");
    }

    #[test]
    fn rejects_wrong_id_and_bad_shapes() {
        let err = DidDocument::from_json(&did(), json!({"id": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}))
            .unwrap_err();
        assert!(matches!(err, IdentityError::DidMismatch { .. }), "{err}");
        for bad in [
            json!([]),
            json!({}),
            json!({"id": 5}),
            json!({"id": did().as_str(), "alsoKnownAs": "at://a.test"}),
            json!({"id": did().as_str(), "alsoKnownAs": [1]}),
            json!({"id": did().as_str(), "verificationMethod": [{"id": "#atproto"}]}),
            json!({"id": did().as_str(), "service": [{"id": "#x", "type": "X"}]}),
            json!({"id": did().as_str(), "service": ["x"]}),
        ] {
            let err = DidDocument::from_json(&did(), bad.clone()).unwrap_err();
            assert!(
                matches!(err, IdentityError::InvalidDocument(_)),
                "{bad}: {err}"
            );
        }
        assert!(matches!(
            DidDocument::parse(&did(), b"not json").unwrap_err(),
            IdentityError::InvalidDocument(_)
        ));
    }
}
