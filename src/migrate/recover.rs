//! `pds recover`: bringing an account back onto a host when its old host is gone, from a backup
//! made by `pds export` (the repo CAR, the blobs, the preferences) and a rotation key its owner
//! holds (one listed in the DID's rotation keys, see [`super::rotation_key`]).
//!
//! With the old host gone, nobody can sign the service-auth token `createAccount` asks for with
//! the DID's current `#atproto` key. The owner's rotation key can change that key, so:
//!
//! 1. a DID operation signed with the owner's key makes that key the `#atproto` key as well;
//! 2. a service-auth token signed with it opens the account on the new host (deactivated);
//! 3. the repo, blobs and preferences are restored from the backup;
//! 4. a second operation, signed with the owner's key, points the DID at the new host with the
//!    keys the new host recommends, keeping the owner's key first among the rotation keys;
//! 5. the new host activates the account (re-signing the restored repo with its key).
//!
//! Every step checks first whether an earlier run did it, so the command can be run again.

use std::path::{Path, PathBuf};

use pds_crypto::Keypair;
use pds_plc::op::ATPROTO_VERIFICATION_METHOD;
use pds_plc::{PlcClient, PlcData, Service, UnsignedOp};
use serde_json::{Value, json};

use super::host::{Host, text_field};
use super::progress::Progress;
use super::{
    AccountStatus, CREATE_ACCOUNT, DESCRIBE_SERVER, GET_RECOMMENDED_CREDENTIALS, IMPORT_REPO,
    MigrateError, PUT_PREFERENCES, SUBMIT_PLC_OPERATION, Summary, create_session,
};
use super::{Result, refused};
use crate::auth::service_jwt::{self, ServiceJwtRequest};

/// What `pds recover` is asked to do.
#[derive(Debug)]
pub struct RecoverOptions {
    /// The directory `pds export` wrote.
    pub backup: PathBuf,
    /// The owner's rotation key (one of the DID's rotation keys).
    pub rotation_key: Keypair,
    /// The host to recover onto.
    pub to: String,
    /// The did:plc directory.
    pub plc_url: String,
    /// The account's password on the new host.
    pub password: super::Secret,
    /// Handle and e-mail on the new host (default: the backup's).
    pub handle: Option<String>,
    pub email: Option<String>,
    pub invite_code: Option<String>,
    /// Recover even when blobs the records reference are not in the backup.
    pub allow_missing_blobs: bool,
}

const STEPS: usize = 7;
/// How long the self-signed `createAccount` token lives.
const TOKEN_SECS: i64 = 5 * 60;

