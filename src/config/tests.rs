use std::collections::HashMap;

use super::*;

/// An environment made of the given pairs only.
fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn load(toml: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_toml_str(toml, &env(pairs))
}

fn error(toml: &str, pairs: &[(&str, &str)]) -> String {
    load(toml, pairs)
        .expect_err("expected a config error")
        .to_string()
}

const HEX_KEY: &str = "9f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d1e3f5a7b9c0d2e4f6a8b0c1d3e5f7a";

#[test]
fn defaults_follow_the_reference() {
    let config = load("", &[]).unwrap();
    assert_eq!(config.server.hostname, "localhost");
    assert_eq!(config.server.port, 2583);
    assert_eq!(config.server.bind.to_string(), "127.0.0.1");
    assert_eq!(config.server.public_url, "http://localhost:2583");
    assert_eq!(config.server.service_did, "did:web:localhost");
    assert!(!config.server.dev_mode);
    assert_eq!(config.storage.data_directory, PathBuf::from("data"));
    assert_eq!(
        config.storage.blobstore_disk_location,
        PathBuf::from("data/blocks")
    );
    assert_eq!(config.identity.plc_url, "https://plc.directory");
    assert_eq!(config.identity.handle_domains, vec![".test"]);
    assert!(config.accounts.invite_required);
    assert!(config.accounts.accepting_repo_imports);
    assert!(config.email.is_none());
    assert!(config.appview.is_none());
    assert!(config.sync.crawlers.is_empty());
    // Ours keeps three days of firehose history (the reference one).
    assert_eq!(config.sync.repo_backfill_limit_ms, 3 * 86_400_000);
    assert_eq!(config.sync.crawl_interval_secs, 20 * 60);
    assert_eq!(config.limits.blob_upload_limit, 5 * 1024 * 1024);
    assert!(!config.limits.rate_limits_enabled);
    assert!(config.secrets.jwt_secret.is_none());
    // Metrics are off unless asked for, and then behind the admin password.
    assert!(!config.metrics.enabled);
    assert!(config.metrics.require_auth);
}

#[test]
fn metrics_settings() {
    let toml = r#"
        [metrics]
        enabled = true
        require_auth = false
    "#;
    let config = load(toml, &[]).unwrap();
    assert_eq!(
        config.metrics,
        MetricsConfig {
            enabled: true,
            require_auth: false
        }
    );
    assert_eq!(config.origin(&settings::METRICS_ENABLED), Origin::File);

    let config = load(toml, &[("PDS_METRICS_REQUIRE_AUTH", "1")]).unwrap();
    assert!(config.metrics.enabled && config.metrics.require_auth);
    assert_eq!(config.origin(&settings::METRICS_REQUIRE_AUTH), Origin::Env);
    let config = load("", &[("PDS_METRICS_ENABLED", "true")]).unwrap();
    assert!(config.metrics.enabled && config.metrics.require_auth);

    assert_eq!(
        error("", &[("PDS_METRICS_ENABLED", "on")]),
        r#"PDS_METRICS_ENABLED: "on" is not a boolean (true, false, 1 or 0)"#
    );
    assert!(
        error("[metrics]\nenabeld = true\n", &[]).contains("unknown setting `metrics.enabeld`"),
        "a misspelt key is refused"
    );
}

#[test]
fn a_public_hostname_means_https_and_its_own_handle_domain() {
    let config = load("", &[("PDS_HOSTNAME", "pds.example.com")]).unwrap();
    assert_eq!(config.server.public_url, "https://pds.example.com");
    assert_eq!(config.server.service_did, "did:web:pds.example.com");
    assert_eq!(config.identity.handle_domains, vec![".pds.example.com"]);
}

