//! Client ids and client metadata as the atproto OAuth profile defines them
//! (atproto.com/specs/oauth, "Clients" and "Authorization Requests"):
//!
//! - a discoverable client's `client_id` is the `https://` URL of its
//!   metadata document, which the server fetches (the fetch is the caller's)
//!   and checks with [`validate`];
//! - `http://localhost` (no port, no path, optional `redirect_uri` and
//!   `scope` query parameters) is the development "loopback" client, whose
//!   metadata is implied ([`loopback_metadata`]) and never fetched.

use serde_json::{Map, Value};
use url::{Host, Url};

use crate::OAuthError;
use crate::client_auth::ASSERTION_ALG;
use crate::jwk::PublicJwk;

/// `token_endpoint_auth_method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// `none`: a public client.
    None,
    /// `private_key_jwt`: a confidential client (RFC 7523 assertions).
    PrivateKeyJwt,
}

impl AuthMethod {
    /// The metadata value.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// `application_type` (from OpenID Connect registration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplicationType {
    /// `web`, the default.
    Web,
    /// `native`.
    Native,
}

impl ApplicationType {
    /// The metadata value.
    pub fn as_str(&self) -> &'static str {
        match self {
            ApplicationType::Web => "web",
            ApplicationType::Native => "native",
        }
    }
}

/// Client metadata that passed the atproto rules.
#[derive(Debug, Clone)]
pub struct ClientMetadata {
    pub client_id: String,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    /// Space-separated; always contains `atproto`.
    pub scope: String,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub application_type: ApplicationType,
    pub token_endpoint_auth_method: AuthMethod,
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// `{"keys": [...]}`, public keys only.
    pub jwks: Option<Value>,
    pub jwks_uri: Option<String>,
    /// Always true once validated.
    pub dpop_bound_access_tokens: bool,
}

/// What kind of client a `client_id` names.
pub enum ClientIdKind {
    /// An https URL to the client metadata document, to be fetched.
    Discoverable(Url),
    /// `http://localhost` (no port, path "" or "/") with optional repeated
    /// `redirect_uri` and one `scope` query params: a development client
    /// whose metadata is implied, never fetched.
    Loopback,
}

/// The origin of loopback (development) client ids.
pub const LOOPBACK_CLIENT_ID_ORIGIN: &str = "http://localhost";

/// The redirect URIs of a loopback client that names none.
pub const LOOPBACK_DEFAULT_REDIRECT_URIS: [&str; 2] = ["http://127.0.0.1/", "http://[::1]/"];

/// The longest `client_id` accepted.
pub const MAX_CLIENT_ID_LEN: usize = 2048;

fn bad_client(description: impl Into<String>) -> OAuthError {
    OAuthError::InvalidClient(description.into())
}

fn bad_metadata(description: impl Into<String>) -> OAuthError {
    OAuthError::InvalidClientMetadata(description.into())
}

fn bad_redirect(description: impl Into<String>) -> OAuthError {
    OAuthError::InvalidRedirectUri(description.into())
}

