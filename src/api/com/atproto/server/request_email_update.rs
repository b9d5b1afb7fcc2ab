//! `com.atproto.server.requestEmailUpdate` (procedure): says whether `updateEmail` will need a
//! code (`tokenRequired`): it does once the current address is confirmed, and then this sends
//! one to that address. Any session of the account may ask, as in the reference.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::accounts::email_tokens::{self, Purpose};
use crate::api::ApiError;
use crate::auth::AccessAuth;
use crate::mailer::messages;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.requestEmailUpdate";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub token_required: bool,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
) -> Result<Json<Output>, ApiError> {
    let now = email_tokens::now_ms();
    auth.require_account(
        pds_permissions::AccountAttr::Email,
        pds_permissions::AccountAction::Manage,
    )?;
    let did = auth.did;
    let mailer = state.mailer.clone();
    let sent = state
        .db
        .write(move |w| -> Result<_, email_tokens::Error> {
            let conn = w.tx.connection();
            let (account, email) = email_tokens::account_email(conn, &did)?;
            if !account.email_confirmed {
                return Ok(None);
            }
            // Refused before a code is made, if no code can be sent.
            mailer.ensure_available()?;
            let token = email_tokens::create(conn, &did, Purpose::UpdateEmail, now)?;
            Ok(Some((email, token)))
        })
        .await?;
    let token_required = match sent {
        Some((email, token)) => {
            let mail = messages::update_email(&email, &token, state.mailer.hostname());
            state.mailer.send(&mail).await?;
            true
        }
        None => false,
    };
    Ok(Json(Output { token_required }))
}
