//! `POST /oauth/token`: a code (with its PKCE verifier) or a refresh token for DPoP-bound
//! tokens. Each refresh rotates the refresh token; presenting one already rotated out ends
//! the grant (someone else has a copy).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::{Form, authenticate_client, no_store_json, require_form_content_type};
use crate::oauth::error::OAuthHttpError;
use crate::oauth::store::{self, ClientAuth, Grant, RefreshLookup};
use crate::oauth::tokens::{self, AccessClaims};
use crate::oauth::{
    ACCESS_TOKEN_TTL_SECS, CONFIDENTIAL_GRANT_TTL_SECS, CONFIDENTIAL_REFRESH_TTL_SECS,
    PUBLIC_GRANT_TTL_SECS,
};
use crate::state::AppState;

pub const PATH: &str = "/oauth/token";

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
    let client_name = client.metadata.client_name.clone();
    let client_id = client.metadata.client_id.clone();

    let grant = match form.require("grant_type")? {
        "authorization_code" => {
            exchange_code(
                &state,
                &form,
                client_id,
                client_name,
                client_auth,
                proof.jkt,
                now,
            )
            .await?
        }
        "refresh_token" => {
            refresh(&state, &form, &client_id, &client_auth, &proof.jkt, now).await?
        }
        _ => {
            return Err(OAuthHttpError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            ));
        }
    };
    let (grant, refresh_token) = grant;
    let access_token = tokens::issue_access(
        &state.oauth.token_key,
        &state.oauth.issuer,
        &state.config.server.service_did,
        &AccessClaims {
            did: grant.did.clone(),
            grant_id: grant.id.clone(),
            client_id: grant.client_id.clone(),
            scope: grant.permissions.clone(),
            jkt: grant.dpop_jkt.clone(),
            exp: now + ACCESS_TOKEN_TTL_SECS,
        },
        now,
    );
    Ok(no_store_json(
        StatusCode::OK,
        json!({
            "access_token": access_token,
            "token_type": "DPoP",
            "expires_in": ACCESS_TOKEN_TTL_SECS,
            "refresh_token": refresh_token,
            "scope": grant.scope,
            "sub": grant.did,
        }),
    ))
}

/// The refresh token's lifetime from `now`, within the grant's end.
fn refresh_expiry(auth: &ClientAuth, now: i64, grant_expires_at: i64) -> i64 {
    let ttl = match auth.is_confidential() {
        true => CONFIDENTIAL_REFRESH_TTL_SECS,
        false => PUBLIC_GRANT_TTL_SECS,
    };
    (now + ttl).min(grant_expires_at)
}

