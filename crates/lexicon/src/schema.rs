//! Lexicon schema documents: their Rust form, parsing, and the checks that make a document valid.
//!
//! A document is `{"lexicon": 1, "id": <NSID>, "defs": {<name>: <definition>}}`. Parsing
//! ([`LexiconDoc::from_json`], [`LexiconDoc::from_value`]) rejects what the Lexicon specification
//! rejects: a `lexicon` other than the integer 1, an `id` that is not an NSID, no definitions, a
//! primary type (record, query, procedure, subscription, permission-set) under a name other than
//! `main`, a named definition of a type that can only appear inline (`ref`, `union`, `unknown`,
//! `params`), a record whose `record` is not an object schema, a `required` property that is not
//! defined, a malformed reference, an unknown string format. Keys the schema language does not
//! define are ignored, as the reference implementation does.
//!
//! References are normalized while parsing: `#name` becomes `<id>#name` and a bare NSID becomes
//! `<nsid>#main`, so every [`RefDef::target`] and [`UnionDef::refs`] entry is a full
//! `nsid#name` key of [`crate::Catalog::def`].

use std::collections::BTreeMap;

use pds_syntax::{Language, Nsid};
use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;

/// A lexicon document that could not be parsed or breaks the schema language's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid lexicon{}: {message}", id.as_deref().map(|id| format!(" {id}")).unwrap_or_default())]
pub struct SchemaError {
    /// The document's `id`, when it could be read.
    pub id: Option<String>,
    pub message: String,
}

impl SchemaError {
    fn new(id: Option<&str>, message: impl Into<String>) -> Self {
        SchemaError {
            id: id.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// One lexicon document.
#[derive(Debug, Clone, PartialEq)]
pub struct LexiconDoc {
    /// The NSID the document defines.
    pub id: String,
    pub revision: Option<i64>,
    pub description: Option<String>,
    /// Definitions by short name; `main` is the primary one.
    pub defs: BTreeMap<String, Def>,
}

impl LexiconDoc {
    /// Parses and checks a document from its JSON text.
    pub fn from_json(json: &str) -> Result<LexiconDoc, SchemaError> {
        let raw: RawDoc = serde_json::from_str(json).map_err(|e| parse_error(json_id(json), e))?;
        raw.finish()
    }

    /// Parses and checks a document from a JSON value.
    pub fn from_value(value: &Value) -> Result<LexiconDoc, SchemaError> {
        let id = value.get("id").and_then(Value::as_str);
        let raw = RawDoc::deserialize(value).map_err(|e| parse_error(id, e))?;
        raw.finish()
    }

    /// The `main` definition, if the document has one.
    pub fn main(&self) -> Option<&Def> {
        self.defs.get("main")
    }
}

/// Parses a JSON array of documents (the bundled set).
pub(crate) fn parse_many(json: &str) -> Result<Vec<LexiconDoc>, SchemaError> {
    let raw: Vec<RawDoc> = serde_json::from_str(json).map_err(|e| parse_error(None, e))?;
    raw.into_iter().map(RawDoc::finish).collect()
}

fn parse_error(id: Option<&str>, e: serde_json::Error) -> SchemaError {
    SchemaError::new(id, e.to_string())
}

/// The `id` of a JSON document, for error messages only (a cheap, lenient look).
fn json_id(json: &str) -> Option<&str> {
    let at = json.find("\"id\"")?;
    let rest = json[at + 4..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(&rest[..rest.find('"')?])
}

/// A named definition: what may appear under `defs`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Def {
    Record(Box<RecordDef>),
    Query(Box<QueryDef>),
    Procedure(Box<ProcedureDef>),
    Subscription(Box<SubscriptionDef>),
    PermissionSet(Box<PermissionSetDef>),
    Token(TokenDef),
    Object(ObjectDef),
    Array(ArrayDef),
    Boolean(BooleanDef),
    Integer(IntegerDef),
    String(StringDef),
    Bytes(BytesDef),
    CidLink(CidLinkDef),
    Blob(BlobDef),
}

impl Def {
    /// The schema language's name of this definition's type (`"record"`, `"object"`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Def::Record(_) => "record",
            Def::Query(_) => "query",
            Def::Procedure(_) => "procedure",
            Def::Subscription(_) => "subscription",
            Def::PermissionSet(_) => "permission-set",
            Def::Token(_) => "token",
            Def::Object(_) => "object",
            Def::Array(_) => "array",
            Def::Boolean(_) => "boolean",
            Def::Integer(_) => "integer",
            Def::String(_) => "string",
            Def::Bytes(_) => "bytes",
            Def::CidLink(_) => "cid-link",
            Def::Blob(_) => "blob",
        }
    }

    fn is_primary(&self) -> bool {
        matches!(
            self,
            Def::Record(_)
                | Def::Query(_)
                | Def::Procedure(_)
                | Def::Subscription(_)
                | Def::PermissionSet(_)
        )
    }

    /// The parameters of a query, procedure or subscription.
    pub fn parameters(&self) -> Option<&ParamsDef> {
        match self {
            Def::Query(q) => q.parameters.as_ref(),
            Def::Procedure(p) => p.parameters.as_ref(),
            Def::Subscription(s) => s.parameters.as_ref(),
            _ => None,
        }
    }
}

/// A schema for a value inside a record or body: an object property, array items, a body schema.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Field {
    Boolean(BooleanDef),
    Integer(IntegerDef),
    String(StringDef),
    Bytes(BytesDef),
    CidLink(CidLinkDef),
    Blob(BlobDef),
    Array(ArrayDef),
    Object(ObjectDef),
    Ref(RefDef),
    Union(UnionDef),
    Unknown(UnknownDef),
}

