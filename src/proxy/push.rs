//! `app.bsky.notification.registerPush` / `unregisterPush`: the device's push token goes to the
//! notification service the client names by DID (`serviceDid`), with a token for that service.
//! As the reference: the configured AppView when it is that DID, else the `#bsky_notif` service
//! (type `BskyNotificationService`) of the DID's document, reached under the address policy of
//! user-influenced fetches. Offered only with an AppView configured, as the reference.

use axum::body::Body;
use axum::http::header::{ACCEPT_ENCODING, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use pds_syntax::Did;
use serde_json::Value;

use super::route::Target;
use super::upstream::Outbound;
use super::{ProxyError, service_token};
use crate::api::ApiError;
use crate::auth::AccessAuth;
use crate::state::AppState;

/// The id and type of a notification service in its DID document.
const NOTIF_SERVICE_ID: &str = "bsky_notif";
const NOTIF_SERVICE_TYPE: &str = "BskyNotificationService";

/// Forwards `input` (a registerPush or unregisterPush body) for the account to the notification
/// service it names; an empty answer when the service accepted it.
pub async fn forward(
    state: &AppState,
    auth: &AccessAuth,
    nsid: &str,
    input: &Value,
) -> Result<Response, ApiError> {
    let Some(appview) = &state.config.appview else {
        return Err(ProxyError::NotImplemented(nsid.to_owned()).into());
    };
    for field in ["serviceDid", "token", "platform", "appId"] {
        if !input.get(field).is_some_and(Value::is_string) {
            return Err(ApiError::invalid_request(format!(
                "Input must have the property \"{field}\""
            )));
        }
    }
    let service_did = input["serviceDid"].as_str().unwrap_or_default();
    let did = Did::new(service_did)
        .map_err(|_| ApiError::invalid_request("Input/serviceDid must be a valid did"))?;
    let target = if service_did == appview.did {
        Target::configured(appview)
    } else {
        let doc = state.id_resolver.resolve_did(&did).await.map_err(|e| {
            tracing::debug!(%did, error = %e, "push service DID not resolved");
            ApiError::invalid_request(format!("could not resolve did document: {did}"))
        })?;
        let endpoint = doc
            .service_endpoint(NOTIF_SERVICE_ID, NOTIF_SERVICE_TYPE)
            .ok_or_else(|| {
                ApiError::invalid_request(format!(
                    "invalid notification service details in did document: {did}"
                ))
            })?;
        Target::from_document(endpoint, service_did.to_owned()).ok_or_else(|| {
            ApiError::invalid_request(format!(
                "invalid notification service details in did document: {did}"
            ))
        })?
    };
    auth.require_rpc(nsid, &format!("{service_did}#{NOTIF_SERVICE_ID}"))?;
    let token = service_token(state, &auth.did, service_did, nsid).await?;
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    let bearer = super::bearer_header(&token)?;
    headers.insert(AUTHORIZATION, bearer);
    let body = serde_json::to_vec(input)
        .map_err(|e| ApiError::internal(format!("push registration body: {e}")))?;
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    let outbound = Outbound {
        method: Method::POST,
        url: target.xrpc_url(nsid),
        headers,
        body: Some(Body::from(body)),
        source: target.source,
    };
    let upstreams = state.proxy.upstreams();
    let response = upstreams.send(outbound).await?;
    if response.status().as_u16() >= 400 {
        return Ok(upstreams.read_error(response).await.into_response());
    }
    // The service's answer has no content (the method has no output).
    Ok(().into_response())
}
