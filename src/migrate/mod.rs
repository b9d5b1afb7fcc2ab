//! Moving an account between hosts from the command line, entirely through the protocol (the
//! XRPC methods every PDS has), so the other host may be this server or any other PDS:
//!
//! - [`migrate()`] (`pds migrate`): from an old host to a new one, resumable;
//! - [`recover`] (`pds recover`): onto a host from a `pds export` backup when the old host is
//!   gone, with a rotation key the account's owner holds;
//! - [`rotation_key`] (`pds rotation-key`): making such a key and adding it to an account's DID.
//!
//! A migration is a sequence of steps, each of which first asks the hosts whether it is done
//! already, so a migration stopped anywhere (a crash, a lost connection, Ctrl-C) is continued by
//! running the same command again. The old host's account is deactivated last, once the new
//! host holds the repo, every blob and the preferences, the DID points at the new host and the
//! account is active there: at no point is the account left without an active host that its DID
//! points to (the new host activates the account in the same request that moves the DID to it,
//! see `accounts::plc_operations::submit`).
//!
//! This module is a client of the hosts; it must not reach into this server's storage.

pub mod host;
pub mod password_prompt;
pub mod progress;
pub mod recover;
pub mod rotation_key;
pub mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use serde_json::{Value, json};

use host::{Host, HostError, text_field};
use progress::Progress;
use state::StateFile;

pub const CREATE_SESSION: &str = "com.atproto.server.createSession";
pub const GET_SESSION: &str = "com.atproto.server.getSession";
pub const DESCRIBE_SERVER: &str = "com.atproto.server.describeServer";
pub const CREATE_ACCOUNT: &str = "com.atproto.server.createAccount";
pub const GET_SERVICE_AUTH: &str = "com.atproto.server.getServiceAuth";
pub const CHECK_ACCOUNT_STATUS: &str = "com.atproto.server.checkAccountStatus";
pub const ACTIVATE_ACCOUNT: &str = "com.atproto.server.activateAccount";
pub const DEACTIVATE_ACCOUNT: &str = "com.atproto.server.deactivateAccount";
pub const GET_LATEST_COMMIT: &str = "com.atproto.sync.getLatestCommit";
pub const GET_REPO: &str = "com.atproto.sync.getRepo";
pub const GET_BLOB: &str = "com.atproto.sync.getBlob";
pub const IMPORT_REPO: &str = "com.atproto.repo.importRepo";
pub const LIST_MISSING_BLOBS: &str = "com.atproto.repo.listMissingBlobs";
pub const UPLOAD_BLOB: &str = "com.atproto.repo.uploadBlob";
pub const GET_PREFERENCES: &str = "app.bsky.actor.getPreferences";
pub const PUT_PREFERENCES: &str = "app.bsky.actor.putPreferences";
pub const GET_RECOMMENDED_CREDENTIALS: &str = "com.atproto.identity.getRecommendedDidCredentials";
pub const REQUEST_PLC_SIGNATURE: &str = "com.atproto.identity.requestPlcOperationSignature";
pub const SIGN_PLC_OPERATION: &str = "com.atproto.identity.signPlcOperation";
pub const SUBMIT_PLC_OPERATION: &str = "com.atproto.identity.submitPlcOperation";

const CAR_MIME: &str = "application/vnd.ipld.car";
/// How long the service-auth token for `createAccount` on the new host lives.
const CREATE_ACCOUNT_TOKEN_SECS: i64 = 10 * 60;
/// How many times the repo is copied again when the old host's account keeps writing.
const MAX_COPY_ROUNDS: usize = 3;
pub(crate) const MISSING_BLOBS_PAGE: &str = "500";
/// Most rotation keys a did:plc may list (the did:plc specification).
pub(crate) const MAX_ROTATION_KEYS: usize = 5;

