//! `app.bsky.notification.unregisterPush` (procedure): the device's push token, sent on to the
//! notification service named by `serviceDid` with a token for it (see `crate::proxy::push`).

use axum::extract::State;
use axum::response::Response;
use serde_json::Value;

use crate::api::{ApiError, XrpcJson};
use crate::auth::AccessAuth;
use crate::proxy;
use crate::state::AppState;

pub const NSID: &str = "app.bsky.notification.unregisterPush";

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    XrpcJson(input): XrpcJson<Value>,
) -> Result<Response, ApiError> {
    proxy::push::forward(&state, &auth, NSID, &input).await
}
