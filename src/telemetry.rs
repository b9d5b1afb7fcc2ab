//! Traces for an OpenTelemetry collector, when the operator asks for them with the standard
//! variables: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL) or `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (`/v1/traces` is appended), `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, the default, or
//! `http/json`), `OTEL_EXPORTER_OTLP_HEADERS` (e.g. an API key), `OTEL_SERVICE_NAME` (default
//! `pds`), and the batch settings `OTEL_BSP_*`. Unset: no exporter, nothing sent.
//!
//! The server's `tracing` spans (one per HTTP request, with method, path and status, and the
//! spans inside it) are bridged by `tracing-opentelemetry` and sent in batches over OTLP/HTTP
//! from the SDK's own thread, with a blocking reqwest client (the SDK's built-in clients would
//! bring a second HTTP stack).

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::config::EnvLookup;

/// How long one export may take before it is given up on.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The exporter, kept to flush what is buffered when the process ends.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// The exporter the environment configures; `Ok(None)` when no endpoint is set.
    pub fn from_env(env: EnvLookup<'_>) -> Result<Option<Telemetry>, String> {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let endpoint = match (
            set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            set("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(traces), _) => traces,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        let protocol = match set("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
            None | Some("http/protobuf") => Protocol::HttpBinary,
            Some("http/json") => Protocol::HttpJson,
            Some(other) => {
                return Err(format!(
                    "OTEL_EXPORTER_OTLP_PROTOCOL: {other:?} is not supported (http/protobuf or http/json)"
                ));
            }
        };
        let client = BlockingClient::new()?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(endpoint)
            .with_protocol(protocol)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| format!("OpenTelemetry exporter: {e}"))?;
        let service = set("OTEL_SERVICE_NAME").unwrap_or_else(|| "pds".to_owned());
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(service)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(Some(Telemetry { provider }))
    }

    /// The `tracing` layer that hands spans to the exporter.
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        let tracer = self.provider.tracer("pds");
        tracing_opentelemetry::layer().with_tracer(tracer)
    }

    /// Sends what is still buffered and stops the exporter.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("OpenTelemetry: {e}");
        }
    }
}

/// OTLP requests over a blocking reqwest client: the SDK exports from a thread of its own, with
/// no async runtime to drive an async client.
#[derive(Debug)]
struct BlockingClient {
    inner: reqwest::blocking::Client,
}

impl BlockingClient {
    fn new() -> Result<BlockingClient, String> {
        let tls = pds_identity::tls_config().map_err(|e| e.to_string())?;
        let inner = reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| format!("the OpenTelemetry HTTP client: {e}"))?;
        Ok(BlockingClient { inner })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for BlockingClient {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<bytes::Bytes>,
    ) -> Result<opentelemetry_http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let mut outgoing = self
            .inner
            .request(parts.method, parts.uri.to_string())
            .body(body.to_vec());
        for (name, value) in &parts.headers {
            outgoing = outgoing.header(name, value);
        }
        let response = outgoing.send()?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes()?;
        let mut answer = opentelemetry_http::Response::new(body);
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_environment_asks_for() {
        let none = |_: &str| None;
        assert!(Telemetry::from_env(&none).unwrap().is_none());
        let empty = |_: &str| Some(String::new());
        assert!(Telemetry::from_env(&empty).unwrap().is_none());
        let grpc = |name: &str| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:4317".to_owned()),
            "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("grpc".to_owned()),
            _ => None,
        };
        let refused = Telemetry::from_env(&grpc).err().unwrap();
        assert!(refused.contains("not supported"), "{refused}");
    }
}
