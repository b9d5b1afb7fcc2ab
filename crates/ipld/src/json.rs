//! The atproto data model in its JSON form, and the rules it adds on top of DAG-CBOR.
//!
//! The JSON form differs from the CBOR form in three places:
//! - a CID link is the object `{"$link": "<cid string>"}` (exactly one key);
//! - a byte string is the object `{"$bytes": "<base64, standard alphabet, no padding>"}`
//!   (exactly one key);
//! - numbers are integers only: atproto has no floats. A JSON number written with a fractional
//!   part that is exactly integral (`123.0`) is read as that integer, as JavaScript does.
//!
//! Both conversions ([`json_to_ipld`], [`ipld_to_json`]) validate the whole value against
//! [`validate_data_model`], so whatever they return is a valid data model value.

use std::collections::{BTreeMap, HashSet};

use data_encoding::BASE64_NOPAD;
use serde_json::{Map as JsonMap, Number, Value};

use crate::{Cid, Error, Ipld, Result, from_cbor, parse_cid, to_cbor};

/// The deepest nesting of lists and maps accepted (the DAG-CBOR decoder's own limit). Values
/// nested deeper are rejected rather than risking the stack.
pub const MAX_DEPTH: usize = 256;

const LINK_KEY: &str = "$link";
const BYTES_KEY: &str = "$bytes";
const TYPE_KEY: &str = "$type";
const BLOB_TYPE: &str = "blob";

fn invalid(msg: impl Into<String>) -> Error {
    Error::DataModel(msg.into())
}

// ---------------------------------------------------------------------------------------------
// JSON -> IPLD
// ---------------------------------------------------------------------------------------------

/// Converts the JSON form of a data model value into IPLD, then validates it
/// ([`validate_data_model`]).
///
/// Any value is accepted at the top level; use [`validate_node`] or [`validate_record`] on the
/// result when the value must be an object or a record.
pub fn json_to_ipld(v: &Value) -> Result<Ipld> {
    let ipld = convert_json(v, 0)?;
    validate_data_model(&ipld)?;
    Ok(ipld)
}

fn convert_json(v: &Value, depth: usize) -> Result<Ipld> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    Ok(match v {
        Value::Null => Ipld::Null,
        Value::Bool(b) => Ipld::Bool(*b),
        Value::Number(n) => Ipld::Integer(i128::from(json_integer(n)?)),
        Value::String(s) => Ipld::String(s.clone()),
        Value::Array(items) => Ipld::List(
            items
                .iter()
                .map(|item| convert_json(item, depth + 1))
                .collect::<Result<_>>()?,
        ),
        Value::Object(map) => {
            if map.contains_key(LINK_KEY) {
                return json_link(map).map(Ipld::Link);
            }
            if map.contains_key(BYTES_KEY) {
                return json_bytes(map).map(Ipld::Bytes);
            }
            let mut out = BTreeMap::new();
            for (k, item) in map {
                out.insert(k.clone(), convert_json(item, depth + 1)?);
            }
            Ipld::Map(out)
        }
    })
}

/// A JSON number as an i64. Integral floats (`123.0`) are accepted; anything with a fractional
/// part, non-finite, or outside i64 is not.
fn json_integer(n: &Number) -> Result<i64> {
    const I64_MIN_F: f64 = i64::MIN as f64;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    if n.is_u64() {
        return Err(invalid(format!(
            "integer {n} is out of the 64-bit signed range"
        )));
    }
    match n.as_f64() {
        // -2^63 (i64::MIN) is exactly representable; 2^63 is the first float past i64::MAX.
        Some(f) if f.is_finite() && f.fract() == 0.0 && (I64_MIN_F..-I64_MIN_F).contains(&f) => {
            Ok(f as i64)
        }
        _ => Err(invalid(format!(
            "number {n} is not an integer (atproto has no floats)"
        ))),
    }
}

fn json_link(map: &JsonMap<String, Value>) -> Result<Cid> {
    if map.len() != 1 {
        return Err(invalid("a $link object must have no other keys"));
    }
    match &map[LINK_KEY] {
        Value::String(s) => parse_cid(s).map_err(|e| invalid(format!("bad $link: {e}"))),
        _ => Err(invalid("$link must be a string")),
    }
}

