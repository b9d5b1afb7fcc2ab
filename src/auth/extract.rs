//! Axum extractors: a handler that takes [`AccessAuth`] runs only for a valid access token.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::{Scope, TokenError, verify_access, verify_refresh};
use crate::api::ApiError;
use crate::state::AppState;

/// The caller, authenticated by an access token.
#[derive(Debug, Clone)]
pub struct AccessAuth {
    pub did: String,
    pub scope: Scope,
}

impl AccessAuth {
    /// Account management (passwords, e-mail, app passwords, deletion) needs the real password.
    pub fn require_full(&self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Full => Ok(()),
            _ => Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "InvalidToken",
                "This method needs a session made with the account password, not an app password",
            )),
        }
    }
}

/// The caller, presenting a refresh token (for `refreshSession` and `deleteSession`).
#[derive(Debug, Clone)]
pub struct RefreshAuth {
    pub did: String,
    pub token_id: String,
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::authentication_required("Authentication Required"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::invalid_token("Malformed authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::authentication_required("Expected a Bearer token")),
    }
}

fn token_error(e: TokenError) -> ApiError {
    match e {
        TokenError::Expired => ApiError::expired_token("Token has expired"),
        TokenError::Invalid(why) => ApiError::invalid_token(why),
    }
}

impl FromRequestParts<AppState> for AccessAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let (did, scope) = verify_access(
            state.secrets.jwt_secret.as_bytes(),
            &state.config.server.service_did,
            token,
        )
        .map_err(token_error)?;
        Ok(AccessAuth { did, scope })
    }
}

impl FromRequestParts<AppState> for RefreshAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let (did, token_id) = verify_refresh(
            state.secrets.jwt_secret.as_bytes(),
            &state.config.server.service_did,
            token,
        )
        .map_err(token_error)?;
        Ok(RefreshAuth { did, token_id })
    }
}
