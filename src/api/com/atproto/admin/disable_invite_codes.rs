//! `com.atproto.admin.disableInviteCodes` (procedure, admin): the codes listed, and every code
//! made for one of the accounts listed, stop working. The reference refuses to disable the
//! admin's own codes by account (`accounts` containing `admin`); so does this server.

use axum::extract::State;
use serde::Deserialize;

use crate::accounts::invites;
use crate::api::{ApiError, XrpcJson};
use crate::auth::admin::AdminAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.admin.disableInviteCodes";

#[derive(Debug, Deserialize)]
pub struct Input {
    #[serde(default)]
    pub codes: Vec<String>,
    #[serde(default)]
    pub accounts: Vec<String>,
}

pub async fn handle(
    State(state): State<AppState>,
    _admin: AdminAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<(), ApiError> {
    if input.accounts.iter().any(|a| a == invites::ADMIN) {
        return Err(ApiError::invalid_request(
            "cannot disable admin invite codes",
        ));
    }
    state
        .db
        .write(move |w| invites::disable(w.tx.connection(), &input.codes, &input.accounts))
        .await?;
    Ok(())
}
