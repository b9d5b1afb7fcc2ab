//! The routes that are not lexicon methods: the banner at `/`, `robots.txt`,
//! the `_health` check that load balancers and `pds healthcheck` poll, and
//! `/tls-check`, which a TLS proxy asks before getting a certificate for a name.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::ApiError;
use crate::state::AppState;

/// The path segment of the health check: `GET /xrpc/_health`.
pub const HEALTH: &str = "_health";

/// `GET /`: tells a person who opens the server's URL what it is.
pub async fn root() -> String {
    format!(
        "This is an AT Protocol Personal Data Server (PDS), version {}.\n\
         \n\
         Most API routes are under /xrpc/ (health check: /xrpc/_health).\n\
         \n\
         Protocol: https://atproto.com\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// `GET /robots.txt`: crawling the public API is fine.
pub async fn robots_txt() -> &'static str {
    "# Crawling the public API is allowed.\nUser-agent: *\nAllow: /\n"
}

#[derive(Serialize)]
pub struct Health {
    version: &'static str,
}

/// `GET /xrpc/_health`: `{"version": "<crate version>"}` while the server can
/// answer. As storage lands this also checks the databases, answering 503 if
/// they are unreachable, as the reference does.
pub async fn health() -> Json<Health> {
    Json(Health {
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(Deserialize)]
pub struct TlsCheckParams {
    domain: Option<String>,
}

/// `GET /tls-check?domain=<name>`, as the reference answers it: 200 `{"success": true}` for this
/// server's hostname and for handles of accounts hosted here under its handle domains; 400 for
/// names outside those domains, 404 for a handle nobody here has. A reverse proxy that gets
/// certificates on demand (Caddy's `on_demand_tls { ask ... }`) asks it first, so that nobody
/// can make it request certificates for arbitrary names.
pub async fn tls_check(
    State(state): State<AppState>,
    Query(params): Query<TlsCheckParams>,
) -> Result<Json<Value>, ApiError> {
    let Some(domain) = params
        .domain
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
    else {
        return Err(ApiError::invalid_request(
            "bad or missing domain query param",
        ));
    };
    if domain == state.config.server.hostname {
        return Ok(Json(json!({"success": true})));
    }
    let ours = state
        .config
        .identity
        .handle_domains
        .iter()
        .any(|suffix| domain.ends_with(suffix.as_str()));
    if !ours {
        return Err(ApiError::invalid_request(
            "handles are not provided on this domain",
        ));
    }
    let account = state
        .db
        .read(move |store| crate::accounts::by_handle(store.connection(), &domain))
        .await?;
    // As the reference: only a handle of an account that is served (not taken down or
    // deactivated) gets a certificate.
    match account {
        Some(account) if account.active() => Ok(Json(json!({"success": true}))),
        _ => Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "NotFound",
            "handle not found for this domain",
        )),
    }
}