fn json_bytes(map: &JsonMap<String, Value>) -> Result<Vec<u8>> {
    if map.len() != 1 {
        return Err(invalid("a $bytes object must have no other keys"));
    }
    match &map[BYTES_KEY] {
        Value::String(s) => decode_base64(s),
        _ => Err(invalid("$bytes must be a string")),
    }
}

/// Standard base64; the spec writes it unpadded, padded input is tolerated.
fn decode_base64(s: &str) -> Result<Vec<u8>> {
    let trimmed = s
        .strip_suffix("==")
        .or_else(|| s.strip_suffix('='))
        .unwrap_or(s);
    BASE64_NOPAD
        .decode(trimmed.as_bytes())
        .map_err(|e| invalid(format!("bad base64 in $bytes: {e}")))
}

// ---------------------------------------------------------------------------------------------
// IPLD -> JSON
// ---------------------------------------------------------------------------------------------

/// Converts an IPLD value to its JSON form, after validating it ([`validate_data_model`]):
/// floats, integers outside i64 and maps that would be ambiguous in JSON (a `$link` or `$bytes`
/// key) are errors.
pub fn ipld_to_json(v: &Ipld) -> Result<Value> {
    validate_data_model(v)?;
    convert_ipld(v, 0)
}

fn convert_ipld(v: &Ipld, depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    Ok(match v {
        Ipld::Null => Value::Null,
        Ipld::Bool(b) => Value::Bool(*b),
        Ipld::Integer(i) => Value::Number(Number::from(checked_i64(*i)?)),
        Ipld::Float(_) => return Err(invalid("floats are not allowed")),
        Ipld::String(s) => Value::String(s.clone()),
        Ipld::Bytes(b) => single_key(BYTES_KEY, Value::String(BASE64_NOPAD.encode(b))),
        Ipld::Link(cid) => single_key(LINK_KEY, Value::String(cid.to_string())),
        Ipld::List(items) => Value::Array(
            items
                .iter()
                .map(|item| convert_ipld(item, depth + 1))
                .collect::<Result<_>>()?,
        ),
        Ipld::Map(map) => {
            let mut out = JsonMap::new();
            for (k, item) in map {
                out.insert(k.clone(), convert_ipld(item, depth + 1)?);
            }
            Value::Object(out)
        }
    })
}

fn single_key(key: &str, value: Value) -> Value {
    let mut m = JsonMap::new();
    m.insert(key.to_owned(), value);
    Value::Object(m)
}

fn checked_i64(i: i128) -> Result<i64> {
    i64::try_from(i).map_err(|_| invalid(format!("integer {i} is out of the 64-bit signed range")))
}

// ---------------------------------------------------------------------------------------------
// JSON <-> CBOR
// ---------------------------------------------------------------------------------------------

/// JSON form -> canonical DAG-CBOR bytes (validated on the way).
pub fn json_to_cbor(v: &Value) -> Result<Vec<u8>> {
    to_cbor(&json_to_ipld(v)?)
}

