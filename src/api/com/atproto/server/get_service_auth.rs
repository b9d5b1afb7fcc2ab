//! `com.atproto.server.getServiceAuth` (query): a service-auth token for the caller, signed
//! with the account's repo signing key, for another service (`aud`) and optionally one method
//! (`lxm`). This is how an account proves itself to a server it is moving to
//! (`lxm=com.atproto.server.createAccount`), or to a service a client talks to directly.
//!
//! As the reference: `exp` (seconds since the epoch) defaults to a minute from now, may be at
//! most an hour away when bound to a method and a minute otherwise; no token for the protected
//! account-management methods, and none for the privileged ones (DMs, createAccount) from a
//! plain app password. See `auth::service_jwt` for the rules and the token's shape.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::accounts;
use crate::api::ApiError;
use crate::api::com::atproto::sync::Params;
use crate::auth::service_jwt::{self, ServiceJwtRequest};
use crate::auth::{AccessAuth, Scope, now_secs};
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.getServiceAuth";

#[derive(Debug, Serialize)]
pub struct Output {
    pub token: String,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    params: Params,
) -> Result<Json<Output>, ApiError> {
    let aud = params.did("aud")?;
    let exp = params
        .get("exp")
        .map(|exp| {
            exp.parse::<i64>()
                .map_err(|_| ApiError::invalid_request("exp must be an integer"))
        })
        .transpose()?;
    let lxm = params.get("lxm");
    if let Some(lxm) = lxm {
        pds_syntax::Nsid::new(lxm)
            .map_err(|_| ApiError::invalid_request("lxm must be a valid nsid"))?;
    }
    // An OAuth app may only ask for tokens its `rpc:` scopes cover: for one method, at the
    // audience asked for (with or without a service id).
    if auth.oauth.is_some() {
        let lxm = lxm.ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "ScopeMissingError",
                "An OAuth app must name the method (lxm) a service token is for",
            )
        })?;
        auth.require_rpc(lxm, &aud)?;
    }
    let privileged = matches!(auth.scope, Scope::Full | Scope::AppPassPrivileged);
    let now = now_secs();
    let exp = service_jwt::check_mint_request(exp, lxm, privileged, now)?;
    let did = auth.did.clone();
    let key = state
        .db
        .read(move |store| accounts::signing_key(store.connection(), &did))
        .await?;
    let token = service_jwt::mint(
        &key,
        &ServiceJwtRequest {
            iss: &auth.did,
            aud: &aud,
            lxm,
            iat: now,
            exp,
        },
    );
    Ok(Json(Output { token }))
}
