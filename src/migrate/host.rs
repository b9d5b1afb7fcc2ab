//! A small XRPC client for talking to one PDS by its URL: JSON queries and procedures, and
//! streamed downloads and uploads (a repo CAR or a blob goes from one host to the other without
//! being held in memory). Used by the commands that act on an account across hosts.
//!
//! Unlike the server's own outbound client (`pds-identity`'s `SafeHttpClient`), this one talks to
//! loopback and private addresses: its hosts are named by the person running the command.

use std::time::Duration;

use serde_json::Value;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A host that stops sending for this long mid-response is given up on (the command can be run
/// again and continues where it stopped). No total timeout: a repo or a blob may be large.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
const USER_AGENT: &str = concat!("pds/", env!("CARGO_PKG_VERSION"));
/// The most of an error body read to report it.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The most of a JSON answer read (the largest, preferences or a page of missing blobs, are far
/// smaller): a host cannot make the command hold an endless body.
const MAX_JSON_BODY: usize = 16 * 1024 * 1024;

/// What went wrong talking to a host.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The host could not be reached, or the connection broke.
    #[error("{url}: {message}")]
    Transport { url: String, message: String },
    /// The host answered with an XRPC error.
    #[error("{method} on {host} failed: {status} {error}: {message}")]
    Xrpc {
        host: String,
        method: String,
        status: u16,
        error: String,
        message: String,
    },
    /// The host answered something that is not what the method returns.
    #[error("{method} on {host} answered unexpectedly: {message}")]
    Unexpected {
        host: String,
        method: String,
        message: String,
    },
}

impl HostError {
    /// The XRPC error name, when the host answered with one.
    pub fn xrpc_error(&self) -> Option<&str> {
        match self {
            HostError::Xrpc { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The HTTP status, when the host answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            HostError::Xrpc { status, .. } => Some(*status),
            _ => None,
        }
    }
}

type Result<T> = std::result::Result<T, HostError>;

/// One PDS, reached at its base URL, optionally as a signed-in account or as its operator.
#[derive(Clone)]
pub struct Host {
    base: String,
    http: reqwest::Client,
    auth: Auth,
}

/// How requests to a host are authenticated.
#[derive(Clone)]
enum Auth {
    None,
    /// An account's access token.
    Bearer(String),
    /// The operator: HTTP Basic `admin:<password>`.
    Admin(String),
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("base", &self.base).finish()
    }
}

impl Host {
    /// The host at `base` (`https://pds.example.com`), not signed in.
    pub fn new(base: &str) -> Result<Host> {
        let base = base.trim_end_matches('/').to_owned();
        let transport = |message: String| HostError::Transport {
            url: base.clone(),
            message,
        };
        let url = url::Url::parse(&base).map_err(|e| transport(format!("not a URL: {e}")))?;
        let Some(host) = url.host() else {
            return Err(transport("not an http(s) URL with a host".to_owned()));
        };
        match url.scheme() {
            "https" => {}
            // The account password goes to these hosts: in clear text only over loopback.
            "http" if is_loopback(&host) => {}
            "http" => {
                return Err(transport(
                    "plain http sends the account password unencrypted: use https (http is \
                     accepted only for loopback addresses)"
                        .to_owned(),
                ));
            }
            _ => return Err(transport("not an http(s) URL with a host".to_owned())),
        }
        let tls = pds_identity::tls_config().map_err(|e| transport(e.to_string()))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(USER_AGENT)
            // A redirect would send the password (a procedure's body) on to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .http1_only()
            .build()
            .map_err(|e| transport(format!("building the HTTP client: {e}")))?;
        Ok(Host {
            base,
            http,
            auth: Auth::None,
        })
    }

    /// The same host, as the account whose access token this is.
    pub fn signed_in(&self, access_token: &str) -> Host {
        Host {
            auth: Auth::Bearer(access_token.to_owned()),
            ..self.clone()
        }
    }

    /// The same host, as its operator (the admin password, for `com.atproto.admin.*`).
    pub fn as_admin(&self, admin_password: &str) -> Host {
        Host {
            auth: Auth::Admin(admin_password.to_owned()),
            ..self.clone()
        }
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, nsid: &str) -> reqwest::RequestBuilder {
        self.request_with(method, nsid, &[])
    }

