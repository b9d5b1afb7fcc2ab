//! Uncached resolution: DID -> document, handle -> DID.

use std::pin::pin;
use std::sync::Arc;

use pds_syntax::{Did, Handle};

use crate::IdentityError;
use crate::dns::DnsResolver;
use crate::document::DidDocument;
use crate::http::SafeHttpClient;

const DID_DOC_ACCEPT: &str = "application/did+ld+json, application/json";
/// A handle's well-known answer is one DID (at most 2 KiB) plus whitespace.
const WELL_KNOWN_MAX_BYTES: usize = 4096;

/// Maps "this resource does not exist" statuses to [`IdentityError::NotFound`].
fn not_found_on_404(err: IdentityError, what: &str) -> IdentityError {
    match err {
        IdentityError::HttpStatus {
            status: 404 | 410, ..
        } => IdentityError::NotFound(what.to_owned()),
        other => other,
    }
}

/// Resolves `did:plc` (from the configured PLC directory) and hostname-level
/// `did:web` (from `https://<host>/.well-known/did.json`) to documents.
#[derive(Debug, Clone)]
pub struct DidResolver {
    plc_url: String,
    dev_mode: bool,
    web: SafeHttpClient,
    plc: SafeHttpClient,
}

impl DidResolver {
    /// `web` fetches did:web documents (user-influenced hosts: use the
    /// public-only policy outside dev mode); `plc` fetches from `plc_url`,
    /// which the operator configured and so may be on loopback or a private
    /// network.
    pub fn new(plc_url: &str, dev_mode: bool, web: SafeHttpClient, plc: SafeHttpClient) -> Self {
        DidResolver {
            plc_url: plc_url.trim_end_matches('/').to_owned(),
            dev_mode,
            web,
            plc,
        }
    }

    /// Where `did`'s document is fetched from.
    ///
    /// `did:plc:<24 base32 chars>` -> `<plc_url>/<did>`.
    /// `did:web:<host>[%3A<port>]` -> `https://<host>[:<port>]/.well-known/did.json`;
    /// in dev mode `did:web:localhost%3A<port>` is fetched over plain http,
    /// as the reference does. Path-based did:web (more `:`-separated parts)
    /// is not supported by atproto.
    pub fn document_url(&self, did: &Did) -> Result<String, IdentityError> {
        match did.method() {
            "plc" => {
                let id = did.identifier();
                let valid = id.len() == 24
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
                if !valid {
                    return Err(IdentityError::UnsupportedDid(format!(
                        "{did}: a did:plc identifier is 24 base32 characters"
                    )));
                }
                Ok(format!("{}/{did}", self.plc_url))
            }
            "web" => did_web_url(did, self.dev_mode),
            other => Err(IdentityError::UnsupportedDid(format!(
                "{did}: method {other:?} is not resolvable (only plc and web)"
            ))),
        }
    }

    /// Fetches and parses `did`'s document; its `id` must be `did`.
    pub async fn resolve(&self, did: &Did) -> Result<DidDocument, IdentityError> {
        let url = self.document_url(did)?;
        let client = if did.method() == "plc" {
            &self.plc
        } else {
            &self.web
        };
        let body = client
            .get(&url, DID_DOC_ACCEPT)
            .await
            .map_err(|e| not_found_on_404(e, did.as_str()))?;
        DidDocument::parse(did, &body)
    }
}

