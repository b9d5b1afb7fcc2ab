//! `com.atproto.admin.updateAccountHandle` (procedure, admin): changes an account's handle as
//! `com.atproto.identity.updateHandle` does for its owner: a handle under a service domain, or
//! a custom domain that resolves to the DID; the did:plc document is updated and the change
//! announced (`#identity`).

use axum::extract::State;
use serde::Deserialize;

use crate::api::{ApiError, XrpcJson};
use crate::auth::admin::AdminAuth;
use crate::identity_service;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.admin.updateAccountHandle";

#[derive(Debug, Deserialize)]
pub struct Input {
    pub did: String,
    pub handle: String,
}

pub async fn handle(
    State(state): State<AppState>,
    _admin: AdminAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<(), ApiError> {
    let did = super::input_did(&input.did)?;
    identity_service::update_handle(&state, &did, &input.handle).await?;
    Ok(())
}