#[test]
fn reads_every_section_of_the_file() {
    let toml = r#"
        [server]
        hostname = "pds.example.com"
        port = 3000
        bind = "0.0.0.0"
        service_did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
        dev_mode = true
        privacy_policy_url = "https://example.com/privacy"
        contact_email = "admin@example.com"

        [storage]
        data_directory = "/var/pds"

        [identity]
        plc_url = "http://127.0.0.1:2582"
        handle_domains = [".example.com", ".example.net"]

        [accounts]
        invite_required = false

        [email]
        smtp_url = "smtps://user:pass@smtp.example.com:465"
        from_address = "pds@example.com"

        [appview]
        url = "https://api.bsky.app"
        did = "did:web:api.bsky.app"

        [sync]
        crawlers = ["https://bsky.network"]

        [limits]
        blob_upload_limit = 104857600
        rate_limits_enabled = true

        [secrets]
        jwt_secret = "from-file"
    "#;
    let config = load(toml, &[]).unwrap();
    assert_eq!(config.server.port, 3000);
    assert_eq!(config.server.bind.to_string(), "0.0.0.0");
    assert_eq!(
        config.server.service_did,
        "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
    );
    assert!(config.server.dev_mode);
    assert_eq!(
        config.server.contact_email.as_deref(),
        Some("admin@example.com")
    );
    assert_eq!(
        config.storage.blobstore_disk_location,
        PathBuf::from("/var/pds/blocks")
    );
    assert_eq!(
        config.identity.handle_domains,
        vec![".example.com", ".example.net"]
    );
    assert!(!config.accounts.invite_required);
    assert_eq!(
        config.email.as_ref().unwrap().from_address,
        "pds@example.com"
    );
    assert_eq!(config.appview.as_ref().unwrap().did, "did:web:api.bsky.app");
    assert_eq!(config.sync.crawlers, vec!["https://bsky.network"]);
    assert_eq!(config.limits.blob_upload_limit, 104_857_600);
    assert!(config.limits.rate_limits_enabled);
    assert_eq!(config.secrets.jwt_secret.as_deref(), Some("from-file"));
    assert_eq!(config.origin(&settings::PORT), Origin::File);
    assert_eq!(config.origin(&settings::JWT_SECRET), Origin::File);
    assert_eq!(config.origin(&settings::BIND), Origin::File);
    assert_eq!(config.origin(&settings::CRAWLERS), Origin::File);
    assert_eq!(config.origin(&settings::RATE_LIMITS_ENABLED), Origin::File);
    assert_eq!(
        config.origin(&settings::REPORT_SERVICE_URL),
        Origin::Default
    );
}

#[test]
fn environment_overrides_the_file() {
    let toml = "[server]\nport = 3000\nhostname = \"pds.example.com\"\n[accounts]\ninvite_required = true\n";
    let config = load(
        toml,
        &[
            ("PDS_PORT", "4000"),
            ("PDS_INVITE_REQUIRED", "false"),
            ("PDS_SERVICE_HANDLE_DOMAINS", ".a.example, .b.example"),
            ("PDS_CRAWLERS", "https://one.example,https://two.example"),
            ("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", HEX_KEY),
        ],
    )
    .unwrap();
    assert_eq!(config.server.port, 4000);
    assert_eq!(config.origin(&settings::PORT), Origin::Env);
    assert_eq!(config.server.hostname, "pds.example.com");
    assert_eq!(config.origin(&settings::HOSTNAME), Origin::File);
    assert!(!config.accounts.invite_required);
    assert_eq!(
        config.identity.handle_domains,
        vec![".a.example", ".b.example"]
    );
    assert_eq!(config.sync.crawlers.len(), 2);
    assert!(config.secrets.plc_rotation_key.is_some());
}

#[test]
fn empty_environment_values_count_as_unset() {
    let config = load(
        "[server]\nport = 3000\n",
        &[
            ("PDS_PORT", ""),
            ("PDS_EMAIL_SMTP_URL", ""),
            ("PDS_EMAIL_FROM_ADDRESS", ""),
        ],
    )
    .unwrap();
    assert_eq!(config.server.port, 3000);
    assert!(config.email.is_none());
}

#[test]
fn port_zero_is_allowed_and_the_bound_port_fixes_the_public_url() {
    let mut config = load("", &[("PDS_PORT", "0")]).unwrap();
    assert_eq!(config.server.port, 0);
    config.server.set_bound_port(41234);
    assert_eq!(config.server.public_url, "http://localhost:41234");
}

