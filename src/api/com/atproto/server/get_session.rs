//! `com.atproto.server.getSession` (query): who the access token belongs to.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::accounts::{self, AccountError};
use crate::api::ApiError;
use crate::auth::AccessAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.getSession";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub handle: String,
    pub did: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub email_confirmed: bool,
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
) -> Result<Json<Output>, ApiError> {
    let did = auth.did.clone();
    let account = state
        .db
        .read(move |store| accounts::by_did(store.connection(), &did))
        .await?
        .ok_or(AccountError::NotFound)?;
    Ok(Json(Output {
        active: account.active(),
        status: account.status(),
        handle: account.handle,
        did: account.did,
        email: if auth.may_read_email() {
            account.email
        } else {
            None
        },
        email_confirmed: account.email_confirmed,
    }))
}
