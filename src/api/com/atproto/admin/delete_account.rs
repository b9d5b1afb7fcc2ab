//! `com.atproto.admin.deleteAccount` (procedure, admin): deletes an account and everything it
//! holds here, without the owner's code, announced on the firehose as the owner's own deletion
//! is (`#account` deleted). An unknown DID is 400 `InvalidRequest`.

use axum::extract::State;
use serde::Deserialize;

use crate::accounts::status;
use crate::api::{ApiError, XrpcJson};
use crate::auth::admin::AdminAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.admin.deleteAccount";

#[derive(Debug, Deserialize)]
pub struct Input {
    pub did: String,
}

pub async fn handle(
    State(state): State<AppState>,
    _admin: AdminAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<(), ApiError> {
    let did = super::input_did(&input.did)?;
    status::delete(&state, &did, None).await?;
    Ok(())
}
