//! The routes that are not lexicon methods: the banner at `/`, `robots.txt`
//! and the `_health` check that load balancers and `pds healthcheck` poll.

use axum::Json;
use serde::Serialize;

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
