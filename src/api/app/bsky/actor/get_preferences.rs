//! `app.bsky.actor.getPreferences` (query): the caller's preferences.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;

use crate::api::ApiError;
use crate::auth::AccessAuth;
use crate::preferences;
use crate::state::AppState;

pub const NSID: &str = "app.bsky.actor.getPreferences";

#[derive(Debug, Serialize)]
pub struct Output {
    pub preferences: Vec<Value>,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
) -> Result<Json<Output>, ApiError> {
    auth.require_rpc(NSID, &crate::preferences::scope_audience(&state))?;
    let (did, scope) = (auth.did, auth.scope);
    let preferences = state
        .db
        .read(move |store| preferences::get(store.connection(), &did, scope))
        .await?;
    Ok(Json(Output { preferences }))
}
