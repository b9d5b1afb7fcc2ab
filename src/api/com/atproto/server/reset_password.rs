//! `com.atproto.server.resetPassword` (procedure, no auth): sets a new password with the code
//! `requestPasswordReset` sent. Every session of the account ends (its refresh tokens are
//! revoked; access tokens run out within two hours); app passwords stay. A wrong code is 400
//! `InvalidToken`, an old one 400 `ExpiredToken`; the code works once.

use axum::extract::State;
use serde::Deserialize;

use crate::accounts::email_tokens::{self, Purpose};
use crate::accounts::password;
use crate::api::{ApiError, XrpcJson};
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.resetPassword";

#[derive(Debug, Deserialize)]
pub struct Input {
    pub token: String,
    pub password: String,
}

pub async fn handle(
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<(), ApiError> {
    email_tokens::check_new_password(&input.password)?;
    let now = email_tokens::now_ms();
    // The code is checked before hashing (scrypt is costly; wrong codes get no hashing) and again
    // in the write, which uses it up, so two requests with one code cannot both succeed.
    {
        let token = input.token.clone();
        state
            .db
            .read(move |store| {
                email_tokens::find_did(store.connection(), Purpose::ResetPassword, &token, now)
            })
            .await?;
    }
    let new_password = input.password;
    let hash = tokio::task::spawn_blocking(move || password::hash(&new_password))
        .await
        .map_err(ApiError::internal)?;
    let token = input.token;
    state
        .db
        .write(move |w| email_tokens::reset_password(w.tx.connection(), &token, &hash, now))
        .await?;
    Ok(())
}
