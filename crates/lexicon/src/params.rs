//! XRPC parameters: the strings of a URL query, decoded into typed values and checked against a
//! method's `params` schema.

use crate::schema::{Field, ParamsDef};
use crate::validate::{ValidationError, check_boolean, check_integer, check_string};

/// One decoded parameter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    Boolean(bool),
    Integer(i64),
    /// A `string` parameter (format and length checked), or an `unknown` one (as given).
    String(String),
    /// An `array` parameter: the key repeated (`?uris=a&uris=b`), in query order.
    Array(Vec<ParamValue>),
}

impl ParamValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ParamValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_integer(&self) -> Option<i64> {
        match self {
            ParamValue::Integer(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            ParamValue::Boolean(b) => Some(*b),
            _ => None,
        }
    }
}

/// The parameters of one call, decoded by [`crate::Catalog::validate_params`].
///
/// Decoding rules:
/// - only parameters the schema declares are kept; other query keys are ignored;
/// - an empty value (`?cursor=`) counts as absent, as in the reference implementation;
/// - `boolean` is `true` or `false`; `integer` a decimal 64-bit integer; `string` any text,
///   then checked like a record field (format, lengths, graphemes, enum, const); `unknown` is
///   kept as given;
/// - an `array` parameter is its key repeated; each item is decoded by the item type and the
///   array's `minLength`/`maxLength` apply; any other parameter given twice is an error;
/// - an absent parameter takes the schema's `default` if it has one, else it is an error when
///   `required` (`Params must have the property "actor"`) and absent from the result otherwise.
///
/// Errors name the parameter as their path (`limit can not be greater than 100`), as the
/// reference does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// Sorted by name.
    entries: Vec<(String, ParamValue)>,
}

impl Params {
    /// The value of parameter `name` (given or defaulted).
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.entries
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// A string parameter.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(ParamValue::as_str)
    }

    /// An integer parameter.
    pub fn integer(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(ParamValue::as_integer)
    }

    /// A boolean parameter.
    pub fn boolean(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(ParamValue::as_bool)
    }

    /// The items of an array parameter (empty if absent).
    pub fn array(&self, name: &str) -> &[ParamValue] {
        match self.get(name) {
            Some(ParamValue::Array(items)) => items,
            _ => &[],
        }
    }

    /// The items of an array-of-strings parameter (empty if absent).
    pub fn strings(&self, name: &str) -> impl Iterator<Item = &str> {
        self.array(name).iter().filter_map(ParamValue::as_str)
    }

    /// Every parameter present, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

pub(crate) fn decode<K: AsRef<str>, V: AsRef<str>>(
    def: &ParamsDef,
    query: &[(K, V)],
) -> Result<Params, ValidationError> {
    let mut entries = Vec::new();
    // `properties` is a BTreeMap, so `entries` comes out sorted by name.
    for (name, field) in &def.properties {
        let mut given = query
            .iter()
            .filter(|(k, v)| k.as_ref() == name && !v.as_ref().is_empty())
            .map(|(_, v)| v.as_ref());
        let value = match field {
            Field::Array(array) => {
                let mut items = Vec::new();
                for (i, s) in given.enumerate() {
                    let item = scalar(&array.items, s)
                        .map_err(|m| ValidationError::invalid(format!("{name}/{i}"), m))?;
                    items.push(item);
                }
                let len = items.len() as u64;
                if let Some(max) = array.max_length.filter(|&max| len > max) {
                    return Err(ValidationError::invalid(
                        name.as_str(),
                        format!("must not have more than {max} elements"),
                    ));
                }
                // An absent array is absent, not too short.
                if let Some(min) = array.min_length.filter(|&min| len > 0 && len < min) {
                    return Err(ValidationError::invalid(
                        name.as_str(),
                        format!("must not have fewer than {min} elements"),
                    ));
                }
                (len > 0).then_some(ParamValue::Array(items))
            }
            other => {
                let first = given.next();
                if given.next().is_some() {
                    return Err(ValidationError::invalid(
                        name.as_str(),
                        "must not be given more than once",
                    ));
                }
                match first {
                    Some(s) => Some(
                        scalar(other, s).map_err(|m| ValidationError::invalid(name.as_str(), m))?,
                    ),
                    None => default(other),
                }
            }
        };
        match value {
            Some(v) => entries.push((name.clone(), v)),
            None if def.required.iter().any(|r| r == name) => {
                return Err(ValidationError::invalid(
                    "Params",
                    format!("must have the property \"{name}\""),
                ));
            }
            None => {}
        }
    }
    Ok(Params { entries })
}

