//! A client for a PLC directory (`https://plc.directory`, or this crate's
//! server on loopback over plain http).

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::PlcError;
use crate::document::{DidDocument, DocumentData};
use crate::log::LogEntry;
use crate::op::{SignedOp, is_plc_did};

/// Limit on a whole request, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read; anything larger is an error. Audit logs are
/// at most a few hundred kilobytes.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// A PLC directory client. Cheap to clone (clones share connections).
#[derive(Clone, Debug)]
pub struct PlcClient {
    base: String,
    http: reqwest::Client,
}

impl PlcClient {
    /// A client for the directory at `base_url` (`https://...`, or
    /// `http://...` for a local directory). A trailing `/` is ignored.
    /// Redirects are not followed.
    pub fn new(base_url: &str) -> Result<PlcClient, PlcError> {
        let base = base_url.trim_end_matches('/');
        let https = base.starts_with("https://");
        if !(https || base.starts_with("http://")) || base.len() <= "https://".len() {
            return Err(PlcError::Transport(format!(
                "PLC directory URL must be http(s)://host: {base_url:?}"
            )));
        }
        let tls = tls_config(https).map_err(|e| PlcError::Transport(format!("TLS setup: {e}")))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pds-plc/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PlcError::Transport(format!("cannot build HTTP client: {e}")))?;
        Ok(PlcClient {
            base: base.to_owned(),
            http,
        })
    }

    /// The directory's base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `POST /:did`: submits a signed operation for `did`. A refusal is
    /// [`PlcError::Http`] with status 400 and the directory's message.
    pub async fn submit(&self, did: &str, op: &SignedOp) -> Result<(), PlcError> {
        let url = self.url(did, "")?;
        let body = serde_json::to_vec(op).expect("an operation serializes");
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let body = read_limited(response).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(http_error(status.as_u16(), &body))
        }
    }

    /// Submits a genesis operation, deriving the DID from it. Returns the DID.
    pub async fn create(&self, genesis: &SignedOp) -> Result<String, PlcError> {
        let did = genesis.did()?;
        self.submit(&did, genesis).await?;
        Ok(did)
    }

    /// `GET /:did`: the DID document. [`PlcError::NotRegistered`] for an
    /// unknown DID, [`PlcError::NotAvailable`] for a tombstoned one.
    pub async fn get_document(&self, did: &str) -> Result<DidDocument, PlcError> {
        self.get(did, "").await
    }

    /// `GET /:did/data`: the current state.
    pub async fn get_data(&self, did: &str) -> Result<DocumentData, PlcError> {
        self.get(did, "/data").await
    }

    /// `GET /:did/log`: the active operations, oldest first.
    pub async fn get_log(&self, did: &str) -> Result<Vec<SignedOp>, PlcError> {
        self.get(did, "/log").await
    }

    /// `GET /:did/log/audit`: every entry, nullified ones included. Check it
    /// with [`crate::verify_audit_log`] before trusting it.
    pub async fn get_audit_log(&self, did: &str) -> Result<Vec<LogEntry>, PlcError> {
        self.get(did, "/log/audit").await
    }

    /// `GET /:did/log/last`: the newest active operation.
    pub async fn get_last_op(&self, did: &str) -> Result<SignedOp, PlcError> {
        self.get(did, "/log/last").await
    }

    fn url(&self, did: &str, suffix: &str) -> Result<String, PlcError> {
        // Also keeps anything but a DID out of the URL path.
        if !is_plc_did(did) {
            return Err(PlcError::InvalidOperation(format!(
                "not a did:plc: {did:?}"
            )));
        }
        Ok(format!("{}/{did}{suffix}", self.base))
    }

    async fn get<T: DeserializeOwned>(&self, did: &str, suffix: &str) -> Result<T, PlcError> {
        let response = self
            .http
            .get(self.url(did, suffix)?)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let body = read_limited(response).await?;
        match status {
            200..=299 => serde_json::from_slice(&body)
                .map_err(|e| PlcError::InvalidResponse(format!("{suffix:?} for {did}: {e}"))),
            404 => Err(PlcError::NotRegistered(did.to_owned())),
            410 => Err(PlcError::NotAvailable(did.to_owned())),
            _ => Err(http_error(status, &body)),
        }
    }
}

/// rustls with the ring provider: the platform's trust store for https,
/// no roots at all for a plain-http directory (which never does TLS).
fn tls_config(https: bool) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = if https {
        let verifier = rustls_platform_verifier::Verifier::new(provider)?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    };
    Ok(config)
}

fn transport(e: reqwest::Error) -> PlcError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "failed"
    };
    PlcError::Transport(format!("{what}: {e}"))
}

/// Reads the body, failing as soon as it passes [`MAX_RESPONSE_BYTES`].
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, PlcError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(PlcError::ResponseTooLarge(MAX_RESPONSE_BYTES));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(PlcError::ResponseTooLarge(MAX_RESPONSE_BYTES));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The directory's `{"message": ...}`, or the start of the body as text.
fn http_error(status: u16, body: &[u8]) -> PlcError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    PlcError::Http { status, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            PlcClient::new("http://127.0.0.1:2582/").unwrap().base_url(),
            "http://127.0.0.1:2582"
        );
        for bad in ["", "127.0.0.1:2582", "ftp://x", "http://", "https://"] {
            assert!(PlcClient::new(bad).is_err(), "{bad}");
        }
        let client = PlcClient::new("http://localhost").unwrap();
        assert!(client.url("did:plc:../../x", "").is_err());
        assert!(client.url("did:web:example.com", "").is_err());
        assert_eq!(
            client
                .url("did:plc:z72i7hdynmk6r22z27h6tvur", "/data")
                .unwrap(),
            "http://localhost/did:plc:z72i7hdynmk6r22z27h6tvur/data"
        );
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            http_error(400, br#"{"message":"Invalid signature"}"#),
            PlcError::Http {
                status: 400,
                message: "Invalid signature".into()
            }
        );
        assert_eq!(
            http_error(502, b"Bad Gateway"),
            PlcError::Http {
                status: 502,
                message: "Bad Gateway".into()
            }
        );
    }
}
