//! AT-URIs in the restricted form the `at-uri` Lexicon format allows:
//! `at://<did-or-handle>[/<collection-nsid>[/<record-key>]]`, with no query,
//! no fragment and no trailing slash.

use crate::string_type::string_type;
use crate::{Did, Nsid, RecordKey, SyntaxError, did, handle, nsid, record_key};

const PREFIX: &str = "at://";
/// Longest AT-URI accepted (8 KiB, the spec's limit).
const MAX_LEN: usize = 8 * 1024;

/// A syntactically valid AT-URI, e.g.
/// `at://did:plc:7iza6de2dwap2sbkpav7c6c6/app.bsky.feed.post/3jzfcijpj2z2a`.
///
/// Compared byte for byte: a URI naming a record by handle and one naming it
/// by DID are different strings even if they resolve to the same record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AtUri(String);

string_type!(AtUri, validate);

impl AtUri {
    /// The URI of one record, `at://<did>/<collection>/<rkey>`. Cannot fail:
    /// each part is already valid and together they fit the length limit.
    pub fn for_record(did: &Did, collection: &Nsid, rkey: &RecordKey) -> AtUri {
        AtUri(format!("{PREFIX}{did}/{collection}/{rkey}"))
    }

    /// The repository: a DID or a handle.
    pub fn authority(&self) -> &str {
        self.parts().0
    }

    /// The collection NSID, if the URI names one.
    pub fn collection(&self) -> Option<&str> {
        self.parts().1
    }

    /// The record key, if the URI names a record.
    pub fn rkey(&self) -> Option<&str> {
        self.parts().2
    }

    fn parts(&self) -> (&str, Option<&str>, Option<&str>) {
        split(&self.0[PREFIX.len()..])
    }
}

impl std::borrow::Borrow<str> for AtUri {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Splits what follows `at://` at its (at most two) slashes.
fn split(path: &str) -> (&str, Option<&str>, Option<&str>) {
    match path.split_once('/') {
        None => (path, None, None),
        Some((authority, rest)) => match rest.split_once('/') {
            None => (authority, Some(rest), None),
            Some((collection, rkey)) => (authority, Some(collection), Some(rkey)),
        },
    }
}

pub(crate) fn validate(s: &str) -> Result<(), SyntaxError> {
    let err = SyntaxError::AtUri;
    if s.len() > MAX_LEN {
        return Err(err("longer than 8 KiB"));
    }
    let path = s
        .strip_prefix(PREFIX)
        .ok_or(err("must start with \"at://\""))?;
    let (authority, collection, rkey) = split(path);
    // DIDs and handles never contain '/', '?' or '#', so validating each part
    // also rules out queries, fragments and extra path segments (they end up
    // inside the record key, which forbids all three).
    let valid_authority = if authority.starts_with("did:") {
        did::validate(authority).is_ok()
    } else {
        handle::validate(authority).is_ok()
    };
    if !valid_authority {
        return Err(err("authority is not a valid DID or handle"));
    }
    if let Some(collection) = collection {
        nsid::validate(collection).map_err(|_| err("collection is not a valid NSID"))?;
    }
    if let Some(rkey) = rkey {
        record_key::validate(rkey)
            .map_err(|_| err("record key is not valid (or the path has extra segments)"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let uri = AtUri::new("at://alice.test/app.bsky.feed.post/3jzfcijpj2z2a").unwrap();
        assert_eq!(uri.authority(), "alice.test");
        assert_eq!(uri.collection(), Some("app.bsky.feed.post"));
        assert_eq!(uri.rkey(), Some("3jzfcijpj2z2a"));

        let repo = AtUri::new("at://did:plc:asdf123").unwrap();
        assert_eq!(
            (repo.authority(), repo.collection(), repo.rkey()),
            ("did:plc:asdf123", None, None)
        );

        let coll = AtUri::new("at://did:plc:asdf123/app.bsky.feed.like").unwrap();
        assert_eq!(
            (coll.collection(), coll.rkey()),
            (Some("app.bsky.feed.like"), None)
        );
    }

    #[test]
    fn for_record() {
        let uri = AtUri::for_record(
            &Did::new("did:plc:asdf123").unwrap(),
            &Nsid::new("app.bsky.feed.post").unwrap(),
            &RecordKey::new("self").unwrap(),
        );
        assert_eq!(uri.as_str(), "at://did:plc:asdf123/app.bsky.feed.post/self");
        assert_eq!(AtUri::new(uri.as_str()).unwrap(), uri);
    }
}
