//! DIDs: `did:<method>:<method-specific-id>`.
//!
//! atproto only checks the generic DID shape here; whether the method is
//! supported (`plc`, `web`) is a resolution concern, not a syntax one.

use crate::SyntaxError;
use crate::string_type::string_type;

/// Longest DID accepted (the spec caps DIDs at 2 KiB).
const MAX_LEN: usize = 2048;

/// A syntactically valid DID, e.g. `did:plc:7iza6de2dwap2sbkpav7c6c6`.
///
/// Case-sensitive: the method must be lowercase, and the identifier is
/// compared byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Did(String);

string_type!(Did, validate);

impl Did {
    /// The DID method, e.g. `plc` for `did:plc:…`.
    pub fn method(&self) -> &str {
        let rest = &self.0[4..];
        // Validation guarantees a second ':' after the method.
        &rest[..rest.find(':').unwrap_or(rest.len())]
    }

    /// The method-specific identifier: everything after `did:<method>:`.
    pub fn identifier(&self) -> &str {
        let method_len = self.method().len();
        &self.0[4 + method_len + 1..]
    }
}

impl std::borrow::Borrow<str> for Did {
    fn borrow(&self) -> &str {
        &self.0
    }
}

pub(crate) fn validate(s: &str) -> Result<(), SyntaxError> {
    let err = SyntaxError::Did;
    if s.len() > MAX_LEN {
        return Err(err("longer than 2048 characters"));
    }
    let rest = s
        .strip_prefix("did:")
        .ok_or(err("must start with \"did:\""))?;
    let colon = rest
        .find(':')
        .ok_or(err("missing method-specific identifier"))?;
    let (method, id) = (&rest[..colon], &rest[colon + 1..]);
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(err("method must be one or more lowercase letters"));
    }
    // Identifier: letters, digits and `._:%-`; it may not end in ':' or '%'
    // (a dangling separator or an unfinished percent-escape).
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'%' | b'-'))
    {
        return Err(err("identifier has a character outside [A-Za-z0-9._:%-]"));
    }
    match id.bytes().last() {
        None => Err(err("empty method-specific identifier")),
        Some(b':' | b'%') => Err(err("identifier may not end with ':' or '%'")),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let did = Did::new("did:web:example.com:u:alice").unwrap();
        assert_eq!(did.method(), "web");
        assert_eq!(did.identifier(), "example.com:u:alice");
    }
}
