//! `com.atproto.server.reserveSigningKey` (procedure, no auth): reserves a repo signing key for
//! an account about to migrate here and returns its did:key, so that the old server can put it
//! in the DID document before the account is created here (`createAccount` then signs with it).
//!
//! As the reference: a DID that asks again gets the same key; without a DID the key is reserved
//! under its own did:key. Keys are k256, kept in `reserved_signing_key`; reservations unused for
//! a week are dropped (see `email_tokens::RESERVATION_TTL_MS`). The body may be empty.

use axum::Json;
use axum::extract::State;
use pds_crypto::{Algorithm, Keypair};
use serde::{Deserialize, Serialize};

use crate::accounts::email_tokens;
use crate::api::{ApiError, XrpcJsonOrEmpty};
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.reserveSigningKey";

#[derive(Debug, Default, Deserialize)]
pub struct Input {
    #[serde(default)]
    pub did: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub signing_key: String,
}

pub async fn handle(
    State(state): State<AppState>,
    XrpcJsonOrEmpty(input): XrpcJsonOrEmpty<Input>,
) -> Result<Json<Output>, ApiError> {
    let did = match input.did {
        Some(did) => Some(
            pds_syntax::Did::new(&did)
                .map_err(|_| ApiError::invalid_request("Input/did must be a valid did"))?
                .to_string(),
        ),
        None => None,
    };
    let candidate = Keypair::generate(Algorithm::K256);
    let now = email_tokens::now_ms();
    let signing_key = state
        .db
        .write(move |w| {
            email_tokens::reserve_signing_key(w.tx.connection(), did.as_deref(), &candidate, now)
        })
        .await?;
    Ok(Json(Output { signing_key }))
}
