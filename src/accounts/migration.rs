//! Moving an account here from another server, the new server's side (as the reference):
//! `createAccount` with the existing DID (see `service`) makes a deactivated account with an
//! empty repo; then the account imports its repo ([`import_repo`]), uploads the blobs its
//! records reference (`listMissingBlobs` lists those still missing), checks where it stands
//! ([`status`]), asks what its DID document should say now ([`recommended_credentials`]), has
//! the old server sign that into the DID, and activates here.

use pds_repo::import::{ImportExpectations, VerifiedRepo, read_car};
use pds_storage::StorageError;
use pds_syntax::Did;

use super::{AccountError, service};
use crate::blobs::{self, BlobError};
use crate::state::AppContext;

/// What an imported repo holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRepo {
    pub commit_cid: String,
    pub rev: String,
    pub records: usize,
    pub blocks: usize,
}

/// Replaces `did`'s repo with the one in `car` (a CAR file, at most `max_car_bytes`), after
/// verifying all of it: every block against its CID, the commit for `did`, the MST canonical,
/// every record present and valid. A bad CAR is refused with the reason and nothing is stored.
///
/// As the reference, the commit's signature is not checked: it was made by the old server with
/// the key the DID document names until the account moves, which is not this account's key
/// here, and the account itself, with a full session, is the one sending its own data. The
/// commit is stored as it is (not re-signed); the next commit here is signed with the
/// account's key. The records' blob references are recorded in the same transaction, so
/// `listMissingBlobs` lists what is still to upload. Importing the same CAR again gives the same
/// state. Nothing is sent on the firehose (as the reference): the account is deactivated while
/// it moves, and activation announces it with its current commit.
pub async fn import_repo(
    ctx: &AppContext,
    did: &str,
    car: axum::body::Bytes,
    max_car_bytes: u64,
) -> Result<ImportedRepo, AccountError> {
    let expected_did = did.to_owned();
    let verified = tokio::task::spawn_blocking(move || {
        read_car(
            &car[..],
            &ImportExpectations {
                did: Some(&expected_did),
                signing_key: None,
                max_car_bytes,
            },
        )
    })
    .await
    .map_err(|e| AccountError::Key(format!("the import task failed: {e}")))?
    .map_err(|e| AccountError::Refused(format!("Invalid repo CAR: {e}")))?;
    let did = did.to_owned();
    ctx.db
        .write(move |w| {
            super::not_taken_down(w.tx.connection(), &did)?;
            w.tx.import_repo(&verified)?;
            link_blobs(w.tx.connection(), &did, &verified)?;
            Ok(ImportedRepo {
                commit_cid: verified.commit_cid.to_string(),
                rev: verified.commit.rev.clone(),
                records: verified.records.len(),
                blocks: verified.block_count(),
            })
        })
        .await
}

/// Records the blob references of every record of an imported repo.
fn link_blobs(
    conn: &rusqlite::Connection,
    did: &str,
    repo: &VerifiedRepo,
) -> Result<(), AccountError> {
    let blocks: std::collections::HashMap<_, _> = repo.blocks().collect();
    let records = repo.records.iter().map(|(path, cid)| {
        let bytes: &[u8] = blocks.get(cid).copied().unwrap_or_default();
        (path.as_str(), bytes)
    });
    // Verification already parsed every record, so a refusal is not the client's doing.
    blobs::link_import(conn, did, &repo.commit.rev, records).map_err(blob_error)
}

/// A blob-table failure met while handling an account's own data.
fn blob_error(e: BlobError) -> AccountError {
    match e {
        BlobError::Db(e) => AccountError::Db(e),
        BlobError::Storage(e) => AccountError::Storage(e),
        other => AccountError::Storage(StorageError::Corrupt(other.to_string())),
    }
}

/// Where a (migrating) account stands, as `checkAccountStatus` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStatus {
    pub activated: bool,
    /// Its DID document points here with its signing key (fetched now).
    pub valid_did: bool,
    pub repo_commit: String,
    pub repo_rev: String,
    pub repo_blocks: u64,
    pub indexed_records: u64,
    /// Distinct blobs its records reference.
    pub expected_blobs: u64,
    /// Blobs stored for it.
    pub imported_blobs: u64,
}