/// Runs (or continues) the recovery `options` describes.
pub async fn recover(options: &RecoverOptions) -> Result<Summary> {
    let mut progress = Progress::new(STEPS);
    let new = Host::new(&options.to)?;
    let owner_key = options.rotation_key.did_key();

    progress.step(
        1,
        "backup",
        &format!("reading {}", options.backup.display()),
    );
    let backup = Backup::open(&options.backup)?;
    progress.detail(&format!(
        "{} ({}), {} blob file(s)",
        backup.did,
        backup.handle,
        backup.blob_count()
    ));

    progress.step(2, "identity", "checking the DID and the rotation key");
    let plc = PlcClient::new(&options.plc_url).map_err(|e| refused(e.to_string()))?;
    let (data, _) = current_state(&plc, &backup.did).await?;
    if !data.rotation_keys.contains(&owner_key) {
        return Err(refused(format!(
            "{owner_key} is not a rotation key of {}; its rotation keys are {}",
            backup.did,
            data.rotation_keys.join(", ")
        )));
    }
    let service_did = text_field(
        &new,
        DESCRIBE_SERVER,
        &new.query(DESCRIBE_SERVER, &[]).await?,
        "did",
    )?;
    progress.detail(&format!(
        "{owner_key} may change {}; recovering onto {} ({service_did})",
        backup.did,
        new.url()
    ));

    progress.step(3, "account", "the account on the new host");
    let new = match create_session(&new, &backup.did, options.password.expose()).await {
        Ok(session) => {
            progress.detail("already there (made by an earlier run): continuing");
            new.signed_in(&session.access_token)
        }
        Err(MigrateError::Host(e)) if e.status() == Some(401) => {
            open_account(&new, &plc, &service_did, &backup, options, &progress).await?
        }
        Err(e) => return Err(e),
    };
    let status = AccountStatus::of(&new).await?;
    if status.activated && status.valid_did {
        progress.detail("already active on the new host");
        return finish(&new, &backup, &mut progress).await;
    }

    progress.step(4, "repo", "restoring the repository");
    let backup_commit = backup.commit()?;
    if status.repo_commit == backup_commit {
        progress.detail(&format!("already restored (commit {backup_commit})"));
    } else {
        let car = tokio::fs::File::open(backup.dir.join("repo.car"))
            .await
            .map_err(|e| refused(format!("opening repo.car: {e}")))?;
        let size = car.metadata().await.map(|m| m.len()).unwrap_or_default();
        new.upload(
            IMPORT_REPO,
            "application/vnd.ipld.car",
            reqwest::Body::from(car),
        )
        .await?;
        progress.detail(&format!(
            "restored {} (commit {backup_commit})",
            super::progress::bytes(size)
        ));
    }

    progress.step(5, "blobs", "restoring the blobs");
    restore_blobs(&new, &backup, options.allow_missing_blobs, &mut progress).await?;
    let preferences = backup.preferences()?;
    new.procedure(PUT_PREFERENCES, &json!({ "preferences": preferences }))
        .await?;
    progress.detail(&format!(
        "{} preference(s)",
        preferences.as_array().map_or(0, Vec::len)
    ));

    progress.step(6, "move-did", "pointing the DID at the new host");
    if status.valid_did {
        progress.detail("it points there already");
    } else {
        let credentials = new.query(GET_RECOMMENDED_CREDENTIALS, &[]).await?;
        let (mut data, prev) = current_state(&plc, &backup.did).await?;
        apply_credentials(&mut data, &credentials, &owner_key)
            .map_err(|e| new.unexpected(GET_RECOMMENDED_CREDENTIALS, e))?;
        let op = UnsignedOp::update(data, &prev).sign(&options.rotation_key);
        new.procedure(SUBMIT_PLC_OPERATION, &json!({ "operation": op.to_json() }))
            .await?;
        progress.detail(&format!("done; {owner_key} stays the first rotation key"));
    }
    finish(&new, &backup, &mut progress).await
}

/// Step 7: the account is active on the new host.
async fn finish(new: &Host, backup: &Backup, progress: &mut Progress) -> Result<Summary> {
    progress.step(7, "activate", "activating the account");
    let status = AccountStatus::of(new).await?;
    if status.activated {
        progress.detail("active");
    } else {
        new.procedure(super::ACTIVATE_ACCOUNT, &Value::Null).await?;
        progress.detail("activated");
    }
    let status = AccountStatus::of(new).await?;
    progress.detail(&format!(
        "done: {} is active on {} with {} records and {} blobs",
        backup.did,
        new.url(),
        status.indexed_records,
        status.imported_blobs
    ));
    Ok(Summary {
        did: backup.did.clone(),
        handle: backup.handle.clone(),
        records: status.indexed_records,
        blobs: status.imported_blobs,
        old_host_moved_on: false,
    })
}