/// A password or an e-mailed code: shown as `<secret>` when the options are printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: String) -> Secret {
        Secret(text)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// What `pds migrate` is asked to do.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// The old host's URL.
    pub from: String,
    /// The new host's URL.
    pub to: String,
    /// The account on the old host: handle, DID or e-mail.
    pub account: String,
    /// Its password (the new host gets the same one).
    pub password: Secret,
    /// The handle on the new host (default: the current one).
    pub handle: Option<String>,
    /// The e-mail on the new host (default: the one the old host has).
    pub email: Option<String>,
    pub invite_code: Option<String>,
    /// The code the old host e-mailed for signing the DID operation.
    pub plc_token: Option<Secret>,
    /// Rotation keys (did:key) the account's owner holds, to list first in the DID.
    pub add_rotation_keys: Vec<String>,
    /// The did:plc directory, read for the DID's current rotation keys.
    pub plc_url: String,
    /// Move even when blobs the records reference are missing on the old host too.
    pub allow_missing_blobs: bool,
    /// Where the migration's state file goes (one file per DID).
    pub state_dir: PathBuf,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The account lives on the new host now.
    Migrated(Summary),
    /// Everything is copied; the old host e-mailed the code that signing the DID operation
    /// needs, to this address (when it said which).
    WaitingForPlcToken { email: Option<String> },
    /// Everything is copied; a did:web's owner must publish the DID document written here.
    WaitingForDidDocument { path: PathBuf },
}

/// The account as the new host holds it at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub did: String,
    pub handle: String,
    pub records: u64,
    pub blobs: u64,
    /// Writes the old host took after the last copy (lost to the move; normally 0).
    pub old_host_moved_on: bool,
}

/// Why a migration stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Host(#[from] HostError),
    /// A check failed; the message says what to do.
    #[error("{0}")]
    Refused(String),
}

pub(crate) type Result<T> = std::result::Result<T, MigrateError>;

pub(crate) fn refused(message: impl Into<String>) -> MigrateError {
    MigrateError::Refused(message.into())
}

/// Checks the DID a host signed `account` in as: a did:plc or did:web (it names files here and
/// goes into requests), and the one asked for when `account` is a DID.
pub(crate) fn checked_did(did: &str, account: &str) -> Result<()> {
    let parsed = pds_syntax::Did::new(did)
        .map_err(|e| refused(format!("the host signed in as {did:?}, not a DID: {e}")))?;
    if !matches!(parsed.method(), "plc" | "web") {
        return Err(refused(format!(
            "the host signed in as {did}: only did:plc and did:web accounts move"
        )));
    }
    if account.starts_with("did:") && account != did {
        return Err(refused(format!(
            "asked for {account}, the host signed in as {did}"
        )));
    }
    Ok(())
}

/// The name a DID's files go by in the state directory (`:` is not allowed in every file system).
pub(crate) fn file_stem(did: &str) -> String {
    did.replace(':', "_")
}

const STEPS: usize = 9;

