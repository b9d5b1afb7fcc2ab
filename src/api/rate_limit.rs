//! Rate limits on logging in and signing up (when `PDS_RATE_LIMITS_ENABLED` is on): guessing
//! passwords and mass sign-ups are what a public server must slow down.
//!
//! Token buckets: each key may spend up to `burst` requests at once and regains them at `burst`
//! per `window`. `createSession` is limited per client IP and per login identifier (so spreading
//! guesses over many IPs does not help against one account); `createAccount` per client IP.
//! The values follow the reference PDS's (30 logins per 5 minutes and 300 per day; 100 sign-ups
//! per 5 minutes). A refusal is 429 `RateLimitExceeded` with `Retry-After`.
//!
//! The limiter lives in the application state so that the OAuth sign-in pages, which take
//! passwords too, spend from the same login buckets.
//!
//! The client IP is the connection's peer, or, when the peer is a loopback address (a reverse
//! proxy on the same machine, the documented setup), the last address of `X-Forwarded-For`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Extensions, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

const CREATE_SESSION: &str = "/xrpc/com.atproto.server.createSession";
const CREATE_ACCOUNT: &str = "/xrpc/com.atproto.server.createAccount";
/// Login bodies are tiny; anything bigger is not a login we need to read for its identifier.
const MAX_LOGIN_BODY: usize = 64 * 1024;

/// One limit: `burst` requests per `window`.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub burst: u32,
    pub window: Duration,
}

const FIVE_MINUTES: Duration = Duration::from_secs(5 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const LOGIN_RULES: [Rule; 2] = [
    Rule {
        burst: 30,
        window: FIVE_MINUTES,
    },
    Rule {
        burst: 300,
        window: DAY,
    },
];
const SIGNUP_RULES: [Rule; 1] = [Rule {
    burst: 100,
    window: FIVE_MINUTES,
}];

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Buckets by (rule, key). Shared by all requests; cheap to clone.
#[derive(Clone, Default)]
pub struct RateLimiter {
    enabled: bool,
    buckets: Arc<Mutex<HashMap<(usize, String), Bucket>>>,
}

/// Keys tracked before idle buckets are swept.
const SWEEP_AT: usize = 100_000;

impl RateLimiter {
    /// A limiter; a disabled one lets everything through.
    pub fn new(enabled: bool) -> Self {
        RateLimiter {
            enabled,
            buckets: Arc::default(),
        }
    }

    /// Takes one request for `key` under every rule; on refusal, how long until one is free.
    fn take(
        &self,
        rules: &[Rule],
        rule_base: usize,
        key: &str,
        now: Instant,
    ) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().expect("rate limit lock");
        if buckets.len() > SWEEP_AT {
            // A bucket idle for a whole day is full again: forget it.
            buckets.retain(|_, b| now.duration_since(b.updated) < DAY);
        }
        // Check every rule before spending from any, so a refusal costs nothing.
        let mut wait = Duration::ZERO;
        let mut refilled = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            let rate = f64::from(rule.burst) / rule.window.as_secs_f64();
            let bucket = buckets
                .get(&(rule_base + i, key.to_owned()))
                .copied()
                .unwrap_or(Bucket {
                    tokens: f64::from(rule.burst),
                    updated: now,
                });
            let tokens = (bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * rate)
                .min(f64::from(rule.burst));
            if tokens < 1.0 {
                wait = wait.max(Duration::from_secs_f64((1.0 - tokens) / rate));
            }
            refilled.push(tokens);
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        for (i, tokens) in refilled.into_iter().enumerate() {
            buckets.insert(
                (rule_base + i, key.to_owned()),
                Bucket {
                    tokens: tokens - 1.0,
                    updated: now,
                },
            );
        }
        Ok(())
    }

    /// Takes one login attempt by the client `ip` (a [`client_key`]) for `identifier` (the
    /// handle, e-mail or DID typed in, when known); on refusal, how long until one is free.
    /// `createSession` and the OAuth sign-in pages count against the same buckets.
    pub fn take_login(&self, ip: &str, identifier: Option<&str>) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        let now = Instant::now();
        self.take(&LOGIN_RULES, 0, ip, now)?;
        match identifier.map(|i| i.trim().to_lowercase()) {
            Some(identifier) if !identifier.is_empty() => {
                self.take(&LOGIN_RULES, 2, &format!("id:{identifier}"), now)
            }
            _ => Ok(()),
        }
    }
}

