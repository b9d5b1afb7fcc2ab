//! `com.atproto.server.listAppPasswords` (query): the account's app passwords, newest first,
//! without the passwords. App-password sessions may call it too, as in the reference.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::accounts::{AccountError, app_passwords};
use crate::api::ApiError;
use crate::auth::AccessAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.listAppPasswords";

#[derive(Debug, Serialize)]
pub struct Output {
    pub passwords: Vec<AppPassword>,
}

/// `com.atproto.server.listAppPasswords#appPassword`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppPassword {
    pub name: String,
    pub created_at: String,
    pub privileged: bool,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
) -> Result<Json<Output>, ApiError> {
    auth.require_not_oauth()?;
    let did = auth.did;
    let passwords = state
        .db
        .read(move |store| -> Result<_, AccountError> {
            let conn = store.connection();
            crate::accounts::not_taken_down(conn, &did)?;
            app_passwords::list(conn, &did)
        })
        .await?;
    Ok(Json(Output {
        passwords: passwords
            .into_iter()
            .map(|p| AppPassword {
                name: p.name,
                created_at: p.created_at,
                privileged: p.privileged,
            })
            .collect(),
    }))
}
