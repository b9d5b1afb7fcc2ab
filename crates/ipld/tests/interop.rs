//! The atproto interop data-model vectors: JSON <-> DAG-CBOR <-> CID, and accept/reject lists.
//!
//! The vectors live outside the project: `$ATPROTO_INTEROP_TESTS` or
//! `<workspace>/../shared/interop-tests`. A missing folder is a failure, not a skip.

use data_encoding::BASE64_NOPAD;
use pds_ipld::json::{cbor_to_json, ipld_to_json, json_to_cbor, json_to_ipld, validate_node};
use pds_ipld::{Ipld, cid_for_cbor, from_cbor, parse_cid};
use serde_json::Value;

fn load(name: &str) -> Vec<Value> {
    pds_interop_vectors::json_array(&format!("data-model/{name}"))
}

/// Base64 as the vectors write it (standard alphabet; tolerate padding).
fn b64(s: &str) -> Vec<u8> {
    BASE64_NOPAD
        .decode(s.trim_end_matches('=').as_bytes())
        .unwrap()
}

#[test]
fn fixtures_json_cbor_cid() {
    let fixtures = load("data-model-fixtures.json");
    assert!(!fixtures.is_empty());
    for f in &fixtures {
        let json = &f["json"];
        let expected_cbor = b64(f["cbor_base64"].as_str().unwrap());
        let expected_cid = parse_cid(f["cid"].as_str().unwrap()).unwrap();

        let cbor = json_to_cbor(json).unwrap();
        assert_eq!(cbor, expected_cbor, "CBOR for {json}");
        assert_eq!(cid_for_cbor(&cbor), expected_cid, "CID for {json}");
        assert_eq!(cid_for_cbor(&cbor).to_string(), f["cid"].as_str().unwrap());

        assert_eq!(&cbor_to_json(&expected_cbor).unwrap(), json, "JSON back");
        let ipld: Ipld = from_cbor(&expected_cbor).unwrap();
        assert_eq!(ipld, json_to_ipld(json).unwrap());
        assert_eq!(&ipld_to_json(&ipld).unwrap(), json);
    }
}

fn accepts(json: &Value) -> bool {
    json_to_ipld(json)
        .and_then(|ipld| validate_node(&ipld))
        .is_ok()
}

#[test]
fn valid_values_are_accepted() {
    let cases = load("data-model-valid.json");
    assert!(!cases.is_empty());
    for c in &cases {
        assert!(accepts(&c["json"]), "rejected valid case {:?}", c["note"]);
        // And they survive CBOR.
        let cbor = json_to_cbor(&c["json"]).unwrap();
        cbor_to_json(&cbor).unwrap();
    }
}

#[test]
fn invalid_values_are_rejected() {
    let cases = load("data-model-invalid.json");
    assert!(!cases.is_empty());
    for c in &cases {
        assert!(
            !accepts(&c["json"]),
            "accepted invalid case {:?}",
            c["note"]
        );
    }
}
