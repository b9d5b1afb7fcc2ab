//! Service proxying: the methods of other services (the AppView's timelines, profiles, threads
//! and notifications, moderation, chat, labelers, feeds), forwarded for the signed-in account.
//!
//! Clients talk only to their PDS. A method this server does not implement is forwarded:
//!
//! - to the service an `atproto-proxy: <did>#<service id>` header names: the DID's document
//!   (did:plc or did:web, resolved through the cached identity resolver) gives the service's
//!   endpoint;
//! - without the header, by namespace ([`route::default_target`]): `app.bsky.*` to the
//!   configured AppView, `tools.ozone.*` to the moderation service,
//!   `com.atproto.moderation.createReport` to the report service. `chat.bsky.*` needs the
//!   header, and anything else is `MethodNotImplemented` as before.
//!
//! The request goes on with a service-auth token minted for the account (signed with its repo
//! key: `iss` the account, `aud` the service's DID, `lxm` the method, a minute's `exp`, a
//! random `jti`), the headers clients rely on, and its body streamed; the answer comes back
//! streamed with its status and content headers ([`upstream`]).
//!
//! Never forwarded: account management ([`route::check_forwardable`], the reference's protected
//! methods; no token is minted for them either), and direct messages for plain app passwords.
//! An upstream that cannot be reached is `UpstreamFailure` (502), one that does not answer
//! within `PDS_PROXY_HEADERS_TIMEOUT` is `UpstreamTimeout` (504).
//!
//! The AppView reads where a user would otherwise miss what they just wrote add the account's
//! newer records to the answer: see `crate::read_after_write`.

pub mod feed;
pub mod push;
pub mod route;
pub mod upstream;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{
    ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use pds_identity::{AddressPolicy, HttpConfig, StreamingHttpClient};

use crate::accounts;
use crate::api::ApiError;
use crate::api::xrpc::PREFIX;
use crate::auth::service_jwt::{self, ServiceJwtRequest};
use crate::auth::{AccessAuth, Scope, now_secs};
use crate::config::Config;
use crate::state::AppState;
use route::{PROXY_HEADER, ProxyHeader, Target};
use upstream::{Outbound, UpstreamError, Upstreams};

/// Request headers that go along with a forwarded request: the languages and labelers the
/// client wants, and the topics the Bluesky app sends.
const FORWARDED_REQUEST_HEADERS: [&str; 3] = [
    "accept-language",
    "atproto-accept-labelers",
    "x-bsky-topics",
];

/// Forwarding's clients and limits.
#[derive(Debug, Clone)]
pub struct Proxy {
    upstreams: Upstreams,
    max_response_size: u64,
}

impl Proxy {
    pub fn new(config: &Config) -> std::io::Result<Proxy> {
        let limits = &config.proxy;
        let dns = crate::identity_service::dns(config, pds_identity::DEFAULT_TIMEOUT)?;
        let client = |policy| {
            StreamingHttpClient::new(policy, limits.headers_timeout, dns.clone())
                .map_err(std::io::Error::other)
        };
        // Endpoints from DID documents are user-influenced: the same policy as did:web fetches.
        let named_policy = HttpConfig::new(config.server.dev_mode).policy;
        Ok(Proxy {
            upstreams: Upstreams::new(
                client(AddressPolicy::Any)?,
                client(named_policy)?,
                limits.headers_timeout,
                limits.body_timeout,
            ),
            max_response_size: limits.max_response_size,
        })
    }

    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }

    /// The most of a response held in memory to rewrite it (read-after-write).
    pub fn max_response_size(&self) -> u64 {
        self.max_response_size
    }
}

