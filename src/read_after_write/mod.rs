//! Read-after-write: an AppView indexes a write some time after the PDS commits it, so a user
//! who has just posted or edited their profile would not see it in their timeline, their feed,
//! a thread or their profile. For those reads the PDS adds what the AppView does not have yet.
//!
//! The AppView reports how far it has indexed the caller's repo in the `atproto-repo-rev`
//! response header. The account's records written by later commits (at most
//! [`records::MAX_LOCAL_RECORDS`], oldest first) are merged into the answer: new posts into
//! timelines, the account's own author feed and its threads (a thread the AppView does not know
//! at all, because its post is that new, is built here); a newer profile record into the
//! account's profile views. The answer then says how far behind the AppView was in
//! `atproto-upstream-lag` (milliseconds), as the reference does.
//!
//! Only answers that can be read are changed: JSON, not compressed (the upstream is asked for
//! `identity`), within `PDS_PROXY_MAX_RESPONSE_SIZE`. Anything else, an answer without a
//! revision, or no newer records, is passed on as it came; a merge that fails is logged and the
//! original answer given.

mod munge;
pub mod records;
mod viewer;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pds_syntax::Tid;
use serde_json::{Value, json};

use crate::api::ApiError;
use crate::proxy::upstream::{self, Read, UpstreamError, WholeResponse};
use crate::proxy::{Encoding, Forwarding};
use crate::records::RecordError;
use crate::state::AppState;
pub use records::{LocalRecord, LocalRecords};
use viewer::LocalViewer;

/// The response header in which an AppView says up to which revision of the caller's repo it has
/// indexed.
pub const REPO_REV_HEADER: &str = "atproto-repo-rev";
/// The response header saying how far behind the AppView was, in milliseconds.
pub const UPSTREAM_LAG_HEADER: &str = "atproto-upstream-lag";

/// The AppView reads that take the account's newer records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `app.bsky.actor.getProfile`
    Profile,
    /// `app.bsky.actor.getProfiles`
    Profiles,
    /// `app.bsky.feed.getTimeline`
    Timeline,
    /// `app.bsky.feed.getAuthorFeed`
    AuthorFeed,
    /// `app.bsky.feed.getPostThread`
    PostThread,
    /// `app.bsky.feed.getActorLikes`
    ActorLikes,
}

/// Forwards `request` (a query) as the proxy does and merges the account's newer records into
/// the answer.
pub async fn pipethrough(state: &AppState, request: Request, method: Method) -> Response {
    respond(state, request, method)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn respond(state: &AppState, request: Request, method: Method) -> Result<Response, ApiError> {
    let (parts, _queries_have_no_body) = request.into_parts();
    let forwarding = Forwarding::accept(state, parts).await?;
    let outbound = forwarding
        .outbound(state, None, None, Encoding::Identity)
        .await?;
    let upstreams = state.proxy.upstreams();
    let response = upstreams.send(outbound).await?;
    if response.status().as_u16() >= 400 {
        let error = upstreams.read_error(response).await;
        if method == Method::PostThread
            && let Some(thread) = thread_of_unindexed_post(state, &forwarding, &error).await
        {
            return Ok(thread);
        }
        return Ok(error.into_response());
    }
    // Only a plain JSON success with a revision can take local records; and only when there
    // are some is it read whole (the common case, an AppView that has caught up, streams).
    let rev = response
        .headers()
        .get(REPO_REV_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Tid::new(v).ok());
    let Some(rev) = rev else {
        return Ok(upstreams.stream(response));
    };
    if response.status() != StatusCode::OK || !upstream::is_plain_json(response.headers()) {
        return Ok(upstreams.stream(response));
    }
    let (local, viewer) = match load(state, &forwarding.did, rev).await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return Ok(upstreams.stream(response)),
        Err(e) => {
            tracing::warn!(did = %forwarding.did, error = %e, "read-after-write: local records unreadable");
            return Ok(upstreams.stream(response));
        }
    };
    match upstreams
        .read_whole(response, state.proxy.max_response_size())
        .await?
    {
        Read::Whole(whole) => Ok(merged(&forwarding, method, whole, &local, &viewer).await),
        Read::Streamed(response) => Ok(response),
    }
}

