//! [`SafeHttpClient`]: the one outbound HTTP client for URLs that users
//! influence.

use std::error::Error as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};

use crate::IdentityError;
use crate::dns::DnsResolver;
use crate::net::AddressPolicy;

/// Default connect and total time limits.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default response size limit: generous for a DID document (a few hundred
/// bytes to a few KiB), small enough that a hostile host cannot make the
/// server buffer much.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

const USER_AGENT: &str = concat!("pds/", env!("CARGO_PKG_VERSION"));

/// The limits and address policy of a [`SafeHttpClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Which addresses may be connected to (checked after DNS resolution,
    /// and on literal IP hosts).
    pub policy: AddressPolicy,
    /// Time allowed to resolve and connect (TLS handshake included).
    pub connect_timeout: Duration,
    /// Time allowed for the whole request, body included.
    pub timeout: Duration,
    /// Largest response body accepted, in bytes; enforced while reading.
    pub max_body_bytes: usize,
}

impl HttpConfig {
    /// The defaults, with loopback allowed in dev mode.
    pub fn new(dev_mode: bool) -> HttpConfig {
        HttpConfig {
            policy: if dev_mode {
                AddressPolicy::PublicAndLoopback
            } else {
                AddressPolicy::PublicOnly
            },
            connect_timeout: DEFAULT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

impl Default for HttpConfig {
    /// Production defaults: public addresses only, 5 s, 256 KiB.
    fn default() -> HttpConfig {
        HttpConfig::new(false)
    }
}

/// An HTTP client for URLs from the outside world.
///
/// - Every host name is resolved through the given [`DnsResolver`] and only
///   the addresses the [`AddressPolicy`] allows are handed to the connector,
///   so the check covers exactly the addresses connected to (no window for
///   DNS rebinding). Literal IP hosts are checked before the request.
/// - Redirects are not followed (a 3xx is an [`IdentityError::HttpStatus`]),
///   so a public host cannot bounce the request inside.
/// - No proxy, no decompression, HTTP/1.1 only, TLS through rustls with the
///   ring provider and the system's trust store.
/// - Connect and total time limits; the body is read chunk by chunk and the
///   request abandoned as soon as it passes the size limit.
///
/// Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct SafeHttpClient {
    inner: reqwest::Client,
    config: Arc<HttpConfig>,
}

impl std::fmt::Debug for SafeHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeHttpClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The reqwest DNS hook: resolve, then keep only the allowed addresses.
struct FilteringResolver {
    dns: Arc<dyn DnsResolver>,
    policy: AddressPolicy,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let dns = self.dns.clone();
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = dns.lookup_ip(&host).await?;
            let (allowed, blocked) = filter_addrs(policy, addrs);
            if allowed.is_empty() {
                let err = match blocked {
                    Some((addr, reason)) => IdentityError::BlockedAddress { host, addr, reason },
                    None => IdentityError::NotFound(format!("host {host} has no addresses")),
                };
                return Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Splits resolved addresses into the allowed ones and the first refused one.
fn filter_addrs(
    policy: AddressPolicy,
    addrs: Vec<SocketAddr>,
) -> (Vec<SocketAddr>, Option<(IpAddr, crate::BlockReason)>) {
    let mut allowed = Vec::with_capacity(addrs.len());
    let mut blocked = None;
    for addr in addrs {
        match policy.check(addr.ip()) {
            Ok(()) => allowed.push(addr),
            Err(reason) => {
                tracing::debug!(addr = %addr.ip(), %reason, "refusing resolved address");
                blocked.get_or_insert((addr.ip(), reason));
            }
        }
    }
    (allowed, blocked)
}

/// The TLS settings of every outbound client: rustls with the ring provider, the system trust
/// store, HTTP/1.1. Public for the server's other clients (talking to hosts an operator names).
pub fn tls_config() -> Result<rustls::ClientConfig, IdentityError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| IdentityError::Transport(format!("TLS trust store: {e}")))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| IdentityError::Transport(format!("TLS configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl SafeHttpClient {
    /// A client resolving host names through `dns`.
    pub fn new(config: HttpConfig, dns: Arc<dyn DnsResolver>) -> Result<Self, IdentityError> {
        let resolver = FilteringResolver {
            dns,
            policy: config.policy,
        };
        let inner = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .dns_resolver(resolver)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .http1_only()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| IdentityError::Transport(format!("building the HTTP client: {e}")))?;
        Ok(SafeHttpClient {
            inner,
            config: Arc::new(config),
        })
    }

    /// The limits and policy this client enforces.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// `GET url`, returning the body of a 200 response, at most
    /// [`HttpConfig::max_body_bytes`].
    pub async fn get(&self, url: &str, accept: &str) -> Result<Vec<u8>, IdentityError> {
        self.get_limited(url, accept, self.config.max_body_bytes)
            .await
    }

    /// `GET url` with a smaller (or larger) body limit than the configured
    /// one, e.g. for a handle's well-known answer, which is one DID.
    pub async fn get_limited(
        &self,
        url: &str,
        accept: &str,
        max_bytes: usize,
    ) -> Result<Vec<u8>, IdentityError> {
        let parsed = self.check_url(url)?;
        tokio::time::timeout(self.config.timeout, self.fetch(parsed, accept, max_bytes))
            .await
            .map_err(|_| IdentityError::Timeout(url.to_owned()))?
    }

    /// `POST url` with a JSON body (e.g. `com.atproto.sync.requestCrawl` to a
    /// relay), under the same address policy and time limit; any 2xx answer
    /// is success, its body is not read.
    pub async fn post_json(&self, url: &str, json: Vec<u8>) -> Result<(), IdentityError> {
        let parsed = self.check_url(url)?;
        let send = self
            .inner
            .post(parsed)
            .header(CONTENT_TYPE, "application/json")
            .body(json)
            .send();
        let response = tokio::time::timeout(self.config.timeout, send)
            .await
            .map_err(|_| IdentityError::Timeout(url.to_owned()))?
            .map_err(|e| map_reqwest_error(e, url))?;
        let status = response.status();
        if !status.is_success() {
            return Err(IdentityError::HttpStatus {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        Ok(())
    }

    /// Refuses URLs that are not plain http(s) to a host, and literal IP
    /// hosts the policy does not allow (these never reach the resolver).
    fn check_url(&self, url: &str) -> Result<Url, IdentityError> {
        check_url(self.config.policy, url)
    }

    async fn fetch(
        &self,
        url: Url,
        accept: &str,
        max_bytes: usize,
    ) -> Result<Vec<u8>, IdentityError> {
        let url_text = url.to_string();
        let mut response = self
            .inner
            .get(url)
            .header(ACCEPT, accept)
            .send()
            .await
            .map_err(|e| map_reqwest_error(e, &url_text))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(IdentityError::HttpStatus {
                url: url_text,
                status: status.as_u16(),
            });
        }
        // A declared length over the limit fails before reading anything.
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > max_bytes as u64) {
            return Err(IdentityError::TooLarge { limit: max_bytes });
        }
        let mut body = Vec::with_capacity(declared.map_or(0, |len| len as usize));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| map_reqwest_error(e, &url_text))?
        {
            if body.len() + chunk.len() > max_bytes {
                return Err(IdentityError::TooLarge { limit: max_bytes });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// An HTTP client for requests whose bodies stream both ways, such as the
/// requests a PDS forwards to other services for its accounts.
///
/// The rules of [`SafeHttpClient`]: host names resolved through the given
/// [`DnsResolver`] and only the addresses the [`AddressPolicy`] allows
/// connected to (literal IP hosts checked before the request), no redirects,
/// no proxy, no decompression (bodies pass through as encoded), HTTP/1.1 over
/// rustls with the ring provider. A connect time limit but no overall one: a
/// forwarded response may be large and long, so the caller bounds the wait for
/// its headers and each pause in its body instead.
///
/// Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct StreamingHttpClient {
    inner: reqwest::Client,
    policy: AddressPolicy,
}

impl std::fmt::Debug for StreamingHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingHttpClient")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl StreamingHttpClient {
    /// A client connecting only where `policy` allows, resolving names through `dns`.
    pub fn new(
        policy: AddressPolicy,
        connect_timeout: Duration,
        dns: Arc<dyn DnsResolver>,
    ) -> Result<Self, IdentityError> {
        let inner = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .dns_resolver(FilteringResolver { dns, policy })
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .http1_only()
            .connect_timeout(connect_timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| IdentityError::Transport(format!("building the HTTP client: {e}")))?;
        Ok(StreamingHttpClient { inner, policy })
    }

    /// The address policy this client enforces.
    pub fn policy(&self) -> AddressPolicy {
        self.policy
    }

    /// A `method` request to `url`, to be completed and sent by the caller. The URL is checked
    /// first: plain http(s) to a host, no credentials, and no literal IP the policy refuses.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, IdentityError> {
        let parsed = check_url(self.policy, url)?;
        Ok(self.inner.request(method, parsed))
    }

    /// What a failed request (or response body) of this client ran into: the address policy's
    /// refusal or a missing host as such, else a timeout or a transport error with its causes.
    pub fn describe_error(err: reqwest::Error, url: &str) -> IdentityError {
        map_reqwest_error(err, url)
    }
}

/// Refuses URLs that are not plain http(s) to a host, and literal IP hosts
/// `policy` does not allow (these never reach the resolver).
fn check_url(policy: AddressPolicy, url: &str) -> Result<Url, IdentityError> {
    let parsed =
        Url::parse(url).map_err(|e| IdentityError::Transport(format!("bad URL {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(IdentityError::Transport(format!(
            "refusing non-HTTP URL {url:?}"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(IdentityError::Transport(format!(
            "refusing URL with credentials {url:?}"
        )));
    }
    let Some(host) = parsed.host_str() else {
        return Err(IdentityError::Transport(format!(
            "URL without a host {url:?}"
        )));
    };
    // The URL parser has already normalised IPv4 spellings (`2130706433`,
    // `0x7f.1`) to dotted quads; IPv6 literals come bracketed.
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    if let Some(addr) = literal
        && let Err(reason) = policy.check(addr)
    {
        return Err(IdentityError::BlockedAddress {
            host: host.to_owned(),
            addr,
            reason,
        });
    }
    Ok(parsed)
}

/// Recovers our own error from the resolver (blocked address, no such host)
/// out of reqwest's error chain; otherwise a timeout or transport error.
fn map_reqwest_error(err: reqwest::Error, url: &str) -> IdentityError {
    let mut source = err.source();
    while let Some(inner) = source {
        if let Some(ours) = inner.downcast_ref::<IdentityError>() {
            return ours.clone();
        }
        source = inner.source();
    }
    if err.is_timeout() {
        return IdentityError::Timeout(url.to_owned());
    }
    // reqwest's Display is terse ("error sending request"); add the causes.
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    IdentityError::Transport(message)
}
