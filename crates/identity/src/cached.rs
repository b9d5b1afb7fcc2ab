//! [`IdentityResolver`]: DID and handle resolution behind a TTL cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;
use pds_syntax::{Did, Handle};

use crate::IdentityError;
use crate::dns::{DnsResolver, HickoryDns};
use crate::document::DidDocument;
use crate::http::{HttpConfig, SafeHttpClient};
use crate::net::AddressPolicy;
use crate::resolve::{DidResolver, HandleResolver};

/// How long answers are kept, and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Lifetime of a successful resolution.
    pub positive_ttl: Duration,
    /// Lifetime of a definitive failure (not found, invalid document, ...;
    /// see [`IdentityError::is_definitive`]). Transient failures (timeouts,
    /// DNS or connection errors) are never cached.
    pub negative_ttl: Duration,
    /// Most entries per cache (DIDs and handles are cached separately);
    /// the least useful are evicted beyond it.
    pub max_entries: u64,
}

impl Default for CacheConfig {
    /// One hour for answers (the reference's DID cache refreshes after an
    /// hour too), one minute for failures (so a freshly published DNS
    /// record is picked up quickly), 10,000 entries each.
    fn default() -> CacheConfig {
        CacheConfig {
            positive_ttl: Duration::from_secs(3600),
            negative_ttl: Duration::from_secs(60),
            max_entries: 10_000,
        }
    }
}

/// Everything [`IdentityResolver`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityConfig {
    /// The PLC directory, e.g. `https://plc.directory`. Trusted: it is
    /// fetched without the address policy, so a local directory works.
    pub plc_url: String,
    /// Dev mode: loopback allowed for user-influenced URLs,
    /// `did:web:localhost%3A<port>` over http, handles' well-known over
    /// http, `.test` handles resolvable.
    pub dev_mode: bool,
    /// Limits and address policy for did:web and handle fetches (the PLC
    /// fetches use the same limits with no address policy).
    pub http: HttpConfig,
    /// Time allowed per DNS lookup.
    pub dns_timeout: Duration,
    /// Cache lifetimes and size.
    pub cache: CacheConfig,
}

impl IdentityConfig {
    /// Defaults for the given PLC directory and mode.
    pub fn new(plc_url: &str, dev_mode: bool) -> IdentityConfig {
        IdentityConfig {
            plc_url: plc_url.to_owned(),
            dev_mode,
            http: HttpConfig::new(dev_mode),
            dns_timeout: Duration::from_secs(3),
            cache: CacheConfig::default(),
        }
    }
}

/// Positive and negative entries live for different times.
struct TtlByOutcome {
    positive: Duration,
    negative: Duration,
}

impl<K, T> Expiry<K, Result<T, IdentityError>> for TtlByOutcome {
    fn expire_after_create(
        &self,
        _key: &K,
        value: &Result<T, IdentityError>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(if value.is_ok() {
            self.positive
        } else {
            self.negative
        })
    }
}

fn cache<T: Clone + Send + Sync + 'static>(
    config: &CacheConfig,
) -> Cache<String, Result<T, IdentityError>> {
    Cache::builder()
        .max_capacity(config.max_entries)
        .expire_after(TtlByOutcome {
            positive: config.positive_ttl,
            negative: config.negative_ttl,
        })
        .build()
}

/// DID and handle resolution with caching: what the rest of the server
/// uses.
///
/// Concurrent misses for the same key each fetch (no request coalescing);
/// after an identity change (handle update, PLC operation, migration) call
/// [`purge_did`](Self::purge_did) / [`purge_handle`](Self::purge_handle) or
/// the `refresh_*` methods.
#[derive(Clone)]
pub struct IdentityResolver {
    dids: DidResolver,
    handles: HandleResolver,
    http: SafeHttpClient,
    did_cache: Cache<String, Result<Arc<DidDocument>, IdentityError>>,
    handle_cache: Cache<String, Result<Did, IdentityError>>,
}

impl std::fmt::Debug for IdentityResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityResolver")
            .field("dids", &self.dids)
            .field("handles", &self.handles)
            .finish_non_exhaustive()
    }
}

impl IdentityResolver {
    /// A resolver using the system's DNS configuration.
    pub fn new(config: IdentityConfig) -> Result<Self, IdentityError> {
        let dns = HickoryDns::from_system(config.dns_timeout)?;
        IdentityResolver::with_dns(config, Arc::new(dns))
    }

