//! did:plc, the DID method of every atproto account on this server.
//!
//! # What this crate owns
//!
//! - **Operations** ([`op`]): `plc_operation` (rotation keys, the `atproto`
//!   verification method, `at://` aliases, the `atproto_pds` service,
//!   `prev`, `sig`), `plc_tombstone`, and reading the legacy `create`
//!   genesis format. Their JSON and DAG-CBOR forms; signing (`sig` =
//!   base64url, no padding, of the 64-byte low-S ECDSA signature over the
//!   DAG-CBOR of the operation without `sig`, by a k256 or p256 rotation
//!   key); CIDs (v1, dag-cbor, sha2-256 of the signed operation, which the
//!   next operation's `prev` names); and DIDs (`did:plc:` + the first 24
//!   characters of base32 of sha256 of the signed genesis operation).
//! - **Log rules** ([`log`]): whether an operation may follow a DID's log:
//!   the genesis derives the DID, `prev` names an earlier active operation,
//!   the signature is by a rotation key of that operation, a fork (recovery)
//!   needs a higher-priority key and at most 72 hours, a tombstone ends the
//!   DID. The same rules verify a whole audit log from any directory.
//! - **Submission checks** ([`validate`]): format, sizes and counts of a
//!   submitted operation, plus syntax (handles, did:keys, endpoints).
//! - **State rendering** ([`document`]): the `GET /:did` DID document and
//!   the `GET /:did/data` state.
//! - **A PLC directory** ([`store`], [`server`]): a SQLite store (WAL, one
//!   immediate transaction per submission, so submissions are serialized)
//!   and an axum router with the public directory's endpoints and error
//!   shapes; [`server::run`] is `pds plc serve`.
//! - **A client** ([`client`]): submit operations, read documents, state and
//!   logs, with a 10 s timeout and a 1 MiB response cap.
//!
//! # What it must not touch
//!
//! Accounts, repositories, handles' DNS/HTTPS resolution and DID caching
//! (the identity and server layers decide *when* to create or update a DID;
//! this crate only builds, checks, stores and transports operations). It
//! keeps no private keys: callers pass a [`pds_crypto::Keypair`] to sign
//! with. Its only files are the SQLite database it is given; its only
//! network use is the directory URL it is given.
//!
//! # Example
//!
//! ```
//! use pds_crypto::{Algorithm, Keypair};
//! use pds_plc::{PlcData, UnsignedOp, validate_next_op, Timestamp};
//!
//! let rotation = Keypair::generate(Algorithm::K256);
//! let signing = Keypair::generate(Algorithm::K256);
//! let data = PlcData::atproto(
//!     "alice.example.com",
//!     "https://pds.example.com",
//!     &signing.did_key(),
//!     vec![rotation.did_key()],
//! );
//! let genesis = UnsignedOp::genesis(data).sign(&rotation);
//! let did = genesis.did().unwrap(); // "did:plc:..." (32 characters)
//! let accepted = validate_next_op(&did, &[], &genesis, Timestamp::now()).unwrap();
//! assert_eq!(accepted.cid, genesis.cid());
//! ```

pub mod client;
pub mod document;
mod error;
pub mod log;
pub mod op;
pub mod server;
pub mod store;
mod time;
pub mod validate;

pub use client::PlcClient;
pub use document::{DidDocument, DocumentData};
pub use error::PlcError;
pub use log::{
    Accepted, LogEntry, RECOVERY_WINDOW_MS, validate_next_op, verified_state, verify_audit_log,
};
pub use op::{PlcData, Service, SignedOp, UnsignedOp, is_plc_did};
pub use server::router;
pub use store::Store;
pub use time::Timestamp;