async fn exchange_code(
    state: &AppState,
    form: &Form,
    client_id: String,
    client_name: Option<String>,
    client_auth: ClientAuth,
    jkt: String,
    now: i64,
) -> Result<(Grant, String), OAuthHttpError> {
    let code = form.require("code")?.to_owned();
    let redeemed = code.clone();
    let verifier = form.require("code_verifier")?.to_owned();
    let redirect_uri = form.require("redirect_uri")?.to_owned();
    if !pds_oauth::pkce::is_valid_verifier(&verifier) {
        return Err(OAuthHttpError::invalid_grant("malformed code_verifier"));
    }
    // The code is spent whatever happens next: a code that failed once is never retried.
    let request = state
        .db
        .write(move |w| {
            store::take_code(w.tx.connection(), &code, now).map_err(OAuthHttpError::from)
        })
        .await?
        .ok_or_else(|| OAuthHttpError::invalid_grant("invalid, expired or already used code"))?;
    let did = request
        .did
        .clone()
        .ok_or_else(|| OAuthHttpError::invalid_grant("the code was not approved"))?;
    if request.client_id != client_id {
        return Err(OAuthHttpError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if request.parameters.redirect_uri != redirect_uri {
        return Err(OAuthHttpError::invalid_grant(
            "redirect_uri does not match the request",
        ));
    }
    if !pds_oauth::pkce::verify_s256(&verifier, &request.parameters.code_challenge) {
        return Err(OAuthHttpError::invalid_grant(
            "the PKCE code_verifier does not match",
        ));
    }
    if request
        .dpop_jkt
        .as_deref()
        .is_some_and(|bound| bound != jkt)
    {
        return Err(OAuthHttpError::invalid_grant(
            "the DPoP key is not the one the request was pushed with",
        ));
    }
    if !same_client_auth(&request.client_auth, &client_auth) {
        return Err(OAuthHttpError::invalid_client(
            "the client must authenticate as it did for the pushed request",
        ));
    }
    let account_did = did.clone();
    let account = state
        .db
        .read(move |store| {
            crate::accounts::by_did(store.connection(), &account_did)
                .map_err(OAuthHttpError::server_error)
        })
        .await?;
    if !account.is_some_and(|a| a.active()) {
        return Err(OAuthHttpError::invalid_grant("the account is not active"));
    }
    let grant_expires_at = now
        + match client_auth.is_confidential() {
            true => CONFIDENTIAL_GRANT_TTL_SECS,
            false => PUBLIC_GRANT_TTL_SECS,
        };
    let grant = Grant {
        id: tokens::random_token("grant-"),
        did,
        client_id,
        client_name,
        refresh_expires_at: refresh_expiry(&client_auth, now, grant_expires_at),
        client_auth,
        scope: request.parameters.scope.clone(),
        permissions: request.parameters.permissions.clone(),
        dpop_jkt: jkt,
        created_at: now,
        refreshed_at: now,
        grant_expires_at,
    };
    let refresh_token = tokens::random_token("ref-");
    let (stored, token) = (grant.clone(), refresh_token.clone());
    state
        .db
        .write(move |w| {
            store::insert_grant(w.tx.connection(), &stored, &token, &redeemed)
                .map_err(OAuthHttpError::from)
        })
        .await?;
    Ok((grant, refresh_token))
}

async fn refresh(
    state: &AppState,
    form: &Form,
    client_id: &str,
    client_auth: &ClientAuth,
    jkt: &str,
    now: i64,
) -> Result<(Grant, String), OAuthHttpError> {
    let old = form.require("refresh_token")?.to_owned();
    let presented = old.clone();
    let found = state
        .db
        .read(move |store| {
            store::find_by_refresh_token(store.connection(), &presented)
                .map_err(OAuthHttpError::from)
        })
        .await?;
    let mut grant = match found {
        RefreshLookup::Current(grant) => grant,
        RefreshLookup::Reused { grant_id } => {
            tracing::warn!("oauth: a rotated-out refresh token was presented; ending its grant");
            state
                .db
                .write(move |w| {
                    store::delete_grant(w.tx.connection(), &grant_id).map_err(OAuthHttpError::from)
                })
                .await?;
            return Err(OAuthHttpError::invalid_grant("refresh token replayed"));
        }
        RefreshLookup::Unknown => {
            return Err(OAuthHttpError::invalid_grant("invalid refresh token"));
        }
    };
    if grant.client_id != client_id {
        return Err(OAuthHttpError::invalid_grant(
            "the refresh token belongs to another client",
        ));
    }
    if grant.dpop_jkt != jkt {
        return Err(OAuthHttpError::invalid_grant(
            "the refresh token is bound to another DPoP key",
        ));
    }
    if !same_client_auth(&grant.client_auth, client_auth) {
        return Err(OAuthHttpError::invalid_client(
            "the client must authenticate as it did when the grant began",
        ));
    }
    if grant.refresh_expires_at <= now || grant.grant_expires_at <= now {
        return Err(OAuthHttpError::invalid_grant(
            "the refresh token has expired",
        ));
    }
    let new = tokens::random_token("ref-");
    let refresh_expires_at = refresh_expiry(&grant.client_auth, now, grant.grant_expires_at);
    let (id, new_token) = (grant.id.clone(), new.clone());
    let rotated = state
        .db
        .write(move |w| {
            store::rotate_refresh_token(
                w.tx.connection(),
                &id,
                &old,
                &new_token,
                now,
                refresh_expires_at,
            )
            .map_err(OAuthHttpError::from)
        })
        .await?;
    if !rotated {
        return Err(OAuthHttpError::invalid_grant(
            "the refresh token was already used",
        ));
    }
    grant.refreshed_at = now;
    grant.refresh_expires_at = refresh_expires_at;
    Ok((grant, new))
}

/// The same method, and for `private_key_jwt` the same key.
fn same_client_auth(before: &ClientAuth, now: &ClientAuth) -> bool {
    before == now
}
