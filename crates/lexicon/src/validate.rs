//! Validation of data model values ([`Ipld`]) against schemas.
//!
//! The walk allocates nothing while the value is valid: a failure is built on the way back up,
//! each level adding its path segment, and the path string (`Record/embed/images/0/alt`) is
//! joined once at the top. Rules and messages follow the reference implementation; where the
//! reference is silent or looser the specification decides (blob `accept`/`maxSize`, `unknown`
//! must be a plain object, not a blob).

use pds_ipld::Ipld;

use crate::catalog::Catalog;
use crate::formats::{check_format, graphemes_below, graphemes_exceed};
use crate::schema::{
    ArrayDef, BlobDef, BooleanDef, BytesDef, Def, Field, IntegerDef, ObjectDef, StringDef, UnionDef,
};

/// Why a value was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The catalog has no schema for this NSID. A PDS accepts records of unknown collections
    /// unless the client asked for validation.
    #[error("Lexicon not found: {nsid}")]
    UnknownLexicon { nsid: String },
    /// The value breaks its schema. `path` names the failing place, starting with `Record`,
    /// `Input`, `Output` or `Object`, or a parameter's name; `message` says what is wrong.
    /// Displayed as `<path> <message>`, e.g. `Record/text must not be longer than 300 graphemes`.
    #[error("{path} {message}")]
    Invalid { path: String, message: String },
}

impl ValidationError {
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn unknown(nsid: &str) -> Self {
        ValidationError::UnknownLexicon {
            nsid: nsid.to_owned(),
        }
    }

    /// Whether this is [`ValidationError::UnknownLexicon`].
    pub fn is_unknown_lexicon(&self) -> bool {
        matches!(self, ValidationError::UnknownLexicon { .. })
    }
}

/// Deepest nesting walked; values from JSON or CBOR are already limited to 256 levels.
const MAX_DEPTH: usize = 512;

enum Seg {
    Key(String),
    Index(usize),
}

/// A failure on its way up: the segments below the current level (innermost first).
pub(crate) struct Fail {
    segs: Vec<Seg>,
    message: String,
}

impl Fail {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Fail {
            segs: Vec::new(),
            message: message.into(),
        }
    }

    fn at_key(mut self, key: &str) -> Self {
        self.segs.push(Seg::Key(key.to_owned()));
        self
    }

    fn at_index(mut self, i: usize) -> Self {
        self.segs.push(Seg::Index(i));
        self
    }

    /// The error, with `root` as the first path segment.
    pub(crate) fn into_error(self, root: &str) -> ValidationError {
        let mut path = String::from(root);
        for seg in self.segs.iter().rev() {
            path.push('/');
            match seg {
                Seg::Key(k) => path.push_str(k),
                Seg::Index(i) => path.push_str(&i.to_string()),
            }
        }
        ValidationError::Invalid {
            path,
            message: self.message,
        }
    }
}

type Res = Result<(), Fail>;

/// Walks values against the schemas of one catalog.
pub(crate) struct Validator<'c> {
    pub(crate) catalog: &'c Catalog,
}

impl<'c> Validator<'c> {
    /// A value against a named definition.
    pub(crate) fn def(&self, def: &Def, v: &Ipld, depth: usize) -> Res {
        match def {
            Def::Object(o) => self.object(o, v, depth),
            // A record definition used as a value (a ref or union member) means its object.
            Def::Record(r) => self.object(&r.record, v, depth),
            Def::Array(a) => self.array(a, v, depth),
            Def::Boolean(b) => boolean(b, v),
            Def::Integer(i) => integer(i, v),
            Def::String(s) => string(s, v),
            Def::Bytes(b) => bytes(b, v),
            Def::CidLink(_) => cid_link(v),
            Def::Blob(b) => blob(b, v),
            Def::Token(_)
            | Def::Query(_)
            | Def::Procedure(_)
            | Def::Subscription(_)
            | Def::PermissionSet(_) => Err(Fail::new(format!(
                "cannot be validated against a {} definition",
                def.type_name()
            ))),
        }
    }

