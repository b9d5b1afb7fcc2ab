//! Checking a DAG-CBOR block against the atproto data model without building it in memory.
//!
//! [`validate_node_cbor`] gives the same answer as decoding into [`Ipld`](crate::Ipld) and calling
//! [`json::validate_node`](crate::json::validate_node), but it walks the strict decoder with a
//! visitor instead, so nothing is allocated. Importing a repository checks every record this way;
//! with 100k records that is most of the import's time otherwise.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::json::MAX_DEPTH;
use crate::{Error, Result};

/// Checks that `bytes` are one strict DAG-CBOR value that is a map and follows the atproto data
/// model: no floats, integers within i64, `$type` a non-empty string, blob objects well formed,
/// no `$link`/`$bytes` keys.
pub fn validate_node_cbor(bytes: &[u8]) -> Result<()> {
    let mut de = serde_ipld_dagcbor::de::Deserializer::from_slice(bytes);
    let kind = Check { depth: 0 }
        .deserialize(&mut de)
        .map_err(|e| Error::Decode(e.to_string()))?;
    de.end().map_err(|e| Error::Decode(e.to_string()))?;
    match kind {
        Kind::Map => Ok(()),
        _ => Err(Error::DataModel("top-level value must be an object".into())),
    }
}

/// What a value turned out to be, as far as the rules for the enclosing map care.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Link,
    /// An integer, and whether it is >= 0.
    Int {
        non_negative: bool,
    },
    Str {
        empty: bool,
        is_blob: bool,
    },
    Map,
    Other,
}

struct Check {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Check {
    type Value = Kind;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(de::Error::custom(format!(
                "nested deeper than {MAX_DEPTH} levels"
            )));
        }
        d.deserialize_any(self)
    }
}

