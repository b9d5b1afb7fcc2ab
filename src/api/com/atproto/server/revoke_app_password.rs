//! `com.atproto.server.revokeAppPassword` (procedure): delete an app password by name, and with
//! it the refresh tokens of every session it opened (their access tokens run out within two
//! hours). Revoking a name that does not exist succeeds, as in the reference, which also lets
//! app-password sessions call this.

use axum::extract::State;
use serde::Deserialize;

use crate::accounts::{AccountError, app_passwords};
use crate::api::{ApiError, XrpcJson};
use crate::auth::AccessAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.revokeAppPassword";

#[derive(Debug, Deserialize)]
pub struct Input {
    pub name: String,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<(), ApiError> {
    auth.require_not_oauth()?;
    let did = auth.did;
    state
        .db
        .write(move |w| -> Result<bool, AccountError> {
            app_passwords::revoke(w.tx.connection(), &did, &input.name)
        })
        .await?;
    Ok(())
}
