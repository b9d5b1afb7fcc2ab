//! AT Protocol identifier syntax: parsing and validating the strings atproto
//! uses to name things.
//!
//! # What this crate owns
//!
//! One validated newtype per identifier, each in its own module:
//!
//! | type | example | module |
//! |---|---|---|
//! | [`Did`] | `did:plc:7iza6de2dwap2sbkpav7c6c6` | `did` |
//! | [`Handle`] | `alice.bsky.social` | `handle` |
//! | [`AtIdentifier`] | a DID or a handle | `at_identifier` |
//! | [`Nsid`] | `app.bsky.feed.post` | `nsid` |
//! | [`RecordKey`] | `3jzfcijpj2z2a`, `self` | `record_key` |
//! | [`AtUri`] | `at://did:plc:…/app.bsky.feed.post/3jzfcijpj2z2a` | `at_uri` |
//! | [`Tid`] (+ [`TidClock`]) | `3jzfcijpj2z2a` | `tid` |
//! | [`Datetime`] | `1985-04-12T23:20:50.123Z` | `datetime` |
//! | [`Language`] | `pt-BR` | `language` |
//!
//! plus two plain checks for Lexicon string formats that have no type of
//! their own here: [`is_valid_cid_syntax`] and [`is_valid_uri`].
//!
//! A value of one of these types is valid by construction: `new`, `FromStr`,
//! `TryFrom<String>` and serde's `Deserialize` all validate, so code that
//! receives a `Did` never re-checks it. Each type serializes as a plain
//! string, keeps the string exactly as given, and fails with the one error
//! type [`SyntaxError`].
//!
//! # What it must not touch
//!
//! No I/O and no other crate of the workspace: no DNS or DID resolution
//! (whether `alice.test` or `did:plc:…` *exists* is someone else's job), no
//! Lexicon schemas, no CID decoding (that is the IPLD crate's), no storage.
//! It only answers "is this string well-formed, and what are its parts".
//! The one piece of state is the process-wide [`TidClock`] behind
//! [`Tid::now`].
//!
//! Validation is hand-written byte scanning (no regex), since these checks
//! run on every request. The rules follow the atproto specs and are pinned by
//! the community interop test vectors (`tests/interop.rs`).

mod at_identifier;
mod at_uri;
mod cid;
mod datetime;
mod did;
mod error;
mod handle;
mod language;
mod nsid;
mod record_key;
mod string_type;
mod tid;
mod uri;

pub use at_identifier::AtIdentifier;
pub use at_uri::AtUri;
pub use cid::is_valid_cid_syntax;
pub use datetime::Datetime;
pub use did::Did;
pub use error::SyntaxError;
pub use handle::Handle;
pub use language::Language;
pub use nsid::Nsid;
pub use record_key::RecordKey;
pub use tid::{MAX_CLOCK_ID, MAX_TIMESTAMP_MICROS, Tid, TidClock};
pub use uri::is_valid_uri;