/// Runs (or continues) the migration `options` describes.
pub async fn migrate(options: &MigrateOptions) -> Result<Outcome> {
    let mut progress = Progress::new(STEPS);
    let old = Host::new(&options.from)?;
    let new = Host::new(&options.to)?;

    progress.step(
        1,
        "login",
        &format!("signing in to the old host {}", old.url()),
    );
    let session = create_session(&old, &options.account, options.password.expose()).await?;
    checked_did(&session.did, &options.account)?;
    let old = old.signed_in(&session.access_token);
    let new_service = text_field(
        &new,
        DESCRIBE_SERVER,
        &new.query(DESCRIBE_SERVER, &[]).await?,
        "did",
    )?;
    let old_service = text_field(
        &old,
        DESCRIBE_SERVER,
        &old.query(DESCRIBE_SERVER, &[]).await?,
        "did",
    )?;
    if new_service == old_service {
        return Err(MigrateError::Refused(format!(
            "{} and {} are the same server: both say they are {new_service} (if they are not, \
             give them different service DIDs, PDS_SERVICE_DID)",
            old.url(),
            new.url()
        )));
    }
    progress.detail(&format!(
        "{} ({}), moving to {} ({new_service})",
        session.did,
        session.handle,
        new.url()
    ));
    let did = session.did.clone();
    let state = StateFile::open(options.state_dir.join(format!("{}.json", file_stem(&did))))
        .map_err(MigrateError::Refused)?;

    progress.step(2, "account", "the account on the new host");
    let new = new_host_account(&old, &new, &new_service, &session, options, &progress).await?;
    let mut status = AccountStatus::of(&new).await?;

    let mut old_commit = String::new();
    if status.valid_did {
        // The DID points at the new host already (an earlier run moved it): the copy was
        // checked before that, and the old host is not needed again until step 9. The account
        // must be active where its DID points, so nothing here may stop activation.
        state.clear(&did).map_err(MigrateError::Refused)?;
        for (n, name) in [
            (3, "repo"),
            (4, "blobs"),
            (5, "preferences"),
            (6, "verify"),
            (7, "identity"),
        ] {
            progress.step(
                n,
                name,
                "done in an earlier run: the DID points at the new host",
            );
        }
    } else {
        let mut round = 0;
        loop {
            round += 1;
            progress.step(3, "repo", "copying the repository");
            old_commit = copy_repo(&old, &new, &did, &mut progress).await?;
            progress.step(4, "blobs", "copying the blobs the records reference");
            let missing = copy_blobs(&old, &new, &did, &mut progress).await?;
            if !missing.is_empty() && !options.allow_missing_blobs {
                return Err(MigrateError::Refused(format!(
                    "{} blob(s) the records reference are missing on the old host too ({}); run \
                     again with --allow-missing-blobs to move without them",
                    missing.len(),
                    missing.join(", ")
                )));
            }
            progress.step(5, "preferences", "copying the preferences");
            copy_preferences(&old, &new, &progress).await?;
            progress.step(6, "verify", "checking that the new host holds everything");
            status = AccountStatus::of(&new).await?;
            let latest = latest_commit(&old, &did).await?;
            if status.repo_commit != latest {
                if round < MAX_COPY_ROUNDS {
                    progress
                        .detail("the account wrote on the old host during the copy: copying again");
                    continue;
                }
                return Err(MigrateError::Refused(
                    "the account keeps writing on the old host; stop using it during the move and run again"
                        .to_owned(),
                ));
            }
            // The new host's own list, not its counts: a count of stored blobs includes blobs
            // no record references any more.
            let unaccounted: Vec<String> = missing_blobs(&new)
                .await?
                .into_iter()
                .filter(|cid| !missing.contains(cid))
                .collect();
            if !unaccounted.is_empty() {
                return Err(MigrateError::Refused(format!(
                    "the new host still lacks {} blob(s) the records reference ({}); run again to \
                     copy them",
                    unaccounted.len(),
                    unaccounted.join(", ")
                )));
            }
            progress.detail(&format!(
                "commit {}, {} records, {} blocks, {}/{} blobs",
                status.repo_commit,
                status.indexed_records,
                status.repo_blocks,
                status.expected_blobs - missing.len() as u64,
                status.expected_blobs
            ));
            break;
        }

        progress.step(7, "identity", "pointing the DID at the new host");
        if did.starts_with("did:web:") {
            let credentials = new.query(GET_RECOMMENDED_CREDENTIALS, &[]).await?;
            let document = did_web_document(&did, &credentials)
                .map_err(|e| new.unexpected(GET_RECOMMENDED_CREDENTIALS, e))?;
            let path = options
                .state_dir
                .join(format!("{}.did.json", file_stem(&did)));
            let text = serde_json::to_string_pretty(&document).expect("JSON values serialize");
            state::write_durably(&path, format!("{text}\n").as_bytes())
                .map_err(MigrateError::Refused)?;
            progress.detail(&format!(
                "a did:web moves when its owner publishes its new document: put {} at {} \
                 (keeping any other entries of the current document) and run this command again",
                path.display(),
                did_web_document_url(&did)
            ));
            for line in text.lines() {
                progress.detail(line);
            }
            return Ok(Outcome::WaitingForDidDocument { path });
        }
        let token = options.plc_token.as_ref().map(Secret::expose);
        if !move_did(&old, &new, &did, token, options, &state, &progress).await? {
            old.procedure(REQUEST_PLC_SIGNATURE, &Value::Null).await?;
            progress.detail(&format!(
                "the old host has e-mailed a code to {}: run this command again with --plc-token <code>",
                session.email.as_deref().unwrap_or("the account's address")
            ));
            return Ok(Outcome::WaitingForPlcToken {
                email: session.email.clone(),
            });
        }
        status = AccountStatus::of(&new).await?;
        if !status.valid_did {
            return Err(MigrateError::Refused(
                "the DID operation was accepted, but the DID document does not point at the new host; run again"
                    .to_owned(),
            ));
        }
    }

    progress.step(8, "activate", "activating the account on the new host");
    if status.activated {
        progress.detail("already active (the new host activated it when the DID moved there)");
    } else {
        new.procedure(ACTIVATE_ACCOUNT, &Value::Null).await?;
        progress.detail("active");
    }

    progress.step(
        9,
        "deactivate-old",
        "deactivating the account on the old host",
    );
    let old_session = old.query(GET_SESSION, &[]).await?;
    let mut old_host_moved_on = false;
    if old_session["active"].as_bool().unwrap_or(true) {
        // Writes the old host took after the copy cannot follow any more (the new host's repo
        // is live); say so rather than pass over it.
        old_host_moved_on =
            !old_commit.is_empty() && latest_commit(&old, &did).await? != old_commit;
        old.procedure(DEACTIVATE_ACCOUNT, &json!({})).await?;
        progress.detail("deactivated");
    } else {
        progress.detail("already deactivated");
    }
    if old_host_moved_on {
        progress.detail(
            "warning: the old host took writes after the last copy; they are not on the new host",
        );
    }
    let check = create_session(&new, &did, options.password.expose()).await?;
    let status = AccountStatus::of(&new.signed_in(&check.access_token)).await?;
    progress.detail(&format!(
        "done: {did} ({}) is active on {} with {} records and {} blobs",
        check.handle,
        new.url(),
        status.indexed_records,
        status.imported_blobs
    ));
    Ok(Outcome::Migrated(Summary {
        did,
        handle: check.handle,
        records: status.indexed_records,
        blobs: status.imported_blobs,
        old_host_moved_on,
    }))
}