/// `did`'s [`AccountStatus`].
pub async fn status(ctx: &AppContext, did: &str) -> Result<AccountStatus, AccountError> {
    let lookup = did.to_owned();
    let (account, key, head, counts, expected_blobs, imported_blobs) = ctx
        .db
        .read(move |store| {
            let conn = store.connection();
            let account = super::by_did(conn, &lookup)?.ok_or(AccountError::NotFound)?;
            let key = super::signing_key(conn, &lookup)?;
            let head = store.head(&lookup)?.ok_or_else(|| {
                AccountError::Storage(StorageError::Corrupt(format!("{lookup} has no repo")))
            })?;
            let counts = store.repo_counts(&lookup)?;
            let count = |sql: &str| -> Result<u64, AccountError> {
                let n: i64 = conn
                    .prepare_cached(sql)?
                    .query_row([&lookup], |r| r.get(0))?;
                Ok(u64::try_from(n).unwrap_or_default())
            };
            let expected =
                count("SELECT COUNT(DISTINCT blob_cid) FROM record_blob WHERE did = ?1")?;
            let imported = count("SELECT COUNT(*) FROM blob WHERE did = ?1")?;
            Ok::<_, AccountError>((account, key, head, counts, expected, imported))
        })
        .await?;
    let valid_did = did_document_problems(ctx, did, &key.public_key())
        .await
        .is_ok_and(|problems| problems.is_empty());
    Ok(AccountStatus {
        activated: !account.deactivated,
        valid_did,
        repo_commit: head.commit_cid.to_string(),
        repo_rev: head.rev,
        repo_blocks: counts.blocks,
        indexed_records: counts.records,
        expected_blobs,
        imported_blobs,
    })
}

/// What is wrong with `did`'s DID document (fetched now) for an account hosted here with `key`:
/// empty when it points here with that key. The same check `activateAccount` makes.
pub(super) async fn did_document_problems(
    ctx: &AppContext,
    did: &str,
    key: &pds_crypto::PublicKey,
) -> Result<Vec<String>, AccountError> {
    let parsed = Did::new(did).map_err(|e| AccountError::Refused(format!("bad DID: {e}")))?;
    let document = ctx.id_resolver.refresh_did(&parsed).await.map_err(|e| {
        AccountError::UnresolvableDid(format!("Could not resolve the DID document of {did}: {e}"))
    })?;
    Ok(service::document_problems(
        &document,
        &ctx.config.server.public_url,
        key,
        "the account's signing key here",
        None,
    ))
}

/// Whether `did`'s copy from its old server is complete: its repo was imported (it holds
/// records) and every blob its records reference is stored. `submitPlcOperation` activates such
/// an account as the DID moves here.
pub async fn copy_is_complete(ctx: &AppContext, did: &str) -> Result<bool, AccountError> {
    let did = did.to_owned();
    ctx.db
        .read(move |store| {
            let conn = store.connection();
            let missing = blobs::list_missing(conn, &did, None, 1).map_err(blob_error)?;
            Ok(missing.is_empty() && store.repo_counts(&did)?.records > 0)
        })
        .await
}

/// What `did`'s DID document should say for the account to be hosted here: this server's
/// rotation key (so it can sign the account's later PLC operations, e.g. handle changes), the
/// account's handle, its signing key here as `#atproto`, and this server as `#atproto_pds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecommendedCredentials {
    pub rotation_keys: Vec<String>,
    pub also_known_as: Vec<String>,
    /// The `#atproto` key, as a did:key.
    pub atproto_key: String,
    pub pds_endpoint: String,
}

/// `did`'s [`RecommendedCredentials`] (deactivated accounts included: they are the ones moving).
pub async fn recommended_credentials(
    ctx: &AppContext,
    did: &str,
) -> Result<RecommendedCredentials, AccountError> {
    let lookup = did.to_owned();
    let (account, key) = ctx
        .db
        .read(move |store| {
            let conn = store.connection();
            let account = super::by_did(conn, &lookup)?.ok_or(AccountError::NotFound)?;
            Ok::<_, AccountError>((account, super::signing_key(conn, &lookup)?))
        })
        .await?;
    Ok(RecommendedCredentials {
        rotation_keys: vec![ctx.secrets.plc_rotation_key.did_key()],
        also_known_as: vec![format!("at://{}", account.handle)],
        atproto_key: key.did_key(),
        pds_endpoint: ctx.config.server.public_url.clone(),
    })
}
