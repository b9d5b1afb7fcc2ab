//! `com.atproto.identity.requestPlcOperationSignature` (procedure, no input): e-mails the
//! account the code `signPlcOperation` needs (`XXXXX-XXXXX`, 15 minutes, once). Needs a session
//! made with the account password: the code lets its holder move the account away.

use axum::extract::State;

use crate::accounts::plc_operations;
use crate::api::ApiError;
use crate::auth::AccessAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.identity.requestPlcOperationSignature";

pub async fn handle(State(state): State<AppState>, auth: AccessAuth) -> Result<(), ApiError> {
    auth.require_identity(pds_permissions::IdentityAttr::All)?;
    plc_operations::request_signature(&state, &auth.did).await?;
    Ok(())
}
