//! `com.atproto.server.refreshSession` (procedure): trade a refresh token for a new pair. The old
//! refresh token is consumed: it works once.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::accounts::{self, AccountError, service};
use crate::api::ApiError;
use crate::auth::{RefreshAuth, Scope};
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.refreshSession";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub access_jwt: String,
    pub refresh_jwt: String,
    pub handle: String,
    pub did: String,
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: RefreshAuth,
) -> Result<Json<Output>, ApiError> {
    let (did, id) = (auth.did.clone(), auth.token_id.clone());
    let consumed = state
        .db
        .write(move |w| {
            let conn = w.tx.connection();
            let Some(app_password) = accounts::take_refresh_token(conn, &id, &did)? else {
                return Ok::<_, AccountError>(None);
            };
            let account = accounts::by_did(conn, &did)?.ok_or(AccountError::NotFound)?;
            // An app password that was revoked since takes its sessions with it.
            if let Some(name) = &app_password
                && !accounts::app_password_hashes(conn, &did)?
                    .iter()
                    .any(|p| &p.name == name)
            {
                return Ok(None);
            }
            Ok(Some((account, app_password)))
        })
        .await?;
    let Some((account, app_password)) = consumed else {
        return Err(ApiError::expired_token("Token has been revoked"));
    };
    let scope = match &app_password {
        None => Scope::Full,
        Some(name) => {
            let name = name.clone();
            let did = account.did.clone();
            let privileged = state
                .db
                .read(move |store| {
                    Ok::<_, AccountError>(
                        accounts::app_password_hashes(store.connection(), &did)?
                            .into_iter()
                            .any(|p| p.name == name && p.privileged),
                    )
                })
                .await?;
            if privileged {
                Scope::AppPassPrivileged
            } else {
                Scope::AppPass
            }
        }
    };
    let tokens = service::start_session(&state, &account.did, scope, app_password).await?;
    Ok(Json(Output {
        access_jwt: tokens.access_jwt,
        refresh_jwt: tokens.refresh_jwt,
        active: account.active(),
        status: account.status(),
        handle: account.handle,
        did: account.did,
    }))
}
