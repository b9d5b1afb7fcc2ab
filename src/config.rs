//! The server's configuration: `pds.toml`, overridden by environment variables.
//!
//! Loading happens in three steps, each able to stop start-up with one
//! [`ConfigError`] line that names the setting:
//!
//! 1. [`Config::load`] reads the file and the environment and validates every
//!    value. It does no other I/O, so `pds healthcheck` can use it too.
//! 2. [`data_dir::prepare`] creates the data directory and proves it writable.
//! 3. [`secrets::resolve`] fills in the secrets; in dev mode missing ones are
//!    generated once and kept in the data directory.
//!
//! Every setting has an environment variable (the reference PDS's `pds.env`
//! names) and a `[section] key` in `pds.toml`; [`settings`] lists them.

pub mod data_dir;
pub mod secrets;
pub mod settings;
mod source;
mod values;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pds_crypto::{Algorithm, Keypair};

pub use secrets::Secrets;
use settings as s;
use source::{ConfigFile, Provenance, Sources};
pub use source::{EnvLookup, Origin};

/// The file read when no `--config` is given, if it exists in the current directory.
pub const DEFAULT_CONFIG_FILE: &str = "pds.toml";

/// The reference's default PDS port.
pub const DEFAULT_PORT: u16 = 2583;
/// 5 MiB, the reference's default blob upload limit.
pub const DEFAULT_BLOB_UPLOAD_LIMIT: u64 = 5 * 1024 * 1024;
/// Three days: a relay that was down over a long weekend can still catch up from its cursor
/// (the reference keeps one day).
pub const DEFAULT_REPO_BACKFILL_LIMIT_MS: u64 = 72 * 60 * 60 * 1000;
/// Twenty minutes between crawl requests to a relay, as the reference.
pub const DEFAULT_CRAWL_INTERVAL_SECS: u64 = 20 * 60;
pub const DEFAULT_PLC_URL: &str = "https://plc.directory";
/// How long a forwarded request may wait for the upstream's response headers (as the reference).
pub const DEFAULT_PROXY_HEADERS_TIMEOUT_MS: u64 = 10_000;
/// How long a forwarded response may pause between two pieces of its body (as the reference).
pub const DEFAULT_PROXY_BODY_TIMEOUT_MS: u64 = 30_000;
/// The most of an upstream response read into memory to merge the account's own recent records
/// into it (read-after-write); larger responses are passed on as they are. 10 MiB, as the
/// reference.
pub const DEFAULT_PROXY_MAX_RESPONSE_SIZE: u64 = 10 * 1024 * 1024;

