//! `/oauth/authorize`: where the app sends the person's browser with its pushed request.
//!
//! - `GET` shows the consent page for an account signed in on this browser (the one the app
//!   hinted at with `login_hint`, or the one picked), else the sign-in page, which also lists
//!   the accounts already signed in here.
//! - `POST /oauth/authorize/sign-in` checks the account password (app passwords are not
//!   accepted here: they exist for apps that cannot do OAuth) and comes back to `GET`.
//! - `POST /oauth/authorize/consent` is the Authorize or Deny button: the browser goes back
//!   to the app's redirect URI with a code, or with `error=access_denied`, and always with
//!   `state` and `iss` (RFC 9207).

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pds_permissions::ScopeSet;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::Form;
use super::par::REQUEST_URI_PREFIX;
use crate::oauth::clients::Client;
use crate::oauth::device::{self, Device};
use crate::oauth::pages::{self, KnownAccount};
use crate::oauth::store::{self, AuthorizationRequest, ResponseMode};
use crate::oauth::{CODE_TTL_SECS, DEVICE_SIGN_IN_TTL_SECS, tokens};
use crate::state::AppState;

pub const PATH: &str = "/oauth/authorize";
pub const SIGN_IN_PATH: &str = "/oauth/authorize/sign-in";
pub const CONSENT_PATH: &str = "/oauth/authorize/consent";

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    client_id: Option<String>,
    request_uri: Option<String>,
    /// The account picked on the sign-in page.
    account: Option<String>,
    /// "Use another account": the sign-in form even though accounts are signed in here.
    switch: Option<String>,
}

fn enc(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

/// The page's own URL for a request.
fn page_url(client_id: &str, request_uri: &str) -> String {
    format!(
        "{PATH}?client_id={}&request_uri={}",
        enc(client_id),
        enc(request_uri)
    )
}

fn expired_page() -> Response {
    pages::error(
        StatusCode::BAD_REQUEST,
        "This sign-in link has expired",
        "Go back to the app and start signing in again.",
    )
}

/// A page response, with the device cookie when the device is new.
fn with_device(oauth: &crate::oauth::OAuth, device: &Device, mut response: Response) -> Response {
    if device.is_new {
        response
            .headers_mut()
            .append(header::SET_COOKIE, device::set_cookie(oauth, device));
    }
    response
}

/// The pending request a page is about, with its client.
async fn load(
    state: &AppState,
    client_id: Option<&str>,
    request_uri: Option<&str>,
) -> Result<(AuthorizationRequest, std::sync::Arc<Client>), Response> {
    let (Some(client_id), Some(request_uri)) = (client_id, request_uri) else {
        return Err(pages::error(
            StatusCode::BAD_REQUEST,
            "Incomplete sign-in link",
            "The app did not say who it is or what it asks for. Go back to the app and try again.",
        ));
    };
    let Some(id) = request_uri
        .strip_prefix(REQUEST_URI_PREFIX)
        .map(str::to_owned)
    else {
        return Err(expired_page());
    };
    let now = crate::auth::now_secs();
    let request = state
        .db
        .read(move |s| {
            store::pending_request(s.connection(), &id, now)
                .map_err(crate::accounts::AccountError::from)
        })
        .await
        .map_err(|e| {
            pages::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                &internal(e),
            )
        })?
        .filter(|r| r.client_id == client_id)
        .ok_or_else(expired_page)?;
    let client = state.oauth.clients.get(client_id).await.map_err(|e| {
        pages::error(
            StatusCode::BAD_REQUEST,
            "This app cannot sign in",
            &e.description,
        )
    })?;
    Ok((request, client))
}

fn internal(e: impl std::fmt::Display) -> String {
    tracing::error!(error = %e, "oauth page: internal error");
    "Please try again in a moment.".into()
}

/// The accounts signed in on a device recently, as shown: active accounts only.
async fn known_accounts(state: &AppState, device: &Device) -> Vec<KnownAccount> {
    if device.is_new {
        return Vec::new();
    }
    let id = device.id.clone();
    let since = crate::auth::now_secs() - DEVICE_SIGN_IN_TTL_SECS;
    state
        .db
        .read(move |s| {
            let conn = s.connection();
            let mut known = Vec::new();
            for did in store::device_accounts(conn, &id, since)? {
                if let Some(account) = crate::accounts::by_did(conn, &did)?
                    && account.active()
                {
                    known.push(KnownAccount {
                        did: account.did,
                        handle: account.handle,
                    });
                }
            }
            Ok::<_, crate::accounts::AccountError>(known)
        })
        .await
        .unwrap_or_default()
}

