//! `com.atproto.server.createInviteCodes` (procedure, admin): `codeCount` codes of `useCount`
//! uses for each of `forAccounts` (by default, for `admin`).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::accounts::{AccountError, invites};
use crate::api::{ApiError, XrpcJson};
use crate::auth::admin::AdminAuth;
use crate::state::{AppContext, AppState};

pub const NSID: &str = "com.atproto.server.createInviteCodes";

/// Most codes one request may create (all accounts together).
pub const MAX_CODES_PER_REQUEST: i64 = 10_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    /// The lexicon's default is 1.
    #[serde(default = "one")]
    pub code_count: i64,
    pub use_count: i64,
    pub for_accounts: Option<Vec<String>>,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub codes: Vec<AccountCodes>,
}

#[derive(Debug, Serialize)]
pub struct AccountCodes {
    pub account: String,
    pub codes: Vec<String>,
}

pub async fn handle(
    State(state): State<AppState>,
    _admin: AdminAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<Json<Output>, ApiError> {
    check_use_count(input.use_count)?;
    let accounts = input
        .for_accounts
        .unwrap_or_else(|| vec![invites::ADMIN.to_owned()]);
    for account in &accounts {
        check_account(account)?;
    }
    let total = input.code_count.saturating_mul(accounts.len() as i64);
    if input.code_count < 1 || total > MAX_CODES_PER_REQUEST {
        return Err(ApiError::invalid_request(format!(
            "codeCount must be at least 1, and at most {MAX_CODES_PER_REQUEST} codes in all"
        )));
    }
    let hostname = &state.config.server.hostname;
    let created: Vec<(String, Vec<String>)> = accounts
        .into_iter()
        .map(|account| {
            let codes = (0..input.code_count)
                .map(|_| invites::generate(hostname))
                .collect();
            (account, codes)
        })
        .collect();
    store_codes(&state, created.clone(), input.use_count).await?;
    Ok(Json(Output {
        codes: created
            .into_iter()
            .map(|(account, codes)| AccountCodes { account, codes })
            .collect(),
    }))
}

/// A code must be usable at least once.
pub(super) fn check_use_count(use_count: i64) -> Result<(), ApiError> {
    if use_count < 1 {
        return Err(ApiError::invalid_request("useCount must be at least 1"));
    }
    Ok(())
}

/// Codes are made for `admin` or for an account, named by its DID.
pub(super) fn check_account(account: &str) -> Result<(), ApiError> {
    if account == invites::ADMIN || pds_syntax::Did::new(account).is_ok() {
        Ok(())
    } else {
        Err(ApiError::invalid_request(format!(
            "{account:?} is not a DID"
        )))
    }
}

/// Stores the codes, made by the admin now.
pub(super) async fn store_codes(
    state: &AppContext,
    codes: Vec<(String, Vec<String>)>,
    use_count: i64,
) -> Result<(), ApiError> {
    let now = pds_syntax::Datetime::now().to_string();
    state
        .db
        .write(move |w| -> Result<(), AccountError> {
            invites::create(w.tx.connection(), &codes, use_count, invites::ADMIN, &now)
        })
        .await?;
    Ok(())
}
