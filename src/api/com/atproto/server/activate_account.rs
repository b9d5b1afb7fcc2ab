//! `com.atproto.server.activateAccount` (procedure): a deactivated account comes back (after a
//! pause, or on the new server at the end of a migration). Its DID document must point here with
//! the account's signing key; relays are told (`#identity`, `#account` active, `#sync`). Needs a
//! session made with the account password.

use axum::extract::State;

use crate::accounts::status;
use crate::api::ApiError;
use crate::auth::AccessAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.activateAccount";

pub async fn handle(State(state): State<AppState>, auth: AccessAuth) -> Result<(), ApiError> {
    auth.require_account(
        pds_permissions::AccountAttr::Status,
        pds_permissions::AccountAction::Manage,
    )?;
    status::activate(&state, &auth.did).await?;
    Ok(())
}
