//! `/account`: the apps each account signed in on this browser has authorized, each with a
//! Revoke button (which ends its grant: its tokens stop working at once), and signing an
//! account out of this browser.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pds_permissions::ScopeSet;

use super::Form;
use super::authorize::check_password;
use crate::oauth::device::{self, Device};
use crate::oauth::pages::{self, AccountApps, AuthorizedApp, KnownAccount};
use crate::oauth::{DEVICE_SIGN_IN_TTL_SECS, store};
use crate::state::AppState;

pub const PATH: &str = "/account";
pub const SIGN_IN_PATH: &str = "/account/sign-in";
pub const REVOKE_PATH: &str = "/account/revoke";
pub const SIGN_OUT_PATH: &str = "/account/sign-out";

/// The day of a unix time, `YYYY-MM-DD`.
fn date(secs: i64) -> String {
    let full = crate::accounts::email_tokens::datetime_from_ms(secs.saturating_mul(1000));
    full.get(..10).unwrap_or(&full).to_owned()
}

/// The signed-in accounts of a device with their grants.
async fn accounts_with_apps(state: &AppState, device: &Device) -> Vec<AccountApps> {
    if device.is_new {
        return Vec::new();
    }
    let id = device.id.clone();
    let now = crate::auth::now_secs();
    let found = state
        .db
        .read(move |s| {
            let conn = s.connection();
            let mut out = Vec::new();
            for did in store::device_accounts(conn, &id, now - DEVICE_SIGN_IN_TTL_SECS)? {
                let Some(account) = crate::accounts::by_did(conn, &did)? else {
                    continue;
                };
                let grants = store::grants_of(conn, &did, now)?;
                out.push((account, grants));
            }
            Ok::<_, crate::accounts::AccountError>(out)
        })
        .await
        .unwrap_or_default();
    found
        .into_iter()
        .map(|(account, grants)| AccountApps {
            account: KnownAccount {
                did: account.did,
                handle: account.handle,
            },
            apps: grants
                .into_iter()
                .map(|g| AuthorizedApp {
                    name: g.client_name.clone().unwrap_or_else(|| {
                        url::Url::parse(&g.client_id)
                            .ok()
                            .and_then(|u| u.host_str().map(str::to_owned))
                            .unwrap_or_else(|| g.client_id.clone())
                    }),
                    permissions: ScopeSet::parse(&g.scope)
                        .map(|s| s.describe())
                        .unwrap_or_default(),
                    since: date(g.created_at),
                    last_used: date(g.refreshed_at),
                    client_id: g.client_id,
                    grant_id: g.id,
                })
                .collect(),
        })
        .collect()
}

fn sign_in_page(
    state: &AppState,
    device: &Device,
    status: StatusCode,
    error: Option<&str>,
    identifier: Option<&str>,
) -> Response {
    let csrf = device::csrf_token(&state.oauth, device);
    pages::sign_in(
        status,
        &pages::SignIn {
            heading: "Sign in",
            lead: "to manage your account and the apps you use with it",
            action: SIGN_IN_PATH,
            hidden: &[("csrf", &csrf)],
            identifier,
            error,
            known_accounts: &[],
            choose_action: None,
        },
    )
}

pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let device = device::from_request(&headers);
    let accounts = accounts_with_apps(&state, &device).await;
    let mut response = if accounts.is_empty() {
        sign_in_page(&state, &device, StatusCode::OK, None, None)
    } else {
        let csrf = device::csrf_token(&state.oauth, &device);
        pages::account(&accounts, &csrf, REVOKE_PATH, SIGN_OUT_PATH, None)
    };
    if device.is_new {
        response.headers_mut().append(
            header::SET_COOKIE,
            device::set_cookie(&state.oauth, &device),
        );
    }
    response
}

fn back_to_account() -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(PATH));
    response
}

fn forbidden_post() -> Response {
    pages::error(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "Reload the page and try again.",
    )
}

/// A checked form post from a known device.
fn checked_post(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Option<(Device, Form)> {
    let form = Form::parse(body).ok()?;
    let device = device::existing(headers)?;
    device::check_post(&state.oauth, headers, &device, form.get("csrf")).then_some((device, form))
}

pub async fn sign_in(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((device, form)) = checked_post(&state, &headers, &body) else {
        return forbidden_post();
    };
    let identifier = form.get("identifier").unwrap_or_default();
    let client = crate::api::rate_limit::client_of(&extensions, &headers);
    let password = form.get("password").unwrap_or_default();
    match check_password(&state, &client, identifier, password).await {
        Ok(account) => {
            let (id, now) = (device.id.clone(), crate::auth::now_secs());
            let stored = state
                .db
                .write(move |w| {
                    store::sign_in_on_device(w.tx.connection(), &id, &account.did, now)
                        .map_err(pds_storage::StorageError::from)
                })
                .await;
            match stored {
                Ok(()) => back_to_account(),
                Err(e) => {
                    tracing::error!(error = %e, "account page sign-in failed");
                    pages::error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Something went wrong",
                        "Please try again.",
                    )
                }
            }
        }
        Err(refusal) => refusal.headers_on(sign_in_page(
            &state,
            &device,
            refusal.status,
            Some(&refusal.message),
            Some(identifier),
        )),
    }
}

/// The account a post is about, if it is signed in on the device.
async fn signed_in_account(state: &AppState, device: &Device, form: &Form) -> Option<String> {
    let did = form.get("account")?.to_owned();
    let id = device.id.clone();
    let since = crate::auth::now_secs() - DEVICE_SIGN_IN_TTL_SECS;
    let signed_in = state
        .db
        .read(move |s| {
            store::device_accounts(s.connection(), &id, since)
                .map_err(crate::accounts::AccountError::from)
        })
        .await
        .ok()?;
    signed_in.contains(&did).then_some(did)
}

pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some((device, form)) = checked_post(&state, &headers, &body) else {
        return forbidden_post();
    };
    let (Some(did), Some(grant)) = (
        signed_in_account(&state, &device, &form).await,
        form.get("grant").map(str::to_owned),
    ) else {
        return forbidden_post();
    };
    let deleted = state
        .db
        .write(move |w| {
            store::revoke_grant_of(w.tx.connection(), &grant, &did)
                .map_err(pds_storage::StorageError::from)
        })
        .await;
    match deleted {
        Ok(_) => back_to_account(),
        Err(e) => {
            tracing::error!(error = %e, "revoking an app failed");
            pages::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again.",
            )
        }
    }
}

pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some((device, form)) = checked_post(&state, &headers, &body) else {
        return forbidden_post();
    };
    let Some(did) = signed_in_account(&state, &device, &form).await else {
        return back_to_account();
    };
    let id = device.id.clone();
    let _ = state
        .db
        .write(move |w| {
            store::sign_out_of_device(w.tx.connection(), &id, Some(&did))
                .map_err(pds_storage::StorageError::from)
        })
        .await;
    back_to_account()
}
