//! `com.atproto.admin.getInviteCodes` (query, admin): every invite code with its uses, newest
//! first (`sort=recent`, the default) or most used first (`sort=usage`); `limit` 1 to 500 (100),
//! `cursor` from the previous page.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::accounts::invites::{self, Sort};
use crate::api::com::atproto::server::get_account_invite_codes::InviteCode;
use crate::api::{ApiError, Params};
use crate::auth::admin::AdminAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.admin.getInviteCodes";

#[derive(Debug, Serialize)]
pub struct Output {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    pub codes: Vec<InviteCode>,
}

pub async fn handle(
    State(state): State<AppState>,
    _admin: AdminAuth,
    params: Params,
) -> Result<Json<Output>, ApiError> {
    let sort = match params.get("sort").unwrap_or("recent") {
        "recent" => Sort::Recent,
        "usage" => Sort::Usage,
        other => {
            return Err(ApiError::invalid_request(format!(
                "sort must be \"recent\" or \"usage\", not {other:?}"
            )));
        }
    };
    let limit = params.integer("limit", 100, 1, 500)? as usize;
    // The cursor is the position of the next page (codes are few and this is the operator's).
    let offset = match params.get("cursor") {
        None | Some("") => 0,
        Some(cursor) => cursor
            .parse::<u32>()
            .map_err(|_| ApiError::invalid_request("malformed cursor"))?
            as usize,
    };
    let codes = state
        .db
        .read(move |store| invites::list(store.connection(), sort, offset, limit))
        .await?;
    let cursor = (codes.len() == limit)
        .then(|| offset.checked_add(limit))
        .flatten()
        .map(|next| next.to_string());
    Ok(Json(Output {
        cursor,
        codes: codes.into_iter().map(InviteCode::from).collect(),
    }))
}