/// Why a request was not forwarded, or its upstream gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No handler here and nowhere to forward it.
    #[error("Method Not Implemented: {0}")]
    NotImplemented(String),
    #[error("XRPC requests only supports GET and POST")]
    HttpMethod,
    #[error(
        "{0} is forwarded only to the service an atproto-proxy header names (such as did:web:api.bsky.chat#bsky_chat)"
    )]
    HeaderRequired(String),
    /// Account management is done here, directly.
    #[error("Bad token method: {0} is never forwarded to another service")]
    Protected(String),
    /// Direct messages and the like, asked for with a plain app password.
    #[error(
        "Bad token method: {0} needs a session made with the account password or a privileged app password"
    )]
    Privileged(String),
    /// A malformed `atproto-proxy` header (the reference's messages).
    #[error("{0}")]
    BadHeader(&'static str),
    #[error("could not resolve proxy did: {0}")]
    UnresolvableDid(String),
    #[error("could not resolve proxy did service url: {0}")]
    NoServiceEndpoint(String),
    /// The service's address is one this server does not connect to for a request.
    #[error("the proxied service's address is not allowed")]
    Refused,
    #[error("Upstream service unreachable")]
    Unreachable,
    #[error("Upstream service timed out")]
    Timeout,
    /// The client's body went over this server's request size limit while it was forwarded.
    #[error("request entity too large")]
    TooLarge,
    /// An answer from the upstream this server had to understand, and could not.
    #[error("Upstream service sent an unusable answer: {0}")]
    BadAnswer(String),
}

impl From<ProxyError> for ApiError {
    fn from(e: ProxyError) -> Self {
        use ProxyError as E;
        let message = e.to_string();
        match e {
            E::NotImplemented(_) => ApiError::method_not_implemented(message),
            E::HttpMethod
            | E::HeaderRequired(_)
            | E::BadHeader(_)
            | E::UnresolvableDid(_)
            | E::NoServiceEndpoint(_)
            | E::Refused => ApiError::invalid_request(message),
            E::Protected(_) | E::Privileged(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "InvalidToken", message)
            }
            E::Unreachable | E::BadAnswer(_) => ApiError::upstream_failure(message),
            E::Timeout => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "UpstreamTimeout", message),
            E::TooLarge => ApiError::payload_too_large(message),
        }
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

