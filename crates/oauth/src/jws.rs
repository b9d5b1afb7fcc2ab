//! Splitting a compact JWS (`header.payload.signature`, base64url without
//! padding) into its parts. Nothing here checks a signature.

use data_encoding::BASE64URL_NOPAD;
use serde_json::Value;

/// Tokens longer than this are refused before any decoding.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

pub(crate) struct Parts<'a> {
    /// `header.payload`, exactly as in the token: what the signature covers.
    pub signing_input: &'a str,
    pub header: Value,
    pub claims: Value,
    pub signature: Vec<u8>,
}

/// Splits `token`; the error is a plain description for the caller to tag.
pub(crate) fn split(token: &str) -> Result<Parts<'_>, &'static str> {
    if token.len() > MAX_TOKEN_LEN {
        return Err("token is too long");
    }
    let mut segments = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err("not a compact JWS (expected three '.'-separated segments)");
    };
    let signing_input = &token[..header.len() + 1 + claims.len()];
    Ok(Parts {
        signing_input,
        header: object(header).ok_or("JWS header is not a base64url JSON object")?,
        claims: object(claims).ok_or("JWS payload is not a base64url JSON object")?,
        signature: BASE64URL_NOPAD
            .decode(signature.as_bytes())
            .map_err(|_| "JWS signature is not unpadded base64url")?,
    })
}

fn object(segment: &str) -> Option<Value> {
    let bytes = BASE64URL_NOPAD.decode(segment.as_bytes()).ok()?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value @ Value::Object(_)) => Some(value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        BASE64URL_NOPAD.encode(s.as_bytes())
    }

    #[test]
    fn splits_and_refuses() {
        let token = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"ES256"}"#),
            b64(r#"{"a":1}"#),
            b64("sig")
        );
        let parts = split(&token).unwrap();
        assert_eq!(parts.header["alg"], "ES256");
        assert_eq!(parts.claims["a"], 1);
        assert_eq!(parts.signature, b"sig");
        assert_eq!(
            parts.signing_input,
            format!("{}.{}", b64(r#"{"alg":"ES256"}"#), b64(r#"{"a":1}"#))
        );
        assert!(split("a.b").is_err());
        assert!(split(&format!("{token}.x")).is_err());
        let not_object = format!("{}.{}.{}", b64("[1]"), b64("{}"), b64("s"));
        assert!(split(&not_object).is_err());
        let padded = format!("{}.{}.{}=", b64("{}"), b64("{}"), b64("ss"));
        assert!(split(&padded).is_err());
        assert!(split(&"a".repeat(MAX_TOKEN_LEN + 1)).is_err());
    }
}
