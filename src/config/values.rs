//! Checks for the shapes of values settings take: pure functions on strings.

use std::net::IpAddr;

/// `true`/`false`, or `1`/`0` as the reference accepts in `pds.env`.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

pub fn parse_port(text: &str) -> Option<u16> {
    text.trim().parse().ok()
}

pub fn parse_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    // Accept `[::1]` as people write it in URLs.
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.parse().ok()
}

/// An absolute `http` or `https` URL with a host.
pub fn is_http_url(text: &str) -> bool {
    has_scheme_and_host(text, &["http", "https"])
}

/// An http(s) URL pattern with exactly three `%s` (filled with an image kind, a DID and a CID),
/// as the reference's `PDS_BSKY_APP_VIEW_CDN_URL_PATTERN`.
pub fn is_cdn_url_pattern(text: &str) -> bool {
    text.matches("%s").count() == 3 && is_http_url(&text.replace("%s", "x"))
}

/// An `smtp://` or `smtps://` URL with a host (credentials optional).
pub fn is_smtp_url(text: &str) -> bool {
    has_scheme_and_host(text, &["smtp", "smtps"])
}

fn has_scheme_and_host(text: &str, schemes: &[&str]) -> bool {
    let Ok(uri) = text.parse::<axum::http::Uri>() else {
        return false;
    };
    let scheme_ok = uri
        .scheme_str()
        .is_some_and(|s| schemes.iter().any(|want| s.eq_ignore_ascii_case(want)));
    scheme_ok && uri.host().is_some_and(|h| !h.is_empty())
}

/// A DNS name such as `pds.example.com` or `localhost`: no scheme, port or path.
pub fn is_hostname(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A handle suffix as `describeServer` advertises it: a dot, then a hostname (`.example.com`).
pub fn is_handle_domain(text: &str) -> bool {
    text.strip_prefix('.').is_some_and(is_hostname)
}

/// DID syntax as the atproto spec defines it: `did:<method>:<identifier>`, the
/// method lower-case letters, the identifier from `[A-Za-z0-9._:%-]` and not
/// ending in `:` or `%`.
pub fn is_did(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("did:") else {
        return false;
    };
    let Some((method, id)) = rest.split_once(':') else {
        return false;
    };
    !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_lowercase())
        && !id.is_empty()
        && !id.ends_with([':', '%'])
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:%-".contains(&b))
        && text.len() <= 2048
}

/// Loose e-mail address check: something before and after a single `@`.
pub fn is_email_address(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => !local.is_empty() && domain.contains('.') && !domain.contains('@'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(is_http_url("https://plc.directory"));
        assert!(is_http_url("http://127.0.0.1:2582/"));
        assert!(!is_http_url("plc.directory"));
        assert!(!is_http_url("ftp://plc.directory"));
        assert!(!is_http_url("https://"));
        assert!(is_smtp_url("smtps://user:pass@smtp.example.com:465/"));
        assert!(!is_smtp_url("https://smtp.example.com"));
    }

    #[test]
    fn hostnames_and_domains() {
        assert!(is_hostname("localhost"));
        assert!(is_hostname("pds.example.com"));
        assert!(!is_hostname("https://pds.example.com"));
        assert!(!is_hostname("pds.example.com:443"));
        assert!(!is_hostname("pds..example.com"));
        assert!(is_handle_domain(".test"));
        assert!(!is_handle_domain("test"));
        assert!(!is_handle_domain("."));
    }

    #[test]
    fn dids() {
        assert!(is_did("did:web:localhost"));
        assert!(is_did("did:web:localhost%3A2583"));
        assert!(is_did("did:plc:ewvi7nxzyoun6zhxrhs64oiz"));
        assert!(!is_did("did:web:"));
        assert!(!is_did("did:Web:x"));
        assert!(!is_did("web:localhost"));
        assert!(!is_did("did:web:x:"));
    }

    #[test]
    fn scalars() {
        assert_eq!(parse_bool("1"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_port("0"), Some(0));
        assert_eq!(parse_port("65536"), None);
        assert_eq!(parse_port("abc"), None);
        assert_eq!(parse_ip("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(parse_ip("0.0.0.0"), Some("0.0.0.0".parse().unwrap()));
        assert_eq!(parse_ip("localhost"), None);
        assert!(is_email_address("admin@example.com"));
        assert!(!is_email_address("admin"));
    }
}
