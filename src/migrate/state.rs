//! What a migration must remember between runs that neither host can tell it: the DID operation
//! the old host signed but that was not yet submitted. Signing uses up the e-mailed code, so a
//! migration stopped between signing and submitting would otherwise need a new code.
//!
//! Everything else a re-run works out from the hosts themselves (is the account there, is its
//! repo at the old host's commit, which blobs are missing, where does the DID point).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The state file of one migration.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn new(path: PathBuf) -> StateFile {
        StateFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The signed operation saved for `did`, if any.
    pub fn signed_operation(&self, did: &str) -> Result<Option<Value>, String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("reading {}: {e}", self.path.display())),
        };
        let state: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a migration state file: {e}", self.path.display()))?;
        if state["did"].as_str() != Some(did) {
            return Err(format!(
                "{} belongs to the migration of {}, not {did}: name another with --state-file",
                self.path.display(),
                state["did"]
            ));
        }
        Ok(state
            .get("signedOperation")
            .filter(|op| op.is_object())
            .cloned())
    }

    /// Saves `operation` for `did`, durably (written aside, synced, renamed into place): the
    /// moment this returns, a crash cannot lose it.
    pub fn save_signed_operation(&self, did: &str, operation: &Value) -> Result<(), String> {
        self.write(&json!({ "did": did, "signedOperation": operation }))
    }

    /// Forgets the saved operation (it was submitted, or is stale).
    pub fn clear(&self, did: &str) -> Result<(), String> {
        if self.path.exists() {
            self.write(&json!({ "did": did }))?;
        }
        Ok(())
    }

    fn write(&self, state: &Value) -> Result<(), String> {
        let fail = |e: std::io::Error| format!("writing {}: {e}", self.path.display());
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let aside = self.path.with_extension("json.new");
        let mut file = std::fs::File::create(&aside).map_err(fail)?;
        let text = serde_json::to_string_pretty(state).expect("JSON values serialize");
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        std::fs::rename(&aside, &self.path).map_err(fail)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename itself is durable once the directory is synced.
            if let Ok(dir) = std::fs::File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_operation_survives_until_cleared_and_belongs_to_one_did() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateFile::new(dir.path().join("sub/alice.json"));
        assert_eq!(state.signed_operation("did:plc:alice").unwrap(), None);
        let op = json!({"type": "plc_operation", "sig": "x"});
        state.save_signed_operation("did:plc:alice", &op).unwrap();
        assert_eq!(state.signed_operation("did:plc:alice").unwrap(), Some(op));
        assert!(state.signed_operation("did:plc:bob").is_err());
        state.clear("did:plc:alice").unwrap();
        assert_eq!(state.signed_operation("did:plc:alice").unwrap(), None);
    }
}
