//! A web host for one did:web on loopback: `/.well-known/did.json` for
//! `did:web:localhost%3A<its port>` (dev mode resolves that over plain http), and
//! `/.well-known/atproto-did` answers for custom-domain handles pointed at it. Tests change the
//! document as they go, as an operator editing their did.json would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// The web host of one did:web: its did.json (404 while unset) and, by Host header, the
/// `/.well-known/atproto-did` answers of custom-domain handles pointed at it.
pub struct DidHost {
    pub addr: SocketAddr,
    did_json: Arc<Mutex<Option<Value>>>,
    handles: Arc<Mutex<HashMap<String, String>>>,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct HostState {
    did_json: Arc<Mutex<Option<Value>>>,
    handles: Arc<Mutex<HashMap<String, String>>>,
}

impl DidHost {
    pub fn start() -> DidHost {
        use axum::extract::State;
        use axum::http::{HeaderMap, StatusCode, header};
        use axum::response::{IntoResponse, Response};

        async fn did_json(State(state): State<HostState>) -> Response {
            match state.did_json.lock().unwrap().clone() {
                Some(doc) => axum::Json(doc).into_response(),
                None => (StatusCode::NOT_FOUND, "no did.json").into_response(),
            }
        }
        async fn atproto_did(State(state): State<HostState>, headers: HeaderMap) -> Response {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            let host = host.split(':').next().unwrap_or_default();
            match state.handles.lock().unwrap().get(host) {
                Some(did) => did.clone().into_response(),
                None => (StatusCode::NOT_FOUND, "no such handle").into_response(),
            }
        }

        let state = HostState {
            did_json: Arc::default(),
            handles: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/.well-known/did.json", axum::routing::get(did_json))
            .route("/.well-known/atproto-did", axum::routing::get(atproto_did))
            .with_state(state.clone());
        let (addr, runtime) = super::serve_on_loopback(app);
        DidHost {
            addr,
            did_json: state.did_json,
            handles: state.handles,
            _runtime: runtime,
        }
    }

    /// The did:web this host serves.
    pub fn did(&self) -> String {
        format!("did:web:localhost%3A{}", self.addr.port())
    }

    pub fn publish(&self, doc: Value) {
        *self.did_json.lock().unwrap() = Some(doc);
    }

    pub fn point_handle(&self, handle: &str, did: &str) {
        self.handles
            .lock()
            .unwrap()
            .insert(handle.to_owned(), did.to_owned());
    }
}
