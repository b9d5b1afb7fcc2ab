//! What every request handler can reach: the configuration and the secrets,
//! and (as they land) the stores and services.

use std::sync::Arc;

use crate::config::{Config, Secrets};

/// Shared, read-only application state. Cheap to clone: handlers get it
/// through axum's `State` extractor.
pub type AppState = Arc<AppContext>;

#[derive(Debug)]
pub struct AppContext {
    pub config: Config,
    pub secrets: Secrets,
}

impl AppContext {
    pub fn new(config: Config, secrets: Secrets) -> AppState {
        Arc::new(AppContext { config, secrets })
    }
}
