//! Records in their JSON form (`$link`, `$bytes`), written straight from the data model, with
//! object keys in the order the reference PDS sends them.
//!
//! The reference decodes a record's DAG-CBOR into a JavaScript object and `JSON.stringify`s it:
//! keys come out in the DAG-CBOR order (shorter keys first, then bytewise), except that keys
//! which are array indices (`"0"`, `"17"`) come first in numeric order, as JavaScript orders
//! them; and blob references are written `$type`, `ref`, `mimeType`, `size`. Doing the same
//! makes our answers byte-identical to the reference's, which clients that hash or diff
//! responses can tell.

use data_encoding::BASE64_NOPAD;
use pds_ipld::Ipld;
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// A record value (any data model value) serialized in its JSON form.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordValue(pub Ipld);

impl Serialize for RecordValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Json(&self.0).serialize(s)
    }
}

struct Json<'a>(&'a Ipld);

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Ipld::Null => s.serialize_unit(),
            Ipld::Bool(b) => s.serialize_bool(*b),
            Ipld::Integer(i) => match i64::try_from(*i) {
                Ok(i) => s.serialize_i64(i),
                Err(_) => Err(S::Error::custom("integer out of the 64-bit range")),
            },
            Ipld::Float(_) => Err(S::Error::custom("floats are not in the data model")),
            Ipld::String(text) => s.serialize_str(text),
            Ipld::Bytes(bytes) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("$bytes", &BASE64_NOPAD.encode(bytes))?;
                map.end()
            }
            Ipld::Link(cid) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("$link", &cid.to_string())?;
                map.end()
            }
            Ipld::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Json(item))?;
                }
                seq.end()
            }
            Ipld::Map(entries) => {
                let mut keys: Vec<&String> = entries.keys().collect();
                if is_blob(entries) {
                    keys.sort_by_key(|k| BLOB_ORDER.iter().position(|b| b == k));
                } else {
                    keys.sort_by(|a, b| js_key_order(a, b));
                }
                let mut map = s.serialize_map(Some(keys.len()))?;
                for key in keys {
                    map.serialize_entry(key, &Json(&entries[key]))?;
                }
                map.end()
            }
        }
    }
}

const BLOB_ORDER: [&str; 4] = ["$type", "ref", "mimeType", "size"];

fn is_blob(entries: &std::collections::BTreeMap<String, Ipld>) -> bool {
    entries.len() == 4
        && matches!(entries.get("$type"), Some(Ipld::String(t)) if t == "blob")
        && BLOB_ORDER.iter().all(|k| entries.contains_key(*k))
}

/// JavaScript's own-key order over keys that arrive in DAG-CBOR order: array indices first,
/// numerically; then the others as DAG-CBOR sorts them (length, then bytes).
fn js_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (array_index(a), array_index(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
    }
}

/// The value of a key JavaScript treats as an array index: the canonical decimal form of an
/// integer below 2^32 - 1.
fn array_index(key: &str) -> Option<u32> {
    if key.is_empty() || key.len() > 10 || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if key.len() > 1 && key.starts_with('0') {
        return None;
    }
    let n: u64 = key.parse().ok()?;
    (n < u64::from(u32::MAX)).then_some(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(v: serde_json::Value) -> String {
        let ipld = pds_ipld::json_to_ipld(&v).unwrap();
        serde_json::to_string(&RecordValue(ipld)).unwrap()
    }

    #[test]
    fn keys_in_reference_order() {
        assert_eq!(
            render(
                json!({"text": "hi", "$type": "app.bsky.feed.post", "createdAt": "x", "b": 1, "aa": 2, "10": 3, "2": 4, "01": 5})
            ),
            r#"{"2":4,"10":3,"b":1,"01":5,"aa":2,"text":"hi","$type":"app.bsky.feed.post","createdAt":"x"}"#
        );
    }

    #[test]
    fn links_bytes_and_blobs() {
        let cid = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity";
        assert_eq!(
            render(
                json!({"l": {"$link": cid}, "b": {"$bytes": "AQID"}, "n": null, "a": [true, -1]})
            ),
            format!(
                r#"{{"a":[true,-1],"b":{{"$bytes":"AQID"}},"l":{{"$link":"{cid}"}},"n":null}}"#
            )
        );
        assert_eq!(
            render(
                json!({"size": 3, "ref": {"$link": cid}, "mimeType": "image/png", "$type": "blob"})
            ),
            format!(
                r#"{{"$type":"blob","ref":{{"$link":"{cid}"}},"mimeType":"image/png","size":3}}"#
            )
        );
    }
}
