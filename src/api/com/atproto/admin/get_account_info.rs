//! `com.atproto.admin.getAccountInfo` (query, admin): one account's view.

use axum::Json;
use axum::extract::State;

use super::{AccountView, account_views};
use crate::api::{ApiError, Params};
use crate::auth::admin::AdminAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.admin.getAccountInfo";

pub async fn handle(
    State(state): State<AppState>,
    _admin: AdminAuth,
    params: Params,
) -> Result<Json<AccountView>, ApiError> {
    let did = params.did("did")?;
    let views = state
        .db
        .read(move |store| account_views(store.connection(), &[did]))
        .await?;
    views
        .into_iter()
        .next()
        .map(Json)
        .ok_or_else(|| ApiError::invalid_request("Account not found"))
}
