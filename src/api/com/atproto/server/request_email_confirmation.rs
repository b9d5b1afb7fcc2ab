//! `com.atproto.server.requestEmailConfirmation` (procedure): e-mails the account a code that
//! confirms its address (`confirmEmail`). Any session of the account may ask, app passwords
//! included, as in the reference; not a taken-down account, nor one without an address.

use axum::extract::State;

use crate::accounts::email_tokens::{self, Purpose};
use crate::api::ApiError;
use crate::auth::AccessAuth;
use crate::mailer::messages;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.requestEmailConfirmation";

pub async fn handle(State(state): State<AppState>, auth: AccessAuth) -> Result<(), ApiError> {
    state.mailer.ensure_available()?;
    let now = email_tokens::now_ms();
    auth.require_account(
        pds_permissions::AccountAttr::Email,
        pds_permissions::AccountAction::Manage,
    )?;
    let did = auth.did;
    let (email, token) = state
        .db
        .write(move |w| -> Result<_, email_tokens::Error> {
            let conn = w.tx.connection();
            let (_, email) = email_tokens::account_email(conn, &did)?;
            let token = email_tokens::create(conn, &did, Purpose::ConfirmEmail, now)?;
            Ok((email, token))
        })
        .await?;
    let mail = messages::confirm_email(&email, &token, state.mailer.hostname());
    state.mailer.send(&mail).await?;
    Ok(())
}