    /// A value against an inline schema.
    pub(crate) fn field(&self, f: &Field, v: &Ipld, depth: usize) -> Res {
        match f {
            Field::Object(o) => self.object(o, v, depth),
            Field::Array(a) => self.array(a, v, depth),
            Field::Ref(r) => {
                let def = self.resolve(&r.target)?;
                self.def(def, v, depth)
            }
            Field::Union(u) => self.union(u, v, depth),
            Field::Unknown(_) => unknown(v),
            Field::Boolean(b) => boolean(b, v),
            Field::Integer(i) => integer(i, v),
            Field::String(s) => string(s, v),
            Field::Bytes(b) => bytes(b, v),
            Field::CidLink(_) => cid_link(v),
            Field::Blob(b) => blob(b, v),
        }
    }

    fn resolve(&self, reference: &str) -> Result<&'c Def, Fail> {
        self.catalog.def(reference).ok_or_else(|| {
            Fail::new(format!(
                "refers to a schema that is not in the catalog: {reference}"
            ))
        })
    }

    pub(crate) fn object(&self, o: &ObjectDef, v: &Ipld, depth: usize) -> Res {
        if depth > MAX_DEPTH {
            return Err(Fail::new("is nested too deeply"));
        }
        let Ipld::Map(map) = v else {
            return Err(Fail::new("must be an object"));
        };
        for p in &o.properties {
            match map.get(p.name.as_str()) {
                None if p.required => {
                    return Err(Fail::new(format!("must have the property \"{}\"", p.name)));
                }
                None => {}
                Some(Ipld::Null) if p.nullable => {}
                Some(value) => self
                    .field(&p.schema, value, depth + 1)
                    .map_err(|f| f.at_key(&p.name))?,
            }
        }
        Ok(())
    }

    fn array(&self, a: &ArrayDef, v: &Ipld, depth: usize) -> Res {
        if depth > MAX_DEPTH {
            return Err(Fail::new("is nested too deeply"));
        }
        let Ipld::List(items) = v else {
            return Err(Fail::new("must be an array"));
        };
        let len = items.len() as u64;
        if let Some(max) = a.max_length.filter(|&max| len > max) {
            return Err(Fail::new(format!("must not have more than {max} elements")));
        }
        if let Some(min) = a.min_length.filter(|&min| len < min) {
            return Err(Fail::new(format!(
                "must not have fewer than {min} elements"
            )));
        }
        for (i, item) in items.iter().enumerate() {
            self.field(&a.items, item, depth + 1)
                .map_err(|f| f.at_index(i))?;
        }
        Ok(())
    }

    fn union(&self, u: &UnionDef, v: &Ipld, depth: usize) -> Res {
        let type_name = match v {
            Ipld::Map(map) => match map.get("$type") {
                Some(Ipld::String(t)) => Some(t.as_str()),
                _ => None,
            },
            _ => None,
        };
        let Some(type_name) = type_name else {
            return Err(Fail::new(
                "must be an object which includes the \"$type\" property",
            ));
        };
        match u.refs.iter().find(|r| ref_matches(r, type_name)) {
            Some(member) => {
                let def = self.resolve(member)?;
                self.def(def, v, depth)
            }
            None if u.closed => Err(Fail::new(format!(
                "$type must be one of {}",
                u.refs.join(", ")
            ))),
            // An open union accepts members it does not know, unchecked.
            None => Ok(()),
        }
    }
}

/// Whether a union member (normalized `nsid#name`) is the one a `$type` names: `$type` may
/// leave out `#main`.
fn ref_matches(member: &str, type_name: &str) -> bool {
    member == type_name || member.strip_suffix("#main") == Some(type_name)
}

fn boolean(d: &BooleanDef, v: &Ipld) -> Res {
    match v {
        Ipld::Bool(b) => check_boolean(d, *b).map_err(Fail::new),
        _ => Err(Fail::new("must be a boolean")),
    }
}

fn integer(d: &IntegerDef, v: &Ipld) -> Res {
    match v {
        Ipld::Integer(i) => match i64::try_from(*i) {
            Ok(i) => check_integer(d, i).map_err(Fail::new),
            Err(_) => Err(Fail::new("must be a 64-bit integer")),
        },
        _ => Err(Fail::new("must be an integer")),
    }
}

