//! An account's hosting status as its owner changes it: deactivation (the repo stops being
//! served and written; the data stays) and activation, each announced on the firehose in the
//! same transaction (`#account`; activation also `#identity` and `#sync`, so relays re-resolve
//! the DID and pick the repo up from its current commit, as the reference does).

use pds_repo::BlockSource;
use pds_syntax::Datetime;

use super::AccountError;
use super::email_tokens;
use crate::firehose;
use crate::state::AppContext;

/// Deactivates `did`'s account; `delete_after` is when its owner wants it deleted (kept, as the
/// reference does; deleting is done with deleteAccount).
pub async fn deactivate(
    ctx: &AppContext,
    did: &str,
    delete_after: Option<Datetime>,
) -> Result<(), AccountError> {
    let (did, now) = (did.to_owned(), Datetime::now().to_string());
    let delete_after = delete_after.map(|d| d.to_string());
    ctx.db
        .write(move |w| {
            let conn = w.tx.connection();
            super::not_taken_down(conn, &did)?;
            super::deactivate(conn, &did, &now, delete_after.as_deref())?;
            firehose::sequence_account(
                conn,
                &did,
                false,
                Some(pds_event_stream::AccountStatus::Deactivated),
            )?;
            Ok(())
        })
        .await
}

/// Activates `did`'s account, once its DID document (fetched fresh) points at this server with
/// the account's signing key: otherwise relays would find the account active here but follow
/// the DID somewhere else, or fail to verify its commits.
pub async fn activate(ctx: &AppContext, did: &str) -> Result<(), AccountError> {
    let (key, account) = {
        let did = did.to_owned();
        ctx.db
            .read(move |store| {
                let conn = store.connection();
                let account = super::not_taken_down(conn, &did)?;
                Ok::<_, AccountError>((super::signing_key(conn, &did)?, account))
            })
            .await?
    };
    let problems = super::migration::did_document_problems(ctx, did, &key.public_key()).await?;
    if !problems.is_empty() {
        return Err(AccountError::IncompatibleDidDoc(format!(
            "The DID document of {did} does not point to this server yet: {}",
            problems.join("; ")
        )));
    }
    // The handle this server holds for the account (checked when it was set), not whatever the
    // document claims.
    let handle = account.handle;
    let did = did.to_owned();
    let clock = ctx.clock.clone();
    ctx.db
        .write(move |w| {
            let conn = w.tx.connection();
            super::not_taken_down(conn, &did)?;
            super::activate(conn, &did)?;
            firehose::sequence_identity(conn, &did, Some(&handle))?;
            firehose::sequence_account(conn, &did, true, None)?;
            let head = w
                .tx
                .head(&did)?
                .ok_or_else(|| AccountError::Refused(format!("{did} has no repo to activate")))?;
            let commit_block =
                w.tx.blocks(&did)
                    .require_block(&head.commit_cid)
                    .map_err(pds_storage::StorageError::from)?
                    .into_owned();
            let commit = pds_repo::Commit::from_block(&head.commit_cid, &commit_block)
                .map_err(pds_storage::StorageError::from)?;
            if commit.verify(&key.public_key()).is_ok() {
                firehose::sequence_sync_block(conn, &head.commit_cid, &commit_block)?;
            } else {
                // A repo imported from another server is still under that server's signature,
                // which relays cannot check against the DID document any more: sign the same
                // tree again with this account's key, as a new commit, and announce that.
                let resigned = w.tx.apply_writes_cached(w.repos, &did, &key, &clock, &[])?;
                firehose::sequence_sync(conn, &resigned)?;
            }
            Ok(())
        })
        .await
}

/// The operator takes `did`'s account down (`Some(reference)`) or restores it (`None`):
/// announced as `#account` (`takendown`; on restore, the status the account has without it).
/// Takedown ends the account's sessions; its repo stops being served and written.
pub async fn set_takedown(
    ctx: &AppContext,
    did: &str,
    reference: Option<String>,
) -> Result<(), AccountError> {
    let did = did.to_owned();
    ctx.db
        .write(move |w| {
            let conn = w.tx.connection();
            super::set_takedown(conn, &did, reference.as_deref())?;
            let account = super::by_did(conn, &did)?.ok_or(AccountError::NotFound)?;
            let status = match (account.takendown, account.deactivated) {
                (true, _) => Some(pds_event_stream::AccountStatus::Takendown),
                (false, true) => Some(pds_event_stream::AccountStatus::Deactivated),
                (false, false) => None,
            };
            firehose::sequence_account(conn, &did, account.active(), status)?;
            Ok(())
        })
        .await
}

/// Deletes `did`'s account and everything it has here, in one write transaction, with the
/// owner's deletion code when `code` is given (`com.atproto.server.deleteAccount`) or without
/// (the operator's `com.atproto.admin.deleteAccount`). Announced as `#account` deleted in the
/// same transaction (the account's earlier events leave the log with it); the blob files go
/// once it has committed.
pub async fn delete(
    ctx: &AppContext,
    did: &str,
    code: Option<String>,
) -> Result<(), email_tokens::Error> {
    {
        let did = did.to_owned();
        let now = email_tokens::now_ms();
        ctx.db
            .write(move |w| -> Result<(), email_tokens::Error> {
                match &code {
                    Some(code) => email_tokens::delete_account(w.tx, &did, code, now)?,
                    None => email_tokens::remove_account(w.tx, &did)?,
                }
                firehose::sequence_account_deleted(w.tx.connection(), &did)?;
                Ok(())
            })
            .await?;
    }
    if let Err(e) = ctx.blobs.delete_account_files(did).await {
        // The rows are gone, so nothing serves these files; the orphan sweep retries.
        tracing::warn!(%did, error = %e, "could not delete the blob files of a deleted account");
    }
    tracing::info!(%did, "account deleted");
    Ok(())
}
