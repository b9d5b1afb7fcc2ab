//! `com.atproto.identity.resolveHandle` (query): the DID a handle belongs to. Handles of
//! accounts hosted here are answered from the account table; others are resolved (DNS TXT or
//! HTTPS well-known) and checked against their DID document.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::identity_service::{self, HandleError};
use crate::state::AppState;

pub const NSID: &str = "com.atproto.identity.resolveHandle";

#[derive(Debug, Deserialize)]
pub struct Params {
    pub handle: String,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub did: String,
}

pub async fn handle(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> Result<Json<Output>, ApiError> {
    let handle = pds_syntax::Handle::new(params.handle.trim())
        .map_err(|e| ApiError::invalid_request(format!("handle must be a valid handle: {e}")))?;
    match identity_service::resolve_handle(&state, &handle).await {
        Ok(Some(did)) => Ok(Json(Output { did })),
        // The lexicon's error for "confirmed not to resolve"; the message is the reference's.
        Ok(None) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "HandleNotFound",
            "Unable to resolve handle",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Handle errors as XRPC errors, with the reference's names: syntax and TLD problems are
/// `InvalidHandle`, a handle that cannot be proven `InvalidRequest`, directory and network
/// failures 502 `UpstreamFailure`.
impl From<HandleError> for ApiError {
    fn from(e: HandleError) -> Self {
        let message = e.to_string();
        let bad =
            |name: &'static str| ApiError::new(StatusCode::BAD_REQUEST, name, message.clone());
        match e {
            HandleError::Account(inner) => inner.into(),
            HandleError::DisallowedTld => bad("InvalidHandle"),
            HandleError::NotProven(_)
            | HandleError::DidNotConfigured(_)
            | HandleError::NotControlled(_) => bad("InvalidRequest"),
            // Already safe to show (see identity_service::plc_failure_message).
            HandleError::Plc(_) | HandleError::Unreachable(_) => {
                ApiError::upstream_failure(message)
            }
        }
    }
}
