//! Log output: `tracing` events to standard output.
//!
//! Two environment variables control it, read before the configuration
//! because logging must work while the configuration is being loaded:
//! `RUST_LOG` (an `EnvFilter` directive, default `info`) and
//! `PDS_LOG_FORMAT` (`text`, the default, or `json` for log collectors).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{ConfigError, EnvLookup};

/// The environment variable that selects the log format.
pub const LOG_FORMAT_ENV: &str = "PDS_LOG_FORMAT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn from_env(env: EnvLookup<'_>) -> Result<LogFormat, ConfigError> {
        match env(LOG_FORMAT_ENV).as_deref().map(str::trim) {
            None | Some("") | Some("text") => Ok(LogFormat::Text),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(ConfigError::new(
                LOG_FORMAT_ENV,
                format!("{other:?} is not a log format (text or json)"),
            )),
        }
    }
}

/// Installs the global subscriber. A bad `RUST_LOG` falls back to `info`
/// with a warning rather than stopping the server: logs are not worth an outage.
pub fn init(format: LogFormat) {
    let (filter, bad_filter) = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(directives) if !directives.trim().is_empty() => match EnvFilter::try_new(&directives) {
            Ok(filter) => (filter, None),
            Err(e) => (EnvFilter::new("info"), Some(format!("{directives:?}: {e}"))),
        },
        _ => (EnvFilter::new("info"), None),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stdout().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
    if let Some(problem) = bad_filter {
        tracing::warn!("ignoring RUST_LOG {problem}; logging at info");
    }
}
