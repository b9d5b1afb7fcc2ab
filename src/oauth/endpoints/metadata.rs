//! `/.well-known/oauth-protected-resource` (RFC 9728) and
//! `/.well-known/oauth-authorization-server` (RFC 8414): where an app learns that this server
//! is its own authorization server, and how to talk to it.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::{authorize, par, revoke, token};
use crate::oauth::SCOPES_SUPPORTED;
use crate::state::AppState;

pub const PROTECTED_RESOURCE_PATH: &str = "/.well-known/oauth-protected-resource";
pub const AUTHORIZATION_SERVER_PATH: &str = "/.well-known/oauth-authorization-server";

pub async fn protected_resource(State(state): State<AppState>) -> Json<Value> {
    let issuer = &state.oauth.issuer;
    Json(json!({
        "resource": issuer,
        "authorization_servers": [issuer],
        "scopes_supported": [],
        "bearer_methods_supported": ["header"],
        "resource_documentation": "https://atproto.com",
    }))
}

pub async fn authorization_server(State(state): State<AppState>) -> Json<Value> {
    let oauth = &state.oauth;
    Json(json!({
        "issuer": oauth.issuer,
        "authorization_endpoint": oauth.url(authorize::PATH),
        "token_endpoint": oauth.url(token::PATH),
        "pushed_authorization_request_endpoint": oauth.url(par::PATH),
        "revocation_endpoint": oauth.url(revoke::PATH),
        "require_pushed_authorization_requests": true,
        "scopes_supported": SCOPES_SUPPORTED,
        "subject_types_supported": ["public"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "ui_locales_supported": ["en-US"],
        "display_values_supported": ["page"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": true,
        "require_request_uri_registration": true,
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "revocation_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "revocation_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "dpop_signing_alg_values_supported": ["ES256", "ES256K"],
        "client_id_metadata_document_supported": true,
        "protected_resources": [oauth.issuer],
    }))
}