/// The answer to `/xrpc/<method>` for every method no handler is registered for: forwarded if
/// there is somewhere to forward it, else `MethodNotImplemented`.
pub async fn forward_unregistered(State(state): State<AppState>, request: Request) -> Response {
    forward(&state, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Forwards `request` as it is and passes the answer back.
pub async fn forward(state: &AppState, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let forwarding = Forwarding::accept(state, parts).await?;
    let body = forwarding.has_body().then_some(body);
    let outbound = forwarding
        .outbound(state, body, None, Encoding::AsClientAccepts)
        .await?;
    let response = state.proxy.upstreams().send(outbound).await?;
    Ok(state.proxy.upstreams().relay(response).await)
}

/// Which content encodings the upstream may answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The client's `accept-encoding`: the body passes through as the upstream encoded it.
    AsClientAccepts,
    /// Uncompressed, for answers this server reads.
    Identity,
}

/// Where a request goes, before the caller is authenticated.
enum Destination {
    /// The service an `atproto-proxy` header names (its DID not resolved yet).
    Named(ProxyHeader),
    /// The service configured for the method's namespace.
    Default(Target),
}

/// A request accepted for forwarding: checked, authenticated and routed.
#[derive(Debug)]
pub struct Forwarding {
    /// The method, from the path.
    pub nsid: String,
    /// The account it is forwarded for.
    pub did: String,
    pub scope: Scope,
    pub target: Target,
    pub parts: Parts,
}

impl Forwarding {
    /// Checks a request for a method forwarded from here, in the reference's order: the HTTP
    /// method, account management (never forwarded), where it goes (a request with nowhere to
    /// go is `MethodNotImplemented` before any credentials are looked at), the access token,
    /// the app password's privileges, and last the `atproto-proxy` header's DID document.
    pub async fn accept(state: &AppState, mut parts: Parts) -> Result<Forwarding, ApiError> {
        let nsid = nsid_of(&parts)?;
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::POST) {
            return Err(ProxyError::HttpMethod.into());
        }
        route::check_forwardable(&nsid)?;
        // Where it goes: named by the header (resolved once the caller is known), or the
        // namespace's default.
        let destination = match parts.headers.get(PROXY_HEADER) {
            Some(value) if !value.is_empty() => {
                let text = value
                    .to_str()
                    .map_err(|_| ProxyError::BadHeader("invalid proxy header format"))?;
                Destination::Named(ProxyHeader::parse(text)?)
            }
            _ => Destination::Default(route::default_target(&state.config, &nsid)?),
        };
        let auth = AccessAuth::from_request_parts(&mut parts, state).await?;
        // App passwords need the privileged kind for chat; OAuth apps need an `rpc:` scope for
        // the method at that service, whatever it is (checked below, once the service is known).
        if auth.oauth.is_none()
            && auth.scope == Scope::AppPass
            && service_jwt::requires_privileged_session(&nsid)
        {
            return Err(ProxyError::Privileged(nsid).into());
        }
        let target = match destination {
            Destination::Named(header) => header.resolve(&state.id_resolver).await?,
            Destination::Default(target) => target,
        };
        auth.require_rpc(&nsid, &route::scope_audience(&target.aud, &nsid))?;
        Ok(Forwarding {
            nsid,
            did: auth.did,
            scope: auth.scope,
            target,
            parts,
        })
    }

    /// Whether the request carries a body to forward (procedures).
    pub fn has_body(&self) -> bool {
        self.parts.method == Method::POST
    }

    /// The request to send: the same method, path and query to the target, the headers clients
    /// rely on, and a token for the account. `token_for` replaces the token's audience and
    /// method (getFeed's token is for the feed generator behind the AppView).
    pub async fn outbound(
        &self,
        state: &AppState,
        body: Option<Body>,
        token_for: Option<(&str, &str)>,
        encoding: Encoding,
    ) -> Result<Outbound, ApiError> {
        let (aud, lxm) = token_for.unwrap_or((&self.target.aud, &self.nsid));
        let token = service_token(state, &self.did, aud, lxm).await?;
        let incoming = &self.parts.headers;
        let mut headers = HeaderMap::new();
        for name in FORWARDED_REQUEST_HEADERS {
            for value in incoming.get_all(name) {
                headers.append(name, value.clone());
            }
        }
        let accept_encoding = match (encoding, incoming.get(ACCEPT_ENCODING)) {
            (Encoding::AsClientAccepts, Some(value)) if !value.is_empty() => value.clone(),
            _ => HeaderValue::from_static("identity"),
        };
        headers.insert(ACCEPT_ENCODING, accept_encoding);
        if body.is_some() {
            for name in [CONTENT_TYPE, CONTENT_ENCODING, CONTENT_LENGTH] {
                if let Some(value) = incoming.get(&name) {
                    headers.insert(name, value.clone());
                }
            }
        }
        let bearer = bearer_header(&token)?;
        headers.insert(AUTHORIZATION, bearer);
        let path_and_query = self
            .parts
            .uri
            .path_and_query()
            .map_or(self.nsid.as_str(), |pq| pq.as_str());
        let path_and_query = path_and_query
            .strip_prefix(PREFIX)
            .unwrap_or(path_and_query);
        Ok(Outbound {
            method: self.parts.method.clone(),
            url: self.target.xrpc_url(path_and_query),
            headers,
            body,
            source: self.target.source,
        })
    }
}

/// A service-auth token for `iss` (an account here, not taken down), for service `aud` and
/// method `lxm`, valid for a minute.
pub async fn service_token(
    state: &AppState,
    iss: &str,
    aud: &str,
    lxm: &str,
) -> Result<String, ApiError> {
    let did = iss.to_owned();
    let key = state
        .db
        .read(move |store| {
            let conn = store.connection();
            accounts::not_taken_down(conn, &did)?;
            accounts::signing_key(conn, &did)
        })
        .await?;
    let now = now_secs();
    Ok(service_jwt::mint(
        &key,
        &ServiceJwtRequest {
            iss,
            aud,
            lxm: Some(lxm),
            iat: now,
            exp: now + service_jwt::DEFAULT_LIFETIME_SECS,
        },
    ))
}

/// `Authorization: Bearer <token>` for a token minted here.
pub fn bearer_header(token: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::try_from(format!("Bearer {token}"))
        .map_err(|e| ApiError::internal(format!("minted token is not a header value: {e}")))
}

