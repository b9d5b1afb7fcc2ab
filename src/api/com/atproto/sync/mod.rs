//! `com.atproto.sync.*`: what relays, AppViews and other servers fetch from this one.
//!
//! Also the helpers these public methods share: the optional caller (the account itself and the
//! operator see their repo whatever its status), the reference's repo availability check, the
//! repo head, CAR responses, and query parameter parsing with the reference's messages.

pub mod get_blob;
pub mod get_blocks;
pub mod get_checkout;
pub mod get_head;
pub mod get_latest_commit;
pub mod get_record;
pub mod get_repo;
pub mod get_repo_status;
pub mod list_blobs;
pub mod list_repos;
pub mod subscribe_repos;

/// Where the sync methods' parameter reader used to live; it serves every query now.
pub use crate::api::Params;

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pds_storage::RepoHead;

use crate::accounts::{self, Account};
use crate::api::ApiError;
use crate::api::xrpc::XrpcRouter;
use crate::auth::AccessAuth;
use crate::auth::admin::AdminAuth;
use crate::state::AppState;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    xrpc.query(get_blob::NSID, get_blob::handle)
        .query(list_blobs::NSID, list_blobs::handle)
        .query(get_repo::NSID, get_repo::handle)
        .query(get_checkout::NSID, get_checkout::handle)
        .query(get_latest_commit::NSID, get_latest_commit::handle)
        .query(get_head::NSID, get_head::handle)
        .query(get_repo_status::NSID, get_repo_status::handle)
        .query(list_repos::NSID, list_repos::handle)
        .query(get_blocks::NSID, get_blocks::handle)
        .query(get_record::NSID, get_record::handle)
        .query(subscribe_repos::NSID, subscribe_repos::handle)
}

/// The media type of every CAR this API sends.
pub const CAR_MEDIA_TYPE: &str = "application/vnd.ipld.car";

/// A CAR built in memory (a few blocks) as a response.
pub fn car_response(car: Vec<u8>) -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static(CAR_MEDIA_TYPE))],
        car,
    )
        .into_response()
}

/// 400 with a method-specific error name.
fn bad_request(name: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, name, message)
}

/// Who calls a method that anyone may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    Account(String),
    Admin,
}

impl Caller {
    /// The account `did` itself, or the operator: they see the repo whatever its status.
    pub fn is_self_or_admin(&self, did: &str) -> bool {
        match self {
            Caller::Anonymous => false,
            Caller::Account(caller) => caller == did,
            Caller::Admin => true,
        }
    }
}

/// Credentials are optional, but if given they must be valid (as the reference).
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(AUTHORIZATION) else {
            return Ok(Caller::Anonymous);
        };
        let is_basic = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().split_once(' '))
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"));
        if is_basic {
            AdminAuth::from_request_parts(parts, state).await?;
            Ok(Caller::Admin)
        } else {
            let auth = AccessAuth::from_request_parts(parts, state).await?;
            Ok(Caller::Account(auth.did))
        }
    }
}

/// The account of `did` if its repo may be served to `caller`: 400 `RepoNotFound`,
/// `RepoTakendown`, `RepoDeactivated` otherwise, with the reference's messages.
pub async fn assert_repo_available(
    state: &AppState,
    did: &str,
    caller: &Caller,
) -> Result<Account, ApiError> {
    let account = find_account(state, did).await?;
    if caller.is_self_or_admin(did) {
        return Ok(account);
    }
    if account.takendown {
        return Err(bad_request(
            "RepoTakendown",
            format!("Repo has been takendown: {did}"),
        ));
    }
    if account.deactivated {
        return Err(bad_request(
            "RepoDeactivated",
            format!("Repo has been deactivated: {did}"),
        ));
    }
    Ok(account)
}

/// The account of `did` whatever its status, or 400 `RepoNotFound` (the availability check as
/// the account itself sees it; getRepoStatus reports the status instead of refusing).
pub async fn find_account(state: &AppState, did: &str) -> Result<Account, ApiError> {
    let lookup = did.to_owned();
    let account = state
        .db
        .read(move |store| accounts::by_did(store.connection(), &lookup))
        .await?;
    account.ok_or_else(|| {
        bad_request(
            "RepoNotFound",
            format!("Could not find repo for DID: {did}"),
        )
    })
}

/// The latest commit of `did`'s repo, if it has one.
pub async fn repo_head(state: &AppState, did: &str) -> Result<Option<RepoHead>, ApiError> {
    let lookup = did.to_owned();
    state
        .db
        .read(move |store| store.head(&lookup))
        .await
        .map_err(ApiError::internal)
}
