//! An AT Protocol Personal Data Server.
//!
//! The server itself: configuration, the HTTP/XRPC surface, and start-up.
//! Layers depend downward only:
//!
//! ```text
//! main.rs (CLI)  ->  server (bind, serve, shut down)  ->  api (routes, handlers)
//!                                                      ->  proxy, read_after_write (other services)
//!                                                      ->  metrics (counters, /metrics)
//!                                                      ->  auth (session tokens)
//!                                                      ->  accounts (account tables)
//!                                                      ->  state (what handlers reach)
//!                                                      ->  config (settings, secrets)
//! ```
//!
//! Protocol building blocks (syntax, data model, crypto, repositories,
//! storage) live in the workspace crates under `crates/`.

pub mod accounts;
pub mod admin_cli;
pub mod api;
pub mod auth;
pub mod blobs;
pub mod config;
pub mod crawlers;
pub mod export;
pub mod firehose;
pub mod healthcheck;
pub mod identity_service;
pub mod logging;
pub mod mailer;
pub mod metrics;
pub mod migrate;
pub mod moderation;
pub mod oauth;
pub mod ops;
pub mod preferences;
pub mod proxy;
pub mod read_after_write;
pub mod records;
pub mod server;
pub mod state;
pub mod telemetry;