#[test]
fn bad_values_name_the_setting_where_it_was_written() {
    assert_eq!(
        error("", &[("PDS_PORT", "abc")]),
        r#"PDS_PORT: "abc" is not a port number"#
    );
    assert_eq!(
        error("[server]\nport = 70000\n", &[]),
        "pds.toml: server.port: 70000 is not a port number"
    );
    assert_eq!(
        error("", &[("PDS_DEV_MODE", "yes")]),
        r#"PDS_DEV_MODE: "yes" is not a boolean (true, false, 1 or 0)"#
    );
    assert_eq!(
        error("", &[("PDS_BIND", "everywhere")]),
        r#"PDS_BIND: "everywhere" is not an IP address"#
    );
    assert_eq!(
        error("", &[("PDS_BLOB_UPLOAD_LIMIT", "5MB")]),
        r#"PDS_BLOB_UPLOAD_LIMIT: "5MB" is not a number of bytes"#
    );
    assert_eq!(
        error("", &[("PDS_CRAWL_INTERVAL_SECS", "0")]),
        "PDS_CRAWL_INTERVAL_SECS: must be at least one second"
    );
    assert_eq!(
        error("", &[("PDS_REPO_BACKFILL_LIMIT_MS", "-1")]),
        r#"PDS_REPO_BACKFILL_LIMIT_MS: "-1" is not a number of milliseconds"#
    );
}

