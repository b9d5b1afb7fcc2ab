//! `com.atproto.server.deleteAccount` (procedure, no auth): deletes an account for good, given
//! its DID, its password (not an app password) and the code `requestAccountDelete` e-mailed.
//!
//! As the reference: an unknown DID is 400 `InvalidRequest`, a wrong password 401
//! `AuthenticationRequired`, a wrong or old code 400 `InvalidToken` / `ExpiredToken`. Then, in
//! one write transaction, the account row, its sessions, app passwords, codes, reserved key,
//! blob rows and repo go, all or nothing; the blob files are deleted once that has committed.

use axum::extract::State;
use serde::Deserialize;

use crate::accounts::email_tokens::{self, MAX_PASSWORD_LEN};
use crate::accounts::{self, password};
use crate::api::{ApiError, XrpcJson};
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.deleteAccount";

#[derive(Debug, Deserialize)]
pub struct Input {
    pub did: String,
    pub password: String,
    pub token: String,
}

pub async fn handle(
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<(), ApiError> {
    let did = pds_syntax::Did::new(&input.did)
        .map_err(|_| ApiError::invalid_request("Input/did must be a valid did"))?
        .to_string();
    if input.password.len() > MAX_PASSWORD_LEN {
        return Err(ApiError::invalid_request("Invalid password length."));
    }
    let stored = {
        let did = did.clone();
        state
            .db
            .read(move |store| -> Result<_, email_tokens::Error> {
                let conn = store.connection();
                if accounts::by_did(conn, &did)?.is_none() {
                    return Ok(None);
                }
                Ok(Some(accounts::password_hash(conn, &did)?))
            })
            .await?
            .ok_or_else(|| ApiError::invalid_request("account not found"))?
    };
    let given = input.password;
    let password_ok = tokio::task::spawn_blocking(move || password::verify(&given, &stored))
        .await
        .map_err(ApiError::internal)?;
    if !password_ok {
        return Err(email_tokens::Error::BadCredentials.into());
    }

    crate::accounts::status::delete(&state, &did, Some(input.token)).await?;
    Ok(())
}
