//! Reading raw setting values from `pds.toml` and the environment.
//!
//! Precedence: environment, then `pds.toml`, then the built-in default (applied
//! by the caller). Each getter parses the value into its type and, on failure,
//! returns a [`ConfigError`] that names the setting where the user wrote it:
//! the environment variable, or `file: section.key`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ConfigError;
use super::settings::{self, Setting};

/// Looks up one environment variable. Injected so that tests need not touch
/// the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Default,
    File,
    Env,
}

/// The parsed `pds.toml`.
#[derive(Debug)]
pub struct ConfigFile {
    pub path: PathBuf,
    table: toml::Table,
}

impl ConfigFile {
    /// Parses `text` read from `path`, rejecting sections or keys that are not settings.
    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
        let subject = path.display().to_string();
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .and_then(|span| text.get(..span.start))
                .map(|before| before.matches('\n').count() + 1);
            let problem = match line {
                Some(line) => format!("line {line}: {}", e.message()),
                None => e.message().to_string(),
            };
            ConfigError::new(&subject, problem)
        })?;
        for (section, value) in &table {
            let Some(entries) = value.as_table() else {
                return Err(ConfigError::new(
                    &subject,
                    format!("`{section}` must be a [section] of settings"),
                ));
            };
            for key in entries.keys() {
                if settings::by_toml_key(section, key).is_none() {
                    return Err(ConfigError::new(
                        &subject,
                        format!("unknown setting `{section}.{key}`"),
                    ));
                }
            }
        }
        Ok(ConfigFile {
            path: path.to_path_buf(),
            table,
        })
    }

    fn get(&self, s: &Setting) -> Option<&toml::Value> {
        self.table.get(s.section)?.as_table()?.get(s.key)
    }
}

/// How to name each setting in messages, once loading is done.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    file: Option<PathBuf>,
    origins: BTreeMap<&'static str, Origin>,
}

impl Provenance {
    /// The name the user knows the setting by: the file key if the value came
    /// from `pds.toml`, otherwise the environment variable (which is also how
    /// one would override a default).
    pub fn name(&self, s: &Setting) -> String {
        match (self.origins.get(s.env), &self.file) {
            (Some(Origin::File), Some(path)) => {
                format!("{}: {}.{}", path.display(), s.section, s.key)
            }
            _ => s.env.to_string(),
        }
    }

    pub fn origin(&self, s: &Setting) -> Origin {
        self.origins.get(s.env).copied().unwrap_or(Origin::Default)
    }
}

/// A raw value before parsing.
enum Raw<'f> {
    Env(String),
    File(&'f toml::Value),
}

pub struct Sources<'a> {
    file: Option<ConfigFile>,
    env: EnvLookup<'a>,
    provenance: Provenance,
}

impl<'a> Sources<'a> {
    pub fn new(file: Option<ConfigFile>, env: EnvLookup<'a>) -> Sources<'a> {
        let provenance = Provenance {
            file: file.as_ref().map(|f| f.path.clone()),
            origins: BTreeMap::new(),
        };
        Sources {
            file,
            env,
            provenance,
        }
    }

    pub fn into_provenance(self) -> Provenance {
        self.provenance
    }

    /// Names a setting for an error about a value already read.
    pub fn name(&self, s: &Setting) -> String {
        self.provenance.name(s)
    }

    fn raw(&mut self, s: &Setting) -> Option<Raw<'_>> {
        // An empty variable counts as unset, as in the reference: pds.env files
        // often carry `PDS_EMAIL_SMTP_URL=` lines.
        if let Some(text) = (self.env)(s.env).filter(|t| !t.trim().is_empty()) {
            self.provenance.origins.insert(s.env, Origin::Env);
            return Some(Raw::Env(text));
        }
        let value = self.file.as_ref()?.get(s)?;
        self.provenance.origins.insert(s.env, Origin::File);
        Some(Raw::File(value))
    }