/// Classifies a `client_id`: an `https://` URL in canonical form with a
/// domain-name host, no port, no userinfo, no fragment and a path other than
/// `/` not ending in `/`; or the loopback form. Anything else is
/// `invalid_client`.
pub fn parse_client_id(client_id: &str) -> Result<ClientIdKind, OAuthError> {
    if client_id.len() > MAX_CLIENT_ID_LEN {
        return Err(bad_client("client_id is too long"));
    }
    if let Some(rest) = client_id.strip_prefix(LOOPBACK_CLIENT_ID_ORIGIN)
        && (rest.is_empty() || rest.starts_with(['/', '?', '#', ':']))
    {
        loopback_params(rest)?;
        return Ok(ClientIdKind::Loopback);
    }
    let url = Url::parse(client_id)
        .map_err(|_| bad_client(format!("client_id \"{client_id}\" is not a URL")))?;
    match url.scheme() {
        "https" => {}
        "http" => {
            return Err(bad_client(
                "client_id must be an https URL (http is only for the exact \
                 development origin http://localhost, with no port; IP addresses are not allowed)",
            ));
        }
        other => {
            return Err(bad_client(format!(
                "client_id scheme \"{other}\" is not https"
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad_client("client_id must not contain credentials"));
    }
    if url.fragment().is_some() {
        return Err(bad_client("client_id must not contain a fragment"));
    }
    // An explicit default port (":443") is dropped by the parser, and so
    // caught by the canonical-form check below.
    if url.port().is_some() {
        return Err(bad_client("client_id must not contain a port number"));
    }
    match url.host() {
        Some(Host::Domain(domain)) if domain != "localhost" && !domain.ends_with(".localhost") => {}
        Some(Host::Domain(_)) => return Err(bad_client("client_id host must not be localhost")),
        _ => {
            return Err(bad_client(
                "client_id host must be a domain name, not an IP address",
            ));
        }
    }
    if url.path() == "/" {
        return Err(bad_client(
            "client_id must have a path (e.g. /client-metadata.json)",
        ));
    }
    if url.path().ends_with('/') {
        return Err(bad_client("client_id path must not end with '/'"));
    }
    if url.as_str() != client_id {
        return Err(bad_client(format!(
            "client_id is not in canonical form (\"{}\")",
            url.as_str()
        )));
    }
    Ok(ClientIdKind::Discoverable(url))
}

struct LoopbackParams {
    redirect_uris: Vec<String>,
    scope: Option<String>,
}

/// Parses what follows `http://localhost` in a loopback client id.
fn loopback_params(rest: &str) -> Result<LoopbackParams, OAuthError> {
    if rest.contains('#') {
        return Err(bad_client("loopback client_id must not contain a fragment"));
    }
    let query = if let Some(q) = rest.strip_prefix("/?").or_else(|| rest.strip_prefix('?')) {
        q
    } else if rest.is_empty() || rest == "/" {
        ""
    } else if rest.starts_with(':') {
        return Err(bad_client(
            "loopback client_id must be http://localhost with no port number",
        ));
    } else {
        return Err(bad_client(
            "loopback client_id must not have a path (only \"\" or \"/\")",
        ));
    };
    let mut params = LoopbackParams {
        redirect_uris: Vec::new(),
        scope: None,
    };
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "redirect_uri" => {
                check_loopback_client_redirect_uri(&value)?;
                params.redirect_uris.push(value.into_owned());
            }
            "scope" => {
                if params.scope.is_some() {
                    return Err(bad_client(
                        "loopback client_id has more than one scope parameter",
                    ));
                }
                check_scope(&value).map_err(bad_client)?;
                params.scope = Some(value.into_owned());
            }
            other => {
                return Err(bad_client(format!(
                    "loopback client_id has an unexpected query parameter \"{other}\""
                )));
            }
        }
    }
    Ok(params)
}

fn check_loopback_client_redirect_uri(uri: &str) -> Result<(), OAuthError> {
    let url = Url::parse(uri).map_err(|_| {
        bad_client(format!(
            "loopback client redirect_uri \"{uri}\" is not a URL"
        ))
    })?;
    if url.scheme() != "http" {
        return Err(bad_client("loopback client redirect_uri must use http"));
    }
    if url.host() == Some(Host::Domain("localhost")) {
        return Err(bad_client(
            "loopback client redirect_uri must use 127.0.0.1 or [::1], not localhost",
        ));
    }
    if !is_loopback_ip(&url) {
        return Err(bad_client(
            "loopback client redirect_uri must be on 127.0.0.1 or [::1]",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(bad_client(
            "loopback client redirect_uri must not contain credentials or a fragment",
        ));
    }
    Ok(())
}

fn is_loopback_ip(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        _ => false,
    }
}

/// RFC 6749 §3.3 scope syntax, no repeated tokens, and `atproto` present.
fn check_scope(scope: &str) -> Result<(), String> {
    let mut seen: Vec<&str> = Vec::new();
    for token in scope.split(' ') {
        if token.is_empty() {
            return Err("scope has an empty value (scopes are separated by single spaces)".into());
        }
        if !token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        {
            return Err(format!(
                "scope \"{token}\" has characters scopes may not contain"
            ));
        }
        if seen.contains(&token) {
            return Err(format!("scope \"{token}\" is repeated"));
        }
        seen.push(token);
    }
    if !seen.contains(&"atproto") {
        return Err("scope must include \"atproto\"".into());
    }
    Ok(())
}

/// The implied metadata of a loopback client id: `redirect_uris` from the
/// `redirect_uri` query params (default `http://127.0.0.1/` and
/// `http://[::1]/`), `scope` from the `scope` param (default `atproto`),
/// public (`none`), `native`, DPoP-bound, grant types `authorization_code`
/// and `refresh_token`, response type `code`. No `client_name`: the server
/// picks what to call a development client.
pub fn loopback_metadata(client_id: &str) -> Result<ClientMetadata, OAuthError> {
    let rest = match parse_client_id(client_id)? {
        ClientIdKind::Loopback => &client_id[LOOPBACK_CLIENT_ID_ORIGIN.len()..],
        ClientIdKind::Discoverable(_) => {
            return Err(bad_client("not a loopback client_id"));
        }
    };
    let params = loopback_params(rest)?;
    let redirect_uris = if params.redirect_uris.is_empty() {
        LOOPBACK_DEFAULT_REDIRECT_URIS.map(str::to_owned).to_vec()
    } else {
        params.redirect_uris
    };
    Ok(ClientMetadata {
        client_id: client_id.to_owned(),
        client_name: None,
        client_uri: None,
        logo_uri: None,
        tos_uri: None,
        policy_uri: None,
        redirect_uris,
        scope: params.scope.unwrap_or_else(|| "atproto".to_owned()),
        grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        response_types: vec!["code".to_owned()],
        application_type: ApplicationType::Native,
        token_endpoint_auth_method: AuthMethod::None,
        token_endpoint_auth_signing_alg: None,
        jwks: None,
        jwks_uri: None,
        dpop_bound_access_tokens: true,
    })
}

/// Reads JSON members with type checks; `null` counts as absent.
struct Members<'a>(&'a Map<String, Value>);

impl<'a> Members<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn string(&self, name: &str) -> Result<Option<&'a str>, OAuthError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(bad_metadata(format!("\"{name}\" must be a string"))),
        }
    }

    fn strings(&self, name: &str) -> Result<Option<Vec<String>>, OAuthError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_owned).ok_or_else(|| {
                        bad_metadata(format!("\"{name}\" must be an array of strings"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(bad_metadata(format!(
                "\"{name}\" must be an array of strings"
            ))),
        }
    }
}

fn has_duplicates(items: &[String]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, item)| items[i + 1..].contains(item))
}