/// A signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    pub did: String,
    pub handle: String,
    pub email: Option<String>,
    pub access_token: String,
}

/// Signs in to `host`.
pub async fn create_session(host: &Host, identifier: &str, password: &str) -> Result<Session> {
    let output = host
        .procedure(
            CREATE_SESSION,
            &json!({"identifier": identifier, "password": password}),
        )
        .await?;
    Ok(Session {
        did: text_field(host, CREATE_SESSION, &output, "did")?,
        handle: text_field(host, CREATE_SESSION, &output, "handle")?,
        email: output["email"].as_str().map(str::to_owned),
        access_token: text_field(host, CREATE_SESSION, &output, "accessJwt")?,
    })
}

/// The account on the new host, signed in: made there (deactivated, with the old host's
/// service-auth token) unless an earlier run did.
async fn new_host_account(
    old: &Host,
    new: &Host,
    new_service: &str,
    session: &Session,
    options: &MigrateOptions,
    progress: &Progress,
) -> Result<Host> {
    match create_session(new, &session.did, options.password.expose()).await {
        Ok(existing) => {
            progress.detail("already there (made by an earlier run): continuing");
            return Ok(new.signed_in(&existing.access_token));
        }
        // Not there yet (or there with another password, which createAccount then reports).
        Err(MigrateError::Host(e)) if e.status() == Some(401) => {}
        Err(e) => return Err(e),
    }
    let email = options
        .email
        .clone()
        .or_else(|| session.email.clone())
        .ok_or_else(|| {
            MigrateError::Refused(
                "the old host did not say the account's e-mail: pass --email".to_owned(),
            )
        })?;
    let exp = (crate::auth::now_secs() + CREATE_ACCOUNT_TOKEN_SECS).to_string();
    let auth = old
        .query(
            GET_SERVICE_AUTH,
            &[("aud", new_service), ("lxm", CREATE_ACCOUNT), ("exp", &exp)],
        )
        .await?;
    let token = text_field(old, GET_SERVICE_AUTH, &auth, "token")?;
    let handle = options.handle.as_deref().unwrap_or(&session.handle);
    let new = create_existing_did(
        new,
        &token,
        &session.did,
        handle,
        &email,
        &options.password,
        options.invite_code.as_deref(),
    )
    .await?;
    progress.detail(&format!(
        "created, deactivated until the move is complete ({handle:?})"
    ));
    Ok(new)
}

/// `createAccount` on `new` for an existing DID, with the service-auth `token` the DID signed
/// (the account starts deactivated); the host signed in as it.
pub(crate) async fn create_existing_did(
    new: &Host,
    token: &str,
    did: &str,
    handle: &str,
    email: &str,
    password: &Secret,
    invite_code: Option<&str>,
) -> Result<Host> {
    let mut input = json!({
        "did": did,
        "handle": handle,
        "email": email,
        "password": password.expose(),
    });
    if let Some(code) = invite_code {
        input["inviteCode"] = json!(code);
    }
    let created = new
        .procedure_as(CREATE_ACCOUNT, &input, Some(token))
        .await?;
    Ok(new.signed_in(&text_field(new, CREATE_ACCOUNT, &created, "accessJwt")?))
}

