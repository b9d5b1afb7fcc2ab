//! `com.atproto.server.reserveSigningKey` (procedure, no auth): reserves a repo signing key for
//! an account about to migrate here and returns its did:key, so that the old server can put it
//! in the DID document before the account is created here (`createAccount` then signs with it).
//!
//! As the reference: a DID that asks again gets the same key; without a DID the key is reserved
//! under its own did:key. Keys are k256, kept in `reserved_signing_key`; reservations unused for
//! a week are dropped (see `email_tokens::RESERVATION_TTL_MS`). The body may be empty.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use pds_crypto::{Algorithm, Keypair};
use serde::{Deserialize, Serialize};

use crate::accounts::email_tokens;
use crate::api::ApiError;
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

/// The input: none, or a JSON object.
fn input(headers: &HeaderMap, body: &Bytes) -> Result<Input, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Input::default());
    }
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::invalid_request(
            "Request encoding must be application/json",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_request(format!("Invalid request body: {e}")))
}

pub async fn handle(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Output>, ApiError> {
    let input = input(&headers, &body)?;
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
