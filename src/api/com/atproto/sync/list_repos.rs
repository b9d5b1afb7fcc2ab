//! `com.atproto.sync.listRepos` (query, public): every repo hosted here, paged: DID, head commit,
//! rev, and whether the account is active (with the reason when not). Inactive accounts are
//! listed too, with their status, as the reference does: a relay learns of a takedown this way.
//!
//! Pages go in DID order; the cursor is the last DID of the page, given whenever the page is not
//! empty (so the last page is followed by an empty one), as the reference's cursor is.

use axum::Json;
use axum::extract::State;
use pds_storage::sync_reads;
use serde::Serialize;

use super::Params;
use crate::accounts::{self, AccountError};
use crate::api::ApiError;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.sync.listRepos";

#[derive(Debug, Serialize)]
pub struct Output {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    pub repos: Vec<Repo>,
}

#[derive(Debug, Serialize)]
pub struct Repo {
    pub did: String,
    pub head: String,
    pub rev: String,
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
}

pub async fn handle(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Output>, ApiError> {
    let limit = params.limit()?;
    let cursor = params.get("cursor").map(str::to_owned);
    let (repos, cursor) = state
        .db
        .read(move |store| {
            let conn = store.connection();
            // One snapshot for the heads and the accounts they belong to.
            let tx = conn.unchecked_transaction().map_err(AccountError::from)?;
            let heads = sync_reads::repo_heads(&tx, cursor.as_deref(), limit)?;
            let next = heads.last().map(|head| head.did.clone());
            let mut repos = Vec::with_capacity(heads.len());
            for head in heads {
                // A repo always has its account; one without (never expected) is not listed.
                let Some(account) = accounts::by_did(&tx, &head.did)? else {
                    continue;
                };
                repos.push(Repo {
                    active: account.active(),
                    status: account.status(),
                    head: head.commit_cid.to_string(),
                    did: head.did,
                    rev: head.rev,
                });
            }
            tx.finish().map_err(AccountError::from)?;
            Ok::<_, AccountError>((repos, next))
        })
        .await?;
    Ok(Json(Output { cursor, repos }))
}