/// DAG-CBOR bytes (strictly decoded) -> JSON form. Floats and other data model violations are
/// errors.
pub fn cbor_to_json(bytes: &[u8]) -> Result<Value> {
    let ipld: Ipld = from_cbor(bytes)?;
    ipld_to_json(&ipld)
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Checks the atproto rules that go beyond DAG-CBOR:
/// - no floats; integers fit in i64;
/// - nesting at most [`MAX_DEPTH`];
/// - a `$type` key, if present, holds a non-empty string;
/// - an object with `$type: "blob"` is a well formed blob: `ref` a link, `mimeType` a non-empty
///   string, `size` a non-negative integer;
/// - no map has a `$link` or `$bytes` key: in the JSON form such a map would read as a link or
///   bytes, so it cannot be represented (links and bytes are native values in IPLD).
pub fn validate_data_model(v: &Ipld) -> Result<()> {
    validate_at(v, 0)
}

fn validate_at(v: &Ipld, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    match v {
        Ipld::Float(_) => Err(invalid("floats are not allowed")),
        Ipld::Integer(i) => checked_i64(*i).map(|_| ()),
        Ipld::List(items) => items
            .iter()
            .try_for_each(|item| validate_at(item, depth + 1)),
        Ipld::Map(map) => {
            if map.contains_key(LINK_KEY) || map.contains_key(BYTES_KEY) {
                return Err(invalid("maps may not have a $link or $bytes key"));
            }
            if let Some(t) = map.get(TYPE_KEY) {
                match t {
                    Ipld::String(s) if s.is_empty() => {
                        return Err(invalid("$type must not be empty"));
                    }
                    Ipld::String(s) if s == BLOB_TYPE => check_blob(map)?,
                    Ipld::String(_) => {}
                    _ => return Err(invalid("$type must be a string")),
                }
            }
            map.values()
                .try_for_each(|item| validate_at(item, depth + 1))
        }
        Ipld::Null | Ipld::Bool(_) | Ipld::String(_) | Ipld::Bytes(_) | Ipld::Link(_) => Ok(()),
    }
}

fn check_blob(map: &BTreeMap<String, Ipld>) -> Result<()> {
    match map.get("ref") {
        Some(Ipld::Link(_)) => {}
        Some(_) => return Err(invalid("blob ref must be a link")),
        None => return Err(invalid("blob is missing ref")),
    }
    match map.get("mimeType") {
        Some(Ipld::String(s)) if !s.is_empty() => {}
        Some(Ipld::String(_)) => return Err(invalid("blob mimeType must not be empty")),
        Some(_) => return Err(invalid("blob mimeType must be a string")),
        None => return Err(invalid("blob is missing mimeType")),
    }
    match map.get("size") {
        Some(Ipld::Integer(i)) if (0..=i128::from(i64::MAX)).contains(i) => Ok(()),
        Some(Ipld::Integer(_)) => Err(invalid("blob size must be a non-negative integer")),
        Some(_) => Err(invalid("blob size must be an integer")),
        None => Err(invalid("blob is missing size")),
    }
}

/// A data model node (a block's top-level value) is an object: [`validate_data_model`] plus
/// "is a map".
pub fn validate_node(v: &Ipld) -> Result<()> {
    if !matches!(v, Ipld::Map(_)) {
        return Err(invalid("top-level value must be an object"));
    }
    validate_data_model(v)
}

/// A record is an object whose `$type` is a non-empty string (the collection NSID; this function
/// does not check NSID syntax), and which is a valid data model value.
pub fn validate_record(v: &Ipld) -> Result<()> {
    let Ipld::Map(map) = v else {
        return Err(invalid("a record must be an object"));
    };
    match map.get(TYPE_KEY) {
        Some(Ipld::String(s)) if !s.is_empty() => {}
        Some(_) => return Err(invalid("record $type must be a non-empty string")),
        None => return Err(invalid("record is missing $type")),
    }
    validate_data_model(v)
}

// ---------------------------------------------------------------------------------------------
// Blob references
// ---------------------------------------------------------------------------------------------

/// A reference from a record to a blob.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobRef {
    /// The blob's CID (normally CIDv1, `raw` codec, sha2-256).
    pub cid: Cid,
    pub mime_type: String,
    /// Size in bytes. 0 when read from a legacy blob reference, which carries no size.
    pub size: u64,
}

impl BlobRef {
    pub fn new(cid: Cid, mime_type: impl Into<String>, size: u64) -> Self {
        Self {
            cid,
            mime_type: mime_type.into(),
            size,
        }
    }

    /// The canonical (typed) blob object: `{"$type": "blob", "ref", "mimeType", "size"}`.
    pub fn to_ipld(&self) -> Ipld {
        let mut m = BTreeMap::new();
        m.insert(TYPE_KEY.to_owned(), Ipld::String(BLOB_TYPE.to_owned()));
        m.insert("ref".to_owned(), Ipld::Link(self.cid));
        m.insert("mimeType".to_owned(), Ipld::String(self.mime_type.clone()));
        m.insert("size".to_owned(), Ipld::Integer(i128::from(self.size)));
        Ipld::Map(m)
    }

    /// The canonical blob object in JSON form (`ref` as `{"$link": ...}`).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "$type": BLOB_TYPE,
            "ref": { "$link": self.cid.to_string() },
            "mimeType": self.mime_type,
            "size": self.size,
        })
    }

    /// Reads a blob reference: the typed form (well formed, as [`validate_data_model`] requires)
    /// or the legacy form `{"cid": "<cid string>", "mimeType": "<string>"}` (exactly those two
    /// keys; size reads as 0). Anything else is `None`.
    pub fn from_ipld(v: &Ipld) -> Option<BlobRef> {
        let Ipld::Map(map) = v else { return None };
        match map.get(TYPE_KEY) {
            Some(Ipld::String(t)) if t == BLOB_TYPE => {
                let (Some(Ipld::Link(cid)), Some(Ipld::String(mime)), Some(Ipld::Integer(size))) =
                    (map.get("ref"), map.get("mimeType"), map.get("size"))
                else {
                    return None;
                };
                let size = u64::try_from(*size).ok()?;
                Some(BlobRef::new(*cid, mime.clone(), size))
            }
            Some(_) => None,
            None => {
                if map.len() != 2 {
                    return None;
                }
                let (Some(Ipld::String(cid)), Some(Ipld::String(mime))) =
                    (map.get("cid"), map.get("mimeType"))
                else {
                    return None;
                };
                let cid = parse_cid(cid).ok()?;
                Some(BlobRef::new(cid, mime.clone(), 0))
            }
        }
    }
}

