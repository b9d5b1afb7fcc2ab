//! A DID's state as the directory serves it: `GET /:did/data` and the DID
//! document of `GET /:did`.

use std::collections::BTreeMap;

use pds_crypto::{Algorithm, PublicKey};
use serde::{Deserialize, Serialize};

use crate::PlcError;
use crate::op::{PlcData, Service};

const CONTEXT_DID: &str = "https://www.w3.org/ns/did/v1";
const CONTEXT_MULTIKEY: &str = "https://w3id.org/security/multikey/v1";
const CONTEXT_K256: &str = "https://w3id.org/security/suites/secp256k1-2019/v1";
const CONTEXT_P256: &str = "https://w3id.org/security/suites/ecdsa-2019/v1";

/// `GET /:did/data`: the DID and the state its current operation sets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentData {
    /// The DID.
    pub did: String,
    /// Name to did:key.
    #[serde(rename = "verificationMethods")]
    pub verification_methods: BTreeMap<String, String>,
    /// did:keys, highest authority first.
    #[serde(rename = "rotationKeys")]
    pub rotation_keys: Vec<String>,
    /// Aliases, e.g. `at://alice.example.com`.
    #[serde(rename = "alsoKnownAs")]
    pub also_known_as: Vec<String>,
    /// Name to service.
    pub services: BTreeMap<String, Service>,
}

impl DocumentData {
    /// Pairs a DID with its state.
    pub fn new(did: &str, data: PlcData) -> DocumentData {
        DocumentData {
            did: did.to_owned(),
            verification_methods: data.verification_methods,
            rotation_keys: data.rotation_keys,
            also_known_as: data.also_known_as,
            services: data.services,
        }
    }

    /// The state without the DID.
    pub fn plc_data(&self) -> PlcData {
        PlcData {
            rotation_keys: self.rotation_keys.clone(),
            verification_methods: self.verification_methods.clone(),
            also_known_as: self.also_known_as.clone(),
            services: self.services.clone(),
        }
    }
}

/// A DID document, in the shape and field order the directory serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DidDocument {
    /// JSON-LD contexts: DID core, Multikey, and one suite per key curve used.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// The DID.
    pub id: String,
    /// Aliases (`at://<handle>` first for atproto).
    #[serde(rename = "alsoKnownAs")]
    pub also_known_as: Vec<String>,
    /// One per verification method.
    #[serde(rename = "verificationMethod")]
    pub verification_method: Vec<VerificationMethod>,
    /// One per service.
    pub service: Vec<DocService>,
}

/// A `verificationMethod` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationMethod {
    /// `<did>#<name>`, e.g. `did:plc:...#atproto`.
    pub id: String,
    /// Always `Multikey`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The DID.
    pub controller: String,
    /// The did:key without its `did:key:` prefix.
    #[serde(rename = "publicKeyMultibase")]
    pub public_key_multibase: String,
}

/// A `service` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocService {
    /// `#<name>`, e.g. `#atproto_pds`.
    pub id: String,
    /// e.g. `AtprotoPersonalDataServer`.
    #[serde(rename = "type")]
    pub kind: String,
    /// e.g. `https://pds.example.com`.
    #[serde(rename = "serviceEndpoint")]
    pub service_endpoint: String,
}

impl DidDocument {
    /// Renders `data` as the directory does. Entries come in DAG-CBOR key
    /// order (shorter names first), which is the order the public directory
    /// keeps them in. Fails if a verification method is not a k256 or p256
    /// did:key.
    pub fn new(did: &str, data: &PlcData) -> Result<DidDocument, PlcError> {
        let mut context = vec![CONTEXT_DID.to_owned(), CONTEXT_MULTIKEY.to_owned()];
        let mut verification_method = Vec::new();
        for (name, did_key) in length_first(&data.verification_methods) {
            let key = PublicKey::from_did_key(did_key).map_err(|e| {
                PlcError::InvalidOperation(format!("verification method {name}: {e}"))
            })?;
            let suite = match key.algorithm() {
                Algorithm::K256 => CONTEXT_K256,
                Algorithm::P256 => CONTEXT_P256,
            };
            if !context.iter().any(|c| c == suite) {
                context.push(suite.to_owned());
            }
            verification_method.push(VerificationMethod {
                id: format!("{did}#{name}"),
                kind: "Multikey".to_owned(),
                controller: did.to_owned(),
                public_key_multibase: did_key
                    .strip_prefix("did:key:")
                    .unwrap_or(did_key)
                    .to_owned(),
            });
        }
        let service = length_first(&data.services)
            .map(|(name, s)| DocService {
                id: format!("#{name}"),
                kind: s.kind.clone(),
                service_endpoint: s.endpoint.clone(),
            })
            .collect();
        Ok(DidDocument {
            context,
            id: did.to_owned(),
            also_known_as: data.also_known_as.clone(),
            verification_method,
            service,
        })
    }
}

