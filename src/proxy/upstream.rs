//! Talking to the upstream service: sending a forwarded request within the time limits, and
//! handing its answer back, streamed when it succeeds and as an XRPC error when it fails.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{CONTENT_ENCODING, CONTENT_LANGUAGE, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http_body::{Body as HttpBody, Frame, SizeHint};
use pds_identity::{IdentityError, StreamingHttpClient};

use super::ProxyError;
use super::route::Source;
use crate::api::ApiError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Response headers passed back besides the content's own: the repo revision the service has
/// indexed (read-after-write), the labelers it applied, and when to retry.
const ATPROTO_RESPONSE_HEADERS: [&str; 3] = [
    "atproto-repo-rev",
    "atproto-content-labelers",
    "retry-after",
];

/// How much of an upstream error body is read to find its `error` and `message`.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A request ready to go to a service.
pub struct Outbound {
    pub method: Method,
    pub url: String,
    pub headers: HeaderMap,
    /// The client's body, streamed on (procedures only).
    pub body: Option<Body>,
    pub source: Source,
}

/// The clients and limits of forwarding.
#[derive(Debug, Clone)]
pub struct Upstreams {
    /// For services the operator configured: any address (an AppView on the same network).
    configured: StreamingHttpClient,
    /// For endpoints read from a DID document a request named: the address policy of every
    /// other user-influenced fetch (public addresses only, outside dev mode).
    named: StreamingHttpClient,
    headers_timeout: Duration,
    body_timeout: Duration,
}

impl Upstreams {
    pub fn new(
        configured: StreamingHttpClient,
        named: StreamingHttpClient,
        headers_timeout: Duration,
        body_timeout: Duration,
    ) -> Upstreams {
        Upstreams {
            configured,
            named,
            headers_timeout,
            body_timeout,
        }
    }

    /// The address policies: for configured services, and for endpoints DID documents name.
    pub fn policies(&self) -> (pds_identity::AddressPolicy, pds_identity::AddressPolicy) {
        (self.configured.policy(), self.named.policy())
    }

    /// Sends `out` and waits for the response headers, at most the headers timeout.
    pub async fn send(&self, out: Outbound) -> Result<reqwest::Response, ProxyError> {
        let client = match out.source {
            Source::Configured => &self.configured,
            Source::DidDocument => &self.named,
        };
        let url = out.url;
        let mut request = client
            .request(out.method, &url)
            .map_err(|e| no_answer(e, &url))?
            .headers(out.headers);
        // The headers timeout counts from the end of the upload: a large or slow client body
        // is not the upstream being slow. The upload itself may not pause longer than the body
        // timeout.
        let mut uploaded = None;
        if let Some(body) = out.body {
            let (done, finished) = tokio::sync::oneshot::channel::<()>();
            let mut done = Some(done);
            let end = futures_util::stream::poll_fn(move |_| {
                if let Some(done) = done.take() {
                    let _ = done.send(());
                }
                Poll::Ready(None::<Result<Bytes, axum::Error>>)
            });
            let upload = Body::new(IdleTimeout::new(body, self.body_timeout, "client request"))
                .into_data_stream()
                .chain(end);
            request = request.body(reqwest::Body::wrap_stream(upload));
            uploaded = Some(finished);
        }
        let send = request.send();
        tokio::pin!(send);
        let early = match uploaded {
            // An upstream may answer before the upload ends (a refusal).
            Some(finished) => tokio::select! {
                answer = &mut send => Some(answer),
                _ = finished => None,
            },
            None => None,
        };
        let answer = match early {
            Some(answer) => Ok(answer),
            None => tokio::time::timeout(self.headers_timeout, &mut send).await,
        };
        match answer {
            Err(_) => {
                tracing::warn!(%url, timeout = ?self.headers_timeout, "upstream did not answer in time");
                Err(ProxyError::Timeout)
            }
            Ok(Err(e)) if over_size_limit(&e) => Err(ProxyError::TooLarge),
            Ok(Err(e)) => Err(no_answer(
                StreamingHttpClient::describe_error(e, &url),
                &url,
            )),
            Ok(Ok(response)) => Ok(response),
        }
    }

    /// The answer to give the client: a success streamed as it arrives (a pause longer than the
    /// body timeout ends it), an error as the XRPC error it stands for.
    pub async fn relay(&self, response: reqwest::Response) -> Response {
        if response.status().as_u16() >= 400 {
            return self.read_error(response).await.into_response();
        }
        self.stream(response)
    }

    /// A successful response, streamed.
    pub fn stream(&self, response: reqwest::Response) -> Response {
        let status = response.status();
        let headers = response_headers(response.headers(), true);
        let body = IdleTimeout::new(
            reqwest::Body::from(response),
            self.body_timeout,
            "upstream response",
        );
        let mut out = Response::new(Body::new(body));
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        out
    }

