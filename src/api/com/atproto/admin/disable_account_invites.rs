//! `com.atproto.admin.disableAccountInvites` and `enableAccountInvites` (procedures, admin): as
//! the lexicon says, an account stops receiving new invite codes (the codes it has keep
//! working), or may receive them again. `note` is accepted for the operator's records and not
//! stored.

use axum::extract::State;
use serde::Deserialize;

use crate::accounts::{AccountError, invites};
use crate::api::{ApiError, XrpcJson};
use crate::auth::admin::AdminAuth;
use crate::state::AppState;

pub const DISABLE: &str = "com.atproto.admin.disableAccountInvites";
pub const ENABLE: &str = "com.atproto.admin.enableAccountInvites";

#[derive(Debug, Deserialize)]
pub struct Input {
    pub account: String,
    #[allow(dead_code)]
    pub note: Option<String>,
}

pub async fn disable(
    State(state): State<AppState>,
    _admin: AdminAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<(), ApiError> {
    set(&state, &input.account, true).await
}

pub async fn enable(
    State(state): State<AppState>,
    _admin: AdminAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<(), ApiError> {
    set(&state, &input.account, false).await
}

async fn set(state: &AppState, account: &str, disabled: bool) -> Result<(), ApiError> {
    let did = super::input_did(account)?;
    let found = state
        .db
        .write(move |w| invites::set_account_invites_disabled(w.tx.connection(), &did, disabled))
        .await?;
    if !found {
        return Err(AccountError::NotFound.into());
    }
    Ok(())
}
