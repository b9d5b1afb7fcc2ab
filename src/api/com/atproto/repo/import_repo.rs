//! `com.atproto.repo.importRepo` (procedure): the caller's whole repo as a CAR file
//! (`application/vnd.ipld.car`), replacing the one it has here: the step of moving an account
//! here that brings its records (see `accounts::migration`).
//!
//! As the reference: a session made with the account password (not an app password), only
//! while the server accepts imports (`PDS_ACCEPTING_REPO_IMPORTS`), and at most as large as the
//! reference's default import limit, the blob upload limit (`PDS_BLOB_UPLOAD_LIMIT`): larger
//! bodies get 413 `PayloadTooLarge`. The body is read as it arrives and refused as soon as it
//! passes the limit. A CAR that fails verification gets 400 with the reason, and nothing is
//! stored. The answer is empty.

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;

use crate::accounts::{self, AccountError, migration};
use crate::api::ApiError;
use crate::auth::AccessAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.repo.importRepo";

/// The one encoding the method takes (its lexicon's `input.encoding`).
const CAR_ENCODING: &str = "application/vnd.ipld.car";

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    headers: HeaderMap,
    body: Body,
) -> Result<(), ApiError> {
    auth.require_account(
        pds_permissions::AccountAttr::Repo,
        pds_permissions::AccountAction::Manage,
    )?;
    let did = auth.did.clone();
    let account = state
        .db
        .read(move |store| accounts::by_did(store.connection(), &did))
        .await?
        .ok_or(AccountError::NotFound)?;
    if account.takendown {
        return Err(AccountError::TakenDown.into());
    }
    if !state.config.accounts.accepting_repo_imports {
        return Err(ApiError::invalid_request(
            "Service is not accepting repo imports",
        ));
    }
    check_encoding(&headers)?;
    let limit = state.blobs.upload_limit();
    let car = read_limited(body, limit).await?;
    migration::import_repo(&state, &auth.did, car, limit).await?;
    Ok(())
}

/// The whole body, read as it arrives; refused (413) as soon as it passes `limit` bytes.
async fn read_limited(mut body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::payload_too_large("request entity too large");
    if body.size_hint().lower() > limit {
        return Err(too_large());
    }
    let mut car = Vec::new();
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame = frame.map_err(|e| {
            ApiError::invalid_request(format!("Could not read the request body: {e}"))
        })?;
        // Trailers carry nothing a CAR needs.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if (car.len() + data.len()) as u64 > limit {
            return Err(too_large());
        }
        car.extend_from_slice(&data);
    }
    Ok(Bytes::from(car))
}

fn check_encoding(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(declared) = headers.get(CONTENT_TYPE) else {
        return Err(ApiError::invalid_request(
            "Request encoding (Content-Type) required but not provided",
        ));
    };
    let essence = declared
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence != CAR_ENCODING {
        return Err(ApiError::invalid_request(format!(
            "Wrong request encoding (Content-Type): {essence}"
        )));
    }
    Ok(())
}
