//! NSIDs (namespaced identifiers): a reversed domain name followed by a name,
//! e.g. `app.bsky.feed.post`. They name Lexicon schemas, record collections
//! and XRPC methods.

use crate::SyntaxError;
use crate::handle::validate_label;
use crate::string_type::string_type;

const MAX_LEN: usize = 317;
const MAX_NAME_LEN: usize = 63;

/// A syntactically valid NSID, e.g. `com.atproto.repo.createRecord`.
///
/// Compared byte for byte. The spec treats the authority as case-insensitive
/// but the name as case-sensitive; in practice NSIDs are written in one
/// canonical form, and the collections in a repository are keyed by the exact
/// string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nsid(String);

string_type!(Nsid, validate);

impl Nsid {
    /// The domain authority in normal domain order: `feed.bsky.app` for
    /// `app.bsky.feed.post`. This is the domain whose DNS publishes the
    /// schema.
    pub fn authority(&self) -> String {
        let reversed = self.authority_reversed();
        let mut out = String::with_capacity(reversed.len());
        for (i, label) in reversed.rsplit('.').enumerate() {
            if i > 0 {
                out.push('.');
            }
            out.push_str(label);
        }
        out
    }

    /// The authority exactly as written in the NSID, i.e. reversed:
    /// `app.bsky.feed` for `app.bsky.feed.post`.
    pub fn authority_reversed(&self) -> &str {
        &self.0[..self.name_start() - 1]
    }

    /// The final segment: `post` for `app.bsky.feed.post`.
    pub fn name(&self) -> &str {
        &self.0[self.name_start()..]
    }

    fn name_start(&self) -> usize {
        // Validation guarantees at least two dots.
        self.0.rfind('.').map_or(0, |i| i + 1)
    }
}

impl std::borrow::Borrow<str> for Nsid {
    fn borrow(&self) -> &str {
        &self.0
    }
}

pub(crate) fn validate(s: &str) -> Result<(), SyntaxError> {
    let err = SyntaxError::Nsid;
    if s.len() > MAX_LEN {
        return Err(err("longer than 317 characters"));
    }
    let dot = s.rfind('.').ok_or(err("needs at least three segments"))?;
    let (authority, name) = (&s[..dot], &s[dot + 1..]);

    // No separate 253-character cap on the authority: the reference
    // implementations only cap the whole NSID, and the interop vectors
    // include a valid NSID whose authority is longer than 253.
    let mut labels = 0;
    for label in authority.split('.') {
        validate_label(label).map_err(err)?;
        // The first label is the top-level domain; as for handles, it may not
        // start with a digit.
        if labels == 0 && label.as_bytes()[0].is_ascii_digit() {
            return Err(err("top-level domain may not start with a digit"));
        }
        labels += 1;
    }
    if labels < 2 {
        return Err(err("needs at least three segments"));
    }

    // Name: 1-63 ASCII letters and digits, starting with a letter.
    let name = name.as_bytes();
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(err("name must be 1 to 63 characters"));
    }
    if !name[0].is_ascii_alphabetic() || !name.iter().all(u8::is_ascii_alphanumeric) {
        return Err(err(
            "name must be letters and digits, starting with a letter",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let nsid = Nsid::new("app.bsky.feed.post").unwrap();
        assert_eq!(nsid.authority(), "feed.bsky.app");
        assert_eq!(nsid.authority_reversed(), "app.bsky.feed");
        assert_eq!(nsid.name(), "post");
    }
}
