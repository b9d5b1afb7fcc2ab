//! `com.atproto.admin.getAccountInfos` (query, admin): the views of several accounts (`dids`
//! repeated); unknown DIDs are left out.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::{AccountView, account_views};
use crate::api::{ApiError, Params};
use crate::auth::admin::AdminAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.admin.getAccountInfos";

/// More would make one request read without bound.
const MAX_DIDS: usize = 100;

#[derive(Debug, Serialize)]
pub struct Output {
    pub infos: Vec<AccountView>,
}

pub async fn handle(
    State(state): State<AppState>,
    _admin: AdminAuth,
    params: Params,
) -> Result<Json<Output>, ApiError> {
    let dids = params.dids("dids")?;
    if dids.len() > MAX_DIDS {
        return Err(ApiError::invalid_request(format!(
            "dids can not have more than {MAX_DIDS} items"
        )));
    }
    let infos = state
        .db
        .read(move |store| account_views(store.connection(), &dids))
        .await?;
    Ok(Json(Output { infos }))
}
