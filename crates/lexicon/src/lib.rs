//! Lexicon schemas, and validation of records and XRPC calls against them.
//!
//! # What this crate owns
//!
//! - **Schema documents** ([`LexiconDoc`], module `schema`): parsing `{"lexicon": 1, "id", "defs"}`
//!   documents of every type the language has (record, query, procedure, subscription,
//!   permission-set, object, token, string, integer, boolean, bytes, cid-link, blob, array,
//!   union, ref, unknown, params) and rejecting invalid ones.
//! - **A [`Catalog`]** of documents that resolves references (`#local`, `nsid#def`, `nsid` for
//!   its `main`), and [`Catalog::bundled`]: the real `com.atproto.*`, `app.bsky.*`,
//!   `chat.bsky.*` and `tools.ozone.*` schemas, embedded at build time from a crates.io package
//!   (see `build.rs`; nothing upstream is copied into this repository).
//! - **Validation** of data model values ([`pds_ipld::Ipld`], what the server holds after parsing
//!   a JSON body or decoding CBOR): records ([`validate_record`], [`Catalog::validate_record`]),
//!   record keys, XRPC query parameters from URL strings into typed values
//!   ([`Catalog::validate_params`] -> [`Params`]), and XRPC input and output bodies. Failures
//!   are a [`ValidationError`]: either [`ValidationError::UnknownLexicon`] (the PDS accepts
//!   records of unknown collections when the client did not ask for validation) or
//!   [`ValidationError::Invalid`] naming the path like the reference implementation does:
//!   `Record/text must not be longer than 300 graphemes`.
//!
//! Validation walks the value and the parsed schema together and allocates nothing unless it
//! fails; schemas are parsed once (the bundled set on first use of [`Catalog::bundled`]).
//!
//! # What it must not touch
//!
//! No I/O besides [`Catalog::from_dir`]/[`Catalog::add_dir`] reading schema files it is pointed
//! at, no network, no storage, no HTTP. Identifier syntax is `pds-syntax`'s and the data model is
//! `pds-ipld`'s: this crate calls them and re-implements neither. It does not decide policy
//! (whether to validate, what to do with an unknown collection), does not check that a blob a
//! record references exists or has the declared size and type (the blob store does), and does
//! not apply schema defaults to stored records (records are kept as the client signed them).

mod catalog;
mod formats;
mod params;
mod schema;
mod validate;

pub use catalog::Catalog;
pub use formats::{check_format, grapheme_len};
pub use params::{ParamValue, Params};
pub use schema::{
    ArrayDef, BlobDef, BodyDef, BooleanDef, BytesDef, CidLinkDef, Def, ErrorDef, Field, IntegerDef,
    LexiconDoc, MessageDef, ObjectDef, ParamsDef, Permission, PermissionSetDef, ProcedureDef,
    Property, QueryDef, RecordDef, RefDef, SchemaError, StringDef, StringFormat, SubscriptionDef,
    TokenDef, UnionDef, UnknownDef,
};
pub use validate::{ValidationError, mime_accepted};

use pds_ipld::Ipld;

include!(concat!(env!("OUT_DIR"), "/bundled_meta.rs"));

/// The bundled schema documents: a JSON array, each document verbatim as published.
pub const BUNDLED_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/bundled_lexicons.json"));

/// Validates a record against the record schema of `nsid` in `catalog`: the same as
/// [`Catalog::validate_record`].
pub fn validate_record(catalog: &Catalog, nsid: &str, value: &Ipld) -> Result<(), ValidationError> {
    catalog.validate_record(nsid, value)
}

#[cfg(test)]
mod bundled_tests;
