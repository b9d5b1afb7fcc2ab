//! This server as an OAuth resource server: an XRPC request with `Authorization: DPoP <token>`
//! and a `DPoP` proof. The token must be ours, unexpired and for us; the proof fresh, unused,
//! for this request, with the current nonce, made with the key the token is bound to, and
//! bound to the token (`ath`); and the grant behind the token must still exist (a revoked
//! grant ends its access tokens at once, not when they expire).
//!
//! Refusals are 401 with a `WWW-Authenticate: DPoP error="..."` challenge, which is what
//! OAuth clients act on: `use_dpop_nonce` retries with the nonce in `DPoP-Nonce`,
//! `invalid_token` refreshes.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::http::request::Parts;
use pds_permissions::ScopeSet;

use super::dpop::DpopRefusal;
use super::store;
use crate::api::ApiError;
use crate::auth::TokenError;
use crate::state::AppState;

/// The caller, authenticated by an OAuth access token.
#[derive(Debug, Clone)]
pub struct OAuthAccess {
    pub did: String,
    pub client_id: String,
    /// What the account granted the app.
    pub scope: Arc<ScopeSet>,
}

fn refusal(name: &'static str, code: &str, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, name, message).with_www_authenticate(format!(
        "DPoP error=\"{code}\", error_description=\"{}\"",
        message.replace(['"', '\\'], "'")
    ))
}

fn invalid_token(message: &str) -> ApiError {
    refusal("InvalidToken", "invalid_token", message)
}

/// Checks a DPoP-bound access token and its proof for this request.
pub async fn verify(state: &AppState, parts: &Parts, token: &str) -> Result<OAuthAccess, ApiError> {
    let oauth = &state.oauth;
    let now = crate::auth::now_secs();
    let claims = super::tokens::verify_access(
        &oauth.token_key,
        &state.config.server.service_did,
        token,
        now,
    )
    .map_err(|e| match e {
        TokenError::Expired => refusal("ExpiredToken", "invalid_token", "Token has expired"),
        TokenError::Invalid(why) => invalid_token(why),
    })?;
    let url = oauth.url(parts.uri.path());
    let proof = oauth
        .dpop
        .check(&parts.headers, &parts.method, &url, Some(token), now)
        .map_err(|r| match r {
            DpopRefusal::UseNonce => refusal(
                "use_dpop_nonce",
                "use_dpop_nonce",
                "Resource server requires nonce in DPoP proof",
            ),
            DpopRefusal::Missing => refusal(
                "invalid_dpop_proof",
                "invalid_dpop_proof",
                "DPoP proof required",
            ),
            DpopRefusal::Invalid(why) => refusal("invalid_dpop_proof", "invalid_dpop_proof", &why),
            DpopRefusal::Replayed => refusal(
                "invalid_dpop_proof",
                "invalid_dpop_proof",
                "DPoP proof replayed",
            ),
        })?;
    if proof.jkt != claims.jkt {
        return Err(invalid_token(
            "the DPoP proof is not made with the token's key",
        ));
    }
    let grant_id = claims.grant_id.clone();
    let grant = state
        .db
        .read(move |s| {
            store::live_grant(s.connection(), &grant_id, now)
                .map_err(crate::accounts::AccountError::from)
        })
        .await
        .map_err(ApiError::internal)?;
    match grant {
        Some(grant) if grant.did == claims.did => {}
        _ => return Err(invalid_token("Token has been revoked")),
    }
    let scope = ScopeSet::parse(&claims.scope)
        .map_err(|_| invalid_token("the token's scope is not understood"))?;
    Ok(OAuthAccess {
        did: claims.did,
        client_id: claims.client_id,
        scope: Arc::new(scope),
    })
}
