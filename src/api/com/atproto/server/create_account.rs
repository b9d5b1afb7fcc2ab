//! `com.atproto.server.createAccount` (procedure): a new account with an empty repo and a first
//! session, for a new did:plc, for a did:web the caller brings, or for an existing did:plc
//! moving here from another server, which starts deactivated (see `accounts::service`).
//!
//! Bringing a DID needs proof that the request comes from whoever controls it, as the
//! reference asks (`userServiceAuthOptional`): the operator's admin credentials (HTTP Basic), or
//! a service-auth JWT the DID signed for this server and this method. For a migration that JWT
//! comes from the old server (`getServiceAuth` there, signed with the key the DID document still
//! names). Without proof, or with a token from another DID: 401.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use pds_identity::DidDocument;
use pds_syntax::Did;
use serde::{Deserialize, Serialize};

use crate::accounts::service::{self, BroughtDid, CreateAccountInput};
use crate::accounts::{AccountError, invites};
use crate::api::{ApiError, XrpcJson};
use crate::auth::admin::AdminAuth;
use crate::auth::{now_secs, service_jwt};
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
    /// An existing DID to host: a did:web pointed here, or a did:plc moving here.
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
    admin: Result<AdminAuth, ApiError>,
    headers: HeaderMap,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<Json<Output>, ApiError> {
    let brought = match &input.did {
        Some(did) => {
            let did = Did::new(did)
                .map_err(|_| ApiError::invalid_request("Input/did must be a valid did"))?;
            let document = prove_control(&state, admin, &headers, &did).await?;
            Some(BroughtDid { did, document })
        }
        None => None,
    };
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
            did: brought,
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

/// The request must show that it comes from whoever controls `did`: the operator (HTTP Basic
/// admin credentials), or `did` itself (a service-auth JWT it signed, `iss` = `did`, for this
/// server and this method). Returns the DID document when checking the JWT fetched it.
async fn prove_control(
    state: &AppState,
    admin: Result<AdminAuth, ApiError>,
    headers: &HeaderMap,
    did: &Did,
) -> Result<Option<Arc<DidDocument>>, ApiError> {
    let missing = || {
        ApiError::authentication_required(format!("Missing auth to create account with did: {did}"))
    };
    let Some(header) = headers.get(AUTHORIZATION) else {
        return Err(missing());
    };
    let header = header
        .to_str()
        .map_err(|_| ApiError::invalid_token("Malformed authorization header"))?;
    let (scheme, credentials) = header.trim().split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        // A wrong admin password is refused as such, not as missing auth.
        admin?;
        return Ok(None);
    }
    if !scheme.eq_ignore_ascii_case("bearer") || credentials.trim().is_empty() {
        return Err(missing());
    }
    let token = credentials.trim();
    let claims =
        service_jwt::check_claims(token, &state.config.server.service_did, NSID, now_secs())?;
    // Checked before anything is fetched for the token: only the DID itself can vouch for it.
    if claims.iss != did.as_str() {
        return Err(missing());
    }
    let document = service_jwt::verify_signature(&state.id_resolver, token, &claims).await?;
    Ok(Some(document))
}