fn scalar(field: &Field, s: &str) -> Result<ParamValue, String> {
    match field {
        Field::Boolean(d) => {
            let b = match s {
                "true" => true,
                "false" => false,
                _ => return Err("must be a boolean".into()),
            };
            check_boolean(d, b)?;
            Ok(ParamValue::Boolean(b))
        }
        Field::Integer(d) => {
            let i: i64 = s.parse().map_err(|_| "must be an integer".to_owned())?;
            check_integer(d, i)?;
            Ok(ParamValue::Integer(i))
        }
        Field::String(d) => {
            check_string(d, s)?;
            Ok(ParamValue::String(s.to_owned()))
        }
        Field::Unknown(_) => Ok(ParamValue::String(s.to_owned())),
        // Parsing rejects any other parameter type.
        _ => Err("cannot be a parameter".into()),
    }
}

fn default(field: &Field) -> Option<ParamValue> {
    match field {
        Field::Boolean(d) => d.default.map(ParamValue::Boolean),
        Field::Integer(d) => d.default.map(ParamValue::Integer),
        Field::String(d) => d.default.clone().map(ParamValue::String),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Catalog, LexiconDoc};
    use serde_json::json;

    fn catalog() -> Catalog {
        let doc = LexiconDoc::from_value(&json!({"lexicon": 1, "id": "com.example.list",
        "defs": {"main": {"type": "query", "parameters": {"type": "params",
            "required": ["actor"],
            "properties": {
                "actor": {"type": "string", "format": "at-identifier"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
                "cursor": {"type": "string"},
                "reverse": {"type": "boolean"},
                "uris": {"type": "array", "maxLength": 2,
                    "items": {"type": "string", "format": "at-uri"}},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
            }}}}}))
        .unwrap();
        Catalog::from_docs([doc]).unwrap()
    }

    fn decode(query: &[(&str, &str)]) -> Result<Params, String> {
        catalog()
            .validate_params("com.example.list", query)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn typed_values_and_defaults() {
        let p = decode(&[
            ("actor", "alice.test"),
            ("reverse", "true"),
            ("uris", "at://did:plc:abc/app.bsky.feed.post/3jzfcijpj2z2a"),
            ("uris", "at://alice.test"),
            ("cursor", ""),
            ("other", "ignored"),
        ])
        .unwrap();
        assert_eq!(p.string("actor"), Some("alice.test"));
        assert_eq!(p.integer("limit"), Some(50), "default applied");
        assert_eq!(p.string("mode"), Some("a"));
        assert_eq!(p.boolean("reverse"), Some(true));
        assert_eq!(p.strings("uris").count(), 2);
        assert_eq!(p.get("cursor"), None, "an empty value is absent");
        assert_eq!(p.get("other"), None);
        let names: Vec<_> = p.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["actor", "limit", "mode", "reverse", "uris"]);

        let p = decode(&[("actor", "did:plc:abc"), ("limit", "7")]).unwrap();
        assert_eq!(p.integer("limit"), Some(7));
        assert!(p.array("uris").is_empty());
    }

    #[test]
    fn errors_name_the_parameter() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "Params must have the property \"actor\""),
            (&[("actor", "")], "Params must have the property \"actor\""),
            (
                &[("actor", "not a handle")],
                "actor must be a valid did or a handle",
            ),
            (
                &[("actor", "a.test"), ("limit", "101")],
                "limit can not be greater than 100",
            ),
            (
                &[("actor", "a.test"), ("limit", "0")],
                "limit can not be less than 1",
            ),
            (
                &[("actor", "a.test"), ("limit", "ten")],
                "limit must be an integer",
            ),
            (
                &[("actor", "a.test"), ("reverse", "yes")],
                "reverse must be a boolean",
            ),
            (
                &[("actor", "a.test"), ("mode", "c")],
                "mode must be one of (a|b)",
            ),
            (
                &[("actor", "a.test"), ("uris", "x")],
                "uris/0 must be a valid at-uri",
            ),
            (
                &[
                    ("actor", "a.test"),
                    ("uris", "at://a.test"),
                    ("uris", "at://b.test"),
                    ("uris", "at://c.test"),
                ],
                "uris must not have more than 2 elements",
            ),
            (
                &[("actor", "a.test"), ("actor", "b.test")],
                "actor must not be given more than once",
            ),
        ];
        for (query, want) in cases {
            assert_eq!(decode(query).unwrap_err(), *want, "{query:?}");
        }
    }

    #[test]
    fn methods_and_unknown_nsids() {
        let c = catalog();
        let none: &[(String, String)] = &[];
        assert!(
            c.validate_params("com.example.nope", none)
                .unwrap_err()
                .is_unknown_lexicon()
        );
        let mut c = c;
        c.add(
            LexiconDoc::from_value(&json!({"lexicon": 1, "id": "com.example.bare",
                "defs": {"main": {"type": "procedure"}, "obj": {"type": "object"}}}))
            .unwrap(),
        )
        .unwrap();
        assert!(
            c.validate_params("com.example.bare", &[("a", "b")])
                .unwrap()
                .is_empty()
        );
        assert!(c.validate_params("com.example.bare#obj", none).is_err());
    }
}
