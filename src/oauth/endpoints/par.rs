//! `POST /oauth/par`: a pushed authorization request (RFC 9126), the only way to start one
//! here. The client authenticates (or is public), proves its DPoP key, and sends the whole
//! request; it gets back a `request_uri` for the browser.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use pds_permissions::ScopeSet;
use serde_json::json;

use super::{Form, authenticate_client, no_store_json, require_form_content_type};
use crate::oauth::error::OAuthHttpError;
use crate::oauth::store::{self, AuthorizationParameters, AuthorizationRequest, ResponseMode};
use crate::oauth::{REQUEST_TTL_SECS, tokens};
use crate::state::AppState;

pub const PATH: &str = "/oauth/par";
/// The `request_uri` form (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

pub async fn handle(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthHttpError> {
    require_form_content_type(&headers)?;
    let form = Form::parse(&body)?;
    let now = crate::auth::now_secs();
    let proof =
        state
            .oauth
            .dpop
            .check(&headers, &Method::POST, &state.oauth.url(PATH), None, now)?;
    let client_id = form.require("client_id")?;
    let client = state.oauth.clients.get(client_id).await?;
    let client_auth = authenticate_client(&state, &client, &form, Some(&proof.jkt), now)?;

    if form.get("request").is_some() {
        return Err(OAuthHttpError::new(
            StatusCode::BAD_REQUEST,
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if form.require("response_type")? != "code" {
        return Err(OAuthHttpError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    if form.require("code_challenge_method")? != "S256" {
        return Err(OAuthHttpError::invalid_request(
            "code_challenge_method must be S256",
        ));
    }
    let code_challenge = form.require("code_challenge")?;
    if !pds_oauth::pkce::is_valid_challenge(code_challenge) {
        return Err(OAuthHttpError::invalid_request("malformed code_challenge"));
    }
    if let Some(jkt) = form.get("dpop_jkt")
        && jkt != proof.jkt
    {
        return Err(OAuthHttpError::invalid_request(
            "dpop_jkt does not match the DPoP proof's key",
        ));
    }
    let redirect_uri = match form.get("redirect_uri") {
        Some(uri) => uri.to_owned(),
        None => match client.metadata.redirect_uris.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(OAuthHttpError::invalid_request(
                    "missing parameter redirect_uri",
                ));
            }
        },
    };
    if !client.metadata.allows_redirect_uri(&redirect_uri) {
        return Err(OAuthHttpError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is not one of the client's registered redirect URIs",
        ));
    }
    let scope_text = form.get("scope").unwrap_or(&client.metadata.scope);
    let mut scope = check_scope(scope_text, &client.metadata.scope)?;
    // Permission sets are fetched now, so that the person approves what they grant today and
    // the grant keeps that, whatever the publisher changes later.
    state
        .oauth
        .permission_sets
        .expand(&state, &mut scope)
        .await?;
    let response_mode = match form.get("response_mode") {
        None => ResponseMode::Query,
        Some(mode) => ResponseMode::parse(mode).ok_or_else(|| {
            OAuthHttpError::invalid_request("response_mode must be query, fragment or form_post")
        })?,
    };
    let prompt = form.get("prompt").map(str::to_owned);
    if let Some(prompt) = &prompt
        && !["none", "login", "consent", "select_account", "create"].contains(&prompt.as_str())
    {
        return Err(OAuthHttpError::invalid_request("unknown prompt value"));
    }
    // atproto clients must send a state (the atproto profile), so that the response can be
    // matched to the request.
    let state_param = form.require("state")?.to_owned();

    let request = AuthorizationRequest {
        id: tokens::random_token("req-"),
        client_id: client.metadata.client_id.clone(),
        client_auth,
        parameters: AuthorizationParameters {
            redirect_uri,
            scope: scope.to_scope_string(),
            permissions: scope.to_expanded_scope_string(),
            state: Some(state_param),
            code_challenge: code_challenge.to_owned(),
            response_mode,
            login_hint: form.get("login_hint").map(str::to_owned),
            prompt,
        },
        dpop_jkt: Some(proof.jkt),
        did: None,
        expires_at: now + REQUEST_TTL_SECS,
    };
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", request.id);
    state
        .db
        .write(move |w| {
            store::insert_request(w.tx.connection(), &request).map_err(OAuthHttpError::from)
        })
        .await?;
    Ok(no_store_json(
        StatusCode::CREATED,
        json!({"request_uri": request_uri, "expires_in": REQUEST_TTL_SECS - 1}),
    ))
}

/// A requested scope: well-formed, with `atproto`, and no wider than the client registered.
pub fn check_scope(requested: &str, registered: &str) -> Result<ScopeSet, OAuthHttpError> {
    let invalid_scope =
        |why: String| OAuthHttpError::new(StatusCode::BAD_REQUEST, "invalid_scope", why);
    let scope = ScopeSet::parse(requested).map_err(|e| invalid_scope(e.to_string()))?;
    if !scope.has_atproto() {
        return Err(invalid_scope("the scope must include atproto".into()));
    }
    let registered = ScopeSet::parse(registered)
        .map_err(|e| invalid_scope(format!("the client's registered scope: {e}")))?;
    if !scope.is_subset_of(&registered) {
        return Err(invalid_scope(
            "the scope asks for more than the client's metadata registers".into(),
        ));
    }
    Ok(scope)
}
