//! What a migration must remember between runs that neither host can tell it: the DID operation
//! the old host signed but that was not yet submitted. Signing uses up the e-mailed code, so a
//! migration stopped between signing and submitting would otherwise need a new code.
//!
//! Everything else a re-run works out from the hosts themselves (is the account there, is its
//! repo at the old host's commit, which blobs are missing, where does the DID point).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The state file of one migration, held by one run at a time.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    /// An exclusive lock on `<path>.lock` for as long as this run lasts: two runs for the same
    /// account at once would each sign and submit.
    _lock: std::fs::File,
}

impl StateFile {
    /// The state file at `path`, locked for this run (refused while another run holds it).
    pub fn open(path: PathBuf) -> Result<StateFile, String> {
        let fail = |e: std::io::Error| format!("opening {}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(fail)?;
        }
        let lock_path = path.with_extension("lock");
        let lock = private_options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(fail)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "another run for this account holds {}: wait for it to end",
                    lock_path.display()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(fail(e)),
        }
        Ok(StateFile { path, _lock: lock })
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
                "{} belongs to the migration of {}, not {did}: name another with --state-dir",
                self.path.display(),
                state["did"]
            ));
        }
        Ok(state
            .get("signedOperation")
            .filter(|op| op.is_object())
            .cloned())
    }

    /// Saves `operation` for `did`, durably: the moment this returns, a crash cannot lose it.
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
        let text = serde_json::to_string_pretty(state).expect("JSON values serialize");
        write_durably(&self.path, text.as_bytes())
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one, readable by
/// its owner only (it may hold a signed DID operation): written aside, synced, renamed into
/// place, the directory synced.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("writing {}: {e}", path.display());
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        create_private_dir(dir).map_err(fail)?;
    }
    let mut aside = path.as_os_str().to_owned();
    aside.push(".new");
    let aside = PathBuf::from(aside);
    let mut file = private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&aside)
        .map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&aside, path).map_err(fail)?;
    if let Some(dir) = dir
        && let Ok(dir) = std::fs::File::open(dir)
    {
        // The rename itself is durable once the directory is synced.
        let _ = dir.sync_all();
    }
    Ok(())
}

fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_operation_survives_until_cleared_and_belongs_to_one_did() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateFile::open(dir.path().join("sub/alice.json")).unwrap();
        // One run at a time.
        assert!(StateFile::open(dir.path().join("sub/alice.json")).is_err());
        assert_eq!(state.signed_operation("did:plc:alice").unwrap(), None);
        let op = json!({"type": "plc_operation", "sig": "x"});
        state.save_signed_operation("did:plc:alice", &op).unwrap();
        assert_eq!(state.signed_operation("did:plc:alice").unwrap(), Some(op));
        assert!(state.signed_operation("did:plc:bob").is_err());
        state.clear("did:plc:alice").unwrap();
        assert_eq!(state.signed_operation("did:plc:alice").unwrap(), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(state.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        drop(state);
        assert!(StateFile::open(dir.path().join("sub/alice.json")).is_ok());
    }
}
