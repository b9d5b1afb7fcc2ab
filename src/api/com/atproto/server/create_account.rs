//! `com.atproto.server.createAccount` (procedure): a new account with a did:plc, a handle under
//! one of this server's domains, an empty repo, and a first session.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::accounts::service::{self, CreateAccountInput};
use crate::accounts::{AccountError, invites};
use crate::api::{ApiError, XrpcJson};
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.createAccount";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    pub handle: String,
    pub email: Option<String>,
    pub password: Option<String>,
    pub invite_code: Option<String>,
    pub recovery_key: Option<String>,
    /// Migration into this server (an existing DID) is not supported yet.
    pub did: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub access_jwt: String,
    pub refresh_jwt: String,
    pub handle: String,
    pub did: String,
}

pub async fn handle(
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<Json<Output>, ApiError> {
    if input.did.is_some() {
        return Err(ApiError::invalid_request(
            "Creating an account for an existing DID is not supported yet",
        ));
    }
    // When invites are required, a usable code is checked here, before a DID is registered for
    // nothing, and used up in the transaction that creates the account. When they are not, a
    // code sent anyway is ignored.
    let invite_code = if state.config.accounts.invite_required {
        let code = input
            .invite_code
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| AccountError::InvalidInviteCode("No invite code provided".into()))?;
        let checked = code.clone();
        state
            .db
            .read(move |store| invites::check_available(store.connection(), &checked))
            .await?;
        Some(code)
    } else {
        None
    };
    let password = input
        .password
        .ok_or_else(|| ApiError::invalid_request("A password is required"))?;
    let created = service::create_account(
        &state,
        CreateAccountInput {
            handle: input.handle,
            email: input.email,
            password,
            recovery_key: input.recovery_key,
            invite_code,
        },
    )
    .await?;
    Ok(Json(Output {
        access_jwt: created.tokens.access_jwt,
        refresh_jwt: created.tokens.refresh_jwt,
        handle: created.handle,
        did: created.did,
    }))
}
