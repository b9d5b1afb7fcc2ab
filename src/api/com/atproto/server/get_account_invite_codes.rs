//! `com.atproto.server.getAccountInviteCodes` (query): the invite codes made for the caller,
//! with their uses. Disabled codes are left out, and used-up ones too unless `includeUsed`.
//! Needs the account password's session (as the reference: `ACCESS_FULL`).
//!
//! `createAvailable` asks the reference to mint codes an account has earned over time
//! (`PDS_INVITE_INTERVAL`); this server has no such schedule, so it mints none, which is what
//! the reference does when no interval is configured.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use crate::accounts::{self, AccountError, invites};
use crate::api::ApiError;
use crate::auth::AccessAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.getAccountInviteCodes";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Params {
    /// The lexicon's default is true.
    pub include_used: Option<bool>,
    /// Accepted and ignored (see the module documentation).
    pub create_available: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub codes: Vec<InviteCode>,
}

/// `com.atproto.server.defs#inviteCode`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteCode {
    pub code: String,
    pub available: i64,
    pub disabled: bool,
    pub for_account: String,
    pub created_by: String,
    pub created_at: String,
    pub uses: Vec<InviteCodeUse>,
}

/// `com.atproto.server.defs#inviteCodeUse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteCodeUse {
    pub used_by: String,
    pub used_at: String,
}

impl From<invites::InviteCode> for InviteCode {
    fn from(c: invites::InviteCode) -> Self {
        InviteCode {
            code: c.code,
            available: c.available,
            disabled: c.disabled,
            for_account: c.for_account,
            created_by: c.created_by,
            created_at: c.created_at,
            uses: c
                .uses
                .into_iter()
                .map(|u| InviteCodeUse {
                    used_by: u.used_by,
                    used_at: u.used_at,
                })
                .collect(),
        }
    }
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    Query(params): Query<Params>,
) -> Result<Json<Output>, ApiError> {
    auth.require_full()?;
    let include_used = params.include_used.unwrap_or(true);
    let did = auth.did;
    let codes = state
        .db
        .read(move |store| -> Result<_, AccountError> {
            let conn = store.connection();
            accounts::not_taken_down(conn, &did)?;
            invites::for_account(conn, &did)
        })
        .await?;
    let codes = codes
        .into_iter()
        .filter(|c| !c.disabled && (include_used || (c.uses.len() as i64) < c.available))
        .map(InviteCode::from)
        .collect();
    Ok(Json(Output { codes }))
}
