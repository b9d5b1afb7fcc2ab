//! The one error type of the crate.

/// An OAuth failure. [`OAuthError::code`] is the OAuth `error` code for the
/// JSON error body; `Display` is the human-readable `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// `invalid_request`: a malformed request or parameter.
    #[error("{0}")]
    InvalidRequest(String),
    /// `invalid_client`: client identification or authentication failed.
    #[error("{0}")]
    InvalidClient(String),
    /// `invalid_grant`: a bad code, refresh token or PKCE verifier.
    #[error("{0}")]
    InvalidGrant(String),
    /// `unauthorized_client`: the client may not use this grant or method.
    #[error("{0}")]
    UnauthorizedClient(String),
    /// `unsupported_grant_type`.
    #[error("{0}")]
    UnsupportedGrantType(String),
    /// `invalid_scope`.
    #[error("{0}")]
    InvalidScope(String),
    /// `access_denied`.
    #[error("{0}")]
    AccessDenied(String),
    /// `invalid_token`: a bad access token at a resource server.
    #[error("{0}")]
    InvalidToken(String),
    /// `invalid_dpop_proof` (RFC 9449 §5, §7.1).
    #[error("{0}")]
    InvalidDpopProof(String),
    /// `use_dpop_nonce` (RFC 9449 §8, §9): the proof lacks the current server nonce.
    #[error("{0}")]
    UseDpopNonce(String),
    /// `invalid_client_metadata` (RFC 7591 §3.2.2).
    #[error("{0}")]
    InvalidClientMetadata(String),
    /// `invalid_redirect_uri` (RFC 7591 §3.2.2).
    #[error("{0}")]
    InvalidRedirectUri(String),
    /// `server_error`.
    #[error("{0}")]
    ServerError(String),
}

impl OAuthError {
    /// The OAuth error code for the JSON body's `error` member.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::AccessDenied(_) => "access_denied",
            OAuthError::InvalidToken(_) => "invalid_token",
            OAuthError::InvalidDpopProof(_) => "invalid_dpop_proof",
            OAuthError::UseDpopNonce(_) => "use_dpop_nonce",
            OAuthError::InvalidClientMetadata(_) => "invalid_client_metadata",
            OAuthError::InvalidRedirectUri(_) => "invalid_redirect_uri",
            OAuthError::ServerError(_) => "server_error",
        }
    }

    /// The human-readable description (the same text as `Display`).
    pub fn description(&self) -> &str {
        match self {
            OAuthError::InvalidRequest(d)
            | OAuthError::InvalidClient(d)
            | OAuthError::InvalidGrant(d)
            | OAuthError::UnauthorizedClient(d)
            | OAuthError::UnsupportedGrantType(d)
            | OAuthError::InvalidScope(d)
            | OAuthError::AccessDenied(d)
            | OAuthError::InvalidToken(d)
            | OAuthError::InvalidDpopProof(d)
            | OAuthError::UseDpopNonce(d)
            | OAuthError::InvalidClientMetadata(d)
            | OAuthError::InvalidRedirectUri(d)
            | OAuthError::ServerError(d) => d,
        }
    }

    /// The same description under another code, e.g. a JWK problem reported
    /// as `invalid_dpop_proof` by the DPoP checker.
    pub(crate) fn retag(self, as_: fn(String) -> OAuthError) -> OAuthError {
        let description = match self {
            OAuthError::InvalidRequest(d)
            | OAuthError::InvalidClient(d)
            | OAuthError::InvalidGrant(d)
            | OAuthError::UnauthorizedClient(d)
            | OAuthError::UnsupportedGrantType(d)
            | OAuthError::InvalidScope(d)
            | OAuthError::AccessDenied(d)
            | OAuthError::InvalidToken(d)
            | OAuthError::InvalidDpopProof(d)
            | OAuthError::UseDpopNonce(d)
            | OAuthError::InvalidClientMetadata(d)
            | OAuthError::InvalidRedirectUri(d)
            | OAuthError::ServerError(d) => d,
        };
        as_(description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_descriptions() {
        let e = OAuthError::UseDpopNonce("nonce required".into());
        assert_eq!(e.code(), "use_dpop_nonce");
        assert_eq!(e.to_string(), "nonce required");
        assert_eq!(e.description(), "nonce required");
        let e = e.retag(OAuthError::InvalidDpopProof);
        assert_eq!(e.code(), "invalid_dpop_proof");
        assert_eq!(e.description(), "nonce required");
        assert_eq!(
            OAuthError::InvalidClientMetadata(String::new()).code(),
            "invalid_client_metadata"
        );
        assert_eq!(
            OAuthError::InvalidRedirectUri(String::new()).code(),
            "invalid_redirect_uri"
        );
    }
}