fn https_url(name: &str, value: &str) -> Result<Url, OAuthError> {
    let url = Url::parse(value).map_err(|_| bad_metadata(format!("\"{name}\" is not a URL")))?;
    if url.scheme() != "https" || url.host().is_none() {
        return Err(bad_metadata(format!("\"{name}\" must be an https URL")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad_metadata(format!(
            "\"{name}\" must not contain credentials"
        )));
    }
    Ok(url)
}

/// The hostname in reverse-domain order: `app.example.com` →
/// `com.example.app`.
fn reverse_domain(host: &str) -> String {
    host.split('.').rev().collect::<Vec<_>>().join(".")
}

fn check_redirect_uri(
    uri: &str,
    application_type: &ApplicationType,
    client: &Url,
) -> Result<(), OAuthError> {
    let url = Url::parse(uri)
        .map_err(|_| bad_redirect(format!("redirect URI \"{uri}\" is not a URL")))?;
    if url.fragment().is_some() {
        return Err(bad_redirect(format!(
            "redirect URI \"{uri}\" must not contain a fragment"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad_redirect(format!(
            "redirect URI \"{uri}\" must not contain credentials"
        )));
    }
    let native = *application_type == ApplicationType::Native;
    match url.scheme() {
        "https" => {
            if url.origin() != client.origin() {
                return Err(bad_redirect(format!(
                    "redirect URI \"{uri}\" must have the same origin as the client_id"
                )));
            }
        }
        "http" => {
            if url.host() == Some(Host::Domain("localhost")) {
                return Err(bad_redirect(format!(
                    "redirect URI \"{uri}\": use 127.0.0.1 or [::1], not localhost"
                )));
            }
            if !is_loopback_ip(&url) {
                return Err(bad_redirect(format!(
                    "redirect URI \"{uri}\": only loopback IP redirect URIs may use http"
                )));
            }
            if !native {
                return Err(bad_redirect(format!(
                    "redirect URI \"{uri}\": loopback redirect URIs are only for native clients"
                )));
            }
        }
        scheme if scheme.contains('.') => {
            if !native {
                return Err(bad_redirect(format!(
                    "redirect URI \"{uri}\": custom URI schemes are only for native clients"
                )));
            }
            let expected = reverse_domain(client.host_str().unwrap_or_default());
            if scheme != expected {
                return Err(bad_redirect(format!(
                    "redirect URI \"{uri}\": a custom scheme must be the client_id host in \
                     reverse-domain order (\"{expected}\")"
                )));
            }
            if url.host().is_some()
                || !url.path().starts_with('/')
                || url.as_str().starts_with(&format!("{scheme}://"))
            {
                return Err(bad_redirect(format!(
                    "redirect URI \"{uri}\" must have the form {scheme}:/path (one slash)"
                )));
            }
        }
        scheme => {
            return Err(bad_redirect(format!(
                "redirect URI \"{uri}\" has an unsupported scheme \"{scheme}\""
            )));
        }
    }
    Ok(())
}

/// Parses and validates a fetched client metadata document against the
/// atproto rules. `client_id` is the URL it was fetched from. Unknown fields
/// are ignored.
///
/// - `client_id` in the document equals `client_id`, which is a
///   discoverable client id ([`parse_client_id`]);
/// - `dpop_bound_access_tokens` is `true`;
/// - `scope` is well-formed and contains `atproto`;
/// - `grant_types` contain `authorization_code`, and only it and
///   `refresh_token`; `response_types` contain `code`, and only it;
/// - `application_type` is `web` (default) or `native`;
/// - `redirect_uris` is non-empty, and each is: `https` on the client_id's
///   origin (web and native); for native clients also a custom scheme that is
///   the client_id host in reverse-domain order followed by `:/path`, or an
///   `http` loopback IP (`127.0.0.1`, `[::1]`, never `localhost`) URI;
/// - `client_uri` is https on the client_id's host; `logo_uri`, `tos_uri`,
///   `policy_uri` and `jwks_uri` are https;
/// - `token_endpoint_auth_method` is `none` (default) or `private_key_jwt`;
///   `private_key_jwt` needs `token_endpoint_auth_signing_alg` `ES256` and
///   one of `jwks` (with an `ES256` key) or `jwks_uri`, not both; `none`
///   must not name a signing alg; `jwks` keys are public only.
pub fn validate(client_id: &str, document: &[u8]) -> Result<ClientMetadata, OAuthError> {
    let client = match parse_client_id(client_id)? {
        ClientIdKind::Discoverable(url) => url,
        ClientIdKind::Loopback => {
            return Err(bad_metadata(
                "loopback client ids have implied metadata, not a document",
            ));
        }
    };
    validate_document(client_id, &client, document)
}

/// [`validate`] for a development server's `http://` client id on a loopback address with a
/// port (`http://127.0.0.1:8080/client.json`), which [`parse_client_id`] refuses: the same
/// rules, with that URL standing where the https one would. A server must only call this in
/// its development mode.
pub fn validate_development(
    client_id: &str,
    document: &[u8],
) -> Result<ClientMetadata, OAuthError> {
    let client = Url::parse(client_id).map_err(|_| bad_metadata("client_id is not a URL"))?;
    let loopback = match client.host() {
        Some(Host::Domain(d)) => d == "localhost",
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if client.scheme() != "http" || !loopback || client.port().is_none() || client.path().len() < 2
    {
        return Err(bad_metadata(
            "a development client_id is http on a loopback address with a port and a path",
        ));
    }
    validate_document(client_id, &client, document)
}

fn validate_document(
    client_id: &str,
    client: &Url,
    document: &[u8],
) -> Result<ClientMetadata, OAuthError> {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(document) else {
        return Err(bad_metadata("client metadata is not a JSON object"));
    };
    let m = Members(&object);

    match m.string("client_id")? {
        Some(id) if id == client_id => {}
        Some(_) => {
            return Err(bad_metadata(
                "client_id in the document does not match the URL it was fetched from",
            ));
        }
        None => return Err(bad_metadata("client metadata has no client_id")),
    }

    if m.get("dpop_bound_access_tokens") != Some(&Value::Bool(true)) {
        return Err(bad_metadata("\"dpop_bound_access_tokens\" must be true"));
    }

    let scope = m
        .string("scope")?
        .ok_or_else(|| bad_metadata("client metadata has no scope"))?;
    check_scope(scope).map_err(bad_metadata)?;

    let grant_types = m
        .strings("grant_types")?
        .ok_or_else(|| bad_metadata("client metadata has no grant_types"))?;
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(bad_metadata(
            "grant_types must include \"authorization_code\"",
        ));
    }
    if let Some(other) = grant_types
        .iter()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(bad_metadata(format!(
            "grant type \"{other}\" is not allowed"
        )));
    }
    if has_duplicates(&grant_types) {
        return Err(bad_metadata("grant_types has a repeated value"));
    }

    let response_types = m
        .strings("response_types")?
        .ok_or_else(|| bad_metadata("client metadata has no response_types"))?;
    if !response_types.iter().any(|r| r == "code") {
        return Err(bad_metadata("response_types must include \"code\""));
    }
    if let Some(other) = response_types.iter().find(|r| *r != "code") {
        return Err(bad_metadata(format!(
            "response type \"{other}\" is not allowed"
        )));
    }

    let application_type = match m.string("application_type")? {
        None | Some("web") => ApplicationType::Web,
        Some("native") => ApplicationType::Native,
        Some(other) => {
            return Err(bad_metadata(format!(
                "application_type \"{other}\" is not \"web\" or \"native\""
            )));
        }
    };

    let redirect_uris = m
        .strings("redirect_uris")?
        .ok_or_else(|| bad_metadata("client metadata has no redirect_uris"))?;
    if redirect_uris.is_empty() {
        return Err(bad_metadata("redirect_uris must not be empty"));
    }
    for uri in &redirect_uris {
        check_redirect_uri(uri, &application_type, client)?;
    }

    let client_uri = m.string("client_uri")?;
    if let Some(uri) = client_uri
        && https_url("client_uri", uri)?.host_str() != client.host_str()
    {
        return Err(bad_metadata(
            "client_uri must have the same hostname as the client_id",
        ));
    }
    for name in ["logo_uri", "tos_uri", "policy_uri"] {
        if let Some(uri) = m.string(name)? {
            https_url(name, uri)?;
        }
    }

    let jwks_uri = m.string("jwks_uri")?;
    if let Some(uri) = jwks_uri {
        https_url("jwks_uri", uri)?;
    }
    let jwks = m.get("jwks");
    if let Some(jwks) = jwks {
        check_jwks(jwks)?;
    }
    if jwks.is_some() && jwks_uri.is_some() {
        return Err(bad_metadata("give either jwks or jwks_uri, not both"));
    }

    let signing_alg = m.string("token_endpoint_auth_signing_alg")?;
    if signing_alg == Some("none") {
        return Err(bad_metadata(
            "token_endpoint_auth_signing_alg must not be \"none\"",
        ));
    }
    let method = match m.string("token_endpoint_auth_method")? {
        None | Some("none") => {
            if signing_alg.is_some() {
                return Err(bad_metadata(
                    "token_endpoint_auth_signing_alg is only for private_key_jwt clients",
                ));
            }
            AuthMethod::None
        }
        Some("private_key_jwt") => {
            match signing_alg {
                Some(ASSERTION_ALG) => {}
                Some(other) => {
                    return Err(bad_metadata(format!(
                        "token_endpoint_auth_signing_alg \"{other}\" is not supported (use {ASSERTION_ALG})"
                    )));
                }
                None => {
                    return Err(bad_metadata(
                        "private_key_jwt needs token_endpoint_auth_signing_alg",
                    ));
                }
            }
            match jwks {
                Some(jwks) if !has_assertion_key(jwks) => {
                    return Err(bad_metadata(format!(
                        "private_key_jwt needs an {ASSERTION_ALG} key in jwks"
                    )));
                }
                None if jwks_uri.is_none() => {
                    return Err(bad_metadata("private_key_jwt needs jwks or jwks_uri"));
                }
                _ => {}
            }
            AuthMethod::PrivateKeyJwt
        }
        Some(other) => {
            return Err(bad_metadata(format!(
                "token_endpoint_auth_method \"{other}\" is not supported (use none or private_key_jwt)"
            )));
        }
    };

    Ok(ClientMetadata {
        client_id: client_id.to_owned(),
        client_name: m.string("client_name")?.map(str::to_owned),
        client_uri: client_uri.map(str::to_owned),
        logo_uri: m.string("logo_uri")?.map(str::to_owned),
        tos_uri: m.string("tos_uri")?.map(str::to_owned),
        policy_uri: m.string("policy_uri")?.map(str::to_owned),
        redirect_uris,
        scope: scope.to_owned(),
        grant_types,
        response_types,
        application_type,
        token_endpoint_auth_method: method,
        token_endpoint_auth_signing_alg: signing_alg.map(str::to_owned),
        jwks: jwks.cloned(),
        jwks_uri: jwks_uri.map(str::to_owned),
        dpop_bound_access_tokens: true,
    })
}

/// `{"keys": [...]}` with no private key in it.
fn check_jwks(jwks: &Value) -> Result<(), OAuthError> {
    let Some(keys) = jwks.get("keys").and_then(Value::as_array) else {
        return Err(bad_metadata("jwks must be an object with a \"keys\" array"));
    };
    for key in keys {
        let Some(key) = key.as_object() else {
            return Err(bad_metadata("jwks keys must be JSON objects"));
        };
        // Any private member of any key type (EC/OKP "d", RSA primes, "k").
        if ["d", "p", "q", "dp", "dq", "qi", "k"]
            .iter()
            .any(|m| key.contains_key(*m))
        {
            return Err(bad_metadata("jwks must hold public keys only"));
        }
    }
    Ok(())
}

fn has_assertion_key(jwks: &Value) -> bool {
    jwks.get("keys")
        .and_then(Value::as_array)
        .is_some_and(|keys| {
            keys.iter()
                .filter_map(|k| PublicJwk::parse(k).ok())
                .any(|k| k.alg() == ASSERTION_ALG)
        })
}

/// An http loopback-IP URI with its port taken out, for port-blind matching.
fn loopback_without_port(uri: &str) -> Option<String> {
    let mut url = Url::parse(uri).ok()?;
    if url.scheme() != "http" || !is_loopback_ip(&url) || url.fragment().is_some() {
        return None;
    }
    url.set_port(None).ok()?;
    Some(url.into())
}

impl ClientMetadata {
    /// Whether `uri` is one of [`ClientMetadata::redirect_uris`]: an exact
    /// string match, except that an http loopback IP redirect URI
    /// (`127.0.0.1`, `[::1]`) matches with any port (RFC 8252 §7.3; the
    /// atproto localhost client rules).
    pub fn allows_redirect_uri(&self, uri: &str) -> bool {
        if self.redirect_uris.iter().any(|r| r == uri) {
            return true;
        }
        let Some(given) = loopback_without_port(uri) else {
            return false;
        };
        self.redirect_uris
            .iter()
            .any(|r| loopback_without_port(r).as_deref() == Some(given.as_str()))
    }

    /// Whether the client authenticates with `private_key_jwt`.
    pub fn is_confidential(&self) -> bool {
        self.token_endpoint_auth_method == AuthMethod::PrivateKeyJwt
    }

    /// The declared scope values.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use pds_crypto::Algorithm;
    use serde_json::json;

    const CLIENT: &str = "https://app.example.com/oauth/client-metadata.json";

    fn good_web() -> Value {
        json!({
            "client_id": CLIENT,
            "client_name": "Example",
            "client_uri": "https://app.example.com",
            "logo_uri": "https://cdn.example.net/logo.png",
            "tos_uri": "https://app.example.com/tos",
            "policy_uri": "https://app.example.com/policy",
            "redirect_uris": ["https://app.example.com/oauth/callback"],
            "scope": "atproto transition:generic",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "application_type": "web",
            "token_endpoint_auth_method": "none",
            "dpop_bound_access_tokens": true,
            "some_future_field": {"ignored": true},
        })
    }

    fn run(doc: &Value) -> Result<ClientMetadata, OAuthError> {
        validate(CLIENT, doc.to_string().as_bytes())
    }

    fn with(mut doc: Value, name: &str, value: Value) -> Value {
        if value.is_null() {
            doc.as_object_mut().unwrap().remove(name);
        } else {
            doc[name] = value;
        }
        doc
    }

    #[test]
    fn client_id_kinds() {
        for id in [
            CLIENT,
            "https://app.example.com/client.json?v=2",
            "https://example.com/x",
        ] {
            match parse_client_id(id) {
                Ok(ClientIdKind::Discoverable(url)) => assert_eq!(url.as_str(), id),
                _ => panic!("{id} should be discoverable"),
            }
        }
        for id in [
            "http://localhost",
            "http://localhost/",
            "http://localhost?scope=atproto",
            "http://localhost/?scope=atproto%20transition%3Ageneric",
            "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcb&redirect_uri=http%3A%2F%2F%5B%3A%3A1%5D%2Fcb",
        ] {
            assert!(
                matches!(parse_client_id(id), Ok(ClientIdKind::Loopback)),
                "{id} should be loopback"
            );
        }
        for id in [
            "",
            "app.example.com",
            "http://localhost:8080",
            "http://localhost:8080/",
            "http://localhost/path",
            "http://localhost#frag",
            "http://localhost/?scope=atproto#frag",
            "http://localhost?foo=bar",
            "http://localhost?scope=atproto&scope=atproto",
            "http://localhost?scope=transition%3Ageneric", // no atproto
            "http://localhost?redirect_uri=http%3A%2F%2Flocalhost%2Fcb",
            "http://localhost?redirect_uri=https%3A%2F%2F127.0.0.1%2Fcb",
            "http://localhost?redirect_uri=http%3A%2F%2F10.0.0.1%2Fcb",
            "http://localhost?redirect_uri=not%20a%20url",
            "http://127.0.0.1",
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://LOCALHOST",
            "http://localhost.example.com/client.json",
            "http://app.example.com/client.json",
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/dir/",
            "https://app.example.com/client.json#frag",
            "https://user:pw@app.example.com/client.json",
            "https://app.example.com:8443/client.json",
            "https://app.example.com:443/client.json",
            "https://APP.example.com/client.json",
            "https://app.example.com/a/../client.json",
            "https://127.0.0.1/client.json",
            "https://[::1]/client.json",
            "https://localhost/client.json",
            "ftp://app.example.com/client.json",
        ] {
            let err = match parse_client_id(id) {
                Err(e) => e,
                Ok(_) => panic!("{id:?} should be refused"),
            };
            assert_eq!(err.code(), "invalid_client", "{id}");
        }
    }

    #[test]
    fn loopback_defaults() {
        for id in ["http://localhost", "http://localhost/"] {
            let m = loopback_metadata(id).unwrap();
            assert_eq!(m.client_id, id);
            assert_eq!(m.redirect_uris, ["http://127.0.0.1/", "http://[::1]/"]);
            assert_eq!(m.scope, "atproto");
            assert_eq!(m.token_endpoint_auth_method, AuthMethod::None);
            assert_eq!(m.application_type, ApplicationType::Native);
            assert!(m.dpop_bound_access_tokens);
            assert_eq!(m.grant_types, ["authorization_code", "refresh_token"]);
            assert_eq!(m.response_types, ["code"]);
            assert!(!m.is_confidential());
            assert!(m.allows_redirect_uri("http://127.0.0.1/"));
            assert!(m.allows_redirect_uri("http://127.0.0.1:54321/"));
            assert!(m.allows_redirect_uri("http://[::1]:8080/"));
            assert!(!m.allows_redirect_uri("http://127.0.0.1:8080/other"));
            assert!(!m.allows_redirect_uri("http://localhost:8080/"));
        }
    }

    #[test]
    fn loopback_with_params() {
        let id = "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fcallback\
                  &scope=atproto+transition%3Ageneric\
                  &redirect_uri=http%3A%2F%2F%5B%3A%3A1%5D%2Fcb";
        let m = loopback_metadata(id).unwrap();
        assert_eq!(m.client_id, id);
        assert_eq!(
            m.redirect_uris,
            ["http://127.0.0.1:3000/callback", "http://[::1]/cb"]
        );
        assert_eq!(m.scope, "atproto transition:generic");
        assert!(m.allows_redirect_uri("http://127.0.0.1:3000/callback"));
        assert!(m.allows_redirect_uri("http://127.0.0.1:9999/callback"));
        assert!(m.allows_redirect_uri("http://127.0.0.1/callback"));
        assert!(m.allows_redirect_uri("http://[::1]:1234/cb"));
        assert!(!m.allows_redirect_uri("http://127.0.0.1:3000/"));
        assert!(!m.allows_redirect_uri("http://[::1]:1234/callback"));
        assert!(!m.allows_redirect_uri("https://127.0.0.1:3000/callback"));
        assert!(!m.allows_redirect_uri("http://127.0.0.1:3000/callback#x"));
        assert!(loopback_metadata(CLIENT).is_err());
        assert!(loopback_metadata("http://localhost:8080").is_err());
    }

    #[test]
    fn accepts_a_good_web_document() {
        let m = run(&good_web()).unwrap();
        assert_eq!(m.client_id, CLIENT);
        assert_eq!(m.client_name.as_deref(), Some("Example"));
        assert_eq!(m.client_uri.as_deref(), Some("https://app.example.com"));
        assert_eq!(m.application_type, ApplicationType::Web);
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::None);
        assert_eq!(
            m.scopes().collect::<Vec<_>>(),
            ["atproto", "transition:generic"]
        );
        assert!(m.dpop_bound_access_tokens);
        assert!(m.allows_redirect_uri("https://app.example.com/oauth/callback"));
        assert!(!m.allows_redirect_uri("https://app.example.com/oauth/callback?x=1"));
        assert!(!m.allows_redirect_uri("https://app.example.com/oauth/callback/"));
        assert!(!m.allows_redirect_uri("https://app.example.com:8443/oauth/callback"));
        // Defaults: no application_type (web), no auth method (none),
        // optional fields absent or null.
        let mut doc = good_web();
        for name in [
            "application_type",
            "token_endpoint_auth_method",
            "client_uri",
            "logo_uri",
        ] {
            doc.as_object_mut().unwrap().remove(name);
        }
        doc["tos_uri"] = Value::Null;
        let m = run(&doc).unwrap();
        assert_eq!(m.application_type, ApplicationType::Web);
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::None);
        assert_eq!(m.tos_uri, None);
        // Only authorization_code is fine.
        run(&with(
            good_web(),
            "grant_types",
            json!(["authorization_code"]),
        ))
        .unwrap();
    }

    #[test]
    fn refuses_each_bad_field() {
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "client_id",
                json!("https://app.example.com/other.json"),
                "invalid_client_metadata",
            ),
            ("client_id", Value::Null, "invalid_client_metadata"),
            ("client_id", json!(5), "invalid_client_metadata"),
            (
                "dpop_bound_access_tokens",
                json!(false),
                "invalid_client_metadata",
            ),
            (
                "dpop_bound_access_tokens",
                json!("true"),
                "invalid_client_metadata",
            ),
            (
                "dpop_bound_access_tokens",
                Value::Null,
                "invalid_client_metadata",
            ),
            (
                "scope",
                json!("transition:generic"),
                "invalid_client_metadata",
            ),
            (
                "scope",
                json!("atproto  transition:generic"),
                "invalid_client_metadata",
            ),
            ("scope", json!("atproto atproto"), "invalid_client_metadata"),
            (
                "scope",
                json!("atproto bad\"scope"),
                "invalid_client_metadata",
            ),
            ("scope", json!(["atproto"]), "invalid_client_metadata"),
            ("scope", Value::Null, "invalid_client_metadata"),
            (
                "grant_types",
                json!(["refresh_token"]),
                "invalid_client_metadata",
            ),
            (
                "grant_types",
                json!(["authorization_code", "implicit"]),
                "invalid_client_metadata",
            ),
            (
                "grant_types",
                json!(["authorization_code", "authorization_code"]),
                "invalid_client_metadata",
            ),
            (
                "grant_types",
                json!("authorization_code"),
                "invalid_client_metadata",
            ),
            ("grant_types", Value::Null, "invalid_client_metadata"),
            (
                "response_types",
                json!(["token"]),
                "invalid_client_metadata",
            ),
            (
                "response_types",
                json!(["code", "code id_token"]),
                "invalid_client_metadata",
            ),
            ("response_types", Value::Null, "invalid_client_metadata"),
            (
                "application_type",
                json!("desktop"),
                "invalid_client_metadata",
            ),
            ("redirect_uris", json!([]), "invalid_client_metadata"),
            ("redirect_uris", Value::Null, "invalid_client_metadata"),
            ("redirect_uris", json!([5]), "invalid_client_metadata"),
            (
                "redirect_uris",
                json!(["https://evil.example.com/cb"]),
                "invalid_redirect_uri",
            ),
            (
                "redirect_uris",
                json!(["https://app.example.com:8443/cb"]),
                "invalid_redirect_uri",
            ),
            (
                "redirect_uris",
                json!(["http://app.example.com/cb"]),
                "invalid_redirect_uri",
            ),
            (
                "redirect_uris",
                json!(["http://127.0.0.1/cb"]),
                "invalid_redirect_uri",
            ), // web
            (
                "redirect_uris",
                json!(["http://localhost/cb"]),
                "invalid_redirect_uri",
            ),
            (
                "redirect_uris",
                json!(["com.example.app:/cb"]),
                "invalid_redirect_uri",
            ), // web
            (
                "redirect_uris",
                json!(["https://app.example.com/cb#frag"]),
                "invalid_redirect_uri",
            ),
            (
                "redirect_uris",
                json!(["https://u:p@app.example.com/cb"]),
                "invalid_redirect_uri",
            ),
            (
                "redirect_uris",
                json!(["javascript:alert(1)"]),
                "invalid_redirect_uri",
            ),
            (
                "redirect_uris",
                json!(["/relative/cb"]),
                "invalid_redirect_uri",
            ),
            (
                "client_uri",
                json!("https://other.example.com"),
                "invalid_client_metadata",
            ),
            (
                "client_uri",
                json!("http://app.example.com"),
                "invalid_client_metadata",
            ),
            (
                "logo_uri",
                json!("http://app.example.com/logo.png"),
                "invalid_client_metadata",
            ),
            (
                "logo_uri",
                json!("data:image/png;base64,AAAA"),
                "invalid_client_metadata",
            ),
            (
                "tos_uri",
                json!("http://app.example.com/tos"),
                "invalid_client_metadata",
            ),
            ("policy_uri", json!("not a url"), "invalid_client_metadata"),
            ("client_name", json!(["x"]), "invalid_client_metadata"),
            (
                "token_endpoint_auth_method",
                json!("client_secret_basic"),
                "invalid_client_metadata",
            ),
            (
                "token_endpoint_auth_method",
                json!("private_key_jwt"),
                "invalid_client_metadata",
            ),
            (
                "token_endpoint_auth_signing_alg",
                json!("ES256"),
                "invalid_client_metadata",
            ), // with none
            (
                "token_endpoint_auth_signing_alg",
                json!("none"),
                "invalid_client_metadata",
            ),
            (
                "jwks_uri",
                json!("http://app.example.com/jwks.json"),
                "invalid_client_metadata",
            ),
            (
                "jwks",
                json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
                "invalid_client_metadata",
            ),
            ("jwks", json!([]), "invalid_client_metadata"),
        ];
        for (name, value, code) in cases {
            let doc = with(good_web(), name, value.clone());
            match run(&doc) {
                Ok(_) => panic!("{name}: {value} should be refused"),
                Err(e) => assert_eq!(e.code(), code, "{name}: {value}: {e}"),
            }
        }
        // Not JSON, not an object; a loopback or bad client_id.
        assert!(validate(CLIENT, b"not json").is_err());
        assert!(validate(CLIENT, b"[1,2]").is_err());
        let doc = with(good_web(), "client_id", json!("http://localhost"));
        assert!(validate("http://localhost", doc.to_string().as_bytes()).is_err());
        let doc = with(good_web(), "client_id", json!("https://app.example.com/"));
        assert_eq!(
            validate("https://app.example.com/", doc.to_string().as_bytes())
                .unwrap_err()
                .code(),
            "invalid_client"
        );
    }

    #[test]
    fn native_redirect_uris() {
        let native = |uris: Value| {
            let doc = with(good_web(), "application_type", json!("native"));
            run(&with(doc, "redirect_uris", uris))
        };
        let m = native(json!([
            "com.example.app:/callback",
            "https://app.example.com/universal-link",
            "http://127.0.0.1/cb",
            "http://[::1]:8000/cb",
        ]))
        .unwrap();
        assert_eq!(m.application_type, ApplicationType::Native);
        assert!(m.allows_redirect_uri("com.example.app:/callback"));
        assert!(!m.allows_redirect_uri("com.example.app:/other"));
        assert!(m.allows_redirect_uri("http://127.0.0.1:61000/cb"));
        assert!(m.allows_redirect_uri("http://[::1]/cb"));
        assert!(!m.allows_redirect_uri("http://[::1]/cb2"));
        for uri in [
            "com.example.app://callback",
            "com.example.app:callback",
            "com.example:/callback",
            "app.example.com:/callback",
            "com.example.app.evil:/callback",
            "http://localhost:8000/cb",
            "http://192.168.1.1/cb",
            "myapp:/callback",
            "https://evil.example.com/cb",
        ] {
            let err = native(json!([uri])).unwrap_err();
            assert_eq!(err.code(), "invalid_redirect_uri", "{uri}");
        }
    }

    #[test]
    fn confidential_clients() {
        let key = TestKey::generate(Algorithm::P256);
        let mut jwk = key.public_jwk();
        jwk["kid"] = json!("k1");
        let confidential = |extra: &[(&str, Value)]| {
            let mut doc = with(
                good_web(),
                "token_endpoint_auth_method",
                json!("private_key_jwt"),
            );
            doc["token_endpoint_auth_signing_alg"] = json!("ES256");
            for (name, value) in extra {
                doc = with(doc, name, value.clone());
            }
            run(&doc)
        };
        let m = confidential(&[("jwks", json!({"keys": [jwk.clone()]}))]).unwrap();
        assert!(m.is_confidential());
        assert_eq!(m.token_endpoint_auth_signing_alg.as_deref(), Some("ES256"));
        assert_eq!(m.jwks, Some(json!({"keys": [jwk.clone()]})));
        let m = confidential(&[("jwks_uri", json!("https://app.example.com/jwks.json"))]).unwrap();
        assert_eq!(
            m.jwks_uri.as_deref(),
            Some("https://app.example.com/jwks.json")
        );

        // Neither, both, no signing alg, another alg, private key, no ES256 key.
        assert!(confidential(&[]).is_err());
        assert!(
            confidential(&[
                ("jwks", json!({"keys": [jwk.clone()]})),
                ("jwks_uri", json!("https://app.example.com/jwks.json")),
            ])
            .is_err()
        );
        assert!(
            confidential(&[
                ("jwks", json!({"keys": [jwk.clone()]})),
                ("token_endpoint_auth_signing_alg", Value::Null),
            ])
            .is_err()
        );
        assert!(
            confidential(&[
                ("jwks", json!({"keys": [jwk.clone()]})),
                ("token_endpoint_auth_signing_alg", json!("RS256")),
            ])
            .is_err()
        );
        let mut private = key.private_jwk();
        private["kid"] = json!("k1");
        assert!(confidential(&[("jwks", json!({"keys": [private]}))]).is_err());
        let k1 = TestKey::generate(Algorithm::K256);
        assert!(confidential(&[("jwks", json!({"keys": [k1.public_jwk()]}))]).is_err());
        assert!(confidential(&[("jwks", json!({"keys": []}))]).is_err());
    }
}