fn did_web_url(did: &Did, dev_mode: bool) -> Result<String, IdentityError> {
    let unsupported = |why: &str| IdentityError::UnsupportedDid(format!("{did}: {why}"));
    let id = did.identifier();
    if id.contains(':') {
        return Err(unsupported(
            "path-based did:web is not supported in atproto",
        ));
    }
    // The only escape a hostname-level did:web carries is the port's `%3A`.
    let decoded = id.replace("%3A", ":").replace("%3a", ":");
    if decoded.contains('%') {
        return Err(unsupported(
            "only %3A (a port separator) may be percent-encoded",
        ));
    }
    let (host, port) = match decoded.split_once(':') {
        None => (decoded.as_str(), None),
        Some((host, port)) => {
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| unsupported("bad port"))?;
            (host, Some(port))
        }
    };
    let host = host.to_ascii_lowercase();
    let localhost = host == "localhost";
    if !(localhost && dev_mode) && Handle::new(&host).is_err() {
        return Err(unsupported("the host is not a valid domain name"));
    }
    let scheme = if localhost && dev_mode {
        "http"
    } else {
        "https"
    };
    Ok(match port {
        Some(port) => format!("{scheme}://{host}:{port}/.well-known/did.json"),
        None => format!("{scheme}://{host}/.well-known/did.json"),
    })
}

/// Top-level domains that never resolve on the public internet (RFC 6761,
/// 6762, 7686, 9476, and ICANN's `.internal`), refused before any lookup.
/// `.test` is allowed in dev mode only.
const UNRESOLVABLE_TLDS: &[&str] = &[
    "alt",
    "arpa",
    "example",
    "internal",
    "invalid",
    "local",
    "localhost",
    "onion",
];

/// Resolves a handle to a DID: DNS TXT `_atproto.<handle>` (`did=<did>`)
/// and HTTPS `GET https://<handle>/.well-known/atproto-did`.
///
/// Order: both lookups start at once; the DNS answer wins when it has one
/// (the spec prefers it, and it is the common case for custom domains), and
/// the well-known answer is used only when DNS has none. So a handle whose
/// DNS answers quickly costs one round trip and a handle served only over
/// HTTPS pays no DNS wait on top of its HTTP fetch.
///
/// In dev mode the well-known fetch uses plain http, so local test servers
/// without TLS can serve it.
#[derive(Clone)]
pub struct HandleResolver {
    dns: Arc<dyn DnsResolver>,
    http: SafeHttpClient,
    dev_mode: bool,
}

impl std::fmt::Debug for HandleResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandleResolver")
            .field("http", &self.http)
            .field("dev_mode", &self.dev_mode)
            .finish_non_exhaustive()
    }
}

impl HandleResolver {
    /// `http` should be the user-influenced-URL client (its address policy
    /// applies to the handle's host).
    pub fn new(dns: Arc<dyn DnsResolver>, http: SafeHttpClient, dev_mode: bool) -> Self {
        HandleResolver {
            dns,
            http,
            dev_mode,
        }
    }

    fn check_tld(&self, handle: &Handle) -> Result<(), IdentityError> {
        let normalized = handle.normalized();
        let tld = normalized.as_str().rsplit('.').next().unwrap_or_default();
        if UNRESOLVABLE_TLDS.contains(&tld) || (tld == "test" && !self.dev_mode) {
            return Err(IdentityError::NotFound(format!(
                "{handle}: .{tld} names do not resolve"
            )));
        }
        Ok(())
    }

    /// The DID of `handle`, unverified (see
    /// [`IdentityResolver::resolve_handle_verified`](crate::IdentityResolver::resolve_handle_verified)).
    pub async fn resolve(&self, handle: &Handle) -> Result<Did, IdentityError> {
        self.check_tld(handle)?;
        let mut dns = pin!(self.resolve_dns(handle));
        let mut http = pin!(self.resolve_well_known(handle));
        let mut http_result = None;
        let dns_result = loop {
            tokio::select! {
                result = &mut dns => break result,
                result = &mut http, if http_result.is_none() => http_result = Some(result),
            }
        };
        if let Ok(Some(did)) = dns_result {
            return Ok(did);
        }
        let http_result = match http_result {
            Some(result) => result,
            None => http.await,
        };
        match (dns_result, http_result) {
            (_, Ok(did)) => Ok(did),
            // DNS said "no record" and HTTP said "nothing here": not found.
            (Ok(None), Err(IdentityError::NotFound(_) | IdentityError::HttpStatus { .. })) => {
                Err(IdentityError::NotFound(handle.to_string()))
            }
            // Otherwise report what went wrong over HTTP (blocked address,
            // timeout, bad body...), or the DNS failure if HTTP merely
            // found nothing.
            (Err(dns_err), Err(IdentityError::NotFound(_) | IdentityError::HttpStatus { .. })) => {
                Err(dns_err)
            }
            (_, Err(http_err)) => Err(http_err),
        }
    }

