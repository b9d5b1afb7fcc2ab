//! The OAuth authorization server (the atproto profile of OAuth 2.1) and its browser pages.
//!
//! How a third-party app signs someone in, step by step, and where each step lives:
//! 1. The app reads `/.well-known/oauth-protected-resource` and
//!    `/.well-known/oauth-authorization-server` ([`endpoints::metadata`]).
//! 2. It pushes its authorization request (PAR, PKCE S256, a DPoP proof) to `/oauth/par`
//!    ([`endpoints::par`]), and sends the person's browser to `/oauth/authorize`.
//! 3. The person signs in, or picks an account already signed in on this browser, and sees
//!    what the app asks for; Authorize or Deny ([`endpoints::authorize`], pages in [`pages`]).
//!    Authorize sends the browser back to the app with a one-time code.
//! 4. The app trades the code for DPoP-bound tokens at `/oauth/token`, refreshes there (each
//!    refresh token works once), and revokes at `/oauth/revoke` ([`endpoints::token`],
//!    [`endpoints::revoke`]).
//! 5. It calls XRPC methods with `Authorization: DPoP <token>` and a fresh proof; the access
//!    extractor ([`crate::auth::AccessAuth`]) checks both with [`resource`], and each handler
//!    checks the token's scopes.
//!
//! `/account` lists the apps an account has authorized and revokes them
//! ([`endpoints::account`]). Wire-level checks (proofs, PKCE, client metadata rules) are in
//! `pds-oauth`, scope grammar and matching in `pds-permissions`; this module owns the state:
//! requests, codes, grants and devices ([`store`]), nonces and used proofs ([`dpop`]), known
//! clients ([`clients`]).

pub mod clients;
pub mod device;
pub mod dpop;
pub mod endpoints;
pub mod error;
pub mod pages;
pub mod permission_sets;
pub mod resource;
pub mod store;
pub mod tokens;

use axum::Router;
use axum::routing::{get, post};

use crate::config::Config;
use crate::state::AppState;

/// How long a pushed request waits for the person (RFC 9126 suggests short; the reference
/// gives five minutes).
pub const REQUEST_TTL_SECS: i64 = 5 * 60;
/// How long a code may wait for the token request.
pub const CODE_TTL_SECS: i64 = 60;
/// How long an access token lives (the atproto profile: short, never over an hour).
pub const ACCESS_TOKEN_TTL_SECS: i64 = 15 * 60;
/// Public clients (no key of their own): the whole session, and each refresh token, end two
/// weeks after sign-in at the latest, as the atproto profile sets.
pub const PUBLIC_GRANT_TTL_SECS: i64 = 14 * 24 * 60 * 60;
/// Confidential clients (`private_key_jwt`): each refresh token lasts three months, the whole
/// session two years.
pub const CONFIDENTIAL_REFRESH_TTL_SECS: i64 = 90 * 24 * 60 * 60;
pub const CONFIDENTIAL_GRANT_TTL_SECS: i64 = 2 * 365 * 24 * 60 * 60;
/// A browser sign-in is remembered this long; after that the password is asked again.
pub const DEVICE_SIGN_IN_TTL_SECS: i64 = 7 * 24 * 60 * 60;

/// The scopes this server understands, as advertised.
pub const SCOPES_SUPPORTED: &[&str] = &[
    "atproto",
    "transition:generic",
    "transition:chat.bsky",
    "transition:email",
    "repo:*",
    "rpc:*",
    "blob:*/*",
    "identity:*",
    "account:*",
    "include:*",
];

/// The authorization server's state.
pub struct OAuth {
    /// The issuer: this server's public URL, without a trailing slash.
    pub issuer: String,
    pub dpop: dpop::Dpop,
    pub clients: clients::Clients,
    pub permission_sets: permission_sets::PermissionSets,
    /// Signs access tokens.
    pub token_key: [u8; 32],
    /// Keys the CSRF tokens of the pages.
    pub csrf_key: [u8; 32],
    /// Cookies get `Secure` when the public URL is https.
    pub secure_cookies: bool,
}

impl OAuth {
    pub fn new(config: &Config, jwt_secret: &str) -> std::io::Result<OAuth> {
        let issuer = config.server.public_url.trim_end_matches('/').to_owned();
        let dns = crate::identity_service::dns(config, pds_identity::DEFAULT_TIMEOUT)?;
        let http = pds_identity::SafeHttpClient::new(
            pds_identity::HttpConfig::new(config.server.dev_mode),
            dns.clone(),
        )
        .map_err(std::io::Error::other)?;
        Ok(OAuth {
            secure_cookies: issuer.starts_with("https://"),
            issuer,
            dpop: dpop::Dpop::new(tokens::derive_key(jwt_secret, "dpop nonce")),
            permission_sets: permission_sets::PermissionSets::new(dns, http.clone()),
            clients: clients::Clients::new(http, config.server.dev_mode),
            token_key: tokens::derive_key(jwt_secret, "access token"),
            csrf_key: tokens::derive_key(jwt_secret, "csrf"),
        })
    }

    /// The external URL of a path on this server (what DPoP proofs name as `htu`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// The OAuth routes.
pub fn router() -> Router<AppState> {
    use endpoints::*;
    Router::new()
        .route(
            metadata::PROTECTED_RESOURCE_PATH,
            get(metadata::protected_resource),
        )
        .route(
            metadata::AUTHORIZATION_SERVER_PATH,
            get(metadata::authorization_server),
        )
        .route(par::PATH, post(par::handle))
        .route(token::PATH, post(token::handle))
        .route(revoke::PATH, post(revoke::handle))
        .route(authorize::PATH, get(authorize::page))
        .route(authorize::SIGN_IN_PATH, post(authorize::sign_in))
        .route(authorize::CONSENT_PATH, post(authorize::consent))
        .route(account::PATH, get(account::page))
        .route(account::SIGN_IN_PATH, post(account::sign_in))
        .route(account::REVOKE_PATH, post(account::revoke))
        .route(account::SIGN_OUT_PATH, post(account::sign_out))
}

/// Deletes expired requests, grants and device sign-ins now and then.
pub fn spawn_purge(db: pds_storage::Database) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(10 * 60));
        loop {
            every.tick().await;
            let now = crate::auth::now_secs();
            let result = db
                .write(move |w| {
                    store::purge_expired(w.tx.connection(), now, now - DEVICE_SIGN_IN_TTL_SECS)
                        .map_err(pds_storage::StorageError::from)
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "oauth: purging expired entries failed");
            }
        }
    });
}
