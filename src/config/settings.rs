//! The list of every setting: its environment variable and its key in `pds.toml`.
//!
//! This table is the single place a setting is named. The loader reads values
//! through it, rejects `pds.toml` keys that are not in it (a typo must not be
//! silently ignored), and error messages name settings with it. The
//! environment variable names are those of the reference PDS's `pds.env`, so an
//! existing `pds.env` works unchanged.

/// One setting, known by two names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The environment variable, e.g. `PDS_PORT`. Overrides the file.
    pub env: &'static str,
    /// The `[section]` in `pds.toml`.
    pub section: &'static str,
    /// The key inside that section.
    pub key: &'static str,
    /// Secrets are never echoed back in error messages.
    pub secret: bool,
}

const fn setting(env: &'static str, section: &'static str, key: &'static str) -> Setting {
    Setting {
        env,
        section,
        key,
        secret: false,
    }
}

const fn secret(env: &'static str, section: &'static str, key: &'static str) -> Setting {
    Setting {
        env,
        section,
        key,
        secret: true,
    }
}

// [server]: who this server is and where it listens.
pub const HOSTNAME: Setting = setting("PDS_HOSTNAME", "server", "hostname");
pub const PORT: Setting = setting("PDS_PORT", "server", "port");
pub const BIND: Setting = setting("PDS_BIND", "server", "bind");
pub const SERVICE_DID: Setting = setting("PDS_SERVICE_DID", "server", "service_did");
pub const DEV_MODE: Setting = setting("PDS_DEV_MODE", "server", "dev_mode");
pub const PRIVACY_POLICY_URL: Setting =
    setting("PDS_PRIVACY_POLICY_URL", "server", "privacy_policy_url");
pub const TERMS_OF_SERVICE_URL: Setting =
    setting("PDS_TERMS_OF_SERVICE_URL", "server", "terms_of_service_url");
pub const CONTACT_EMAIL: Setting = setting("PDS_CONTACT_EMAIL_ADDRESS", "server", "contact_email");

// [storage]: where data lives on disk.
pub const DATA_DIRECTORY: Setting = setting("PDS_DATA_DIRECTORY", "storage", "data_directory");
pub const BLOBSTORE_DISK_LOCATION: Setting = setting(
    "PDS_BLOBSTORE_DISK_LOCATION",
    "storage",
    "blobstore_disk_location",
);

pub const SQLITE_SYNCHRONOUS: Setting =
    setting("PDS_SQLITE_SYNCHRONOUS", "storage", "sqlite_synchronous");

// [blobstore_s3]: blobs in S3-compatible object storage instead of on disk (the reference's names).
pub const S3_BUCKET: Setting = setting("PDS_BLOBSTORE_S3_BUCKET", "blobstore_s3", "bucket");
pub const S3_REGION: Setting = setting("PDS_BLOBSTORE_S3_REGION", "blobstore_s3", "region");
pub const S3_ENDPOINT: Setting = setting("PDS_BLOBSTORE_S3_ENDPOINT", "blobstore_s3", "endpoint");
pub const S3_FORCE_PATH_STYLE: Setting = setting(
    "PDS_BLOBSTORE_S3_FORCE_PATH_STYLE",
    "blobstore_s3",
    "force_path_style",
);
pub const S3_ACCESS_KEY_ID: Setting = secret(
    "PDS_BLOBSTORE_S3_ACCESS_KEY_ID",
    "blobstore_s3",
    "access_key_id",
);
pub const S3_SECRET_ACCESS_KEY: Setting = secret(
    "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY",
    "blobstore_s3",
    "secret_access_key",
);
pub const S3_UPLOAD_TIMEOUT_MS: Setting = setting(
    "PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS",
    "blobstore_s3",
    "upload_timeout_ms",
);

// [identity]: DIDs and handles.
pub const PLC_URL: Setting = setting("PDS_DID_PLC_URL", "identity", "plc_url");
pub const EMBEDDED_PLC: Setting = setting("PDS_EMBEDDED_PLC", "identity", "embedded_plc");
pub const HANDLE_DOMAINS: Setting =
    setting("PDS_SERVICE_HANDLE_DOMAINS", "identity", "handle_domains");