/// A setting that cannot be used, as one line: `<setting>: <problem>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting (environment variable or `file: section.key`) or the file.
    pub subject: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(subject: &str, problem: impl Into<String>) -> ConfigError {
        // One line, always: these are read in terminals and container logs.
        let problem = problem.into().replace(['\n', '\r'], " ");
        ConfigError {
            subject: subject.to_string(),
            problem,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// The validated configuration. Defaults follow the reference PDS.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub identity: IdentityConfig,
    pub accounts: AccountsConfig,
    /// `None` when no SMTP server is configured: mail is then not sent.
    pub email: Option<EmailConfig>,
    /// `None` when no AppView is configured: `app.bsky.*` is then not proxied.
    pub appview: Option<ServiceEndpoint>,
    /// How the AppView's CDN serves an account's images: a pattern with three `%s`, filled with
    /// the kind (`avatar`, `banner`, `feed_thumbnail`, `feed_fullsize`), the DID and the blob
    /// CID. Without it, images this server describes point at its own `sync.getBlob`.
    pub appview_cdn_url_pattern: Option<String>,
    /// Where `tools.ozone.*` is forwarded.
    pub mod_service: Option<ServiceEndpoint>,
    /// Where `com.atproto.moderation.createReport` is forwarded; the moderation service if
    /// only that is configured (as the reference).
    pub report_service: Option<ServiceEndpoint>,
    pub proxy: ProxyConfig,
    pub sync: SyncConfig,
    pub limits: LimitsConfig,
    pub metrics: MetricsConfig,
    /// Secrets as configured; [`secrets::resolve`] turns them into [`Secrets`].
    pub secrets: ConfiguredSecrets,
    provenance: Provenance,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The public host name, e.g. `pds.example.com`; `localhost` for development.
    pub hostname: String,
    pub port: u16,
    /// The address to listen on. 127.0.0.1 unless the server must be reached
    /// from outside the machine (containers use 0.0.0.0).
    pub bind: IpAddr,
    /// `http://localhost:<port>` for `localhost`, else `https://<hostname>`:
    /// a public PDS sits behind a TLS-terminating proxy.
    pub public_url: String,
    /// This server's DID; `did:web:<hostname>` unless set.
    pub service_did: String,
    /// Relaxes production requirements for local development: secrets are
    /// generated, and (as features land) plain-HTTP and loopback upstreams are allowed.
    pub dev_mode: bool,
    pub privacy_policy_url: Option<String>,
    pub terms_of_service_url: Option<String>,
    pub contact_email: Option<String>,
}

impl ServerConfig {
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// Records the port actually bound (it differs when `port` is 0) and, for
    /// `localhost`, the public URL that contains it.
    pub fn set_bound_port(&mut self, port: u16) {
        self.port = port;
        self.public_url = public_url(&self.hostname, port);
    }
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Holds the SQLite databases and, in dev mode, `secrets.toml`.
    pub data_directory: PathBuf,
    /// Where blobs are stored; `<data_directory>/blocks` unless set (and unless they are in
    /// S3-compatible storage, [`StorageConfig::s3`]).
    pub blobstore_disk_location: PathBuf,
    /// Blobs in an S3-compatible bucket instead of on disk (`PDS_BLOBSTORE_S3_BUCKET` set).
    pub s3: Option<S3Config>,
    /// What an acknowledged write survives: a process crash (`normal`, as the reference) or
    /// also power loss (`full`, an fsync per commit group).
    pub durability: pds_storage::Durability,
}

/// An S3-compatible bucket for blobs, as the reference configures it.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    /// The service's URL; AWS's regional endpoint unless set.
    pub endpoint: String,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (most
    /// S3-compatible servers want this).
    pub force_path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// How long one upload of a blob to the bucket may take.
    pub upload_timeout: Duration,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("force_path_style", &self.force_path_style)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<secret>"),
            )
            .finish()
    }
}

/// How long one blob upload to S3 may take unless configured (the reference's default).
pub const DEFAULT_S3_UPLOAD_TIMEOUT_MS: u64 = 20_000;

#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// The did:plc directory to register and resolve DIDs with.
    pub plc_url: String,
    /// Serve a did:plc directory from this process at `/plc` and use it: the offline
    /// development setup, where nothing else runs. `plc_url` then points at it once the port
    /// is known.
    pub embedded_plc: bool,
    /// Handle suffixes offered to new accounts, each starting with a dot.
    pub handle_domains: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct AccountsConfig {
    /// Whether account creation needs an invite code (the reference defaults to yes).
    pub invite_required: bool,
    /// Whether accounts may migrate in by importing a repository.
    pub accepting_repo_imports: bool,
}

#[derive(Clone)]
pub struct EmailConfig {
    /// `smtp://` or `smtps://`, credentials included; never logged.
    pub smtp_url: String,
    pub from_address: String,
}

impl fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailConfig")
            .field("smtp_url", &"<set>")
            .field("from_address", &self.from_address)
            .finish()
    }
}

/// Another atproto service this PDS talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEndpoint {
    pub url: String,
    pub did: String,
}

/// Limits of service proxying (requests forwarded to the AppView and other services).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The longest wait for an upstream's response headers (connecting included).
    pub headers_timeout: Duration,
    /// The longest pause between two pieces of an upstream's response body.
    pub body_timeout: Duration,
    /// The most of a response held in memory for read-after-write, in bytes.
    pub max_response_size: u64,
}

impl Default for ProxyConfig {
    fn default() -> ProxyConfig {
        ProxyConfig {
            headers_timeout: Duration::from_millis(DEFAULT_PROXY_HEADERS_TIMEOUT_MS),
            body_timeout: Duration::from_millis(DEFAULT_PROXY_BODY_TIMEOUT_MS),
            max_response_size: DEFAULT_PROXY_MAX_RESPONSE_SIZE,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Relays asked to crawl this PDS (`com.atproto.sync.requestCrawl`) as it starts.
    pub crawlers: Vec<String>,
    /// How far back a firehose subscriber's cursor may reach, in milliseconds.
    pub repo_backfill_limit_ms: u64,
    /// The least time between two crawl requests to the relays, and how often they are asked
    /// again while no relay is connected.
    pub crawl_interval_secs: u64,
}

#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// The largest blob `com.atproto.repo.uploadBlob` accepts, in bytes.
    pub blob_upload_limit: u64,
    /// The most blob bytes one account may store; `None`: no limit.
    pub account_blob_quota: Option<u64>,
    pub rate_limits_enabled: bool,
}

/// The Prometheus endpoint, `GET /metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Whether `/metrics` is served at all (off: 404).
    pub enabled: bool,
    /// Whether it asks for the admin password (HTTP Basic `admin:<PDS_ADMIN_PASSWORD>`).
    pub require_auth: bool,
}

