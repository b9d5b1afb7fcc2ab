//! `app.bsky.feed.getFeed`: a custom feed is made by its feed generator, which the AppView asks
//! for the feed's skeleton on the account's behalf. So the token forwarded with the request is
//! for the generator (`aud` its DID, `lxm` `app.bsky.feed.getFeedSkeleton`), as the reference
//! mints it; the generator's DID comes from the AppView's `getFeedGenerator`, asked for the
//! account.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pds_syntax::{AtUri, Did};
use serde_json::Value;

use super::route::Target;
use super::{Encoding, Forwarding, query_json};
use crate::api::ApiError;
use crate::state::AppState;

/// The method a feed generator serves, and the token's `lxm`.
pub const GET_FEED_SKELETON: &str = "app.bsky.feed.getFeedSkeleton";
/// The AppView's description of a feed, with its generator's DID.
const GET_FEED_GENERATOR: &str = "app.bsky.feed.getFeedGenerator";

/// Forwards a getFeed request with a token for the feed's generator.
pub async fn get_feed(state: &AppState, request: Request) -> Result<Response, ApiError> {
    let (parts, _queries_have_no_body) = request.into_parts();
    let forwarding = Forwarding::accept(state, parts).await?;
    let upstreams = state.proxy.upstreams();
    let Some(appview) = &state.config.appview else {
        // Named by an atproto-proxy header, with no AppView here to ask: forwarded as it is.
        let outbound = forwarding
            .outbound(state, None, None, Encoding::AsClientAccepts)
            .await?;
        return Ok(upstreams.relay(upstreams.send(outbound).await?).await);
    };
    let feed = feed_param(&forwarding)?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("feed", feed.as_str())
        .finish();
    let generator = match query_json(
        state,
        &Target::configured(appview),
        Some(&forwarding.did),
        GET_FEED_GENERATOR,
        &query,
    )
    .await
    {
        Ok(generator) => generator,
        Err(failure) => return Ok(failure.into_response()),
    };
    let generator = generator
        .pointer("/view/did")
        .and_then(Value::as_str)
        .filter(|did| Did::new(did).is_ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "UnknownFeed",
                "could not resolve feed did",
            )
        })?;
    let outbound = forwarding
        .outbound(
            state,
            None,
            Some((generator, GET_FEED_SKELETON)),
            Encoding::AsClientAccepts,
        )
        .await?;
    Ok(upstreams.relay(upstreams.send(outbound).await?).await)
}

fn feed_param(forwarding: &Forwarding) -> Result<AtUri, ApiError> {
    let query = forwarding.parts.uri.query().unwrap_or_default();
    let feed = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| k == "feed" && !v.is_empty())
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| ApiError::invalid_request("Params must have the property \"feed\""))?;
    AtUri::new(&feed).map_err(|_| ApiError::invalid_request("feed must be a valid at-uri"))
}