/// The redirect back to the app, in the request's response mode.
fn respond_to_client(
    state: &AppState,
    request: &AuthorizationRequest,
    result: &[(&str, &str)],
) -> Response {
    let params = &request.parameters;
    let mut fields: Vec<(&str, &str)> = vec![("iss", state.oauth.issuer.as_str())];
    if let Some(s) = &params.state {
        fields.push(("state", s));
    }
    fields.extend_from_slice(result);
    let encoded: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter())
        .finish();
    let location = match params.response_mode {
        ResponseMode::FormPost => return pages::form_post(&params.redirect_uri, &fields),
        ResponseMode::Query => {
            let sep = if params.redirect_uri.contains('?') {
                '&'
            } else {
                '?'
            };
            format!("{}{sep}{encoded}", params.redirect_uri)
        }
        ResponseMode::Fragment => format!("{}#{encoded}", params.redirect_uri),
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(&location) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => pages::error(
            StatusCode::BAD_REQUEST,
            "Cannot return to the app",
            "Its address is not valid.",
        ),
    }
}

/// What the consent page lists: the scope in words, permission sets under their own titles
/// (fetched again from the cache they were put in when the request was pushed).
async fn description(state: &AppState, scope: &str) -> Vec<(String, String)> {
    match ScopeSet::parse(scope) {
        Ok(mut set) => {
            let _ = state.oauth.permission_sets.expand(state, &mut set).await;
            set.describe()
        }
        Err(_) => vec![(scope.to_owned(), String::new())],
    }
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    let device = device::from_request(&headers);
    let (request, client) = match load(
        &state,
        query.client_id.as_deref(),
        query.request_uri.as_deref(),
    )
    .await
    {
        Ok(found) => found,
        Err(page) => return with_device(&state.oauth, &device, page),
    };
    let known = known_accounts(&state, &device).await;
    let params = &request.parameters;
    let hint = params
        .login_hint
        .as_deref()
        .map(|h| h.trim().trim_start_matches('@').to_lowercase());
    let matches_hint = |a: &KnownAccount| {
        hint.as_deref()
            .is_none_or(|h| a.did.eq_ignore_ascii_case(h) || a.handle == h)
    };
    let prompt = params.prompt.as_deref();
    // No page at all: always with prompt=none (the app hears why not, if not), and when the
    // app names the account, that account is signed in here and it already approved all the
    // app asks for (signing in to an app again is then one redirect, as with the reference).
    let unattended = prompt == Some("none")
        || (prompt.is_none()
            && hint.is_some()
            && query.account.is_none()
            && query.switch.is_none());
    // Whether an account must be asked, once looked up (a page view asks about one account).
    let mut asked_about: Option<(&str, bool)> = None;
    if unattended {
        let matching: Vec<&KnownAccount> = known.iter().filter(|a| matches_hint(a)).collect();
        let outcome = match matching.as_slice() {
            [] => Err("login_required"),
            [one] => {
                let needed = consent_required(&state, &one.did, &request).await;
                asked_about = Some((&one.did, needed));
                match needed {
                    true => Err("consent_required"),
                    false => Ok(one.did.clone()),
                }
            }
            _ => Err("account_selection_required"),
        };
        let response = match outcome {
            Ok(did) => Some(approve(&state, &request, &did).await),
            Err(error) if prompt == Some("none") => {
                Some(respond_to_client(&state, &request, &[("error", error)]))
            }
            Err(_) => None,
        };
        if let Some(response) = response {
            return with_device(&state.oauth, &device, response);
        }
    }
    let selected = match (&query.account, prompt) {
        (_, Some("login")) if query.account.is_none() => None,
        (Some(did), _) => known.iter().find(|a| &a.did == did),
        (None, Some("select_account")) => None,
        (None, _) => known.iter().find(|a| hint.is_some() && matches_hint(a)),
    };
    // An account picked (or just signed in) that already approved everything asked for goes
    // straight back to the app.
    let needs_consent = match (selected, asked_about) {
        _ if query.switch.is_some() => true,
        (Some(account), Some((did, needed))) if did == account.did => needed,
        (Some(account), _) => consent_required(&state, &account.did, &request).await,
        (None, _) => true,
    };
    if let Some(account) = selected
        && !needs_consent
    {
        let response = approve(&state, &request, &account.did).await;
        return with_device(&state.oauth, &device, response);
    }
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", request.id);
    let csrf = device::csrf_token(&state.oauth, &device);
    let here = page_url(&request.client_id, &request_uri);
    let name = client.display_name();
    let response = match selected {
        Some(account) if query.switch.is_none() => {
            let permissions = description(&state, &params.scope).await;
            pages::consent(&pages::Consent {
                client_name: &name,
                client_id: &request.client_id,
                client_uri: client.metadata.client_uri.as_deref(),
                account,
                permissions: &permissions,
                action: CONSENT_PATH,
                hidden: &[
                    ("csrf", &csrf),
                    ("client_id", &request.client_id),
                    ("request_uri", &request_uri),
                    ("account", &account.did),
                ],
                switch_account: &format!("{here}&switch=1"),
            })
        }
        _ => {
            let prefill = params
                .login_hint
                .as_deref()
                .filter(|h| !h.starts_with("did:"));
            let offer_known = query.switch.is_none() && prompt != Some("login");
            sign_in_form(
                StatusCode::OK,
                &SignInForm {
                    csrf: &csrf,
                    request: &request,
                    app_name: &name,
                    identifier: prefill,
                    error: None,
                    known_accounts: if offer_known { &known } else { &[] },
                    choose_action: Some(&here),
                },
            )
        }
    };
    with_device(&state.oauth, &device, response)
}

