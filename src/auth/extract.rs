//! Axum extractors: a handler that takes [`AccessAuth`] runs only for a valid access token,
//! either a password session's (`Authorization: Bearer`) or an OAuth app's (`Authorization:
//! DPoP` with a proof, checked by [`crate::oauth::resource`]).
//!
//! What a token may do is asked of the [`AccessAuth`], never worked out by a handler: the
//! `require_*` methods answer for both kinds. A password session may do everything its login
//! allows (an app password: no account management); an OAuth token only what its scopes
//! grant.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use pds_permissions::{AccountAction, AccountAttr, IdentityAttr, RepoAction};

use super::{Scope, TokenError, verify_access, verify_refresh};
use crate::api::ApiError;
use crate::oauth::resource::OAuthAccess;
use crate::state::AppState;

/// The caller, authenticated by an access token.
#[derive(Debug, Clone)]
pub struct AccessAuth {
    pub did: String,
    /// The login's kind. An OAuth token counts as an app password (privileged when it may use
    /// chat), for the rules that predate OAuth (preferences, service auth).
    pub scope: Scope,
    /// Set for an OAuth token: the app and what it was granted.
    pub oauth: Option<OAuthAccess>,
}

/// 403 for an OAuth token whose scopes do not cover the call. The message names the scope
/// that would.
fn scope_missing(needed: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "ScopeMissingError",
        format!("Missing required scope \"{needed}\""),
    )
}

impl AccessAuth {
    /// Account management (passwords, e-mail, app passwords, deletion) needs the real password.
    /// No OAuth token ever qualifies: for the parts of account management OAuth scopes can
    /// grant, handlers ask [`AccessAuth::require_account`] or [`AccessAuth::require_identity`].
    pub fn require_full(&self) -> Result<(), ApiError> {
        match (self.scope, &self.oauth) {
            (Scope::Full, None) => Ok(()),
            (_, Some(_)) => Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "InvalidToken",
                "This method needs a session made with the account password, not an OAuth app",
            )),
            _ => Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "InvalidToken",
                "This method needs a session made with the account password, not an app password",
            )),
        }
    }

    /// Managing app passwords: any password session, never an OAuth app (app passwords are the
    /// way in for apps that cannot do OAuth; an OAuth app minting them would outlive its grant).
    pub fn require_not_oauth(&self) -> Result<(), ApiError> {
        match &self.oauth {
            None => Ok(()),
            Some(_) => Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "InvalidToken",
                "This method is not available to OAuth apps",
            )),
        }
    }

    /// Writing records of `collection`: any password session; an OAuth token with `repo:`.
    pub fn require_repo(&self, collection: &str, action: RepoAction) -> Result<(), ApiError> {
        match &self.oauth {
            Some(o) if !o.scope.allows_repo(collection, action) => {
                let action = match action {
                    RepoAction::Create => "create",
                    RepoAction::Update => "update",
                    RepoAction::Delete => "delete",
                };
                Err(scope_missing(format_args!(
                    "repo:{collection}?action={action}"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Uploading a blob of type `mime`: any password session; an OAuth token with `blob:`.
    pub fn require_blob(&self, mime: &str) -> Result<(), ApiError> {
        match &self.oauth {
            Some(o) if !o.scope.allows_blob(mime) => {
                Err(scope_missing(format_args!("blob:{mime}")))
            }
            _ => Ok(()),
        }
    }

    /// Calling `lxm` at the service `aud` (`did#service_id`) through this server: any password
    /// session (chat has its own rule, see the proxy); an OAuth token with `rpc:`.
    pub fn require_rpc(&self, lxm: &str, aud: &str) -> Result<(), ApiError> {
        match &self.oauth {
            Some(o) if !o.scope.allows_rpc(lxm, aud) => {
                Err(scope_missing(format_args!("rpc:{lxm}?aud={aud}")))
            }
            _ => Ok(()),
        }
    }

    /// Changing the account's identity (handle, DID document): the account password; or an
    /// OAuth token with `identity:`.
    pub fn require_identity(&self, attr: IdentityAttr) -> Result<(), ApiError> {
        match &self.oauth {
            None => self.require_full(),
            Some(o) if o.scope.allows_identity(attr) => Ok(()),
            Some(_) => Err(scope_missing(match attr {
                IdentityAttr::Handle => "identity:handle",
                IdentityAttr::All => "identity:*",
            })),
        }
    }

    /// Account settings (`account:email`, `account:repo`, `account:status`): the account
    /// password to manage them; or an OAuth token with that `account:` scope.
    pub fn require_account(
        &self,
        attr: AccountAttr,
        action: AccountAction,
    ) -> Result<(), ApiError> {
        match &self.oauth {
            None => match action {
                AccountAction::Read => Ok(()),
                AccountAction::Manage => self.require_full(),
            },
            Some(o) if o.scope.allows_account(attr, action) => Ok(()),
            Some(_) => {
                let attr = match attr {
                    AccountAttr::Email => "email",
                    AccountAttr::Repo => "repo",
                    AccountAttr::Status => "status",
                };
                let action = match action {
                    AccountAction::Read => "read",
                    AccountAction::Manage => "manage",
                };
                Err(scope_missing(format_args!(
                    "account:{attr}?action={action}"
                )))
            }
        }
    }

    /// Whether the caller may see the account's e-mail address: the account password, or an
    /// OAuth token with `account:email` (`transition:email`).
    pub fn may_read_email(&self) -> bool {
        match &self.oauth {
            None => self.scope == Scope::Full,
            Some(o) => o
                .scope
                .allows_account(AccountAttr::Email, AccountAction::Read),
        }
    }
}

/// The caller, presenting a refresh token (for `refreshSession` and `deleteSession`).
#[derive(Debug, Clone)]
pub struct RefreshAuth {
    pub did: String,
    pub token_id: String,
}

/// The `Authorization` header: its scheme (`Bearer` or `DPoP`, any case) and token.
fn credentials(parts: &Parts) -> Result<(&str, &str), ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::authentication_required("Authentication Required"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::invalid_token("Malformed authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop"))
                && !token.trim().is_empty() =>
        {
            Ok((scheme, token.trim()))
        }
        _ => Err(ApiError::authentication_required("Expected a Bearer token")),
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    match credentials(parts)? {
        (scheme, token) if scheme.eq_ignore_ascii_case("bearer") => Ok(token),
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
        let (scheme, token) = credentials(parts)?;
        if scheme.eq_ignore_ascii_case("dpop") {
            let access = crate::oauth::resource::verify(state, parts, token).await?;
            let scope = match access.scope.has_transition_chat() {
                true => Scope::AppPassPrivileged,
                false => Scope::AppPass,
            };
            return Ok(AccessAuth {
                did: access.did.clone(),
                scope,
                oauth: Some(access),
            });
        }
        let (did, scope) = verify_access(
            state.secrets.jwt_secret.as_bytes(),
            &state.config.server.service_did,
            token,
        )
        .map_err(|e| match crate::oauth::tokens::looks_dpop_bound(token) {
            // An OAuth token sent as a plain bearer token: it is worthless without its proof.
            true => ApiError::invalid_token(
                "This token is DPoP-bound: send it with the DPoP scheme and a proof",
            ),
            false => token_error(e),
        })?;
        Ok(AccessAuth {
            did,
            scope,
            oauth: None,
        })
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
