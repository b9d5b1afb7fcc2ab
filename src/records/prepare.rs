//! One record made ready to write: everything that does not need the repo, done before the
//! writer thread sees it (that thread is the one everybody's writes wait for).
//!
//! The rules are the reference PDS's (`prepareCreate`/`prepareUpdate`):
//! - a record without `$type` gets the collection as its `$type`;
//! - `validate: false` checks only the data model (done when the body was read); otherwise
//!   `$type` must equal the collection (`Invalid $type: expected X, got Y`) and the record is
//!   validated against the collection's lexicon: invalid is refused (`Invalid X record:
//!   Record/text must not be longer than 300 graphemes`); an unknown lexicon is refused when
//!   `validate: true` (`Lexicon not found: lex:X`) and accepted with status `unknown` otherwise;
//! - legacy blob references (`{cid, mimeType}`) are refused: new records use the typed form;
//! - with no record key given, a new TID from the server's clock.
//!
//! Beyond the reference (which leaves a to-do there), a validated record's key must also be of
//! its lexicon's key type (`tid`, `nsid`, `literal:self`, `any`), as the record-key spec says;
//! with no key given, a `literal:` key type supplies the key.

use pds_ipld::{BlobRef, Cid, Ipld};
use pds_lexicon::{Catalog, Def, ValidationError};
use pds_syntax::{Nsid, RecordKey, TidClock};

use super::{RecordError, ValidationStatus};

/// Deepest level searched for legacy blob references (as the reference).
const BLOB_SEARCH_DEPTH: usize = 32;

/// A record ready to be written.
#[derive(Debug, Clone)]
pub struct PreparedRecord {
    pub collection: Nsid,
    pub rkey: RecordKey,
    /// The record's canonical DAG-CBOR.
    pub bytes: Vec<u8>,
    pub cid: Cid,
    /// `None` when the client turned validation off.
    pub status: Option<ValidationStatus>,
    /// The blobs the record references (typed form), for the blob store to account for.
    pub blobs: Vec<BlobRef>,
}

/// Prepares `record` for `collection`. `rkey` is the client's, if it gave one.
pub fn record(
    collection: &Nsid,
    rkey: Option<RecordKey>,
    record: Ipld,
    validate: Option<bool>,
    clock: &TidClock,
) -> Result<PreparedRecord, RecordError> {
    let Ipld::Map(mut map) = record else {
        return Err(invalid_record("Record must be an object"));
    };
    // An empty or non-string `$type` (which the reference would also replace) was already
    // refused by the data model check when the body was read.
    if !map.contains_key("$type") {
        map.insert(
            "$type".to_owned(),
            Ipld::String(collection.as_str().to_owned()),
        );
    }
    let record = Ipld::Map(map);
    // The data model was checked when the body was read; `$type` must now be a string.
    pds_ipld::validate_record(&record)
        .map_err(|e| invalid_record(format!("Invalid record: {e}")))?;

    let status = match validate {
        Some(false) => None,
        _ => Some(validate_against_lexicon(
            collection,
            &record,
            validate == Some(true),
        )?),
    };

    let rkey = match rkey {
        Some(rkey) => rkey,
        None => default_rkey(collection, status, clock)?,
    };
    if status == Some(ValidationStatus::Valid) {
        Catalog::bundled()
            .validate_record_key(collection.as_str(), rkey.as_str())
            .map_err(|e| invalid(format!("Invalid record key: {e}")))?;
    }

    if let Some(path) = legacy_blob_ref(&record) {
        return Err(invalid_record(format!("Legacy blob ref at '{path}'")));
    }
    let blobs = pds_ipld::collect_blob_refs(&record);
    let bytes = pds_ipld::to_cbor(&record).map_err(|e| invalid(format!("Bad record: {e}")))?;
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(invalid_record(format!(
            "Record is {} bytes of DAG-CBOR; the limit is {MAX_RECORD_BYTES}",
            bytes.len()
        )));
    }
    let cid = pds_ipld::cid_for_cbor(&bytes);
    Ok(PreparedRecord {
        collection: collection.clone(),
        rkey,
        bytes,
        cid,
        status,
        blobs,
    })
}

