//! `com.atproto.identity.updateHandle` (procedure): change the caller's handle, to another one
//! under this server's domains or to a domain of their own that points at their DID. The
//! account row, the did:plc document (an operation signed with this server's rotation key) and
//! the resolver's caches change together; see [`crate::identity_service`].

use axum::extract::State;
use serde::Deserialize;

use crate::api::{ApiError, XrpcJson};
use crate::auth::AccessAuth;
use crate::identity_service;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.identity.updateHandle";

#[derive(Debug, Deserialize)]
pub struct Input {
    pub handle: String,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<(), ApiError> {
    // The reference also takes app-password sessions here; this server asks for the account
    // password, as for every other change of who the account is.
    auth.require_identity(pds_permissions::IdentityAttr::Handle)?;
    identity_service::update_handle(&state, &auth.did, &input.handle).await?;
    Ok(())
}
