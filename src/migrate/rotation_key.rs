//! `pds rotation-key`: a did:plc rotation key its owner holds, so that the account can be moved
//! or recovered without the host's help (see [`super::recover`]).
//!
//! - [`generate`]: a new secp256k1 key, written to a file only its owner can read;
//! - [`add`]: puts a key first among an account's rotation keys, through its host's
//!   `requestPlcOperationSignature` / `signPlcOperation` / `submitPlcOperation` (the e-mailed
//!   code confirms it is the account's owner asking). A key listed first outranks the host's:
//!   within 72 hours, an operation it signs can undo one the host signed.

use std::io::Write;
use std::path::Path;

use pds_crypto::{Algorithm, Keypair};
use pds_plc::PlcClient;
use serde_json::{Value, json};

use super::host::Host;
use super::{
    MigrateError, REQUEST_PLC_SIGNATURE, SIGN_PLC_OPERATION, SUBMIT_PLC_OPERATION, create_session,
};

type Result<T> = std::result::Result<T, MigrateError>;

fn refused(message: impl Into<String>) -> MigrateError {
    MigrateError::Refused(message.into())
}

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
    pub password: String,
    /// The key to add, as a did:key.
    pub key: String,
    /// The code the host e-mailed; without it, one is requested.
    pub plc_token: Option<String>,
    pub plc_url: String,
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
    let session = create_session(&host, &options.account, &options.password).await?;
    let host = host.signed_in(&session.access_token);
    let plc = PlcClient::new(&options.plc_url).map_err(|e| refused(e.to_string()))?;
    let data = plc
        .get_data(&session.did)
        .await
        .map_err(|e| {
            refused(format!(
                "reading {} from {}: {e}",
                session.did, options.plc_url
            ))
        })?
        .plc_data();
    if data.rotation_keys.first() == Some(&options.key) {
        println!(
            "{} is already the first rotation key of {}",
            options.key, session.did
        );
        return Ok(AddOutcome::Added);
    }
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
    rotation_keys.extend(data.rotation_keys.into_iter().filter(|k| k != &options.key));
    let signed = host
        .procedure(
            SIGN_PLC_OPERATION,
            &json!({"token": token.trim(), "rotationKeys": rotation_keys}),
        )
        .await?;
    let operation = signed
        .get("operation")
        .filter(|op| op.is_object())
        .ok_or_else(|| host.unexpected(SIGN_PLC_OPERATION, "no operation"))?;
    host.procedure(SUBMIT_PLC_OPERATION, &json!({ "operation": operation }))
        .await?;
    let now = plc
        .get_data(&session.did)
        .await
        .map_err(|e| refused(format!("reading {} back: {e}", session.did)))?
        .plc_data();
    if now.rotation_keys.first() != Some(&options.key) {
        return Err(refused(
            "the operation was accepted but the key is not first; check the DID's log",
        ));
    }
    println!(
        "{} is now the first rotation key of {}; keep its file safe and offline",
        options.key, session.did
    );
    Ok(AddOutcome::Added)
}