/// Whether `did` must be asked before `request` is approved: it never approved this app, the
/// app asks for more than it approved before (compared by what the permissions grant, so a
/// permission set that grew since is asked about again), or the app asks for the page
/// (`prompt=consent`).
async fn consent_required(state: &AppState, did: &str, request: &AuthorizationRequest) -> bool {
    if request.parameters.prompt.as_deref() == Some("consent") {
        return true;
    }
    let (did, client_id) = (did.to_owned(), request.client_id.clone());
    let approved = state
        .db
        .read(move |s| {
            store::authorized_permissions(s.connection(), &did, &client_id)
                .map_err(crate::accounts::AccountError::from)
        })
        .await;
    let Ok(Some(approved)) = approved else {
        return true;
    };
    match (
        ScopeSet::parse(&request.parameters.permissions),
        ScopeSet::parse(&approved),
    ) {
        (Ok(asked), Ok(approved)) => !asked.is_subset_of(&approved),
        _ => true,
    }
}

/// Approves the request for `did` and sends the browser back to the app with a one-time
/// code; what was approved is remembered for the next sign-in to the same app.
async fn approve(state: &AppState, request: &AuthorizationRequest, did: &str) -> Response {
    let code = tokens::random_token("cod-");
    let now = crate::auth::now_secs();
    let (id, did, client_id, permissions, stored_code) = (
        request.id.clone(),
        did.to_owned(),
        request.client_id.clone(),
        request.parameters.permissions.clone(),
        code.clone(),
    );
    let approved = state
        .db
        .write(move |w| {
            let conn = w.tx.connection();
            let approved =
                store::approve_request(conn, &id, &did, &stored_code, now + CODE_TTL_SECS, now)
                    .and_then(|approved| {
                        if approved {
                            store::remember_authorization(
                                conn,
                                &did,
                                &client_id,
                                &permissions,
                                now,
                            )?;
                        }
                        Ok(approved)
                    });
            approved.map_err(pds_storage::StorageError::from)
        })
        .await;
    match approved {
        Ok(true) => respond_to_client(state, request, &[("code", &code)]),
        Ok(false) => expired_page(),
        Err(e) => pages::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            &internal(e),
        ),
    }
}

/// What the sign-in form for a pending request shows.
struct SignInForm<'a> {
    csrf: &'a str,
    request: &'a AuthorizationRequest,
    app_name: &'a str,
    identifier: Option<&'a str>,
    error: Option<&'a str>,
    known_accounts: &'a [KnownAccount],
    /// The page that picks one of `known_accounts` (this page's own URL).
    choose_action: Option<&'a str>,
}

fn sign_in_form(status: StatusCode, form: &SignInForm<'_>) -> Response {
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", form.request.id);
    pages::sign_in(
        status,
        &pages::SignIn {
            heading: "Sign in",
            lead: &format!("to continue to {}", form.app_name),
            action: SIGN_IN_PATH,
            hidden: &[
                ("csrf", form.csrf),
                ("client_id", &form.request.client_id),
                ("request_uri", &request_uri),
            ],
            identifier: form.identifier,
            error: form.error,
            known_accounts: form.known_accounts,
            choose_action: form.choose_action,
        },
    )
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn forbidden_post() -> Response {
    pages::error(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "Reload the page and try again. (The form did not come from this server's page, or this browser's cookies are off.)",
    )
}

/// Why a page's sign-in was refused, as the page says it.
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
    /// For a rate-limit refusal: the seconds until an attempt is free (`Retry-After`).
    pub retry_after_secs: Option<u64>,
}

impl Refusal {
    fn unauthorized(message: &str) -> Refusal {
        Refusal {
            status: StatusCode::UNAUTHORIZED,
            message: message.to_owned(),
            retry_after_secs: None,
        }
    }

