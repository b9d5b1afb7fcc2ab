//! `com.atproto.server.deleteSession` (procedure): log out, revoking the refresh token.

use axum::extract::State;

use crate::accounts::{self, AccountError};
use crate::api::ApiError;
use crate::auth::RefreshAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.deleteSession";

pub async fn handle(State(state): State<AppState>, auth: RefreshAuth) -> Result<(), ApiError> {
    let id = auth.token_id;
    state
        .db
        .write(move |w| -> Result<(), AccountError> {
            accounts::revoke_refresh_token(w.tx.connection(), &id)
        })
        .await?;
    Ok(())
}
