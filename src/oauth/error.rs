//! The authorization server's error responses: `{"error": code, "error_description": text}`
//! (RFC 6749 §5.2), not the XRPC shape, since OAuth clients read these.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error at an OAuth endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthHttpError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub description: String,
}

impl OAuthHttpError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        description: impl Into<String>,
    ) -> Self {
        OAuthHttpError {
            status,
            code: code.into(),
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    pub fn invalid_dpop_proof(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_dpop_proof", description)
    }

    /// The proof had no nonce, or an old one: the client retries with the `DPoP-Nonce` it
    /// finds on this response (every response carries one, see `dpop::nonce_header`).
    pub fn use_dpop_nonce() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "use_dpop_nonce",
            "Authorization server requires nonce in DPoP proof",
        )
    }

    pub fn server_error(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "oauth: internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Internal server error",
        )
    }
}

impl From<pds_oauth::OAuthError> for OAuthHttpError {
    fn from(e: pds_oauth::OAuthError) -> Self {
        let status = match e.code() {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        };
        OAuthHttpError::new(status, e.code(), e.to_string())
    }
}

impl From<pds_storage::StorageError> for OAuthHttpError {
    fn from(e: pds_storage::StorageError) -> Self {
        OAuthHttpError::server_error(e)
    }
}

impl From<rusqlite::Error> for OAuthHttpError {
    fn from(e: rusqlite::Error) -> Self {
        OAuthHttpError::server_error(e)
    }
}

impl IntoResponse for OAuthHttpError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": self.code, "error_description": self.description})),
        )
            .into_response();
        // Token responses and their errors must not be cached (RFC 6749 §5.1).
        response
            .headers_mut()
            .insert("cache-control", HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("DPoP"));
        }
        response
    }
}