impl Field {
    /// The schema language's name of this field's type (`"string"`, `"ref"`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Field::Boolean(_) => "boolean",
            Field::Integer(_) => "integer",
            Field::String(_) => "string",
            Field::Bytes(_) => "bytes",
            Field::CidLink(_) => "cid-link",
            Field::Blob(_) => "blob",
            Field::Array(_) => "array",
            Field::Object(_) => "object",
            Field::Ref(_) => "ref",
            Field::Union(_) => "union",
            Field::Unknown(_) => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordDef {
    pub description: Option<String>,
    /// The record key type: `tid`, `nsid`, `any` or `literal:<value>`.
    pub key: Option<String>,
    #[serde(deserialize_with = "object_schema")]
    pub record: ObjectDef,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryDef {
    pub description: Option<String>,
    pub parameters: Option<ParamsDef>,
    pub output: Option<BodyDef>,
    #[serde(default)]
    pub errors: Vec<ErrorDef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcedureDef {
    pub description: Option<String>,
    pub parameters: Option<ParamsDef>,
    pub input: Option<BodyDef>,
    pub output: Option<BodyDef>,
    #[serde(default)]
    pub errors: Vec<ErrorDef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionDef {
    pub description: Option<String>,
    pub parameters: Option<ParamsDef>,
    pub message: Option<MessageDef>,
    #[serde(default)]
    pub errors: Vec<ErrorDef>,
}

/// The `parameters` of an XRPC method: named query-string values.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParamsDef {
    #[serde(rename = "type")]
    _type: ParamsTag,
    pub description: Option<String>,
    #[serde(default)]
    pub required: Vec<String>,
    /// Each is a boolean, integer, string or unknown, or an array of those.
    #[serde(default)]
    pub properties: BTreeMap<String, Field>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum ParamsTag {
    #[serde(rename = "params")]
    Params,
}

/// An XRPC input or output body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BodyDef {
    pub description: Option<String>,
    /// The MIME type, e.g. `application/json` or `*/*`.
    pub encoding: String,
    /// For JSON bodies: an object, a ref or a union.
    pub schema: Option<Field>,
}

/// A subscription's message schema.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageDef {
    pub description: Option<String>,
    pub schema: Option<Field>,
}

/// A named error an XRPC method may return.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDef {
    pub name: String,
    pub description: Option<String>,
}

/// A named set of OAuth permissions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionSetDef {
    pub description: Option<String>,
    pub title: Option<String>,
    /// Translations of `title`, by language tag.
    #[serde(rename = "title:lang")]
    pub title_lang: Option<BTreeMap<String, String>>,
    pub detail: Option<String>,
    #[serde(rename = "detail:lang")]
    pub detail_lang: Option<BTreeMap<String, String>>,
    pub permissions: Vec<Permission>,
}

/// One permission of a permission set: `{"type": "permission", "resource": ..., ...}`. The other
/// keys (`collection`, `action`, `lxm`, `aud`, `inheritAud`, ...) depend on the resource; their
/// values are strings, integers, booleans or arrays of those.
#[derive(Debug, Clone, PartialEq)]
pub struct Permission {
    pub resource: String,
    pub fields: BTreeMap<String, Value>,
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Value::Object(map) = Value::deserialize(d)? else {
            return Err(de::Error::custom("a permission must be an object"));
        };
        if map.get("type").and_then(Value::as_str) != Some("permission") {
            return Err(de::Error::custom(
                "a permission must have type \"permission\"",
            ));
        }
        let resource = match map.get("resource") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(de::Error::custom("a permission needs a non-empty resource")),
        };
        let scalar = |v: &Value| v.is_string() || v.is_boolean() || v.is_i64() || v.is_u64();
        let mut fields = BTreeMap::new();
        for (k, v) in map {
            if k == "type" || k == "resource" {
                continue;
            }
            let ok = scalar(&v) || v.as_array().is_some_and(|items| items.iter().all(scalar));
            if !ok {
                return Err(de::Error::custom(format!(
                    "permission field {k:?} must be a string, integer, boolean or an array of those"
                )));
            }
            fields.insert(k, v);
        }
        Ok(Permission { resource, fields })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenDef {
    pub description: Option<String>,
}

