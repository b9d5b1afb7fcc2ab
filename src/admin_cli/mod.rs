//! `pds admin ...`: the operator's command line, a client of this server's admin API (HTTP Basic
//! with the admin password, from the same configuration the server reads), so it works while the
//! server runs and changes nothing behind its back:
//!
//! - `account list [--email TEXT]`, `account create`, `account takedown` / `restore`,
//!   `account delete`, `account reset-password`;
//! - `invite create`;
//! - `request-crawl [RELAY ...]`: asks relays (default `PDS_CRAWLERS`) to crawl this server;
//! - `check-handle HANDLE`: why a handle does or does not resolve ([`check_handle`]).
//!
//! Must not touch this server's storage: `pds verify-repos` and `pds backup` are the commands
//! that read the data directory.

pub mod check_handle;

use serde_json::json;

use crate::migrate::host::{Host, HostError, text_field};

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("{0}")]
    Refused(String),
}

type Result<T> = std::result::Result<T, AdminError>;

/// The server, reached as its operator.
pub struct Admin {
    host: Host,
}

impl Admin {
    pub fn new(url: &str, admin_password: &str) -> Result<Admin> {
        Ok(Admin {
            host: Host::new(url)?.as_admin(admin_password),
        })
    }

    /// The DID of `account` (a DID, or a handle this server resolves).
    pub async fn did_of(&self, account: &str) -> Result<String> {
        if account.starts_with("did:") {
            return Ok(account.to_owned());
        }
        let out = self
            .host
            .query("com.atproto.identity.resolveHandle", &[("handle", account)])
            .await?;
        Ok(text_field(
            &self.host,
            "com.atproto.identity.resolveHandle",
            &out,
            "did",
        )?)
    }

    /// Every account (whose e-mail contains `email`), as `did handle email status` lines.
    pub async fn list_accounts(&self, email: Option<&str>) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut params = vec![("limit", "100")];
            if let Some(email) = email {
                params.push(("email", email));
            }
            if let Some(cursor) = &cursor {
                params.push(("cursor", cursor));
            }
            let page = self
                .host
                .query("com.atproto.admin.searchAccounts", &params)
                .await?;
            let accounts = page["accounts"].as_array().cloned().unwrap_or_default();
            let dids: Vec<String> = accounts
                .iter()
                .filter_map(|a| a["did"].as_str().map(str::to_owned))
                .collect();
            let statuses = self.statuses(&dids).await?;
            for (account, status) in accounts.iter().zip(statuses) {
                lines.push(format!(
                    "{} {} {} {status}",
                    account["did"].as_str().unwrap_or("?"),
                    account["handle"].as_str().unwrap_or("?"),
                    account["email"].as_str().unwrap_or("-"),
                ));
            }
            cursor = page["cursor"].as_str().map(str::to_owned);
            if cursor.is_none() || accounts.is_empty() {
                return Ok(lines);
            }
        }
    }

    /// `active`, `deactivated` or `takendown` for each DID.
    async fn statuses(&self, dids: &[String]) -> Result<Vec<String>> {
        let mut statuses = Vec::with_capacity(dids.len());
        for did in dids {
            let out = self
                .host
                .query("com.atproto.admin.getSubjectStatus", &[("did", did)])
                .await?;
            let status = if out["takedown"]["applied"] == true {
                "takendown"
            } else if out["deactivated"]["applied"] == true {
                "deactivated"
            } else {
                "active"
            };
            statuses.push(status.to_owned());
        }
        Ok(statuses)
    }

    /// Creates an account (with an invite code made for it when the server requires one).
    /// Returns its DID.
    pub async fn create_account(
        &self,
        handle: &str,
        email: &str,
        password: &str,
    ) -> Result<String> {
        let described = self
            .host
            .query("com.atproto.server.describeServer", &[])
            .await?;
        let mut input = json!({"handle": handle, "email": email, "password": password});
        if described["inviteCodeRequired"] == true {
            let made = self
                .host
                .procedure(
                    "com.atproto.server.createInviteCode",
                    &json!({"useCount": 1}),
                )
                .await?;
            input["inviteCode"] = made["code"].clone();
        }
        let created = self
            .host
            .procedure("com.atproto.server.createAccount", &input)
            .await?;
        Ok(text_field(
            &self.host,
            "com.atproto.server.createAccount",
            &created,
            "did",
        )?)
    }

    /// Takes the account down (`Some(reference)`) or restores it.
    pub async fn set_takedown(&self, did: &str, reference: Option<&str>) -> Result<()> {
        let takedown = match reference {
            Some(reference) => json!({"applied": true, "ref": reference}),
            None => json!({"applied": false}),
        };
        self.host
            .procedure(
                "com.atproto.admin.updateSubjectStatus",
                &json!({
                    "subject": {"$type": "com.atproto.admin.defs#repoRef", "did": did},
                    "takedown": takedown,
                }),
            )
            .await?;
        Ok(())
    }

    pub async fn delete_account(&self, did: &str) -> Result<()> {
        self.host
            .procedure("com.atproto.admin.deleteAccount", &json!({"did": did}))
            .await?;
        Ok(())
    }

    pub async fn set_password(&self, did: &str, password: &str) -> Result<()> {
        self.host
            .procedure(
                "com.atproto.admin.updateAccountPassword",
                &json!({"did": did, "password": password}),
            )
            .await?;
        Ok(())
    }

    /// `count` invite codes of `uses` uses each.
    pub async fn create_invites(&self, count: u32, uses: u32) -> Result<Vec<String>> {
        let made = self
            .host
            .procedure(
                "com.atproto.server.createInviteCodes",
                &json!({"codeCount": count, "useCount": uses}),
            )
            .await?;
        Ok(made["codes"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|account| account["codes"].as_array().cloned().unwrap_or_default())
            .filter_map(|code| code.as_str().map(str::to_owned))
            .collect())
    }
}

/// Asks each relay to crawl `hostname` (`com.atproto.sync.requestCrawl`). Returns one line per
/// relay: what it answered.
pub async fn request_crawl(relays: &[String], hostname: &str) -> Vec<(String, bool)> {
    let mut answers = Vec::new();
    for relay in relays {
        let answer = match Host::new(relay) {
            Ok(host) => host
                .procedure(
                    "com.atproto.sync.requestCrawl",
                    &json!({ "hostname": hostname }),
                )
                .await
                .map(|_| format!("{relay}: asked to crawl {hostname}")),
            Err(e) => Err(e),
        };
        answers.push(match answer {
            Ok(line) => (line, true),
            Err(e) => (format!("{relay}: {e}"), false),
        });
    }
    answers
}

/// A new random password for a reset: 24 characters a person can type.
pub fn generate_password() -> String {
    let mut bytes = [0u8; 15];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    let text = data_encoding::BASE32_NOPAD
        .encode(&bytes)
        .to_ascii_lowercase();
    format!(
        "{}-{}-{}-{}",
        &text[..6],
        &text[6..12],
        &text[12..18],
        &text[18..24]
    )
}
