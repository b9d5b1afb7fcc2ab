//! `com.atproto.server.updateEmail` (procedure): changes the account's address. Needs a session
//! made with the account password (as the reference: `ACCESS_FULL`), and, once the current
//! address is confirmed, the code `requestEmailUpdate` sent to it (400 `TokenRequired` without
//! one). The new address starts unconfirmed; one another account has is 400
//! `EmailNotAvailable`. `emailAuthFactor` (e-mail sign-in codes) is accepted and ignored: this
//! server has no e-mail second factor.

use axum::extract::State;
use serde::Deserialize;

use crate::accounts::email_tokens;
use crate::api::{ApiError, XrpcJson};
use crate::auth::AccessAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.updateEmail";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    pub email: String,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub email_auth_factor: Option<bool>,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<(), ApiError> {
    auth.require_account(
        pds_permissions::AccountAttr::Email,
        pds_permissions::AccountAction::Manage,
    )?;
    let now = email_tokens::now_ms();
    let did = auth.did;
    state
        .db
        .write(move |w| {
            email_tokens::update_email(
                w.tx.connection(),
                &did,
                &input.email,
                input.token.as_deref(),
                now,
            )
        })
        .await?;
    Ok(())
}
