//! `com.atproto.admin.updateAccountEmail` (procedure, admin): sets an account's e-mail address
//! (`account` a handle or DID), unconfirmed; codes sent to the old address stop working. An
//! address another account has is refused.

use axum::extract::State;
use serde::Deserialize;

use crate::accounts::{self, AccountError, email_tokens};
use crate::api::{ApiError, XrpcJson};
use crate::auth::admin::AdminAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.admin.updateAccountEmail";

#[derive(Debug, Deserialize)]
pub struct Input {
    /// A handle or a DID.
    pub account: String,
    pub email: String,
}

pub async fn handle(
    State(state): State<AppState>,
    _admin: AdminAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<(), ApiError> {
    state
        .db
        .write(move |w| -> Result<(), email_tokens::Error> {
            let conn = w.tx.connection();
            let account =
                accounts::by_identifier(conn, &input.account)?.ok_or(AccountError::NotFound)?;
            email_tokens::set_email(conn, &account.did, &input.email)
        })
        .await?;
    Ok(())
}
