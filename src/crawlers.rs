//! Telling relays about this server: `com.atproto.sync.requestCrawl` to each of `PDS_CRAWLERS`.
//!
//! A relay subscribes to a PDS's firehose only after it has been asked to, and a relay that lost
//! track of this server (it restarted, dropped the connection, or refused it for a while) does
//! not come back by itself: the most common reason a self-hosted account silently disappears
//! from the network. So the server keeps asking, with no operator involved:
//! - once as it starts;
//! - after new firehose events, at most once per interval (`PDS_CRAWL_INTERVAL_SECS`, twenty
//!   minutes by default, as the reference);
//! - and every interval while no firehose subscriber has been connected for a whole interval,
//!   whether or not anything was written. While a relay is connected, it is not asked again.
//!
//! A failed request is logged and retried at the next interval.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pds_event_stream::Hub;
use pds_identity::{AddressPolicy, HttpConfig, SafeHttpClient};

/// The relays to ask and the state that decides when. Cheap to clone.
#[derive(Clone)]
pub struct Crawlers {
    inner: Arc<Inner>,
}

struct Inner {
    /// `<crawler>/xrpc/com.atproto.sync.requestCrawl` for each configured crawler.
    endpoints: Vec<String>,
    /// `{"hostname": "<this server's hostname>"}`.
    body: Vec<u8>,
    http: SafeHttpClient,
    interval: Duration,
    subscribers: Mutex<Subscribers>,
}

#[derive(Default)]
struct Subscribers {
    connected: usize,
    /// When the last one disconnected (or `None`: none ever connected, or one is connected).
    last_left: Option<Instant>,
}

impl Inner {
    /// The subscriber count survives a panic elsewhere while it was held (it is one number and
    /// a time); a poisoned lock must not panic again, least of all in `SubscriberGuard::drop`.
    fn subscribers(&self) -> std::sync::MutexGuard<'_, Subscribers> {
        self.subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Crawlers {
    /// The crawlers of the configuration. The relay URLs come from the operator, so any address
    /// is allowed (a relay may run on the operator's own network).
    pub fn new(
        crawlers: &[String],
        hostname: &str,
        interval: Duration,
        dns: Arc<dyn pds_identity::DnsResolver>,
    ) -> Result<Crawlers, pds_identity::IdentityError> {
        let http = SafeHttpClient::new(
            HttpConfig {
                policy: AddressPolicy::Any,
                ..HttpConfig::default()
            },
            dns,
        )?;
        let endpoints = crawlers
            .iter()
            .map(|url| {
                format!(
                    "{}/xrpc/com.atproto.sync.requestCrawl",
                    url.trim_end_matches('/')
                )
            })
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({ "hostname": hostname }))
            .expect("a JSON object serializes");
        Ok(Crawlers {
            inner: Arc::new(Inner {
                endpoints,
                body,
                http,
                interval,
                subscribers: Mutex::default(),
            }),
        })
    }

    /// Asks every crawler now, then keeps asking as the module doc says, until the runtime
    /// stops; `firehose` tells when there are new events. Does nothing without crawlers.
    pub fn spawn(&self, firehose: Hub) {
        if self.inner.endpoints.is_empty() {
            return;
        }
        let crawlers = self.clone();
        tokio::spawn(async move { crawlers.run(firehose).await });
    }

    /// A firehose subscriber connected; it counts as connected until the guard is dropped.
    pub fn subscriber_connected(&self) -> SubscriberGuard {
        let mut subscribers = self.inner.subscribers();
        subscribers.connected += 1;
        subscribers.last_left = None;
        SubscriberGuard {
            crawlers: self.clone(),
        }
    }

    async fn run(&self, firehose: Hub) {
        let interval = self.inner.interval;
        let mut announced = firehose.latest_seq();
        // Checked often enough that a request is at most a quarter interval late.
        let mut tick = tokio::time::interval((interval / 4).max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_request: Option<Instant> = None;
        loop {
            tick.tick().await;
            let now = Instant::now();
            let due = last_request.is_none_or(|at| now.duration_since(at) >= interval);
            if !due {
                continue;
            }
            let latest = firehose.latest_seq();
            let updated = latest > announced;
            let first = last_request.is_none();
            if first || updated || self.nobody_listening_for(interval, now) {
                last_request = Some(now);
                announced = latest;
                self.request_crawl().await;
            }
        }
    }

    /// No subscriber is connected, and none has been for at least `interval`.
    fn nobody_listening_for(&self, interval: Duration, now: Instant) -> bool {
        let subscribers = self.inner.subscribers();
        subscribers.connected == 0
            && subscribers
                .last_left
                .is_none_or(|left| now.duration_since(left) >= interval)
    }

    async fn request_crawl(&self) {
        for endpoint in &self.inner.endpoints {
            match self
                .inner
                .http
                .post_json(endpoint, self.inner.body.clone())
                .await
            {
                Ok(()) => tracing::info!(%endpoint, "asked a relay to crawl this server"),
                Err(e) => {
                    tracing::warn!(%endpoint, error = %e, "a relay's requestCrawl failed; retrying later")
                }
            }
        }
    }
}

/// Held by a firehose connection for as long as it lasts.
pub struct SubscriberGuard {
    crawlers: Crawlers,
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        let mut subscribers = self.crawlers.inner.subscribers();
        subscribers.connected = subscribers.connected.saturating_sub(1);
        if subscribers.connected == 0 {
            subscribers.last_left = Some(Instant::now());
        }
    }
}
