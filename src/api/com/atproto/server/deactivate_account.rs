//! `com.atproto.server.deactivateAccount` (procedure): the owner pauses their account (before
//! moving it to another server, or to leave for a while). Its repo stops being served and
//! written, relays are told (`#account` deactivated); `activateAccount` brings it back. Needs a
//! session made with the account password.

use axum::extract::State;
use serde::Deserialize;

use crate::accounts::status;
use crate::api::{ApiError, XrpcJsonOrEmpty};
use crate::auth::AccessAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.deactivateAccount";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    /// When the owner wants the account deleted, if ever.
    pub delete_after: Option<String>,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    XrpcJsonOrEmpty(input): XrpcJsonOrEmpty<Input>,
) -> Result<(), ApiError> {
    auth.require_account(
        pds_permissions::AccountAttr::Status,
        pds_permissions::AccountAction::Manage,
    )?;
    let delete_after = input
        .delete_after
        .map(|d| {
            pds_syntax::Datetime::new(&d).map_err(|e| {
                ApiError::invalid_request(format!("deleteAfter must be a datetime: {e}"))
            })
        })
        .transpose()?;
    status::deactivate(&state, &auth.did, delete_after).await?;
    Ok(())
}