// [accounts]: who may sign up or move in.
pub const INVITE_REQUIRED: Setting = setting("PDS_INVITE_REQUIRED", "accounts", "invite_required");
pub const ACCEPTING_REPO_IMPORTS: Setting = setting(
    "PDS_ACCEPTING_REPO_IMPORTS",
    "accounts",
    "accepting_repo_imports",
);

// [email]: outgoing mail. The SMTP URL usually carries a password.
pub const EMAIL_SMTP_URL: Setting = secret("PDS_EMAIL_SMTP_URL", "email", "smtp_url");
pub const EMAIL_FROM_ADDRESS: Setting = setting("PDS_EMAIL_FROM_ADDRESS", "email", "from_address");

// [appview]: where app.bsky.* requests are proxied.
pub const APPVIEW_URL: Setting = setting("PDS_BSKY_APP_VIEW_URL", "appview", "url");
pub const APPVIEW_DID: Setting = setting("PDS_BSKY_APP_VIEW_DID", "appview", "did");
pub const APPVIEW_CDN_URL_PATTERN: Setting = setting(
    "PDS_BSKY_APP_VIEW_CDN_URL_PATTERN",
    "appview",
    "cdn_url_pattern",
);

// [mod_service]: where tools.ozone.* requests go (and reports, unless [report_service] is set).
pub const MOD_SERVICE_URL: Setting = setting("PDS_MOD_SERVICE_URL", "mod_service", "url");
pub const MOD_SERVICE_DID: Setting = setting("PDS_MOD_SERVICE_DID", "mod_service", "did");

// [report_service]: where moderation reports go.
pub const REPORT_SERVICE_URL: Setting = setting("PDS_REPORT_SERVICE_URL", "report_service", "url");
pub const REPORT_SERVICE_DID: Setting = setting("PDS_REPORT_SERVICE_DID", "report_service", "did");

// [proxy]: requests forwarded to other services (the AppView, moderation, chat, ...).
pub const PROXY_HEADERS_TIMEOUT: Setting =
    setting("PDS_PROXY_HEADERS_TIMEOUT", "proxy", "headers_timeout_ms");
pub const PROXY_BODY_TIMEOUT: Setting =
    setting("PDS_PROXY_BODY_TIMEOUT", "proxy", "body_timeout_ms");
pub const PROXY_MAX_RESPONSE_SIZE: Setting =
    setting("PDS_PROXY_MAX_RESPONSE_SIZE", "proxy", "max_response_size");

// [sync]: the firehose and the relays that read it.
pub const CRAWLERS: Setting = setting("PDS_CRAWLERS", "sync", "crawlers");
pub const REPO_BACKFILL_LIMIT_MS: Setting = setting(
    "PDS_REPO_BACKFILL_LIMIT_MS",
    "sync",
    "repo_backfill_limit_ms",
);
pub const CRAWL_INTERVAL_SECS: Setting =
    setting("PDS_CRAWL_INTERVAL_SECS", "sync", "crawl_interval_secs");

// [limits]
pub const BLOB_UPLOAD_LIMIT: Setting =
    setting("PDS_BLOB_UPLOAD_LIMIT", "limits", "blob_upload_limit");
pub const ACCOUNT_BLOB_QUOTA: Setting =
    setting("PDS_ACCOUNT_BLOB_QUOTA", "limits", "account_blob_quota");
pub const RATE_LIMITS_ENABLED: Setting =
    setting("PDS_RATE_LIMITS_ENABLED", "limits", "rate_limits_enabled");

// [metrics]: the Prometheus endpoint.
pub const METRICS_ENABLED: Setting = setting("PDS_METRICS_ENABLED", "metrics", "enabled");
pub const METRICS_REQUIRE_AUTH: Setting =
    setting("PDS_METRICS_REQUIRE_AUTH", "metrics", "require_auth");

// [secrets]: better given through the environment than written in pds.toml.
pub const JWT_SECRET: Setting = secret("PDS_JWT_SECRET", "secrets", "jwt_secret");
pub const ADMIN_PASSWORD: Setting = secret("PDS_ADMIN_PASSWORD", "secrets", "admin_password");
pub const PLC_ROTATION_KEY: Setting = secret(
    "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
    "secrets",
    "plc_rotation_key_k256_hex",
);