fn validate_against_lexicon(
    collection: &Nsid,
    record: &Ipld,
    require_lexicon: bool,
) -> Result<ValidationStatus, RecordError> {
    let Ipld::Map(map) = record else {
        return Err(invalid_record("Record must be an object"));
    };
    match map.get("$type") {
        Some(Ipld::String(t)) if t == collection.as_str() => {}
        Some(Ipld::String(t)) => {
            return Err(invalid_record(format!(
                "Invalid $type: expected {collection}, got {t}"
            )));
        }
        _ => return Err(invalid_record("No $type provided")),
    }
    match Catalog::bundled().validate_record(collection.as_str(), record) {
        Ok(()) => Ok(ValidationStatus::Valid),
        Err(ValidationError::UnknownLexicon { .. }) if !require_lexicon => {
            Ok(ValidationStatus::Unknown)
        }
        Err(ValidationError::UnknownLexicon { nsid }) => {
            Err(invalid(format!("Lexicon not found: lex:{nsid}")))
        }
        Err(e) => Err(invalid_record(format!("Invalid {collection} record: {e}"))),
    }
}

/// The key of a record created without one: a `literal:` key type's value for a validated
/// record, else a new TID.
fn default_rkey(
    collection: &Nsid,
    status: Option<ValidationStatus>,
    clock: &TidClock,
) -> Result<RecordKey, RecordError> {
    if status == Some(ValidationStatus::Valid)
        && let Some(Def::Record(def)) = Catalog::bundled().def(collection.as_str())
        && let Some(literal) = def.key.as_deref().and_then(|k| k.strip_prefix("literal:"))
    {
        return RecordKey::new(literal)
            .map_err(|e| invalid(format!("Invalid record key in the lexicon: {e}")));
    }
    RecordKey::new(clock.next().as_str())
        .map_err(|e| RecordError::Internal(format!("a TID is not a record key: {e}")))
}

/// The path of the first legacy blob reference in `record`, as the reference names it: map
/// keys joined by `/`, array positions left out.
fn legacy_blob_ref(record: &Ipld) -> Option<String> {
    let mut stack: Vec<(&Ipld, Vec<&str>, usize)> = vec![(record, Vec::new(), 0)];
    while let Some((node, path, depth)) = stack.pop() {
        if depth > BLOB_SEARCH_DEPTH {
            continue;
        }
        match node {
            Ipld::Map(map) => {
                if is_legacy_blob(map) {
                    return Some(path.join("/"));
                }
                // Reversed so that the first key in order is searched first.
                for (key, value) in map.iter().rev() {
                    let mut next = path.clone();
                    next.push(key);
                    stack.push((value, next, depth + 1));
                }
            }
            Ipld::List(items) => {
                for item in items.iter().rev() {
                    stack.push((item, path.clone(), depth + 1));
                }
            }
            _ => {}
        }
    }
    None
}

fn is_legacy_blob(map: &std::collections::BTreeMap<String, Ipld>) -> bool {
    map.len() == 2
        && matches!(map.get("cid"), Some(Ipld::String(s)) if pds_ipld::parse_cid(s).is_ok())
        && matches!(map.get("mimeType"), Some(Ipld::String(_)))
}

/// The largest record stored. Readers decode whole records, and a repo export must stay
/// importable (CAR blocks are limited to 2 MiB).
pub const MAX_RECORD_BYTES: usize = 1 << 20;

fn invalid(message: impl Into<String>) -> RecordError {
    RecordError::InvalidRequest(message.into())
}