/// Secrets as found in the environment or file; any may be missing here.
#[derive(Clone, Default)]
pub struct ConfiguredSecrets {
    pub jwt_secret: Option<String>,
    pub admin_password: Option<String>,
    pub plc_rotation_key: Option<Keypair>,
}

impl fmt::Debug for ConfiguredSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Say which are present, never what they are.
        f.debug_struct("ConfiguredSecrets")
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "<set>"))
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<set>"),
            )
            .field("plc_rotation_key", &self.plc_rotation_key)
            .finish()
    }
}

/// `http://localhost:<port>` for local development, otherwise `https://<hostname>`.
fn public_url(hostname: &str, port: u16) -> String {
    if hostname == "localhost" {
        format!("http://localhost:{port}")
    } else {
        format!("https://{hostname}")
    }
}

impl Config {
    /// Loads the configuration.
    ///
    /// `file` is the `--config` path; `None` means `./pds.toml` if it exists,
    /// else built-in defaults. `env` looks up environment variables.
    pub fn load(file: Option<&Path>, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
        let file = read_config_file(file)?;
        Config::from_sources(Sources::new(file, env))
    }

    /// Loads from `pds.toml` text instead of a file (for tests and tools).
    pub fn from_toml_str(text: &str, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
        let file = ConfigFile::parse(Path::new(DEFAULT_CONFIG_FILE), text)?;
        Config::from_sources(Sources::new(Some(file), env))
    }

    /// The name of a setting as the user wrote it, for messages.
    pub fn setting_name(&self, setting: &settings::Setting) -> String {
        self.provenance.name(setting)
    }

    /// Where a setting's value came from.
    pub fn origin(&self, setting: &settings::Setting) -> Origin {
        self.provenance.origin(setting)
    }

