//! `com.atproto.server.createSession` (procedure): log in with a handle, DID or e-mail and the
//! account password or an app password.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::accounts::service;
use crate::api::{ApiError, XrpcJson};
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.createSession";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    pub identifier: String,
    pub password: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub access_jwt: String,
    pub refresh_jwt: String,
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
    XrpcJson(input): XrpcJson<Input>,
) -> Result<Json<Output>, ApiError> {
    let (account, scope, app_password) =
        service::login(&state, &input.identifier, &input.password).await?;
    if account.takendown {
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "AccountTakedown",
            "Account has been taken down",
        ));
    }
    let tokens = service::start_session(&state, &account.did, scope, app_password).await?;
    Ok(Json(Output {
        access_jwt: tokens.access_jwt,
        refresh_jwt: tokens.refresh_jwt,
        active: account.active(),
        status: account.status(),
        handle: account.handle,
        did: account.did,
        // App-password sessions do not see the account's e-mail.
        email: if scope == crate::auth::Scope::Full {
            account.email
        } else {
            None
        },
        email_confirmed: account.email_confirmed,
    }))
}
