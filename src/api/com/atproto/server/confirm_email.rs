//! `com.atproto.server.confirmEmail` (procedure): confirms the account's address with the code
//! `requestEmailConfirmation` sent to it. The address must be the account's (400 `InvalidEmail`);
//! a wrong code is 400 `InvalidToken`, an old one 400 `ExpiredToken`. The code works once.

use axum::extract::State;
use serde::Deserialize;

use crate::accounts::email_tokens;
use crate::api::{ApiError, XrpcJson};
use crate::auth::AccessAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.confirmEmail";

#[derive(Debug, Deserialize)]
pub struct Input {
    pub email: String,
    pub token: String,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<(), ApiError> {
    let now = email_tokens::now_ms();
    auth.require_account(
        pds_permissions::AccountAttr::Email,
        pds_permissions::AccountAction::Manage,
    )?;
    let did = auth.did;
    state
        .db
        .write(move |w| {
            email_tokens::confirm_email(w.tx.connection(), &did, &input.email, &input.token, now)
        })
        .await?;
    Ok(())
}