#[test]
fn urls_dids_hostnames_and_domains_are_checked() {
    assert_eq!(
        error("", &[("PDS_DID_PLC_URL", "plc.directory")]),
        r#"PDS_DID_PLC_URL: "plc.directory" is not an http(s) URL"#
    );
    assert_eq!(
        error("[identity]\nplc_url = \"nope\"\n", &[]),
        r#"pds.toml: identity.plc_url: "nope" is not an http(s) URL"#
    );
    assert!(
        error("", &[("PDS_HOSTNAME", "https://pds.example.com")])
            .starts_with(r#"PDS_HOSTNAME: "https://pds.example.com" is not a hostname"#)
    );
    assert_eq!(
        error("", &[("PDS_SERVICE_DID", "web:example.com")]),
        r#"PDS_SERVICE_DID: "web:example.com" is not a DID"#
    );
    assert!(
        error("", &[("PDS_SERVICE_HANDLE_DOMAINS", "example.com")])
            .starts_with(r#"PDS_SERVICE_HANDLE_DOMAINS: "example.com" is not a handle domain"#)
    );
    assert_eq!(
        error("", &[("PDS_CRAWLERS", "https://bsky.network,bsky.network")]),
        r#"PDS_CRAWLERS: "bsky.network" is not an http(s) URL"#
    );
    assert_eq!(
        error("[sync]\ncrawlers = \"https://bsky.network\"\n", &[]),
        r#"pds.toml: sync.crawlers: "https://bsky.network" is not a list of strings"#
    );
}

#[test]
fn secrets_are_never_echoed() {
    let message = error(
        "",
        &[(
            "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
            "not-hex-at-all",
        )],
    );
    assert!(
        message.starts_with("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: not a k256 private key"),
        "{message}"
    );
    assert!(!message.contains("not-hex-at-all"));
    let message = error("", &[("PDS_EMAIL_SMTP_URL", "mail.example.com:hunter2")]);
    assert_eq!(
        message,
        "PDS_EMAIL_SMTP_URL: the value given is not an smtp:// or smtps:// URL"
    );
}

#[test]
fn settings_that_come_in_pairs_need_both() {
    assert_eq!(
        error("", &[("PDS_EMAIL_SMTP_URL", "smtp://localhost:25")]),
        "PDS_EMAIL_FROM_ADDRESS: must be set because PDS_EMAIL_SMTP_URL is set"
    );
    assert_eq!(
        error("", &[("PDS_BSKY_APP_VIEW_URL", "https://api.bsky.app")]),
        "PDS_BSKY_APP_VIEW_DID: must be set because PDS_BSKY_APP_VIEW_URL is set"
    );
    assert_eq!(
        error(
            "[report_service]\ndid = \"did:plc:ar7c4by46qjdydhdevvrndac\"\n",
            &[]
        ),
        "PDS_REPORT_SERVICE_URL: must be set because pds.toml: report_service.did is set"
    );
}

#[test]
fn proxying_settings() {
    let config = load("", &[]).unwrap();
    assert_eq!(config.proxy, ProxyConfig::default());
    assert_eq!(config.proxy.headers_timeout, Duration::from_secs(10));
    assert_eq!(config.proxy.body_timeout, Duration::from_secs(30));
    assert_eq!(config.proxy.max_response_size, 10 * 1024 * 1024);
    assert!(config.mod_service.is_none() && config.report_service.is_none());

    // A moderation service alone also takes the reports, as in the reference.
    let toml = r#"
        [appview]
        url = "https://api.bsky.app"
        did = "did:web:api.bsky.app"
        cdn_url_pattern = "https://cdn.bsky.app/img/%s/plain/%s/%s@jpeg"

        [mod_service]
        url = "https://mod.bsky.app"
        did = "did:plc:ar7c4by46qjdydhdevvrndac"

        [proxy]
        headers_timeout_ms = 2500
        body_timeout_ms = 4000
        max_response_size = 1048576
    "#;
    let config = load(toml, &[]).unwrap();
    let moderation = config.mod_service.clone().unwrap();
    assert_eq!(moderation.url, "https://mod.bsky.app");
    assert_eq!(config.report_service, Some(moderation));
    assert_eq!(
        config.appview_cdn_url_pattern.as_deref(),
        Some("https://cdn.bsky.app/img/%s/plain/%s/%s@jpeg")
    );
    assert_eq!(config.proxy.headers_timeout, Duration::from_millis(2500));
    assert_eq!(config.proxy.body_timeout, Duration::from_secs(4));
    assert_eq!(config.proxy.max_response_size, 1 << 20);

    // A report service of its own wins; the reference's variable names work.
    let config = load(
        toml,
        &[
            ("PDS_REPORT_SERVICE_URL", "https://reports.example.com"),
            ("PDS_REPORT_SERVICE_DID", "did:web:reports.example.com"),
            ("PDS_PROXY_HEADERS_TIMEOUT", "100"),
        ],
    )
    .unwrap();
    assert_eq!(
        config.report_service.unwrap().url,
        "https://reports.example.com"
    );
    assert_eq!(config.proxy.headers_timeout, Duration::from_millis(100));

    assert_eq!(
        error("", &[("PDS_PROXY_BODY_TIMEOUT", "0")]),
        "PDS_PROXY_BODY_TIMEOUT: must be at least one millisecond"
    );
    assert_eq!(
        error("", &[("PDS_PROXY_HEADERS_TIMEOUT", "soon")]),
        "PDS_PROXY_HEADERS_TIMEOUT: \"soon\" is not a number of milliseconds"
    );
    assert!(
        error(
            "",
            &[(
                "PDS_BSKY_APP_VIEW_CDN_URL_PATTERN",
                "https://cdn.example/%s"
            )]
        )
        .starts_with("PDS_BSKY_APP_VIEW_CDN_URL_PATTERN: ")
    );
    assert_eq!(
        error("", &[("PDS_MOD_SERVICE_URL", "https://mod.bsky.app")]),
        "PDS_MOD_SERVICE_DID: must be set because PDS_MOD_SERVICE_URL is set"
    );
}

#[test]
fn file_problems_are_one_line() {
    assert_eq!(
        error("[server]\nprot = 1\n", &[]),
        "pds.toml: unknown setting `server.prot`"
    );
    assert_eq!(
        error("[nonsense]\nx = 1\n", &[]),
        "pds.toml: unknown setting `nonsense.x`"
    );
    assert_eq!(
        error("hostname = \"x\"\n", &[]),
        "pds.toml: `hostname` must be a [section] of settings"
    );
    let message = error("[server]\nport = \n", &[]);
    assert!(message.starts_with("pds.toml: line 2: "), "{message}");
    assert!(!message.contains('\n'));
}

#[test]
fn a_missing_explicit_config_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let err = Config::load(Some(&path), &env(&[])).unwrap_err();
    assert_eq!(err.subject, path.display().to_string());
    assert!(err.problem.starts_with("cannot read: "), "{err}");
}

#[test]
fn the_shipped_pds_toml_is_valid_and_is_the_dev_setup() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pds.toml");
    let config = Config::load(Some(&path), &env(&[])).unwrap();
    assert_eq!(config.server.hostname, "localhost");
    assert_eq!(config.server.listen_addr().to_string(), "127.0.0.1:2583");
    assert!(config.server.dev_mode);
    assert_eq!(config.storage.data_directory, PathBuf::from("./data"));
    assert_eq!(config.identity.handle_domains, vec![".test"]);
    assert!(
        !config.metrics.enabled,
        "metrics stay off in the shipped file"
    );
}