    fn request_with(
        &self,
        method: reqwest::Method,
        nsid: &str,
        params: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let mut url = format!("{}/xrpc/{nsid}", self.base);
        if !params.is_empty() {
            url.push('?');
            url.push_str(
                &url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params)
                    .finish(),
            );
        }
        let request = self.http.request(method, url);
        match &self.auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Admin(password) => request.basic_auth("admin", Some(password)),
        }
    }

    /// A query (GET) with these parameters; its JSON output.
    pub async fn query(&self, nsid: &str, params: &[(&str, &str)]) -> Result<Value> {
        let response = self
            .send(nsid, self.request_with(reqwest::Method::GET, nsid, params))
            .await?;
        self.json(nsid, response).await
    }

    /// A procedure (POST) with a JSON input (`Null`: none); its JSON output (`Null` when it has
    /// none).
    pub async fn procedure(&self, nsid: &str, input: &Value) -> Result<Value> {
        self.procedure_as(nsid, input, None).await
    }

    /// A procedure sent with `bearer` instead of the session's token (a service-auth token).
    pub async fn procedure_as(
        &self,
        nsid: &str,
        input: &Value,
        bearer: Option<&str>,
    ) -> Result<Value> {
        let mut request = self.request(reqwest::Method::POST, nsid);
        // `Null` is a method without input: no body at all, as such methods expect.
        if !input.is_null() {
            request = request
                .header("content-type", "application/json")
                .body(serde_json::to_vec(input).expect("JSON values serialize"));
        }
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = self.send(nsid, request).await?;
        self.json(nsid, response).await
    }

    /// A query whose output is streamed (a CAR, a blob): the response, status checked.
    pub async fn download(&self, nsid: &str, params: &[(&str, &str)]) -> Result<reqwest::Response> {
        self.send(nsid, self.request_with(reqwest::Method::GET, nsid, params))
            .await
    }

    /// A procedure whose input is streamed, of this content type; its JSON output.
    pub async fn upload(
        &self,
        nsid: &str,
        content_type: &str,
        body: reqwest::Body,
    ) -> Result<Value> {
        let request = self
            .request(reqwest::Method::POST, nsid)
            .header("content-type", content_type)
            .body(body);
        let response = self.send(nsid, request).await?;
        self.json(nsid, response).await
    }

    async fn send(
        &self,
        nsid: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let response = request.send().await.map_err(|e| self.transport(nsid, &e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let body = read_capped(response, MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let text = |key: &str| parsed[key].as_str().map(str::to_owned);
        Err(HostError::Xrpc {
            host: self.base.clone(),
            method: nsid.to_owned(),
            status,
            error: text("error").unwrap_or_else(|| format!("HTTP {status}")),
            message: text("message")
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect()),
        })
    }

    async fn json(&self, nsid: &str, mut response: reqwest::Response) -> Result<Value> {
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport(nsid, &e))?
        {
            if body.len() + chunk.len() > MAX_JSON_BODY {
                return Err(self.unexpected(
                    nsid,
                    format!("the answer is larger than {MAX_JSON_BODY} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(|e| self.unexpected(nsid, format!("not JSON: {e}")))
    }

    fn transport(&self, nsid: &str, e: &reqwest::Error) -> HostError {
        // reqwest's Display leaves out the cause ("error sending request"): name it.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        HostError::Transport {
            url: format!("{}/xrpc/{nsid}", self.base),
            message,
        }
    }

    /// An answer that is not what `nsid` returns.
    pub fn unexpected(&self, nsid: &str, message: impl Into<String>) -> HostError {
        HostError::Unexpected {
            host: self.base.clone(),
            method: nsid.to_owned(),
            message: message.into(),
        }
    }
}

async fn read_capped(mut response: reqwest::Response, cap: usize) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        body.extend_from_slice(&chunk);
        if body.len() >= cap {
            body.truncate(cap);
            break;
        }
    }
    Some(body)
}

/// The string at `key` of a method's output, or the error saying it is missing.
pub fn text_field(host: &Host, nsid: &str, output: &Value, key: &str) -> Result<String> {
    output[key]
        .as_str()
        .map(str::to_owned)
        // Only the key: the output may hold tokens.
        .ok_or_else(|| host.unexpected(nsid, format!("no `{key}` in the answer")))
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_goes_in_clear_text_only_to_loopback() {
        for ok in [
            "https://pds.example.com",
            "http://127.0.0.1:2583",
            "http://localhost:2583/",
            "http://[::1]:2583",
        ] {
            assert!(Host::new(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://pds.example.com",
            "http://10.0.0.2",
            "ftp://pds.example.com",
            "pds.example.com",
        ] {
            assert!(Host::new(refused).is_err(), "{refused}");
        }
    }
}