    /// An error response, read (a little of it) for its `error` and `message`.
    pub async fn read_error(&self, mut response: reqwest::Response) -> UpstreamError {
        let status = response.status();
        let headers = response_headers(response.headers(), false);
        let json_or_unknown = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(is_json);
        let mut parsed = (None, None);
        if json_or_unknown {
            let mut body = Vec::new();
            let read = async {
                loop {
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            body.extend_from_slice(&chunk);
                            if body.len() > MAX_ERROR_BODY {
                                return false;
                            }
                        }
                        Ok(None) => return true,
                        // Cut off: what came is not the whole error.
                        Err(_) => return false,
                    }
                }
            };
            let complete = tokio::time::timeout(self.body_timeout, read)
                .await
                .unwrap_or(false);
            if complete && let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body) {
                let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_owned);
                parsed = (text("error"), text("message"));
            }
        }
        UpstreamError {
            status,
            error: parsed.0,
            message: parsed.1,
            headers,
        }
    }

    /// Reads a successful response whole, when it is at most `limit` bytes; a longer one comes
    /// back as the streamed response, with what was read already in front of the rest.
    pub async fn read_whole(
        &self,
        mut response: reqwest::Response,
        limit: u64,
    ) -> Result<Read, ProxyError> {
        let declared = response.content_length();
        if declared.is_some_and(|len| len > limit) {
            return Ok(Read::Streamed(self.stream(response)));
        }
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::with_capacity(declared.unwrap_or(0) as usize);
        loop {
            let chunk = match tokio::time::timeout(self.body_timeout, response.chunk()).await {
                Err(_) => return Err(ProxyError::Timeout),
                Ok(Err(e)) => {
                    let url = response.url().to_string();
                    return Err(no_answer(
                        StreamingHttpClient::describe_error(e, &url),
                        &url,
                    ));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => chunk,
            };
            body.extend_from_slice(&chunk);
            if body.len() as u64 > limit {
                // Too large to hold: what was read goes first, then the rest as it comes.
                let relayed = response_headers(&headers, true);
                let rest = IdleTimeout::new(
                    reqwest::Body::from(response),
                    self.body_timeout,
                    "upstream response",
                );
                let read = futures_util::stream::once(async move { Ok(Bytes::from(body)) });
                let stream = read.chain(Body::new(rest).into_data_stream());
                let mut out = Response::new(Body::from_stream(stream));
                *out.status_mut() = status;
                *out.headers_mut() = relayed;
                return Ok(Read::Streamed(out));
            }
        }
        Ok(Read::Whole(WholeResponse {
            status,
            headers,
            body: Bytes::from(body),
        }))
    }
}

/// What [`Upstreams::read_whole`] gives.
pub enum Read {
    Whole(WholeResponse),
    /// Too large to hold: passed on as it comes.
    Streamed(Response),
}

/// A successful upstream response, read whole.
pub struct WholeResponse {
    pub status: StatusCode,
    /// The headers as the upstream sent them.
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl WholeResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the body is plain JSON (not compressed, JSON or no content type).
    pub fn is_plain_json(&self) -> bool {
        is_plain_json(&self.headers)
    }

    /// The response as received.
    pub fn into_response(self) -> Response {
        let headers = response_headers(&self.headers, true);
        let mut out = Response::new(Body::from(self.body));
        *out.status_mut() = self.status;
        *out.headers_mut() = headers;
        out
    }

    /// The headers to send along with a body this server rewrote: the upstream's, without
    /// those that described the original body.
    pub fn headers_for_rewritten_body(&self) -> HeaderMap {
        let mut headers = response_headers(&self.headers, true);
        headers.remove(CONTENT_LENGTH);
        headers.remove(CONTENT_ENCODING);
        headers
    }
}

/// An upstream's error answer: passed on with its status (a 500 becomes 502
/// `UpstreamFailure`), its `error` name and `message` when it gave them, and the atproto headers.
#[derive(Debug, Clone)]
pub struct UpstreamError {
    pub status: StatusCode,
    pub error: Option<String>,
    pub message: Option<String>,
    pub headers: HeaderMap,
}

impl UpstreamError {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn api_error(&self) -> ApiError {
        let status = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            StatusCode::BAD_GATEWAY
        } else {
            self.status
        };
        let plain = ApiError::from_status(status, self.message.clone().unwrap_or_default());
        match &self.error {
            Some(name) if !name.is_empty() => {
                ApiError::new(status, name.clone(), plain.message().to_owned())
            }
            _ => plain,
        }
    }
}

