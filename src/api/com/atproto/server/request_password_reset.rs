//! `com.atproto.server.requestPasswordReset` (procedure, no auth): e-mails a password-reset code
//! to the account with this address.
//!
//! The answer is the same 200, at once, whether or not an account has the address: the lookup,
//! the code and the mail happen after the response, so neither the answer nor its timing tells
//! who has an account here. (The reference answers 400 for an unknown address.) Only a server
//! that cannot send mail at all says so, to everyone alike.

use axum::extract::State;
use serde::Deserialize;

use crate::accounts;
use crate::accounts::email_tokens::{self, Purpose};
use crate::api::{ApiError, XrpcJson};
use crate::mailer::messages;
use crate::state::{AppContext, AppState};

pub const NSID: &str = "com.atproto.server.requestPasswordReset";

#[derive(Debug, Deserialize)]
pub struct Input {
    pub email: String,
}

pub async fn handle(
    State(state): State<AppState>,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<(), ApiError> {
    state.mailer.ensure_available()?;
    let email = input.email.trim().to_lowercase();
    if email_tokens::is_valid_email(&email) {
        tokio::spawn(async move {
            if let Err(e) = send_code(&state, email).await {
                tracing::warn!(error = %e, "password reset code not sent");
            }
        });
    }
    Ok(())
}

async fn send_code(state: &AppContext, email: String) -> Result<(), email_tokens::Error> {
    let now = email_tokens::now_ms();
    // Deactivated and taken-down accounts too, as the reference.
    let account = {
        let email = email.clone();
        state
            .db
            .read(move |store| accounts::by_email(store.connection(), &email))
            .await?
    };
    let Some(account) = account else {
        return Ok(());
    };
    let token = {
        let did = account.did.clone();
        state
            .db
            .write(move |w| {
                email_tokens::create(w.tx.connection(), &did, Purpose::ResetPassword, now)
            })
            .await?
    };
    let mail = messages::reset_password(&email, &account.handle, &token, state.mailer.hostname());
    state.mailer.send(&mail).await?;
    Ok(())
}
