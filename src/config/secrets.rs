//! The server's secrets, and their generation in dev mode.
//!
//! Outside dev mode every secret must be configured, as in the reference. In
//! dev mode a missing secret is generated once and stored in
//! `<data_directory>/secrets.toml` (mode 0600), so restarts keep the same JWT
//! secret (sessions survive) and the same PLC rotation key (DIDs created
//! against a dev PLC directory stay controllable).

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use data_encoding::HEXLOWER;
use pds_crypto::{Algorithm, Keypair};

use super::{Config, ConfigError, settings};

/// The file, inside the data directory, that holds dev-mode generated secrets.
pub const SECRETS_FILE: &str = "secrets.toml";

/// All secrets, present.
#[derive(Clone)]
pub struct Secrets {
    /// Signs session tokens (HS256).
    pub jwt_secret: String,
    /// Password of the `admin` user for `com.atproto.admin.*` (HTTP Basic auth).
    pub admin_password: String,
    /// The server's did:plc rotation key, listed in every account it creates.
    pub plc_rotation_key: Keypair,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("plc_rotation_key", &self.plc_rotation_key)
            .finish_non_exhaustive()
    }
}

/// Completes the configured secrets: required outside dev mode, generated and
/// persisted in dev mode. Call after [`super::data_dir::prepare`].
pub fn resolve(config: &Config) -> Result<Secrets, ConfigError> {
    let configured = config.secrets.clone();
    if !config.server.dev_mode {
        let required = |setting: &settings::Setting| {
            ConfigError::new(
                &config.setting_name(setting),
                format!(
                    "must be set (or secrets.{} in pds.toml); only dev mode ({}=true) generates secrets",
                    setting.key,
                    settings::DEV_MODE.env
                ),
            )
        };
        return Ok(Secrets {
            jwt_secret: configured
                .jwt_secret
                .ok_or_else(|| required(&settings::JWT_SECRET))?,
            admin_password: configured
                .admin_password
                .ok_or_else(|| required(&settings::ADMIN_PASSWORD))?,
            plc_rotation_key: configured
                .plc_rotation_key
                .ok_or_else(|| required(&settings::PLC_ROTATION_KEY))?,
        });
    }

    let path = config.storage.data_directory.join(SECRETS_FILE);
    let mut stored = StoredSecrets::read(&path)?;
    let before = stored.clone();
    let jwt_secret = match configured.jwt_secret {
        Some(secret) => secret,
        None => take_or_generate(&mut stored.jwt_secret, || random_hex(32), &path)?,
    };
    let admin_password = match configured.admin_password {
        Some(password) => password,
        None => take_or_generate(&mut stored.admin_password, || random_hex(16), &path)?,
    };
    let plc_rotation_key = match configured.plc_rotation_key {
        Some(key) => key,
        None => {
            let generate =
                || Ok(HEXLOWER.encode(&Keypair::generate(Algorithm::K256).private_bytes()));
            let hex = take_or_generate(&mut stored.plc_rotation_key_k256_hex, generate, &path)?;
            Keypair::from_private_hex(Algorithm::K256, &hex).map_err(|e| {
                ConfigError::new(
                    &path.display().to_string(),
                    format!("plc_rotation_key_k256_hex: {e}; delete the file to generate new dev secrets"),
                )
            })?
        }
    };
    if stored != before {
        stored.write(&path)?;
        tracing::info!(path = %path.display(), "dev mode: generated missing secrets and stored them");
    }
    Ok(Secrets {
        jwt_secret,
        admin_password,
        plc_rotation_key,
    })
}

fn take_or_generate(
    slot: &mut Option<String>,
    generate: impl FnOnce() -> Result<String, getrandom::Error>,
    path: &Path,
) -> Result<String, ConfigError> {
    if let Some(value) = slot {
        return Ok(value.clone());
    }
    let value = generate().map_err(|e| {
        ConfigError::new(
            &path.display().to_string(),
            format!("cannot generate a secret: {e}"),
        )
    })?;
    *slot = Some(value.clone());
    Ok(value)
}

fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    Ok(HEXLOWER.encode(&buf))
}

/// The contents of `secrets.toml`. Keys match the `[secrets]` keys of `pds.toml`.
#[derive(Clone, Default, PartialEq, Eq)]
struct StoredSecrets {
    jwt_secret: Option<String>,
    admin_password: Option<String>,
    plc_rotation_key_k256_hex: Option<String>,
}

impl StoredSecrets {
    fn read(path: &Path) -> Result<StoredSecrets, ConfigError> {
        let fail = |problem: String| ConfigError::new(&path.display().to_string(), problem);
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(StoredSecrets::default());
            }
            Err(e) => return Err(fail(format!("cannot read: {e}"))),
        };
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| fail(e.message().to_string()))?;
        let get = |key: &str| -> Result<Option<String>, ConfigError> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(_) => Err(fail(format!("{key} must be a non-empty string"))),
            }
        };
        Ok(StoredSecrets {
            jwt_secret: get(settings::JWT_SECRET.key)?,
            admin_password: get(settings::ADMIN_PASSWORD.key)?,
            plc_rotation_key_k256_hex: get(settings::PLC_ROTATION_KEY.key)?,
        })
    }

    /// Writes the file readable by its owner only, atomically (temp file, then rename).
    fn write(&self, path: &Path) -> Result<(), ConfigError> {
        let fail = |e: std::io::Error| {
            ConfigError::new(&path.display().to_string(), format!("cannot write: {e}"))
        };
        let mut table = toml::Table::new();
        let entries = [
            (settings::JWT_SECRET.key, &self.jwt_secret),
            (settings::ADMIN_PASSWORD.key, &self.admin_password),
            (
                settings::PLC_ROTATION_KEY.key,
                &self.plc_rotation_key_k256_hex,
            ),
        ];
        for (key, value) in entries {
            if let Some(value) = value {
                table.insert(key.to_string(), toml::Value::String(value.clone()));
            }
        }
        let body = toml::to_string(&table).map_err(|e| fail(std::io::Error::other(e)))?;
        let text = format!(
            "# Secrets generated by `pds serve` in dev mode. Keep this file private.\n\
             # Any of these set in the environment or in pds.toml takes precedence.\n\
             # Deleting it makes new ones: existing sessions and dev DIDs then stop working.\n{body}"
        );
        let tmp: PathBuf = path.with_extension("toml.tmp");
        // A leftover from an interrupted write could have other permissions.
        let _ = fs::remove_file(&tmp);
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(fail)?;
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        fs::rename(&tmp, path).map_err(fail)
    }
}