/// Opens the account on the new host with a token the owner's key signs, after making that key
/// the DID's `#atproto` key (the only key such a token is checked against).
async fn open_account(
    new: &Host,
    plc: &PlcClient,
    service_did: &str,
    backup: &Backup,
    options: &RecoverOptions,
    progress: &Progress,
) -> Result<Host> {
    let key = &options.rotation_key;
    let (mut data, prev) = current_state(plc, &backup.did).await?;
    if data.signing_key() != Some(key.did_key().as_str()) {
        data.verification_methods
            .insert(ATPROTO_VERIFICATION_METHOD.to_owned(), key.did_key());
        let op = UnsignedOp::update(data, &prev).sign(key);
        plc.submit(&backup.did, &op)
            .await
            .map_err(|e| refused(format!("the directory refused the key change: {e}")))?;
        progress
            .detail("the DID's #atproto key is now the rotation key (until the move completes)");
    }
    let now = crate::auth::now_secs();
    let token = service_jwt::mint(
        key,
        &ServiceJwtRequest {
            iss: &backup.did,
            aud: service_did,
            lxm: Some(CREATE_ACCOUNT),
            iat: now,
            exp: now + TOKEN_SECS,
        },
    );
    let email = options
        .email
        .clone()
        .or_else(|| backup.email.clone())
        .ok_or_else(|| refused("the backup has no e-mail for the account: pass --email"))?;
    let handle = options.handle.as_deref().unwrap_or(&backup.handle);
    let new = super::create_existing_did(
        new,
        &token,
        &backup.did,
        handle,
        &email,
        &options.password,
        options.invite_code.as_deref(),
    )
    .await?;
    progress.detail(&format!("created {handle:?}, deactivated until restored"));
    Ok(new)
}

/// The DID's current data and the CID of its last operation, from its verified audit log.
pub(crate) async fn current_state(plc: &PlcClient, did: &str) -> Result<(PlcData, pds_ipld::Cid)> {
    let log = plc.get_audit_log(did).await.map_err(|e| {
        refused(format!(
            "reading the DID's log from {}: {e}",
            plc.base_url()
        ))
    })?;
    pds_plc::verified_state(did, &log)
        .map_err(|e| refused(format!("the DID's log does not verify: {e}")))?
        .ok_or_else(|| refused(format!("{did} is tombstoned")))
}

/// `data` with what the new host recommends (`getRecommendedDidCredentials`), the owner's key
/// kept first among the rotation keys. Other services and verification methods are kept.
fn apply_credentials(
    data: &mut PlcData,
    credentials: &Value,
    owner_key: &str,
) -> std::result::Result<(), String> {
    let strings = |key: &str| -> std::result::Result<Vec<String>, String> {
        credentials[key]
            .as_array()
            .ok_or(format!("no {key}"))?
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(format!("{key}: not strings"))
            })
            .collect()
    };
    let mut rotation_keys = vec![owner_key.to_owned()];
    rotation_keys.extend(
        strings("rotationKeys")?
            .into_iter()
            .filter(|k| k != owner_key),
    );
    data.rotation_keys = rotation_keys;
    data.also_known_as = strings("alsoKnownAs")?;
    for (name, key) in credentials["verificationMethods"]
        .as_object()
        .ok_or("no verificationMethods")?
    {
        let key = key.as_str().ok_or("verificationMethods: not strings")?;
        data.verification_methods
            .insert(name.clone(), key.to_owned());
    }
    for (name, service) in credentials["services"].as_object().ok_or("no services")? {
        let service: Service =
            serde_json::from_value(service.clone()).map_err(|e| format!("services: {e}"))?;
        data.services.insert(name.clone(), service);
    }
    Ok(())
}

/// Uploads every blob the new host reports missing from the backup's `blobs/` directory.
async fn restore_blobs(
    new: &Host,
    backup: &Backup,
    allow_missing: bool,
    progress: &mut Progress,
) -> Result<()> {
    let (mut restored, mut missing) = (0u64, Vec::new());
    for cid in super::missing_blobs(new).await? {
        let Some(file) = backup.blob(&cid).await else {
            missing.push(cid);
            continue;
        };
        super::upload_blob(
            new,
            &cid,
            &backup.mime_type(&cid),
            reqwest::Body::from(file),
        )
        .await?;
        restored += 1;
        progress.count(|| format!("blob {restored}"), false);
    }
    progress.detail(&format!("restored {restored} blob(s)"));
    if !missing.is_empty() && !allow_missing {
        return Err(refused(format!(
            "{} blob(s) the records reference are not in the backup ({}); run again with \
             --allow-missing-blobs to recover without them",
            missing.len(),
            missing.join(", ")
        )));
    }
    Ok(())
}

/// A `pds export` directory.
struct Backup {
    dir: PathBuf,
    did: String,
    handle: String,
    email: Option<String>,
    /// CID to media type (`blobs.json`; older exports have none).
    mime_types: serde_json::Map<String, Value>,
}