/// `checkAccountStatus` on a host.
#[derive(Debug, Clone)]
pub struct AccountStatus {
    pub activated: bool,
    pub valid_did: bool,
    pub repo_commit: String,
    pub repo_blocks: u64,
    pub indexed_records: u64,
    pub expected_blobs: u64,
    pub imported_blobs: u64,
}

impl AccountStatus {
    pub async fn of(host: &Host) -> Result<AccountStatus> {
        let out = host.query(CHECK_ACCOUNT_STATUS, &[]).await?;
        let count = |key: &str| out[key].as_u64().unwrap_or_default();
        Ok(AccountStatus {
            activated: out["activated"].as_bool().unwrap_or_default(),
            valid_did: out["validDid"].as_bool().unwrap_or_default(),
            repo_commit: text_field(host, CHECK_ACCOUNT_STATUS, &out, "repoCommit")?,
            repo_blocks: count("repoBlocks"),
            indexed_records: count("indexedRecords"),
            expected_blobs: count("expectedBlobs"),
            imported_blobs: count("importedBlobs"),
        })
    }
}

/// The CID of `did`'s latest commit on `host`.
async fn latest_commit(host: &Host, did: &str) -> Result<String> {
    let out = host.query(GET_LATEST_COMMIT, &[("did", did)]).await?;
    Ok(text_field(host, GET_LATEST_COMMIT, &out, "cid")?)
}

/// Copies `did`'s repo from `old` to `new` (streamed), unless `new` holds its latest commit
/// already. Returns the commit copied.
async fn copy_repo(old: &Host, new: &Host, did: &str, progress: &mut Progress) -> Result<String> {
    let latest = latest_commit(old, did).await?;
    if AccountStatus::of(new).await?.repo_commit == latest {
        progress.detail(&format!("already copied (commit {latest})"));
        return Ok(latest);
    }
    let car = old.download(GET_REPO, &[("did", did)]).await?;
    let counted = Arc::new(AtomicU64::new(0));
    let body = counting_body(
        car,
        counted.clone(),
        Some((progress.ticker(), "repository")),
    );
    new.upload(IMPORT_REPO, CAR_MIME, body).await?;
    progress.detail(&format!(
        "copied {} (commit {latest})",
        progress::bytes(counted.load(Ordering::Relaxed))
    ));
    Ok(latest)
}

/// A response body passed on as a request body, counting its bytes into `counted`; with a
/// `ticker`, printing the count as it grows (a repo; blobs are counted per blob instead).
fn counting_body(
    response: reqwest::Response,
    counted: Arc<AtomicU64>,
    mut ticker: Option<(progress::Ticker, &'static str)>,
) -> reqwest::Body {
    reqwest::Body::wrap_stream(response.bytes_stream().inspect(move |chunk| {
        if let Ok(chunk) = chunk {
            let len = chunk.len() as u64;
            let total = counted.fetch_add(len, Ordering::Relaxed) + len;
            if let Some((ticker, what)) = &mut ticker {
                ticker.tick(|| format!("{what}: {}", progress::bytes(total)));
            }
        }
    }))
}

/// Every blob `host` (signed in) says its account's records reference but it does not hold.
pub async fn missing_blobs(host: &Host) -> Result<Vec<String>> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = vec![("limit", MISSING_BLOBS_PAGE)];
        if let Some(cursor) = &cursor {
            params.push(("cursor", cursor));
        }
        let page = host.query(LIST_MISSING_BLOBS, &params).await?;
        let blobs = page["blobs"].as_array().cloned().unwrap_or_default();
        for blob in &blobs {
            all.push(text_field(host, LIST_MISSING_BLOBS, blob, "cid")?);
        }
        cursor = page["cursor"].as_str().map(str::to_owned);
        if blobs.is_empty() || cursor.is_none() {
            return Ok(all);
        }
    }
}

/// Uploads a blob to `host` and checks that the host stored it under `cid`: a blob that comes
/// out as another CID is not the one the records reference.
pub async fn upload_blob(host: &Host, cid: &str, mime: &str, body: reqwest::Body) -> Result<()> {
    let out = host.upload(UPLOAD_BLOB, mime, body).await?;
    let stored = out["blob"]["ref"]["$link"].as_str().unwrap_or_default();
    if stored != cid {
        return Err(MigrateError::Refused(format!(
            "blob {cid} was stored by {} as {stored:?}: its bytes do not match its CID",
            host.url()
        )));
    }
    Ok(())
}

