//! A set of lexicon documents that resolve each other's references, and the entry points of
//! validation.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use foldhash::fast::RandomState;
use pds_ipld::Ipld;
use pds_syntax::{Nsid, RecordKey, Tid};

use crate::params::{self, Params};
use crate::schema::{BodyDef, Def, Field, LexiconDoc, RecordDef, SchemaError};
use crate::validate::{Fail, ValidationError, Validator};

/// Lexicon documents by NSID. Parsed once; validation borrows the schemas and copies nothing.
///
/// References between documents resolve at validation time, so documents may be added in any
/// order, and a catalog may have references to documents it lacks
/// ([`Catalog::unresolved_refs`] lists them); a value that reaches one fails validation.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    docs: HashMap<String, LexiconDoc, RandomState>,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Every `com.atproto.*`, `app.bsky.*`, `chat.bsky.*` and `tools.ozone.*` schema, embedded
    /// at build time (see [`crate::BUNDLED_SOURCE`]). Parsed on first use (about 20 ms in a
    /// release build), then shared. To add the server's own schemas, extend a copy:
    /// `let mut c = Catalog::bundled().clone(); c.add_dir(path)?;`.
    pub fn bundled() -> &'static Catalog {
        static BUNDLED: OnceLock<Catalog> = OnceLock::new();
        BUNDLED.get_or_init(|| {
            Catalog::from_docs(
                crate::schema::parse_many(crate::BUNDLED_JSON)
                    .expect("the bundled lexicons parse (checked by this crate's tests)"),
            )
            .expect("the bundled lexicons have distinct ids")
        })
    }

    /// A catalog of the given documents.
    pub fn from_docs(docs: impl IntoIterator<Item = LexiconDoc>) -> Result<Catalog, SchemaError> {
        let mut catalog = Catalog::new();
        for doc in docs {
            catalog.add(doc)?;
        }
        Ok(catalog)
    }

    /// A catalog of every `*.json` file below `dir` (searched recursively), each of which must be
    /// a valid lexicon document.
    pub fn from_dir(dir: &Path) -> Result<Catalog, SchemaError> {
        let mut catalog = Catalog::new();
        catalog.add_dir(dir)?;
        Ok(catalog)
    }

    /// Adds every `*.json` file below `dir` (recursively); returns how many were added.
    pub fn add_dir(&mut self, dir: &Path) -> Result<usize, SchemaError> {
        let io = |path: &Path, e: std::io::Error| SchemaError {
            id: None,
            message: format!("reading {}: {e}", path.display()),
        };
        let mut added = 0;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .map_err(|e| io(&dir, e))?
                .map(|entry| entry.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .map_err(|e| io(&dir, e))?;
            entries.sort();
            for path in entries {
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "json") {
                    let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
                    let doc = LexiconDoc::from_json(&text).map_err(|e| SchemaError {
                        message: format!("{}: {}", path.display(), e.message),
                        ..e
                    })?;
                    self.add(doc)?;
                    added += 1;
                }
            }
        }
        Ok(added)
    }

    /// Adds a document. Its id must not be in the catalog already.
    pub fn add(&mut self, doc: LexiconDoc) -> Result<(), SchemaError> {
        if self.docs.contains_key(&doc.id) {
            return Err(SchemaError {
                message: "a lexicon with this id is already in the catalog".into(),
                id: Some(doc.id),
            });
        }
        self.docs.insert(doc.id.clone(), doc);
        Ok(())
    }

    /// Parses a document from JSON text and adds it.
    pub fn add_json(&mut self, json: &str) -> Result<(), SchemaError> {
        self.add(LexiconDoc::from_json(json)?)
    }

    /// The document with this NSID.
    pub fn get(&self, nsid: &str) -> Option<&LexiconDoc> {
        self.docs.get(nsid)
    }

    /// Whether the catalog has a document with this NSID.
    pub fn contains(&self, nsid: &str) -> bool {
        self.docs.contains_key(nsid)
    }

    /// A definition by reference: `nsid#name`, or `nsid` for its `main`.
    pub fn def(&self, reference: &str) -> Option<&Def> {
        let (nsid, name) = reference.split_once('#').unwrap_or((reference, "main"));
        self.docs.get(nsid)?.defs.get(name)
    }

    /// How many documents the catalog holds.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The documents, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &LexiconDoc> {
        self.docs.values()
    }

    /// Every reference that names a definition the catalog lacks, as
    /// `(definition holding it as "nsid#name", reference)`, sorted.
    pub fn unresolved_refs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for doc in self.docs.values() {
            for (name, def) in &doc.defs {
                let mut missing = |r: &str| {
                    if self.def(r).is_none() {
                        out.push((format!("{}#{name}", doc.id), r.to_owned()));
                    }
                };
                for_each_ref(def, &mut missing);
            }
        }
        out.sort();
        out
    }

    /// The record definition of `nsid`.
    fn record_def(&self, nsid: &str) -> Result<&RecordDef, ValidationError> {
        match self.def(nsid) {
            Some(Def::Record(r)) => Ok(r),
            Some(other) => Err(ValidationError::invalid(
                "Record",
                format!(
                    "cannot be stored: {nsid} is a {} lexicon, not a record",
                    other.type_name()
                ),
            )),
            None => Err(ValidationError::unknown(nsid)),
        }
    }

    /// Validates a record (an object whose `$type` is `nsid`) against the record schema of
    /// `nsid`. [`ValidationError::UnknownLexicon`] if the catalog has no document `nsid`.
    pub fn validate_record(&self, nsid: &str, value: &Ipld) -> Result<(), ValidationError> {
        let def = self.record_def(nsid)?;
        let Ipld::Map(map) = value else {
            return Err(ValidationError::invalid("Record", "must be an object"));
        };
        match map.get("$type") {
            Some(Ipld::String(t)) if t == nsid => {}
            Some(Ipld::String(t)) => {
                return Err(ValidationError::invalid(
                    "Record/$type",
                    format!("must be {nsid}, got {t}"),
                ));
            }
            _ => return Err(ValidationError::invalid("Record/$type", "must be a string")),
        }
        Validator { catalog: self }
            .object(&def.record, value, 0)
            .map_err(|f| f.into_error("Record"))
    }

    /// Checks a record key against the key type of `nsid`'s record schema (`tid`, `nsid`,
    /// `literal:<value>`, `any`). Every key must also be a valid record key.
    pub fn validate_record_key(&self, nsid: &str, rkey: &str) -> Result<(), ValidationError> {
        let def = self.record_def(nsid)?;
        let bad = |m: String| Err(ValidationError::invalid("Record key", m));
        if RecordKey::new(rkey).is_err() {
            return bad("must be a valid Record Key".into());
        }
        match def.key.as_deref() {
            Some("tid") if Tid::new(rkey).is_err() => {
                bad(format!("must be a TID for {nsid} records"))
            }
            Some("nsid") if Nsid::new(rkey).is_err() => {
                bad(format!("must be an NSID for {nsid} records"))
            }
            Some(key) => match key.strip_prefix("literal:") {
                Some(literal) if literal != rkey => {
                    bad(format!("must be {literal:?} for {nsid} records"))
                }
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Validates a value against any object-like definition (`nsid#name` or `nsid`), e.g. one
    /// preference of `app.bsky.actor.defs`. Paths start with `Object`.
    pub fn validate_value(&self, reference: &str, value: &Ipld) -> Result<(), ValidationError> {
        let def = self
            .def(reference)
            .ok_or_else(|| ValidationError::unknown(reference))?;
        Validator { catalog: self }
            .def(def, value, 0)
            .map_err(|f| f.into_error("Object"))
    }

    /// Decodes and validates the query-string parameters of the XRPC method `nsid` (a query,
    /// procedure or subscription). See [`Params`] for the rules.
    pub fn validate_params<K: AsRef<str>, V: AsRef<str>>(
        &self,
        nsid: &str,
        query: &[(K, V)],
    ) -> Result<Params, ValidationError> {
        match self.def(nsid) {
            Some(def @ (Def::Query(_) | Def::Procedure(_) | Def::Subscription(_))) => {
                match def.parameters() {
                    Some(p) => params::decode(p, query),
                    None => Ok(Params::default()),
                }
            }
            Some(other) => Err(not_a_method(nsid, other)),
            None => Err(ValidationError::unknown(nsid)),
        }
    }

    /// Validates the JSON input body (as IPLD) of the procedure `nsid`. A procedure without an
    /// input schema (no input, or a non-JSON one such as a blob upload) accepts anything.
    pub fn validate_input(&self, nsid: &str, value: &Ipld) -> Result<(), ValidationError> {
        match self.def(nsid) {
            Some(Def::Procedure(p)) => self.validate_body(p.input.as_ref(), "Input", value),
            Some(other) => Err(not_a_method(nsid, other)),
            None => Err(ValidationError::unknown(nsid)),
        }
    }

    /// Validates the JSON output body of the query or procedure `nsid`.
    pub fn validate_output(&self, nsid: &str, value: &Ipld) -> Result<(), ValidationError> {
        match self.def(nsid) {
            Some(Def::Procedure(p)) => self.validate_body(p.output.as_ref(), "Output", value),
            Some(Def::Query(q)) => self.validate_body(q.output.as_ref(), "Output", value),
            Some(other) => Err(not_a_method(nsid, other)),
            None => Err(ValidationError::unknown(nsid)),
        }
    }

    fn validate_body(
        &self,
        body: Option<&BodyDef>,
        root: &str,
        value: &Ipld,
    ) -> Result<(), ValidationError> {
        let Some(schema) = body.and_then(|b| b.schema.as_ref()) else {
            return Ok(());
        };
        if !matches!(value, Ipld::Map(_)) {
            return Err(ValidationError::invalid(root, "must be an object"));
        }
        Validator { catalog: self }
            .field(schema, value, 0)
            .map_err(|f: Fail| f.into_error(root))
    }
}

fn not_a_method(nsid: &str, def: &Def) -> ValidationError {
    ValidationError::invalid(
        "Params",
        format!(
            "cannot be checked: {nsid} is a {} lexicon, not an XRPC method",
            def.type_name()
        ),
    )
}

/// Calls `f` with every reference (ref target or union member) in a definition.
fn for_each_ref(def: &Def, f: &mut impl FnMut(&str)) {
    let body = |b: &Option<BodyDef>, f: &mut dyn FnMut(&str)| {
        if let Some(schema) = b.as_ref().and_then(|b| b.schema.as_ref()) {
            field_refs(schema, f);
        }
    };
    match def {
        Def::Record(r) => r
            .record
            .properties
            .iter()
            .for_each(|p| field_refs(&p.schema, f)),
        Def::Object(o) => o.properties.iter().for_each(|p| field_refs(&p.schema, f)),
        Def::Array(a) => field_refs(&a.items, f),
        Def::Query(q) => body(&q.output, f),
        Def::Procedure(p) => {
            body(&p.input, f);
            body(&p.output, f);
        }
        Def::Subscription(s) => {
            if let Some(schema) = s.message.as_ref().and_then(|m| m.schema.as_ref()) {
                field_refs(schema, f);
            }
        }
        _ => {}
    }
}

fn field_refs(field: &Field, f: &mut dyn FnMut(&str)) {
    match field {
        Field::Ref(r) => f(&r.target),
        Field::Union(u) => u.refs.iter().for_each(|r| f(r)),
        Field::Array(a) => field_refs(&a.items, f),
        Field::Object(o) => o.properties.iter().for_each(|p| field_refs(&p.schema, f)),
        _ => {}
    }
}