impl IntoResponse for UpstreamError {
    fn into_response(self) -> Response {
        let mut response = self.api_error().into_response();
        // Replaced as a whole, so repeated upstream headers all come back.
        for name in self.headers.keys() {
            response.headers_mut().remove(name);
        }
        for (name, value) in &self.headers {
            response.headers_mut().append(name.clone(), value.clone());
        }
        response
    }
}

/// The response headers passed back: the content's own (when the body is passed on as it is)
/// and atproto's.
fn response_headers(upstream: &HeaderMap, with_content: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let content = [
        CONTENT_LENGTH,
        CONTENT_ENCODING,
        CONTENT_TYPE,
        CONTENT_LANGUAGE,
    ];
    let atproto = ATPROTO_RESPONSE_HEADERS.map(HeaderName::from_static);
    let names = content
        .iter()
        .filter(|_| with_content)
        .chain(atproto.iter());
    for name in names {
        for value in upstream.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

/// `application/json`, or `application/<something>+json`.
pub fn is_json(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// What a request that never got an answer ran into, for the client; the detail goes to the
/// log (it names hosts and addresses the client has no business seeing).
fn no_answer(e: IdentityError, url: &str) -> ProxyError {
    match e {
        IdentityError::BlockedAddress { .. } => {
            tracing::info!(%url, error = %e, "refused to forward");
            ProxyError::Refused
        }
        IdentityError::Timeout(_) => {
            tracing::warn!(%url, error = %e, "upstream timed out");
            ProxyError::Timeout
        }
        e => {
            tracing::warn!(%url, error = %e, "upstream unreachable");
            ProxyError::Unreachable
        }
    }
}

/// A response body that ends with an error when the upstream pauses longer than `limit`
/// between two pieces of it (the client sees the response cut short).
struct IdleTimeout<B> {
    inner: B,
    limit: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// Whose body it is, for the error.
    what: &'static str,
}

impl<B> IdleTimeout<B> {
    fn new(inner: B, limit: Duration, what: &'static str) -> IdleTimeout<B> {
        IdleTimeout {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
            what,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the {what} paused longer than {limit:?}")]
struct BodyTimeout {
    what: &'static str,
    limit: Duration,
}

impl<B> HttpBody for IdleTimeout<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next_deadline = tokio::time::Instant::now() + this.limit;
                this.timer.as_mut().reset(next_deadline);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    tracing::warn!(limit = ?this.limit, body = this.what, "a forwarded body stalled; cut off");
                    Poll::Ready(Some(Err(Box::new(BodyTimeout {
                        what: this.what,
                        limit: this.limit,
                    }))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a request failed because the client's body went over the request size limit (the
/// limit's error is somewhere in the chain of causes).
fn over_size_limit(e: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = cause {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Whether a response with these headers has a plain JSON body (not compressed, JSON or no
/// content type).
pub fn is_plain_json(headers: &HeaderMap) -> bool {
    let header = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let identity =
        header(&CONTENT_ENCODING).is_none_or(|e| e.trim().eq_ignore_ascii_case("identity"));
    identity && header(&CONTENT_TYPE).is_none_or(is_json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/did+ld+json"));
        assert!(!is_json("text/html"));
        assert!(!is_json("application/vnd.ipld.car"));
    }

    #[test]
    fn only_content_and_atproto_headers_come_back() {
        let mut upstream = HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("content-length", "12"),
            ("atproto-repo-rev", "3l2abc"),
            ("atproto-content-labelers", "did:plc:labeler"),
            ("set-cookie", "session=1"),
            ("server", "appview"),
        ] {
            upstream.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let all = response_headers(&upstream, true);
        assert_eq!(all.len(), 4);
        assert_eq!(all["atproto-repo-rev"], "3l2abc");
        assert!(all.get("set-cookie").is_none());
        let error = response_headers(&upstream, false);
        assert_eq!(error.len(), 2);
        assert!(error.get("content-length").is_none());
    }

    #[test]
    fn upstream_errors_keep_their_names_and_a_500_is_an_upstream_failure() {
        let error = |status: u16, name: Option<&str>, message: Option<&str>| {
            UpstreamError {
                status: StatusCode::from_u16(status).unwrap(),
                error: name.map(str::to_owned),
                message: message.map(str::to_owned),
                headers: HeaderMap::new(),
            }
            .api_error()
        };
        let e = error(400, Some("NotFound"), Some("Post not found"));
        assert_eq!(
            (e.status().as_u16(), e.name(), e.message()),
            (400, "NotFound", "Post not found")
        );
        let e = error(500, None, Some("boom"));
        assert_eq!(
            (e.status().as_u16(), e.name(), e.message()),
            (502, "UpstreamFailure", "boom")
        );
        let e = error(404, None, None);
        assert_eq!(
            (e.status().as_u16(), e.name(), e.message()),
            (404, "NotFound", "Not Found")
        );
    }
}
