//! Who a `client_id` is: its client metadata document, fetched from the URL the id is (through
//! the address-checked [`SafeHttpClient`]: public addresses only outside dev mode, a size and
//! a time limit, no redirects) and cached for a few minutes; or, for the loopback development
//! ids (`http://localhost?...`), the metadata the id itself implies, never fetched.
//!
//! In dev mode, an `http://` id on a loopback address with a port (`http://127.0.0.1:8080/
//! client.json`) is fetched too, so a test or a developer can run a client with published
//! metadata (a confidential client, say) without TLS. Never outside dev mode.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pds_identity::SafeHttpClient;
use pds_oauth::client_metadata::{self, AuthMethod, ClientIdKind, ClientMetadata};
use serde_json::Value;

use super::error::OAuthHttpError;

/// How long fetched metadata is trusted before it is fetched again.
const CACHE_TTL: Duration = Duration::from_secs(10 * 60);
/// How long a failed fetch is remembered (so a broken client cannot make us fetch per request).
const FAILURE_TTL: Duration = Duration::from_secs(30);
/// Largest metadata document (or JWKS) accepted.
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Entries kept at most; past that the cache starts over.
const MAX_ENTRIES: usize = 10_000;

/// A client as this server knows it.
#[derive(Debug, Clone)]
pub struct Client {
    pub metadata: ClientMetadata,
    /// The public keys of a `private_key_jwt` client (inline `jwks` or fetched `jwks_uri`).
    pub jwks: Option<Value>,
    /// A loopback development client (`http://localhost?...`).
    pub loopback: bool,
}

impl Client {
    /// What the pages call the app: its name, else the host of its id.
    pub fn display_name(&self) -> String {
        if let Some(name) = self
            .metadata
            .client_name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
        {
            return name.trim().to_owned();
        }
        if self.loopback {
            return "A development app on this computer".into();
        }
        url::Url::parse(&self.metadata.client_id)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| self.metadata.client_id.clone())
    }

    pub fn is_confidential(&self) -> bool {
        self.metadata.token_endpoint_auth_method == AuthMethod::PrivateKeyJwt
    }
}

type Entry = (Result<Arc<Client>, OAuthHttpError>, Instant);

/// Resolves and caches clients.
pub struct Clients {
    http: SafeHttpClient,
    dev_mode: bool,
    cache: Mutex<HashMap<String, Entry>>,
}

impl Clients {
    pub fn new(http: SafeHttpClient, dev_mode: bool) -> Clients {
        Clients {
            http,
            dev_mode,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The client named by `client_id`.
    pub async fn get(&self, client_id: &str) -> Result<Arc<Client>, OAuthHttpError> {
        if let Some((result, at)) = self.cache.lock().expect("client cache").get(client_id) {
            let ttl = if result.is_ok() {
                CACHE_TTL
            } else {
                FAILURE_TTL
            };
            if at.elapsed() < ttl {
                return result.clone();
            }
        }
        let result = self.resolve(client_id).await.map(Arc::new);
        let mut cache = self.cache.lock().expect("client cache");
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(client_id.to_owned(), (result.clone(), Instant::now()));
        result
    }

    async fn resolve(&self, client_id: &str) -> Result<Client, OAuthHttpError> {
        let kind = match client_metadata::parse_client_id(client_id) {
            Ok(kind) => kind,
            Err(_) if self.dev_mode && is_dev_http_client_id(client_id) => {
                return self.fetch(client_id, true).await;
            }
            Err(e) => return Err(e.into()),
        };
        match kind {
            ClientIdKind::Loopback => Ok(Client {
                metadata: client_metadata::loopback_metadata(client_id)?,
                jwks: None,
                loopback: true,
            }),
            ClientIdKind::Discoverable(_) => self.fetch(client_id, false).await,
        }
    }

    async fn fetch(&self, client_id: &str, development: bool) -> Result<Client, OAuthHttpError> {
        let document = self
            .http
            .get_limited(client_id, "application/json", MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| {
                OAuthHttpError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "invalid_client_metadata",
                    format!("could not fetch the client metadata: {e}"),
                )
            })?;
        let metadata = match development {
            true => client_metadata::validate_development(client_id, &document)?,
            false => client_metadata::validate(client_id, &document)?,
        };
        let jwks = match (&metadata.jwks, &metadata.jwks_uri) {
            (Some(jwks), _) => Some(jwks.clone()),
            (None, Some(uri)) => {
                let bytes = self
                    .http
                    .get_limited(uri, "application/json", MAX_DOCUMENT_BYTES)
                    .await
                    .map_err(|e| {
                        OAuthHttpError::new(
                            axum::http::StatusCode::BAD_REQUEST,
                            "invalid_client_metadata",
                            format!("could not fetch the client's jwks_uri: {e}"),
                        )
                    })?;
                Some(serde_json::from_slice(&bytes).map_err(|_| {
                    OAuthHttpError::new(
                        axum::http::StatusCode::BAD_REQUEST,
                        "invalid_client_metadata",
                        "the client's jwks_uri is not JSON",
                    )
                })?)
            }
            (None, None) => None,
        };
        Ok(Client {
            metadata,
            jwks,
            loopback: false,
        })
    }
}

/// Dev mode's `http://` client ids: a loopback host with a port, and a path.
fn is_dev_http_client_id(client_id: &str) -> bool {
    let Ok(url) = url::Url::parse(client_id) else {
        return false;
    };
    let loopback_host = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    url.scheme() == "http"
        && loopback_host
        && url.port().is_some()
        && url.path().len() > 1
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_http_client_ids_are_loopback_with_a_port_and_a_path() {
        assert!(is_dev_http_client_id("http://127.0.0.1:8080/client.json"));
        assert!(is_dev_http_client_id(
            "http://localhost:8080/oauth/client-metadata.json"
        ));
        assert!(!is_dev_http_client_id("http://127.0.0.1/client.json"));
        assert!(!is_dev_http_client_id("http://127.0.0.1:8080/"));
        assert!(!is_dev_http_client_id("http://10.0.0.1:8080/client.json"));
        assert!(!is_dev_http_client_id("https://127.0.0.1:8080/client.json"));
        assert!(!is_dev_http_client_id(
            "http://example.com:8080/client.json"
        ));
    }
}
