//! `com.atproto.sync.subscribeRepos` (subscription): the firehose, over a WebSocket. Public.
//!
//! Each binary message is one frame from the event log (see `pds-event-stream`). With no
//! `cursor`, the stream starts at the next event; with one, it replays the kept events after it
//! and then continues live. What ends a stream: an error frame (`FutureCursor`,
//! `ConsumerTooSlow`), the server shutting down, or the client closing. A ping every
//! [`PING_EVERY`] finds connections that died without closing.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{
    Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::response::{IntoResponse, Response};

use super::Params;
use crate::api::ApiError;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.sync.subscribeRepos";

/// How often an idle connection is pinged.
const PING_EVERY: Duration = Duration::from_secs(30);

pub async fn handle(
    State(state): State<AppState>,
    params: Params,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let cursor =
        match params.get("cursor") {
            None => None,
            Some(value) => Some(value.parse::<i64>().ok().filter(|c| *c >= 0).ok_or_else(
                || ApiError::invalid_request("cursor must be a non-negative integer"),
            )?),
        };
    let upgrade = upgrade.map_err(|e| {
        ApiError::invalid_request(format!(
            "{NSID} is a WebSocket subscription; this request cannot be upgraded: {e}"
        ))
    })?;
    Ok(upgrade
        .on_upgrade(move |socket| stream(state, socket, cursor))
        .into_response())
}

async fn stream(state: AppState, mut socket: WebSocket, cursor: Option<i64>) {
    let _connected = state.crawlers.subscriber_connected();
    let mut subscription = state.firehose.hub.subscribe(cursor);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    'frames: loop {
        // One `next()` for each frame, kept across pings and client messages: dropping it midway
        // would throw away a page read from the log and read it again.
        let next = subscription.next();
        tokio::pin!(next);
        let frame = loop {
            tokio::select! {
                frame = &mut next => break frame,
                incoming = socket.recv() => match incoming {
                    // Subscribers have nothing to say; pongs and pings are handled by the library.
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    Some(Ok(_)) => {}
                },
                _ = ping.tick() => {
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
            }
        };
        let Some(frame) = frame else { break 'frames };
        let last = frame.is_error();
        if socket
            .send(Message::Binary(frame.into_bytes()))
            .await
            .is_err()
        {
            return;
        }
        if last {
            break;
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