/// Every setting, in the order the README and `pds.toml` document them.
pub const ALL: &[Setting] = &[
    HOSTNAME,
    PORT,
    BIND,
    SERVICE_DID,
    DEV_MODE,
    PRIVACY_POLICY_URL,
    TERMS_OF_SERVICE_URL,
    CONTACT_EMAIL,
    DATA_DIRECTORY,
    BLOBSTORE_DISK_LOCATION,
    S3_BUCKET,
    S3_REGION,
    S3_ENDPOINT,
    S3_FORCE_PATH_STYLE,
    S3_ACCESS_KEY_ID,
    S3_SECRET_ACCESS_KEY,
    S3_UPLOAD_TIMEOUT_MS,
    SQLITE_SYNCHRONOUS,
    PLC_URL,
    EMBEDDED_PLC,
    HANDLE_DOMAINS,
    INVITE_REQUIRED,
    ACCEPTING_REPO_IMPORTS,
    EMAIL_SMTP_URL,
    EMAIL_FROM_ADDRESS,
    APPVIEW_URL,
    APPVIEW_DID,
    APPVIEW_CDN_URL_PATTERN,
    MOD_SERVICE_URL,
    MOD_SERVICE_DID,
    REPORT_SERVICE_URL,
    REPORT_SERVICE_DID,
    PROXY_HEADERS_TIMEOUT,
    PROXY_BODY_TIMEOUT,
    PROXY_MAX_RESPONSE_SIZE,
    CRAWLERS,
    REPO_BACKFILL_LIMIT_MS,
    CRAWL_INTERVAL_SECS,
    BLOB_UPLOAD_LIMIT,
    ACCOUNT_BLOB_QUOTA,
    RATE_LIMITS_ENABLED,
    METRICS_ENABLED,
    METRICS_REQUIRE_AUTH,
    JWT_SECRET,
    ADMIN_PASSWORD,
    PLC_ROTATION_KEY,
];

/// The setting stored under `[section] key` in `pds.toml`, if there is one.
pub fn by_toml_key(section: &str, key: &str) -> Option<&'static Setting> {
    ALL.iter().find(|s| s.section == section && s.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert_ne!(a.env, b.env);
                assert!((a.section, a.key) != (b.section, b.key), "{a:?} / {b:?}");
            }
        }
    }

    #[test]
    fn reference_pds_env_names_are_all_known() {
        // The variables an operator's pds.env from the reference distribution sets.
        for name in [
            "PDS_HOSTNAME",
            "PDS_PORT",
            "PDS_DATA_DIRECTORY",
            "PDS_BLOBSTORE_DISK_LOCATION",
            "PDS_BLOB_UPLOAD_LIMIT",
            "PDS_DID_PLC_URL",
            "PDS_JWT_SECRET",
            "PDS_ADMIN_PASSWORD",
            "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
            "PDS_SERVICE_HANDLE_DOMAINS",
            "PDS_INVITE_REQUIRED",
            "PDS_CRAWLERS",
            "PDS_BSKY_APP_VIEW_URL",
            "PDS_BSKY_APP_VIEW_DID",
            "PDS_REPORT_SERVICE_URL",
            "PDS_REPORT_SERVICE_DID",
            "PDS_EMAIL_SMTP_URL",
            "PDS_EMAIL_FROM_ADDRESS",
            "PDS_DEV_MODE",
            "PDS_SERVICE_DID",
            "PDS_RATE_LIMITS_ENABLED",
            "PDS_ACCEPTING_REPO_IMPORTS",
            "PDS_REPO_BACKFILL_LIMIT_MS",
            "PDS_BSKY_APP_VIEW_CDN_URL_PATTERN",
            "PDS_MOD_SERVICE_URL",
            "PDS_MOD_SERVICE_DID",
            "PDS_PROXY_HEADERS_TIMEOUT",
            "PDS_PROXY_BODY_TIMEOUT",
            "PDS_PROXY_MAX_RESPONSE_SIZE",
        ] {
            assert!(ALL.iter().any(|s| s.env == name), "{name} is not a setting");
        }
    }
}
