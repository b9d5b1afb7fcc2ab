//! `com.atproto.identity.submitPlcOperation` (procedure): submits to the DID directory an
//! operation (signed by the account's old server) that makes this server the account's home:
//! this server's rotation key among `rotationKeys`, this server as `atproto_pds`, the account's
//! signing key here as `verificationMethods.atproto` and its handle first in `alsoKnownAs`.
//! Then the change is announced (`#identity`) and cached resolutions of the DID dropped. Needs
//! a session made with the account password (deactivated accounts included: that is how an
//! account moving here has one).

use axum::extract::State;
use serde::Deserialize;

use crate::accounts::plc_operations;
use crate::api::{ApiError, XrpcJson};
use crate::auth::AccessAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.identity.submitPlcOperation";

#[derive(Debug, Deserialize)]
pub struct Input {
    pub operation: serde_json::Value,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<(), ApiError> {
    auth.require_identity(pds_permissions::IdentityAttr::All)?;
    plc_operations::submit(&state, &auth.did, &input.operation).await?;
    Ok(())
}