    fn from_sources(mut src: Sources<'_>) -> Result<Config, ConfigError> {
        // [server]
        let hostname = src
            .text(
                &s::HOSTNAME,
                "a hostname (a bare name such as pds.example.com: no scheme, port or path)",
                values::is_hostname,
            )?
            .unwrap_or_else(|| "localhost".to_string());
        let port = src.port(&s::PORT)?.unwrap_or(DEFAULT_PORT);
        let bind = src.ip(&s::BIND)?.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let service_did = src
            .did(&s::SERVICE_DID)?
            .unwrap_or_else(|| format!("did:web:{hostname}"));
        let dev_mode = src.boolean(&s::DEV_MODE)?.unwrap_or(false);
        let privacy_policy_url = src.url(&s::PRIVACY_POLICY_URL)?;
        let terms_of_service_url = src.url(&s::TERMS_OF_SERVICE_URL)?;
        let contact_email = src.email_address(&s::CONTACT_EMAIL)?;

        // [storage]
        let data_directory = src
            .text(&s::DATA_DIRECTORY, "a path", |t| !t.is_empty())?
            .map_or_else(|| PathBuf::from("data"), PathBuf::from);
        let blobstore_disk_location = src
            .text(&s::BLOBSTORE_DISK_LOCATION, "a path", |t| !t.is_empty())?
            .map_or_else(|| data_directory.join("blocks"), PathBuf::from);

        let s3 = match src.text(&s::S3_BUCKET, "a bucket name", |t| !t.is_empty())? {
            None => None,
            Some(bucket) => {
                let region = src
                    .text(&s::S3_REGION, "a region name", |t| !t.is_empty())?
                    .unwrap_or_else(|| "us-east-1".to_owned());
                let endpoint = src
                    .text(&s::S3_ENDPOINT, "an http(s) URL", values::is_http_url)?
                    .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
                let upload_timeout = src
                    .uint(&s::S3_UPLOAD_TIMEOUT_MS, "a number of milliseconds")?
                    .unwrap_or(DEFAULT_S3_UPLOAD_TIMEOUT_MS)
                    .max(1);
                Some(S3Config {
                    bucket,
                    endpoint,
                    region,
                    force_path_style: src.boolean(&s::S3_FORCE_PATH_STYLE)?.unwrap_or(false),
                    access_key_id: src.secret(&s::S3_ACCESS_KEY_ID)?,
                    secret_access_key: src.secret(&s::S3_SECRET_ACCESS_KEY)?,
                    upload_timeout: Duration::from_millis(upload_timeout),
                })
            }
        };

        let durability = match src
            .text(&s::SQLITE_SYNCHRONOUS, "normal or full", |t| {
                matches!(t, "normal" | "full")
            })?
            .as_deref()
        {
            Some("full") => pds_storage::Durability::Full,
            _ => pds_storage::Durability::Normal,
        };

        // [identity]
        let embedded_plc = src.boolean(&s::EMBEDDED_PLC)?.unwrap_or(false);
        let plc_url = src
            .url(&s::PLC_URL)?
            .unwrap_or_else(|| DEFAULT_PLC_URL.to_string());
        let handle_domains = src
            .list(
                &s::HANDLE_DOMAINS,
                "a handle domain (a dot, then a hostname, such as .example.com)",
                values::is_handle_domain,
            )?
            .filter(|domains| !domains.is_empty())
            .unwrap_or_else(|| {
                // The reference's development setup hands out `.test` handles on localhost.
                if hostname == "localhost" {
                    vec![".test".to_string()]
                } else {
                    vec![format!(".{hostname}")]
                }
            });

        // [accounts]
        let invite_required = src.boolean(&s::INVITE_REQUIRED)?.unwrap_or(true);
        let accepting_repo_imports = src.boolean(&s::ACCEPTING_REPO_IMPORTS)?.unwrap_or(true);

        // [email]: both or neither.
        let smtp_url = src.text(
            &s::EMAIL_SMTP_URL,
            "an smtp:// or smtps:// URL",
            values::is_smtp_url,
        )?;
        let from_address = src.email_address(&s::EMAIL_FROM_ADDRESS)?;
        let email = match (smtp_url, from_address) {
            (Some(smtp_url), Some(from_address)) => Some(EmailConfig {
                smtp_url,
                from_address,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(missing_partner(
                    &src,
                    &s::EMAIL_FROM_ADDRESS,
                    &s::EMAIL_SMTP_URL,
                ));
            }
            (None, Some(_)) => {
                return Err(missing_partner(
                    &src,
                    &s::EMAIL_SMTP_URL,
                    &s::EMAIL_FROM_ADDRESS,
                ));
            }
        };

        // [appview], [mod_service] and [report_service]: a URL needs the service's DID.
        let appview = service_endpoint(&mut src, &s::APPVIEW_URL, &s::APPVIEW_DID)?;
        let appview_cdn_url_pattern = src.text(
            &s::APPVIEW_CDN_URL_PATTERN,
            "an http(s) URL pattern with three %s (kind, DID, CID)",
            values::is_cdn_url_pattern,
        )?;
        let mod_service = service_endpoint(&mut src, &s::MOD_SERVICE_URL, &s::MOD_SERVICE_DID)?;
        let report_service =
            service_endpoint(&mut src, &s::REPORT_SERVICE_URL, &s::REPORT_SERVICE_DID)?
                .or_else(|| mod_service.clone());

        // [proxy]
        let millis = |src: &mut Sources<'_>, setting: &settings::Setting, default: u64| {
            let ms = src
                .uint(setting, "a number of milliseconds")?
                .unwrap_or(default);
            if ms == 0 {
                return Err(ConfigError::new(
                    &src.name(setting),
                    "must be at least one millisecond",
                ));
            }
            Ok(Duration::from_millis(ms))
        };
        let proxy = ProxyConfig {
            headers_timeout: millis(
                &mut src,
                &s::PROXY_HEADERS_TIMEOUT,
                DEFAULT_PROXY_HEADERS_TIMEOUT_MS,
            )?,
            body_timeout: millis(
                &mut src,
                &s::PROXY_BODY_TIMEOUT,
                DEFAULT_PROXY_BODY_TIMEOUT_MS,
            )?,
            max_response_size: src
                .uint(&s::PROXY_MAX_RESPONSE_SIZE, "a number of bytes")?
                .unwrap_or(DEFAULT_PROXY_MAX_RESPONSE_SIZE),
        };

        // [sync]
        let crawlers = src
            .list(&s::CRAWLERS, "an http(s) URL", values::is_http_url)?
            .unwrap_or_default();
        let repo_backfill_limit_ms = src
            .uint(&s::REPO_BACKFILL_LIMIT_MS, "a number of milliseconds")?
            .unwrap_or(DEFAULT_REPO_BACKFILL_LIMIT_MS);
        let crawl_interval_secs = src
            .uint(&s::CRAWL_INTERVAL_SECS, "a number of seconds")?
            .unwrap_or(DEFAULT_CRAWL_INTERVAL_SECS);
        if crawl_interval_secs == 0 {
            return Err(ConfigError::new(
                s::CRAWL_INTERVAL_SECS.env,
                "must be at least one second",
            ));
        }

        // [limits]
        let blob_upload_limit = src
            .uint(&s::BLOB_UPLOAD_LIMIT, "a number of bytes")?
            .unwrap_or(DEFAULT_BLOB_UPLOAD_LIMIT);
        let account_blob_quota = src.uint(&s::ACCOUNT_BLOB_QUOTA, "a number of bytes")?;
        let rate_limits_enabled = src.boolean(&s::RATE_LIMITS_ENABLED)?.unwrap_or(false);

        // [metrics]
        let metrics = MetricsConfig {
            enabled: src.boolean(&s::METRICS_ENABLED)?.unwrap_or(false),
            require_auth: src.boolean(&s::METRICS_REQUIRE_AUTH)?.unwrap_or(true),
        };

        // [secrets]
        let jwt_secret = src.secret(&s::JWT_SECRET)?;
        let admin_password = src.secret(&s::ADMIN_PASSWORD)?;
        let plc_rotation_key = match src.secret(&s::PLC_ROTATION_KEY)? {
            None => None,
            Some(hex) => Some(
                Keypair::from_private_hex(Algorithm::K256, &hex).map_err(|e| {
                    ConfigError::new(
                        &src.name(&s::PLC_ROTATION_KEY),
                        format!("not a k256 private key as 64 hex characters ({e})"),
                    )
                })?,
            ),
        };

        Ok(Config {
            server: ServerConfig {
                public_url: public_url(&hostname, port),
                hostname,
                port,
                bind,
                service_did,
                dev_mode,
                privacy_policy_url,
                terms_of_service_url,
                contact_email,
            },
            storage: StorageConfig {
                data_directory,
                blobstore_disk_location,
                s3,
                durability,
            },
            identity: IdentityConfig {
                plc_url,
                embedded_plc,
                handle_domains,
            },
            accounts: AccountsConfig {
                invite_required,
                accepting_repo_imports,
            },
            email,
            appview,
            appview_cdn_url_pattern,
            mod_service,
            report_service,
            proxy,
            sync: SyncConfig {
                crawlers,
                repo_backfill_limit_ms,
                crawl_interval_secs,
            },
            limits: LimitsConfig {
                blob_upload_limit,
                account_blob_quota,
                rate_limits_enabled,
            },
            metrics,
            secrets: ConfiguredSecrets {
                jwt_secret,
                admin_password,
                plc_rotation_key,
            },
            provenance: src.into_provenance(),
        })
    }
}

