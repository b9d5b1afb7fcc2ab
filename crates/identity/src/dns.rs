//! DNS lookups behind a small trait, so tests (and other crates' tests) can
//! supply answers without a DNS server.
//!
//! Both lookups the crate needs go through [`DnsResolver`]: TXT records for
//! `_atproto.<handle>`, and host addresses for every outbound HTTP request of
//! [`SafeHttpClient`](crate::SafeHttpClient), whose address policy is applied
//! to exactly what the resolver returned.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::LookupIpStrategy;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RData;

use crate::IdentityError;

/// A boxed, sendable future (what the [`DnsResolver`] methods return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The DNS lookups identity resolution needs.
///
/// "No such name" and "no such record" are `Ok` with an empty list; `Err` is
/// for failures ([`IdentityError::Dns`], [`IdentityError::Timeout`]).
pub trait DnsResolver: Send + Sync + 'static {
    /// The TXT records at `name` (a fully qualified name without the
    /// trailing dot), each record's character-strings concatenated.
    fn lookup_txt<'a>(&'a self, name: &'a str)
    -> BoxFuture<'a, Result<Vec<String>, IdentityError>>;

    /// The addresses of `host`. A port of 0 means "the URL's port" (the
    /// usual case); a non-zero port is used when the URL names none, which
    /// lets tests point `http://alice.test/` at a server on an ephemeral
    /// port.
    fn lookup_ip<'a>(
        &'a self,
        host: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SocketAddr>, IdentityError>>;
}

/// The system's DNS, through `hickory-resolver` (`/etc/resolv.conf`, the
/// hosts file, and `localhost` answered locally as RFC 6761 asks).
///
/// Names are looked up as fully qualified (a trailing dot is added), so the
/// system's search domains never turn `_atproto.alice.com` into
/// `_atproto.alice.com.corp.internal`.
pub struct HickoryDns {
    resolver: TokioResolver,
    timeout: Duration,
}

impl HickoryDns {
    /// A resolver from the system configuration, with `timeout` per lookup.
    pub fn from_system(timeout: Duration) -> Result<HickoryDns, IdentityError> {
        let mut builder = TokioResolver::builder_tokio().map_err(|e| {
            IdentityError::Dns(format!("cannot read the system DNS configuration: {e}"))
        })?;
        let opts = builder.options_mut();
        // Two tries within the overall limit, which `lookup_*` enforce too.
        opts.timeout = timeout / 2;
        opts.attempts = 2;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let resolver = builder
            .build()
            .map_err(|e| IdentityError::Dns(format!("cannot build the DNS resolver: {e}")))?;
        Ok(HickoryDns { resolver, timeout })
    }
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

/// "No such name"/"no records" is an empty answer; anything else an error.
fn empty_or_error<T>(name: &str, e: NetError) -> Result<Vec<T>, IdentityError> {
    if e.is_no_records_found() || e.is_nx_domain() {
        Ok(Vec::new())
    } else if matches!(e, NetError::Timeout) {
        Err(IdentityError::Timeout(format!("DNS lookup of {name}")))
    } else {
        Err(IdentityError::Dns(format!("{name}: {e}")))
    }
}

impl DnsResolver for HickoryDns {
    fn lookup_txt<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, IdentityError>> {
        Box::pin(async move {
            let lookup = tokio::time::timeout(self.timeout, self.resolver.txt_lookup(fqdn(name)))
                .await
                .map_err(|_| IdentityError::Timeout(format!("DNS lookup of {name}")))?;
            let lookup = match lookup {
                Ok(lookup) => lookup,
                Err(e) => return empty_or_error(name, e),
            };
            Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|chunk| String::from_utf8_lossy(chunk))
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect())
        })
    }

    fn lookup_ip<'a>(
        &'a self,
        host: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SocketAddr>, IdentityError>> {
        Box::pin(async move {
            let lookup = tokio::time::timeout(self.timeout, self.resolver.lookup_ip(fqdn(host)))
                .await
                .map_err(|_| IdentityError::Timeout(format!("DNS lookup of {host}")))?;
            match lookup {
                Ok(lookup) => Ok(lookup.iter().map(|ip| SocketAddr::new(ip, 0)).collect()),
                Err(e) => empty_or_error(host, e),
            }
        })
    }
}

/// Fixed answers, for tests: names it was not told about have no records.
/// Never touches the network.
///
/// ```
/// use pds_identity::StaticDns;
/// let dns = StaticDns::new()
///     .with_txt("_atproto.alice.test", ["did=did:plc:ewvi7nxzyoun6zhxrhs64oiz"])
///     .with_addr("alice.test", "127.0.0.1:8080".parse().unwrap());
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticDns {
    txt: HashMap<String, Vec<String>>,
    addrs: HashMap<String, Vec<SocketAddr>>,
}

impl StaticDns {
    /// No records at all.
    pub fn new() -> StaticDns {
        StaticDns::default()
    }

    /// Adds TXT records at `name` (case-insensitive, no trailing dot).
    pub fn with_txt<I, S>(mut self, name: &str, records: I) -> StaticDns
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.txt
            .entry(name.to_ascii_lowercase())
            .or_default()
            .extend(records.into_iter().map(Into::into));
        self
    }

    /// Adds an address for `host` (port 0 for "the URL's port").
    pub fn with_addr(mut self, host: &str, addr: SocketAddr) -> StaticDns {
        self.addrs
            .entry(host.to_ascii_lowercase())
            .or_default()
            .push(addr);
        self
    }
}

impl DnsResolver for StaticDns {
    fn lookup_txt<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, IdentityError>> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        let answer = self.txt.get(&key).cloned().unwrap_or_default();
        Box::pin(async move { Ok(answer) })
    }

    fn lookup_ip<'a>(
        &'a self,
        host: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SocketAddr>, IdentityError>> {
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        let answer = self.addrs.get(&key).cloned().unwrap_or_default();
        Box::pin(async move { Ok(answer) })
    }
}
