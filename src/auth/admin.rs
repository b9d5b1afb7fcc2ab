//! The operator's credentials for the admin API: HTTP Basic `admin:<PDS_ADMIN_PASSWORD>`, as the
//! reference PDS and its `pdsadmin` script send them.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::api::ApiError;
use crate::state::AppState;

/// The user name the reference's admin API expects.
pub const ADMIN_USER: &str = "admin";

/// Proof that the caller holds the admin password. A handler that takes it runs only then.
#[derive(Debug, Clone, Copy)]
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::authentication_required("Authentication Required"))?;
        let Some((user, password)) = header.to_str().ok().and_then(basic_credentials) else {
            return Err(ApiError::authentication_required(
                "Expected Basic admin credentials",
            ));
        };
        // Compare the whole secret in constant time; the user name is not a secret.
        let expected = state.secrets.admin_password.as_bytes();
        let same = password.len() == expected.len()
            && password
                .bytes()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if user != ADMIN_USER || !same {
            return Err(ApiError::authentication_required(
                "Invalid admin credentials",
            ));
        }
        Ok(AdminAuth)
    }
}

/// `Basic base64(user:password)` → (user, password).
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = data_encoding::BASE64
        .decode(encoded.trim().as_bytes())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_parsing() {
        let header = |s: &str| format!("Basic {}", data_encoding::BASE64.encode(s.as_bytes()));
        assert_eq!(
            basic_credentials(&header("admin:s3cret:with:colons")),
            Some(("admin".into(), "s3cret:with:colons".into()))
        );
        assert_eq!(
            basic_credentials(&header("admin:")),
            Some(("admin".into(), String::new()))
        );
        assert_eq!(basic_credentials(&header("no-colon")), None);
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(basic_credentials("Basic"), None);
    }
}