/// `whole` with the account's newer records merged in, or as it came if it is not JSON.
async fn merged(
    forwarding: &Forwarding,
    method: Method,
    whole: WholeResponse,
    local: &LocalRecords,
    viewer: &LocalViewer<'_>,
) -> Response {
    let Ok(original) = serde_json::from_slice::<Value>(&whole.body) else {
        return whole.into_response();
    };
    let query = query_of(&forwarding.parts);
    let merged = munge::apply(method, viewer, original, local, &query).await;
    json_response(whole.headers_for_rewritten_body(), &merged, local)
}

/// The account's records newer than `rev` and a viewer for them; `None` if there are none.
async fn load<'a>(
    state: &'a AppState,
    did: &str,
    rev: Tid,
) -> Result<Option<(LocalRecords, LocalViewer<'a>)>, RecordError> {
    let owned = did.to_owned();
    let (local, author) = state
        .db
        .read(move |store| {
            let conn = store.connection();
            let local = LocalRecords::since(conn, &owned, &rev)?;
            let author = match local.count {
                0 => None,
                _ => Some(records::author(conn, &owned)?),
            };
            Ok::<_, RecordError>((local, author))
        })
        .await?;
    Ok(author.map(|(handle, profile)| {
        (
            local,
            LocalViewer::new(state, did.to_owned(), handle, profile),
        )
    }))
}

/// getPostThread for a post the AppView does not know (`NotFound`) because the account wrote
/// it after the revision the AppView reports: the thread built from the account's records, with
/// the parents the AppView has. `None` when that is not the case.
async fn thread_of_unindexed_post(
    state: &AppState,
    forwarding: &Forwarding,
    error: &UpstreamError,
) -> Option<Response> {
    if error.error.as_deref() != Some("NotFound") {
        return None;
    }
    let rev = Tid::new(error.header(REPO_REV_HEADER)?).ok()?;
    let query = query_of(&forwarding.parts);
    let uri = query.get("uri")?;
    let (authority, path) = uri.strip_prefix("at://")?.split_once('/')?;
    let did = if authority.starts_with("did:") {
        authority.to_owned()
    } else {
        let handle = authority.to_ascii_lowercase();
        state
            .db
            .read(move |store| crate::accounts::by_handle(store.connection(), &handle))
            .await
            .ok()??
            .did
    };
    if did != forwarding.did {
        return None;
    }
    let uri = format!("at://{did}/{path}");
    let (local, viewer) = match load(state, &did, rev).await {
        Ok(loaded) => loaded?,
        Err(e) => {
            tracing::warn!(%did, error = %e, "read-after-write: local records unreadable");
            return None;
        }
    };
    let found = local.posts.iter().find(|post| post.uri == uri)?;
    let mut thread = munge::thread_post(viewer.post_view(found).await);
    let others: Vec<LocalRecord> = local
        .posts
        .iter()
        .filter(|post| post.uri != uri)
        .cloned()
        .collect();
    munge::add_posts_to_thread(&viewer, &mut thread, &others).await;
    if let Some(parent) = found
        .value
        .pointer("/reply/parent/uri")
        .and_then(Value::as_str)
    {
        let mut params = vec![("uri", parent), ("depth", "0")];
        if let Some(height) = query.get("parentHeight") {
            params.push(("parentHeight", height));
        }
        if let Some(answer) = viewer
            .appview_query_with("app.bsky.feed.getPostThread", &params)
            .await
            && let Some(parent_thread) = answer.get("thread")
        {
            thread["parent"] = parent_thread.clone();
        }
    }
    Some(json_response(
        error.headers.clone(),
        &json!({ "thread": thread }),
        &local,
    ))
}

fn json_response(mut headers: HeaderMap, body: &Value, local: &LocalRecords) -> Response {
    let now_micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    if let Some(lag) = local.lag_ms(now_micros) {
        headers.insert(UPSTREAM_LAG_HEADER, HeaderValue::from(lag));
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let bytes = match serde_json::to_vec(body) {
        Ok(bytes) => bytes,
        Err(e) => {
            return ApiError::internal(format!("read-after-write answer: {e}")).into_response();
        }
    };
    let mut response = Response::new(Body::from(bytes));
    *response.headers_mut() = headers;
    response
}

fn query_of(parts: &Parts) -> munge::Query {
    let pairs = url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    munge::Query(pairs)
}
