//! `app.bsky.actor.putPreferences` (procedure): replaces the caller's preferences.

use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;

use crate::api::{ApiError, XrpcJson};
use crate::auth::AccessAuth;
use crate::preferences;
use crate::state::AppState;

pub const NSID: &str = "app.bsky.actor.putPreferences";

#[derive(Debug, Deserialize)]
pub struct Input {
    pub preferences: Vec<Value>,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<(), ApiError> {
    auth.require_rpc(NSID, &preferences::scope_audience(&state))?;
    let checked = preferences::check(&input.preferences, auth.scope)?;
    let (did, scope) = (auth.did, auth.scope);
    state
        .db
        .write(move |w| {
            let conn = w.tx.connection();
            crate::accounts::not_taken_down(conn, &did)?;
            preferences::put(conn, &did, scope, &checked)
        })
        .await?;
    Ok(())
}
