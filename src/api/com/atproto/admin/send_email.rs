//! `com.atproto.admin.sendEmail` (procedure, admin): a message from the operator to an account's
//! e-mail address (`recipientDid`), with `subject` (default "Message from Bluesky moderator", as
//! the reference) and `content` as plain text. Answers `{"sent": true}` once the mail server
//! took it; an account without an address, or a server without mail, is an error.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::accounts::{self, AccountError};
use crate::api::{ApiError, XrpcJson};
use crate::auth::admin::AdminAuth;
use crate::mailer::Mail;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.admin.sendEmail";

const DEFAULT_SUBJECT: &str = "Message from Bluesky moderator";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    pub recipient_did: String,
    pub content: String,
    pub subject: Option<String>,
    pub sender_did: String,
    /// Kept by moderation services for their own records; not mailed.
    pub comment: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub sent: bool,
}

pub async fn handle(
    State(state): State<AppState>,
    _admin: AdminAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<Json<Output>, ApiError> {
    let did = super::input_did(&input.recipient_did)?;
    super::input_did(&input.sender_did)?;
    let account = state
        .db
        .read(move |store| accounts::by_did(store.connection(), &did))
        .await?
        .ok_or(AccountError::NotFound)?;
    let to = account.email.ok_or_else(|| {
        ApiError::invalid_request(format!("{} has no e-mail address", account.did))
    })?;
    let mail = Mail {
        to,
        subject: input
            .subject
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_SUBJECT.to_owned()),
        text: input.content,
    };
    state.mailer.send(&mail).await?;
    tracing::info!(did = %account.did, sender = %input.sender_did, "admin.sendEmail sent");
    Ok(Json(Output { sent: true }))
}
