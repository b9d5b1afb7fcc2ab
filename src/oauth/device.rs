//! The browser behind a page request: known by a random `device` cookie (HttpOnly,
//! SameSite=Lax, Secure on https), with the accounts signed in on it in [`super::store`].
//!
//! Every form the pages post carries a CSRF token: an HMAC of the device id under a key only
//! this server has, so a page elsewhere cannot forge one. Posts are also refused when the
//! browser says they come from another site (`Sec-Fetch-Site`, or an `Origin` that is not
//! ours).

use axum::http::{HeaderMap, HeaderValue, header};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::OAuth;

pub const COOKIE: &str = "pds-device";

/// A device, and whether its cookie must be (re)sent with the response.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub is_new: bool,
}

/// The device of a request: its cookie's, or a new one.
pub fn from_request(headers: &HeaderMap) -> Device {
    match cookie(headers, COOKIE).filter(|id| valid_id(id)) {
        Some(id) => Device { id, is_new: false },
        None => Device {
            id: super::tokens::random_token("dev-"),
            is_new: true,
        },
    }
}

/// The device of a form post: only an existing one (a post without the cookie is refused).
pub fn existing(headers: &HeaderMap) -> Option<Device> {
    cookie(headers, COOKIE)
        .filter(|id| valid_id(id))
        .map(|id| Device { id, is_new: false })
}

fn valid_id(id: &str) -> bool {
    id.len() <= 64
        && id.starts_with("dev-")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// The `Set-Cookie` value for a device.
pub fn set_cookie(oauth: &OAuth, device: &Device) -> HeaderValue {
    let secure = if oauth.secure_cookies { "; Secure" } else { "" };
    let max_age = super::DEVICE_SIGN_IN_TTL_SECS * 4;
    HeaderValue::from_str(&format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        device.id
    ))
    .expect("device ids are cookie-safe")
}

/// The CSRF token of the device's forms.
pub fn csrf_token(oauth: &OAuth, device: &Device) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(&oauth.csrf_key).expect("any key length");
    mac.update(device.id.as_bytes());
    data_encoding::BASE64URL_NOPAD.encode(&mac.finalize().into_bytes())
}

/// Checks a form post: the device's CSRF token, and a same-origin browser.
pub fn check_post(oauth: &OAuth, headers: &HeaderMap, device: &Device, csrf: Option<&str>) -> bool {
    let Some(csrf) = csrf else {
        return false;
    };
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(&oauth.csrf_key).expect("any key length");
    mac.update(device.id.as_bytes());
    let Ok(given) = data_encoding::BASE64URL_NOPAD.decode(csrf.as_bytes()) else {
        return false;
    };
    if mac.verify_slice(&given).is_err() {
        return false;
    }
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match text("origin") {
        None | Some("null") => true,
        Some(origin) => origin.eq_ignore_ascii_case(&oauth.issuer),
    }
}
