//! Request bodies: [`XrpcJson`] parses a procedure's JSON input, refusing anything else with the
//! XRPC error shape (400 `InvalidRequest`), never axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use super::ApiError;

/// A JSON request body deserialized into `T`.
pub struct XrpcJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for XrpcJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::invalid_request(
                "Request encoding must be application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::invalid_request(format!("Could not read the request body: {e}"))
        })?;
        serde_json::from_slice(&bytes)
            .map(XrpcJson)
            .map_err(|e| ApiError::invalid_request(format!("Invalid request body: {e}")))
    }
}
