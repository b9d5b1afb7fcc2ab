//! Request bodies: [`XrpcJson`] parses a procedure's JSON input, refusing anything else with the
//! XRPC error shape (400 `InvalidRequest`; 413 `PayloadTooLarge` past [`MAX_JSON_BODY`]), never
//! axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use super::ApiError;

/// The largest JSON procedure body accepted (200 writes of ordinary records fit many times).
pub const MAX_JSON_BODY: usize = 1 << 20;

/// A JSON request body deserialized into `T`.
pub struct XrpcJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for XrpcJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        if !is_json(&req) {
            return Err(ApiError::invalid_request(
                "Request encoding must be application/json",
            ));
        }
        let bytes = read_body(req).await?;
        parse(&bytes).map(XrpcJson)
    }
}

/// The input of a procedure whose input is optional: no body (or only whitespace) is
/// `T::default()`, anything else must be JSON as for [`XrpcJson`].
pub struct XrpcJsonOrEmpty<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for XrpcJsonOrEmpty<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let is_json = is_json(&req);
        let bytes = read_body(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(XrpcJsonOrEmpty(T::default()));
        }
        if !is_json {
            return Err(ApiError::invalid_request(
                "Request encoding must be application/json",
            ));
        }
        parse(&bytes).map(XrpcJsonOrEmpty)
    }
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// JSON inputs are small; a large one would cost many times its size once parsed, so it is
/// refused here, long before the blob-sized limit every route has.
async fn read_body(req: Request) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), MAX_JSON_BODY)
        .await
        .map_err(|_| {
            ApiError::payload_too_large(format!(
                "JSON request bodies are limited to {MAX_JSON_BODY} bytes"
            ))
        })
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid_request(format!("Invalid request body: {e}")))
}
