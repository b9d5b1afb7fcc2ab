//! `POST /oauth/revoke` (RFC 7009): an app signs out. Either of its tokens, access or refresh,
//! ends the whole grant, so neither works afterwards. Unknown tokens get the same 200 answer,
//! as the RFC asks, so the endpoint tells nobody which tokens exist.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::{Form, authenticate_client, no_store_json, require_form_content_type};
use crate::oauth::error::OAuthHttpError;
use crate::oauth::store::{self, RefreshLookup};
use crate::oauth::tokens;
use crate::state::AppState;

pub const PATH: &str = "/oauth/revoke";

pub async fn handle(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthHttpError> {
    require_form_content_type(&headers)?;
    let form = Form::parse(&body)?;
    let now = crate::auth::now_secs();
    let token = form.require("token")?.to_owned();
    let client_id = form.require("client_id")?;
    let client = state.oauth.clients.get(client_id).await?;
    authenticate_client(&state, &client, &form, None, now)?;
    let client_id = client.metadata.client_id.clone();

    // An access token names its grant; anything else may be a refresh token. An expired access
    // token still names it (a client signing out late must still end the grant).
    let grant_id = match tokens::verify_access(
        &state.oauth.token_key,
        &state.config.server.service_did,
        &token,
        0,
    ) {
        Ok(claims) => (claims.client_id == client_id).then_some(claims.grant_id),
        Err(_) => {
            let presented = token.clone();
            let found = state
                .db
                .read(move |s| {
                    store::find_by_refresh_token(s.connection(), &presented)
                        .map_err(OAuthHttpError::from)
                })
                .await?;
            match found {
                RefreshLookup::Current(grant) if grant.client_id == client_id => Some(grant.id),
                RefreshLookup::Reused { grant_id } => Some(grant_id),
                _ => None,
            }
        }
    };
    if let Some(grant_id) = grant_id {
        state
            .db
            .write(move |w| {
                store::delete_grant(w.tx.connection(), &grant_id).map_err(OAuthHttpError::from)
            })
            .await?;
    }
    Ok(no_store_json(StatusCode::OK, json!({})))
}
