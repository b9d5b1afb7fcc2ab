//! Handles: DNS hostnames used as human-readable account names.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use crate::SyntaxError;
use crate::string_type::string_type;

/// Longest handle accepted (a DNS name's limit).
const MAX_LEN: usize = 253;
/// Longest label (dot-separated segment) accepted.
const MAX_LABEL_LEN: usize = 63;

/// A syntactically valid handle, e.g. `alice.bsky.social`.
///
/// Handles are DNS names, so they are case-insensitive: `Alice.Test` and
/// `alice.test` are the same account. `new` keeps the string as given (so it
/// can be echoed back), while `==`, `Hash` and `Ord` ignore ASCII case.
/// Store and compare the [`normalized`](Handle::normalized) (lowercase) form
/// when a handle becomes a key, e.g. in a database column.
#[derive(Clone, Debug)]
pub struct Handle(String);

string_type!(Handle, validate);

impl Handle {
    /// The lowercase form, which is the one to store and compare.
    pub fn normalized(&self) -> Handle {
        Handle(self.0.to_ascii_lowercase())
    }

    /// Whether the handle is already in its lowercase form.
    pub fn is_normalized(&self) -> bool {
        !self.0.bytes().any(|b| b.is_ascii_uppercase())
    }
}

// Case-insensitive comparisons. A handle is pure ASCII (checked by
// `validate`), so ASCII case folding is the whole story.
impl PartialEq for Handle {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for Handle {}

impl Hash for Handle {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
        // Terminator, as `str`'s own Hash does, so prefixes hash differently.
        state.write_u8(0xff);
    }
}

impl PartialOrd for Handle {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Handle {
    fn cmp(&self, other: &Self) -> Ordering {
        let a = self.0.bytes().map(|b| b.to_ascii_lowercase());
        let b = other.0.bytes().map(|b| b.to_ascii_lowercase());
        a.cmp(b)
    }
}

pub(crate) fn validate(s: &str) -> Result<(), SyntaxError> {
    let err = SyntaxError::Handle;
    if s.is_empty() {
        return Err(err("empty"));
    }
    if s.len() > MAX_LEN {
        return Err(err("longer than 253 characters"));
    }
    let mut labels = 0;
    let mut last = "";
    for label in s.split('.') {
        validate_label(label).map_err(err)?;
        labels += 1;
        last = label;
    }
    if labels < 2 {
        return Err(err("needs at least two dot-separated labels"));
    }
    // A numeric-leading top-level domain would make IPv4 addresses look like
    // handles; no real TLD starts with a digit.
    if last.as_bytes()[0].is_ascii_digit() {
        return Err(err("top-level domain may not start with a digit"));
    }
    Ok(())
}

/// One DNS label: 1–63 of `[A-Za-z0-9-]`, not starting or ending with `-`.
/// Shared with NSID authorities, which are reversed domain names.
pub(crate) fn validate_label(label: &str) -> Result<(), &'static str> {
    let bytes = label.as_bytes();
    if bytes.is_empty() {
        return Err("empty label (leading, trailing or double dot)");
    }
    if bytes.len() > MAX_LABEL_LEN {
        return Err("label longer than 63 characters");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    {
        return Err("label has a character outside [A-Za-z0-9-]");
    }
    if bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
        return Err("label may not start or end with a hyphen");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn case_insensitive_identity() {
        let mixed = Handle::new("Alice.Example.COM").unwrap();
        let lower = Handle::new("alice.example.com").unwrap();
        assert_eq!(mixed, lower);
        assert_eq!(mixed.cmp(&lower), Ordering::Equal);
        assert_eq!(HashSet::from([mixed.clone(), lower.clone()]).len(), 1);
        assert_eq!(mixed.as_str(), "Alice.Example.COM");
        assert_eq!(mixed.normalized().as_str(), "alice.example.com");
        assert!(!mixed.is_normalized());
        assert!(lower.is_normalized());
    }
}
