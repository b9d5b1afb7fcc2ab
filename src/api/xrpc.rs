//! XRPC routing: `/xrpc/<nsid>` for queries (GET) and procedures (POST).
//!
//! Namespace modules register their methods on an [`XrpcRouter`]; it answers
//! a query called with POST, or a procedure called with GET, the way the
//! reference server does: 400 `InvalidRequest` "Incorrect HTTP method (POST)
//! expected GET". Any `/xrpc/<nsid>` nobody registered goes to the service proxy
//! (`crate::proxy`): forwarded to the service an `atproto-proxy` header names or the one
//! configured for its namespace, else 501 `MethodNotImplemented`.

use axum::Router;
use axum::extract::Request;
use axum::handler::Handler;
use axum::http::{Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, post};

use super::error::ApiError;
use crate::state::AppState;

/// The URL path prefix of every XRPC method.
pub const PREFIX: &str = "/xrpc/";

/// Collects XRPC methods; [`XrpcRouter::into_router`] turns them into routes.
#[derive(Default)]
pub struct XrpcRouter {
    router: Router<AppState>,
    nsids: Vec<&'static str>,
}

impl XrpcRouter {
    pub fn new() -> XrpcRouter {
        XrpcRouter::default()
    }

    /// Registers a query: answered on GET (and HEAD).
    pub fn query<H, T>(self, nsid: &'static str, handler: H) -> XrpcRouter
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.method(nsid, get(handler), Method::GET)
    }

    /// Registers a procedure: answered on POST.
    pub fn procedure<H, T>(self, nsid: &'static str, handler: H) -> XrpcRouter
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.method(nsid, post(handler), Method::POST)
    }

    /// The NSIDs registered so far (the `method` labels of the request metrics).
    pub fn nsids(&self) -> &[&'static str] {
        &self.nsids
    }

    fn method(
        mut self,
        nsid: &'static str,
        route: MethodRouter<AppState>,
        expected: Method,
    ) -> XrpcRouter {
        let wrong_method = move |method: Method| async move {
            ApiError::invalid_request(format!(
                "Incorrect HTTP method ({method}) expected {expected}"
            ))
        };
        self.nsids.push(nsid);
        XrpcRouter {
            router: self
                .router
                .route(&format!("{PREFIX}{nsid}"), route.fallback(wrong_method)),
            nsids: self.nsids,
        }
    }

    /// The routes, plus the service proxy for every method not registered.
    pub fn into_router(self) -> Router<AppState> {
        self.router.route(
            &format!("{PREFIX}{{method}}"),
            any(crate::proxy::forward_unregistered),
        )
    }
}

/// Middleware: gives every XRPC error response the `{"error", "message"}`
/// JSON body, including those made below the handlers (the body-size limit,
/// axum's extractor rejections), which are plain text. Their text becomes
/// the message. Handler errors are already JSON and pass through untouched.
pub async fn json_error_bodies(request: Request, next: Next) -> Response {
    let is_xrpc = request.uri().path().starts_with(PREFIX);
    let response = next.run(request).await;
    let status = response.status();
    if !is_xrpc || !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Rejection texts are short; anything longer is not worth relaying.
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let mut rewritten = ApiError::from_status(status, text).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().append(name.clone(), value.clone());
        }
    }
    rewritten
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// For paths outside every route.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::from_status(StatusCode::NOT_FOUND, format!("Not Found: {}", uri.path()))
}
