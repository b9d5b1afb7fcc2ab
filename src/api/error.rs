//! The one error type of the XRPC layer.
//!
//! Every failed XRPC call answers with a JSON body `{"error": Name, "message":
//! text}` and an HTTP status, as the XRPC spec and the reference server do.
//! Handlers return `Result<_, ApiError>`; anything that is not a deliberate
//! client error becomes a 500 whose details are logged, not sent.

use std::borrow::Cow;
use std::fmt;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An XRPC error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    /// The `error` name clients match on, e.g. `InvalidRequest`, or a
    /// method-specific name from its lexicon such as `RecordNotFound`.
    name: Cow<'static, str>,
    message: String,
    /// A `WWW-Authenticate` challenge, for DPoP errors a client acts on (RFC 9449 §7.1).
    www_authenticate: Option<String>,
}

impl ApiError {
    /// A custom error: a method-specific `name` declared in the method's lexicon.
    /// Those are sent as 400 unless the lexicon's semantics need another status.
    pub fn new(
        status: StatusCode,
        name: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            name: name.into(),
            message: message.into(),
            www_authenticate: None,
        }
    }

    /// The same error with a `WWW-Authenticate` challenge.
    pub fn with_www_authenticate(mut self, challenge: impl Into<String>) -> Self {
        self.www_authenticate = Some(challenge.into());
        self
    }

    /// 400 `InvalidRequest`: the request is malformed or its parameters are wrong.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
    }

    /// 401 `AuthenticationRequired`: credentials are missing or wrong.
    pub fn authentication_required(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "AuthenticationRequired", message)
    }

    /// 400 `ExpiredToken`: the token has expired; the client should refresh. 400, not 401,
    /// because that is what the reference sends and what `@atproto/api` refreshes on.
    pub fn expired_token(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ExpiredToken", message)
    }

    /// 401 `InvalidToken`: the token is not one this server issued, or is malformed.
    pub fn invalid_token(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "InvalidToken", message)
    }

    /// 403 `Forbidden`: authenticated, but not allowed to do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    /// 404 `NotFound`: no such route (outside `/xrpc/`, where unknown methods are 501).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    /// 413 `PayloadTooLarge`: the request body is over the limit.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge", message)
    }

    /// 429 `RateLimitExceeded`.
    pub fn rate_limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "RateLimitExceeded", message)
    }

    /// 500 `InternalServerError`. `detail` is logged; the client sees a generic message.
    pub fn internal(detail: impl fmt::Display) -> Self {
        tracing::error!(%detail, "internal server error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Internal Server Error",
        )
    }

    /// 501 `MethodNotImplemented`: this server has no handler for the method.
    pub fn method_not_implemented(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, "MethodNotImplemented", message)
    }

    /// 502 `UpstreamFailure`: a service this request was forwarded to failed.
    pub fn upstream_failure(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "UpstreamFailure", message)
    }

    /// The error that matches a bare HTTP status, with the names the reference
    /// client uses for each status. Used for responses produced below the
    /// handlers (body limits, extractor rejections) that carry no XRPC body.
    pub fn from_status(status: StatusCode, message: impl Into<String>) -> Self {
        let name = match status.as_u16() {
            401 => "AuthenticationRequired",
            403 => "Forbidden",
            404 => "NotFound",
            413 => "PayloadTooLarge",
            415 => "UnsupportedMediaType",
            429 => "RateLimitExceeded",
            501 => "MethodNotImplemented",
            502 => "UpstreamFailure",
            503 => "NotEnoughResources",
            504 => "UpstreamTimeout",
            400..=499 => "InvalidRequest",
            _ => "InternalServerError",
        };
        let message = message.into();
        let message = if message.trim().is_empty() {
            status.canonical_reason().unwrap_or("Error").to_string()
        } else {
            message
        };
        Self::new(status, name, message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.name,
            self.status.as_u16(),
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

/// The JSON body of an XRPC error.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: &self.name,
            message: &self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(challenge) = self
            .www_authenticate
            .as_deref()
            .and_then(|c| axum::http::HeaderValue::from_str(c).ok())
        {
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

impl From<crate::accounts::AccountError> for ApiError {
    fn from(e: crate::accounts::AccountError) -> Self {
        use crate::accounts::AccountError as E;
        let bad =
            |name: &'static str, e: &E| ApiError::new(StatusCode::BAD_REQUEST, name, e.to_string());
        match &e {
            E::HandleTaken => bad("HandleNotAvailable", &e),
            E::EmailTaken => bad("EmailNotAvailable", &e),
            E::DidTaken => bad("AlreadyExists", &e),
            E::InvalidHandle(_) | E::UnsupportedDomain(_) => bad("InvalidHandle", &e),
            E::InvalidPassword(_) => bad("InvalidPassword", &e),
            E::InvalidEmail => bad("InvalidEmail", &e),
            E::InvalidRecoveryKey(_) => bad("InvalidRequest", &e),
            E::NotFound => bad("AccountNotFound", &e),
            E::BadCredentials => {
                ApiError::authentication_required("Invalid identifier or password")
            }
            // Already safe to show (see identity_service::plc_failure_message).
            E::Plc(detail) => {
                ApiError::upstream_failure(format!("The DID directory refused or failed: {detail}"))
            }
            E::InvalidInviteCode(_) => bad("InvalidInviteCode", &e),
            E::AppPassword(_) | E::Refused(_) => bad("InvalidRequest", &e),
            E::UnresolvableDid(_) => bad("UnresolvableDid", &e),
            E::IncompatibleDidDoc(_) => bad("IncompatibleDidDoc", &e),
            E::TakenDown => {
                ApiError::new(StatusCode::UNAUTHORIZED, "AccountTakedown", e.to_string())
            }
            E::Db(_) | E::Storage(_) | E::Key(_) => ApiError::internal(e),
        }
    }
}

impl From<crate::accounts::plc_operations::PlcOperationError> for ApiError {
    fn from(e: crate::accounts::plc_operations::PlcOperationError) -> Self {
        use crate::accounts::plc_operations::PlcOperationError as E;
        match e {
            E::Token(inner) => inner.into(),
            E::Account(inner) => inner.into(),
            E::TokenRequired
            | E::NotPlc(_)
            | E::Tombstoned
            | E::NotControlled(_)
            | E::Invalid(_)
            | E::Rejected(_) => ApiError::invalid_request(e.to_string()),
            // Already safe to show (see identity_service::plc_failure_message).
            E::Directory(_) => ApiError::upstream_failure(e.to_string()),
        }
    }
}

impl From<crate::preferences::PreferenceError> for ApiError {
    fn from(e: crate::preferences::PreferenceError) -> Self {
        use crate::preferences::PreferenceError as E;
        match e {
            E::Invalid(m) => ApiError::invalid_request(m),
            E::NotAuthorized => ApiError::invalid_request(e.to_string()),
            E::Account(e) => e.into(),
        }
    }
}

impl From<crate::records::RecordError> for ApiError {
    fn from(e: crate::records::RecordError) -> Self {
        use crate::records::RecordError as E;
        let bad = |name: &'static str, m: String| ApiError::new(StatusCode::BAD_REQUEST, name, m);
        match e {
            E::InvalidRequest(m) => ApiError::invalid_request(m),
            E::InvalidRecord(m) => ApiError::new(StatusCode::BAD_REQUEST, "InvalidRecord", m),
            E::InvalidSwap(m) => bad("InvalidSwap", m),
            E::RecordNotFound(m) => bad("RecordNotFound", m),
            E::RepoNotFound(m) => bad("RepoNotFound", m),
            E::RepoTakendown(m) => bad("RepoTakendown", m),
            E::RepoDeactivated(m) => bad("RepoDeactivated", m),
            // The reference's `findAccount` and ownership refusals, statuses included.
            E::AccountNotFound => {
                ApiError::new(StatusCode::FORBIDDEN, "AccountNotFound", e.to_string())
            }
            E::AccountTakedown => {
                ApiError::new(StatusCode::UNAUTHORIZED, "AccountTakedown", e.to_string())
            }
            E::AccountDeactivated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "AccountDeactivated",
                e.to_string(),
            ),
            E::NotRepoOwner => ApiError::authentication_required(e.to_string()),
            E::Blob(e) => e.into(),
            E::Account(e) => e.into(),
            E::Storage(_) | E::Internal(_) => ApiError::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_names() {
        let cases = [
            (ApiError::invalid_request("x"), 400, "InvalidRequest"),
            (
                ApiError::authentication_required("x"),
                401,
                "AuthenticationRequired",
            ),
            (ApiError::expired_token("x"), 400, "ExpiredToken"),
            (ApiError::invalid_token("x"), 401, "InvalidToken"),
            (ApiError::forbidden("x"), 403, "Forbidden"),
            (ApiError::not_found("x"), 404, "NotFound"),
            (ApiError::payload_too_large("x"), 413, "PayloadTooLarge"),
            (ApiError::rate_limit_exceeded("x"), 429, "RateLimitExceeded"),
            (ApiError::internal("boom"), 500, "InternalServerError"),
            (
                ApiError::method_not_implemented("x"),
                501,
                "MethodNotImplemented",
            ),
            (ApiError::upstream_failure("x"), 502, "UpstreamFailure"),
        ];
        for (error, status, name) in cases {
            assert_eq!(error.status().as_u16(), status);
            assert_eq!(error.name(), name);
        }
        assert_eq!(
            ApiError::internal("secret detail").message(),
            "Internal Server Error"
        );
    }

    #[test]
    fn bare_statuses_map_to_xrpc_names() {
        assert_eq!(
            ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED, "").name(),
            "InvalidRequest"
        );
        assert_eq!(
            ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED, "").message(),
            "Method Not Allowed"
        );
        assert_eq!(
            ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE, "big").name(),
            "PayloadTooLarge"
        );
        assert_eq!(
            ApiError::from_status(StatusCode::SERVICE_UNAVAILABLE, "").name(),
            "NotEnoughResources"
        );
        assert_eq!(
            ApiError::from_status(StatusCode::IM_A_TEAPOT, "").name(),
            "InvalidRequest"
        );
    }
}