fn int<E: de::Error>(fits: bool, non_negative: bool) -> Result<Kind, E> {
    if fits {
        Ok(Kind::Int { non_negative })
    } else {
        Err(E::custom("integer out of the i64 range"))
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an atproto data model value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Kind, E> {
        Ok(Kind::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Other)
    }
    fn visit_none<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Other)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Kind, E> {
        int(true, v >= 0)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
        int(i64::try_from(v).is_ok(), true)
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Kind, E> {
        int(i64::try_from(v).is_ok(), v >= 0)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Kind, E> {
        int(i64::try_from(v).is_ok(), true)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Kind, E> {
        Err(E::custom("floats are not allowed"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str {
            empty: v.is_empty(),
            is_blob: v == "blob",
        })
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Kind, E> {
        Ok(Kind::Other)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        // The decoder hands a CID (tag 42) over as a newtype around its bytes.
        d.deserialize_bytes(CidBytes)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        while seq
            .next_element_seed(Check {
                depth: self.depth + 1,
            })?
            .is_some()
        {}
        Ok(Kind::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let (mut type_kind, mut reference, mut mime_type, mut size) = (None, None, None, None);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let kind = map.next_value_seed(Check {
                depth: self.depth + 1,
            })?;
            match key.as_ref() {
                "$link" | "$bytes" => {
                    return Err(de::Error::custom("maps may not have a $link or $bytes key"));
                }
                "$type" => type_kind = Some(kind),
                "ref" => reference = Some(kind),
                "mimeType" => mime_type = Some(kind),
                "size" => size = Some(kind),
                _ => {}
            }
        }
        match type_kind {
            None
            | Some(Kind::Str {
                empty: false,
                is_blob: false,
            }) => {}
            Some(Kind::Str { empty: true, .. }) => {
                return Err(de::Error::custom("$type must not be empty"));
            }
            Some(Kind::Str { is_blob: true, .. }) => check_blob(reference, mime_type, size)?,
            Some(_) => return Err(de::Error::custom("$type must be a string")),
        }
        Ok(Kind::Map)
    }
}

/// Parses the bytes of a tag-42 link as a CID.
struct CidBytes;

impl<'de> Visitor<'de> for CidBytes {
    type Value = Kind;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the bytes of a CID")
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Kind, E> {
        cid::Cid::try_from(v).map_err(|e| E::custom(format!("invalid CID: {e}")))?;
        Ok(Kind::Link)
    }
}

fn check_blob<E: de::Error>(
    reference: Option<Kind>,
    mime_type: Option<Kind>,
    size: Option<Kind>,
) -> Result<(), E> {
    match reference {
        Some(Kind::Link) => {}
        Some(_) => return Err(E::custom("blob ref must be a link")),
        None => return Err(E::custom("blob is missing ref")),
    }
    match mime_type {
        Some(Kind::Str { empty: false, .. }) => {}
        Some(Kind::Str { .. }) => return Err(E::custom("blob mimeType must not be empty")),
        Some(_) => return Err(E::custom("blob mimeType must be a string")),
        None => return Err(E::custom("blob is missing mimeType")),
    }
    match size {
        Some(Kind::Int { non_negative: true }) => Ok(()),
        Some(Kind::Int { .. }) => Err(E::custom("blob size must be a non-negative integer")),
        Some(_) => Err(E::custom("blob size must be an integer")),
        None => Err(E::custom("blob is missing size")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::Ipld;

    fn old_way(bytes: &[u8]) -> bool {
        crate::from_cbor::<Ipld>(bytes).is_ok_and(|v| crate::json::validate_node(&v).is_ok())
    }

    fn map(pairs: &[(&str, Ipld)]) -> Ipld {
        Ipld::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    /// Values built to hit every rule: floats, big integers, $type of every kind, blobs with
    /// each field right or wrong, $link/$bytes keys, nesting.
    fn value() -> impl Strategy<Value = Ipld> {
        let link = Ipld::Link(crate::cid_for_raw(b"x"));
        let leaf = prop_oneof![
            Just(Ipld::Null),
            any::<bool>().prop_map(Ipld::Bool),
            any::<i64>().prop_map(|i| Ipld::Integer(i.into())),
            Just(Ipld::Integer(u64::MAX.into())),
            Just(Ipld::Float(1.5)),
            prop_oneof![
                Just(""),
                Just("blob"),
                Just("app.bsky.feed.post"),
                Just("image/png")
            ]
            .prop_map(|s| Ipld::String(s.into())),
            Just(Ipld::Bytes(vec![1, 2, 3])),
            Just(link),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Ipld::List),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("$type"),
                        Just("ref"),
                        Just("mimeType"),
                        Just("size"),
                        Just("text"),
                        Just("$link"),
                        Just("$bytes"),
                        Just("a"),
                    ]
                    .prop_map(String::from),
                    inner,
                    0..5,
                )
                .prop_map(Ipld::Map),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn agrees_with_decoding_into_ipld(v in value()) {
            let bytes = crate::to_cbor(&v).unwrap();
            prop_assert_eq!(validate_node_cbor(&bytes).is_ok(), old_way(&bytes));
        }
    }

    #[test]
    fn blobs() {
        let link = Ipld::Link(crate::cid_for_raw(b"x"));
        let good = map(&[
            ("$type", Ipld::String("blob".into())),
            ("ref", link.clone()),
            ("mimeType", Ipld::String("image/png".into())),
            ("size", Ipld::Integer(10)),
        ]);
        assert!(validate_node_cbor(&crate::to_cbor(&good).unwrap()).is_ok());
        let bad = map(&[
            ("$type", Ipld::String("blob".into())),
            ("ref", Ipld::String("x".into())),
            ("mimeType", Ipld::String("image/png".into())),
            ("size", Ipld::Integer(10)),
        ]);
        assert!(validate_node_cbor(&crate::to_cbor(&bad).unwrap()).is_err());
        assert!(validate_node_cbor(&crate::to_cbor(&Ipld::List(vec![])).unwrap()).is_err());
        // Trailing bytes and unsorted keys are refused by the strict decoder.
        let mut trailing = crate::to_cbor(&good).unwrap();
        trailing.push(0);
        assert!(validate_node_cbor(&trailing).is_err());
        assert!(validate_node_cbor(&[0xa2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02]).is_err());
    }
}
