//! `pds rotation-key`: a did:plc rotation key its owner holds, so that the account can be moved
//! or recovered without the host's help (see [`super::recover`]).
//!
//! - [`generate`]: a new secp256k1 key, written to a file only its owner can read;
//! - [`add`]: puts a key first among an account's rotation keys, through its host's
//!   `requestPlcOperationSignature` / `signPlcOperation` / `submitPlcOperation` (the e-mailed
//!   code confirms it is the account's owner asking). A key listed first outranks the host's:
//!   within 72 hours, an operation it signs can undo one the host signed.

use std::io::Write;
use std::path::{Path, PathBuf};

use pds_crypto::{Algorithm, Keypair};
use serde_json::{Value, json};

use super::host::Host;
use super::state::StateFile;
use super::{REQUEST_PLC_SIGNATURE, SIGN_PLC_OPERATION, SUBMIT_PLC_OPERATION, create_session};
use super::{Result, refused};

/// Makes a new key and writes its private part (hex) to `path`, which must not exist yet, readable
/// by its owner only. Returns the key.
pub fn generate(path: &Path) -> Result<Keypair> {
    let key = Keypair::generate(Algorithm::K256);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| refused(format!("creating {}: {e}", path.display())))?;
    writeln!(
        file,
        "{}",
        data_encoding::HEXLOWER.encode(&key.private_bytes())
    )
    .and_then(|()| file.sync_all())
    .map_err(|e| refused(format!("writing {}: {e}", path.display())))?;
    Ok(key)
}

/// Reads a key [`generate`] wrote (a secp256k1 private key in hex).
pub fn read(path: &Path) -> Result<Keypair> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| refused(format!("reading {}: {e}", path.display())))?;
    Keypair::from_private_hex(Algorithm::K256, text.trim()).map_err(|e| {
        refused(format!(
            "{} does not hold a secp256k1 private key in hex: {e}",
            path.display()
        ))
    })
}

/// What `pds rotation-key add` is asked to do.
#[derive(Debug, Clone)]
pub struct AddOptions {
    /// The account's host.
    pub host: String,
    pub account: String,
    pub password: super::Secret,
    /// The key to add, as a did:key.
    pub key: String,
    /// The code the host e-mailed; without it, one is requested.
    pub plc_token: Option<super::Secret>,
    pub plc_url: String,
    /// Where the signed operation is kept until submitted (signing uses up the code).
    pub state_dir: PathBuf,
}

/// How [`add`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// The key is now the DID's first rotation key.
    Added,
    /// The host e-mailed the code signing needs.
    WaitingForPlcToken,
}

/// Puts `options.key` first among the account's rotation keys (see the module doc).
pub async fn add(options: &AddOptions) -> Result<AddOutcome> {
    pds_crypto::PublicKey::from_did_key(&options.key)
        .map_err(|e| refused(format!("{}: not a did:key: {e}", options.key)))?;
    let host = Host::new(&options.host)?;
    let session = create_session(&host, &options.account, options.password.expose()).await?;
    super::checked_did(&session.did, &options.account)?;
    let did = session.did.as_str();
    let host = host.signed_in(&session.access_token);
    let state = StateFile::open(
        options
            .state_dir
            .join(format!("{}.rotation-key.json", super::file_stem(did))),
    )
    .map_err(refused)?;
    let current = super::current_rotation_keys(&options.plc_url, did).await?;
    if current.first() == Some(&options.key) {
        state.clear(did).map_err(refused)?;
        println!("{} is already the first rotation key of {did}", options.key);
        return Ok(AddOutcome::Added);
    }
    let operation = match state.signed_operation(did).map_err(refused)? {
        Some(saved) => {
            println!("submitting the operation signed in an earlier run");
            saved
        }
        None => {
            let Some(token) = &options.plc_token else {
                host.procedure(REQUEST_PLC_SIGNATURE, &Value::Null).await?;
                println!(
                    "{} has e-mailed a code to {}: run this command again with --plc-token <code>",
                    host.url(),
                    session.email.as_deref().unwrap_or("the account's address")
                );
                return Ok(AddOutcome::WaitingForPlcToken);
            };
            let mut rotation_keys = vec![options.key.clone()];
            rotation_keys.extend(current.iter().filter(|k| **k != options.key).cloned());
            if rotation_keys.len() > super::MAX_ROTATION_KEYS {
                return Err(refused(format!(
                    "{did} would have {} rotation keys; a did:plc has at most {}",
                    rotation_keys.len(),
                    super::MAX_ROTATION_KEYS
                )));
            }
            let signed = host
                .procedure(
                    SIGN_PLC_OPERATION,
                    &json!({"token": token.expose().trim(), "rotationKeys": rotation_keys}),
                )
                .await?;
            let operation = signed
                .get("operation")
                .filter(|op| op.is_object())
                .cloned()
                .ok_or_else(|| host.unexpected(SIGN_PLC_OPERATION, "no operation"))?;
            if let Err(e) = state.save_signed_operation(did, &operation) {
                println!(
                    "the signed DID operation, to submit by hand with {SUBMIT_PLC_OPERATION}:"
                );
                println!("{operation}");
                return Err(refused(e));
            }
            operation
        }
    };
    match super::submit_signed(&host, did, &operation, &state).await {
        Ok(()) => {}
        // Stale (the DID changed since it was signed): a new one needs a new code.
        Err(super::MigrateError::Host(e @ super::HostError::Xrpc { status: 400, .. })) => {
            state.clear(did).map_err(refused)?;
            return Err(refused(format!(
                "{e}\nthe saved operation was not accepted; run this command again without \
                 --plc-token to have a new code e-mailed"
            )));
        }
        Err(e) => return Err(e),
    }
    let now = super::current_rotation_keys(&options.plc_url, did).await?;
    if now.first() != Some(&options.key) {
        return Err(refused(
            "the operation was accepted but the key is not first; check the DID's log",
        ));
    }
    println!(
        "{} is now the first rotation key of {did}; keep its file safe and offline",
        options.key
    );
    Ok(AddOutcome::Added)
}