    /// The DID from `_atproto.<handle>` TXT records: `Some` only if exactly
    /// one record starts with `did=` and the rest is a valid DID.
    pub async fn resolve_dns(&self, handle: &Handle) -> Result<Option<Did>, IdentityError> {
        let name = format!("_atproto.{}", handle.normalized());
        let records = self.dns.lookup_txt(&name).await?;
        Ok(did_from_txt(&records))
    }

    /// The DID from `https://<handle>/.well-known/atproto-did` (body trimmed).
    pub async fn resolve_well_known(&self, handle: &Handle) -> Result<Did, IdentityError> {
        let scheme = if self.dev_mode { "http" } else { "https" };
        let url = format!("{scheme}://{}/.well-known/atproto-did", handle.normalized());
        let body = self
            .http
            .get_limited(&url, "text/plain", WELL_KNOWN_MAX_BYTES)
            .await
            .map_err(|e| not_found_on_404(e, handle.as_str()))?;
        let text = std::str::from_utf8(&body)
            .map_err(|_| IdentityError::InvalidDocument(format!("{url}: body is not UTF-8")))?;
        Did::new(text.trim())
            .map_err(|e| IdentityError::InvalidDocument(format!("{url}: not a DID: {e}")))
    }
}

/// Exactly one `did=` record, holding a valid DID.
fn did_from_txt(records: &[String]) -> Option<Did> {
    let mut found = records.iter().filter_map(|r| r.strip_prefix("did="));
    let first = found.next()?;
    if found.next().is_some() {
        return None;
    }
    Did::new(first.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_records() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
        assert_eq!(
            did_from_txt(&s(&["v=spf1 -all", &format!("did={did}")]))
                .unwrap()
                .as_str(),
            did
        );
        assert!(did_from_txt(&s(&[])).is_none());
        assert!(did_from_txt(&s(&["v=spf1 -all"])).is_none());
        assert!(did_from_txt(&s(&["did=not a did"])).is_none());
        // Two did= records (even equal ones) are ambiguous.
        assert!(did_from_txt(&s(&[&format!("did={did}"), &format!("did={did}")])).is_none());
        // The prefix is case-sensitive and must start the record.
        assert!(did_from_txt(&s(&[&format!("DID={did}")])).is_none());
        assert!(did_from_txt(&s(&[&format!(" did={did}")])).is_none());
    }

    #[test]
    fn did_web_urls() {
        let url = |s: &str, dev| did_web_url(&Did::new(s).unwrap(), dev);
        assert_eq!(
            url("did:web:example.com", false).unwrap(),
            "https://example.com/.well-known/did.json"
        );
        assert_eq!(
            url("did:web:Example.COM%3A8443", false).unwrap(),
            "https://example.com:8443/.well-known/did.json"
        );
        assert_eq!(
            url("did:web:localhost%3A2583", true).unwrap(),
            "http://localhost:2583/.well-known/did.json"
        );
        assert_eq!(
            url("did:web:example.com", true).unwrap(),
            "https://example.com/.well-known/did.json"
        );
        for bad in [
            "did:web:localhost%3A2583", // not in dev mode
            "did:web:example.com:u:alice",
            "did:web:example.com%2Fpath",
            "did:web:example.com%3A",
            "did:web:example.com%3Ax",
            "did:web:example.com%3A0",
            "did:web:example.com%3A70000",
            "did:web:127.0.0.1",
            "did:web:nodot",
        ] {
            assert!(
                matches!(url(bad, false), Err(IdentityError::UnsupportedDid(_))),
                "{bad}"
            );
        }
    }
}
