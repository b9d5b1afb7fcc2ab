//! `com.atproto.server.requestAccountDelete` (procedure): e-mails the code `deleteAccount` needs.
//! Needs a session made with the account password (as the reference: `ACCESS_FULL`), an account
//! that is not taken down, and an address to send to.

use axum::extract::State;

use crate::accounts::email_tokens::{self, Purpose};
use crate::api::ApiError;
use crate::auth::AccessAuth;
use crate::mailer::messages;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.requestAccountDelete";

pub async fn handle(State(state): State<AppState>, auth: AccessAuth) -> Result<(), ApiError> {
    auth.require_full()?;
    state.mailer.ensure_available()?;
    let now = email_tokens::now_ms();
    let did = auth.did;
    let (email, token) = state
        .db
        .write(move |w| -> Result<_, email_tokens::Error> {
            let conn = w.tx.connection();
            let (_, email) = email_tokens::account_email(conn, &did)?;
            let token = email_tokens::create(conn, &did, Purpose::DeleteAccount, now)?;
            Ok((email, token))
        })
        .await?;
    let mail = messages::account_delete(&email, &token, state.mailer.hostname());
    state.mailer.send(&mail).await?;
    Ok(())
}