fn invalid_record(message: impl Into<String>) -> RecordError {
    RecordError::InvalidRecord(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prep(
        collection: &str,
        rkey: Option<&str>,
        record: serde_json::Value,
        validate: Option<bool>,
    ) -> Result<PreparedRecord, RecordError> {
        let clock = TidClock::new();
        record_for(collection, rkey, record, validate, &clock)
    }

    fn record_for(
        collection: &str,
        rkey: Option<&str>,
        value: serde_json::Value,
        validate: Option<bool>,
        clock: &TidClock,
    ) -> Result<PreparedRecord, RecordError> {
        record(
            &Nsid::new(collection).unwrap(),
            rkey.map(|k| RecordKey::new(k).unwrap()),
            pds_ipld::json_to_ipld(&value).unwrap(),
            validate,
            clock,
        )
    }

    fn message(r: Result<PreparedRecord, RecordError>) -> String {
        match r {
            Err(RecordError::InvalidRequest(m) | RecordError::InvalidRecord(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    const NOW: &str = "2024-01-01T00:00:00.000Z";

    #[test]
    fn type_is_filled_in_and_checked() {
        let p = prep(
            "app.bsky.feed.post",
            None,
            json!({"text": "hi", "createdAt": NOW}),
            None,
        )
        .unwrap();
        assert_eq!(p.status, Some(ValidationStatus::Valid));
        let value: Ipld = pds_ipld::from_cbor(&p.bytes).unwrap();
        let Ipld::Map(map) = value else { panic!() };
        assert_eq!(map["$type"], Ipld::String("app.bsky.feed.post".into()));
        assert_eq!(p.cid, pds_ipld::cid_for_cbor(&p.bytes));

        let m = message(prep(
            "app.bsky.feed.post",
            None,
            json!({"$type": "app.bsky.feed.like", "text": "hi", "createdAt": NOW}),
            None,
        ));
        assert_eq!(
            m,
            "Invalid $type: expected app.bsky.feed.post, got app.bsky.feed.like"
        );
        // Unvalidated writes keep whatever $type they have.
        let p = prep(
            "app.bsky.feed.post",
            None,
            json!({"$type": "app.bsky.feed.like"}),
            Some(false),
        )
        .unwrap();
        assert_eq!(p.status, None);
    }

    #[test]
    fn validation_modes() {
        let long = "a".repeat(301);
        let m = message(prep(
            "app.bsky.feed.post",
            None,
            json!({"text": long, "createdAt": NOW}),
            None,
        ));
        assert_eq!(
            m,
            "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes"
        );
        assert!(
            prep(
                "app.bsky.feed.post",
                None,
                json!({"text": long, "createdAt": NOW}),
                Some(false)
            )
            .is_ok()
        );
        let unknown = prep("com.example.thing", None, json!({"x": 1}), None).unwrap();
        assert_eq!(unknown.status, Some(ValidationStatus::Unknown));
        assert_eq!(
            message(prep("com.example.thing", None, json!({"x": 1}), Some(true))),
            "Lexicon not found: lex:com.example.thing"
        );
    }

    #[test]
    fn record_keys() {
        // A literal key type gives the key; a validated record's key must fit its type.
        let p = prep("app.bsky.actor.profile", None, json!({}), None).unwrap();
        assert_eq!(p.rkey.as_str(), "self");
        assert!(
            message(prep(
                "app.bsky.actor.profile",
                Some("other"),
                json!({}),
                None
            ))
            .contains("Record key")
        );
        assert!(
            message(prep(
                "app.bsky.feed.post",
                Some("hello"),
                json!({"text": "", "createdAt": NOW}),
                None
            ))
            .contains("TID")
        );
        assert!(
            prep(
                "app.bsky.feed.post",
                Some("hello"),
                json!({"text": ""}),
                Some(false)
            )
            .is_ok()
        );
        assert!(prep("com.example.thing", Some("anything"), json!({}), None).is_ok());
        // New keys are TIDs from the clock, increasing.
        let clock = TidClock::new();
        let a = record_for("com.example.thing", None, json!({}), None, &clock).unwrap();
        let b = record_for("com.example.thing", None, json!({}), None, &clock).unwrap();
        assert!(a.rkey.as_str() < b.rkey.as_str());
    }

    #[test]
    fn legacy_blobs_are_refused() {
        let cid = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity";
        let m = message(prep(
            "com.example.thing",
            None,
            json!({"embed": {"images": [{"image": {"cid": cid, "mimeType": "image/png"}}]}}),
            Some(false),
        ));
        assert_eq!(m, "Legacy blob ref at 'embed/images/image'");
        let typed =
            json!({"$type": "blob", "ref": {"$link": cid}, "mimeType": "image/png", "size": 3});
        let p = prep("com.example.thing", None, json!({"a": [typed]}), None).unwrap();
        assert_eq!(p.blobs.len(), 1);
    }
}