    /// A resolver whose every lookup (TXT records and host addresses) goes
    /// through `dns`, e.g. a [`StaticDns`](crate::StaticDns) in tests.
    pub fn with_dns(
        config: IdentityConfig,
        dns: Arc<dyn DnsResolver>,
    ) -> Result<Self, IdentityError> {
        let http = SafeHttpClient::new(config.http.clone(), dns.clone())?;
        let plc = SafeHttpClient::new(
            HttpConfig {
                policy: AddressPolicy::Any,
                ..config.http.clone()
            },
            dns.clone(),
        )?;
        Ok(IdentityResolver {
            dids: DidResolver::new(&config.plc_url, config.dev_mode, http.clone(), plc),
            handles: HandleResolver::new(dns, http.clone(), config.dev_mode),
            http,
            did_cache: cache(&config.cache),
            handle_cache: cache(&config.cache),
        })
    }

    /// The uncached DID resolver.
    pub fn did_resolver(&self) -> &DidResolver {
        &self.dids
    }

    /// The uncached handle resolver.
    pub fn handle_resolver(&self) -> &HandleResolver {
        &self.handles
    }

    /// The client for user-influenced URLs (with this resolver's DNS and
    /// address policy), for other fetches of that kind.
    pub fn http(&self) -> &SafeHttpClient {
        &self.http
    }

    /// `did`'s document, from the cache if fresh.
    pub async fn resolve_did(&self, did: &Did) -> Result<Arc<DidDocument>, IdentityError> {
        match self.did_cache.get(did.as_str()) {
            Some(cached) => cached,
            None => self.refresh_did(did).await,
        }
    }

    /// `did`'s document fetched now; the cache is updated with the result.
    pub async fn refresh_did(&self, did: &Did) -> Result<Arc<DidDocument>, IdentityError> {
        let result = self.dids.resolve(did).await.map(Arc::new);
        store(&self.did_cache, did.as_str().to_owned(), &result);
        result
    }

    /// The DID `handle` points to, from the cache if fresh. Unverified: use
    /// [`resolve_handle_verified`](Self::resolve_handle_verified) unless the
    /// DID document is checked some other way.
    pub async fn resolve_handle(&self, handle: &Handle) -> Result<Did, IdentityError> {
        match self.handle_cache.get(handle.normalized().as_str()) {
            Some(cached) => cached,
            None => self.refresh_handle(handle).await,
        }
    }

    /// `handle` resolved now; the cache is updated with the result.
    pub async fn refresh_handle(&self, handle: &Handle) -> Result<Did, IdentityError> {
        let result = self.handles.resolve(handle).await;
        store(
            &self.handle_cache,
            handle.normalized().into_string(),
            &result,
        );
        result
    }

    /// The DID of `handle`, only if that DID's document claims the handle
    /// back: its first valid `at://` alias equals `handle` (ASCII
    /// case-insensitive). Otherwise [`IdentityError::HandleNotVerified`].
    /// Both lookups go through the caches.
    pub async fn resolve_handle_verified(&self, handle: &Handle) -> Result<Did, IdentityError> {
        let did = self.resolve_handle(handle).await?;
        let doc = self.resolve_did(&did).await?;
        if doc.claims_handle(handle) {
            Ok(did)
        } else {
            Err(IdentityError::HandleNotVerified {
                handle: handle.to_string(),
                did: did.to_string(),
            })
        }
    }

    /// Forgets `did`'s cached document (after a PLC operation, a
    /// did:web update or a migration).
    pub fn purge_did(&self, did: &Did) {
        self.did_cache.invalidate(did.as_str());
    }

    /// Forgets `handle`'s cached DID (after a handle change).
    pub fn purge_handle(&self, handle: &Handle) {
        self.handle_cache.invalidate(handle.normalized().as_str());
    }
}

/// Caches successes and definitive failures; transient failures are not
/// stored (and any older entry is left as it was).
fn store<T: Clone + Send + Sync + 'static>(
    cache: &Cache<String, Result<T, IdentityError>>,
    key: String,
    result: &Result<T, IdentityError>,
) {
    match result {
        Ok(_) => cache.insert(key, result.clone()),
        Err(e) if e.is_definitive() => cache.insert(key, result.clone()),
        Err(_) => {}
    }
}
