//! `GET /.well-known/atproto-did`: the HTTPS way to resolve a handle. A request for
//! `https://alice.pds.example.com/.well-known/atproto-did` reaches this server (its handle
//! domains point here) and is answered, by the `Host` header, with the DID of the active
//! account that has that handle, as plain text. As in the reference, only hosts under this
//! server's handle domains are answered; anything else is 404.

use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::accounts;
use crate::identity_service::is_service_handle;
use crate::state::AppState;

pub const PATH: &str = "/.well-known/atproto-did";

pub async fn atproto_did(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "User not found").into_response();
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    let Some(handle) = host.and_then(handle_of_host) else {
        return not_found();
    };
    if !is_service_handle(&state.config, &handle) {
        return not_found();
    }
    let found = state
        .db
        .read(move |store| accounts::by_handle(store.connection(), &handle))
        .await;
    match found {
        Ok(Some(account)) if account.active() => {
            ([(CONTENT_TYPE, "text/plain; charset=utf-8")], account.did).into_response()
        }
        Ok(_) => not_found(),
        Err(e) => {
            tracing::error!(error = %e, "well-known handle lookup failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
        }
    }
}

/// The handle a `Host` value names: the port dropped, lowercased, and valid handle syntax.
fn handle_of_host(host: &str) -> Option<String> {
    let host = host.trim();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    pds_syntax::Handle::new(name)
        .ok()
        .map(|h| h.normalized().into_string())
}

#[cfg(test)]
mod tests {
    use super::handle_of_host;

    #[test]
    fn hosts() {
        assert_eq!(handle_of_host("Alice.Test").as_deref(), Some("alice.test"));
        assert_eq!(
            handle_of_host("alice.test:2583").as_deref(),
            Some("alice.test")
        );
        assert_eq!(handle_of_host("alice.test.").as_deref(), Some("alice.test"));
        assert_eq!(handle_of_host("127.0.0.1:2583"), None);
        assert_eq!(handle_of_host("[::1]:2583"), None);
        assert_eq!(handle_of_host("localhost"), None);
        assert_eq!(handle_of_host(""), None);
    }
}
