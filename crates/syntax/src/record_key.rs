//! Record keys: the last segment of a record's path in a repository
//! (`<collection>/<rkey>`), usually a TID, sometimes a fixed word like `self`.

use crate::SyntaxError;
use crate::string_type::string_type;

const MAX_LEN: usize = 512;

/// A syntactically valid record key, e.g. `3jzfcijpj2z2a` or `self`.
///
/// This is the generic syntax every record key must meet; a collection's
/// Lexicon may narrow it further (e.g. `key: "tid"`), which is checked with
/// [`Tid`](crate::Tid), not here.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey(String);

string_type!(RecordKey, validate);

impl std::borrow::Borrow<str> for RecordKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<crate::Tid> for RecordKey {
    /// Every TID is a valid record key.
    fn from(tid: crate::Tid) -> Self {
        RecordKey(tid.into_string())
    }
}

pub(crate) fn validate(s: &str) -> Result<(), SyntaxError> {
    let err = SyntaxError::RecordKey;
    if s.is_empty() || s.len() > MAX_LEN {
        return Err(err("must be 1 to 512 characters"));
    }
    // `.` and `..` would be path traversal in the `<collection>/<rkey>` path.
    if s == "." || s == ".." {
        return Err(err("may not be \".\" or \"..\""));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'~'))
    {
        return Err(err("has a character outside [A-Za-z0-9._:~-]"));
    }
    Ok(())
}
