//! Boilerplate shared by every validated string newtype.
//!
//! Each identifier module defines `struct Name(String)` with its derives and a
//! `fn validate(&str) -> Result<(), SyntaxError>`; this macro adds the common
//! surface so every type behaves the same way: `new`, `as_str`,
//! `into_string`, `FromStr`, `TryFrom<String>`, `Display`, `AsRef<str>`,
//! `From<Name> for String`, and serde as a plain string that is validated on
//! deserialize (so a struct with a `Did` field can never hold a bad DID).

macro_rules! string_type {
    ($name:ident, $validate:path) => {
        impl $name {
            /// Validates `s` and wraps a copy of it.
            pub fn new(s: &str) -> Result<Self, $crate::SyntaxError> {
                $validate(s)?;
                Ok(Self(s.to_owned()))
            }

            /// The identifier exactly as it was given.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Unwraps the inner `String` without copying.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = $crate::SyntaxError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        /// Validates an owned string, reusing its allocation.
        impl ::core::convert::TryFrom<String> for $name {
            type Error = $crate::SyntaxError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $validate(&s)?;
                Ok(Self(s))
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::try_from(s).map_err(::serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use string_type;

#[cfg(test)]
mod tests {
    use crate::{AtIdentifier, Did, Handle, Nsid};

    #[test]
    fn serde_is_a_plain_validated_string() {
        let did: Did = serde_json::from_str("\"did:plc:asdf123\"").unwrap();
        assert_eq!(serde_json::to_string(&did).unwrap(), "\"did:plc:asdf123\"");
        assert!(serde_json::from_str::<Did>("\"did:PLC:asdf123\"").is_err());
        assert!(serde_json::from_str::<Nsid>("\"com.example\"").is_err());
        assert!(serde_json::from_str::<Handle>("42").is_err());

        let id: AtIdentifier = serde_json::from_str("\"alice.test\"").unwrap();
        assert_eq!(id, AtIdentifier::Handle(Handle::new("alice.test").unwrap()));
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"alice.test\"");
        assert!(serde_json::from_str::<AtIdentifier>("\"did:plc:\"").is_err());
    }

    #[test]
    fn conversions() {
        let did: Did = "did:plc:asdf123".parse().unwrap();
        assert_eq!(did.to_string(), "did:plc:asdf123");
        assert_eq!(Did::try_from(String::from("did:plc:asdf123")).unwrap(), did);
        assert_eq!(String::from(did.clone()), "did:plc:asdf123");
        assert_eq!(did.as_ref(), did.as_str());
    }
}