/// Reads the config file: the `--config` path (which must exist), else
/// `./pds.toml` if present, else none.
fn read_config_file(explicit: Option<&Path>) -> Result<Option<ConfigFile>, ConfigError> {
    let path = match explicit {
        Some(path) => path,
        None => {
            let default = Path::new(DEFAULT_CONFIG_FILE);
            if !default.exists() {
                return Ok(None);
            }
            default
        }
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(&path.display().to_string(), format!("cannot read: {e}")))?;
    ConfigFile::parse(path, &text).map(Some)
}

/// Whether `text` is an absolute http(s) URL with a host (as URL settings must be).
pub fn is_http_url(text: &str) -> bool {
    values::is_http_url(text)
}

fn missing_partner(
    src: &Sources<'_>,
    missing: &settings::Setting,
    because: &settings::Setting,
) -> ConfigError {
    ConfigError::new(
        &src.name(missing),
        format!("must be set because {} is set", src.name(because)),
    )
}

fn service_endpoint(
    src: &mut Sources<'_>,
    url: &settings::Setting,
    did: &settings::Setting,
) -> Result<Option<ServiceEndpoint>, ConfigError> {
    let url_value = src.url(url)?;
    let did_value = src.did(did)?;
    match (url_value, did_value) {
        (Some(url), Some(did)) => Ok(Some(ServiceEndpoint { url, did })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(missing_partner(src, did, url)),
        (None, Some(_)) => Err(missing_partner(src, url, did)),
    }
}

#[cfg(test)]
mod tests;