    /// Reads a setting with `from_text` for environment values and `from_toml`
    /// for file values; `what` completes "… is not <what>".
    fn get<T>(
        &mut self,
        s: &Setting,
        what: &str,
        from_text: impl Fn(&str) -> Option<T>,
        from_toml: impl Fn(&toml::Value) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        let parsed = match self.raw(s) {
            None => return Ok(None),
            Some(Raw::Env(text)) => from_text(&text).ok_or_else(|| shown(s, &format!("{text:?}"))),
            Some(Raw::File(value)) => from_toml(value).ok_or_else(|| shown(s, &value.to_string())),
        };
        parsed
            .map(Some)
            .map_err(|value| ConfigError::new(&self.name(s), format!("{value} is not {what}")))
    }

    /// A string that must satisfy `valid`.
    pub fn text(
        &mut self,
        s: &Setting,
        what: &str,
        valid: impl Fn(&str) -> bool,
    ) -> Result<Option<String>, ConfigError> {
        let check = |t: &str| valid(t.trim()).then(|| t.trim().to_string());
        self.get(s, what, check, |v| v.as_str().and_then(check))
    }

    /// An absolute http(s) URL.
    pub fn url(&mut self, s: &Setting) -> Result<Option<String>, ConfigError> {
        self.text(s, "an http(s) URL", super::values::is_http_url)
    }

    pub fn did(&mut self, s: &Setting) -> Result<Option<String>, ConfigError> {
        self.text(s, "a DID", super::values::is_did)
    }

    pub fn email_address(&mut self, s: &Setting) -> Result<Option<String>, ConfigError> {
        self.text(s, "an e-mail address", super::values::is_email_address)
    }

    pub fn port(&mut self, s: &Setting) -> Result<Option<u16>, ConfigError> {
        self.get(s, "a port number", super::values::parse_port, |v| {
            v.as_integer().and_then(|i| u16::try_from(i).ok())
        })
    }

    pub fn uint(&mut self, s: &Setting, what: &str) -> Result<Option<u64>, ConfigError> {
        self.get(s, what, super::values::parse_u64, |v| {
            v.as_integer().and_then(|i| u64::try_from(i).ok())
        })
    }

    pub fn boolean(&mut self, s: &Setting) -> Result<Option<bool>, ConfigError> {
        self.get(
            s,
            "a boolean (true, false, 1 or 0)",
            super::values::parse_bool,
            toml::Value::as_bool,
        )
    }

    pub fn ip(&mut self, s: &Setting) -> Result<Option<std::net::IpAddr>, ConfigError> {
        let parse = super::values::parse_ip;
        self.get(s, "an IP address", parse, |v| v.as_str().and_then(parse))
    }

    /// A list: comma-separated in the environment (as in the reference), an
    /// array of strings in the file. Each item must satisfy `valid`.
    pub fn list(
        &mut self,
        s: &Setting,
        item_what: &str,
        valid: impl Fn(&str) -> bool,
    ) -> Result<Option<Vec<String>>, ConfigError> {
        let items: Vec<String> = match self.raw(s) {
            None => return Ok(None),
            Some(Raw::Env(text)) => text.split(',').map(|t| t.trim().to_string()).collect(),
            Some(Raw::File(value)) => {
                let items = value.as_array().and_then(|items| {
                    items
                        .iter()
                        .map(|i| i.as_str().map(|t| t.trim().to_string()))
                        .collect::<Option<Vec<_>>>()
                });
                match items {
                    Some(items) => items,
                    None => {
                        let problem = format!("{value} is not a list of strings");
                        return Err(ConfigError::new(&self.name(s), problem));
                    }
                }
            }
        };
        let items: Vec<String> = items.into_iter().filter(|i| !i.is_empty()).collect();
        if let Some(bad) = items.iter().find(|i| !valid(i)) {
            let problem = format!("{:?} is not {item_what}", bad);
            return Err(ConfigError::new(&self.name(s), problem));
        }
        Ok(Some(items))
    }

    /// A secret string, never echoed in errors.
    pub fn secret(&mut self, s: &Setting) -> Result<Option<String>, ConfigError> {
        debug_assert!(s.secret);
        self.text(s, "a non-empty string", |t| !t.is_empty())
    }
}

/// How a bad value is shown in an error: quoted, unless it is a secret.
fn shown(s: &Setting, value: &str) -> String {
    if s.secret {
        "the value given".to_string()
    } else {
        value.to_string()
    }
}
