//! Account signing keys for repo commits, decoded once.
//!
//! Every write signs a commit with the account's key. Reading the stored key is one indexed
//! lookup inside the write's own transaction; decoding it (a scalar multiplication for the
//! public key) is what the cache saves. A cached key is used only while the stored bytes are
//! the same, so a key replaced in the database (an account re-created or migrated back in) can
//! never be signed with again, without anyone having to tell the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pds_crypto::{Algorithm, Keypair};
use rusqlite::{Connection, OptionalExtension};

use super::RecordError;

/// Past this many accounts the cache starts over (it refills as accounts write).
const CAPACITY: usize = 65_536;

/// The cache; cheap to clone (clones share it).
#[derive(Clone, Default)]
pub struct SigningKeys {
    inner: Arc<Mutex<HashMap<String, Keypair>>>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys").finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// The signing key of `did` as stored in `conn` now, for an account allowed to write:
    /// [`RecordError::AccountNotFound`], `AccountTakedown` or `AccountDeactivated` otherwise.
    /// Run inside the write's transaction, so the answer holds for that commit.
    pub fn for_write(&self, conn: &Connection, did: &str) -> Result<Keypair, RecordError> {
        // The account table is the accounts module's (src/accounts/schema.rs); only the raw key
        // bytes are read here, to compare them without decoding.
        let row: Option<(Vec<u8>, bool, bool)> = conn
            .prepare_cached(
                "SELECT signing_key, deactivated_at IS NOT NULL, takedown_ref IS NOT NULL
                 FROM account WHERE did = ?1",
            )?
            .query_row([did], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let (bytes, deactivated, takendown) = row.ok_or(RecordError::AccountNotFound)?;
        if takendown {
            return Err(RecordError::AccountTakedown);
        }
        if deactivated {
            return Err(RecordError::AccountDeactivated);
        }
        let mut cache = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = cache.get(did)
            && key.private_bytes().as_slice() == bytes.as_slice()
        {
            return Ok(key.clone());
        }
        let key = Keypair::from_private_bytes(Algorithm::K256, &bytes)
            .map_err(|e| RecordError::Internal(format!("stored signing key of {did}: {e}")))?;
        if cache.len() >= CAPACITY {
            cache.clear();
        }
        cache.insert(did.to_owned(), key.clone());
        Ok(key)
    }
}
