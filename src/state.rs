//! What every request handler can reach: the configuration and the secrets, the database, and
//! (as they land) the other services.

use std::sync::Arc;

use pds_storage::{Database, DatabaseOptions, StorageError};
use pds_syntax::TidClock;

use crate::config::{Config, Secrets};

/// Shared application state. Cheap to clone: handlers get it through axum's `State` extractor.
pub type AppState = Arc<AppContext>;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "pds.sqlite";
/// The embedded did:plc directory's database file inside the data directory.
pub const PLC_DATABASE_FILE: &str = "plc.sqlite";

pub struct AppContext {
    pub config: Config,
    pub secrets: Secrets,
    /// Repos, accounts and (later) the event log, in one SQLite database.
    pub db: Database,
    /// Issues every repo `rev` and record key; never goes backwards.
    pub clock: Arc<TidClock>,
    /// Resolves DIDs and handles (cached): what the outside world says about an identity.
    pub id_resolver: pds_identity::IdentityResolver,
    /// The did:plc directory this process serves, when `identity.embedded_plc` is on.
    pub embedded_plc: Option<pds_plc::store::Store>,
    /// Account signing keys, decoded once for the commits of record writes.
    pub signing_keys: crate::records::SigningKeys,
    /// Blob storage and bookkeeping; its collector of unreferenced blobs runs in the background.
    pub blobs: crate::blobs::Blobs,
    /// Outgoing mail (confirmation and reset codes): SMTP, the log in dev mode, or none.
    pub mailer: crate::mailer::Mailer,
    /// The relays asked to crawl this server (`PDS_CRAWLERS`).
    pub crawlers: crate::crawlers::Crawlers,
    /// The event stream relays subscribe to.
    pub firehose: crate::firehose::Firehose,
    /// Forwarding to the AppView and other services (service proxying).
    pub proxy: crate::proxy::Proxy,
    /// What the server did (records, commits, blob uploads), for `/metrics`.
    pub metrics: crate::metrics::Counters,
    /// The OAuth authorization server: nonces, used proofs, known clients, token keys.
    pub oauth: crate::oauth::OAuth,
    /// Login and sign-up rate limits (`createSession`, `createAccount`, the OAuth sign-in
    /// pages), when `PDS_RATE_LIMITS_ENABLED` is on.
    pub rate_limiter: crate::api::rate_limit::RateLimiter,
}

impl std::fmt::Debug for AppContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppContext")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppContext {
    /// Opens the database (creating and migrating it) and builds the state.
    pub async fn open(config: Config, secrets: Secrets) -> Result<AppState, StorageError> {
        let path = config.storage.data_directory.join(DATABASE_FILE);
        let options = DatabaseOptions {
            durability: config.storage.durability,
            ..Default::default()
        };
        let db = Database::open(&path, options)?;
        db.write(|w| {
            crate::accounts::schema::migrate(w.tx.connection())?;
            crate::preferences::migrate(w.tx.connection())?;
            crate::moderation::migrate(w.tx.connection())?;
            crate::oauth::store::migrate(w.tx.connection())?;
            Ok::<_, StorageError>(())
        })
        .await?;
        let embedded_plc = match config.identity.embedded_plc {
            true => {
                let path = config.storage.data_directory.join(PLC_DATABASE_FILE);
                let store = pds_plc::store::Store::open(&path)
                    .map_err(|e| StorageError::Corrupt(format!("embedded PLC directory: {e}")))?;
                Some(store)
            }
            false => None,
        };
        spawn_refresh_token_purge(db.clone());
        crate::oauth::spawn_purge(db.clone());
        let oauth = crate::oauth::OAuth::new(&config, secrets.jwt_secret.as_str())?;
        let crawlers = crate::crawlers::Crawlers::new(
            &config.sync.crawlers,
            &crawl_hostname(&config.server.public_url),
            std::time::Duration::from_secs(config.sync.crawl_interval_secs),
            crate::identity_service::dns(&config, pds_identity::DEFAULT_TIMEOUT)?,
        )
        .map_err(|e| StorageError::Corrupt(format!("the crawler client: {e}")))?;
        let firehose = crate::firehose::Firehose::start(&db, &config.sync).await?;
        Ok(Arc::new(AppContext {
            rate_limiter: crate::api::rate_limit::RateLimiter::new(
                config.limits.rate_limits_enabled,
            ),
            firehose,
            crawlers,
            id_resolver: crate::identity_service::resolver(&config)?,
            proxy: crate::proxy::Proxy::new(&config)?,
            blobs: crate::blobs::Blobs::open(&config, db.clone()).await?,
            mailer: crate::mailer::Mailer::open(&config, &db).await?,
            config,
            secrets,
            db,
            clock: Arc::new(TidClock::new()),
            embedded_plc,
            signing_keys: Default::default(),
            metrics: Default::default(),
            oauth,
        }))
    }
}

/// How often expired refresh tokens are deleted (each log-in adds one; they expire after 90
/// days but would otherwise stay in the table forever).
const REFRESH_TOKEN_PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(60 * 60);

fn spawn_refresh_token_purge(db: Database) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(REFRESH_TOKEN_PURGE_EVERY);
        loop {
            every.tick().await;
            let now = crate::auth::now_secs();
            let purged = db
                .write(move |w| {
                    crate::accounts::purge_expired_refresh_tokens(w.tx.connection(), now)
                })
                .await;
            match purged {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "expired refresh tokens deleted"),
                // Closed at shutdown, or a passing error: try again at the next tick.
                Err(e) => tracing::debug!(error = %e, "refresh token purge skipped"),
            }
        }
    });
}

/// The `hostname` given to relays: the public URL's host, with its port if it has one (a local
/// relay must find `localhost:2583`; a public one gets the bare name).
pub fn crawl_hostname(public_url: &str) -> String {
    let rest = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest).to_owned()
}