fn length_first<V>(map: &BTreeMap<String, V>) -> impl Iterator<Item = (&String, &V)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| (a.0.len(), a.0).cmp(&(b.0.len(), b.0)));
    entries.into_iter()
}

#[cfg(test)]
mod tests {
    use pds_crypto::Keypair;
    use serde_json::json;

    use super::*;

    #[test]
    fn document_shape() {
        let did = "did:plc:z72i7hdynmk6r22z27h6tvur";
        let data = PlcData::atproto(
            "bsky.app",
            "https://bsky.social",
            "did:key:zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF",
            vec!["did:key:zQ3shhCGUqDKjStzuDxPkTxN6ujddP4RkEKJJouJGRRkaLGbg".into()],
        );
        let doc = DidDocument::new(did, &data).unwrap();
        assert_eq!(
            serde_json::to_value(&doc).unwrap(),
            json!({
                "@context": [
                    "https://www.w3.org/ns/did/v1",
                    "https://w3id.org/security/multikey/v1",
                    "https://w3id.org/security/suites/secp256k1-2019/v1"
                ],
                "id": "did:plc:z72i7hdynmk6r22z27h6tvur",
                "alsoKnownAs": ["at://bsky.app"],
                "verificationMethod": [{
                    "id": "did:plc:z72i7hdynmk6r22z27h6tvur#atproto",
                    "type": "Multikey",
                    "controller": "did:plc:z72i7hdynmk6r22z27h6tvur",
                    "publicKeyMultibase": "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"
                }],
                "service": [{
                    "id": "#atproto_pds",
                    "type": "AtprotoPersonalDataServer",
                    "serviceEndpoint": "https://bsky.social"
                }]
            })
        );
        let text = serde_json::to_string(&doc).unwrap();
        assert!(text.starts_with(r#"{"@context":["#), "{text}");
        assert!(text.contains(r#""id":"did:plc:z72i7hdynmk6r22z27h6tvur","alsoKnownAs""#));
    }

    #[test]
    fn both_curves_and_ordering() {
        let mut data = PlcData::default();
        let p = Keypair::generate(Algorithm::P256).did_key();
        let k = Keypair::generate(Algorithm::K256).did_key();
        data.verification_methods
            .insert("atproto".into(), p.clone());
        data.verification_methods
            .insert("a_long_name".into(), k.clone());
        data.verification_methods.insert("zz".into(), p.clone());
        let doc = DidDocument::new("did:plc:x", &data).unwrap();
        assert_eq!(doc.context.len(), 4);
        assert_eq!(doc.context[2], CONTEXT_P256);
        assert_eq!(doc.context[3], CONTEXT_K256);
        let ids: Vec<_> = doc
            .verification_method
            .iter()
            .map(|v| v.id.as_str())
            .collect();
        assert_eq!(
            ids,
            ["did:plc:x#zz", "did:plc:x#atproto", "did:plc:x#a_long_name"]
        );
        data.verification_methods
            .insert("bad".into(), "did:key:zBad".into());
        assert!(DidDocument::new("did:plc:x", &data).is_err());
    }

    #[test]
    fn data_round_trip() {
        let data = PlcData::atproto("a.test", "https://p.test", "did:key:zQ3s", vec!["k".into()]);
        let dd = DocumentData::new("did:plc:x", data.clone());
        assert_eq!(dd.plc_data(), data);
        let json = serde_json::to_value(&dd).unwrap();
        assert_eq!(json["rotationKeys"], json!(["k"]));
        assert_eq!(
            json["services"]["atproto_pds"]["endpoint"],
            "https://p.test"
        );
        let back: DocumentData = serde_json::from_value(json).unwrap();
        assert_eq!(back, dd);
    }
}
