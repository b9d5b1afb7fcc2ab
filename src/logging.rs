//! Log output: `tracing` events to standard output.
//!
//! Two environment variables control it, read before the configuration
//! because logging must work while the configuration is being loaded:
//! `RUST_LOG` (an `EnvFilter` directive, default `info`) and
//! `PDS_LOG_FORMAT` (`text`, the default, or `json` for log collectors). The
//! server also sends its spans to an OpenTelemetry collector when the standard
//! `OTEL_EXPORTER_OTLP_*` variables name one (`crate::telemetry`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{ConfigError, EnvLookup};
use crate::telemetry::Telemetry;

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
    install(format, None);
}

/// As [`init`], and sends the spans to an OpenTelemetry collector too when the environment names
/// one (see `crate::telemetry`). The returned exporter flushes on [`Telemetry::shutdown`].
pub fn init_with_telemetry(
    format: LogFormat,
    env: EnvLookup<'_>,
) -> Result<Option<Telemetry>, ConfigError> {
    let telemetry = Telemetry::from_env(env).map_err(|e| ConfigError::new("OTEL_*", e))?;
    install(format, telemetry.as_ref());
    Ok(telemetry)
}

fn install(format: LogFormat, telemetry: Option<&Telemetry>) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let (filter, bad_filter) = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(directives) if !directives.trim().is_empty() => match EnvFilter::try_new(&directives) {
            Ok(filter) => (filter, None),
            Err(e) => (EnvFilter::new("info"), Some(format!("{directives:?}: {e}"))),
        },
        _ => (EnvFilter::new("info"), None),
    };
    let (text, json) = match format {
        LogFormat::Text => (
            Some(tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal())),
            None,
        ),
        LogFormat::Json => (None, Some(tracing_subscriber::fmt::layer().json())),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .with(telemetry.map(|t| t.layer()))
        .init();
    if let Some(problem) = bad_filter {
        tracing::warn!("ignoring RUST_LOG {problem}; logging at info");
    }
}
