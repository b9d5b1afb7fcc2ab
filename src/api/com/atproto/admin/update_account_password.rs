//! `com.atproto.admin.updateAccountPassword` (procedure, admin): sets an account's password, as
//! a reset does: every session ends (refresh tokens revoked), app passwords stay.

use axum::extract::State;
use serde::Deserialize;

use crate::accounts::{email_tokens, password};
use crate::api::{ApiError, XrpcJson};
use crate::auth::admin::AdminAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.admin.updateAccountPassword";

#[derive(Debug, Deserialize)]
pub struct Input {
    pub did: String,
    pub password: String,
}

pub async fn handle(
    State(state): State<AppState>,
    _admin: AdminAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<(), ApiError> {
    let did = super::input_did(&input.did)?;
    email_tokens::check_new_password(&input.password)?;
    let new_password = input.password;
    let hash = tokio::task::spawn_blocking(move || password::hash(&new_password))
        .await
        .map_err(ApiError::internal)?;
    state
        .db
        .write(move |w| email_tokens::set_password(w.tx.connection(), &did, &hash))
        .await?;
    Ok(())
}
