//! `com.atproto.server.createInviteCode` (procedure, admin): one invite code with `useCount`
//! uses, for an account or (by default) for `admin`.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::create_invite_codes::{check_account, check_use_count, store_codes};
use crate::accounts::invites;
use crate::api::{ApiError, XrpcJson};
use crate::auth::admin::AdminAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.createInviteCode";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    pub use_count: i64,
    pub for_account: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub code: String,
}

pub async fn handle(
    State(state): State<AppState>,
    _admin: AdminAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<Json<Output>, ApiError> {
    check_use_count(input.use_count)?;
    let account = input
        .for_account
        .unwrap_or_else(|| invites::ADMIN.to_owned());
    check_account(&account)?;
    let code = invites::generate(&state.config.server.hostname);
    store_codes(&state, vec![(account, vec![code.clone()])], input.use_count).await?;
    Ok(Json(Output { code }))
}