mod startup {
    use data_encoding::HEXLOWER;

    use super::*;

    fn dev_config(data: &Path, pairs: &[(&str, &str)]) -> Config {
        let mut all = vec![
            ("PDS_DEV_MODE", "true"),
            ("PDS_DATA_DIRECTORY", data.to_str().unwrap()),
        ];
        all.extend_from_slice(pairs);
        load("", &all).unwrap()
    }

    #[test]
    fn outside_dev_mode_secrets_are_required() {
        let config = load("", &[("PDS_JWT_SECRET", "j"), ("PDS_ADMIN_PASSWORD", "a")]).unwrap();
        let err = secrets::resolve(&config).unwrap_err();
        assert_eq!(err.subject, "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX");
        assert!(err.problem.starts_with("must be set"), "{err}");

        let config = load(
            "",
            &[
                ("PDS_JWT_SECRET", "j"),
                ("PDS_ADMIN_PASSWORD", "a"),
                ("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", HEX_KEY),
            ],
        )
        .unwrap();
        let secrets = secrets::resolve(&config).unwrap();
        assert_eq!(secrets.jwt_secret, "j");
        assert_eq!(
            HEXLOWER.encode(&secrets.plc_rotation_key.private_bytes()),
            HEX_KEY
        );
    }

    #[test]
    fn dev_mode_generates_secrets_once_and_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let config = dev_config(dir.path(), &[]);
        data_dir::prepare(&config).unwrap();
        let first = secrets::resolve(&config).unwrap();
        let file = dir.path().join(secrets::SECRETS_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = secrets::resolve(&config).unwrap();
        assert_eq!(first.jwt_secret, second.jwt_secret);
        assert_eq!(first.admin_password, second.admin_password);
        assert_eq!(
            first.plc_rotation_key.private_bytes(),
            second.plc_rotation_key.private_bytes()
        );
        assert_eq!(first.jwt_secret.len(), 64);
    }

    #[test]
    fn configured_secrets_win_over_generated_ones() {
        let dir = tempfile::tempdir().unwrap();
        let generated = secrets::resolve(&dev_config(dir.path(), &[])).unwrap();
        let config = dev_config(dir.path(), &[("PDS_JWT_SECRET", "mine")]);
        let secrets = secrets::resolve(&config).unwrap();
        assert_eq!(secrets.jwt_secret, "mine");
        assert_eq!(secrets.admin_password, generated.admin_password);
    }

    #[test]
    fn a_corrupt_secrets_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(secrets::SECRETS_FILE);
        std::fs::write(&file, "plc_rotation_key_k256_hex = \"zz\"\n").unwrap();
        let err = secrets::resolve(&dev_config(dir.path(), &[])).unwrap_err();
        assert_eq!(err.subject, file.display().to_string());
        assert!(err.problem.contains("plc_rotation_key_k256_hex"), "{err}");
    }

    #[test]
    fn an_unusable_data_directory_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        // A path below a regular file cannot be created, even by root.
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let config = dev_config(&file.join("data"), &[]);
        let err = data_dir::prepare(&config).unwrap_err();
        assert_eq!(err.subject, "PDS_DATA_DIRECTORY");
        assert!(err.problem.starts_with("cannot create directory "), "{err}");

        let config = load(
            &format!(
                "[storage]\ndata_directory = {:?}\n",
                file.join("data").to_str().unwrap()
            ),
            &[],
        )
        .unwrap();
        let err = data_dir::prepare(&config).unwrap_err();
        assert_eq!(err.subject, "pds.toml: storage.data_directory");
    }
}