impl Backup {
    fn open(dir: &Path) -> Result<Backup> {
        let account = read_json(&dir.join("account.json"))?;
        let text = |key: &str| account[key].as_str().map(str::to_owned);
        let did = text("did").ok_or_else(|| refused("account.json has no did"))?;
        if !did.starts_with("did:plc:") {
            return Err(refused(format!(
                "{did} is not a did:plc: a did:web is recovered by pointing its did.json at the new host (see the README)"
            )));
        }
        if !dir.join("repo.car").is_file() {
            return Err(refused(format!("{} has no repo.car", dir.display())));
        }
        let mime_types = match read_json(&dir.join("blobs.json")) {
            Ok(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        Ok(Backup {
            dir: dir.to_owned(),
            handle: text("handle").ok_or_else(|| refused("account.json has no handle"))?,
            email: text("email"),
            did,
            mime_types,
        })
    }

    /// The CID of the commit `repo.car` is rooted at (read from its header alone).
    fn commit(&self) -> Result<String> {
        let path = self.dir.join("repo.car");
        let file = std::fs::File::open(&path)
            .map_err(|e| refused(format!("opening {}: {e}", path.display())))?;
        let car = pds_ipld::car::CarReader::new(std::io::BufReader::new(file))
            .map_err(|e| refused(format!("{} is not a CAR file: {e}", path.display())))?;
        match car.roots() {
            [root] => Ok(root.to_string()),
            roots => Err(refused(format!(
                "{} has {} roots, not one commit",
                path.display(),
                roots.len()
            ))),
        }
    }

    fn blob_count(&self) -> usize {
        std::fs::read_dir(self.dir.join("blobs")).map_or(0, |d| d.count())
    }

    async fn blob(&self, cid: &str) -> Option<tokio::fs::File> {
        // A CID is base32 letters and digits: it cannot name a path outside blobs/.
        if !cid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        tokio::fs::File::open(self.dir.join("blobs").join(cid))
            .await
            .ok()
    }

    fn mime_type(&self, cid: &str) -> String {
        self.mime_types
            .get(cid)
            .and_then(Value::as_str)
            .unwrap_or("application/octet-stream")
            .to_owned()
    }

    fn preferences(&self) -> Result<Value> {
        match read_json(&self.dir.join("preferences.json")) {
            Ok(prefs) => {
                Ok(prefs["preferences"].clone()).map(|p| if p.is_array() { p } else { json!([]) })
            }
            Err(_) if !self.dir.join("preferences.json").exists() => Ok(json!([])),
            Err(e) => Err(e),
        }
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| refused(format!("reading {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| refused(format!("{} is not JSON: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recommended_credentials_replace_the_pds_and_keep_the_owner_key_first() {
        let mut data = PlcData::atproto(
            "old.test",
            "https://old.example",
            "did:key:zOldSigning",
            vec!["did:key:zOldServer".into(), "did:key:zOwner".into()],
        );
        data.services.insert(
            "atproto_labeler".into(),
            Service {
                kind: "AtprotoLabeler".into(),
                endpoint: "https://labels.example".into(),
            },
        );
        let credentials = json!({
            "rotationKeys": ["did:key:zNewServer"],
            "alsoKnownAs": ["at://alice.test"],
            "verificationMethods": {"atproto": "did:key:zNewSigning"},
            "services": {"atproto_pds": {"type": "AtprotoPersonalDataServer", "endpoint": "https://new.example"}},
        });
        apply_credentials(&mut data, &credentials, "did:key:zOwner").unwrap();
        assert_eq!(data.rotation_keys, ["did:key:zOwner", "did:key:zNewServer"]);
        assert_eq!(data.also_known_as, ["at://alice.test"]);
        assert_eq!(data.signing_key(), Some("did:key:zNewSigning"));
        assert_eq!(data.pds_endpoint(), Some("https://new.example"));
        assert!(
            data.services.contains_key("atproto_labeler"),
            "other services stay"
        );
        assert!(apply_credentials(&mut data, &json!({}), "did:key:zOwner").is_err());
    }
}
