//! Signed repository commits (version 3).
//!
//! A commit is DAG-CBOR `{did, version: 3, data, rev, prev: null, sig}`. The signature is ECDSA
//! (low-S, 64-byte r||s) over sha256 of the DAG-CBOR of the same object without `sig`.

use cid::Cid;
use pds_crypto::{Keypair, PublicKey};
use serde::{Deserialize, Serialize};

use crate::{RepoError, Result};

/// The only commit version this implementation writes or accepts.
pub const COMMIT_VERSION: u64 = 3;

/// A commit before signing. Fields are declared in DAG-CBOR's canonical key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnsignedCommit {
    pub did: String,
    pub rev: String,
    /// The MST root.
    pub data: Cid,
    /// Always `null` in version 3, but always present.
    pub prev: Option<Cid>,
    pub version: u64,
}

/// A signed commit, as stored in its block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub did: String,
    pub rev: String,
    #[serde(with = "serde_bytes")]
    pub sig: Vec<u8>,
    pub data: Cid,
    pub prev: Option<Cid>,
    pub version: u64,
}

impl UnsignedCommit {
    pub fn new(did: &str, data: Cid, rev: &str) -> Self {
        UnsignedCommit {
            did: did.to_owned(),
            rev: rev.to_owned(),
            data,
            prev: None,
            version: COMMIT_VERSION,
        }
    }

    /// The bytes the signature covers.
    pub fn signing_bytes(&self) -> Result<Vec<u8>> {
        Ok(pds_ipld::to_cbor(self)?)
    }

    pub fn sign(self, key: &Keypair) -> Result<Commit> {
        let sig = key.sign(&self.signing_bytes()?).to_vec();
        Ok(Commit {
            did: self.did,
            rev: self.rev,
            sig,
            data: self.data,
            prev: self.prev,
            version: self.version,
        })
    }
}

impl Commit {
    pub fn unsigned(&self) -> UnsignedCommit {
        UnsignedCommit {
            did: self.did.clone(),
            rev: self.rev.clone(),
            data: self.data,
            prev: self.prev,
            version: self.version,
        }
    }

    /// Checks the signature against the account's signing key.
    pub fn verify(&self, key: &PublicKey) -> Result<()> {
        let bytes = self.unsigned().signing_bytes()?;
        key.verify(&bytes, &self.sig)
            .map_err(|e| RepoError::BadSignature(e.to_string()))
    }

    /// The commit's block: its CID and canonical bytes.
    pub fn to_block(&self) -> Result<(Cid, Vec<u8>)> {
        Ok(pds_ipld::encode_block(self)?)
    }

    /// Decodes and checks a commit block: strict DAG-CBOR, version 3, a valid DID and rev.
    pub fn from_block(cid: &Cid, bytes: &[u8]) -> Result<Commit> {
        let malformed = |reason: String| RepoError::Malformed {
            what: "commit",
            cid: Box::new(*cid),
            reason,
        };
        let commit: Commit = pds_ipld::from_cbor(bytes).map_err(|e| malformed(e.to_string()))?;
        if commit.version != COMMIT_VERSION {
            return Err(malformed(format!("unsupported version {}", commit.version)));
        }
        pds_syntax::Did::new(&commit.did).map_err(|e| malformed(format!("did: {e}")))?;
        pds_syntax::Tid::new(&commit.rev).map_err(|e| malformed(format!("rev: {e}")))?;
        Ok(commit)
    }
}
