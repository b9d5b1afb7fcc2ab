//! `com.atproto.admin.searchAccounts` (query, admin): accounts whose e-mail address contains
//! `email` (case-insensitive), or every account without it; `limit` 1 to 100 (50), paged by DID
//! with `cursor`.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::{AccountView, account_views};
use crate::api::{ApiError, Params};
use crate::auth::admin::AdminAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.admin.searchAccounts";

#[derive(Debug, Serialize)]
pub struct Output {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    pub accounts: Vec<AccountView>,
}

pub async fn handle(
    State(state): State<AppState>,
    _admin: AdminAuth,
    params: Params,
) -> Result<Json<Output>, ApiError> {
    let limit = params.integer("limit", 50, 1, 100)? as usize;
    let email = params.get("email").map(|e| e.trim().to_lowercase());
    let cursor = params.get("cursor").map(str::to_owned);
    let (accounts, more) = state
        .db
        .read(move |store| {
            let conn = store.connection();
            let dids = crate::accounts::search(
                conn,
                email.as_deref().filter(|e| !e.is_empty()),
                cursor.as_deref(),
                limit + 1,
            )?;
            let more = dids.len() > limit;
            let dids: Vec<String> = dids.into_iter().take(limit).collect();
            Ok::<_, crate::accounts::AccountError>((account_views(conn, &dids)?, more))
        })
        .await?;
    let cursor = more
        .then(|| accounts.last().map(|a| a.did.clone()))
        .flatten();
    Ok(Json(Output { cursor, accounts }))
}
