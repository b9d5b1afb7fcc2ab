//! `com.atproto.server.createAppPassword` (procedure): a new named app password, returned once.
//! Needs a session made with the account password (as the reference: `ACCESS_FULL`), so an app
//! cannot mint itself more credentials.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::accounts::{self, AccountError, app_passwords};
use crate::api::{ApiError, XrpcJson};
use crate::auth::AccessAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.createAppPassword";

#[derive(Debug, Deserialize)]
pub struct Input {
    pub name: String,
    #[serde(default)]
    pub privileged: Option<bool>,
}

/// `com.atproto.server.createAppPassword#appPassword`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub name: String,
    pub password: String,
    pub created_at: String,
    pub privileged: bool,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<Json<Output>, ApiError> {
    auth.require_full()?;
    app_passwords::check_name(&input.name)?;
    let privileged = input.privileged.unwrap_or(false);
    {
        let did = auth.did.clone();
        state
            .db
            .read(move |store| accounts::not_taken_down(store.connection(), &did))
            .await?;
    }
    let password = app_passwords::generate();
    let hash = {
        let (did, password) = (auth.did.clone(), password.clone());
        tokio::task::spawn_blocking(move || app_passwords::hash(&did, &password))
            .await
            .map_err(ApiError::internal)?
    };
    let created_at = pds_syntax::Datetime::now().to_string();
    {
        let (did, name, created_at) = (auth.did.clone(), input.name.clone(), created_at.clone());
        state
            .db
            .write(move |w| -> Result<(), AccountError> {
                app_passwords::insert(
                    w.tx.connection(),
                    &did,
                    &name,
                    &hash,
                    privileged,
                    &created_at,
                )
            })
            .await?;
    }
    Ok(Json(Output {
        name: input.name,
        password,
        created_at,
        privileged,
    }))
}