/// Why a query this server made of another service for its own use gave no JSON answer.
#[derive(Debug)]
pub enum QueryFailure {
    /// Not sent, or not answered.
    NoAnswer(ApiError),
    /// The service answered with an error.
    Upstream(Box<UpstreamError>),
}

impl From<ApiError> for QueryFailure {
    fn from(e: ApiError) -> Self {
        QueryFailure::NoAnswer(e)
    }
}

impl From<ProxyError> for QueryFailure {
    fn from(e: ProxyError) -> Self {
        QueryFailure::NoAnswer(e.into())
    }
}

impl IntoResponse for QueryFailure {
    fn into_response(self) -> Response {
        match self {
            QueryFailure::NoAnswer(e) => e.into_response(),
            QueryFailure::Upstream(e) => e.into_response(),
        }
    }
}

/// `GET <target>/xrpc/<nsid>?<query>`, with a token for account `iss` if given, and the JSON
/// answer (at most `PDS_PROXY_MAX_RESPONSE_SIZE`, within the proxy's time limits).
pub async fn query_json(
    state: &AppState,
    target: &Target,
    iss: Option<&str>,
    nsid: &str,
    query: &str,
) -> Result<serde_json::Value, QueryFailure> {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    if let Some(iss) = iss {
        let token = service_token(state, iss, &target.aud, nsid).await?;
        let bearer = bearer_header(&token)?;
        headers.insert(AUTHORIZATION, bearer);
    }
    let path_and_query = if query.is_empty() {
        nsid.to_owned()
    } else {
        format!("{nsid}?{query}")
    };
    let outbound = Outbound {
        method: Method::GET,
        url: target.xrpc_url(&path_and_query),
        headers,
        body: None,
        source: target.source,
    };
    let upstreams = state.proxy.upstreams();
    let response = upstreams.send(outbound).await?;
    if response.status().as_u16() >= 400 {
        return Err(QueryFailure::Upstream(Box::new(
            upstreams.read_error(response).await,
        )));
    }
    let whole = match upstreams
        .read_whole(response, state.proxy.max_response_size())
        .await?
    {
        upstream::Read::Whole(whole) => whole,
        upstream::Read::Streamed(_) => {
            return Err(ProxyError::BadAnswer(format!("{nsid}: the answer is too large")).into());
        }
    };
    if !whole.is_plain_json() {
        return Err(ProxyError::BadAnswer(format!("{nsid}: the answer is not JSON")).into());
    }
    serde_json::from_slice(&whole.body)
        .map_err(|e| ProxyError::BadAnswer(format!("{nsid}: {e}")).into())
}

/// The method a request is for: its path after `/xrpc/`, if that is an NSID in its normal form.
/// An authority in upper case (`CHAT.BSKY.convo.getMessages`) names the same method as the
/// lower-case one, but would slip past every check that compares names; no client sends one.
fn nsid_of(parts: &Parts) -> Result<String, ProxyError> {
    let path = parts.uri.path();
    let name = path.strip_prefix(PREFIX).unwrap_or(path);
    match pds_syntax::Nsid::new(name) {
        Ok(nsid) if service_jwt::normalized_nsid(nsid.as_str()) == nsid.as_str() => {
            Ok(nsid.as_str().to_owned())
        }
        _ => Err(ProxyError::NotImplemented(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn endpoints_named_by_requests_are_reached_only_at_public_addresses() {
        let production = Config::from_toml_str("", &|_: &str| None).unwrap();
        let proxy = Proxy::new(&production).unwrap();
        assert_eq!(
            proxy.upstreams().policies(),
            (AddressPolicy::Any, AddressPolicy::PublicOnly)
        );
        let dev = Config::from_toml_str("[server]\ndev_mode = true\n", &|_: &str| None).unwrap();
        let proxy = Proxy::new(&dev).unwrap();
        assert_eq!(
            proxy.upstreams().policies(),
            (AddressPolicy::Any, AddressPolicy::PublicAndLoopback)
        );
    }
}