fn string(d: &StringDef, v: &Ipld) -> Res {
    match v {
        Ipld::String(s) => check_string(d, s).map_err(Fail::new),
        _ => Err(Fail::new("must be a string")),
    }
}

fn bytes(d: &BytesDef, v: &Ipld) -> Res {
    let Ipld::Bytes(b) = v else {
        return Err(Fail::new("must be a byte array"));
    };
    let len = b.len() as u64;
    if let Some(max) = d.max_length.filter(|&max| len > max) {
        return Err(Fail::new(format!("must not be larger than {max} bytes")));
    }
    if let Some(min) = d.min_length.filter(|&min| len < min) {
        return Err(Fail::new(format!("must not be smaller than {min} bytes")));
    }
    Ok(())
}

fn cid_link(v: &Ipld) -> Res {
    match v {
        Ipld::Link(_) => Ok(()),
        _ => Err(Fail::new("must be a CID")),
    }
}

fn unknown(v: &Ipld) -> Res {
    match v {
        Ipld::Map(map) if !matches!(map.get("$type"), Some(Ipld::String(t)) if t == "blob") => {
            Ok(())
        }
        _ => Err(Fail::new("must be an object")),
    }
}

/// The MIME type and size (absent in the legacy form) of a blob reference, or None if `v` is
/// not one. Typed form: exactly `$type: "blob"`, `ref` (a link), `mimeType`, `size` (>= 0).
/// Legacy form: exactly `cid` (a CID string) and `mimeType`.
pub(crate) fn blob_parts(v: &Ipld) -> Option<(&str, Option<u64>)> {
    let Ipld::Map(map) = v else { return None };
    match map.get("$type") {
        Some(Ipld::String(t)) if t == "blob" && map.len() == 4 => {
            match (map.get("ref"), map.get("mimeType"), map.get("size")) {
                (Some(Ipld::Link(_)), Some(Ipld::String(mime)), Some(Ipld::Integer(size))) => {
                    Some((mime.as_str(), Some(u64::try_from(*size).ok()?)))
                }
                _ => None,
            }
        }
        None if map.len() == 2 => match (map.get("cid"), map.get("mimeType")) {
            (Some(Ipld::String(cid)), Some(Ipld::String(mime)))
                if pds_ipld::parse_cid(cid).is_ok() =>
            {
                Some((mime.as_str(), None))
            }
            _ => None,
        },
        _ => None,
    }
}

fn blob(d: &BlobDef, v: &Ipld) -> Res {
    let Some((mime, size)) = blob_parts(v) else {
        return Err(Fail::new("should be a blob ref"));
    };
    if let Some(accept) = &d.accept
        && !mime_accepted(accept, mime)
    {
        return Err(Fail::new(format!(
            "has mimeType {mime:?}, which is not one of the accepted types ({})",
            accept.join(", ")
        )));
    }
    if let (Some(max), Some(size)) = (d.max_size, size)
        && size > max
    {
        return Err(Fail::new(format!(
            "is {size} bytes, more than the maximum of {max} bytes"
        )));
    }
    Ok(())
}

/// Whether `mime` matches one of `accept`: exact (ignoring case), `type/*`, or `*/*`.
pub fn mime_accepted(accept: &[String], mime: &str) -> bool {
    accept.iter().any(|pattern| {
        if pattern == "*/*" || pattern == "*" {
            return true;
        }
        match pattern.strip_suffix("/*") {
            Some(kind) => mime
                .split_once('/')
                .is_some_and(|(t, sub)| t.eq_ignore_ascii_case(kind) && !sub.is_empty()),
            None => pattern.eq_ignore_ascii_case(mime),
        }
    })
}

pub(crate) fn check_boolean(d: &BooleanDef, b: bool) -> Result<(), String> {
    match d.const_value {
        Some(c) if c != b => Err(format!("must be {c}")),
        _ => Ok(()),
    }
}

pub(crate) fn check_integer(d: &IntegerDef, i: i64) -> Result<(), String> {
    if let Some(c) = d.const_value.filter(|&c| c != i) {
        return Err(format!("must be {c}"));
    }
    if let Some(values) = d.enum_values.as_ref().filter(|e| !e.contains(&i)) {
        let list: Vec<String> = values.iter().map(i64::to_string).collect();
        return Err(format!("must be one of ({})", list.join("|")));
    }
    if let Some(max) = d.maximum.filter(|&max| i > max) {
        return Err(format!("can not be greater than {max}"));
    }
    if let Some(min) = d.minimum.filter(|&min| i < min) {
        return Err(format!("can not be less than {min}"));
    }
    Ok(())
}