/// An object schema. `properties` are kept sorted by name, each with its `required` and
/// `nullable` flags, so validation needs one pass and no lookups in the lists.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDef {
    pub description: Option<String>,
    pub properties: Vec<Property>,
}

/// One property of an object schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub name: String,
    pub schema: Field,
    pub required: bool,
    pub nullable: bool,
}

impl ObjectDef {
    /// The property called `name`.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties
            .binary_search_by(|p| p.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.properties[i])
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawObject {
    description: Option<String>,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    nullable: Vec<String>,
    #[serde(default)]
    properties: BTreeMap<String, Field>,
}

impl<'de> Deserialize<'de> for ObjectDef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawObject::deserialize(d)?;
        if let Some(missing) = raw
            .required
            .iter()
            .find(|r| !raw.properties.contains_key(*r))
        {
            return Err(de::Error::custom(format!(
                "required property {missing:?} is not defined"
            )));
        }
        let properties = raw
            .properties
            .into_iter()
            .map(|(name, schema)| Property {
                required: raw.required.contains(&name),
                nullable: raw.nullable.contains(&name),
                name,
                schema,
            })
            .collect();
        Ok(ObjectDef {
            description: raw.description,
            properties,
        })
    }
}

/// `record` of a record definition: a `Field` that must be an object schema.
fn object_schema<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectDef, D::Error> {
    match Field::deserialize(d)? {
        Field::Object(o) => Ok(o),
        other => Err(de::Error::custom(format!(
            "a record's schema must be an object, not {}",
            other.type_name()
        ))),
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArrayDef {
    pub description: Option<String>,
    pub items: Box<Field>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BooleanDef {
    pub description: Option<String>,
    pub default: Option<bool>,
    #[serde(rename = "const")]
    pub const_value: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegerDef {
    pub description: Option<String>,
    pub default: Option<i64>,
    pub minimum: Option<i64>,
    pub maximum: Option<i64>,
    #[serde(rename = "enum")]
    pub enum_values: Option<Vec<i64>>,
    #[serde(rename = "const")]
    pub const_value: Option<i64>,
}

/// The `format` of a string schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StringFormat {
    AtIdentifier,
    AtUri,
    Cid,
    Datetime,
    Did,
    Handle,
    Nsid,
    Tid,
    RecordKey,
    Uri,
    Language,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StringDef {
    pub description: Option<String>,
    pub format: Option<StringFormat>,
    pub default: Option<String>,
    /// In UTF-8 bytes.
    pub min_length: Option<u64>,
    /// In UTF-8 bytes.
    pub max_length: Option<u64>,
    /// In extended grapheme clusters.
    pub min_graphemes: Option<u64>,
    /// In extended grapheme clusters.
    pub max_graphemes: Option<u64>,
    #[serde(rename = "enum")]
    pub enum_values: Option<Vec<String>>,
    #[serde(rename = "const")]
    pub const_value: Option<String>,
    /// Suggested values; not enforced.
    pub known_values: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BytesDef {
    pub description: Option<String>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CidLinkDef {
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobDef {
    pub description: Option<String>,
    /// Accepted MIME types; `image/*` and `*/*` patterns allowed. None accepts any.
    pub accept: Option<Vec<String>>,
    /// Largest accepted size in bytes.
    pub max_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RefDef {
    pub description: Option<String>,
    /// The referenced definition, normalized to `nsid#name`.
    #[serde(rename = "ref")]
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UnionDef {
    pub description: Option<String>,
    /// The member definitions, each normalized to `nsid#name`.
    pub refs: Vec<String>,
    /// A closed union accepts only its members; an open one also accepts objects whose `$type`
    /// is none of them (without checking them).
    #[serde(default)]
    pub closed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UnknownDef {
    pub description: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Document-level checks and reference normalization
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct RawDoc {
    lexicon: Value,
    id: String,
    revision: Option<i64>,
    description: Option<String>,
    defs: BTreeMap<String, Def>,
}

impl RawDoc {
    fn finish(self) -> Result<LexiconDoc, SchemaError> {
        let id = self.id.as_str();
        let err = |m: String| SchemaError::new(Some(id), m);
        if self.lexicon.as_u64() != Some(1) {
            return Err(err(format!(
                "\"lexicon\" must be the integer 1, not {}",
                self.lexicon
            )));
        }
        if Nsid::new(id).is_err() {
            return Err(err("\"id\" is not a valid NSID".into()));
        }
        if self.defs.is_empty() {
            return Err(err("a lexicon must have at least one definition".into()));
        }
        let mut defs = self.defs;
        for (name, def) in &mut defs {
            if name.is_empty() {
                return Err(err("definition names must not be empty".into()));
            }
            if def.is_primary() && name != "main" {
                return Err(err(format!(
                    "{} definition {name:?} must be the main definition",
                    def.type_name()
                )));
            }
            normalize_def(def, id).map_err(|m| err(format!("#{name}: {m}")))?;
        }
        Ok(LexiconDoc {
            id: self.id,
            revision: self.revision,
            description: self.description,
            defs,
        })
    }
}

fn normalize_def(def: &mut Def, id: &str) -> Result<(), String> {
    match def {
        Def::Record(r) => normalize_object(&mut r.record, id),
        Def::Query(q) => {
            check_params(q.parameters.as_ref())?;
            normalize_body(q.output.as_mut(), id)
        }
        Def::Procedure(p) => {
            check_params(p.parameters.as_ref())?;
            normalize_body(p.input.as_mut(), id)?;
            normalize_body(p.output.as_mut(), id)
        }
        Def::Subscription(s) => {
            check_params(s.parameters.as_ref())?;
            match s.message.as_mut().and_then(|m| m.schema.as_mut()) {
                Some(schema) => normalize_body_schema(schema, id),
                None => Ok(()),
            }
        }
        Def::PermissionSet(p) => {
            for langs in [&p.title_lang, &p.detail_lang].into_iter().flatten() {
                if let Some(bad) = langs.keys().find(|l| !Language::is_well_formed(l)) {
                    return Err(format!("{bad:?} is not a language tag"));
                }
            }
            Ok(())
        }
        Def::Object(o) => normalize_object(o, id),
        Def::Array(a) => normalize_field(&mut a.items, id),
        Def::Token(_)
        | Def::Boolean(_)
        | Def::Integer(_)
        | Def::String(_)
        | Def::Bytes(_)
        | Def::CidLink(_)
        | Def::Blob(_) => Ok(()),
    }
}

fn normalize_object(o: &mut ObjectDef, id: &str) -> Result<(), String> {
    for p in &mut o.properties {
        normalize_field(&mut p.schema, id).map_err(|m| format!("{}: {m}", p.name))?;
    }
    Ok(())
}

fn normalize_field(f: &mut Field, id: &str) -> Result<(), String> {
    match f {
        Field::Ref(r) => r.target = normalize_ref(&r.target, id)?,
        Field::Union(u) => {
            for r in &mut u.refs {
                *r = normalize_ref(r, id)?;
            }
        }
        Field::Array(a) => normalize_field(&mut a.items, id)?,
        Field::Object(o) => normalize_object(o, id)?,
        Field::Boolean(_)
        | Field::Integer(_)
        | Field::String(_)
        | Field::Bytes(_)
        | Field::CidLink(_)
        | Field::Blob(_)
        | Field::Unknown(_) => {}
    }
    Ok(())
}

fn check_params(p: Option<&ParamsDef>) -> Result<(), String> {
    let Some(p) = p else { return Ok(()) };
    if let Some(missing) = p.required.iter().find(|r| !p.properties.contains_key(*r)) {
        return Err(format!("required parameter {missing:?} is not defined"));
    }
    let primitive = |f: &Field| {
        matches!(
            f,
            Field::Boolean(_) | Field::Integer(_) | Field::String(_) | Field::Unknown(_)
        )
    };
    for (name, f) in &p.properties {
        let ok = match f {
            Field::Array(a) => primitive(&a.items),
            other => primitive(other),
        };
        if !ok {
            return Err(format!(
                "parameter {name:?} must be a boolean, integer, string or unknown, or an array of those"
            ));
        }
    }
    Ok(())
}

fn normalize_body(b: Option<&mut BodyDef>, id: &str) -> Result<(), String> {
    match b.and_then(|b| b.schema.as_mut()) {
        Some(schema) => normalize_body_schema(schema, id),
        None => Ok(()),
    }
}

fn normalize_body_schema(schema: &mut Field, id: &str) -> Result<(), String> {
    if !matches!(schema, Field::Object(_) | Field::Ref(_) | Field::Union(_)) {
        return Err(format!(
            "a body schema must be an object, ref or union, not {}",
            schema.type_name()
        ));
    }
    normalize_field(schema, id)
}

/// `#name` -> `<id>#name`; `nsid` -> `nsid#main`; `nsid#name` kept. Anything else is an error.
pub(crate) fn normalize_ref(r: &str, id: &str) -> Result<String, String> {
    let (nsid, name) = match r.split_once('#') {
        Some(("", name)) => (id, name),
        Some((nsid, name)) => (nsid, name),
        None => (r, "main"),
    };
    if name.is_empty() || name.contains('#') {
        return Err(format!("bad reference {r:?}"));
    }
    if nsid != id && Nsid::new(nsid).is_err() {
        return Err(format!("bad reference {r:?}: not an NSID"));
    }
    Ok(format!("{nsid}#{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(defs: Value) -> Result<LexiconDoc, SchemaError> {
        LexiconDoc::from_value(&json!({"lexicon": 1, "id": "com.example.test", "defs": defs}))
    }

    #[test]
    fn refs_are_normalized() {
        let d = doc(json!({
            "main": {"type": "object", "properties": {
                "a": {"type": "ref", "ref": "#other"},
                "b": {"type": "union", "refs": ["com.example.thing", "com.example.thing#x"]},
                "c": {"type": "array", "items": {"type": "ref", "ref": "com.example.z"}},
            }},
            "other": {"type": "token"},
        }))
        .unwrap();
        let Some(Def::Object(o)) = d.main() else {
            panic!()
        };
        let Field::Ref(a) = &o.property("a").unwrap().schema else {
            panic!()
        };
        assert_eq!(a.target, "com.example.test#other");
        let Field::Union(b) = &o.property("b").unwrap().schema else {
            panic!()
        };
        assert_eq!(b.refs, ["com.example.thing#main", "com.example.thing#x"]);
        let Field::Array(c) = &o.property("c").unwrap().schema else {
            panic!()
        };
        assert_eq!(
            *c.items,
            Field::Ref(RefDef {
                description: None,
                target: "com.example.z#main".into()
            })
        );
    }

    #[test]
    fn bad_documents_are_rejected() {
        assert!(doc(json!({})).is_err(), "no defs");
        assert!(doc(json!({"main": {"type": "query"}, "x": {"type": "procedure"}})).is_err());
        assert!(doc(json!({"x": {"type": "permission-set", "permissions": []}})).is_err());
        assert!(doc(json!({"x": {"type": "union", "refs": []}})).is_err());
        assert!(doc(json!({"x": {"type": "params"}})).is_err());
        assert!(doc(json!({"x": {"type": "string", "format": "colour"}})).is_err());
        assert!(
            doc(json!({"x": {"type": "object", "required": ["a"], "properties": {}}})).is_err()
        );
        assert!(
            doc(json!({"x": {"type": "object", "properties": {
            "a": {"type": "ref", "ref": "not an nsid"}}}}))
            .is_err()
        );
        assert!(
            doc(
                json!({"main": {"type": "query", "parameters": {"type": "params",
            "properties": {"a": {"type": "blob"}}}}})
            )
            .is_err()
        );
        assert!(
            doc(
                json!({"main": {"type": "procedure", "input": {"encoding": "application/json",
            "schema": {"type": "string"}}}})
            )
            .is_err()
        );
        let err = doc(json!({"x": {"type": "record", "record": {"type": "object"}}})).unwrap_err();
        assert_eq!(err.id.as_deref(), Some("com.example.test"));
        assert!(err.to_string().contains("main"), "{err}");
    }

    #[test]
    fn object_flags() {
        let d = doc(
            json!({"main": {"type": "object", "required": ["b"], "nullable": ["a"],
            "properties": {"b": {"type": "integer"}, "a": {"type": "string"}}}}),
        )
        .unwrap();
        let Some(Def::Object(o)) = d.main() else {
            panic!()
        };
        let names: Vec<_> = o.properties.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(o.property("a").unwrap().nullable && !o.property("a").unwrap().required);
        assert!(o.property("b").unwrap().required && !o.property("b").unwrap().nullable);
        assert!(o.property("c").is_none());
    }

    #[test]
    fn from_json_reports_the_id() {
        let err = LexiconDoc::from_json(r#"{"lexicon": 1, "id": "com.example.x", "defs": 3}"#)
            .unwrap_err();
        assert_eq!(err.id.as_deref(), Some("com.example.x"));
    }
}