/// The key a request's client is counted under (see [`client_key`]).
pub fn client_of(extensions: &Extensions, headers: &HeaderMap) -> String {
    client_ip(extensions, headers)
        .map(client_key)
        .unwrap_or_default()
}

fn client_ip(extensions: &Extensions, headers: &HeaderMap) -> Option<IpAddr> {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    if peer.is_loopback()
        && let Some(forwarded) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok())
        && let Some(last) = forwarded.rsplit(',').next()
        && let Ok(ip) = last.trim().parse()
    {
        return Some(ip);
    }
    Some(peer)
}

/// The key a client's requests are counted under: its IPv4 address, or its IPv6 /64 (one
/// subscriber is routinely given a whole /64, so single addresses would be free to rotate).
fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

fn refuse(wait: Duration) -> Response {
    let mut response = ApiError::rate_limit_exceeded("Rate Limit Exceeded").into_response();
    let secs = wait.as_secs().max(1).to_string();
    if let Ok(value) = HeaderValue::from_str(&secs) {
        response.headers_mut().insert("retry-after", value);
    }
    response
}

/// The middleware: a no-op for every other route.
pub async fn limit(State(limiter): State<RateLimiter>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let is_login = path == CREATE_SESSION;
    if !limiter.enabled || (!is_login && path != CREATE_ACCOUNT) {
        return next.run(req).await;
    }
    let ip = client_of(req.extensions(), req.headers());
    if !is_login {
        if let Err(wait) = limiter.take(&SIGNUP_RULES, 10, &ip, Instant::now()) {
            return refuse(wait);
        }
        return next.run(req).await;
    }
    // Read the identifier out of the body, then hand the same bytes on.
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_LOGIN_BODY).await else {
        return ApiError::invalid_request("Login request body too large").into_response();
    };
    let identifier = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("identifier")?.as_str().map(str::to_owned));
    if let Err(wait) = limiter.take_login(&ip, identifier.as_deref()) {
        return refuse(wait);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:fffe".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7");
        assert_eq!(client_key("192.0.2.7".parse().unwrap()), "192.0.2.7");
    }

    #[test]
    fn buckets_allow_the_burst_then_refill() {
        let limiter = RateLimiter::default();
        let rules = [Rule {
            burst: 3,
            window: Duration::from_secs(30),
        }];
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take(&rules, 0, "k", t0).is_ok());
        }
        let wait = limiter.take(&rules, 0, "k", t0).unwrap_err();
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        // Another key is unaffected; after the wait, one more is allowed.
        assert!(limiter.take(&rules, 0, "other", t0).is_ok());
        assert!(
            limiter
                .take(&rules, 0, "k", t0 + Duration::from_secs(10))
                .is_ok()
        );
        assert!(
            limiter
                .take(&rules, 0, "k", t0 + Duration::from_secs(10))
                .is_err()
        );
    }

    #[test]
    fn a_refusal_under_one_rule_spends_nothing_under_the_others() {
        let limiter = RateLimiter::default();
        let rules = [
            Rule {
                burst: 5,
                window: Duration::from_secs(60),
            },
            Rule {
                burst: 1,
                window: Duration::from_secs(60),
            },
        ];
        let t0 = Instant::now();
        assert!(limiter.take(&rules, 0, "k", t0).is_ok());
        for _ in 0..10 {
            assert!(limiter.take(&rules, 0, "k", t0).is_err());
        }
        // The first rule still has 4 left: only the second one refused.
        let first_only = [rules[0]];
        for _ in 0..4 {
            assert!(limiter.take(&first_only, 0, "k", t0).is_ok());
        }
    }
}