pub(crate) fn check_string(d: &StringDef, s: &str) -> Result<(), String> {
    if let Some(c) = d.const_value.as_ref().filter(|c| *c != s) {
        return Err(format!("must be {c}"));
    }
    if let Some(values) = d.enum_values.as_ref().filter(|e| !e.iter().any(|v| v == s)) {
        return Err(format!("must be one of ({})", values.join("|")));
    }
    let len = s.len() as u64;
    if let Some(max) = d.max_length.filter(|&max| len > max) {
        return Err(format!("must not be longer than {max} characters"));
    }
    if let Some(min) = d.min_length.filter(|&min| len < min) {
        return Err(format!("must not be shorter than {min} characters"));
    }
    if let Some(max) = d.max_graphemes.filter(|&max| graphemes_exceed(s, max)) {
        return Err(format!("must not be longer than {max} graphemes"));
    }
    if let Some(min) = d.min_graphemes.filter(|&min| graphemes_below(s, min)) {
        return Err(format!("must not be shorter than {min} graphemes"));
    }
    if let Some(format) = d.format {
        check_format(format, s).map_err(str::to_owned)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LexiconDoc;
    use pds_ipld::json_to_ipld;
    use serde_json::{Value, json};

    const CID: &str = "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq";
    const BLOB_CID: &str = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity";

    /// A catalog with `com.example.test` (a record whose properties are `props`) and
    /// `com.example.other` (objects `main`, `a`, `b` and a token).
    fn catalog(props: Value) -> Catalog {
        let mut c = Catalog::new();
        c.add(
            LexiconDoc::from_value(&json!({"lexicon": 1, "id": "com.example.test", "defs": {
                "main": {"type": "record", "key": "tid", "record": {"type": "object",
                    "properties": props}},
                "local": {"type": "object", "required": ["x"], "properties": {
                    "x": {"type": "integer", "maximum": 5}}},
            }}))
            .unwrap(),
        )
        .unwrap();
        c.add(
            LexiconDoc::from_value(&json!({"lexicon": 1, "id": "com.example.other", "defs": {
                "main": {"type": "object", "properties": {"m": {"type": "string"}}},
                "a": {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}},
                "b": {"type": "object", "required": ["b"], "properties": {"b": {"type": "boolean"}}},
                "tok": {"type": "token"},
            }}))
            .unwrap(),
        )
        .unwrap();
        c
    }

    fn check(c: &Catalog, value: Value) -> Result<(), String> {
        let mut value = value;
        value["$type"] = json!("com.example.test");
        c.validate_record("com.example.test", &json_to_ipld(&value).unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn unions() {
        let c = catalog(json!({
            "open": {"type": "union", "refs": ["com.example.other#a", "com.example.other#b",
                "com.example.other"]},
            "closed": {"type": "union", "closed": true, "refs": ["com.example.other#a"]},
        }));
        assert_eq!(
            check(
                &c,
                json!({"open": {"$type": "com.example.other#a", "a": 1}})
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &c,
                json!({"open": {"$type": "com.example.other#a", "a": true}})
            ),
            Err("Record/open/a must be an integer".into())
        );
        assert_eq!(
            check(&c, json!({"open": {"$type": "com.example.other#b"}})),
            Err("Record/open must have the property \"b\"".into())
        );
        // `#main` may be left out of $type, or written out.
        assert_eq!(
            check(&c, json!({"open": {"$type": "com.example.other", "m": 1}})),
            Err("Record/open/m must be a string".into())
        );
        assert_eq!(
            check(
                &c,
                json!({"open": {"$type": "com.example.other#main", "m": 1}})
            ),
            Err("Record/open/m must be a string".into())
        );
        // Open: unknown members pass unchecked. Closed: they fail.
        assert_eq!(
            check(&c, json!({"open": {"$type": "com.example.zzz", "a": "x"}})),
            Ok(())
        );
        assert_eq!(
            check(
                &c,
                json!({"closed": {"$type": "com.example.other#b", "b": true}})
            ),
            Err("Record/closed $type must be one of com.example.other#a".into())
        );
        assert_eq!(
            check(&c, json!({"open": {"a": 1}})),
            Err("Record/open must be an object which includes the \"$type\" property".into())
        );
        assert_eq!(
            check(&c, json!({"open": [1]})),
            Err("Record/open must be an object which includes the \"$type\" property".into())
        );
    }

    #[test]
    fn refs() {
        let c = catalog(json!({
            "local": {"type": "ref", "ref": "#local"},
            "remote": {"type": "ref", "ref": "com.example.other#a"},
            "main": {"type": "ref", "ref": "com.example.other"},
            "missing": {"type": "ref", "ref": "com.example.nowhere#x"},
            "token": {"type": "ref", "ref": "com.example.other#tok"},
            "list": {"type": "array", "items": {"type": "ref", "ref": "#local"}},
        }));
        assert_eq!(
            check(&c, json!({"local": {"x": 5}, "remote": {"a": 1}})),
            Ok(())
        );
        assert_eq!(
            check(&c, json!({"local": {"x": 6}})),
            Err("Record/local/x can not be greater than 5".into())
        );
        assert_eq!(
            check(&c, json!({"local": {}})),
            Err("Record/local must have the property \"x\"".into())
        );
        assert_eq!(
            check(&c, json!({"main": {"m": 2}})),
            Err("Record/main/m must be a string".into())
        );
        assert_eq!(
            check(&c, json!({"list": [{"x": 1}, {"x": 1}, {"x": 9}]})),
            Err("Record/list/2/x can not be greater than 5".into())
        );
        let err = check(&c, json!({"missing": {}})).unwrap_err();
        assert!(
            err.starts_with("Record/missing refers to a schema"),
            "{err}"
        );
        let err = check(&c, json!({"token": "com.example.other#tok"})).unwrap_err();
        assert!(err.starts_with("Record/token cannot be validated"), "{err}");
    }

    #[test]
    fn blobs() {
        let c = catalog(json!({
            "any": {"type": "blob"},
            "image": {"type": "blob", "accept": ["image/*"], "maxSize": 1000},
            "exact": {"type": "blob", "accept": ["video/mp4", "text/plain"]},
            "all": {"type": "blob", "accept": ["*/*"]},
        }));
        let blob = |mime: &str, size: u64| json!({"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": mime, "size": size});
        assert_eq!(
            check(&c, json!({"any": blob("application/zip", 1 << 40)})),
            Ok(())
        );
        assert_eq!(check(&c, json!({"image": blob("image/png", 1000)})), Ok(()));
        assert_eq!(check(&c, json!({"image": blob("IMAGE/webp", 1)})), Ok(()));
        assert_eq!(check(&c, json!({"exact": blob("text/plain", 1)})), Ok(()));
        assert_eq!(check(&c, json!({"all": blob("x/y", 1)})), Ok(()));
        let err = check(&c, json!({"image": blob("image/png", 1001)})).unwrap_err();
        assert!(err.starts_with("Record/image is 1001 bytes"), "{err}");
        let err = check(&c, json!({"image": blob("video/mp4", 1)})).unwrap_err();
        assert!(
            err.starts_with("Record/image has mimeType \"video/mp4\""),
            "{err}"
        );
        assert!(check(&c, json!({"exact": blob("video/webm", 1)})).is_err());
        // The legacy form is accepted (its size is unknown, so maxSize cannot apply).
        assert_eq!(
            check(
                &c,
                json!({"image": {"cid": BLOB_CID, "mimeType": "image/jpeg"}})
            ),
            Ok(())
        );
        assert!(
            check(
                &c,
                json!({"image": {"cid": "nope", "mimeType": "image/jpeg"}})
            )
            .is_err()
        );
        // Not blobs: a link, a map without $type, a blob with an extra key.
        for bad in [
            json!({"$link": CID}),
            json!({"ref": {"$link": BLOB_CID}, "mimeType": "image/png", "size": 1}),
            json!({"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": "image/png",
                "size": 1, "extra": 1}),
        ] {
            assert_eq!(
                check(&c, json!({ "any": bad })),
                Err("Record/any should be a blob ref".into())
            );
        }
    }

    #[test]
    fn mime_patterns() {
        let accept = |list: &[&str], mime| {
            mime_accepted(
                &list.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                mime,
            )
        };
        assert!(accept(&["image/*"], "image/png"));
        assert!(!accept(&["image/*"], "image/"));
        assert!(!accept(&["image/*"], "imagex/png"));
        assert!(!accept(&["image/*"], "video/mp4"));
        assert!(accept(&["*/*"], "anything"));
        assert!(accept(&["video/mp4"], "Video/MP4"));
        assert!(!accept(&[], "image/png"));
    }

    #[test]
    fn primitives_and_nullability() {
        let c = catalog(json!({
            "n": {"type": "string"},
            "b": {"type": "boolean", "const": true},
            "bytes": {"type": "bytes", "maxLength": 2},
            "link": {"type": "cid-link"},
            "u": {"type": "unknown"},
            "s": {"type": "string", "const": "x"},
        }));
        assert_eq!(
            check(
                &c,
                json!({"b": true, "bytes": {"$bytes": "AQI"},
            "link": {"$link": CID}, "u": {"any": [1]}, "s": "x"})
            ),
            Ok(())
        );
        assert_eq!(
            check(&c, json!({"b": false})),
            Err("Record/b must be true".into())
        );
        assert_eq!(
            check(&c, json!({"s": "y"})),
            Err("Record/s must be x".into())
        );
        assert_eq!(
            check(&c, json!({"n": null})),
            Err("Record/n must be a string".into())
        );
        assert_eq!(
            check(&c, json!({"bytes": {"$bytes": "AQID"}})),
            Err("Record/bytes must not be larger than 2 bytes".into())
        );
        assert_eq!(
            check(&c, json!({"link": CID})),
            Err("Record/link must be a CID".into())
        );
        for bad in [
            json!(1),
            json!("x"),
            json!([{}]),
            json!({"$link": CID}),
            json!({"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": "a/b", "size": 1}),
        ] {
            assert_eq!(
                check(&c, json!({ "u": bad })),
                Err("Record/u must be an object".into())
            );
        }
    }

    #[test]
    fn record_type_must_match() {
        let c = catalog(json!({}));
        let v = json_to_ipld(&json!({"$type": "com.example.other"})).unwrap();
        assert_eq!(
            c.validate_record("com.example.test", &v)
                .unwrap_err()
                .to_string(),
            "Record/$type must be com.example.test, got com.example.other"
        );
        let v = json_to_ipld(&json!({"a": 1})).unwrap();
        assert_eq!(
            c.validate_record("com.example.test", &v)
                .unwrap_err()
                .to_string(),
            "Record/$type must be a string"
        );
        assert_eq!(
            c.validate_record("com.example.test", &Ipld::List(vec![]))
                .unwrap_err()
                .to_string(),
            "Record must be an object"
        );
        assert!(
            c.validate_record("com.example.nope", &v)
                .unwrap_err()
                .is_unknown_lexicon()
        );
        let err = c.validate_record("com.example.other", &v).unwrap_err();
        assert!(!err.is_unknown_lexicon());
    }

    #[test]
    fn deep_values_are_rejected_not_overflowed() {
        let mut c = catalog(json!({}));
        c.add(
            LexiconDoc::from_value(&json!({"lexicon": 1, "id": "com.example.deep", "defs": {
                "main": {"type": "object", "properties": {"d": {"type": "ref", "ref": "#main"}}}}}))
            .unwrap(),
        )
        .unwrap();
        let mut v = Ipld::Map(Default::default());
        for _ in 0..2000 {
            let mut m = std::collections::BTreeMap::new();
            m.insert("d".to_owned(), v);
            v = Ipld::Map(m);
        }
        let err = c.validate_value("com.example.deep", &v).unwrap_err();
        assert!(err.to_string().contains("nested too deeply"), "{err}");
        // Drop iteratively-ish: unwrap layers so the test itself does not overflow the stack.
        let mut cur = v;
        while let Ipld::Map(mut m) = cur {
            match m.remove("d") {
                Some(inner) => cur = inner,
                None => break,
            }
        }
    }
}