/// Copies every blob `new` reports missing from `old`. Returns those `old` does not have either.
async fn copy_blobs(
    old: &Host,
    new: &Host,
    did: &str,
    progress: &mut Progress,
) -> Result<Vec<String>> {
    let status = AccountStatus::of(new).await?;
    let to_copy = missing_blobs(new).await?;
    if to_copy.is_empty() {
        progress.detail(&format!(
            "all {} the records reference are there",
            status.expected_blobs
        ));
        return Ok(Vec::new());
    }
    let total = to_copy.len();
    progress.detail(&format!("{total} of {} to copy", status.expected_blobs));
    let (mut copied, mut missing) = (0usize, Vec::new());
    let bytes = Arc::new(AtomicU64::new(0));
    for cid in to_copy {
        let response = match old.download(GET_BLOB, &[("did", did), ("cid", &cid)]).await {
            Ok(response) => response,
            Err(e) if matches!(e.status(), Some(400 | 404)) => {
                progress.detail(&format!("blob {cid} is missing on the old host: {e}"));
                missing.push(cid);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let mime = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let body = counting_body(response, bytes.clone(), None);
        upload_blob(new, &cid, &mime, body).await?;
        copied += 1;
        let sent = bytes.load(Ordering::Relaxed);
        progress.count(
            || format!("blob {copied}/{total} ({} in all)", progress::bytes(sent)),
            copied + missing.len() == total,
        );
    }
    Ok(missing)
}

async fn copy_preferences(old: &Host, new: &Host, progress: &Progress) -> Result<()> {
    let out = old.query(GET_PREFERENCES, &[]).await?;
    let preferences = out["preferences"].as_array().cloned().unwrap_or_default();
    new.procedure(PUT_PREFERENCES, &json!({ "preferences": preferences }))
        .await?;
    progress.detail(&format!("{} preference(s)", preferences.len()));
    Ok(())
}

/// Points the DID at the new host: submits the operation an earlier run had signed, or has the
/// old host sign one with `token`. `false` when there is no token to sign with.
async fn move_did(
    old: &Host,
    new: &Host,
    did: &str,
    token: Option<&str>,
    options: &MigrateOptions,
    state: &StateFile,
    progress: &Progress,
) -> Result<bool> {
    if let Some(operation) = state.signed_operation(did).map_err(MigrateError::Refused)? {
        progress.detail("submitting the DID operation signed in an earlier run");
        match submit_signed(new, did, &operation, state).await {
            Ok(()) => {
                progress.detail("the DID points at the new host");
                return Ok(true);
            }
            // Refused as it is (stale: the DID changed since): a new one is needed. Anything
            // else (the host or the directory unreachable, a 5xx, a rate limit) keeps it for the
            // next run, since signing a new one needs a new e-mailed code.
            Err(MigrateError::Host(e @ HostError::Xrpc { status: 400, .. })) => {
                if AccountStatus::of(new).await?.valid_did {
                    state.clear(did).map_err(MigrateError::Refused)?;
                    progress.detail("the DID points at the new host");
                    return Ok(true);
                }
                progress.detail(&format!("it was not accepted ({e}); signing a new one"));
                state.clear(did).map_err(MigrateError::Refused)?;
            }
            Err(e) => return Err(e),
        }
    }
    let Some(token) = token else {
        return Ok(false);
    };
    let credentials = new.query(GET_RECOMMENDED_CREDENTIALS, &[]).await?;
    let rotation_keys = rotation_keys_after_move(old, did, &credentials, options, progress).await?;
    let signed = old
        .procedure(
            SIGN_PLC_OPERATION,
            &json!({
                "token": token.trim(),
                "rotationKeys": rotation_keys,
                "alsoKnownAs": credentials["alsoKnownAs"],
                "verificationMethods": credentials["verificationMethods"],
                "services": credentials["services"],
            }),
        )
        .await
        .map_err(|e| match e.xrpc_error() {
            Some("InvalidToken" | "ExpiredToken") => MigrateError::Refused(format!(
                "{e}\nrun this command again without --plc-token to have a new code e-mailed"
            )),
            _ => e.into(),
        })?;
    let operation = signed
        .get("operation")
        .filter(|op| op.is_object())
        .ok_or_else(|| old.unexpected(SIGN_PLC_OPERATION, "no operation"))?;
    if let Err(e) = state.save_signed_operation(did, operation) {
        // The code is used up: the operation must not be lost with the error.
        println!("the signed DID operation, to submit by hand with {SUBMIT_PLC_OPERATION}:");
        println!("{operation}");
        return Err(MigrateError::Refused(e));
    }
    progress.detail(&format!(
        "the old host signed the DID operation (kept in {} until submitted)",
        state.path().display()
    ));
    submit_signed(new, did, operation, state).await?;
    progress.detail("the DID points at the new host");
    Ok(true)
}

/// Submits a signed operation through `host`, then forgets it.
pub(crate) async fn submit_signed(
    host: &Host,
    did: &str,
    operation: &Value,
    state: &StateFile,
) -> Result<()> {
    host.procedure(SUBMIT_PLC_OPERATION, &json!({ "operation": operation }))
        .await?;
    state.clear(did).map_err(MigrateError::Refused)
}

/// The DID's rotation keys once it has moved: the keys given with `--add-rotation-key` first,
/// then the keys its owner already holds (the current keys that are not the old host's own,
/// such as one added with `pds rotation-key add` or a `recoveryKey` at sign-up), then the new
/// host's. The old host's keys go: it no longer hosts the account.
async fn rotation_keys_after_move(
    old: &Host,
    did: &str,
    new_credentials: &Value,
    options: &MigrateOptions,
    progress: &Progress,
) -> Result<Vec<String>> {
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let old_hosts = strings(&old.query(GET_RECOMMENDED_CREDENTIALS, &[]).await?["rotationKeys"]);
    let current = current_rotation_keys(&options.plc_url, did).await?;
    let mut keys: Vec<String> = Vec::new();
    for key in &options.add_rotation_keys {
        pds_crypto::PublicKey::from_did_key(key)
            .map_err(|e| MigrateError::Refused(format!("--add-rotation-key {key}: {e}")))?;
        keys.push(key.clone());
    }
    for key in current.iter().filter(|k| !old_hosts.contains(k)) {
        keys.push(key.clone());
    }
    keys.extend(strings(&new_credentials["rotationKeys"]));
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert(k.clone()));
    let kept: Vec<&String> = current
        .iter()
        .filter(|k| !old_hosts.contains(k) && !options.add_rotation_keys.contains(k))
        .collect();
    if !kept.is_empty() {
        progress.detail(&format!(
            "keeping the rotation key(s) the account's owner holds: {}",
            kept.iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if keys.len() > MAX_ROTATION_KEYS {
        return Err(MigrateError::Refused(format!(
            "the DID would have {} rotation keys ({}); a did:plc has at most {MAX_ROTATION_KEYS}",
            keys.len(),
            keys.join(", ")
        )));
    }
    Ok(keys)
}

/// `did`'s rotation keys now, from its audit log at the directory (checked, not taken on trust).
pub async fn current_rotation_keys(plc_url: &str, did: &str) -> Result<Vec<String>> {
    let plc = pds_plc::PlcClient::new(plc_url)
        .map_err(|e| MigrateError::Refused(format!("{plc_url}: {e}")))?;
    Ok(recover::current_state(&plc, did).await?.0.rotation_keys)
}

/// Where a did:web's document is published (`did:web:example.com` ->
/// `https://example.com/.well-known/did.json`; a port is written `%3A` in the DID).
pub fn did_web_document_url(did: &str) -> String {
    let host = did.trim_start_matches("did:web:").replace("%3A", ":");
    format!("https://{host}/.well-known/did.json")
}

/// The DID document a did:web account hosted by the new host has: its handle, the new host's
/// signing key for it as `#atproto`, the new host as `#atproto_pds`, from
/// `getRecommendedDidCredentials`.
pub fn did_web_document(did: &str, credentials: &Value) -> std::result::Result<Value, String> {
    let key = credentials["verificationMethods"]["atproto"]
        .as_str()
        .ok_or("no verificationMethods.atproto")?;
    let multibase = key
        .strip_prefix("did:key:")
        .ok_or("the key is not a did:key")?;
    let endpoint = credentials["services"]["atproto_pds"]["endpoint"]
        .as_str()
        .ok_or("no services.atproto_pds.endpoint")?;
    Ok(json!({
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/multikey/v1",
            "https://w3id.org/security/suites/secp256k1-2019/v1",
        ],
        "id": did,
        "alsoKnownAs": credentials["alsoKnownAs"],
        "verificationMethod": [{
            "id": format!("{did}#atproto"),
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": multibase,
        }],
        "service": [{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": endpoint,
        }],
    }))
}