    /// The page that says so, with `Retry-After` when there is a wait.
    pub fn headers_on(&self, mut page: Response) -> Response {
        if let Some(secs) = self.retry_after_secs {
            page.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        page
    }
}

/// Checks an account's password for a page: the account password of an active account. The
/// attempt spends from the same rate limits as `createSession` (per client, `client` being
/// its [`crate::api::rate_limit::client_of`] key, and per identifier), so the pages are no way
/// around them.
pub async fn check_password(
    state: &AppState,
    client: &str,
    identifier: &str,
    password: &str,
) -> Result<crate::accounts::Account, Refusal> {
    if let Err(wait) = state.rate_limiter.take_login(client, Some(identifier)) {
        let secs = wait.as_secs().max(1);
        let minutes = secs.div_ceil(60);
        return Err(Refusal {
            retry_after_secs: Some(secs),
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!(
                "Too many sign-in attempts. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            ),
        });
    }
    match crate::accounts::service::login(state, identifier, password).await {
        Ok((account, crate::auth::Scope::Full, _)) if account.takendown => {
            Err(Refusal::unauthorized("This account has been taken down."))
        }
        Ok((account, crate::auth::Scope::Full, _)) => Ok(account),
        Ok(_) => Err(Refusal::unauthorized(
            "Use your account password here, not an app password.",
        )),
        Err(crate::accounts::AccountError::BadCredentials) => {
            Err(Refusal::unauthorized("Wrong handle, email or password."))
        }
        Err(e) => {
            tracing::error!(error = %e, "oauth sign-in failed");
            Err(Refusal::unauthorized(
                "Signing in failed. Please try again.",
            ))
        }
    }
}

pub async fn sign_in(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = Form::parse(&body) else {
        return forbidden_post();
    };
    let Some(device) = device::existing(&headers) else {
        return forbidden_post();
    };
    if !device::check_post(&state.oauth, &headers, &device, form.get("csrf")) {
        return forbidden_post();
    }
    let (request, app) = match load(&state, form.get("client_id"), form.get("request_uri")).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", request.id);
    let identifier = form.get("identifier").unwrap_or_default();
    let client = crate::api::rate_limit::client_of(&extensions, &headers);
    let password = form.get("password").unwrap_or_default();
    match check_password(&state, &client, identifier, password).await {
        Ok(account) => {
            let (id, did, now) = (
                device.id.clone(),
                account.did.clone(),
                crate::auth::now_secs(),
            );
            let stored = state
                .db
                .write(move |w| {
                    store::sign_in_on_device(w.tx.connection(), &id, &did, now)
                        .map_err(pds_storage::StorageError::from)
                })
                .await;
            if let Err(e) = stored {
                return pages::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    &internal(e),
                );
            }
            see_other(&format!(
                "{}&account={}",
                page_url(&request.client_id, &request_uri),
                enc(&account.did)
            ))
        }
        Err(refusal) => {
            let csrf = device::csrf_token(&state.oauth, &device);
            refusal.headers_on(sign_in_form(
                refusal.status,
                &SignInForm {
                    csrf: &csrf,
                    request: &request,
                    app_name: &app.display_name(),
                    identifier: Some(identifier),
                    error: Some(&refusal.message),
                    known_accounts: &[],
                    choose_action: None,
                },
            ))
        }
    }
}

pub async fn consent(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(form) = Form::parse(&body) else {
        return forbidden_post();
    };
    let Some(device) = device::existing(&headers) else {
        return forbidden_post();
    };
    if !device::check_post(&state.oauth, &headers, &device, form.get("csrf")) {
        return forbidden_post();
    }
    let (request, _client) =
        match load(&state, form.get("client_id"), form.get("request_uri")).await {
            Ok(found) => found,
            Err(page) => return page,
        };
    let Some(did) = form.get("account").map(str::to_owned) else {
        return forbidden_post();
    };
    // The account must be signed in on this browser: the password was given here, recently.
    if !known_accounts(&state, &device)
        .await
        .iter()
        .any(|a| a.did == did)
    {
        return see_other(&page_url(
            &request.client_id,
            &format!("{REQUEST_URI_PREFIX}{}", request.id),
        ));
    }
    let id = request.id.clone();
    match form.get("decision") {
        Some("allow") => approve(&state, &request, &did).await,
        Some("deny") => {
            let deleted = state
                .db
                .write(move |w| {
                    store::delete_request(w.tx.connection(), &id)
                        .map_err(pds_storage::StorageError::from)
                })
                .await;
            if let Err(e) = deleted {
                return pages::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    &internal(e),
                );
            }
            respond_to_client(
                &state,
                &request,
                &[
                    ("error", "access_denied"),
                    ("error_description", "The user denied the request"),
                ],
            )
        }
        _ => forbidden_post(),
    }
}