/// Every blob a value references, typed or legacy form, in traversal order (map keys in sorted
/// order), each CID once (first occurrence wins). Walks iteratively, so any depth is safe.
pub fn collect_blob_refs(v: &Ipld) -> Vec<BlobRef> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![v];
    while let Some(node) = stack.pop() {
        if let Some(blob) = BlobRef::from_ipld(node) {
            if seen.insert(blob.cid) {
                out.push(blob);
            }
            continue;
        }
        match node {
            // Pushed in reverse so that they pop in order.
            Ipld::List(items) => stack.extend(items.iter().rev()),
            Ipld::Map(map) => stack.extend(map.values().rev()),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const BLOB_CID: &str = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity";
    const CBOR_CID: &str = "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a";

    #[test]
    fn links_and_bytes_round_trip() {
        let v = json!({"a": {"$link": CBOR_CID}, "b": {"$bytes": "AQID"}, "c": [1, -2, "x", null, true]});
        let ipld = json_to_ipld(&v).unwrap();
        let Ipld::Map(m) = &ipld else { panic!() };
        assert_eq!(m["a"], Ipld::Link(parse_cid(CBOR_CID).unwrap()));
        assert_eq!(m["b"], Ipld::Bytes(vec![1, 2, 3]));
        assert_eq!(ipld_to_json(&ipld).unwrap(), v);
        assert_eq!(cbor_to_json(&json_to_cbor(&v).unwrap()).unwrap(), v);
    }

    #[test]
    fn padded_base64_is_tolerated_and_written_unpadded() {
        let ipld = json_to_ipld(&json!({"$bytes": "AQI="})).unwrap();
        assert_eq!(ipld, Ipld::Bytes(vec![1, 2]));
        assert_eq!(ipld_to_json(&ipld).unwrap(), json!({"$bytes": "AQI"}));
        assert!(json_to_ipld(&json!({"$bytes": "A"})).is_err());
        assert!(json_to_ipld(&json!({"$bytes": "AQ-_"})).is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(
            json_to_ipld(&json!(i64::MAX)).unwrap(),
            Ipld::Integer(i64::MAX.into())
        );
        assert_eq!(
            json_to_ipld(&json!(i64::MIN)).unwrap(),
            Ipld::Integer(i64::MIN.into())
        );
        assert_eq!(json_to_ipld(&json!(123.0)).unwrap(), Ipld::Integer(123));
        assert!(json_to_ipld(&json!(u64::MAX)).is_err());
        assert!(json_to_ipld(&json!(1.5)).is_err());
        assert!(json_to_ipld(&json!(1e300)).is_err());
        assert!(ipld_to_json(&Ipld::Float(1.0)).is_err());
        assert!(ipld_to_json(&Ipld::Integer(i128::from(u64::MAX))).is_err());
        // A CBOR float (0xf9 half / 0xfb double) decodes but is not data model.
        let float = to_cbor(&1.5f64).unwrap();
        assert!(cbor_to_json(&float).is_err());
    }

    #[test]
    fn type_and_blob_rules() {
        assert!(json_to_ipld(&json!({"$type": ""})).is_err());
        assert!(json_to_ipld(&json!({"$type": 1})).is_err());
        assert!(json_to_ipld(&json!({"$type": null})).is_err());
        let blob = json!({"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": "image/png", "size": 3});
        assert!(json_to_ipld(&blob).is_ok());
        for (key, bad) in [
            ("ref", json!(BLOB_CID)),
            ("mimeType", json!("")),
            ("mimeType", json!(5)),
            ("size", json!(-1)),
            ("size", json!("3")),
        ] {
            let mut b = blob.clone();
            b[key] = bad;
            assert!(json_to_ipld(&b).is_err(), "{b}");
        }
    }

    #[test]
    fn ambiguous_maps_are_rejected() {
        let mut m = BTreeMap::new();
        m.insert("$link".to_owned(), Ipld::String(CBOR_CID.to_owned()));
        assert!(validate_data_model(&Ipld::Map(m.clone())).is_err());
        assert!(ipld_to_json(&Ipld::Map(m)).is_err());
        assert!(json_to_ipld(&json!({"$link": CBOR_CID, "x": 1})).is_err());
        assert!(json_to_ipld(&json!({"$bytes": "AQID", "x": 1})).is_err());
    }

    #[test]
    fn records_and_nodes() {
        let rec = json_to_ipld(&json!({"$type": "app.bsky.feed.post", "text": "hi"})).unwrap();
        validate_record(&rec).unwrap();
        validate_node(&rec).unwrap();
        let no_type = json_to_ipld(&json!({"text": "hi"})).unwrap();
        assert!(validate_record(&no_type).is_err());
        validate_node(&no_type).unwrap();
        assert!(validate_record(&Ipld::List(vec![])).is_err());
        assert!(validate_node(&Ipld::String("blah".into())).is_err());
    }

    #[test]
    fn depth_is_bounded() {
        let mut v = json!(1);
        for _ in 0..MAX_DEPTH + 2 {
            v = json!([v]);
        }
        assert!(json_to_ipld(&v).is_err());
        let mut i = Ipld::Integer(1);
        for _ in 0..MAX_DEPTH + 2 {
            i = Ipld::List(vec![i]);
        }
        assert!(validate_data_model(&i).is_err());
        assert!(ipld_to_json(&i).is_err());
    }

    #[test]
    fn blob_refs_are_collected() {
        let other = "bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba";
        let v = json!({
            "$type": "app.bsky.feed.post",
            "embed": {"images": [
                {"image": {"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": "image/jpeg", "size": 10000}},
                {"image": {"cid": other, "mimeType": "image/png"}},
                {"image": {"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": "image/jpeg", "size": 10000}},
            ]},
            "reply": {"root": {"cid": CBOR_CID, "uri": "at://x"}},
        });
        let ipld = json_to_ipld(&v).unwrap();
        let refs = collect_blob_refs(&ipld);
        assert_eq!(
            refs,
            vec![
                BlobRef::new(parse_cid(BLOB_CID).unwrap(), "image/jpeg", 10000),
                BlobRef::new(parse_cid(other).unwrap(), "image/png", 0),
            ]
        );
        let blob = &refs[0];
        assert_eq!(BlobRef::from_ipld(&blob.to_ipld()).as_ref(), Some(blob));
        assert_eq!(json_to_ipld(&blob.to_json()).unwrap(), blob.to_ipld());
    }

    fn arb_cid() -> impl Strategy<Value = Cid> {
        (any::<[u8; 16]>(), any::<bool>()).prop_map(|(seed, raw)| {
            if raw {
                crate::cid_for_raw(&seed)
            } else {
                crate::cid_for_cbor(&seed)
            }
        })
    }

    fn arb_ipld() -> impl Strategy<Value = Ipld> {
        let leaf = prop_oneof![
            Just(Ipld::Null),
            any::<bool>().prop_map(Ipld::Bool),
            any::<i64>().prop_map(|i| Ipld::Integer(i.into())),
            ".{0,12}".prop_map(Ipld::String),
            proptest::collection::vec(any::<u8>(), 0..24).prop_map(Ipld::Bytes),
            arb_cid().prop_map(Ipld::Link),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Ipld::List),
                // `$`-free keys: `$type`, `$link` and `$bytes` have rules of their own.
                proptest::collection::btree_map("[a-zA-Z0-9_]{0,8}", inner, 0..6)
                    .prop_map(Ipld::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn json_cbor_round_trip(v in arb_ipld()) {
            let json = ipld_to_json(&v).unwrap();
            prop_assert_eq!(&json_to_ipld(&json).unwrap(), &v);
            let cbor = json_to_cbor(&json).unwrap();
            prop_assert_eq!(&cbor, &to_cbor(&v).unwrap());
            prop_assert_eq!(&from_cbor::<Ipld>(&cbor).unwrap(), &v);
            prop_assert_eq!(cbor_to_json(&cbor).unwrap(), json);
        }
    }
}
