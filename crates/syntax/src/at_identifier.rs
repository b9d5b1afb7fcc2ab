//! At-identifiers: the places where atproto accepts either a DID or a handle
//! (e.g. the `repo` parameter of most `com.atproto.repo.*` calls).

use std::fmt;
use std::str::FromStr;

use crate::{Did, Handle, SyntaxError};

/// A DID or a handle. Anything starting with `did:` is taken as a DID (no
/// handle can start that way: handles have no ':').
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AtIdentifier {
    Did(Did),
    Handle(Handle),
}

impl AtIdentifier {
    /// Validates `s` as a DID (if it starts with `did:`) or else a handle.
    pub fn new(s: &str) -> Result<Self, SyntaxError> {
        Self::try_from(s.to_owned())
    }

    /// The identifier exactly as it was given.
    pub fn as_str(&self) -> &str {
        match self {
            AtIdentifier::Did(did) => did.as_str(),
            AtIdentifier::Handle(handle) => handle.as_str(),
        }
    }

    /// The DID, if this is one.
    pub fn as_did(&self) -> Option<&Did> {
        match self {
            AtIdentifier::Did(did) => Some(did),
            AtIdentifier::Handle(_) => None,
        }
    }

    /// The handle, if this is one.
    pub fn as_handle(&self) -> Option<&Handle> {
        match self {
            AtIdentifier::Handle(handle) => Some(handle),
            AtIdentifier::Did(_) => None,
        }
    }
}

impl From<Did> for AtIdentifier {
    fn from(did: Did) -> Self {
        AtIdentifier::Did(did)
    }
}

impl From<Handle> for AtIdentifier {
    fn from(handle: Handle) -> Self {
        AtIdentifier::Handle(handle)
    }
}

/// Validates an owned string, reusing its allocation.
impl TryFrom<String> for AtIdentifier {
    type Error = SyntaxError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let result = if s.starts_with("did:") {
            Did::try_from(s).map(AtIdentifier::Did)
        } else {
            Handle::try_from(s).map(AtIdentifier::Handle)
        };
        // Report it as an at-identifier error, keeping the specific reason.
        result.map_err(|e| match e {
            SyntaxError::Did(why) | SyntaxError::Handle(why) => SyntaxError::AtIdentifier(why),
            other => other,
        })
    }
}

impl FromStr for AtIdentifier {
    type Err = SyntaxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for AtIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for AtIdentifier {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl serde::Serialize for AtIdentifier {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for AtIdentifier {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::try_from(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_kind() {
        let did = AtIdentifier::new("did:plc:asdf123").unwrap();
        assert!(did.as_did().is_some() && did.as_handle().is_none());
        let handle = AtIdentifier::new("alice.test").unwrap();
        assert_eq!(handle.as_handle().map(Handle::as_str), Some("alice.test"));
        assert!(AtIdentifier::new("did:thing").is_err());
    }
}
