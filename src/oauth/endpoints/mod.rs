//! The OAuth endpoints, one file per endpoint, and what they share: form bodies and client
//! authentication.

pub mod account;
pub mod authorize;
pub mod metadata;
pub mod par;
pub mod revoke;
pub mod token;

use std::collections::HashMap;

use pds_oauth::client_auth::{self, CLIENT_ASSERTION_TYPE};

use super::clients::Client;
use super::error::OAuthHttpError;
use super::store::ClientAuth;
use crate::state::AppState;

/// An `application/x-www-form-urlencoded` body. A parameter given twice is refused, as
/// OAuth requires (RFC 6749 §3.1).
#[derive(Debug, Default)]
pub struct Form(HashMap<String, String>);

impl Form {
    pub fn parse(body: &[u8]) -> Result<Form, OAuthHttpError> {
        let mut map = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(body) {
            if map.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(OAuthHttpError::invalid_request(format!(
                    "parameter {name} is repeated"
                )));
            }
        }
        Ok(Form(map))
    }

    /// A parameter, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthHttpError> {
        self.get(name)
            .ok_or_else(|| OAuthHttpError::invalid_request(format!("missing parameter {name}")))
    }
}

/// Checks that a request's body is a form (the OAuth endpoints take nothing else).
pub fn require_form_content_type(headers: &axum::http::HeaderMap) -> Result<(), OAuthHttpError> {
    let ok = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    match ok {
        true => Ok(()),
        false => Err(OAuthHttpError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        )),
    }
}

/// Authenticates the client of a PAR, token or revocation request as its metadata says it
/// must: a public client sends no credential; a `private_key_jwt` client sends an assertion
/// signed by one of its keys, used once. `dpop_jkt` is the request's DPoP key, which must not
/// be the client's own key.
pub fn authenticate_client(
    state: &AppState,
    client: &Client,
    form: &Form,
    dpop_jkt: Option<&str>,
    now: i64,
) -> Result<ClientAuth, OAuthHttpError> {
    let assertion = form.get("client_assertion");
    if !client.is_confidential() {
        if assertion.is_some() || form.get("client_assertion_type").is_some() {
            return Err(OAuthHttpError::invalid_client(
                "this client is public (token_endpoint_auth_method none) and must not send a client assertion",
            ));
        }
        return Ok(ClientAuth::None);
    }
    if form.get("client_assertion_type") != Some(CLIENT_ASSERTION_TYPE) {
        return Err(OAuthHttpError::invalid_client(format!(
            "client_assertion_type must be {CLIENT_ASSERTION_TYPE}"
        )));
    }
    let assertion =
        assertion.ok_or_else(|| OAuthHttpError::invalid_client("missing client_assertion"))?;
    let jwks = client
        .jwks
        .as_ref()
        .ok_or_else(|| OAuthHttpError::invalid_client("the client publishes no keys"))?;
    let checked = client_auth::verify_assertion(
        assertion,
        &client.metadata.client_id,
        &state.oauth.issuer,
        jwks,
        now,
    )
    .map_err(|e| OAuthHttpError::invalid_client(e.to_string()))?;
    if dpop_jkt == Some(checked.key_thumbprint.as_str()) {
        return Err(OAuthHttpError::invalid_client(
            "the DPoP proof and the client assertion must be signed with different keys",
        ));
    }
    state
        .oauth
        .dpop
        .spend(
            &format!("assertion:{}:{}", client.metadata.client_id, checked.jti),
            now,
        )
        .map_err(|_| OAuthHttpError::invalid_client("client assertion replayed"))?;
    Ok(ClientAuth::PrivateKeyJwt {
        key_thumbprint: checked.key_thumbprint,
    })
}

/// The JSON of a successful OAuth response: never cached.
pub fn no_store_json(
    status: axum::http::StatusCode,
    body: serde_json::Value,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        "cache-control",
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}
